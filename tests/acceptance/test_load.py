"""Load (issue #8, item 15): 20 browser-like clients open shared links of cached views for
``REPSCOPE_LOAD_SECONDS`` (60 s) against the web service of docker-compose.yml (gunicorn,
threaded workers) on 127.0.0.1 with the embedded backend; no request may fail.

A client opens a link as the Dash renderer does: the page, ``/_dash-layout``,
``/_dash-dependencies``, the stylesheet, then the page render, the view's submit and its poll
callbacks, with request bodies built from the served dependencies and the rendered layout.
The poll returns the figures at once since every artifact is cached. The latencies (p50/p95/p99
per request type and overall) are printed, recorded with ``record_property`` and written as JSON.
"""
from __future__ import annotations

import itertools
import json
import os
import threading
import time

import numpy as np
import requests

from tests.acceptance.dash_requests import callback_body, find, prop_values
from tests.browser.support import AppServer
from tests.support import compose_command

CLIENTS = 20
SECONDS = float(os.environ.get("REPSCOPE_LOAD_SECONDS", "60"))
MIN_LOOPS = 2  # every client opens at least this many links, past the deadline if need be
TIMEOUT_S = 30  # per request: a client starved longer than this fails the test
WARM_TIMEOUT_S = 300
POLL_S = 0.4
# path, component id prefix, figure names: the views whose default state the clients open
VIEWS = (("/", "model-space", ("heatmap", "mds")), ("/rdm", "input-rdm", ("heatmap", "mds")),
         ("/layers", "layer-grid", ("heatmap",)))


