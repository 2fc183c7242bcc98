"""Housekeeping run by Celery beat."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from fibernode import clock
from fibernode.config import get_settings
from fibernode.models import ImportJob, ImportStatus, LoginAttempt, UserSession
from fibernode.services import devices, filejobs, storage
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.uow import unit_of_work

LOGIN_ATTEMPT_RETENTION = timedelta(days=30)
DEAD_SESSION_RETENTION = timedelta(days=7)
# Import jobs keep the uploaded rows (with encrypted NIKs): keep finished ones a
# month for the error report, and drop previews nobody confirmed within a week.
FINISHED_IMPORT_RETENTION = timedelta(days=30)
STALE_PREVIEW_RETENTION = timedelta(days=7)
# Scratch files (uploads being processed, half-built files) and backups a crash left
# half-written (``*.partial``; a real backup run takes minutes, not a day).
TMP_FILE_RETENTION = timedelta(hours=24)
PARTIAL_BACKUP_RETENTION = timedelta(hours=24)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CleanupResult:
    """What a cleanup run removed."""

    login_attempts: int
    sessions: int
    import_jobs: int = 0
    files: int = 0  # expired background files (receipt bundles, exports) and their jobs
    tmp_files: int = 0  # files under ``tmp_dir`` older than 24 h
    partial_backups: int = 0  # ``*.partial`` files in ``backup_dir`` older than 24 h
    branding_files: int = 0  # logo pipeline outputs no setting refers to (branding.py)
    proof_files: int = 0  # payment-proof photos whose rows are gone (payment_proofs.py)
    devices: int = 0  # trusted devices expired or revoked over a week ago (devices.py)


def delete_old_tmp_files(root: Path, cutoff: float) -> int:
    """Delete files under ``root`` last modified before ``cutoff`` (POSIX time).

    Old empty directories go too; symlinks are removed, never followed.

    Returns:
        How many files were deleted.
    """
    deleted = storage.delete_old_files(root, cutoff)
    if root.is_dir():
        for dirpath, _dirnames, _filenames in os.walk(root, topdown=False):
            here = Path(dirpath)
            if here != root and storage.older_than(here, cutoff):
                with contextlib.suppress(OSError):
                    here.rmdir()  # only when empty
    return len(deleted)


def cleanup(actor: Actor) -> CleanupResult:
    """Delete old rows and files nobody needs any more.

    Old login attempts, dead web sessions and trusted devices, old imports, expired files, temporary
    files older than 24 h, stale half-written backups and unreferenced branding files
    (the branding service audits those itself).

    Files of expired ``file_jobs`` are removed from disk after the commit; the
    counts go into the ``maintenance.cleanup`` audit row and a log line.
    """
    require_superadmin(actor)
    now = clock.now()
    settings = get_settings()
    tmp_files = delete_old_tmp_files(settings.tmp_dir,
                                     (now - TMP_FILE_RETENTION).timestamp())
    # Dumps being written (``*.partial``) and interrupted manifest writes (``*.part``);
    # top level only, and one being written right now is younger than the cutoff.
    partials = len(storage.delete_old_files(
        settings.backup_dir, (now - PARTIAL_BACKUP_RETENTION).timestamp(),
        pattern="*.part*", recursive=False))
    # opencv: only loaded when cleaning up
    from fibernode.services import branding, payment_proofs

    branding_files = branding.prune_unreferenced(actor)
    proof_files = payment_proofs.prune_orphan_files(actor)
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
        dead_devices = devices.delete_dead(uow.session, cutoff)
        files = filejobs.delete_expired(uow, now)
        result = CleanupResult(attempts, sessions, imports, files, tmp_files, partials,
                               branding_files, proof_files, dead_devices)
        uow.audit("maintenance.cleanup", None, None, **asdict(result))
    log.info("maintenance.cleanup %s", json.dumps(asdict(result), sort_keys=True),
             extra={"event": "maintenance.cleanup"})
    return result
