"""Stopping the app stops everything it started: a real ``python app.py`` with a job running
mid-way (a reference fit over every zoo model: minutes of forward passes, then a bootstrap),
SIGTERM to app.py alone, and 10 s later none of its descendants (the pool worker,
multiprocessing's resource tracker) is alive; the same when app.py is SIGKILLed (the worker
asked the kernel to be killed with it), and when gunicorn's master is SIGTERMed (its worker
exits gracefully, closing the backend)."""
import json
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from compute.engine.records import DiskRecords
from tests.acceptance.dash_requests import callback_body, find
from tests.support import free_port, start_process, wait_until

GRACE_S = 10


def started(pid: int) -> str | None:
    """When ``pid`` started (so a reused pid is not taken for it); None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return None


def descendants(root: int) -> dict[int, str]:
    """Every live descendant of ``root`` (by parent pid, from /proc), with its start time."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found and (start := started(pid)):
                found[pid] = start
                frontier.append(pid)
    return found


def post(base: str, dependency: dict, values: dict) -> dict:
    body = callback_body(dependency, values)
    request = urllib.request.Request(base + "/_dash-update-component", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as answer:
        return json.loads(answer.read())["response"]


@pytest.mark.parametrize("server, stop", [("app.py", signal.SIGTERM), ("app.py", signal.SIGKILL),
                                          ("gunicorn", signal.SIGTERM)],
                         ids=["app.py-SIGTERM", "app.py-SIGKILL", "gunicorn-SIGTERM"])
def test_stopping_the_app_mid_job_leaves_no_process_behind(server, stop, zoo_dir, tmp_path, monkeypatch):
    cache, uploads = tmp_path / "cache", tmp_path / "uploads"
    env = {"REPSCOPE_CACHE_DIR": str(cache), "REPSCOPE_UPLOAD_DIR": str(uploads), "REPSCOPE_ZOO_DIR": str(zoo_dir),
           "REPSCOPE_AUTO_COMPUTE_BYTES": str(10**15), "REPSCOPE_AUTO_COMPUTE_SECONDS": str(10**9),  # no Compute button
           "SECRET_KEY": "test-" + "0" * 32}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from compute.sources.references import save_reference
    from compute.sources.stimuli import get_stimulus_set

    digits = get_stimulus_set("digits")
    reference = save_reference(pdist(np.random.default_rng(0).normal(size=(len(digits), 4)))[None], "brain", digits)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "app.py", "--port", str(port)] if server == "app.py" else [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4", "app:server"]
    app = start_process(command, env, tmp_path / "app.log")
    left: dict[int, str] = {}
    try:
        wait_until(lambda: _answers(base + "/health"), 180, "the app to serve")
        with urllib.request.urlopen(base + "/_dash-dependencies", timeout=60) as answer:
            submit = find(json.loads(answer.read()), output="reference-job.data")
        values = dict(zip([f"reference-{n}-choice.value" for n in ("ref", "rdm", "compare", "layers", "boot")],
                          [reference.key, "euclidean", "spearman", "penultimate", "1000"]))
        job = post(base, submit, values)["reference-job"]["data"]
        assert "error" not in job and "confirm" not in job, job

        records = DiskRecords(cache / "jobs")
        running = wait_until(lambda: next((r for _, r in records.items() if r["state"] == "running"
                                           and r["progress"] > 0), None), 300, "the job to be mid-way")
        records.close()
        before = descendants(app.pid)
        left = dict(before)  # killed in the end should the test fail early
        worker = int(running["worker"].rsplit(":", 1)[1])
        assert worker in before, (running["worker"], before)

        os.kill(app.pid, stop)  # app.py (gunicorn's master) alone, not its process group
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline and any(started(pid) == start for pid, start in before.items()):
            time.sleep(0.2)
        left = {pid: start for pid, start in before.items() if started(pid) == start}
        assert app.poll() is not None, f"{server} still runs {GRACE_S} s after {stop.name}"
        assert left == {}, f"alive {GRACE_S} s after {stop.name} to {server}: {_commands(left)}"
    finally:
        for pid, start in {**left, app.pid: started(app.pid)}.items():
            if start and started(pid) == start:
                os.kill(pid, signal.SIGKILL)
        app.wait(10)
        print((tmp_path / "app.log").read_text()[-3000:])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


def _commands(pids) -> dict:
    out = {}
    for pid in pids:
        try:
            out[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
        except OSError:
            out[pid] = "?"
    return out
