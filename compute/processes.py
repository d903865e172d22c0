"""Processes the app starts end with it: a child asks the kernel to kill it when its parent ends.

``PR_SET_PDEATHSIG`` (Linux) sends the signal when the *thread* that started the child ends, not
the process: a child started from a short-lived thread (a web request's) would die with that
request. So a child calls :func:`die_with_parent` only when it was started from a thread that
lives as long as its parent: the embedded job pool's dispatcher thread, or a request thread that
waits for it (the upload checker).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Have this process SIGKILLed when its parent ends (Linux; elsewhere nothing is done), and
    end now if ``parent_pid``, the process that started it, has already ended."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() != parent_pid:  # the parent ended before the request took effect
        os._exit(1)
