"""Backups and restores on real PostgreSQL (pg_dump / pg_restore) and SQLite files.

Backup → restore into an empty database → every table's row count and the
invoices checksum equal the source's; plus retention, refusal of a non-empty
target and of a corrupted file, and the recorded outcome (settings + audit).
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.db import create_engine_for, new_session
from fibernode.models import ActivityLog, Invoice, Payment, PaymentStatus
from fibernode.services import backup, billing, invoices
from fibernode.services.context import Actor
from fibernode.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fibernode.services.settings import get_values
from tests.conftest import create_pg_database, drop_pg_database

pytestmark = [pytest.mark.skipif(shutil.which("pg_dump") is None or
                                 shutil.which("pg_restore") is None,
                                 reason="pg_dump/pg_restore not installed"),
              # SQLite too: a backup is pg_dump on PostgreSQL and a file copy on SQLite.
              pytest.mark.both_dialects("backup and restore are pg_dump / pg_restore on "
                                        "PostgreSQL and a file copy on SQLite")]

SYSTEM = Actor.system("test.backup")


def url_of(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def facts_of(url: str) -> tuple[dict[str, int], str]:
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            return backup.table_counts(conn), backup.invoices_checksum(conn)[1]
    finally:
        engine.dispose()


@pytest.fixture
def billed(world):
    """Next month's invoices for every subscriber; one paid in full, one in part."""
    # Two months ahead: its due dates lie after the seeded subscribers' registration.
    billing.run_billing(world.admin, period=clock.shift_period(clock.current_period(), 2))
    with new_session() as s:
        rows = s.exec(select(Invoice).order_by(Invoice.id)).all()
    assert len(rows) >= 2
    invoices.pay_invoice(world.admin, rows[0].id, version=rows[0].version, method="transfer")
    invoices.pay_invoice(world.admin, rows[1].id, version=rows[1].version, method="cash",
                         amount=10_000)
    with new_session() as s:
        assert s.exec(select(sa.func.count()).select_from(Payment)).one() == 2
        statuses = set(s.exec(select(Invoice.status)).all())
    assert PaymentStatus.PAID in statuses
    return world


def test_backup_and_restore_into_an_empty_database(billed, db, tmp_path):
    source_url = url_of(db)
    before_tables, before_sum = facts_of(source_url)
    assert before_tables["invoices"] >= 2 and before_tables["payments"] == 2

    result = backup.run_backup(SYSTEM, backup_dir=tmp_path / "backups", database_url=source_url)

    expected_ext = "dump" if db.dialect.name == "postgresql" else "sqlite3"
    assert result.path.parent == tmp_path / "backups"
    assert backup.NAME_RE.match(result.path.name).group(3) == expected_ext
    assert result.path.stat().st_size == result.size > 0
    assert not list((tmp_path / "backups").glob("*.partial"))
    manifest = json.loads(backup.manifest_path(result.path).read_text())
    assert manifest["engine"] == db.dialect.name
    assert manifest["tables"] == before_tables == result.tables
    assert manifest["invoices"] == {"rows": before_tables["invoices"], "checksum": before_sum}
    assert manifest["sha256"] == backup._sha256(result.path)
    assert manifest["alembic_version"]
    assert manifest["size"] == result.size

    # The outcome is recorded: settings for the health check, an audit row.
    values = get_values([backup.LAST_STATUS_KEY, backup.LAST_FILE_KEY, backup.LAST_RUN_KEY])
    assert values[backup.LAST_STATUS_KEY] == "ok"
    assert values[backup.LAST_FILE_KEY] == result.path.name
    with new_session() as s:
        [audit] = s.exec(select(ActivityLog).where(
            ActivityLog.action == "maintenance.backup")).all()
    assert audit.meta["file"] == result.path.name
    assert audit.meta["size"] == result.size
    assert audit.meta["deleted"] == []
    assert audit.meta["status"] == "ok"

    if db.dialect.name == "postgresql":
        name, target_url = create_pg_database("fibernode_restore")
    else:
        name, target_url = None, f"sqlite:///{tmp_path / 'restored' / 'fibernode.db'}"
    try:
        report = backup.restore_backup(SYSTEM, result.path, target_url)
        assert report.tables == before_tables
        assert report.invoices_checksum == before_sum
        restored_tables, restored_sum = facts_of(target_url)
        assert restored_sum == before_sum
        # Exactly the source's rows, plus the restore's own audit row.
        assert restored_tables == {**before_tables,
                                   "activity_logs": before_tables["activity_logs"] + 1}
        engine = create_engine_for(target_url)
        try:
            with engine.connect() as conn:
                marks = conn.execute(sa.select(ActivityLog.meta).where(
                    ActivityLog.action == "maintenance.restore")).scalars().all()
                paid = conn.execute(sa.select(sa.func.sum(Payment.amount))).scalar_one()
        finally:
            engine.dispose()
        assert [m["file"] for m in marks] == [result.path.name]
        with new_session() as s:
            assert paid == s.exec(select(sa.func.sum(Payment.amount))).one()

        # A second restore into the now filled target is refused...
        with pytest.raises(Conflict):
            backup.restore_backup(SYSTEM, result.path, target_url)
        # ...unless forced, which replaces it with the backup again.
        forced = backup.restore_backup(SYSTEM, result.path, target_url, force=True)
        assert forced.invoices_checksum == before_sum
    finally:
        if name:
            drop_pg_database(name)


