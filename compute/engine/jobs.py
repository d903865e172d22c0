"""Background jobs: submit an artifact spec, watch its progress, read its result, cancel it.

The job id is the artifact key, so two users asking for the same thing share one job and a
reloaded page re-attaches to it. Two backends share everything but the transport:

* :class:`EmbeddedBackend` (default): a small pool of *spawned* processes (CUDA-safe), job
  records in a diskcache directory;
* :class:`CeleryBackend` (when ``REDIS_URL`` is set): Celery tasks on a Redis broker, job
  records in Redis, workers anywhere that share the artifact store.

The records are compute/engine/records.py's; the workers run compute/engine/worker.py's
``run_job``.
"""
from __future__ import annotations

import heapq
import logging
import os
import queue
import socket
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from compute.engine.artifacts import Spec
from compute.engine.limits import check_client, check_memory, default_shape, missing_work
from compute.engine.records import ACTIVE, DiskRecords, RedisRecords, update
from compute.engine.store import ArtifactStore, CorruptArtifact
from compute.engine.worker import embedded_worker, import_numerics
from compute.processes import die_with_parent

log = logging.getLogger(__name__)


_INTERRUPTED = "interrupted by a restart of the app; compute again to retry"
LANES = ("interactive", "long")
_WARM = ("warm",)  # the dispatcher's item that starts the interactive pool's first process
_LISTED = ("kind", "state", "progress", "message", "retryable", "spec", "submitted", "started", "finished")


