"""Files built in the background (receipt bundles now, exports later): jobs and downloads.

A job row (``file_jobs``) tracks one file from request to download: ``pending``
until a Celery worker picks it up, ``running`` with ``progress_done`` of
``progress_total``, then ``done`` (the file is under the data directory's
``files/`` folder, at ``path``) or ``failed`` (``error`` says why, in Indonesian).
Files and rows expire ``RETENTION`` after they were finished; the daily cleanup
(:func:`fibernode.services.maintenance.cleanup`) deletes them.

Only the creator of a job, or the superadmin, may see it and download its file.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.config import get_settings
from fibernode.db import new_session
from fibernode.models import FileJob, FileJobStatus, User
from fibernode.services import storage, validation
from fibernode.services.context import Actor, require_user
from fibernode.services.errors import Conflict, NotFound
from fibernode.services.uow import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)

RETENTION = timedelta(hours=24)
FILES_DIR = "files"
NOT_FOUND = "File tidak ditemukan."
NOT_READY = "File masih disiapkan. Tunggu hingga proses selesai."
FAILED = "Pembuatan file gagal. Silakan buat ulang."
EXPIRED = "File sudah kedaluwarsa (disimpan 24 jam). Silakan buat ulang."
ENQUEUE_FAILED = ("Antrian proses latar belakang tidak dapat dihubungi. Silakan coba lagi "
                  "nanti.")

_jobs = FileJob.__table__


@dataclass(frozen=True)
class FileJobView:
    """A background file job as the UI polls it."""

    id: uuid.UUID
    kind: str
    status: FileJobStatus
    filename: str
    progress_done: int
    progress_total: int
    error: str | None
    created_by_name: str
    params: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime

    @property
    def is_running(self) -> bool:
        """Whether a worker still has to finish it (the UI keeps polling)."""
        return self.status in (FileJobStatus.PENDING, FileJobStatus.RUNNING)

    @property
    def is_ready(self) -> bool:
        """Whether the file can be downloaded."""
        return self.status == FileJobStatus.DONE

    @property
    def progress_percent(self) -> int:
        """Progress 0–100."""
        if self.status == FileJobStatus.DONE:
            return 100
        if self.progress_total <= 0:
            return 0
        return min(100, math.floor(self.progress_done * 100 / self.progress_total))


def files_root() -> Path:
    """The folder holding every job's file (``<data dir>/files``)."""
    return get_settings().data_dir / FILES_DIR


def absolute(relative: str) -> Path:
    """The file behind a job's ``path``, refusing anything outside :func:`files_root`."""
    root = files_root().resolve()
    path = (root / relative).resolve()
    if root != path and root not in path.parents:
        raise ValueError(f"file job path outside {root}: {relative!r}")
    return path


def as_uuid(job_id: Any) -> uuid.UUID:
    """A job id from text or UUID; anything else is an unknown job."""
    return validation.as_uuid(job_id, NOT_FOUND)


def view(job: FileJob, creator: str | None) -> FileJobView:
    """The view of a job row."""
    return FileJobView(
        id=job.id, kind=job.kind, status=job.status, filename=job.filename,
        progress_done=job.progress_done, progress_total=job.progress_total, error=job.error,
        created_by_name=creator or "", params=dict(job.params or {}),
        created_at=job.created_at, updated_at=job.updated_at, expires_at=job.expires_at,
    )


def create_job(uow: UnitOfWork, *, kind: str, filename: str, total: int,
               params: dict[str, Any]) -> FileJob:
    """Add a pending job in the caller's transaction (the caller audits and enqueues)."""
    now = clock.now()
    job = FileJob(created_by=uow.actor.user_id, kind=kind, status=FileJobStatus.PENDING,
                  filename=filename[:255], progress_total=total, params=params,
                  created_at=now, updated_at=now, expires_at=now + RETENTION)
    uow.session.add(job)
    uow.session.flush()
    return job


def fail_unqueued(job_id: uuid.UUID, _exc: Exception) -> None:
    """The failure policy of :func:`jobqueue.enqueue_on_commit` for a file job."""
    fail(job_id, ENQUEUE_FAILED)


def _load_visible(session, actor: Actor, job_id: Any) -> tuple[FileJob, str | None]:
    require_user(actor)
    job_id = as_uuid(job_id)
    row = session.exec(select(FileJob, User.name)
                       .outerjoin(User, User.id == FileJob.created_by)
                       .where(FileJob.id == job_id)).first()
    if row is None:
        raise NotFound(NOT_FOUND)
    job, creator = row
    if not (actor.is_superadmin or actor.is_system) and job.created_by != actor.user_id:
        raise NotFound(NOT_FOUND)
    return job, creator


