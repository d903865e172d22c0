"""The deployment of docker-compose.yml as plain processes: gunicorn + a Celery worker + Redis."""
import json
import urllib.request

import pytest

from tests.browser.support import wait_for_figures
from tests.support import compose_command, free_port, start_process, stop_process
from compute.sources.models import list_models



@pytest.fixture
def distributed_app(zoo_dir, redis_url, tmp_path):
    from tests.support import wait_until

    port = free_port()
    env = {"REDIS_URL": redis_url, "REPSCOPE_CACHE_DIR": str(tmp_path / "cache"),
           "REPSCOPE_ZOO_DIR": str(zoo_dir), "SECRET_KEY": "test-secret"}
    web_command = compose_command("web")
    web_command[web_command.index("--bind") + 1] = f"127.0.0.1:{port}"
    processes = [start_process(web_command, env, tmp_path / "web.log")]
    for name in ("worker", "long-worker", "cpu-worker"):
        processes.append(start_process(compose_command(name), env, tmp_path / f"{name}.log"))
    url = f"http://127.0.0.1:{port}"

    def healthy():
        try:
            return json.load(urllib.request.urlopen(url + "/health", timeout=2))
        except OSError:
            return None

    yield url, wait_until(healthy, 120, "gunicorn's /health")
    for process in processes:
        stop_process(process)


def test_compose_layout_serves_the_page_with_celery_workers(distributed_app, page):
    url, health = distributed_app
    assert health["backend"] == "celery"
    page.goto(url + "/?compare=pearson")
    scatter, _ = wait_for_figures(page)
    assert sum(len(trace["x"]) for trace in scatter) == len(list_models("digits"))
