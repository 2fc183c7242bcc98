"""Handing background jobs to the Celery worker: the one path every service uses.

A job the user waits on (a file job, a payment proof, a large import) is a row
whose status the UI polls. The row is committed first; :func:`enqueue_on_commit`
then queues the task, by its registered name, on the project's broker
(``REDIS_URL``, or the embedded SQLite broker). When the broker refuses (Redis
down or unreachable) the error is logged and the row is marked failed at once
with its Indonesian message, instead of staying pending for a worker that will
never see it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from fibernode.services.uow import UnitOfWork

log = logging.getLogger(__name__)


# Queues a task by name on the project's broker; installed by every process that runs
# use cases (workers.celery_app at import: the web app, the workers, beat and the CLI
# import it). The domain never imports the workers.
Sender = Callable[..., None]
_sender: Sender | None = None
NO_SENDER = ("Antrian tugas latar belakang belum dipasang di proses ini; tugas tidak "
             "bisa dijalankan.")


def install_sender(sender: Sender | None) -> Sender | None:
    """Make ``sender(task, *args)`` the way this process queues tasks; returns the old one."""
    global _sender
    previous, _sender = _sender, sender
    return previous


def send_task(task: str, *args: str) -> None:
    """Queue the Celery task ``task`` by name on the project's broker.

    Raises:
        RuntimeError: no sender was installed in this process.
        Exception: the broker could not be reached.
    """
    sender = _sender
    if sender is None:
        raise RuntimeError(NO_SENDER)
    sender(task, *args)


def enqueue_on_commit(uow: UnitOfWork, task: str, job_id: uuid.UUID, *,
                      fail: Callable[[uuid.UUID, Exception], None]) -> None:
    """Queue ``task(str(job_id))`` once ``uow`` has committed; a refused send fails the job.

    Args:
        uow: The unit of work that stored the job's row.
        task: The task's registered name (``workers.tasks.…``).
        job_id: The job's row id, the task's one argument (as text: arguments are JSON).
        fail: Marks that row failed with its Indonesian message (its own transaction);
            called with the id and the send's error.
    """

    def run() -> None:
        try:
            send_task(task, str(job_id))
        except Exception as exc:
            log.exception("cannot queue background job %s", job_id)
            fail(job_id, exc)

    uow.after_commit(run)
