"""The worker side of a job, the same for both backends: :func:`run_job` computes one job to
completion and records its state; :func:`embedded_worker` is its entry point in a process of
the embedded backend's pool (the Celery task, compute/engine/tasks.py, is the other).
"""
from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path

from compute.engine.artifacts import Context, Spec, ensure
from compute.engine.records import DiskRecords, update
from compute.engine.store import ArtifactStore
from compute.errors import Cancelled

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
_PROGRESS_EVERY_S = 0.25


def run_job(spec_json: dict, records, store: ArtifactStore, task: str | None = None) -> str:
    """Compute one job to completion, recording its state; returns the final state.

    ``task`` is the submission's id: a delivery of an older submission of the same job (one
    cancelled, then submitted again) returns ``"superseded"`` without doing anything.
    """
    spec = Spec.from_json(spec_json)
    key = spec.key
    if task is not None and (records.get(key) or {}).get("task") not in (None, task):
        return "superseded"
    if store.has(spec.kind, key):
        update(records, key, state="done", progress=1.0, message="done")
        return "done"
    if records.cancel_requested(key):
        records.set_cancel(key, False)
        update(records, key, state="cancelled", message="cancelled before it started", retryable=True)
        return "cancelled"
    record = records.get(key) or {}
    attempts = int(record.get("attempts", 0)) + 1
    if attempts > MAX_ATTEMPTS:
        update(records, key, state="failed", retryable=True,
               message=f"gave up after {MAX_ATTEMPTS} attempts (the worker died each time)")
        return "failed"
    update(records, key, state="running", attempts=attempts, started=time.time(),
           worker=f"{socket.gethostname()}:{os.getpid()}", message="starting")
    last = [0.0]

    def report(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_EVERY_S or fraction >= 1.0:
            last[0] = now
            update(records, key, progress=round(float(fraction), 4), message=message)

    ctx = Context(report=report, should_stop=lambda: records.cancel_requested(key))
    try:
        ensure(spec, store, ctx)
    except Cancelled:
        records.set_cancel(key, False)
        update(records, key, state="cancelled", message="cancelled", retryable=True)
        return "cancelled"
    except ValueError as error:  # bad input: the message says what to change
        log.warning("job %s refused its input: %s", key, error)
        update(records, key, state="failed", message=str(error), retryable=False)
        return "failed"
    except Exception as error:  # noqa: BLE001 - the job must end with a visible reason
        if type(error).__name__ == "SoftTimeLimitExceeded":  # Celery's soft time limit
            from compute.settings import get_settings

            limit = get_settings().job_time_limit_s
            log.warning("job %s ran past its time limit of %s s", key, limit)
            update(records, key, state="failed", retryable=False,
                   message=f"stopped: the job ran past its time limit of {limit} s "
                           "(REPSCOPE_JOB_TIME_LIMIT); ask for less (fewer stimuli or models) "
                           "or raise the limit")
            return "failed"
        log.exception("job %s failed", key)
        update(records, key, state="failed", message=f"{type(error).__name__}: {error}", retryable=True)
        return "failed"
    update(records, key, state="done", progress=1.0, message="done")
    return "done"


def import_numerics() -> None:
    """Import what jobs compute with (torch, torchvision, the measures) before any job: a
    worker process does it as it starts (the embedded pool's first process as the backend is
    made, so that its imports overlap the web process's first estimate; Celery's in
    ``worker_process_init``), never within a job's time."""
    import compute.engine.artifacts  # noqa: F401
    import compute.measures.similarity  # noqa: F401
    import compute.sources.activations  # noqa: F401 (torch, torchvision)


def embedded_worker(spec_json: dict, task: str, jobs_dir: str, artifacts_dir: str) -> str:
    return run_job(spec_json, DiskRecords(Path(jobs_dir)), ArtifactStore(artifacts_dir), task)
