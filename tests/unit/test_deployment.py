"""docker-compose.yml agrees with the code (Docker itself is not available on these machines)."""
import importlib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_volumes():
    assert set(COMPOSE["services"]) == {"web", "worker", "long-worker", "cpu-worker", "redis"}
    assert {"artifacts", "uploads"} <= set(COMPOSE["volumes"])


def test_web_serves_the_flask_app_that_app_py_exports():
    command = COMPOSE["services"]["web"]["command"]
    assert command.startswith("gunicorn") and command.endswith("app:server")
    assert "127.0.0.1:8050:8050" in COMPOSE["services"]["web"]["ports"]


def test_workers_run_our_celery_app_on_the_queues_the_code_routes_to():
    from compute.engine.jobs import LANES
    from compute.engine.kinds import KINDS, queue_of

    queues = set()
    for name in ("worker", "long-worker", "cpu-worker"):
        command = COMPOSE["services"][name]["command"].split()
        assert command[:3] == ["celery", "-A", "compute.engine.tasks"]
        importlib.import_module(command[2])
        queues.update(command[command.index("-Q") + 1].split(","))
    routed = {queue_of(kind, lane) for kind in KINDS for lane in LANES}
    assert routed <= queues


def test_gpu_reservation_and_redis_hardening():
    devices = COMPOSE["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    redis_command = COMPOSE["services"]["redis"]["command"]
    assert "--requirepass" in redis_command and "noeviction" in redis_command


def test_every_process_shares_secret_key_redis_and_the_artifact_volume():
    for name in ("web", "worker", "cpu-worker"):
        service = COMPOSE["services"][name]
        assert "SECRET_KEY" in service["environment"] and "REDIS_URL" in service["environment"]
        assert "artifacts:/data/cache" in service["volumes"]
        assert "healthcheck" in service