def test_restore_into_a_non_empty_database_is_refused(world, db, tmp_path):
    source_url = url_of(db)
    result = backup.run_backup(SYSTEM, backup_dir=tmp_path, database_url=source_url)
    counts = facts_of(source_url)
    with pytest.raises(Conflict) as exc:
        backup.restore_backup(SYSTEM, result.path, source_url)
    assert "tidak kosong" in exc.value.message
    assert facts_of(source_url) == counts


def test_a_corrupted_or_unverifiable_backup_is_not_restored(world, db, tmp_path):
    result = backup.run_backup(SYSTEM, backup_dir=tmp_path, database_url=url_of(db))
    target = f"sqlite:///{tmp_path / 'never.db'}"
    if db.dialect.name == "sqlite":
        data = bytearray(result.path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        result.path.write_bytes(bytes(data))
        with pytest.raises(backup.BackupError, match="sha256"):
            backup.restore_backup(SYSTEM, result.path, target)
        assert not (tmp_path / "never.db").exists()
    else:  # a PostgreSQL dump does not go into SQLite
        with pytest.raises(ValidationFailed):
            backup.restore_backup(SYSTEM, result.path, target)
    backup.manifest_path(result.path).unlink()
    with pytest.raises(ValidationFailed):
        backup.restore_backup(SYSTEM, result.path, target)
    with pytest.raises(NotFound):
        backup.restore_backup(SYSTEM, tmp_path / "fibernode-20000101-000000.dump", target)


def test_a_failed_backup_is_recorded_and_raised(world, db, tmp_path):
    if db.dialect.name == "postgresql":
        bad = db.url.set(database="fibernode_does_not_exist").render_as_string(
            hide_password=False)
    else:
        bad = f"sqlite:///{tmp_path / 'missing.db'}"
    with pytest.raises(backup.BackupError):
        backup.run_backup(SYSTEM, backup_dir=tmp_path / "b", database_url=bad)
    values = get_values([backup.LAST_STATUS_KEY, backup.LAST_ERROR_KEY])
    assert values[backup.LAST_STATUS_KEY] == "error"
    assert values[backup.LAST_ERROR_KEY]
    assert not [p for p in (tmp_path / "b").iterdir()]  # no partial left behind
    with new_session() as s:
        [audit] = s.exec(select(ActivityLog).where(
            ActivityLog.action == "maintenance.backup")).all()
    assert audit.meta["status"] == "error"


def test_only_the_superadmin_runs_backups(world, tmp_path):
    with pytest.raises(PermissionDenied):
        backup.run_backup(world.mitra_a, backup_dir=tmp_path)
    with pytest.raises(PermissionDenied):
        backup.list_backups(world.mitra_a, backup_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_password_goes_to_the_environment_not_argv():
    env, dbname = backup.libpq_env(
        "postgresql+psycopg://fibernode:s3cr%40t@db.internal:5433/fn prod?sslmode=require")
    assert env["PGPASSWORD"] == "s3cr@t"
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"]) == ("db.internal", "5433", "fibernode")
    assert env["PGSSLMODE"] == "require"
    assert "s3cr" not in dbname
    assert dbname == "dbname='fn prod'"


# --- retention -----------------------------------------------------------------------------


def fake_backup(directory: Path, at, *, ext: str = "dump", manifest_at=None,
                name_at=None) -> Path:
    stamp = (name_at or at).astimezone(clock.JAKARTA).strftime("%Y%m%d-%H%M%S")
    path = directory / f"fibernode-{stamp}.{ext}"
    path.write_bytes(b"x")
    if manifest_at is not None:
        backup.manifest_path(path).write_text(json.dumps({"created_at": manifest_at.isoformat()}))
    return path


def test_retention_deletes_old_backups_by_their_time_not_their_mtime(tmp_path):
    now = clock.now()
    day = timedelta(days=1)
    old_by_name = fake_backup(tmp_path, now - 40 * day)
    old_by_manifest = fake_backup(tmp_path, now - 31 * day, ext="sqlite3",
                                  manifest_at=now - 31 * day)
    # The name says recent, the manifest (which wins) says 45 days.
    renamed = fake_backup(tmp_path, now, name_at=now - 2 * day, manifest_at=now - 45 * day)
    kept = fake_backup(tmp_path, now - 29 * day, manifest_at=now - 29 * day)
    touched_long_ago = fake_backup(tmp_path, now - 1 * day)
    os.utime(touched_long_ago, (0, 0))  # an mtime from 1970 does not matter
    newest = fake_backup(tmp_path, now - timedelta(minutes=1),
                         manifest_at=now - timedelta(minutes=1))
    other = tmp_path / "catatan.txt"
    other.write_text("bukan backup")

    deleted = backup.prune(tmp_path, 30, now)

    assert sorted(deleted) == sorted([old_by_name.name, old_by_manifest.name, renamed.name])
    for path in (old_by_name, old_by_manifest, renamed):
        assert not path.exists()
        assert not backup.manifest_path(path).exists()
    for path in (kept, touched_long_ago, newest, other):
        assert path.exists()
    assert backup.manifest_path(kept).exists()
    listed = [b.name for b in backup.list_backups(SYSTEM, backup_dir=tmp_path)]
    assert listed == [newest.name, touched_long_ago.name, kept.name]


def test_retention_never_deletes_the_newest_backup(tmp_path):
    now = clock.now()
    older = fake_backup(tmp_path, now - timedelta(days=90), manifest_at=now - timedelta(days=90))
    newest = fake_backup(tmp_path, now - timedelta(days=50), manifest_at=now - timedelta(days=50))
    assert backup.prune(tmp_path, 30, now) == [older.name]
    assert newest.exists()
    assert backup.prune(tmp_path, 30, now) == []
    assert newest.exists()


def test_run_backup_applies_the_retention(world, db, tmp_path):
    now = clock.now()
    old = fake_backup(tmp_path, now - timedelta(days=31), manifest_at=now - timedelta(days=31))
    result = backup.run_backup(SYSTEM, backup_dir=tmp_path, database_url=url_of(db))
    assert result.deleted == [old.name]
    assert not old.exists()
    with new_session() as s:
        [audit] = s.exec(select(ActivityLog).where(
            ActivityLog.action == "maintenance.backup")).all()
    assert audit.meta["deleted"] == [old.name]
    assert audit.meta["job"] == "test.backup"