class Backend:
    """What the dashboard and the CLI call; subclasses only dispatch."""

    name = "base"

    def __init__(self, store: ArtifactStore, records, jobs_per_client: int = 0, memory_budget: int = 0,
                 long_job_seconds: float = 20.0):
        self.store = store
        self.records = records
        self.jobs_per_client = jobs_per_client
        self.memory_budget = memory_budget
        self.long_job_seconds = long_job_seconds

    def lane_of(self, spec: Spec) -> str:
        """``"long"`` for a job estimated over ``long_job_seconds`` (what is cached not counted),
        else ``"interactive"``: the lanes run apart, so short jobs never wait behind long ones."""
        work = missing_work([spec], lambda s: self.store.has(s.kind, s.key), self.shape_of)
        return "long" if work.seconds > self.long_job_seconds else "interactive"

    def submit(self, spec: Spec, client: str | None = None) -> str:
        """Queue ``spec`` unless it is cached or already queued/running; return its key.

        ``client`` (e.g. the web request's remote address) is counted against the per-client
        cap on jobs it queued that are still active; joining a job already queued or running,
        or reading a cached result, is always allowed. Raises :class:`TooManyJobs` or
        :class:`TooLarge` (both :class:`LimitExceeded`) before queueing anything.
        """
        key = spec.key
        if self.store.has(spec.kind, key):
            return key
        if (self.records.get(key) or {}).get("state") in ACTIVE:
            return key
        check_memory(spec, self.memory_budget, self.shape_of)
        lane = self.lane_of(spec)
        record = {"state": "queued", "progress": 0.0, "message": "queued", "kind": spec.kind, "lane": lane,
                  "spec": spec.to_json(), "submitted": time.time(), "updated": time.time(),
                  "attempts": 0, "retryable": False, "owner": self.instance, "client": client,
                  "task": f"{key}-{uuid.uuid4().hex[:12]}"}
        # Count and add in one step: a count read before others' adds let 24 simultaneous
        # submissions past a cap of 4.
        outcome, active = self.records.claim(key, record, client if self.jobs_per_client else None,
                                             self.jobs_per_client)
        if outcome == "full":
            check_client(client, active, self.jobs_per_client)
        if outcome == "added":
            self._dispatch(spec, record["task"], lane)
        return key

    def shape_of(self, spec: Spec) -> tuple[int, ...] | None:
        """An artifact's shape: stored, or estimated for activations/predictions; None if unknown."""
        if self.store.has(spec.kind, spec.key):
            try:
                return tuple(self.store.meta(spec.kind, spec.key)["shape"])
            except (KeyError, CorruptArtifact):
                pass
        return default_shape(spec) if spec.kind in ("activations", "predictions") else None

    def status(self, key: str) -> dict[str, Any]:
        record = self.records.get(key)
        kind = (record or {}).get("kind")
        if kind and self.store.has(kind, key):
            return {"state": "done", "progress": 1.0, "message": "done", "kind": kind}
        if record is None:
            return {"state": "missing", "progress": 0.0, "message": "not computed"}
        if record.get("state") == "done":  # evicted or deleted since
            return {"state": "missing", "progress": 0.0, "message": "evicted from the cache", "kind": kind}
        return {k: record.get(k) for k in ("state", "progress", "message", "retryable", "kind")}

    def jobs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The ``limit`` most recently submitted job records, newest first, as stored (a done
        job's artifact may have been evicted since; :meth:`status` checks the store).

        Each is a dict of ``key``, ``kind``, ``state``, ``progress``, ``message``, ``retryable``,
        ``spec`` (JSON) and the times ``submitted``, ``started``, ``finished`` (None if not yet).
        """
        newest = heapq.nlargest(limit, self.records.items(),
                                key=lambda item: item[1].get("submitted") or item[1].get("updated") or 0.0)
        return [{"key": key, **{name: record.get(name) for name in _LISTED}} for key, record in newest]

    def spec_status(self, spec: Spec) -> dict[str, Any]:
        """:meth:`status`, but done whenever the artifact is stored, with or without a job
        record (computed elsewhere on a shared store, or the records were lost)."""
        if self.store.has(spec.kind, spec.key):
            return {"state": "done", "progress": 1.0, "message": "done", "kind": spec.kind}
        return self.status(spec.key)

    def result(self, spec: Spec):
        """The array of a finished job (memory-mapped), or ``None`` when it is not there."""
        try:
            return self.store.get(spec.kind, spec.key)[0]
        except (KeyError, CorruptArtifact):
            return None

    def cancel(self, key: str) -> None:
        record = self.records.get(key)
        if record and record.get("state") in ACTIVE:
            self.records.set_cancel(key, True)
            if record.get("state") == "queued":  # a delivery that starts anyway sees the flag
                update(self.records, key, state="cancelled", message="cancelled before it started",
                       retryable=True)

    def compute(self, spec: Spec, timeout: float = 600.0, poll: float = 0.2):
        """Submit and wait: the blocking form, for notebooks and the CLI."""
        key = self.submit(spec)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(key)
            if status["state"] == "done":
                return self.result(spec)
            if status["state"] in ("failed", "cancelled"):
                raise RuntimeError(f"job {key} {status['state']}: {status['message']}")
            time.sleep(poll)
        raise TimeoutError(f"job {key} still {self.status(key)['state']} after {timeout} s")

    def _dispatch(self, spec: Spec, task: str, lane: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.records.close()


def _started(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, Linux), so a reused pid is told
    apart from the process that had it; "" when unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return ""


def _owner() -> str:
    """This process as a job owner: "host:pid:start:random"."""
    return f"{socket.gethostname()}:{os.getpid()}:{_started(os.getpid())}:{uuid.uuid4().hex}"


def _alive(owner: str | None) -> bool:
    """Whether the embedded backend ``owner`` (see :func:`_owner`) is a live process here."""
    host, pid, started, *_ = (owner or "").split(":") + ["", "", ""]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return _started(int(pid)) == started


class EmbeddedBackend(Backend):
    """A bounded pool of spawned processes on this machine; no Redis needed. The first process
    starts as the backend is made and imports the numerics then, not in the first job.

    A pool process that dies mid-job (killed, out of memory) breaks the whole pool: it is
    replaced, and every job it held is dispatched again, as Celery re-delivers a lost task;
    :data:`~compute.engine.worker.MAX_ATTEMPTS` stops a job that kills its worker every time.

    The pool's processes end with the process that made the backend: :meth:`close` kills them,
    and runs when the interpreter exits (SIGTERM to ``app.py``, a gunicorn worker's graceful
    exit); a parent killed outright takes them too (``PR_SET_PDEATHSIG``, set by each process
    for the dispatcher thread that started it, which lives as long as the backend).
    """

    name = "embedded"

    def __init__(self, cache_dir: Path, workers: int = 1, max_bytes: int | None = None, **limits):
        self.instance = _owner()
        self._jobs_dir = Path(cache_dir) / "jobs"
        store = ArtifactStore(Path(cache_dir) / "artifacts", max_bytes=max_bytes)
        super().__init__(store, DiskRecords(self._jobs_dir), **limits)
        store.sweep_temp()
        self._mark_interrupted()
        self._workers = workers
        self._lock = threading.RLock()
        self._closed = False
        # One pool a lane: long jobs take their own process, so interactive ones never wait.
        self._pools = {lane: self._new_pool(lane) for lane in LANES}
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._queue.put(_WARM)  # the first job process starts now, importing torch (worker.import_numerics)
        threading.Thread(target=self._dispatcher, name="repscope-job-dispatcher", daemon=True).start()
        # Before concurrent.futures' own exit hook (these run last registered first), which
        # would wait for every queued and running job to finish.
        threading._register_atexit(self.close)

    def _new_pool(self, lane: str) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self._workers if lane == "interactive" else 1,
                                   mp_context=get_context("spawn"),
                                   initializer=die_with_parent, initargs=(os.getpid(),))

    def _mark_interrupted(self) -> None:
        """Jobs a previous run of the app left queued or running can never finish: say so.
        Jobs of another live process sharing this cache (several gunicorn workers) are its own."""
        for key, record in self.records.items():
            if record.get("state") in ACTIVE and record.get("owner") != self.instance \
                    and not _alive(record.get("owner")):
                update(self.records, key, state="failed", retryable=True, message=_INTERRUPTED)

    def _dispatch(self, spec: Spec, task: str, lane: str) -> None:
        self._submit(spec.to_json(), task, lane)

    def _submit(self, spec_json: dict, task: str, lane: str) -> None:
        self._queue.put((spec_json, task, lane))

    def _dispatcher(self) -> None:
        """Hand each queued job to its lane's pool. A pool starts its processes in the thread
        that submits, and a process's PR_SET_PDEATHSIG fires when that thread ends: this one
        thread, living as long as the backend, is the only one that submits."""
        while (item := self._queue.get()) is not None:
            if item is _WARM:
                with self._lock:
                    if not self._closed:
                        self._pools["interactive"].submit(import_numerics)
                continue
            self._start(*item)

    def _start(self, spec_json: dict, task: str, lane: str) -> None:
        with self._lock:
            if self._closed:
                return
            pool = self._pools[lane]
            try:
                future = pool.submit(embedded_worker, spec_json, task, str(self._jobs_dir), str(self.store.root))
            except BrokenProcessPool:
                self._renew(lane, pool)
                return self._start(spec_json, task, lane)
        future.add_done_callback(lambda done: self._finished(spec_json, task, lane, pool, done))

    def _renew(self, lane: str, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pools[lane] is broken and not self._closed:
                log.warning("a job worker process died; starting a new pool")
                self._pools[lane] = self._new_pool(lane)

    def _finished(self, spec_json: dict, task: str, lane: str, pool: ProcessPoolExecutor, future) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if isinstance(error, BrokenProcessPool):
            self._renew(lane, pool)
            self._submit(spec_json, task, lane)  # run_job counts the attempt and gives up after MAX_ATTEMPTS
        elif error is not None:  # outside run_job's own handling, e.g. the worker could not start
            update(self.records, Spec.from_json(spec_json).key, state="failed", retryable=True,
                   message=f"{type(error).__name__}: {error}")

    def close(self) -> None:
        """Stop: no more jobs start, the pool's processes are killed mid-job (their artifacts
        are written atomically: nothing partial stays) and their jobs are marked interrupted."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            processes = [process for pool in self._pools.values()
                         for process in (getattr(pool, "_processes", None) or {}).values()]
            for process in processes:
                process.kill()
            for pool in self._pools.values():
                pool.shutdown(wait=False, cancel_futures=True)
        self._queue.put(None)
        for process in processes:
            process.join(10)
        for key, record in self.records.items():
            if record.get("state") in ACTIVE and record.get("owner") == self.instance:
                update(self.records, key, state="failed", retryable=True, message=_INTERRUPTED)
        super().close()


