"""Claims: while one job makes an artifact, another job that needs it too waits for it and then
reads it, rather than making it a second time. (Two jobs of one page share inputs: the
reference page's point estimates and its bootstrap read the same models' RDMs; the Compute
button can start the second while the first still runs.)

A claim is an exclusive ``flock`` on the artifact's lock file in the store
(:meth:`compute.engine.store.ArtifactStore.claim_path`), taken before the artifact is made and
released once it is committed, the file removed with it (a store keeps no lock files beside its
artifacts, only one whose holder was killed, until the next claim of it). The kernel releases it
when its process dies (a worker killed mid-job blocks nobody), and it works across the processes
and hosts sharing one store where the filesystem supports ``flock``. A job takes its claims in
one global order (the order it makes artifacts in: activations by batch, then the rest one at a
time, holding none), so two jobs never wait on each other.

Claims only save work: correctness never rests on them (the store's commits are atomic
renames of identical content), so where ``flock`` is missing the cost is a duplicate
computation, never a wrong or partial artifact.
"""
from __future__ import annotations

import errno
import fcntl
import os
import time
from contextlib import contextmanager

from compute.engine.recipes import Context

WAIT_POLL_S = 0.05  # how often a waiting job tries the lock again (and checks its cancel flag)


@contextmanager
def claim(store, kind: str, key: str, ctx: Context | None = None):
    """Hold the claim on the artifact ``(kind, key)`` of ``store`` inside the block; while
    another job holds it, wait (saying so through ``ctx``, and stopping when ``ctx`` is
    cancelled). The caller checks ``store.has`` once inside: the other job may have made it.
    The lock file goes with the claim: a job that waited on it claims the file found anew."""
    ctx = ctx or Context()
    path = store.claim_path(kind, key)
    said = False
    while True:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            if not said:
                ctx.report(0.0, f"waiting for another job making the same {kind}")
                said = True
            ctx.check()
            time.sleep(WAIT_POLL_S)
            continue
        except OSError as error:  # a filesystem without flock: go on unclaimed
            os.close(handle)
            if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            yield
            return
        if _is_file_at(path, handle):
            break
        os.close(handle)  # released and removed while this job opened it: claim the file there now
    try:
        yield
    finally:
        if _is_file_at(path, handle):
            path.unlink(missing_ok=True)  # still held: no other job holds this file
        os.close(handle)  # releases the lock


def _is_file_at(path, handle: int) -> bool:
    """Whether the open file ``handle`` is the one at ``path`` (not removed or replaced)."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(handle)
    return (found.st_dev, found.st_ino) == (opened.st_dev, opened.st_ino)
