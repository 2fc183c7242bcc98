"""Cleanup of temporary files and half-written backups, and what it records."""

from __future__ import annotations

import os
import time

import pytest
from sqlmodel import select

from fibernode.config import get_settings, reset_settings
from fibernode.db import new_session
from fibernode.models import ActivityLog
from fibernode.services import maintenance
from fibernode.services.context import Actor


@pytest.fixture
def dirs(monkeypatch, tmp_path):
    monkeypatch.setenv("FIBERNODE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FIBERNODE_TMP_DIR", str(tmp_path / "tmp"))
    monkeypatch.setenv("BACKUP_DIR", str(tmp_path / "backups"))
    reset_settings()
    settings = get_settings()
    settings.tmp_dir.mkdir(parents=True)
    settings.backup_dir.mkdir(parents=True)
    yield settings
    reset_settings()


def make(path, *, hours_old: float, content: bytes = b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    at = time.time() - hours_old * 3600
    os.utime(path, (at, at))
    return path


def test_cleanup_deletes_old_tmp_files_and_stale_partials(world, dirs):
    tmp, backups = dirs.tmp_dir, dirs.backup_dir
    old = make(tmp / "upload-1.bin", hours_old=25)
    old_nested = make(tmp / "proofs" / "abc" / "raw.jpg", hours_old=48)
    fresh = make(tmp / "upload-2.bin", hours_old=23)
    fresh_nested = make(tmp / "proofs" / "def" / "raw.jpg", hours_old=1)
    outside = make(dirs.data_dir / "keep.txt", hours_old=100)
    stale_partial = make(backups / "fibernode-20260101-020000.dump.partial", hours_old=30)
    running_partial = make(backups / "fibernode-20261121-020000.dump.partial", hours_old=0.1)
    old_backup = make(backups / "fibernode-20200101-020000.dump", hours_old=24 * 400)
    if hasattr(os, "symlink"):
        link = tmp / "link-to-outside"
        link.symlink_to(outside)
        at = time.time() - 30 * 3600
        os.utime(link, (at, at), follow_symlinks=False)

    result = maintenance.cleanup(Actor.system("cleanup"))

    assert result.tmp_files == (3 if hasattr(os, "symlink") else 2)
    assert result.partial_backups == 1
    assert not old.exists() and not old_nested.exists() and not stale_partial.exists()
    for path in (fresh, fresh_nested, outside, running_partial, old_backup):
        assert path.exists(), path
    with new_session() as s:
        [log] = s.exec(select(ActivityLog).where(
            ActivityLog.action == "maintenance.cleanup")).all()
    assert log.meta == {"login_attempts": 0, "sessions": 0, "import_jobs": 0, "files": 0,
                        "tmp_files": result.tmp_files, "partial_backups": 1, "branding_files": 0,
                        "proof_files": 0, "devices": 0, "job": "cleanup"}

    again = maintenance.cleanup(Actor.system("cleanup"))
    assert (again.tmp_files, again.partial_backups) == (0, 0)


def test_cleanup_without_the_directories(world, dirs, tmp_path):
    dirs.tmp_dir.rmdir()
    dirs.backup_dir.rmdir()
    result = maintenance.cleanup(Actor.system("cleanup"))
    assert (result.tmp_files, result.partial_backups) == (0, 0)


def test_cleanup_prunes_unreferenced_branding_files(world, dirs, monkeypatch, tmp_path):
    from fibernode.services import branding

    monkeypatch.setenv("UPLOADS_DIR", str(tmp_path / "uploads"))
    reset_settings()
    orphan = make(branding.branding_dir() / "logo-0123456789ab.webp", hours_old=48)
    result = maintenance.cleanup(Actor.system("cleanup"))
    assert result.branding_files == 1
    assert not orphan.exists()
    with new_session() as s:
        [log] = s.exec(select(ActivityLog).where(
            ActivityLog.action == "maintenance.cleanup")).all()
    assert log.meta["branding_files"] == 1
