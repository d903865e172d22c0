"""The per-client job cap holds under concurrency: waves of 24 simultaneous submissions from one
client, with a cap of 4, never leave more than 4 of its jobs active, on the embedded backend
(diskcache) and on Celery with a real Redis (no worker: every accepted job stays queued)."""
import threading

import pytest

from compute.engine import artifacts
from compute.engine.jobs import CeleryBackend, EmbeddedBackend
from compute.engine.limits import TooManyJobs
from compute.engine.records import ACTIVE
from tests.integration.backends import ONE_LANE, slow_spec, stimuli

CAP = 4
CLIENTS = 24
WAVES = 10
CLIENT = "10.9.8.7"


def distinct_specs(count: int):
    """``count`` RDM specs that are all different jobs (models x methods of the digits zoo)."""
    from compute.sources.models import list_models

    models = list_models("digits")
    methods = ("correlation", "euclidean", "cosine", "sqeuclidean", "spearman")
    specs = [artifacts.rdm_spec(m.key, stimuli(), method=method) for m in models for method in methods]
    assert len(specs) >= count
    return specs[:count]


def wave(backend, specs) -> tuple[list, list]:
    """Submit ``specs`` from one client, all at once (one thread each, released together)."""
    barrier = threading.Barrier(len(specs))
    accepted, refused, errors = [], [], []

    def one(spec):
        barrier.wait()
        try:
            accepted.append(backend.submit(spec, client=CLIENT))
        except TooManyJobs:
            refused.append(spec.key)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(repr(error))

    threads = [threading.Thread(target=one, args=(spec,)) for spec in specs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    return accepted, refused


def active_jobs(backend, keys) -> int:
    return sum((backend.records.get(key) or {}).get("state") in ACTIVE for key in keys)


@pytest.mark.parametrize("kind", ["embedded", "celery"])
def test_simultaneous_submissions_never_exceed_the_client_cap(kind, cache_dir, zoo_dir, tmp_path, request):
    if kind == "embedded":
        backend = EmbeddedBackend(cache_dir, workers=1, jobs_per_client=CAP, long_job_seconds=ONE_LANE)
        # Its one worker (one lane) busy with another client's slow job: the accepted jobs stay queued.
        busy = backend.submit(slow_spec(), client="10.0.0.1")
    else:
        backend = CeleryBackend(cache_dir, request.getfixturevalue("redis_url"), jobs_per_client=CAP)
    specs = distinct_specs(CLIENTS * WAVES)
    for spec in specs[:CLIENTS]:  # the layer widths the memory pre-flight needs, learnt once
        backend.shape_of(spec.inputs[0])
    try:
        waves = []
        for n in range(WAVES):
            batch = specs[n * CLIENTS:(n + 1) * CLIENTS]
            accepted, refused = wave(backend, batch)
            waves.append((len(accepted), active_jobs(backend, [s.key for s in batch])))
            assert len(accepted) + len(refused) == CLIENTS
            for key in accepted:  # make room for the next wave
                backend.cancel(key)
        # Accepted: exactly the cap each wave; active: at most the cap (a queued job may have
        # run and ended once the busy worker was free).
        assert [accepted for accepted, _ in waves] == [CAP] * WAVES, f"(accepted, active) per wave: {waves}"
        assert max(active for _, active in waves) <= CAP, f"(accepted, active) per wave: {waves}"
    finally:
        if kind == "embedded":
            backend.cancel(busy)
        backend.close()
