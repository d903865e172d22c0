"""Job records: the state of each job and its cancel flag, in diskcache (one machine) or Redis.

Records are plain JSON-able dicts: ``state`` (queued, running, done, failed, cancelled),
``progress`` in [0, 1], ``message``, ``retryable``, ``spec``, and the times (``time.time()``)
it was ``submitted``, ``started`` and ``finished``. Both stores offer the same small interface;
the web side (compute/engine/jobs.py) and the workers (compute/engine/worker.py) share it.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path

from compute.settings import private_dir

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
ENDED = ("done", "failed", "cancelled")


def _corrupt(error: sqlite3.DatabaseError) -> bool:
    """SQLite's "not a database" / "malformed" (not "locked", which is an OperationalError)."""
    return not isinstance(error, sqlite3.OperationalError)


class DiskRecords:
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

        private_dir(self._directory)
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
            private_dir(self._directory)
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

    def items(self):
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


class RedisRecords:
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

    def items(self, batch: int = 500):
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


def update(records, key: str, **fields) -> dict:
    """Merge ``fields`` into job ``key``'s record (created if missing) and stamp ``updated``;
    a new ``state`` also sets ``finished`` (the time when it ends, None when it (re)starts)."""
    now = time.time()
    if "state" in fields:  # a job that ends records when; one that (re)starts has not ended
        fields.setdefault("finished", now if fields["state"] in ENDED else None)
    record = records.get(key) or {}
    record.update(fields, updated=now)
    records.put(key, record)
    return record
