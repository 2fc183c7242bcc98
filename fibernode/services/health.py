"""Liveness of the parts FiberNode depends on, for /api/health and healthchecks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from fibernode import __version__, clock
from fibernode.config import get_settings
from fibernode.db import get_engine
from fibernode.services.settings import get_values


@dataclass
class HealthReport:
    """Each check's status; ``ok`` is false only when the database is unreachable."""

    database: str = "unknown"
    broker: str = "unknown"
    worker_heartbeat_age_s: int | None = None
    beat_last_run_age_s: int | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the app can serve requests."""
        return self.database == "ok"

    def as_dict(self) -> dict:
        """JSON body of the health endpoint."""
        return {
            "status": "ok" if self.ok else "error",
            "version": __version__,
            "database": self.database,
            "broker": self.broker,
            "worker_heartbeat_age_s": self.worker_heartbeat_age_s,
            "beat_last_run_age_s": self.beat_last_run_age_s,
            "errors": self.errors,
        }


def _age(iso: str | None) -> int | None:
    if not iso:
        return None
    try:
        return int((clock.now() - datetime.fromisoformat(iso)).total_seconds())
    except ValueError:
        return None


def check() -> HealthReport:
    """Run every check; never raises."""
    report = HealthReport()
    try:
        with get_engine().connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        report.database = "ok"
        values = get_values(["worker_heartbeat_at", "beat_last_run_at"])
        report.worker_heartbeat_age_s = _age(values.get("worker_heartbeat_at"))
        report.beat_last_run_age_s = _age(values.get("beat_last_run_at"))
    except Exception as exc:  # noqa: BLE001 - health reports, it does not fail
        report.database = "error"
        report.errors["database"] = type(exc).__name__
    settings = get_settings()
    if settings.redis_url:
        try:
            import redis

            redis.Redis.from_url(settings.redis_url, socket_timeout=2).ping()
            report.broker = "ok"
        except Exception as exc:  # noqa: BLE001
            report.broker = "error"
            report.errors["broker"] = type(exc).__name__
    else:
        report.broker = "embedded"
    return report
