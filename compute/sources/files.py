"""File helpers the sources share: an exclusive lock across processes, and an atomic private write."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from compute.settings import private_dir


@contextlib.contextmanager
def exclusive_lock(path: Path):
    """An exclusive advisory lock on ``path`` (created, with its folder: 0700 when missing), so
    two processes starting at once do one thing once."""
    import fcntl

    private_dir(path.parent, tighten=False)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write a file atomically (temp file, fsync, rename), private (0600): ``write(handle)``
    fills it, and a reader sees the old file or the whole new one."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
