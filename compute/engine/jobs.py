"""Background jobs: submit an artifact spec, watch its progress, read its result, cancel it.

The job id is the artifact key, so two users asking for the same thing share one job and a
reloaded page re-attaches to it. Two backends share everything but the transport:

* :class:`EmbeddedBackend` (default): a small pool of *spawned* processes (CUDA-safe), job
  state in a diskcache directory;
* :class:`CeleryBackend` (when ``REDIS_URL`` is set): Celery tasks on a Redis broker, job
  state in Redis, workers anywhere that share the artifact store.

Job records are plain JSON-able dicts: ``state`` (queued, running, done, failed, cancelled),
``progress`` in [0, 1], ``message``, ``retryable``, ``spec``, and the times (``time.time()``)
it was ``submitted``, ``started`` and ``finished``.
"""
from __future__ import annotations

import heapq
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from compute.engine.artifacts import Cancelled, Context, Spec, ensure
from compute.engine.limits import check_client, check_memory, default_shape
from compute.engine.store import ArtifactStore, CorruptArtifact

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
ENDED = ("done", "failed", "cancelled")
MAX_ATTEMPTS = 3
_PROGRESS_EVERY_S = 0.25


# ---- job state: the same small interface over diskcache and Redis ----

def _corrupt(error: sqlite3.DatabaseError) -> bool:
    """SQLite's "not a database" / "malformed" (not "locked", which is an OperationalError)."""
    return not isinstance(error, sqlite3.OperationalError)


class DiskStates:
    """Job records and cancel flags in a diskcache directory (one machine).

    A corrupt index (the SQLite file garbled by a crash or a full disk) is moved aside to
    ``<directory>.corrupt-<time>`` and started afresh: job records are only a view of work in
    flight, and the artifacts, which are the results, live elsewhere.
    """

    def __init__(self, directory: Path):
        self._directory = Path(directory)
        self._cache = self._open()

    def _open(self):
        import diskcache

        self._directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self._directory, 0o700)
        try:
            cache = diskcache.Cache(str(self._directory))
            cache.get("job:")  # a garbled page may pass the header check; touch the table too
            return cache
        except sqlite3.DatabaseError as error:
            if not _corrupt(error):
                raise
            aside = self._directory.with_name(f"{self._directory.name}.corrupt-{time.time_ns()}")
            try:
                self._directory.rename(aside)
            except FileNotFoundError:  # another process moved it first
                pass
            log.error("job state index %s is corrupt (%s); moved it to %s and started a fresh one "
                      "(records of jobs in flight are lost; their artifacts are not)",
                      self._directory, error, aside)
            self._directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            return diskcache.Cache(str(self._directory))

    def _call(self, operation):
        """``operation(cache)``, once more on a fresh index if this one turned out corrupt."""
        try:
            return operation(self._cache)
        except sqlite3.DatabaseError as error:
            if not _corrupt(error):
                raise
            self._cache.close()
            self._cache = self._open()
            return operation(self._cache)

    def get(self, key: str) -> dict | None:
        raw = self._call(lambda cache: cache.get(f"job:{key}"))
        return json.loads(raw) if raw else None

    def put(self, key: str, record: dict) -> None:
        self._call(lambda cache: cache.set(f"job:{key}", json.dumps(record)))

    def add(self, key: str, record: dict) -> bool:
        return self._call(lambda cache: cache.add(f"job:{key}", json.dumps(record)))

    def records(self):
        for name in self._call(lambda cache: list(cache.iterkeys())):
            if isinstance(name, str) and name.startswith("job:"):
                record = self.get(name[4:])
                if record:
                    yield name[4:], record

    def set_cancel(self, key: str, value: bool) -> None:
        if value:
            self._call(lambda cache: cache.set(f"cancel:{key}", "1"))
        else:
            self._call(lambda cache: cache.delete(f"cancel:{key}"))

    def cancel_requested(self, key: str) -> bool:
        return self._call(lambda cache: f"cancel:{key}" in cache)

    def client_jobs(self, client: str) -> set[str]:
        return set(json.loads(self._call(lambda cache: cache.get(f"client:{client}")) or "[]"))

    def set_client_jobs(self, client: str, keys: set[str]) -> None:
        self._call(lambda cache: cache.set(f"client:{client}", json.dumps(sorted(keys))))

    def close(self) -> None:
        self._cache.close()


