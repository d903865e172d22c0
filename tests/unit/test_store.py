"""The artifact store: atomic, checksummed, never pickled, evicts least recently used."""
import os
import stat
import time

import numpy as np
import pytest

from compute.engine.store import ArtifactStore, CorruptArtifact


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(tmp_path / "artifacts")


def test_round_trip_keeps_values_dtype_and_meta(store):
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    store.put("rdm", "abc123", array, {"n": 3})
    loaded, meta = store.get("rdm", "abc123")
    np.testing.assert_array_equal(loaded, array)
    assert loaded.dtype == np.float32 and meta == {"n": 3}
    assert isinstance(loaded, np.memmap) and not loaded.flags.writeable


def test_root_is_private(store):
    assert stat.S_IMODE(os.stat(store.root).st_mode) == 0o700


def test_missing_artifact_is_a_key_error(store):
    assert not store.has("rdm", "nothere")
    with pytest.raises(KeyError):
        store.get("rdm", "nothere")


def test_object_arrays_are_refused(store):
    with pytest.raises(TypeError, match="numeric"):
        store.put("rdm", "obj", np.array([{"a": 1}], dtype=object))


def test_flipped_byte_is_detected_deleted_and_reported(tmp_path):
    writer = ArtifactStore(tmp_path / "a")
    writer.put("rdm", "k1", np.ones(1000, dtype=np.float32))
    path = tmp_path / "a" / "rdm" / "k1" / "k1.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    reader = ArtifactStore(tmp_path / "a")  # a fresh process has verified nothing yet
    with pytest.raises(CorruptArtifact, match="checksum"):
        reader.get("rdm", "k1")
    assert not reader.has("rdm", "k1")


def test_truncated_array_is_detected(store):
    store.put("rdm", "k2", np.ones(1000, dtype=np.float32))
    path = store.root / "rdm" / "k2" / "k2.npy"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CorruptArtifact, match="size"):
        store.get("rdm", "k2")
    assert not store.has("rdm", "k2")


def test_garbled_metadata_is_detected(store):
    store.put("rdm", "k3", np.ones(3))
    (store.root / "rdm" / "k3" / "k3.json").write_text("{not json")
    with pytest.raises(CorruptArtifact):
        store.get("rdm", "k3")


def test_unsafe_names_are_refused(store):
    for kind, key in [("rdm", "../x"), ("../rdm", "abc"), ("rdm", "a/b")]:
        with pytest.raises(ValueError):
            store.has(kind, key)


def test_eviction_removes_least_recently_used_first(store):
    for index, key in enumerate(["old", "mid", "new"]):
        store.put("rdm", key, np.zeros(1000, dtype=np.float64))
        meta = store.root / "rdm" / key[:2] / f"{key}.json"
        os.utime(meta, (time.time() - 100 + index, time.time() - 100 + index))
    assert store.evict(store.total_bytes() - 1) == ["old"]
    assert store.has("rdm", "mid") and store.has("rdm", "new")


def test_size_limit_applies_on_put(tmp_path):
    store = ArtifactStore(tmp_path / "s", max_bytes=20_000)
    for index in range(5):
        store.put("rdm", f"key{index}", np.zeros(1000, dtype=np.float64))
        time.sleep(0.01)
    assert store.total_bytes() <= 20_000
    assert store.has("rdm", "key4")


def test_stale_temp_files_are_swept_and_fresh_ones_kept(store):
    folder = store.root / "rdm" / "ab"
    folder.mkdir(parents=True)
    stale, fresh = folder / "abc.npy.1.2.tmp", folder / "abd.npy.1.3.tmp"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    assert store.sweep_temp() == 1
    assert not stale.exists() and fresh.exists()
