"""Liveness of the parts FiberNode depends on, for /api/health and healthchecks.

``check()`` never raises and uses short timeouts. Overall status:

* ``error`` (HTTP 503): the database cannot be reached; nothing works.
* ``degraded`` (HTTP 200): the app serves, but something in the background is
  wrong: the broker does not answer, the worker heartbeat or beat's last run is
  older than 3 minutes (or never happened), the last backup failed or is older
  than 26 hours, or the WhatsApp gateway (``WA_MODE=neonize``) is down, or production
  runs in outbox mode (messages are recorded, nothing reaches subscribers).
* ``ok``: everything answered.

Heartbeats: beat sends ``workers.tasks.heartbeat`` every minute and a worker runs
it, which writes ``worker_heartbeat_at`` and ``beat_last_run_at``. A fresh value
therefore proves the whole chain beat → broker → worker → database; a stale one
does not say which link broke. The per-container healthchecks
(``python -m fibernode.cli health --component ...``, see :func:`check_component`)
test each process directly instead.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

from fibernode import __version__, clock
from fibernode.config import get_settings
from fibernode.db import get_engine
from fibernode.services.settings import get_values

WORKER_STALE_S = 180
BEAT_STALE_S = 180
BACKUP_STALE_S = 26 * 3600
TIMEOUT_S = 2.0
# Touched by beat's scheduler on every tick (workers.celery_app.LivenessScheduler).
BEAT_ALIVE_FILE = "beat-alive"
COMPONENTS = ("web", "worker", "beat")
OUTBOX_PRODUCTION_ERROR = "WA_MODE=outbox: pesan hanya dicatat, tidak dikirim ke pelanggan"


@dataclass
class HealthReport:
    """Each check's status and the ages of the background jobs' last signs of life."""

    database: str = "unknown"
    broker: str = "unknown"
    worker_heartbeat_age_s: int | None = None
    beat_last_run_age_s: int | None = None
    backup_status: str = "never"  # ok | error | never
    backup_age_s: int | None = None
    backup_file: str | None = None
    wa_mode: str = ""
    whatsapp: str = "unknown"  # outbox | ok | error | configured | not_configured
    problems: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the app can serve requests (the database answers)."""
        return self.database == "ok"

    @property
    def status(self) -> str:
        """``ok``, ``degraded`` or ``error``."""
        if not self.ok:
            return "error"
        return "degraded" if self.problems else "ok"

    def as_dict(self) -> dict:
        """JSON body of the health endpoint."""
        return {
            "status": self.status,
            "version": __version__,
            "database": self.database,
            "broker": self.broker,
            "worker_heartbeat_age_s": self.worker_heartbeat_age_s,
            "beat_last_run_age_s": self.beat_last_run_age_s,
            "backup": {"status": self.backup_status, "age_s": self.backup_age_s,
                       "file": self.backup_file},
            "whatsapp": {"mode": self.wa_mode, "status": self.whatsapp},
            "problems": self.problems,
            "errors": self.errors,
        }


def _age(iso: str | None) -> int | None:
    if not iso:
        return None
    try:
        return int((clock.now() - datetime.fromisoformat(iso)).total_seconds())
    except (TypeError, ValueError):
        return None


def _stale(age: int | None, limit: int) -> bool:
    return age is None or age > limit


def check_database(report: HealthReport) -> None:
    """Database reachability plus the background jobs' timestamps stored in it."""
    try:
        with get_engine().connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        report.database = "ok"
        values = get_values(["worker_heartbeat_at", "beat_last_run_at", "backup_last_run_at",
                             "backup_last_status", "backup_last_file"])
    except Exception as exc:  # noqa: BLE001 - health reports, it does not fail
        report.database = "error"
        report.errors["database"] = type(exc).__name__
        report.problems.append("database")
        return
    report.worker_heartbeat_age_s = _age(values.get("worker_heartbeat_at"))
    report.beat_last_run_age_s = _age(values.get("beat_last_run_at"))
    if _stale(report.worker_heartbeat_age_s, WORKER_STALE_S):
        report.problems.append("worker")
    if _stale(report.beat_last_run_age_s, BEAT_STALE_S):
        report.problems.append("beat")
    if values.get("backup_last_run_at"):
        report.backup_age_s = _age(values["backup_last_run_at"])
        report.backup_status = values.get("backup_last_status") or "unknown"
        report.backup_file = values.get("backup_last_file") or None
        if report.backup_status != "ok" or _stale(report.backup_age_s, BACKUP_STALE_S):
            report.problems.append("backup")
    # No backup yet (a new install before its first 02:00 run) is not a problem.


