"""Celery tasks: thin wrappers that call services (no business logic here).

Tasks are ``shared_task`` s so they bind to whichever app is current: the
project's app of :mod:`workers.celery_app` (Celery's default app in every thread
once that module is imported; this module imports it), or an app a test or tool
built with ``make_app(settings)`` and made current in its thread. Services send
jobs by name through :func:`workers.celery_app.send`.
"""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task
from celery.utils.log import get_task_logger

from fibernode import clock
from fibernode.services import imports, maintenance
from fibernode.services.context import Actor
from fibernode.services.settings import touch_heartbeat
from workers import celery_app  # noqa: F401  (makes the project's app the default)

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
    """Delete old rows, expired files and stale temporary files (daily housekeeping).

    Returns:
        How many rows and files of each kind were removed.
    """
    result = asdict(maintenance.cleanup(Actor.system("celery.cleanup")))
    log.info("maintenance cleanup removed %(login_attempts)d login attempts, "
             "%(sessions)d sessions and %(import_jobs)d import jobs; %(files)d expired "
             "files, %(tmp_files)d temporary files, %(partial_backups)d partial backups",
             result)
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


@shared_task(name="workers.tasks.generate_invoices")
def generate_invoices(today: str | None = None) -> dict:
    """Create the H-1 prepaid invoices, catching up missed days (beat, daily 06:00 Jakarta).

    Args:
        today: ISO run date to bill as (operators re-running a day, tests);
            default today in Jakarta.

    Returns:
        The run's periods, run dates and created / already existing / skipped counts.
    """
    from datetime import date

    from fibernode.services import billing

    run_date = date.fromisoformat(today) if today else None
    result = billing.scheduled_run(run_date).as_dict()
    log.info("billing run %(run_dates)s: %(created)d invoices created, %(already_existed)d "
             "already existed, skipped %(skipped)s", result)
    # The morning's H-1 invoices get their reminders queued right away (spec "Scheduler").
    # A queueing failure must not report the billing run as failed: the reminders are
    # handed to wa_enqueue_reminders, which retries with backoff (idempotent per invoice
    # and day, so a retry never queues one twice).
    try:
        _enqueue_reminders(run_date)
    except Exception:
        log.exception("queueing WhatsApp reminders after billing failed; retrying")
        try:
            wa_enqueue_reminders.apply_async(
                kwargs={"today": (run_date or clock.today()).isoformat()},
                countdown=REMINDER_RETRY_BACKOFF_S)
        except Exception:
            log.exception("could not hand the WhatsApp reminders over for a retry")
    return result


def _enqueue_reminders(run_date=None) -> dict:
    from fibernode.services import wa_queue

    result = wa_queue.enqueue_reminders(Actor.system("celery.wa_reminders"), run_date)
    log.info("WhatsApp reminders for %s: %d queued, %d already queued, %d not on WhatsApp",
             result.date, result.enqueued, result.already_queued, result.not_on_whatsapp)
    return result.as_dict()


# The reminder enqueue is retried 1, 2, 4 … minutes apart (at most 30), 6 times: a
# database restart at 06:00 must not cost a day's reminders.
REMINDER_RETRY_BACKOFF_S = 60
REMINDER_MAX_RETRIES = 6


@shared_task(name="workers.tasks.wa_enqueue_reminders", autoretry_for=(Exception,),
             retry_backoff=REMINDER_RETRY_BACKOFF_S, retry_backoff_max=1800,
             retry_jitter=False, max_retries=REMINDER_MAX_RETRIES)
def wa_enqueue_reminders(today: str | None = None) -> dict:
    """Queue today's WhatsApp reminders (also run by ``generate_invoices`` after billing).

    Args:
        today: ISO run date (default: today in Jakarta).

    Returns:
        Counts of queued and skipped reminders.
    """
    from datetime import date

    return _enqueue_reminders(date.fromisoformat(today) if today else None)


