"""Backend life cycle: restarts, a Redis that is down, the choice of backend, stale deliveries."""
import socket
from pathlib import Path

import numpy as np
import pytest

from compute.engine.artifacts import Spec
from compute.engine.jobs import EmbeddedBackend, make_backend
from compute.engine.records import DiskRecords
from compute.engine.worker import MAX_ATTEMPTS, run_job
from compute.engine.store import ArtifactStore
from compute.settings import get_settings


def test_restart_marks_interrupted_jobs_failed_and_retryable(cache_dir):
    states = DiskRecords(cache_dir / "jobs")
    states.put("abc", {"state": "running", "kind": "rdm", "owner": "previous-run", "progress": 0.4})
    backend = EmbeddedBackend(cache_dir)
    status = backend.status("abc")
    assert status["state"] == "failed" and status["retryable"]
    assert "restart" in status["message"]
    backend.close()


def test_a_second_process_on_the_same_cache_leaves_the_live_one_s_jobs_alone(cache_dir):
    """Several gunicorn workers share one embedded cache: a worker starting its backend must
    not fail jobs another live worker runs; a dead one's (or a reused pid's) are interrupted."""
    import subprocess
    import sys

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = Path(f"/proc/{other.pid}/stat").read_text().rpartition(")")[2].split()[19]
        host = socket.gethostname()
        states = DiskRecords(cache_dir / "jobs")
        states.put("live", {"state": "running", "kind": "rdm", "owner": f"{host}:{other.pid}:{started}:x"})
        states.put("reused", {"state": "running", "kind": "rdm", "owner": f"{host}:{other.pid}:1:x"})
        states.close()
        backend = EmbeddedBackend(cache_dir)
        assert backend.status("live")["state"] == "running"
        assert backend.status("reused")["state"] == "failed"
        backend.close()
    finally:
        other.kill()
        other.wait()
    backend = EmbeddedBackend(cache_dir)
    assert backend.status("live")["state"] == "failed"
    backend.close()


def test_without_redis_url_the_embedded_backend_is_used(cache_dir, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    backend = make_backend(get_settings())
    assert backend.name == "embedded"
    backend.close()


def test_redis_down_is_a_clear_error_without_the_password(cache_dir, monkeypatch):
    from tests.support import free_port

    monkeypatch.setenv("REDIS_URL", f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    with pytest.raises(RuntimeError, match="Redis does not answer") as error:
        make_backend(get_settings())
    assert "hunter2" not in str(error.value)
    assert "unset REDIS_URL" in str(error.value)


def _stored_rdm_job(cache_dir):
    store = ArtifactStore(cache_dir / "artifacts")
    acts = Spec("activations", {"model": "m", "stimuli": "s", "layer": "x", "pooling": "none"})
    store.put(acts.kind, acts.key, np.random.default_rng(0).random((5, 3), dtype=np.float32))
    return Spec("rdm", {"method": "euclidean"}, (acts,)), store, DiskRecords(cache_dir / "jobs")


def test_a_stale_delivery_of_a_resubmitted_job_does_nothing(cache_dir):
    spec, store, states = _stored_rdm_job(cache_dir)
    states.put(spec.key, {"state": "queued", "attempts": 0, "task": "second"})
    assert run_job(spec.to_json(), states, store, task="first") == "superseded"
    assert states.get(spec.key)["state"] == "queued" and not store.has(spec.kind, spec.key)
    assert run_job(spec.to_json(), states, store, task="second") == "done"


def test_a_job_whose_worker_keeps_dying_gives_up_after_max_attempts(cache_dir):
    spec, store, states = _stored_rdm_job(cache_dir)
    states.put(spec.key, {"state": "running", "attempts": MAX_ATTEMPTS, "task": "t"})  # died each time
    assert run_job(spec.to_json(), states, store, task="t") == "failed"
    record = states.get(spec.key)
    assert record["retryable"] and f"gave up after {MAX_ATTEMPTS} attempts" in record["message"]
    assert not store.has(spec.kind, spec.key)
