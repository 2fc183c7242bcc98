"""Celery tasks: thin wrappers that call services (no business logic here).

Tasks are ``shared_task`` s so they bind to whichever app is current: the
module-level app of :mod:`workers.celery_app` in the worker, beat and web app,
or an app built with ``make_app(settings)`` (tests, tools). Importing this
module imports :mod:`workers.celery_app`, so ``heartbeat.delay()`` from the web
app goes to the configured broker, never to Celery's built-in AMQP default.
"""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task
from celery.utils.log import get_task_logger

from fibernode import clock
from fibernode.services import imports, maintenance
from fibernode.services.context import Actor
from fibernode.services.settings import touch_heartbeat
from workers import celery_app  # noqa: F401  (makes the configured app current)

log = get_task_logger(__name__)

# ``settings`` keys read by the health endpoint.
WORKER_HEARTBEAT_KEY = "worker_heartbeat_at"
BEAT_LAST_RUN_KEY = "beat_last_run_at"


@shared_task(name="workers.tasks.heartbeat")
def heartbeat(source: str = "worker") -> str:
    """Record that a worker is alive; when beat sent it, that beat is alive too.

    Args:
        source: ``"beat"`` from the beat schedule (the only regular sender).

    Returns:
        The ISO time (UTC) the heartbeat was taken.
    """
    at = clock.now().isoformat()
    touch_heartbeat(WORKER_HEARTBEAT_KEY)
    if source == "beat":
        touch_heartbeat(BEAT_LAST_RUN_KEY)
    log.debug("heartbeat from %s at %s", source, at)
    return at


@shared_task(name="workers.tasks.cleanup")
def cleanup() -> dict[str, int]:
    """Delete old login attempts and dead web sessions (daily housekeeping).

    Returns:
        How many rows of each kind were removed.
    """
    result = asdict(maintenance.cleanup(Actor.system("celery.cleanup")))
    log.info("maintenance cleanup removed %(login_attempts)d login attempts, "
             "%(sessions)d sessions and %(import_jobs)d import jobs", result)
    return result


@shared_task(name="workers.tasks.validate_import")
def validate_import(job_id: str) -> dict:
    """Validate the rows of a large CSV import, storing progress as it goes.

    Args:
        job_id: The ``import_jobs`` id (as text: task arguments are JSON).

    Returns:
        The job's status and counts.
    """
    result = imports.validate_job(job_id)
    log.info("import %s validated: %s", job_id, result)
    return result


@shared_task(name="workers.tasks.run_import")
def run_import(job_id: str) -> dict:
    """Insert the valid rows of a confirmed large CSV import, in one transaction.

    Args:
        job_id: The ``import_jobs`` id (as text: task arguments are JSON).

    Returns:
        The job's status and imported / skipped counts.
    """
    result = imports.run_job(job_id)
    log.info("import %s ran: %s", job_id, result)
    return result