class RedisStates:
    """Job records and cancel flags in Redis (many hosts)."""

    _TTL_S = 7 * 24 * 3600

    def __init__(self, url: str):
        import redis

        self._redis = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)

    def ping(self) -> None:
        self._redis.ping()

    def get(self, key: str) -> dict | None:
        raw = self._redis.get(f"repscope:job:{key}")
        return json.loads(raw) if raw else None

    def put(self, key: str, record: dict) -> None:
        self._redis.set(f"repscope:job:{key}", json.dumps(record), ex=self._TTL_S)

    def add(self, key: str, record: dict) -> bool:
        return bool(self._redis.set(f"repscope:job:{key}", json.dumps(record), nx=True, ex=self._TTL_S))

    def records(self, batch: int = 500):
        names = list(self._redis.scan_iter("repscope:job:*", count=batch))
        for start in range(0, len(names), batch):  # one round trip per batch, not per job
            chunk = names[start:start + batch]
            for name, raw in zip(chunk, self._redis.mget(chunk)):
                if raw:
                    yield name.decode().rsplit(":", 1)[1], json.loads(raw)

    def set_cancel(self, key: str, value: bool) -> None:
        if value:
            self._redis.set(f"repscope:cancel:{key}", "1", ex=self._TTL_S)
        else:
            self._redis.delete(f"repscope:cancel:{key}")

    def cancel_requested(self, key: str) -> bool:
        return bool(self._redis.exists(f"repscope:cancel:{key}"))

    def client_jobs(self, client: str) -> set[str]:
        return {name.decode() for name in self._redis.smembers(f"repscope:client:{client}")}

    def set_client_jobs(self, client: str, keys: set[str]) -> None:
        name = f"repscope:client:{client}"
        with self._redis.pipeline() as pipe:
            pipe.delete(name)
            if keys:
                pipe.sadd(name, *sorted(keys))
                pipe.expire(name, self._TTL_S)
            pipe.execute()

    def close(self) -> None:
        self._redis.close()


def _update(states, key: str, **fields) -> dict:
    now = time.time()
    if "state" in fields:  # a job that ends records when; one that (re)starts has not ended
        fields.setdefault("finished", now if fields["state"] in ENDED else None)
    record = states.get(key) or {}
    record.update(fields, updated=now)
    states.put(key, record)
    return record


# ---- the worker side: identical for both backends ----

