"""Limits: jobs per client and the pre-flight memory estimate, refused before anything is queued."""
import numpy as np
import pytest

from compute.engine import artifacts
from compute.engine.artifacts import Spec
from compute.engine.jobs import CeleryBackend, EmbeddedBackend, make_backend
from compute.engine.limits import LimitExceeded, TooLarge, TooManyJobs, check_memory, job_steps
from compute.settings import get_settings


def acts(n_key: str = "x") -> Spec:
    return Spec("activations", {"model": n_key, "stimuli": "s", "layer": "conv1", "pooling": "none"})


def shapes(table):
    return lambda spec: table.get(spec.key)


def test_activations_over_budget_name_the_size_and_the_remedies():
    spec = acts()
    with pytest.raises(TooLarge) as error:
        check_memory(spec, 2**30, shapes({spec.key: (10_000, 200_704)}))
    message = str(error.value)
    assert "7.5 GiB" in message and "10,000 stimuli x 200,704 features" in message
    assert "1.0 GiB" in message and "REPSCOPE_MEMORY_BUDGET_BYTES" in message
    assert "n_per_class" in message and "pooling" in message and "proj:<k>" in message
    assert error.value.http_status == 413


def test_rdm_and_mds_grow_with_the_square_of_the_stimuli():
    a = acts()
    rdm = Spec("rdm", {"method": "correlation"}, (a,))
    mds = Spec("mds", {"method": "smacof", "seed": 0}, (rdm,))
    steps = {s.kind: s for s in job_steps(mds, shapes({a.key: (20_000, 512)}))}
    assert steps["rdm"].bytes == 20_000 * 512 * 4 + 20_000**2 * 4 + 20_000 * 19_999 // 2 * 4
    assert steps["mds"].bytes == 4 * 20_000**2 * 8  # the point count is read back from the condensed RDM
    with pytest.raises(TooLarge, match="MDS of 20,000 points.*fewer stimuli"):
        check_memory(mds, 8 * 2**30, shapes({a.key: (20_000, 512)}))


def test_within_budget_no_budget_or_unknown_sizes_pass():
    a = acts()
    model_rdm = Spec("model_rdm", {"method": "spearman"}, (Spec("rdm", {"method": "correlation"}, (a,)),))
    check_memory(model_rdm, 2**30, shapes({a.key: (500, 64)}))
    check_memory(model_rdm, 0, shapes({a.key: (10**6, 10**6)}))
    check_memory(model_rdm, 1, shapes({}))  # nothing known: the job itself will tell


def test_a_backend_refuses_from_stored_and_from_measured_shapes(cache_dir, zoo_dir):
    backend = EmbeddedBackend(cache_dir, memory_budget=2**20)
    stored = acts("stored")
    backend.store.put(stored.kind, stored.key, np.zeros((2_000, 4), dtype=np.float32))
    rdm = Spec("rdm", {"method": "euclidean"}, (stored,))
    with pytest.raises(TooLarge, match="RDM of 2,000 stimuli"):
        backend.submit(rdm)
    assert backend.records.get(rdm.key) is None  # nothing queued

    from compute.sources.models import list_models
    from compute.sources.stimuli import get_stimulus_set

    model = list_models("digits")[0]
    spec = artifacts.activations_spec(model.key, get_stimulus_set("digits"), layer="penultimate")
    backend.memory_budget = 100
    with pytest.raises(TooLarge, match="activations of 500 stimuli x [0-9,]+ features"):
        backend.submit(spec)
    backend.close()


def test_client_cap_counts_the_jobs_a_client_queued_until_they_end(cache_dir, redis_url):
    backend = CeleryBackend(cache_dir, redis_url, jobs_per_client=2)  # no worker: jobs stay queued
    specs = [Spec("rdm", {"method": "euclidean"}, (acts(str(i)),)) for i in range(4)]
    backend.submit(specs[0], client="10.0.0.1")
    backend.submit(specs[1], client="10.0.0.1")
    with pytest.raises(TooManyJobs) as error:
        backend.submit(specs[2], client="10.0.0.1")
    assert "2 jobs queued or running" in str(error.value) and "REPSCOPE_JOBS_PER_CLIENT=2" in str(error.value)
    assert isinstance(error.value, LimitExceeded) and error.value.http_status == 429
    assert backend.records.get(specs[2].key) is None
    backend.submit(specs[0], client="10.0.0.1")  # joining a queued job costs nothing
    backend.submit(specs[0], client="10.0.0.2")
    backend.submit(specs[2], client="10.0.0.2")  # another client has its own count
    backend.submit(specs[3])  # no client (the CLI): not counted
    backend.cancel(specs[1].key)  # frees one slot
    backend.submit(Spec("rdm", {"method": "cosine"}, (acts("5"),)), client="10.0.0.1")
    with pytest.raises(TooManyJobs):
        backend.submit(Spec("rdm", {"method": "cosine"}, (acts("6"),)), client="10.0.0.1")


def test_settings_feed_the_limits(cache_dir, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("REPSCOPE_JOBS_PER_CLIENT", "3")
    monkeypatch.setenv("REPSCOPE_MEMORY_BUDGET_BYTES", "123456")
    backend = make_backend(get_settings())
    assert (backend.jobs_per_client, backend.memory_budget) == (3, 123456)
    backend.close()
    monkeypatch.setenv("REPSCOPE_MEMORY_BUDGET_BYTES", "lots")
    with pytest.raises(ValueError, match="REPSCOPE_MEMORY_BUDGET_BYTES='lots' must be an integer"):
        get_settings()
