"""The artifact store: content-addressed arrays on disk, written atomically, checked on read.

Layout: ``<root>/<kind>/<key[:2]>/<key>.npy`` holds the array (never pickled) and
``<key>.json`` its metadata, including the array file's SHA-256. The JSON is written last, so
its presence is the commit mark: a crash mid-write leaves only a temp file, swept at start.

The filesystem itself is the index (no second database that could disagree with it or be
corrupted): least-recently-used eviction reads the metadata files' modification times, which
a read refreshes at most once a minute.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from compute.settings import private_dir

_TEMP_SUFFIX = ".tmp"
_TOUCH_EVERY_S = 60.0
_STALE_TEMP_S = 3600.0


class CorruptArtifact(RuntimeError):
    """An artifact failed its integrity check; it has been deleted and must be recomputed."""


class DiskFull(OSError):
    """The cache directory's disk (or quota) is full; nothing partial was kept."""


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_all(paths) -> None:
    """fsync every path (files or folders) at once: each waits for the disk, so in threads they
    share its commits (226 artifacts' files, one by one: ~10 ms each on this machine's disk)."""
    paths = list(dict.fromkeys(paths))
    if len(paths) < 2:
        for path in paths:
            _fsync(path)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(16, len(paths))) as pool:
        list(pool.map(_fsync, paths))


def _temp_beside(path: Path) -> Path:
    return path.with_name(f"{path.name}.{os.getpid()}.{time.monotonic_ns()}{_TEMP_SUFFIX}")


def _write_temp(path: Path, write) -> Path:
    """Write through ``write(file)`` into a new temp file beside ``path`` (not yet synced); its path."""
    tmp = _temp_beside(path)
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
            write(handle)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


