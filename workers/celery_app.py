"""The Celery application shared by the web app, the worker and beat.

Start the processes with::

    celery -A workers.celery_app worker --loglevel=INFO
    celery -A workers.celery_app beat --loglevel=INFO

Broker and result backend come from :func:`fibernode.config.get_settings`:

* **Embedded (default, no configuration).** Without ``REDIS_URL`` Celery uses
  kombu's SQLAlchemy transport on a SQLite file (``data/celery-broker.db``) and
  the SQLAlchemy result backend on ``data/celery-results.db``. It is a real
  broker shared by every process on the machine and needs no server, which is
  what a first run or a small single-box install wants. It polls the file once
  a second and supports neither broadcast nor remote control (``celery inspect``).
* **Redis (production).** With ``REDIS_URL`` set, broker and results go to
  Redis (``CELERY_BROKER_URL`` / ``CELERY_RESULT_BACKEND`` override both).
  Production mode requires Redis.

Scheduled times are wall-clock times in Asia/Jakarta (``timezone``); Celery
still stores and transmits UTC (``enable_utc``).

Importing this module makes :data:`app` Celery's default app for every thread
of the process. Celery's *current* app is thread-local, and a thread that has
none falls back to Celery's own built-in app, whose broker is RabbitMQ's
``amqp://guest@localhost:5672//``: without the default, a job sent from any
thread but the importing one (the web app's executor threads) failed to connect
or, on a machine running RabbitMQ, vanished there. Services hand jobs to the
worker through :func:`send` (via :mod:`fibernode.services.jobqueue`).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from celery import Celery, current_app
from celery.beat import PersistentScheduler
from celery.schedules import crontab
from celery.signals import beat_init, setup_logging
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from fibernode.config import Settings, get_settings
from fibernode.services import jobqueue

log = logging.getLogger(__name__)

TIMEZONE = "Asia/Jakarta"
WORKER_HEARTBEAT_INTERVAL = timedelta(seconds=60)
WA_QUEUE_TICK_INTERVAL = timedelta(seconds=10)
# SQLite waits this long for another process's write lock before failing.
SQLITE_BUSY_TIMEOUT_SECONDS = 30
# A job the user waits on is marked failed when its send fails, so a broker that is
# down must answer within a second or two (Celery's default retries a few times too).
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2,
                        "interval_max": 0.5}


def beat_schedule() -> dict[str, dict]:
    """The periodic jobs, as a fresh dict per app."""
    return {
        "maintenance-cleanup": {
            "task": "workers.tasks.cleanup",
            # 03:30 Asia/Jakarta: crontabs follow the app's ``timezone``.
            "schedule": crontab(hour=3, minute=30),
        },
        "worker-heartbeat": {
            "task": "workers.tasks.heartbeat",
            "schedule": WORKER_HEARTBEAT_INTERVAL,
            # Only beat sends this, so it also proves that beat is alive.
            "kwargs": {"source": "beat"},
        },
        "generate-invoices": {
            "task": "workers.tasks.generate_invoices",
            # 06:00 Asia/Jakarta (spec "Scheduler"): H-1 prepaid invoices for next month.
            "schedule": crontab(hour=6, minute=0),
        },
        "wa-queue-tick": {
            "task": "workers.tasks.wa_queue_tick",
            # The WhatsApp queue's pacing is per message (8-20 s), so ticks are frequent;
            # a tick that waited in the broker longer than this is dropped, not piled up.
            "schedule": WA_QUEUE_TICK_INTERVAL,
            "options": {"expires": WA_QUEUE_TICK_INTERVAL.total_seconds()},
        },
        "overdue-digest": {
            "task": "workers.tasks.overdue_digest",
            # 06:15 Asia/Jakarta, after the morning's invoices: the dashboard reads it.
            "schedule": crontab(hour=6, minute=15),
        },
        "close-revenue-months": {
            "task": "workers.tasks.close_revenue_months",
            # 00:20 Asia/Jakarta: the month that just ended is rolled up for the charts.
            "schedule": crontab(hour=0, minute=20),
        },
        "daily-backup": {
            "task": "workers.tasks.backup",
            # 02:00 Asia/Jakarta: pg_dump / SQLite copy into BACKUP_DIR, 30-day retention.
            "schedule": crontab(hour=2, minute=0),
        },
        "wa-direct-sweep": {
            "task": "workers.tasks.wa_direct_sweep",
            # Receipts / isolir notices a crashed process left pending or mid-send.
            "schedule": timedelta(seconds=60),
        },
    }


class LivenessScheduler(PersistentScheduler):
    """Celery's default scheduler that also touches a file on every tick.

    The beat container's healthcheck (``python -m fibernode.cli health --component
    beat``) reads the file's age: beat ticks at least every 10 s (wa-queue-tick).
    """

    def tick(self, *args, **kwargs):
        """Mark beat alive, then run the normal tick."""
        from fibernode.services.health import touch_beat_alive

        try:
            touch_beat_alive()
        except OSError:  # pragma: no cover - the healthcheck then reports beat down
            log.warning("cannot touch beat's liveness file", exc_info=True)
        return super().tick(*args, **kwargs)


def _sqlite_file(url: str, prefix: str) -> Path | None:
    """The SQLite file behind a ``sqla+sqlite://`` / ``db+sqlite://`` URL, if any."""
    if not url.startswith(prefix + "sqlite"):
        return None
    try:
        database = make_url(url[len(prefix):]).database
    except ArgumentError:
        return None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _ensure_parent_dir(path: Path | None) -> None:
    if path is not None:
        path.expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def make_app(settings: Settings | None = None, *, set_as_current: bool = True) -> Celery:
    """Build a configured Celery app.

    Args:
        settings: The configuration to use (default: the process-wide settings).
        set_as_current: Make it the current app of the calling thread (Celery's default);
            ``False`` for a short-lived helper app that must not replace the project's.

    Returns:
        The app; the worker imports ``workers.tasks`` through ``include``.
    """
    settings = settings or get_settings()
    broker_url = settings.celery_broker_url
    backend_url = settings.celery_result_backend

    app = Celery("fibernode", broker=broker_url, backend=backend_url,
                 include=["workers.tasks"], set_as_current=set_as_current)
    app.conf.update(
        timezone=TIMEZONE,
        enable_utc=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_reject_on_worker_lost=True,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        beat_schedule=beat_schedule(),
        beat_scheduler="workers.celery_app:LivenessScheduler",
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
    )

    broker_file = _sqlite_file(broker_url, "sqla+") or _sqlite_file(broker_url, "sqlalchemy+")
    if broker_file is not None:
        # SQLite cannot create the directory of its file; every process that
        # touches the broker (web app, worker, beat) builds this app first.
        _ensure_parent_dir(broker_file)
        # These options go straight to ``sqlalchemy.create_engine`` in kombu's
        # transport, so only engine arguments belong here (no polling_interval).
        app.conf.broker_transport_options = {
            "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        }
    backend_file = _sqlite_file(backend_url, "db+")
    if backend_file is not None:
        _ensure_parent_dir(backend_file)
        app.conf.database_engine_options = {
            "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        }
    return app


app = make_app()
# The project's app in every thread, not only the one that imported this module.
app.set_default()


def send(task: str, *args: str) -> None:
    """Queue a task by name on the project's broker, from any thread.

    The job's row (file job, payment proof, import) carries its status, so no
    result is stored or awaited: a down broker is reported by this call alone.
    The app is Celery's current one: :data:`app` unless the caller (a test, a
    tool) made its own app current in this thread.

    Args:
        task: The task's registered name (``workers.tasks.…``).
        *args: Its positional arguments (JSON-serialisable).

    Raises:
        Exception: the broker could not be reached (kombu's ``OperationalError``).
    """
    current_app.send_task(task, args=list(args), ignore_result=True, retry=True,
                          retry_policy=PUBLISH_RETRY_POLICY)


def ping_worker(hostname: str, timeout: float = 5.0) -> bool:
    """Whether the worker ``hostname`` (``celery@…``) answers a ping over the broker."""
    # A helper app for this one ping: it must not become the thread's app for sending jobs.
    ping_app = make_app(get_settings(), set_as_current=False)
    try:
        replies = ping_app.control.ping(destination=[hostname], timeout=timeout)
    finally:
        ping_app.close()
    return any(hostname in reply for reply in replies or [])


# Every process that imports the workers' app (web, worker, beat, CLI) queues the
# services' background jobs through it.
jobqueue.install_sender(send)


@setup_logging.connect
def _json_logs(loglevel=None, **_kwargs) -> None:
    """Worker and beat log JSON lines like the web app (connecting this replaces Celery's)."""
    from fibernode import logs

    logs.configure(loglevel or get_settings().log_level)


@beat_init.connect
def _prepare_beat_dir(sender, **_kwargs) -> None:
    """Create the directory of beat's schedule file (beat only; before it opens it)."""
    filename = getattr(sender, "schedule_filename", None)
    if filename:
        try:
            _ensure_parent_dir(Path(filename))
        except OSError:  # pragma: no cover - beat reports the real error itself
            log.warning("cannot create the directory of %s", filename)
