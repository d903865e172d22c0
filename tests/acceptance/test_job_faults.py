"""Jobs survive faults, against both backends: a worker killed mid-job, duplicate concurrent
submissions, corrupt artifacts, and (embedded) a corrupt job-state index.

These are the fault tests of the job layer, in one place; tests/integration/test_jobs.py
covers the ordinary job life (results, caching, bad input, cancel).
"""
import errno
import json
import os
import signal
import threading

import numpy as np
import pytest

from compute.engine import artifacts
from compute.engine.jobs import EmbeddedBackend
from compute.engine.store import ArtifactStore
from tests.integration.backends import SLOW_N, artifact_files, slow_spec, stimuli, three_models
from tests.integration.backends import backend  # noqa: F401 - the fixture
from tests.support import wait_until


class PartialFileWatch(threading.Thread):
    """Polls an artifact store while jobs run; records any final-named file that is partial."""

    def __init__(self, root):
        super().__init__(daemon=True)
        self.root, self.problems, self.looks = root, [], 0
        self._stop_flag = threading.Event()

    def run(self):
        while not self._stop_flag.is_set():
            for path in self.root.glob("*/??/*"):
                try:
                    if path.suffix == ".npy":
                        np.load(path, mmap_mode="r", allow_pickle=False)
                    elif path.suffix == ".json":
                        json.loads(path.read_text())
                except FileNotFoundError:
                    continue
                except Exception as error:  # noqa: BLE001 - any unreadable final file is the failure
                    self.problems.append(f"{path.name}: {error}")
            self.looks += 1
            self._stop_flag.wait(0.02)

    def stop(self):
        self._stop_flag.set()
        self.join()