@shared_task(name="workers.tasks.wa_queue_tick")
def wa_queue_tick(budget_s: float = 8.0) -> dict:
    """Send the WhatsApp queue's due messages for up to ``budget_s`` (beat, every 10 s).

    The budget stays under the beat interval, so ticks never hold a worker slot back to
    back and billing, imports and files still get their turn on a one-slot worker.

    Settles sends left in flight by a dead worker first, then claims and sends message
    by message; returns early when nothing falls due within the budget.

    Returns:
        Messages handled and stale sends reconciled.
    """
    import os
    import socket

    from fibernode.services import wa_queue
    from fibernode.whatsapp import get_gateway

    request_id = getattr(wa_queue_tick.request, "id", None) or "local"
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{request_id}"[:100]
    result = wa_queue.tick(get_gateway(), worker_id=worker_id, budget_s=budget_s)
    if result["handled"] or any(v for k, v in result.items() if k.startswith("reconciled")):
        log.info("WhatsApp queue tick: %s", result)
    return result


@shared_task(name="workers.tasks.overdue_digest")
def overdue_digest() -> dict:
    """Store today's overdue invoices per owner in setting ``overdue_digest`` (daily, 06:15).

    Returns:
        The stored document (date, generation time, per-owner count and amount).
    """
    from fibernode.services import invoices

    doc = invoices.refresh_overdue_digest(Actor.system("celery.overdue_digest"))
    log.info("overdue digest for %s: %d owners", doc["date"], len(doc["owners"]))
    return doc


@shared_task(name="workers.tasks.close_revenue_months")
def close_revenue_months() -> dict:
    """Roll up the payments ledger of every ended month (daily, 00:20 Jakarta).

    Returns:
        The months rolled up and the rows written (``months`` 0 when up to date).
    """
    from fibernode.services import revenue_months

    return revenue_months.close_months(Actor.system("celery.close_revenue_months"))


@shared_task(name="workers.tasks.build_receipt_bundle")
def build_receipt_bundle(job_id: str) -> dict:
    """Render a month's paid receipts of one owner into one PDF (a ``file_jobs`` job).

    Args:
        job_id: The ``file_jobs`` id (as text: task arguments are JSON).

    Returns:
        The job's status and number of receipts.
    """
    from fibernode.services import receipts

    result = receipts.build_bundle_job(job_id)
    log.info("receipt bundle %s: %s", job_id, result)
    return result


@shared_task(name="workers.tasks.build_finance_file")
def build_finance_file(job_id: str) -> dict:
    """Build a finance recap, report or settlement file (a ``file_jobs`` job).

    Args:
        job_id: The ``file_jobs`` id (as text: task arguments are JSON).

    Returns:
        The job's status and kind (and the row count of a recap).
    """
    from fibernode.services import finance_files

    result = finance_files.build_job(job_id)
    log.info("finance file %s: %s", job_id, result)
    return result


@shared_task(name="workers.tasks.wa_direct_sweep")
def wa_direct_sweep() -> dict[str, int]:
    """Finish direct WhatsApp sends a crashed process left pending or mid-send (every minute).

    Returns:
        How many were dispatched, settled as sent, or marked uncertain.
    """
    from fibernode.services import wa_direct

    result = wa_direct.sweep_pending(60)
    if any(result.values()):
        log.info("wa direct sweep: %s", result)
    return result


@shared_task(name="workers.tasks.backup")
def backup() -> dict:
    """Back up the database into BACKUP_DIR and apply the retention (daily, 02:00 Jakarta).

    Returns:
        The file written, its size and the old backups deleted.
    """
    from fibernode.services import backup as backup_service

    result = backup_service.run_backup(Actor.system("celery.backup"))
    return {"file": str(result.path), "size": result.size, "engine": result.engine,
            "deleted": result.deleted}


@shared_task(name="workers.tasks.process_payment_proof")
def process_payment_proof(proof_id: str) -> dict:
    """Clean up and check an uploaded transfer-slip photo (opencv pipeline).

    Args:
        proof_id: The ``payment_proofs`` id (as text: task arguments are JSON).

    Returns:
        The proof's status (``ready``, ``rejected``, ``failed`` or ``skipped``).
    """
    from fibernode.services import payment_proofs

    result = payment_proofs.process_proof(proof_id)
    log.info("payment proof %s: %s", proof_id, result)
    return result
