"""Shared fixtures: a session-wide built-in zoo, a private cache per test, real Redis servers.

System programs the suite needs (redis-server, chromium, chromedriver) are required, never
skipped: a missing one fails with the command that installs it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support import free_port, start_redis

# Property tests draw the same examples on every run: a CI run is never red by the luck of the
# draw. A counterexample found while working becomes an explicit @example beside its test.
settings.register_profile("repscope", derandomize=True, print_blob=True)
settings.load_profile("repscope")


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory) -> Path:
    """The built-in digits zoo, built once per test session (REPSCOPE_ZOO_DIR reuses one)."""
    given = os.environ.get("REPSCOPE_TEST_ZOO_DIR")
    directory = Path(given) if given else tmp_path_factory.mktemp("zoo")
    previous = os.environ.get("REPSCOPE_ZOO_DIR")
    os.environ["REPSCOPE_ZOO_DIR"] = str(directory)
    from compute.sources.zoo_cache import ensure_zoo

    ensure_zoo("digits", progress=False)
    yield directory
    if previous is None:
        os.environ.pop("REPSCOPE_ZOO_DIR", None)
    else:
        os.environ["REPSCOPE_ZOO_DIR"] = previous


@pytest.fixture(scope="session", autouse=True)
def data_root(tmp_path_factory) -> Path:
    """The session's directory of ``REPSCOPE_DATA_ROOTS``, set before any worker or app process
    starts (they all inherit it): an image folder ``<set>`` put in it is ``folder:<name>/<set>``."""
    directory = tmp_path_factory.mktemp("stimuli")
    previous = os.environ.get("REPSCOPE_DATA_ROOTS")
    os.environ["REPSCOPE_DATA_ROOTS"] = str(directory)
    yield directory
    if previous is None:
        os.environ.pop("REPSCOPE_DATA_ROOTS", None)
    else:
        os.environ["REPSCOPE_DATA_ROOTS"] = previous


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A private artifact cache for one test."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("REPSCOPE_CACHE_DIR", str(directory))
    return directory


@pytest.fixture
def redis_url(tmp_path):
    """A real redis-server on a free loopback port, stopped after the test."""
    port = free_port()
    process = start_redis(port, tmp_path)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def lab_models(tmp_path_factory) -> Path:
    """The example lab package (examples/repscope-lab-models) installed as an operator would,
    but with ``pip install --target`` into a session folder first on ``sys.path`` and on
    ``PYTHONPATH``: importlib.metadata finds its ``repscope.models`` entry points here and in
    every child process (upload workers, app servers), and the shared environment is untouched."""
    import importlib
    import sys

    from tests.support import ROOT, pip_install_target

    target = pip_install_target(ROOT / "examples" / "repscope-lab-models", tmp_path_factory.mktemp("lab-site"))
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), previous]))
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))
    if previous is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = previous