def check_broker(report: HealthReport) -> None:
    """Redis PING, or ``embedded`` for the SQLite broker (it lives in a local file)."""
    settings = get_settings()
    if not settings.redis_url:
        report.broker = "embedded"
        return
    try:
        import redis

        redis.Redis.from_url(settings.redis_url, socket_timeout=TIMEOUT_S,
                             socket_connect_timeout=TIMEOUT_S).ping()
        report.broker = "ok"
    except Exception as exc:  # noqa: BLE001
        report.broker = "error"
        report.errors["broker"] = type(exc).__name__
        report.problems.append("broker")


def _cloud_configured() -> bool:
    from fibernode.db import new_session
    from fibernode.models import WaSession

    with new_session() as s:
        return s.exec(sa.select(sa.func.count()).select_from(WaSession).where(
            WaSession.cloud_phone_id.is_not(None), WaSession.cloud_token.is_not(None))
        ).scalar_one() > 0


def check_whatsapp(report: HealthReport) -> None:
    """The WhatsApp side by ``WA_MODE``: outbox, gateway ``/health``, or cloud credentials."""
    settings = get_settings()
    report.wa_mode = settings.wa_mode
    if settings.wa_mode == "neonize":
        try:
            res = httpx.get(f"{settings.wa_gateway_url}/health", timeout=TIMEOUT_S)
            healthy = res.status_code == 200 and res.json().get("ok") is True
            report.whatsapp = "ok" if healthy else "error"
            if not healthy:
                report.errors["whatsapp"] = f"HTTP {res.status_code}"
        except Exception as exc:  # noqa: BLE001
            report.whatsapp = "error"
            report.errors["whatsapp"] = type(exc).__name__
        if report.whatsapp == "error":
            report.problems.append("whatsapp")
    elif settings.wa_mode == "cloud":
        try:
            report.whatsapp = "configured" if _cloud_configured() else "not_configured"
        except Exception as exc:  # noqa: BLE001
            report.whatsapp = "unknown"
            report.errors["whatsapp"] = type(exc).__name__
    else:
        report.whatsapp = "outbox"
        # Outbox only records messages: fine for a trial, a silent failure in production.
        if settings.is_production:
            report.problems.append("whatsapp")
            report.errors["whatsapp"] = OUTBOX_PRODUCTION_ERROR


def check() -> HealthReport:
    """Run every check; never raises."""
    report = HealthReport()
    check_database(report)
    check_broker(report)
    check_whatsapp(report)
    return report


# --- per-process healthchecks (docker compose) ----------------------------------------


def beat_alive_path() -> Path:
    """The file beat touches on every scheduler tick."""
    return get_settings().data_dir / BEAT_ALIVE_FILE


def touch_beat_alive() -> None:
    """Called by beat's scheduler on every tick."""
    path = beat_alive_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def check_component(component: str, *, hostname: str | None = None,
                    ping: Callable[[str], bool] | None = None) -> tuple[bool, str]:
    """Whether one process is healthy, for its container's healthcheck.

    * ``web``: the database answers (what /api/health turns into 503).
    * ``worker``: the database answers and this worker (``celery@<hostname>``) answers a
      ping over the broker. The embedded SQLite broker has no remote control, so
      there the worker heartbeat must be fresher than 3 minutes instead (which
      also needs beat).
    * ``beat``: beat's scheduler ticked within the last 3 minutes (a file in
      ``data_dir`` it touches on every tick; beat runs a tick at least every 10 s).

    Args:
        component: ``web``, ``worker`` or ``beat``.
        hostname: The worker's Celery name (default ``celery@<this host>``).
        ping: Asks a worker by name over the broker (the caller's Celery app:
            ``workers.celery_app.ping_worker``); without it the heartbeat is read.

    Returns:
        (healthy, a one-line explanation in Indonesian).
    """
    if component not in COMPONENTS:
        return False, f"komponen tidak dikenal: {component}"
    if component == "beat":
        try:
            age = time.time() - beat_alive_path().stat().st_mtime
        except OSError:
            return False, "beat belum pernah berjalan (berkas penanda tidak ada)"
        if age > BEAT_STALE_S:
            return False, f"beat terakhir aktif {int(age)} detik lalu"
        return True, f"beat aktif {int(age)} detik lalu"
    report = HealthReport()
    check_database(report)
    if not report.ok:
        return False, f"database tidak bisa dihubungi ({report.errors.get('database')})"
    if component == "web":
        return True, "database OK"
    if get_settings().redis_url and ping is not None:
        name = hostname or f"celery@{socket.gethostname()}"
        try:
            if ping(name):
                return True, f"{name} menjawab ping"
        except Exception as exc:  # noqa: BLE001
            return False, f"ping ke {name} gagal: {type(exc).__name__}"
        return False, f"{name} tidak menjawab ping"
    age = report.worker_heartbeat_age_s
    if age is None:
        return False, "belum ada heartbeat worker"
    if _stale(age, WORKER_STALE_S):
        return False, f"heartbeat worker terlalu lama ({age} detik)"
    return True, f"heartbeat worker {age} detik lalu"
