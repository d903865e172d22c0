"""Job limits against real components: a per-client submission cap, the Celery job time
limit, and a Redis restart that loses a queued backlog (a real redis-server and real ``celery
worker`` processes; nothing of ours is mocked)."""

from compute.engine import artifacts
from compute.engine.jobs import CeleryBackend
from compute.engine.limits import TooManyJobs
from tests.integration.backends import celery_worker, slow_spec, stimuli, three_models
from tests.support import start_redis, stop_process, wait_until


def test_submission_flood_from_one_client_is_refused_while_another_is_accepted(redis_url, cache_dir,
                                                                                zoo_dir):
    # No worker yet: every accepted job stays queued, so it counts against its client.
    backend = CeleryBackend(cache_dir, redis_url, jobs_per_client=3)
    specs = [artifacts.rdm_spec(model, stimuli(), method=method)
             for model in three_models() for method in ("correlation", "euclidean")]
    accepted, refused = [], []
    for spec in specs[:5]:
        try:
            accepted.append(backend.submit(spec, client="10.0.0.1"))
        except TooManyJobs as error:
            refused.append(error)
    assert accepted == [spec.key for spec in specs[:3]]
    assert len(refused) == 2
    assert all(error.http_status == 429 for error in refused)
    assert "REPSCOPE_JOBS_PER_CLIENT=3" in str(refused[0]) and "3 jobs queued or running" in str(refused[0])
    assert all(backend.status(spec.key)["state"] == "missing" for spec in specs[3:5])  # nothing queued

    other = backend.submit(specs[5], client="10.0.0.2")
    assert other == specs[5].key and backend.status(other)["state"] == "queued"
    assert backend.submit(specs[0], client="10.0.0.1") == specs[0].key  # joining one of its own is fine
    backend.close()


def test_job_past_its_time_limit_fails_with_the_reason_and_the_worker_runs_the_next(
        redis_url, cache_dir, zoo_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("REPSCOPE_JOB_TIME_LIMIT", "2")
    worker = celery_worker(redis_url, cache_dir, zoo_dir, tmp_path / "worker.log")
    backend = CeleryBackend(cache_dir, redis_url)
    try:
        spec = slow_spec()
        key = backend.submit(spec)
        status = wait_until(lambda: (s := backend.status(key))["state"] not in ("queued", "running") and s,
                            240, "the slow job to stop")
        assert status["state"] == "failed", status
        assert "time limit of 2 s" in status["message"] and "REPSCOPE_JOB_TIME_LIMIT" in status["message"]
        assert status["retryable"] is False
        assert backend.result(spec) is None
        assert list(backend.store.root.glob("activations/??/*")) == []  # no partial artifact

        # The next job: an RDM whose activations are made here first, so that it stays well within
        # the 2 s even on two loaded cores (made whole in the worker, it took 2 s there once).
        quick = artifacts.rdm_spec(three_models()[0], stimuli())
        artifacts.ensure(quick.inputs[0], backend.store)
        assert backend.compute(quick, timeout=180).shape == (500 * 499 // 2,)
        assert worker.poll() is None
    finally:
        backend.close()
        stop_process(worker)
        print((tmp_path / "worker.log").read_text()[-3000:])


def test_queued_backlog_completes_after_redis_restarts_and_loses_the_queue(cache_dir, zoo_dir, tmp_path,
                                                                          monkeypatch):
    import redis

    from tests.support import free_port

    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    monkeypatch.setenv("REDIS_URL", redis_url)
    server = start_redis(port, tmp_path)
    worker = None
    try:
        backend = CeleryBackend(cache_dir, redis_url)
        specs = [artifacts.rdm_spec(model, stimuli()) for model in three_models()]
        keys = [backend.submit(spec) for spec in specs]  # no worker yet: a queued backlog
        assert [backend.status(key)["state"] for key in keys] == ["queued"] * 3

        server.terminate()  # restarted without persistence: the queue and the job records are gone
        server.wait(10)
        server = start_redis(port, tmp_path)
        assert redis.Redis(port=port).dbsize() == 0

        worker = celery_worker(redis_url, cache_dir, zoo_dir, tmp_path / "worker.log")
        for spec in specs:
            status = wait_until(lambda: (s := backend.status(spec.key))["state"] not in ("queued", "running")
                                and s, 180, "a job of the backlog")
            assert status["state"] == "done", status
            assert backend.result(spec).shape == (500 * 499 // 2,)
        assert all(backend.records.get(key)["attempts"] == 1 for key in keys)
        backend.close()
    finally:
        if worker is not None:
            stop_process(worker)
            print((tmp_path / "worker.log").read_text()[-3000:])
        server.terminate()
        server.wait(10)
