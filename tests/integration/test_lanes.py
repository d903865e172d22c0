"""Two lanes: a job estimated long runs apart, so a short job submitted after it finishes while
it still runs (issue 19: the Training page's 2-second jobs waited 7 minutes behind a reference
fit). Both backends; Celery with one worker per lane, as docker-compose.yml runs them."""
import pytest

from compute.engine import artifacts
from compute.engine.jobs import CeleryBackend, EmbeddedBackend
from compute.engine.kinds import queue_of
from tests.integration.backends import celery_worker, slow_spec, stimuli, three_models
from tests.support import stop_process, wait_until


@pytest.fixture(params=["embedded", "celery"])
def laned(request, cache_dir, zoo_dir, tmp_path):
    """A backend with the default lanes and one worker process in each."""
    if request.param == "embedded":
        backend = EmbeddedBackend(cache_dir, workers=1)
        yield backend
        backend.close()
        return
    redis_url = request.getfixturevalue("redis_url")
    request.getfixturevalue("monkeypatch").setenv("REDIS_URL", redis_url)
    workers = [celery_worker(redis_url, cache_dir, zoo_dir, tmp_path / f"{lane}.log", queues)
               for lane, queues in (("interactive", "gpu,cpu"), ("long", "gpu-long,cpu-long"))]
    backend = CeleryBackend(cache_dir, redis_url)
    yield backend
    for worker in workers:
        stop_process(worker)


def test_a_short_job_never_waits_behind_a_long_one(laned):
    slow, short = slow_spec(), artifacts.rdm_spec(three_models()[0], stimuli())
    assert laned.lane_of(slow) == "long" and laned.lane_of(short) == "interactive"
    laned.submit(slow)
    wait_until(lambda: laned.records.get(slow.key)["state"] == "running", 120, "the long job to start")
    laned.submit(short)
    wait_until(lambda: laned.status(short.key)["state"] == "done", 120, "the short job")
    assert laned.records.get(slow.key)["state"] == "running"  # still: the short one did not wait
    assert laned.records.get(slow.key)["lane"] == "long"
    laned.cancel(slow.key)


def test_queues_of_the_lanes():
    assert queue_of("activations") == "gpu" and queue_of("activations", "long") == "gpu-long"
    assert queue_of("reference_fit", "long") == "cpu-long"