def run_job(spec_json: dict, states, store: ArtifactStore, task: str | None = None) -> str:
    """Compute one job to completion, recording its state; returns the final state.

    ``task`` is the submission's id: a delivery of an older submission of the same job (one
    cancelled, then submitted again) returns ``"superseded"`` without doing anything.
    """
    spec = Spec.from_json(spec_json)
    key = spec.key
    if task is not None and (states.get(key) or {}).get("task") not in (None, task):
        return "superseded"
    if store.has(spec.kind, key):
        _update(states, key, state="done", progress=1.0, message="done")
        return "done"
    if states.cancel_requested(key):
        states.set_cancel(key, False)
        _update(states, key, state="cancelled", message="cancelled before it started", retryable=True)
        return "cancelled"
    record = states.get(key) or {}
    attempts = int(record.get("attempts", 0)) + 1
    if attempts > MAX_ATTEMPTS:
        _update(states, key, state="failed", retryable=True,
                message=f"gave up after {MAX_ATTEMPTS} attempts (the worker died each time)")
        return "failed"
    _update(states, key, state="running", attempts=attempts, started=time.time(),
            worker=f"{socket.gethostname()}:{os.getpid()}", message="starting")
    last = [0.0]

    def report(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_EVERY_S or fraction >= 1.0:
            last[0] = now
            _update(states, key, progress=round(float(fraction), 4), message=message)

    ctx = Context(report=report, should_stop=lambda: states.cancel_requested(key))
    try:
        ensure(spec, store, ctx)
    except Cancelled:
        states.set_cancel(key, False)
        _update(states, key, state="cancelled", message="cancelled", retryable=True)
        return "cancelled"
    except ValueError as error:  # bad input: the message says what to change
        log.warning("job %s refused its input: %s", key, error)
        _update(states, key, state="failed", message=str(error), retryable=False)
        return "failed"
    except Exception as error:  # noqa: BLE001 - the job must end with a visible reason
        if type(error).__name__ == "SoftTimeLimitExceeded":  # Celery's soft time limit
            from compute.settings import get_settings

            limit = get_settings().job_time_limit_s
            log.warning("job %s ran past its time limit of %s s", key, limit)
            _update(states, key, state="failed", retryable=False,
                    message=f"stopped: the job ran past its time limit of {limit} s "
                            "(REPSCOPE_JOB_TIME_LIMIT); ask for less (fewer stimuli or models) "
                            "or raise the limit")
            return "failed"
        log.exception("job %s failed", key)
        _update(states, key, state="failed", message=f"{type(error).__name__}: {error}", retryable=True)
        return "failed"
    _update(states, key, state="done", progress=1.0, message="done")
    return "done"


def _embedded_worker(spec_json: dict, task: str, jobs_dir: str, artifacts_dir: str) -> str:
    return run_job(spec_json, DiskStates(Path(jobs_dir)), ArtifactStore(artifacts_dir), task)


# ---- the web side ----

_LISTED = ("kind", "state", "progress", "message", "retryable", "spec", "submitted", "started", "finished")


class Backend:
    """What the dashboard and the CLI call; subclasses only dispatch."""

    name = "base"

    def __init__(self, store: ArtifactStore, states, jobs_per_client: int = 0, memory_budget: int = 0):
        self.store = store
        self.states = states
        self.jobs_per_client = jobs_per_client
        self.memory_budget = memory_budget

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
        if (self.states.get(key) or {}).get("state") in ACTIVE:
            return key
        mine = self._admit(spec, client)
        record = {"state": "queued", "progress": 0.0, "message": "queued", "kind": spec.kind,
                  "spec": spec.to_json(), "submitted": time.time(), "updated": time.time(),
                  "attempts": 0, "retryable": False, "owner": self.instance, "client": client,
                  "task": f"{key}-{uuid.uuid4().hex[:12]}"}
        if not self.states.add(key, record):
            existing = self.states.get(key) or {}
            if existing.get("state") in ACTIVE:
                return key
            self.states.set_cancel(key, False)
            self.states.put(key, record)
        if mine is not None:
            self.states.set_client_jobs(client, mine | {key})
        self._dispatch(spec, record["task"])
        return key

    def _admit(self, spec: Spec, client: str | None) -> set[str] | None:
        """Apply the limits; return the client's active jobs (None when not counted)."""
        mine = None
        if client is not None and self.jobs_per_client:
            mine = {k for k in self.states.client_jobs(client)
                    if (self.states.get(k) or {}).get("state") in ACTIVE}
            check_client(client, len(mine), self.jobs_per_client)
        check_memory(spec, self.memory_budget, self.shape_of)
        return mine

    def shape_of(self, spec: Spec) -> tuple[int, ...] | None:
        """An artifact's shape: stored, or estimated for activations/predictions; None if unknown."""
        if self.store.has(spec.kind, spec.key):
            try:
                return tuple(self.store.meta(spec.kind, spec.key)["shape"])
            except (KeyError, CorruptArtifact):
                pass
        return default_shape(spec) if spec.kind in ("activations", "predictions") else None

    def status(self, key: str) -> dict[str, Any]:
        record = self.states.get(key)
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
        newest = heapq.nlargest(limit, self.states.records(),
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
        record = self.states.get(key)
        if record and record.get("state") in ACTIVE:
            self.states.set_cancel(key, True)
            if record.get("state") == "queued":  # a delivery that starts anyway sees the flag
                _update(self.states, key, state="cancelled", message="cancelled before it started",
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

    def _dispatch(self, spec: Spec, task: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.states.close()


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
    """A bounded pool of spawned processes on this machine; no Redis needed.

    A pool process that dies mid-job (killed, out of memory) breaks the whole pool: it is
    replaced, and every job it held is dispatched again, as Celery re-delivers a lost task;
    :data:`MAX_ATTEMPTS` stops a job that kills its worker every time.
    """

    name = "embedded"

    def __init__(self, cache_dir: Path, workers: int = 1, max_bytes: int | None = None, **limits):
        self.instance = _owner()
        self._jobs_dir = Path(cache_dir) / "jobs"
        store = ArtifactStore(Path(cache_dir) / "artifacts", max_bytes=max_bytes)
        super().__init__(store, DiskStates(self._jobs_dir), **limits)
        store.sweep_temp()
        self._mark_interrupted()
        self._workers = workers
        self._lock = threading.RLock()
        self._closed = False
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self._workers, mp_context=get_context("spawn"))

    def _mark_interrupted(self) -> None:
        """Jobs a previous run of the app left queued or running can never finish: say so.
        Jobs of another live process sharing this cache (several gunicorn workers) are its own."""
        for key, record in self.states.records():
            if record.get("state") in ACTIVE and record.get("owner") != self.instance \
                    and not _alive(record.get("owner")):
                _update(self.states, key, state="failed", retryable=True,
                        message="interrupted by a restart of the app; compute again to retry")

    def _dispatch(self, spec: Spec, task: str) -> None:
        self._submit(spec.to_json(), task)

    def _submit(self, spec_json: dict, task: str) -> None:
        with self._lock:
            if self._closed:
                return
            pool = self._pool
            try:
                future = pool.submit(_embedded_worker, spec_json, task, str(self._jobs_dir), str(self.store.root))
            except BrokenProcessPool:
                self._renew(pool)
                return self._submit(spec_json, task)
        future.add_done_callback(lambda done: self._finished(spec_json, task, pool, done))

    def _renew(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken and not self._closed:
                log.warning("a job worker process died; starting a new pool")
                self._pool = self._new_pool()

    def _finished(self, spec_json: dict, task: str, pool: ProcessPoolExecutor, future) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if isinstance(error, BrokenProcessPool):
            self._renew(pool)
            self._submit(spec_json, task)  # run_job counts the attempt and gives up after MAX_ATTEMPTS
        elif error is not None:  # outside run_job's own handling, e.g. the worker could not start
            _update(self.states, Spec.from_json(spec_json).key, state="failed", retryable=True,
                    message=f"{type(error).__name__}: {error}")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._pool.shutdown(wait=False, cancel_futures=True)
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
        states = RedisStates(redis_url)
        states.ping()
        super().__init__(ArtifactStore(Path(cache_dir) / "artifacts", max_bytes=max_bytes), states, **limits)
        self._dispatched: dict[str, dict] = {}  # key -> spec of the jobs queued from here

    def status(self, key: str) -> dict[str, Any]:
        """As :meth:`Backend.status`; a job this backend queued that Redis has since lost (a
        restart without persistence drops the queue and the records) is queued again."""
        spec_json = self._dispatched.get(key)
        if spec_json is not None and self.states.get(key) is None:
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

    def _dispatch(self, spec: Spec, task: str) -> None:
        from compute.engine.tasks import TASK, celery_app, queue_for

        self._dispatched[spec.key] = spec.to_json()

        celery_app(self._redis_url).send_task(TASK, args=[spec.to_json()], task_id=task, queue=queue_for(spec))

    def cancel(self, key: str) -> None:
        record = self.states.get(key) or {}
        super().cancel(key)
        if record.get("state") == "queued" and record.get("task"):
            from compute.engine.tasks import celery_app

            celery_app(self._redis_url).control.revoke(record["task"])  # a running one stops at the cancel flag


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"


def make_backend(settings=None) -> Backend:
    """The backend the settings ask for: Celery when ``REDIS_URL`` is set, else embedded."""
    from compute.settings import get_settings

    settings = settings or get_settings()
    limits = {"jobs_per_client": settings.jobs_per_client, "memory_budget": settings.memory_budget_bytes}
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
