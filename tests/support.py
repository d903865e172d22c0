"""Helpers for tests that run real programs: free ports, child processes, waiting."""
from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def external_data(name: str) -> Path:
    """``<shared>/external_data/<name>``: the public data sets beside the checkout (``../shared``),
    found from the checkout upwards, or under ``REPSCOPE_EXTERNAL_DATA`` when set. Tests read
    them there and skip, saying where they looked, when they are absent; never committed."""
    given = os.environ.get("REPSCOPE_EXTERNAL_DATA")
    if given:
        return Path(given) / name
    for folder in ROOT.parents:
        candidate = folder / "shared" / "external_data" / name
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared" / "external_data" / name


def require_program(name: str, package: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} not found: install it with `apt-get install {package}`", pytrace=False)
    return path


_PORT_DRAW = random.Random()  # its own generator: no test's seeding repeats a draw


def free_port() -> int:
    """A free loopback port below Linux's ephemeral range, from a block of 4,000 of its own for each
    pytest-xdist worker: two workers never pick the same port between its test and its use."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
    block = range(12_000 + 4_000 * (worker % 5), 16_000 + 4_000 * (worker % 5))
    while True:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", _PORT_DRAW.choice(block)))
            except OSError:  # taken
                continue
            return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def start_process(args, env_updates: dict, log_path: Path) -> subprocess.Popen:
    """Start a child process of this checkout's Python with extra environment variables."""
    env = {**os.environ, **env_updates, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    log = open(log_path, "wb")
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout)


def start_redis(port: int, folder: Path) -> subprocess.Popen:
    """A real redis-server on 127.0.0.1:``port`` with nothing persisted, once it answers."""
    import redis

    process = subprocess.Popen(
        [require_program("redis-server", "redis-server"), "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)

    def up():
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    wait_until(up, 10, "redis-server")
    client.close()
    return process


def compose_command(service: str) -> list[str]:
    """The command of a docker-compose.yml service, run with this checkout's Python (``-m``)."""
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return [sys.executable, "-m", *compose["services"][service]["command"].split()]


def pip_install_target(source: Path, target: Path) -> Path:
    """``pip install --target`` a local package (no index, no dependencies, this environment's
    build backend) into ``target``, built from a copy so the source tree stays clean."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / source.name
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                               "--no-build-isolation", "--target", str(target), str(copy)],
                              capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"pip install --target {target} {source} failed:\n{done.stderr}", pytrace=False)
    return target
