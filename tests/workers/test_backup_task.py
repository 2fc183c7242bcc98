"""The daily backup: its beat entry, and the task run by a real Celery worker."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from celery.beat import ScheduleEntry
from celery.schedules import crontab
from sqlmodel import Session, select

from fibernode import db as fn_db
from fibernode.models import ActivityLog
from tests.conftest import migrate
from tests.workers.test_celery_worker import (  # noqa: F401 - fixtures
    RESULT_TIMEOUT,
    _setting,
    _use_env,
    celery_procs,
    client_app,
    start_worker,
)


def test_daily_backup_runs_at_02_00_jakarta():
    from workers.celery_app import LivenessScheduler, app

    spec = app.conf.beat_schedule["daily-backup"]
    entry = ScheduleEntry(name="daily-backup", app=app, **dict(spec))
    assert entry.task == "workers.tasks.backup"
    assert (entry.args, entry.kwargs) == ((), {})
    cron = entry.schedule
    assert isinstance(cron, crontab)
    assert (cron.hour, cron.minute) == ({2}, {0})
    assert cron.day_of_week == set(range(7))
    assert str(cron.tz) == "Asia/Jakarta"
    jakarta = ZoneInfo("Asia/Jakarta")
    last_run_at, delta, _now = cron.remaining_delta(datetime(2025, 1, 10, 12, 0, tzinfo=jakarta))
    next_run = last_run_at + delta
    assert next_run == datetime(2025, 1, 11, 2, 0, tzinfo=jakarta)
    assert next_run.astimezone(UTC) == datetime(2025, 1, 10, 19, 0, tzinfo=UTC)
    assert "workers.tasks.backup" in app.tasks
    # Beat runs with the scheduler that marks it alive for its healthcheck.
    assert app.conf.beat_scheduler == "workers.celery_app:LivenessScheduler"
    assert LivenessScheduler.__mro__[1].__name__ == "PersistentScheduler"


@pytest.mark.celery
@pytest.mark.timeout(180)
def test_worker_runs_the_backup_task(monkeypatch, tmp_path, celery_procs, client_app):  # noqa: F811
    db_url = f"sqlite:///{tmp_path / 'fibernode.db'}"
    migrate(db_url)
    backups = tmp_path / "backups"
    monkeypatch.setenv("BACKUP_DIR", str(backups))
    _use_env(monkeypatch, tmp_path, db_url)
    worker = start_worker(celery_procs)
    app = client_app()

    result = app.tasks["workers.tasks.backup"].delay().get(timeout=RESULT_TIMEOUT)

    [file] = list(backups.glob("fibernode-*.sqlite3"))
    assert result["file"] == str(file) and result["engine"] == "sqlite"
    manifest = json.loads((backups / f"{file.name}.json").read_text())
    assert manifest["tables"]["alembic_version"] == 1
    engine = fn_db.create_engine_for(db_url)
    try:
        assert _setting(engine, "backup_last_status") == "ok"
        assert _setting(engine, "backup_last_file") == file.name
        with Session(engine) as s:
            [log] = s.exec(select(ActivityLog).where(
                ActivityLog.action == "maintenance.backup")).all()
    finally:
        engine.dispose()
    assert log.meta["job"] == "celery.backup"
    # Worker logs are JSON lines: the message's own quotes arrive escaped.
    worker.wait_for_log('maintenance.backup {\\"deleted\\": []')
