"""The same job suite against both backends: embedded (spawned pool) and Celery on real Redis."""
import sys
import threading

import numpy as np
import pytest

import compute
from compute.engine import artifacts
from compute.engine.jobs import CeleryBackend, EmbeddedBackend
from tests.support import start_process, stop_process, wait_until


@pytest.fixture(params=["embedded", "celery"])
def backend(request, cache_dir, zoo_dir, tmp_path):
    if request.param == "embedded":
        backend = EmbeddedBackend(cache_dir, workers=1)
        yield backend
        backend.close()
        return
    redis_url = request.getfixturevalue("redis_url")
    env = {"REDIS_URL": redis_url, "REPSCOPE_CACHE_DIR": str(cache_dir), "REPSCOPE_ZOO_DIR": str(zoo_dir)}
    request.getfixturevalue("monkeypatch").setenv("REDIS_URL", redis_url)
    worker = start_process(
        [sys.executable, "-m", "celery", "-A", "compute.engine.tasks", "worker", "-Q", "gpu,cpu",
         "-c", "1", "--pool", "prefork", "--loglevel", "INFO", "-n", "test@%h"],
        env, tmp_path / "worker.log",
    )
    backend = CeleryBackend(cache_dir, redis_url)
    yield backend
    stop_process(worker)
    print((tmp_path / "worker.log").read_text()[-3000:])


def three_models():
    from compute.sources.models import list_models

    models = [m for m in list_models("digits") if m.accuracy is not None]
    return [models[0].key, models[len(models) // 2].key, models[-1].key]


def stimuli():
    from compute.sources.stimuli import get_stimulus_set

    return get_stimulus_set("digits")


def test_job_computes_the_same_numbers_as_the_api(backend):
    keys = three_models()
    spec = artifacts.model_rdm_spec(keys, stimuli(), compare_method="spearman")
    result = backend.compute(spec, timeout=180)
    assert result.shape == (3, 3)
    assert backend.status(spec.key)["state"] == "done"

    from compute.sources.activations import extract
    from compute.sources.models import list_layers, load_model

    rdms = []
    for key in keys:
        model = load_model(key)
        layer = next(info.name for info in list_layers(model) if info.penultimate)
        rdms.append(compute.rdm(extract(model, stimuli().images, [layer])[layer], condensed=True))
    np.testing.assert_allclose(result, compute.model_rdm(np.stack(rdms)), atol=1e-6)
    for dependency in spec.walk():
        assert backend.store.has(dependency.kind, dependency.key)


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
    assert backend.states.get(spec.key)["attempts"] == 1
    assert backend.result(spec).shape == (3, 2)


def test_cached_artifact_needs_no_job(backend):
    spec = artifacts.model_rdm_spec(three_models()[:2] + three_models()[:1], stimuli())
    backend.compute(spec, timeout=180)
    records_before = dict(backend.states.records())
    assert backend.submit(spec) == spec.key
    assert dict(backend.states.records()) == records_before


def test_bad_input_fails_with_the_reason(backend):
    spec = artifacts.model_rdm_spec(three_models(), stimuli(), layer="no_such_layer")
    key = backend.submit(spec)
    status = wait_until(lambda: (s := backend.status(key))["state"] in ("failed", "done") and s, 180, "failure")
    assert status["state"] == "failed"
    assert "no_such_layer" in status["message"]
    assert not backend.store.has(spec.kind, spec.key)


def test_corrupt_artifact_is_detected_and_recomputed(backend, cache_dir):
    spec = artifacts.model_rdm_spec(three_models(), stimuli())
    first = np.array(backend.compute(spec, timeout=180))
    rdm = spec.inputs[0]
    path = backend.store.root / rdm.kind / rdm.key[:2] / f"{rdm.key}.npy"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x55
    path.write_bytes(bytes(data))
    from compute.engine.store import ArtifactStore

    fresh = ArtifactStore(backend.store.root)  # as another process would read it
    with pytest.raises(Exception, match="checksum"):
        fresh.get(rdm.kind, rdm.key)
    backend.store.delete(spec.kind, spec.key)  # the model RDM must now be rebuilt from a good RDM
    np.testing.assert_allclose(backend.compute(spec, timeout=180), first, atol=1e-7)
    assert fresh.get(rdm.kind, rdm.key)[0].shape == (500 * 499 // 2,)