def test_worker_killed_mid_job_completes_once_with_one_whole_artifact(backend, tmp_path):
    spec = slow_spec()
    watch = PartialFileWatch(backend.store.root)
    watch.start()
    key = backend.submit(spec)
    first = wait_until(lambda: (r := backend.records.get(key))["progress"] > 0 and r, 120, "one batch")
    assert first["state"] == "running" and first["progress"] < 1
    os.kill(int(first["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
    status = wait_until(lambda: (s := backend.status(key))["state"] not in ("queued", "running") and s,
                        180, "the job after its worker was killed")
    watch.stop()
    assert status["state"] == "done", status
    record = backend.records.get(key)
    assert record["attempts"] == 2 and record["worker"] != first["worker"]
    assert [p.name for p in artifact_files(backend.store, spec)] == [f"{key}.json", f"{key}.npy"]
    assert len(list(backend.store.root.glob("*/??/*.npy"))) == 1
    assert watch.looks > 10 and watch.problems == []
    assert backend.result(spec).shape == (SLOW_N, 512)


def test_identical_concurrent_submissions_share_one_computation(backend):
    spec = artifacts.mds_spec(artifacts.model_rdm_spec(three_models(), stimuli(), compare_method="euclidean"))
    keys = []
    threads = [threading.Thread(target=lambda: keys.append(backend.submit(spec))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(keys) == {spec.key}
    wait_until(lambda: backend.status(spec.key)["state"] == "done", 180, "the shared job")
    assert backend.records.get(spec.key)["attempts"] == 1
    assert backend.result(spec).shape == (3, 2)


def _flip_last_bytes(store, spec):
    path = store.root / spec.kind / spec.key[:2] / f"{spec.key}.npy"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x55
    path.write_bytes(bytes(data))


def test_corrupt_artifact_is_detected_and_recomputed(backend):
    spec = artifacts.model_rdm_spec(three_models(), stimuli())
    first = np.array(backend.compute(spec, timeout=180))
    rdm = spec.inputs[0]
    _flip_last_bytes(backend.store, rdm)
    fresh = ArtifactStore(backend.store.root)  # as another process would read it
    with pytest.raises(Exception, match="checksum"):
        fresh.get(rdm.kind, rdm.key)
    backend.store.delete(spec.kind, spec.key)  # the model RDM must now be rebuilt from a good RDM
    np.testing.assert_allclose(backend.compute(spec, timeout=180), first, atol=1e-7)
    assert fresh.get(rdm.kind, rdm.key)[0].shape == (500 * 499 // 2,)


def _garble(path):
    path.write_bytes(os.urandom(path.stat().st_size or 4096))


def test_corrupt_artifact_and_corrupt_job_index_are_rebuilt_and_recomputed(cache_dir, zoo_dir, caplog):
    spec = artifacts.model_rdm_spec(three_models(), stimuli())
    backend = EmbeddedBackend(cache_dir)
    first = np.array(backend.compute(spec, timeout=180))
    backend.close()
    _flip_last_bytes(backend.store, spec)
    _garble(cache_dir / "jobs" / "cache.db")

    backend = EmbeddedBackend(cache_dir)  # as after a restart
    assert "job state index" in caplog.text and "corrupt" in caplog.text
    assert len(list(cache_dir.glob("jobs.corrupt-*"))) == 1
    assert backend.result(spec) is None  # the checksum caught it; the artifact is gone
    np.testing.assert_allclose(backend.compute(spec, timeout=180), first, atol=1e-7)
    assert backend.records.get(spec.key)["attempts"] == 1

    _garble(cache_dir / "jobs" / "cache.db")  # now under a running backend
    assert backend.status(spec.key)["state"] == "done"  # read from the store, index rebuilt
    backend.store.delete(spec.kind, spec.key)
    np.testing.assert_allclose(backend.compute(spec, timeout=180), first, atol=1e-7)
    assert len(list(cache_dir.glob("jobs.corrupt-*"))) == 2
    backend.close()


def test_disk_full_while_writing_an_artifact_fails_the_job_clearly_and_keeps_earlier_ones(
        cache_dir, zoo_dir, monkeypatch):
    from compute.engine import store as store_module
    from compute.engine.worker import run_job

    backend = EmbeddedBackend(cache_dir)
    earlier = artifacts.rdm_spec(three_models()[0], stimuli())
    expected = np.array(backend.compute(earlier, timeout=180))
    backend.close()

    # The disk fills mid-write: the worker's low-level write gets half its bytes out, then ENOSPC.
    real_write = store_module._HashingWriter.write

    def write_until_full(self, data):
        real_write(self, bytes(data)[: max(1, len(data) // 2)])
        raise OSError(errno.ENOSPC, "No space left on device")

    spec = artifacts.rdm_spec(three_models()[0], stimuli(), method="euclidean")  # cached activations
    backend = EmbeddedBackend(cache_dir)
    with monkeypatch.context() as patch:
        patch.setattr(store_module._HashingWriter, "write", write_until_full)
        worker_store = ArtifactStore(backend.store.root)
        assert run_job(spec.to_json(), backend.records, worker_store) == "failed"  # the worker-side call
        status = backend.status(spec.key)
        assert status["state"] == "failed"
        assert "disk full" in status["message"] and str(backend.store.root) in status["message"]
        assert list(backend.store.root.rglob("*.tmp")) == []
        assert artifact_files(backend.store, spec) == []

    fresh = ArtifactStore(backend.store.root)
    np.testing.assert_array_equal(fresh.get(earlier.kind, earlier.key)[0], expected)
    assert backend.compute(spec, timeout=180).shape == expected.shape  # space freed: it completes
    backend.close()


def test_bad_activations_fail_naming_the_model_and_layer_and_cache_nothing(backend):
    from compute.engine.artifacts import Spec, activations_spec, rdm_spec

    model, digits = three_models()[0], stimuli()
    rng = np.random.default_rng(0)
    nan = rng.normal(size=(50, 16)).astype(np.float32)
    nan[7, 3] = np.nan
    bad = {  # layer name -> stored activations an RDM step cannot use
        "nan-layer": (nan, "nan"),
        "constant-layer": (np.ones((50, 16), np.float32), "constant"),
        "tiny-layer": (rng.normal(size=(2, 16)).astype(np.float32), "at least 3"),
    }
    cases = []
    for layer, (array, says) in bad.items():
        acts = activations_spec(model, digits, layer)
        backend.store.put(acts.kind, acts.key, array, {"layer": layer})
        cases.append((rdm_spec(model, digits, layer), layer, says))
    stale = Spec("activations", {"model": model, "stimuli": "0" * 40, "layer": "penultimate", "pooling": "none"},
                 locate={"stimuli": digits.name})  # the stimulus set changed since it was asked for
    cases.append((Spec("rdm", {"method": "correlation"}, (stale,)), "penultimate", "changed"))

    for spec, _, _ in cases:
        backend.submit(spec)
    for spec, layer, says in cases:
        status = wait_until(lambda: (s := backend.status(spec.key))["state"] not in ("queued", "running") and s,
                            180, f"the job on {layer}")
        assert status["state"] == "failed", status
        message = status["message"]
        assert message.startswith(f"model {model}, layer {layer!r}"), message
        assert says in message.lower(), message
        assert status["retryable"] is False
        assert not backend.store.has(spec.kind, spec.key)
    assert not backend.store.has(stale.kind, stale.key)
    assert list(backend.store.root.rglob("*.tmp")) == []
