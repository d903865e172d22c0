"""The same job suite against both backends: embedded (spawned pool) and Celery on real Redis.

Faults (a killed worker, duplicate submissions, corrupt artifacts and job state) are tested
in tests/acceptance/test_job_faults.py.
"""
import numpy as np

import compute
from compute.engine import artifacts
from tests.integration.backends import BATCH, SLOW_N, artifact_files, slow_spec, stimuli, three_models
from tests.integration.backends import backend  # noqa: F401 - the fixture
from tests.support import wait_until


def test_job_computes_the_same_numbers_as_the_api(backend):
    keys = three_models()
    spec = artifacts.model_rdm_spec(keys, stimuli(), compare_method="spearman")
    result = backend.compute(spec, timeout=180)
    assert result.shape == (3, 3)
    assert backend.status(spec.key)["state"] == "done"

    from compute.sources.activations import extract
    from compute.sources.layers import list_layers
    from compute.sources.models import load_model

    rdms = []
    for key in keys:
        model = load_model(key)
        layer = next(info.name for info in list_layers(model) if info.penultimate)
        rdms.append(compute.rdm(extract(model, stimuli().images, [layer])[layer], condensed=True))
    np.testing.assert_allclose(result, compute.model_rdm(np.stack(rdms)), atol=1e-6)
    for dependency in spec.walk():
        assert backend.store.has(dependency.kind, dependency.key)


def test_cached_artifact_needs_no_job(backend):
    spec = artifacts.model_rdm_spec(three_models()[:2] + three_models()[:1], stimuli())
    backend.compute(spec, timeout=180)
    records_before = dict(backend.records.items())
    assert backend.submit(spec) == spec.key
    assert dict(backend.records.items()) == records_before


def test_bad_input_fails_with_the_reason(backend):
    spec = artifacts.model_rdm_spec(three_models(), stimuli(), layer="no_such_layer")
    key = backend.submit(spec)
    status = wait_until(lambda: (s := backend.status(key))["state"] in ("failed", "done") and s, 180, "failure")
    assert status["state"] == "failed"
    assert "no_such_layer" in status["message"]
    assert not backend.store.has(spec.kind, spec.key)


def test_cancel_stops_within_one_batch_and_a_queued_job_never_starts(backend, tmp_path):
    slow = slow_spec()
    queued = artifacts.model_rdm_spec(three_models(), stimuli())
    backend.submit(slow)
    backend.submit(queued)  # behind the slow job: one worker
    running = wait_until(lambda: (r := backend.records.get(slow.key))["progress"] > 0 and r, 120, "one batch")
    backend.cancel(queued.key)
    backend.cancel(slow.key)
    assert backend.status(queued.key)["state"] == "cancelled"
    final = wait_until(lambda: (r := backend.records.get(slow.key))["state"] != "running" and r, 60, "the stop")
    assert final["state"] == "cancelled" and final["retryable"]
    assert final["progress"] <= running["progress"] + BATCH / SLOW_N + 1e-3 < 1  # progress is rounded
    assert artifact_files(backend.store, slow) == []
    # Cancelled jobs can be asked for again (Celery must not drop them as revoked).
    np.testing.assert_allclose(backend.compute(queued, timeout=180), compute.model_rdm(np.stack(
        [backend.store.get("rdm", rdm.key)[0] for rdm in queued.inputs])), atol=1e-6)
    assert backend.records.get(queued.key)["attempts"] == 1


def test_jobs_lists_the_recent_records_newest_first_with_their_times(backend):
    done_spec = artifacts.model_rdm_spec(three_models()[:2], stimuli())
    failing = artifacts.model_rdm_spec(three_models(), stimuli(), layer="no_such_layer")
    backend.compute(done_spec, timeout=180)
    # compute() returns once the artifact is stored; the worker records "done" a moment later.
    wait_until(lambda: backend.records.get(done_spec.key)["state"] == "done", 60, "the done record")
    backend.submit(failing)
    wait_until(lambda: backend.status(failing.key)["state"] == "failed", 180, "the failure")
    jobs = backend.jobs()
    assert [job["key"] for job in jobs] == [failing.key, done_spec.key]
    failed, done = jobs
    assert (done["kind"], done["state"], done["progress"]) == ("model_rdm", "done", 1.0)
    assert done["spec"] == done_spec.to_json()
    assert failed["state"] == "failed" and "no_such_layer" in failed["message"]
    assert done["submitted"] <= done["started"] <= done["finished"] <= failed["submitted"]
    assert failed["started"] <= failed["finished"]
    assert backend.jobs(limit=1) == jobs[:1]