def get_file_job(actor: Actor, job_id: uuid.UUID | str) -> FileJobView:
    """One background file job (its creator's, or any for the superadmin).

    Raises:
        AuthenticationRequired: nobody is logged in.
        NotFound: no such job, or another user's.
    """
    with new_session() as s:
        return view(*_load_visible(s, actor, job_id))


def file_job_path(actor: Actor, job_id: uuid.UUID | str) -> Path:
    """The finished file of a job, for the download.

    Raises:
        AuthenticationRequired: nobody is logged in.
        NotFound: no such job, another user's, or its file has expired.
        Conflict: the file is still being built, or building it failed.
    """
    with new_session() as s:
        job, _creator = _load_visible(s, actor, job_id)
    if job.status == FileJobStatus.FAILED:
        raise Conflict(job.error or FAILED)
    if job.status != FileJobStatus.DONE or not job.path:
        raise Conflict(NOT_READY)
    path = absolute(job.path)
    if job.expires_at <= clock.now() or not path.is_file():
        raise NotFound(EXPIRED)
    return path


# --- worker side ---------------------------------------------------------------------------


def claim(job_id: uuid.UUID) -> FileJob | None:
    """Mark a pending (or redelivered running) job running; ``None`` if it is not."""
    with unit_of_work(Actor.system("celery.files")).bookkeeping("claim of a file job") as uow:
        changed = uow.session.execute(
            sa.update(_jobs).where(_jobs.c.id == job_id, _jobs.c.status.in_(
                (FileJobStatus.PENDING, FileJobStatus.RUNNING)))
            .values(status=FileJobStatus.RUNNING, progress_done=0, updated_at=clock.now())
        ).rowcount
    if not changed:
        return None
    with new_session() as s:
        return s.get(FileJob, job_id)


def progress(job_id: uuid.UUID, done: int) -> None:
    """Store progress in its own short transaction, so pollers see it at once."""
    with unit_of_work(Actor.system("celery.files")).bookkeeping("progress of a file job") as uow:
        uow.session.execute(sa.update(_jobs).where(_jobs.c.id == job_id,
                                                   _jobs.c.status == FileJobStatus.RUNNING)
                            .values(progress_done=done, updated_at=clock.now()))


def write_file(job_id: uuid.UUID, subdir: str, suffix: str, data: bytes) -> str:
    """Write a job's file atomically; returns its path relative to :func:`files_root`."""
    relative = f"{subdir}/{job_id}{suffix}"
    storage.write_atomic(absolute(relative), data)
    return relative


def finish(job_id: uuid.UUID, relative: str, total: int, **audit: Any) -> bool:
    """Mark a running job done with its file (audited as the system)."""
    now = clock.now()
    with unit_of_work(Actor.system("celery.files")) as uow:
        changed = uow.session.execute(
            sa.update(_jobs).where(_jobs.c.id == job_id,
                                   _jobs.c.status == FileJobStatus.RUNNING)
            .values(status=FileJobStatus.DONE, path=relative, progress_done=total,
                    progress_total=total, error=None, updated_at=now,
                    expires_at=now + RETENTION)
        ).rowcount
        if changed:
            uow.audit("file_job.done", "file_jobs", job_id, path=relative, **audit)
    if not changed:  # cancelled or finished elsewhere meanwhile: drop our copy
        absolute(relative).unlink(missing_ok=True)
    return bool(changed)


def fail(job_id: uuid.UUID, message: str) -> None:
    """Mark an unfinished job failed (audited as the system)."""
    with unit_of_work(Actor.system("celery.files")) as uow:
        changed = uow.session.execute(
            sa.update(_jobs).where(_jobs.c.id == job_id, _jobs.c.status.in_(
                (FileJobStatus.PENDING, FileJobStatus.RUNNING)))
            .values(status=FileJobStatus.FAILED, error=message, updated_at=clock.now())
        ).rowcount
        if changed:
            uow.audit("file_job.fail", "file_jobs", job_id, error=message)


def delete_expired(uow: UnitOfWork, now: datetime) -> int:
    """Delete expired job rows in the caller's transaction; their files after its commit.

    Returns:
        How many jobs were removed.
    """
    rows = uow.session.execute(
        sa.select(_jobs.c.id, _jobs.c.path).where(_jobs.c.expires_at < now)
    ).all()
    if not rows:
        return 0
    ids = [job_id for job_id, _ in rows]
    for start in range(0, len(ids), 500):
        uow.session.execute(sa.delete(_jobs).where(_jobs.c.id.in_(ids[start:start + 500])))
    paths = [relative for _, relative in rows if relative]

    def remove_files() -> None:
        for relative in paths:
            try:
                absolute(relative).unlink(missing_ok=True)
            except (OSError, ValueError):
                log.warning("cannot delete expired file %s", relative, exc_info=True)

    uow.after_commit(remove_files)
    return len(rows)
