"""The one Celery configuration: the app on a Redis broker and the name of its one task.

The web side (compute/engine/jobs.py) sends tasks through it, naming each job's queue from its
kind (``Kind.queue``: "gpu" or "cpu"); the workers run compute/engine/tasks.py, which defines
the task on this app. See PITFALLS: late acks, prefetch 1 and a visibility timeout above the
longest job, or Redis re-delivers a running job to a second worker.
"""
from __future__ import annotations

from functools import lru_cache

from celery import Celery

from compute.settings import get_settings

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
