"""Housekeeping run by Celery beat."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from fibernode import clock
from fibernode.models import ImportJob, ImportStatus, LoginAttempt, UserSession
from fibernode.services import filejobs
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.uow import unit_of_work

LOGIN_ATTEMPT_RETENTION = timedelta(days=30)
DEAD_SESSION_RETENTION = timedelta(days=7)
# Import jobs keep the uploaded rows (with encrypted NIKs): keep finished ones a
# month for the error report, and drop previews nobody confirmed within a week.
FINISHED_IMPORT_RETENTION = timedelta(days=30)
STALE_PREVIEW_RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class CleanupResult:
    """What a cleanup run removed."""

    login_attempts: int
    sessions: int
    import_jobs: int = 0
    files: int = 0  # expired background files (receipt bundles, exports) and their jobs


def cleanup(actor: Actor) -> CleanupResult:
    """Delete old login attempts, dead web sessions, old imports and expired files.

    Files of expired ``file_jobs`` are removed from disk after the commit.
    """
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
        finished = (ImportStatus.DONE, ImportStatus.FAILED, ImportStatus.CANCELLED)
        imports = uow.session.exec(
            sa.delete(ImportJob).where(sa.or_(
                sa.and_(ImportJob.status.in_(finished),
                        ImportJob.updated_at < now - FINISHED_IMPORT_RETENTION),
                sa.and_(ImportJob.status == ImportStatus.PREVIEWED,
                        ImportJob.updated_at < now - STALE_PREVIEW_RETENTION),
            ))
        ).rowcount or 0
        files = filejobs.delete_expired(uow, now)
        uow.audit("maintenance.cleanup", None, None, login_attempts=attempts,
                  sessions=sessions, import_jobs=imports, files=files)
    return CleanupResult(attempts, sessions, imports, files)
