"""``python -m compute precompute`` as users run it, against both backends."""
import os
import subprocess
import sys

import pytest

from compute.engine.store import ArtifactStore
from tests.integration.backends import celery_worker, stimuli
from tests.support import ROOT, stop_process


@pytest.fixture(params=["embedded", "celery"])
def cli_env(request, cache_dir, zoo_dir, tmp_path):
    """The environment the CLI runs in; for Celery, with a worker on a real Redis."""
    env = {**os.environ, "REPSCOPE_CACHE_DIR": str(cache_dir), "REPSCOPE_ZOO_DIR": str(zoo_dir),
           "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    if request.param == "embedded":
        yield env
        return
    env["REDIS_URL"] = request.getfixturevalue("redis_url")
    worker = celery_worker(env["REDIS_URL"], cache_dir, zoo_dir, tmp_path / "worker.log")
    yield env
    stop_process(worker)


def precompute(env, *args):
    return subprocess.run([sys.executable, "-m", "compute", "precompute", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_precompute_fills_the_cache_for_a_sweep(cli_env, cache_dir):
    from compute.__main__ import sweep_specs
    from compute.sources.models import list_models

    models = list_models("digits")[:3]
    run = precompute(cli_env, "--models", ",".join(m.name for m in models), "--compare", "spearman,euclidean")
    assert run.returncode == 0, run.stderr
    assert "precompute" in run.stderr and "2/2" in run.stderr  # the progress bar
    store = ArtifactStore(cache_dir / "artifacts")
    specs = list(sweep_specs(models, stimuli(), ["penultimate"], ["none"], ["correlation"],
                             ["spearman", "euclidean"]))
    assert len({s.key for s in specs}) == 2
    for spec in specs:
        for part in spec.walk():
            assert store.get(part.kind, part.key)[0].size > 0


def test_bad_model_lists_are_refused_with_the_reason(cli_env):
    run = precompute(cli_env, "--models", "no-such-model", "--compare", "spearman")
    assert run.returncode != 0
    assert "unknown models: no-such-model" in run.stderr and "list_models()" in run.stderr
    from compute.sources.models import list_models

    two = ",".join(m.name for m in list_models("digits")[:2])
    run = precompute(cli_env, "--models", two)
    assert run.returncode != 0 and "needs at least 3 models" in run.stderr
