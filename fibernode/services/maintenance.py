"""Housekeeping run by Celery beat."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from fibernode import clock
from fibernode.models import LoginAttempt, UserSession
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.uow import unit_of_work

LOGIN_ATTEMPT_RETENTION = timedelta(days=30)
DEAD_SESSION_RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class CleanupResult:
    """What a cleanup run removed."""

    login_attempts: int
    sessions: int


def cleanup(actor: Actor) -> CleanupResult:
    """Delete old login attempts and long-dead web sessions, and log the counts."""
    require_superadmin(actor)
    now = clock.now()
    with unit_of_work(actor) as uow:
        attempts = uow.session.exec(
            sa.delete(LoginAttempt).where(LoginAttempt.created_at < now - LOGIN_ATTEMPT_RETENTION)
        ).rowcount or 0
        cutoff = now - DEAD_SESSION_RETENTION
        sessions = uow.session.exec(
            sa.delete(UserSession).where(
                sa.or_(UserSession.expires_at < cutoff, UserSession.revoked_at < cutoff)
            )
        ).rowcount or 0
        uow.audit("maintenance.cleanup", None, None, login_attempts=attempts,
                  sessions=sessions)
    return CleanupResult(attempts, sessions)
