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

    def claim(self, key: str, record: dict, client: str | None, cap: int) -> tuple[str, int]:
        """Admit job ``key`` in one atomic step, so that concurrent submissions (threads,
        gunicorn workers, hosts) cannot all pass a count taken before any of them was written:

        * ``("joined", 0)``: the job is already queued or running; nothing is written;
        * ``("full", n)``: ``client`` has ``n >= cap`` jobs queued or running; nothing is written;
        * ``("added", n)``: ``record`` is written (replacing an ended one), its cancel flag
          cleared, and the job counted as ``client``'s (``n``: its other active jobs).

        ``client`` None is not counted; ``cap`` 0 is no cap. Here: one SQLite write
        transaction (other writers wait for it)."""

        def transaction(cache):
            with cache.transact(retry=True):
                if _active(cache.get(f"job:{key}")):
                    return "joined", 0
                mine = set()
                if client is not None:
                    mine = {k for k in json.loads(cache.get(f"client:{client}") or "[]")
                            if _active(cache.get(f"job:{k}"))}
                    if cap and len(mine) >= cap:
                        return "full", len(mine)
                    cache.set(f"client:{client}", json.dumps(sorted(mine | {key})))
                cache.delete(f"cancel:{key}")
                cache.set(f"job:{key}", json.dumps(record))
                return "added", len(mine)

        return self._call(transaction)

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

    def close(self) -> None:
        self._cache.close()


class RedisRecords:
    """Job records and cancel flags in Redis (many hosts)."""

    _TTL_S = 7 * 24 * 3600

    def __init__(self, url: str):
        import redis

        self._redis = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
        self._claim = None

    def ping(self) -> None:
        self._redis.ping()

    def get(self, key: str) -> dict | None:
        raw = self._redis.get(f"repscope:job:{key}")
        return json.loads(raw) if raw else None

    def put(self, key: str, record: dict) -> None:
        self._redis.set(f"repscope:job:{key}", json.dumps(record), ex=self._TTL_S)

    def claim(self, key: str, record: dict, client: str | None, cap: int) -> tuple[str, int]:
        """As :meth:`DiskRecords.claim`; here one Lua script, which Redis runs with nothing in between."""
        if self._claim is None:
            self._claim = self._redis.register_script(_CLAIM_LUA)
        client_set = f"repscope:client:{client}" if client is not None else ""
        outcome, count = self._claim(keys=[f"repscope:job:{key}", f"repscope:cancel:{key}", client_set],
                                     args=[json.dumps(record), int(cap or 0), self._TTL_S, key, "repscope:job:"])
        return outcome.decode(), int(count)

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

    def close(self) -> None:
        self._redis.close()


def _active(raw) -> bool:
    return bool(raw) and json.loads(raw).get("state") in ACTIVE


# KEYS: the job's record, its cancel flag, the client's set of jobs ("" for no client);
# ARGV: the new record, the cap (0: none), the TTL, the job key, the prefix of job records.
# The members of the client's set are job keys, so their records are read by name: fine on one
# Redis (not a cluster, where a script may touch only its KEYS).
_CLAIM_LUA = """
local function active(name)
  local raw = redis.call('GET', name)
  if not raw then return false end
  local state = cjson.decode(raw)['state']
  return state == 'queued' or state == 'running'
end
if active(KEYS[1]) then return {'joined', 0} end
local count = 0
if KEYS[3] ~= '' then
  for _, member in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    if active(ARGV[5] .. member) then count = count + 1 else redis.call('SREM', KEYS[3], member) end
  end
  if tonumber(ARGV[2]) > 0 and count >= tonumber(ARGV[2]) then return {'full', count} end
  redis.call('SADD', KEYS[3], ARGV[4])
  redis.call('EXPIRE', KEYS[3], ARGV[3])
end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return {'added', count}
"""


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
