"""Celery tasks: the distributed transport for :func:`compute.engine.jobs.run_job`.

Run a worker with ``celery -A compute.engine.tasks worker -Q gpu,cpu -c 1``. The worker imports
the same code as the web process and reads the same settings (``REDIS_URL``,
``REPSCOPE_CACHE_DIR`` on a shared volume). Torch is imported in each pool process as it starts
(never in the worker's parent, which forks them), and before any task: a job's time limit that
struck during ``import torch`` would leave torch half-initialised for every later job.
"""
from __future__ import annotations

from functools import lru_cache

from celery import Celery
from celery.signals import worker_process_init

from compute.settings import get_settings

# Extraction and big measures want a GPU; small follow-ups (MDS of a model RDM) do not.
_GPU_KINDS = {"activations", "predictions", "rdm", "model_rdm"}


def queue_for(spec) -> str:
    return "gpu" if spec.kind in _GPU_KINDS else "cpu"


TASK = "repscope.compute_artifact"


@lru_cache(maxsize=8)
def celery_app(broker: str = "") -> Celery:
    """The Celery app on ``broker`` (default: the ``REDIS_URL`` setting).

    The web side names its broker (a backend's own Redis), so a process that talks to
    several Redis servers in turn, as the tests do, never sends to a stale one.
    """
    settings = get_settings()
    app = Celery("repscope", broker=broker or settings.redis_url or "redis://127.0.0.1:6379/0")
    limit = settings.job_time_limit_s
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=limit,
        task_time_limit=limit + 60,
        # Longer than the longest job, or Redis re-delivers a running job to a second worker.
        broker_transport_options={"visibility_timeout": limit + 600},
        broker_connection_retry_on_startup=True,
        task_default_queue="cpu",
        worker_hijack_root_logger=False,
    )
    return app


app = celery_app()


@worker_process_init.connect
def _import_before_any_task(**_) -> None:
    import compute.engine.artifacts  # noqa: F401
    import compute.measures.similarity  # noqa: F401
    import compute.sources.activations  # noqa: F401 (torch, torchvision)


@app.task(name=TASK, bind=True)
def compute_artifact(self, spec_json: dict) -> str:
    from compute.engine.jobs import RedisStates, run_job
    from compute.engine.store import ArtifactStore

    settings = get_settings()
    return run_job(spec_json, RedisStates(settings.redis_url),
                   ArtifactStore(settings.artifacts_dir, settings.cache_max_bytes), task=self.request.id)
