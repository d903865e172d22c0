"""The Celery task: the distributed transport for :func:`compute.engine.worker.run_job`.

Run a worker with ``celery -A compute.engine.tasks worker -Q gpu,cpu,gpu-long,cpu-long -c 1`` (the app is
compute/engine/celery_app.py's, found here as ``app``). The worker imports the same code as the
web process and reads the same settings (``REDIS_URL``, ``REPSCOPE_CACHE_DIR`` on a shared
volume). Torch is imported in each pool process as it starts (never in the worker's parent,
which forks them), and before any task: a job's time limit that struck during ``import torch``
would leave torch half-initialised for every later job.
"""
from __future__ import annotations

from celery.signals import worker_process_init

from compute.engine.celery_app import TASK, celery_app
from compute.engine.records import RedisRecords
from compute.engine.store import ArtifactStore
from compute.engine.worker import import_numerics, run_job
from compute.settings import get_settings

app = celery_app()


@worker_process_init.connect
def _import_before_any_task(**_) -> None:
    import_numerics()


@app.task(name=TASK, bind=True)
def compute_artifact(self, spec_json: dict) -> str:
    settings = get_settings()
    return run_job(spec_json, RedisRecords(settings.redis_url),
                   ArtifactStore(settings.artifacts_dir, settings.cache_max_bytes), task=self.request.id)