class Browser:
    """The requests a browser makes to open a link of a computed view, over one keep-alive
    session, with each answered request's ``(type, seconds)`` in ``samples``."""

    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()
        self.samples: list[tuple[str, float]] = []

    def request(self, kind: str, path: str, body: dict | None = None) -> requests.Response:
        start = time.perf_counter()
        if body is None:
            answer = self.session.get(self.base + path, timeout=TIMEOUT_S)
        else:
            answer = self.session.post(self.base + path, json=body, timeout=TIMEOUT_S)
        self.samples.append((kind, time.perf_counter() - start))
        if answer.status_code not in (200, 204):
            raise AssertionError(f"{kind} {path}: HTTP {answer.status_code}: {answer.text[:300]}")
        return answer

    def callback(self, kind: str, dependency: dict, values: dict, changed: list[str]) -> dict:
        """Fire ``dependency`` with ``values`` by ``id.prop`` (None for any not known, as the
        renderer sends a property that is not set) and return the response's updates. As the
        renderer does, a single output goes as one ``{id, property}``, several as a list."""
        body = callback_body(dependency, values, changed)
        return self.request(kind, "/_dash-update-component", body).json()["response"]

    def open(self, path: str, prefix: str, figures, search: str = "", wait_s: float = 0.0) -> str:
        """Open ``path + search`` and check that the view draws ``figures`` (waiting up to
        ``wait_s`` for its job, pressing Compute if it asks; 0: they must come at once);
        return the view's own query string, the link to share."""
        assert "_dash-config" in self.request("page", path + search).text
        values = prop_values(self.request("layout", "/_dash-layout").json())
        dependencies = self.request("dependencies", "/_dash-dependencies").json()
        self.request("asset", "/assets/style.css")
        values.update({"url.pathname": path, "url.search": search})
        page = self.callback("render", find(dependencies, output="page.children"), values, ["url.pathname"])
        values.update(prop_values(page["page"]["children"]))
        submit = find(dependencies, output=f"{prefix}-job.data")
        answer = self.callback("submit", submit, values, [f"{i['id']}.{i['property']}" for i in submit["inputs"]])
        job = answer[f"{prefix}-job"]["data"]
        if "confirm" in job and wait_s:  # large uncached work waits for the Compute button
            compute = find(dependencies, inputs=[f"{prefix}-compute.n_clicks"])
            job = self.callback("compute", compute, {**values, f"{prefix}-compute.n_clicks": 1, f"{prefix}-job.data": job},
                                [f"{prefix}-compute.n_clicks"])[f"{prefix}-job"]["data"]
        assert "values" in job and "error" not in job and "confirm" not in job, f"{path}{search}: {job}"
        self.draw(find(dependencies, inputs=[f"{prefix}-tick.data", f"{prefix}-job.data"]), prefix, figures, job, wait_s)
        return answer.get("url", {}).get("search", search)

    def draw(self, poll: dict, prefix: str, figures, job: dict, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        for tick in itertools.count(1):  # each tick once the last was answered, as the page's gate
            drawn = self.callback("poll", poll, {f"{prefix}-tick.data": {"n": tick, "at": 0}, f"{prefix}-job.data": job},
                                  [f"{prefix}-tick.data"])
            if all((drawn.get(f"{prefix}-{name}", {}).get("figure") or {}).get("data") for name in figures):
                return
            if drawn.get(f"{prefix}-poll", {}).get("disabled") or time.monotonic() >= deadline:
                raise AssertionError(f"{prefix}: no figures after {tick} polls: {str(drawn)[:500]}")
            time.sleep(POLL_S)


def shared_links(server: AppServer) -> list[str]:
    """Compute the default state of every view through the app as a user would (open it and
    wait for the figures) and return each view's link."""
    browser = Browser(server.url)
    try:
        return [path + browser.open(path, prefix, figures, wait_s=WARM_TIMEOUT_S) for path, prefix, figures in VIEWS]
    finally:
        browser.session.close()


class Client(threading.Thread):
    """One browser opening the links in turn until the deadline (and ``MIN_LOOPS`` links);
    it stops at its first error, kept in ``error``."""

    def __init__(self, index: int, base: str, links: list[str], deadline: float):
        super().__init__(daemon=True)
        self.index, self.links, self.deadline = index, links, deadline
        self.browser = Browser(base)
        self.loops = 0
        self.error: str | None = None

    def run(self):
        try:
            while self.loops < MIN_LOOPS or time.monotonic() < self.deadline:
                which = (self.index + self.loops) % len(VIEWS)
                path, prefix, figures = VIEWS[which]
                self.browser.open(path, prefix, figures, search=self.links[which][len(path):])
                self.loops += 1
        except Exception as error:  # noqa: BLE001 - any failure is this client's error
            self.error = f"client {self.index}, link {self.loops}: {type(error).__name__}: {error}"
        finally:
            self.browser.session.close()


def summary(clients: list[Client], seconds: float) -> dict:
    """Requests, throughput and p50/p95/p99/max latency (ms) per request type and overall."""
    samples = [sample for client in clients for sample in client.browser.samples]

    def stats(latencies):
        ms = np.asarray(latencies) * 1000
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        return {"requests": len(ms), "p50_ms": round(float(p50), 1), "p95_ms": round(float(p95), 1),
                "p99_ms": round(float(p99), 1), "max_ms": round(float(ms.max()), 1)}

    loops = [client.loops for client in clients]
    return {"clients": len(clients), "seconds": round(seconds, 1), "requests": len(samples),
            "throughput_rps": round(len(samples) / seconds, 1), "links_opened": sum(loops),
            "links_per_client_min_max": [min(loops), max(loops)], "overall": stats([s for _, s in samples]),
            "by_type": {kind: stats([s for k, s in samples if k == kind]) for kind in sorted({k for k, _ in samples})}}


def gunicorn_server(cache_dir, zoo_dir, log_dir) -> AppServer:
    """The web service of docker-compose.yml (gunicorn, its workers and threads) on 127.0.0.1,
    with its control socket in ``log_dir`` rather than the one default path in $HOME."""
    server = AppServer(cache_dir, zoo_dir, log_dir, env={"SECRET_KEY": "load-test-secret"})
    command = compose_command("web")
    command[command.index("--bind") + 1] = f"127.0.0.1:{server.port}"
    server.command = [*command[:-1], "--control-socket", str(log_dir / "gunicorn.ctl"), command[-1]]
    return server


def test_twenty_clients_on_cached_views_get_no_error(zoo_dir, cache_dir, tmp_path, record_property):
    # Warm the cache through one `python app.py`: each gunicorn worker makes its own embedded
    # backend, and one made while another worker's job runs marks that job interrupted.
    (tmp_path / "warm").mkdir()
    warm = AppServer(cache_dir, zoo_dir, tmp_path / "warm")
    warm.start()
    try:
        links = shared_links(warm)
    finally:
        warm.stop()
    artifacts = sorted(cache_dir.glob("artifacts/**/*"))

    (tmp_path / "load").mkdir()
    server = gunicorn_server(cache_dir, zoo_dir, tmp_path / "load")
    server.start()
    try:
        assert server.health_status == 200
        started = time.monotonic()
        clients = [Client(index, server.url, links, started + SECONDS) for index in range(CLIENTS)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        elapsed = time.monotonic() - started
        health = requests.get(server.url + "/health", timeout=TIMEOUT_S)
        alive = server.process.poll() is None
    finally:
        server.stop()

    report = {"links": links, **summary(clients, elapsed)}
    path = tmp_path / "load-report.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\nload: {json.dumps(report, indent=2)}\nwritten to {path}")
    record_property("load_report", json.dumps(report))
    for key in ("requests", "throughput_rps"):
        record_property(f"load_{key}", report[key])
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        record_property(f"load_{key}", report["overall"][key])

    errors = [client.error for client in clients if client.error]
    assert errors == [], "\n".join(errors)
    assert min(client.loops for client in clients) >= MIN_LOOPS
    assert alive and health.status_code == 200 and health.json()["status"] == "ok"
    log = server.log()
    assert "Traceback" not in log and "WORKER TIMEOUT" not in log, log[-4000:]
    assert sorted(cache_dir.glob("artifacts/**/*")) == artifacts  # all served from the cache
