"""What the job tests share: a fixture giving each backend, a Celery worker, and jobs to run.

Import the fixture into a test module (``from tests.integration.backends import backend``) to
run its tests against the embedded backend and against Celery on a real Redis.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from compute.engine.jobs import CeleryBackend, EmbeddedBackend
from tests.support import start_process, stop_process

# The slow job: a random-init resnet18 on SLOW_N images of SLOW_PX pixels, extracted in batches
# of 256 (a few seconds each on two shared cores): long enough to kill or cancel mid-way.
SLOW_PX = 96
SLOW_N = 768
BATCH = 256
ONE_LANE = float("inf")  # a long_job_seconds that sends every job to the interactive lane


def celery_worker(redis_url: str, cache_dir: Path, zoo_dir: Path, log_path: Path,
                  queues: str = "gpu,cpu,gpu-long,cpu-long"):
    """A real ``celery worker`` (prefork, one process) for the test's Redis and cache."""
    env = {"REDIS_URL": redis_url, "REPSCOPE_CACHE_DIR": str(cache_dir), "REPSCOPE_ZOO_DIR": str(zoo_dir)}
    return start_process(
        [sys.executable, "-m", "celery", "-A", "compute.engine.tasks", "worker", "-Q", queues,
         "-c", "1", "--pool", "prefork", "--loglevel", "INFO", "-n", f"test-{log_path.stem}@%h"],
        env, log_path,
    )


@pytest.fixture(params=["embedded", "celery"])
def backend(request, cache_dir, zoo_dir, tmp_path):
    """The job backend under test, with one worker process and one lane (its tests queue jobs
    behind others; tests/integration/test_lanes.py runs the lanes apart)."""
    if request.param == "embedded":
        backend = EmbeddedBackend(cache_dir, workers=1, long_job_seconds=ONE_LANE)
        yield backend
        backend.close()
        return
    redis_url = request.getfixturevalue("redis_url")
    request.getfixturevalue("monkeypatch").setenv("REDIS_URL", redis_url)
    worker = celery_worker(redis_url, cache_dir, zoo_dir, tmp_path / "worker.log")
    backend = CeleryBackend(cache_dir, redis_url, long_job_seconds=ONE_LANE)
    yield backend
    stop_process(worker)
    print((tmp_path / "worker.log").read_text()[-3000:])


def three_models():
    from compute.sources.models import list_models

    models = [m for m in list_models("digits") if m.accuracy is not None]
    return [models[0].key, models[len(models) // 2].key, models[-1].key]


def stimuli():
    from compute.sources.stimuli import get_stimulus_set

    return get_stimulus_set("digits")


def slow_spec():
    """Activations of a random-init resnet18 on a folder of noise images it writes (once) under
    the session's data root (tests/conftest.py), a set that jobs find by name; its spec."""
    from PIL import Image

    from compute.engine import artifacts
    from compute.sources.models import register_model
    from compute.sources.stimuli import image_folder

    folder = Path(os.environ["REPSCOPE_DATA_ROOTS"].split(os.pathsep)[0]) / "slow"
    if not folder.exists():
        partial = folder.with_name(".slow-partial")
        rng = np.random.default_rng(0)
        for index in range(SLOW_N):
            (partial / f"class{index % 2}").mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (SLOW_PX, SLOW_PX, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(partial / f"class{index % 2}" / f"{index:04d}.png", compress_level=0)
        partial.rename(folder)
    model = register_model("slow-resnet18", "resnet18", num_classes=2, seed=0)
    stimuli = image_folder(folder)
    assert stimuli.name == f"folder:{folder.parent.name}/slow", stimuli.name  # its registry name
    return artifacts.activations_spec(model.key, stimuli)


def artifact_files(store, spec) -> list[Path]:
    """Every file, temporary or final, the store holds for ``spec``."""
    return sorted((store.root / spec.kind).glob(f"*/{spec.key}*"))
