"""Background jobs: submit an artifact spec, watch its progress, read its result, cancel it.

The job id is the artifact key, so two users asking for the same thing share one job and a
reloaded page re-attaches to it. Two backends share everything but the transport:

* :class:`EmbeddedBackend` (default): a small pool of *spawned* processes (CUDA-safe), job
  state in a diskcache directory;
* :class:`CeleryBackend` (when ``REDIS_URL`` is set): Celery tasks on a Redis broker, job
  state in Redis, workers anywhere that share the artifact store.

Job records are plain JSON-able dicts: ``state`` (queued, running, done, failed, cancelled),
``progress`` in [0, 1], ``message``, ``retryable``, ``spec``.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from compute.engine.artifacts import Cancelled, Context, Spec, ensure
from compute.engine.store import ArtifactStore, CorruptArtifact

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
MAX_ATTEMPTS = 3
_PROGRESS_EVERY_S = 0.25


# ---- job state: the same small interface over diskcache and Redis ----

class DiskStates:
    """Job records and cancel flags in a diskcache directory (one machine)."""

    def __init__(self, directory: Path):
        import diskcache

        Path(directory).mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        self._cache = diskcache.Cache(str(directory))

    def get(self, key: str) -> dict | None:
        raw = self._cache.get(f"job:{key}")
        return json.loads(raw) if raw else None

    def put(self, key: str, record: dict) -> None:
        self._cache.set(f"job:{key}", json.dumps(record))

    def add(self, key: str, record: dict) -> bool:
        return self._cache.add(f"job:{key}", json.dumps(record))

    def records(self):
        for name in list(self._cache.iterkeys()):
            if isinstance(name, str) and name.startswith("job:"):
                record = self.get(name[4:])
                if record:
                    yield name[4:], record

    def set_cancel(self, key: str, value: bool) -> None:
        if value:
            self._cache.set(f"cancel:{key}", "1")
        else:
            self._cache.delete(f"cancel:{key}")

    def cancel_requested(self, key: str) -> bool:
        return f"cancel:{key}" in self._cache


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

    def records(self):
        for name in self._redis.scan_iter("repscope:job:*"):
            key = name.decode().rsplit(":", 1)[1]
            record = self.get(key)
            if record:
                yield key, record

    def set_cancel(self, key: str, value: bool) -> None:
        if value:
            self._redis.set(f"repscope:cancel:{key}", "1", ex=self._TTL_S)
        else:
            self._redis.delete(f"repscope:cancel:{key}")

    def cancel_requested(self, key: str) -> bool:
        return bool(self._redis.exists(f"repscope:cancel:{key}"))


def _update(states, key: str, **fields) -> dict:
    record = states.get(key) or {}
    record.update(fields, updated=time.time())
    states.put(key, record)
    return record


# ---- the worker side: identical for both backends ----

def run_job(spec_json: dict, states, store: ArtifactStore) -> str:
    """Compute one job to completion, recording its state; returns the final state."""
    spec = Spec.from_json(spec_json)
    key = spec.key
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
        log.exception("job %s failed", key)
        _update(states, key, state="failed", message=f"{type(error).__name__}: {error}", retryable=True)
        return "failed"
    _update(states, key, state="done", progress=1.0, message="done", finished=time.time())
    return "done"


def _embedded_worker(spec_json: dict, jobs_dir: str, artifacts_dir: str) -> str:
    return run_job(spec_json, DiskStates(Path(jobs_dir)), ArtifactStore(artifacts_dir))


# ---- the web side ----

class Backend:
    """What the dashboard and the CLI call; subclasses only dispatch."""

    name = "base"

    def __init__(self, store: ArtifactStore, states):
        self.store = store
        self.states = states

    def submit(self, spec: Spec) -> str:
        """Queue ``spec`` unless it is cached or already queued/running; return its key."""
        key = spec.key
        if self.store.has(spec.kind, key):
            return key
        record = {"state": "queued", "progress": 0.0, "message": "queued", "kind": spec.kind,
                  "spec": spec.to_json(), "submitted": time.time(), "updated": time.time(),
                  "attempts": 0, "retryable": False, "owner": self.instance}
        if not self.states.add(key, record):
            existing = self.states.get(key) or {}
            if existing.get("state") in ACTIVE:
                return key
            self.states.set_cancel(key, False)
            self.states.put(key, record)
        self._dispatch(spec)
        return key

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
            if record.get("state") == "queued":
                _update(self.states, key, message="cancelling")

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

    def _dispatch(self, spec: Spec) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class EmbeddedBackend(Backend):
    """A bounded pool of spawned processes on this machine; no Redis needed."""

    name = "embedded"

    def __init__(self, cache_dir: Path, workers: int = 1, max_bytes: int | None = None):
        self.instance = uuid.uuid4().hex
        self._jobs_dir = Path(cache_dir) / "jobs"
        store = ArtifactStore(Path(cache_dir) / "artifacts", max_bytes=max_bytes)
        super().__init__(store, DiskStates(self._jobs_dir))
        store.sweep_temp()
        self._mark_interrupted()
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))

    def _mark_interrupted(self) -> None:
        """Jobs a previous run of the app left queued or running can never finish: say so."""
        for key, record in self.states.records():
            if record.get("state") in ACTIVE and record.get("owner") != self.instance:
                _update(self.states, key, state="failed", retryable=True,
                        message="interrupted by a restart of the app; compute again to retry")

    def _dispatch(self, spec: Spec) -> None:
        self._pool.submit(_embedded_worker, spec.to_json(), str(self._jobs_dir), str(self.store.root))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class CeleryBackend(Backend):
    """Celery tasks on a Redis broker; workers on any host that shares the artifact store."""

    name = "celery"

    def __init__(self, cache_dir: Path, redis_url: str, max_bytes: int | None = None):
        self.instance = "celery"
        states = RedisStates(redis_url)
        states.ping()
        super().__init__(ArtifactStore(Path(cache_dir) / "artifacts", max_bytes=max_bytes), states)

    def _dispatch(self, spec: Spec) -> None:
        from compute.engine.tasks import compute_artifact, queue_for

        compute_artifact.apply_async(args=[spec.to_json()], task_id=spec.key, queue=queue_for(spec))

    def cancel(self, key: str) -> None:
        super().cancel(key)
        from compute.engine.tasks import celery_app

        celery_app().control.revoke(key)


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"


def make_backend(settings=None) -> Backend:
    """The backend the settings ask for: Celery when ``REDIS_URL`` is set, else embedded."""
    from compute.settings import get_settings

    settings = settings or get_settings()
    if settings.redis_url:
        try:
            return CeleryBackend(settings.cache_dir, settings.redis_url, settings.cache_max_bytes)
        except Exception as error:
            raise RuntimeError(
                f"REDIS_URL points to {_without_password(settings.redis_url)} but Redis does not answer "
                f"({type(error).__name__}: {error}); start Redis there, or unset REDIS_URL to compute "
                "in the embedded backend"
            ) from error
    return EmbeddedBackend(settings.cache_dir, settings.workers, settings.cache_max_bytes)