class CeleryBackend(Backend):
    """Celery tasks on a Redis broker; workers on any host that shares the artifact store.

    Each submission is its own task id (``<key>-<nonce>``), recorded with the job: a revoked
    id is remembered by the workers, so reusing the key would drop a later resubmission.
    """

    name = "celery"

    def __init__(self, cache_dir: Path, redis_url: str, max_bytes: int | None = None, **limits):
        self.instance = "celery"
        self._redis_url = redis_url
        records = RedisRecords(redis_url)
        records.ping()
        super().__init__(ArtifactStore(Path(cache_dir) / "artifacts", max_bytes=max_bytes), records, **limits)
        self._dispatched: dict[str, dict] = {}  # key -> spec of the jobs queued from here

    def status(self, key: str) -> dict[str, Any]:
        """As :meth:`Backend.status`; a job this backend queued that Redis has since lost (a
        restart without persistence drops the queue and the records) is queued again."""
        spec_json = self._dispatched.get(key)
        if spec_json is not None and self.records.get(key) is None:
            spec = Spec.from_json(spec_json)
            if self.store.has(spec.kind, key):
                self._dispatched.pop(key)
                return {"state": "done", "progress": 1.0, "message": "done", "kind": spec.kind}
            log.warning("job %s is unknown to Redis (restarted?); queueing it again", key)
            self.submit(spec)
        status = super().status(key)
        if status["state"] not in ACTIVE:  # finished: nothing left to watch for
            self._dispatched.pop(key, None)
        return status

    def _dispatch(self, spec: Spec, task: str, lane: str) -> None:
        from compute.engine.celery_app import TASK, celery_app
        from compute.engine.kinds import queue_of

        self._dispatched[spec.key] = spec.to_json()
        celery_app(self._redis_url).send_task(TASK, args=[spec.to_json()], task_id=task,
                                              queue=queue_of(spec.kind, lane))

    def cancel(self, key: str) -> None:
        record = self.records.get(key) or {}
        super().cancel(key)
        if record.get("state") == "queued" and record.get("task"):
            from compute.engine.celery_app import celery_app

            celery_app(self._redis_url).control.revoke(record["task"])  # a running one stops at the cancel flag


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"


def make_backend(settings=None) -> Backend:
    """The backend the settings ask for: Celery when ``REDIS_URL`` is set, else embedded."""
    from compute.settings import get_settings

    settings = settings or get_settings()
    limits = {"jobs_per_client": settings.jobs_per_client, "memory_budget": settings.memory_budget_bytes,
              "long_job_seconds": settings.long_job_seconds}
    if settings.redis_url:
        try:
            return CeleryBackend(settings.cache_dir, settings.redis_url, settings.cache_max_bytes, **limits)
        except Exception as error:
            raise RuntimeError(
                f"REDIS_URL points to {_without_password(settings.redis_url)} but Redis does not answer "
                f"({type(error).__name__}: {error}); start Redis there, or unset REDIS_URL to compute "
                "in the embedded backend"
            ) from error
    return EmbeddedBackend(settings.cache_dir, settings.workers, settings.cache_max_bytes, **limits)