class _HashingWriter:
    """A write-only file wrapper that hashes what passes through it."""

    def __init__(self, handle):
        self._handle = handle
        self.sha256 = hashlib.sha256()

    def write(self, data) -> int:
        self.sha256.update(data)
        return self._handle.write(data)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactStore:
    """Arrays and their metadata under ``root``, keyed by ``(kind, key)``.

    Safe for several processes and hosts sharing one directory: writes are atomic renames of
    identical content, so concurrent writers of the same key cannot produce a partial file.
    """

    def __init__(self, root: Path | str, max_bytes: int | None = None):
        self.root = Path(root)
        self.max_bytes = max_bytes
        private_dir(self.root)
        self._verified: dict[Path, tuple[int, int]] = {}
        self._touched: dict[Path, float] = {}

    def _paths(self, kind: str, key: str) -> tuple[Path, Path]:
        if not key.isalnum() or not kind.replace("_", "").isalnum():
            raise ValueError(f"invalid artifact name {kind}/{key}")
        folder = self.root / kind / key[:2]
        return folder / f"{key}.npy", folder / f"{key}.json"

    def claim_path(self, kind: str, key: str) -> Path:
        """The lock file of the artifact's claim (compute/engine/claims.py), beside its files."""
        array_path, _ = self._paths(kind, key)
        private_dir(array_path.parent, tighten=False)
        return array_path.with_suffix(".lock")

    def has(self, kind: str, key: str) -> bool:
        array_path, meta_path = self._paths(kind, key)
        return meta_path.exists() and array_path.exists()

    def put(self, kind: str, key: str, array: np.ndarray, meta: dict[str, Any] | None = None) -> None:
        """Store ``array`` (any numeric dtype, never object) with JSON-serialisable ``meta``."""
        with self.writing() as writes:
            writes.put(kind, key, array, meta)

    def writing(self) -> "Writes":
        """Puts made together (``with store.writing() as writes: writes.put(...)``): each
        artifact is committed as :meth:`put` commits it, all of them when the block ends (also
        when it ends by an exception: what was put is whole), their files synced to the disk
        together rather than one after another."""
        return Writes(self)

    def meta(self, kind: str, key: str) -> dict[str, Any]:
        """The metadata record of an artifact; ``KeyError`` when it is missing."""
        _, meta_path = self._paths(kind, key)
        try:
            return json.loads(meta_path.read_text())
        except FileNotFoundError:
            raise KeyError(f"{kind}/{key}") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            self.delete(kind, key)
            raise CorruptArtifact(f"{kind}/{key}: unreadable metadata; deleted") from None

    def get(self, kind: str, key: str, mmap: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
        """Return ``(array, meta)``; the array is memory-mapped read-only when ``mmap``.

        The file's size is checked on every read and its SHA-256 once per process and file
        version, so a cached read costs no more than opening the map. A mismatch deletes the
        artifact and raises :class:`CorruptArtifact`.
        """
        record = self.meta(kind, key)
        array_path, meta_path = self._paths(kind, key)
        try:
            stat = array_path.stat()
        except FileNotFoundError:
            self.delete(kind, key)
            raise KeyError(f"{kind}/{key}") from None
        version = (stat.st_size, stat.st_mtime_ns)
        if stat.st_size != record["bytes"]:
            self._corrupt(kind, key, f"size {stat.st_size} != {record['bytes']}")
        if self._verified.get(array_path) != version:
            if _file_sha256(array_path) != record["sha256"]:
                self._corrupt(kind, key, "checksum mismatch")
            self._verified[array_path] = version
        try:
            array = np.load(array_path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError) as error:
            self._corrupt(kind, key, f"unreadable array ({error})")
        self._touch(meta_path)
        return array, record["meta"]

    def _corrupt(self, kind: str, key: str, why: str):
        self.delete(kind, key)
        raise CorruptArtifact(f"{kind}/{key}: {why}; deleted, it will be recomputed")

    def _touch(self, meta_path: Path) -> None:
        now = time.time()
        if now - self._touched.get(meta_path, 0.0) > _TOUCH_EVERY_S:
            self._touched[meta_path] = now
            try:
                os.utime(meta_path)
            except OSError:
                pass

    def delete(self, kind: str, key: str) -> None:
        array_path, meta_path = self._paths(kind, key)
        meta_path.unlink(missing_ok=True)
        array_path.unlink(missing_ok=True)
        self._verified.pop(array_path, None)

    def _records(self):
        """``(last_used, bytes, kind, key)`` of every committed artifact."""
        for meta_path in self.root.glob("*/??/*.json"):
            array_path = meta_path.with_suffix(".npy")
            try:
                yield (
                    meta_path.stat().st_mtime,
                    array_path.stat().st_size + meta_path.stat().st_size,
                    meta_path.parent.parent.name,
                    meta_path.stem,
                )
            except FileNotFoundError:
                continue

    def total_bytes(self) -> int:
        return sum(record[1] for record in self._records())

    def evict(self, max_bytes: int) -> list[str]:
        """Delete least-recently-used artifacts until the store holds at most ``max_bytes``."""
        records = sorted(self._records())
        total = sum(record[1] for record in records)
        evicted = []
        for _, size, kind, key in records:
            if total <= max_bytes:
                break
            self.delete(kind, key)
            total -= size
            evicted.append(key)
        return evicted

    def sweep_temp(self, older_than_s: float = _STALE_TEMP_S) -> int:
        """Remove temp files left by writers that died; returns how many were removed."""
        cutoff = time.time() - older_than_s
        removed = 0
        for tmp in self.root.glob(f"*/??/*{_TEMP_SUFFIX}"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


class Writes:
    """Artifacts put together (:meth:`ArtifactStore.writing`): each one's array and metadata go
    to temp files as it is put; when the block ends every temp file is synced (at once), each
    array renamed into place and then its metadata (the commit mark), and their folders synced.
    An artifact is thus stored exactly as a lone put stores it, and none is visible before the end."""

    def __init__(self, store: ArtifactStore):
        self.store = store
        self._pending: list[tuple[Path, Path, Path, Path]] = []  # (array tmp, array, meta tmp, meta)

    def __enter__(self) -> "Writes":
        return self

    def put(self, kind: str, key: str, array: np.ndarray, meta: dict[str, Any] | None = None) -> None:
        array = np.ascontiguousarray(array)
        if array.dtype == object:
            raise TypeError("artifacts hold numeric arrays only (no pickled objects)")
        array_path, meta_path = self.store._paths(kind, key)
        private_dir(array_path.parent, tighten=False)
        temps = []
        try:
            writer_box: list[_HashingWriter] = []

            def write_array(handle):
                writer_box.append(_HashingWriter(handle))
                np.lib.format.write_array(writer_box[0], array, allow_pickle=False)

            temps.append(_write_temp(array_path, write_array))
            record = {"kind": kind, "key": key, "shape": list(array.shape), "dtype": str(array.dtype),
                      "bytes": temps[0].stat().st_size, "sha256": writer_box[0].sha256.hexdigest(),
                      "created": time.time(), "meta": meta or {}}
            payload = json.dumps(record, sort_keys=True).encode()
            temps.append(_write_temp(meta_path, lambda handle: handle.write(payload)))
        except OSError as error:
            for tmp in temps:
                tmp.unlink(missing_ok=True)
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise DiskFull(error.errno, f"disk full: no space left on the device of the cache "
                           f"directory {self.store.root} while writing {kind}/{key}; free some space there "
                           "or lower REPSCOPE_CACHE_MAX_BYTES") from error
        self._pending.append((temps[0], array_path, temps[1], meta_path))

    def __exit__(self, *exc) -> None:
        pending, self._pending = self._pending, []
        try:
            _fsync_all(tmp for array_tmp, _, meta_tmp, _ in pending for tmp in (array_tmp, meta_tmp))
            for array_tmp, array_path, meta_tmp, meta_path in pending:
                os.replace(array_tmp, array_path)
                os.replace(meta_tmp, meta_path)
            _fsync_all(array_path.parent for _, array_path, _, _ in pending)
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise DiskFull(error.errno, f"disk full: no space left on the device of the cache directory "
                           f"{self.store.root}; free some space there or lower REPSCOPE_CACHE_MAX_BYTES") from error
        finally:
            for array_tmp, _, meta_tmp, _ in pending:
                array_tmp.unlink(missing_ok=True)
                meta_tmp.unlink(missing_ok=True)
        if pending and self.store.max_bytes:
            self.store.evict(self.store.max_bytes)
