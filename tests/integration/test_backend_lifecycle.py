"""Backend life cycle: restarts, a Redis that is down, the choice of backend."""
import pytest

from compute.engine.jobs import DiskStates, EmbeddedBackend, make_backend
from compute.settings import get_settings


def test_restart_marks_interrupted_jobs_failed_and_retryable(cache_dir):
    states = DiskStates(cache_dir / "jobs")
    states.put("abc", {"state": "running", "kind": "rdm", "owner": "previous-run", "progress": 0.4})
    backend = EmbeddedBackend(cache_dir)
    status = backend.status("abc")
    assert status["state"] == "failed" and status["retryable"]
    assert "restart" in status["message"]
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
