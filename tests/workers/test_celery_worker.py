"""Real Celery processes: a worker on Redis, a worker on the embedded broker, beat.

Each test starts ``celery`` subprocesses from the project venv with the same
environment the test process uses for its client app, so both sides build their
app from ``fibernode.config`` exactly as in production. Processes are always
stopped in fixture teardown; their logs are printed there, so pytest shows
them with any failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
import sqlalchemy as sa
from celery import Celery
from celery import current_app as celery_current_app
from celery.beat import ScheduleEntry
from celery.schedules import crontab
from celery.schedules import schedule as interval_schedule
from sqlmodel import Session, select

import workers.tasks  # noqa: F401  (registers the shared tasks with every app)
from fibernode import db as fn_db
from fibernode.config import PROJECT_ROOT, get_settings, reset_settings
from fibernode.models import ActivityLog, LoginAttempt, Setting
from tests.conftest import REDIS_URL, create_pg_database, drop_pg_database, migrate

pytestmark = [pytest.mark.celery, pytest.mark.timeout(180)]

READY_TIMEOUT = 60
RESULT_TIMEOUT = 60
STOP_TIMEOUT = 30
CELERY_ENV_KEYS = ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")


def _celery_executable() -> str:
    candidate = Path(sys.executable).with_name("celery")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("celery")
    assert found, "the celery command is not installed in this environment"
    return found


class CeleryProcess:
    """One ``celery`` subprocess writing its output to a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path):
        self.name = name
        self.log_path = log_path
        self._log_file = log_path.open("wb")
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [_celery_executable(), *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        """Everything the process has written so far."""
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = READY_TIMEOUT) -> None:
        """Wait until ``text`` appears in the log; fail early if the process dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.proc.poll() is not None:
                pytest.fail(f"celery {self.name} exited with {self.proc.returncode} "
                            f"before logging {text!r}:\n{self.log()}")
            time.sleep(0.2)
        pytest.fail(f"celery {self.name} did not log {text!r} within {timeout}s:\n{self.log()}")

    def assert_running(self) -> None:
        """Fail with the log when the process has exited."""
        if self.proc.poll() is not None:
            pytest.fail(f"celery {self.name} exited with {self.proc.returncode}:\n{self.log()}")

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL if it does not exit in time; always waits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
        self._log_file.close()


@pytest.fixture
def celery_procs(tmp_path) -> Iterator[Callable[..., CeleryProcess]]:
    """Start ``celery`` subprocesses with the current environment; stops them all."""
    started: list[CeleryProcess] = []

    def start(name: str, *args: str) -> CeleryProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(tmp_path), str(PROJECT_ROOT), env.get("PYTHONPATH")) if p
        )
        proc = CeleryProcess(name, list(args), env, tmp_path / f"celery-{name}.log")
        started.append(proc)
        return proc

    yield start
    for proc in reversed(started):
        proc.stop()
    for proc in started:
        # Shown by pytest only when the test failed.
        print(f"----- celery {proc.name} (exit {proc.proc.returncode}) -----\n{proc.log()}")


def start_worker(celery_procs: Callable[..., CeleryProcess],
                 app_module: str = "workers.celery_app") -> CeleryProcess:
    """A solo-pool worker on the default queue, waited for until it is ready."""
    worker = celery_procs(
        "worker", "-A", app_module, "worker", "--pool=solo", "--concurrency=1",
        "-Q", "celery", "--loglevel=INFO", f"--hostname=test-{uuid.uuid4().hex[:8]}@%h",
    )
    worker.wait_for_log(" ready.")
    return worker


@pytest.fixture
def client_app(monkeypatch) -> Iterator[Callable[[], Celery]]:
    """Build a client app from the (monkeypatched) environment, like the web app does."""
    from workers.celery_app import make_app

    previous = celery_current_app._get_current_object()
    built: list[Celery] = []

    def build() -> Celery:
        reset_settings()
        app = make_app(get_settings())
        built.append(app)
        return app

    yield build
    for app in built:
        app.close()
    previous.set_current()
    reset_settings()


def _use_env(monkeypatch, tmp_path: Path, database_url: str, **celery_env: str) -> None:
    for key in CELERY_ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    for key, value in celery_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("APP_ENV", "test")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("FIBERNODE_DATA_DIR", str(tmp_path / "data"))
    reset_settings()


def _insert_login_attempts(engine: sa.Engine, now: datetime) -> None:
    rows = [
        {"username": "lama1", "created_at": now - timedelta(days=45)},
        {"username": "lama2", "created_at": now - timedelta(days=31)},
        {"username": "baru", "created_at": now - timedelta(days=1)},
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(LoginAttempt.__table__), [
            {"id": uuid.uuid4(), "ip_address": "10.0.0.1", "success": False,
             "user_agent": "pytest", **row} for row in rows
        ])


def _setting(engine: sa.Engine, key: str) -> str | None:
    with Session(engine) as s:
        return s.exec(select(Setting.value).where(Setting.key == key)).first()


def exercise_tasks(app: Celery, worker: CeleryProcess, engine: sa.Engine) -> None:
    """Cleanup and heartbeat through a real worker; checks the database effects."""
    now = datetime.now(UTC)
    _insert_login_attempts(engine, now)
    old_heartbeat = "2000-01-01T00:00:00+00:00"
    with engine.begin() as conn:
        conn.execute(sa.insert(Setting.__table__).values(
            id=uuid.uuid4(), key="worker_heartbeat_at", value=old_heartbeat, updated_at=now))

    worker.assert_running()
    counts = app.tasks["workers.tasks.cleanup"].delay().get(timeout=RESULT_TIMEOUT)
    assert counts == {"login_attempts": 2, "sessions": 0, "import_jobs": 0, "files": 0,
                      "tmp_files": 0, "partial_backups": 0, "branding_files": 0, "proof_files": 0,
                      "devices": 0}
    with Session(engine) as s:
        left = s.exec(select(LoginAttempt.username)).all()
        logs = s.exec(select(ActivityLog).where(ActivityLog.action == "maintenance.cleanup")).all()
    assert left == ["baru"]
    assert len(logs) == 1
    assert logs[0].user_id is None
    assert logs[0].meta == {"login_attempts": 2, "sessions": 0, "import_jobs": 0,
                            "files": 0, "tmp_files": 0, "partial_backups": 0,
                            "branding_files": 0, "proof_files": 0, "devices": 0,
                            "job": "celery.cleanup"}
    worker.wait_for_log("maintenance cleanup removed 2 login attempts, 0 sessions and 0 "
                        "import jobs")

    heartbeat = app.tasks["workers.tasks.heartbeat"]
    taken_at = datetime.fromisoformat(heartbeat.delay().get(timeout=RESULT_TIMEOUT))
    stored = _setting(engine, "worker_heartbeat_at")
    assert stored and stored != old_heartbeat
    stored_at = datetime.fromisoformat(stored)
    assert taken_at <= stored_at < taken_at + timedelta(seconds=30)
    assert abs(stored_at - datetime.now(UTC)) < timedelta(minutes=2)
    # A manual heartbeat does not claim that beat ran.
    assert _setting(engine, "beat_last_run_at") is None

    heartbeat.delay(source="beat").get(timeout=RESULT_TIMEOUT)
    beat_at = _setting(engine, "beat_last_run_at")
    assert beat_at and datetime.fromisoformat(beat_at) >= stored_at


@pytest.fixture
def fresh_pg_database() -> Iterator[str]:
    """A new migrated PostgreSQL database, dropped afterwards (connections cut off)."""
    name, url = create_pg_database("fibernode_celery")
    try:
        migrate(url)
        yield url
    finally:
        drop_pg_database(name)


def test_worker_on_redis_runs_cleanup_and_heartbeat(
    monkeypatch, tmp_path, fresh_pg_database, celery_procs, client_app
):
    redis.Redis.from_url(REDIS_URL).flushdb()
    _use_env(monkeypatch, tmp_path, fresh_pg_database, REDIS_URL=REDIS_URL,
             CELERY_BROKER_URL=REDIS_URL, CELERY_RESULT_BACKEND=REDIS_URL)
    app = client_app()
    assert app.conf.broker_url == REDIS_URL
    assert app.conf.result_backend == REDIS_URL

    worker = start_worker(celery_procs)
    assert "Connected to redis://" in worker.log()  # the banner masks the URL
    assert f"results:     {REDIS_URL}" in worker.log()
    engine = fn_db.create_engine_for(fresh_pg_database)
    try:
        exercise_tasks(app, worker, engine)
    finally:
        engine.dispose()


def test_worker_on_embedded_sqlite_broker(monkeypatch, tmp_path, celery_procs, client_app):
    """The first-run default: no Redis, SQLite broker/results and SQLite app database."""
    db_url = f"sqlite:///{tmp_path / 'fibernode.db'}"
    migrate(db_url)
    _use_env(monkeypatch, tmp_path, db_url)
    data_dir = tmp_path / "data"
    assert not data_dir.exists()

    worker = start_worker(celery_procs)
    app = client_app()
    broker_db = data_dir / "celery-broker.db"
    assert app.conf.broker_url == f"sqla+sqlite:///{broker_db}"
    assert app.conf.result_backend == f"db+sqlite:///{data_dir / 'celery-results.db'}"
    assert f"Connected to sqla+sqlite:///{broker_db}" in worker.log()

    engine = fn_db.create_engine_for(db_url)
    try:
        exercise_tasks(app, worker, engine)
    finally:
        engine.dispose()
    assert broker_db.is_file()
    assert (data_dir / "celery-results.db").is_file()


def test_beat_schedule_entries():
    from workers.celery_app import app

    assert app.conf.timezone == "Asia/Jakarta"
    assert app.conf.enable_utc is True
    schedule = app.conf.beat_schedule
    assert set(schedule) >= {"maintenance-cleanup", "worker-heartbeat", "overdue-digest"}
    # Bind the entries to the app the way beat does.
    entries = {name: ScheduleEntry(name=name, app=app, **dict(spec))
               for name, spec in schedule.items()}

    cleanup = entries["maintenance-cleanup"]
    assert cleanup.task == "workers.tasks.cleanup"
    assert (cleanup.args, cleanup.kwargs) == ((), {})
    cron = cleanup.schedule
    assert isinstance(cron, crontab)
    assert (cron.hour, cron.minute) == ({3}, {30})
    assert cron.day_of_week == set(range(7))
    assert cron.day_of_month == set(range(1, 32))
    assert cron.month_of_year == set(range(1, 13))
    assert str(cron.tz) == "Asia/Jakarta"
    # After a run at noon Jakarta time, the next one is 03:30 Jakarta (20:30 UTC).
    jakarta = ZoneInfo("Asia/Jakarta")
    last_run_at, delta, _now = cron.remaining_delta(datetime(2025, 1, 10, 12, 0, tzinfo=jakarta))
    next_run = last_run_at + delta
    assert next_run == datetime(2025, 1, 11, 3, 30, tzinfo=jakarta)
    assert next_run.astimezone(UTC) == datetime(2025, 1, 10, 20, 30, tzinfo=UTC)

    heartbeat = entries["worker-heartbeat"]
    assert heartbeat.task == "workers.tasks.heartbeat"
    assert heartbeat.kwargs == {"source": "beat"}
    assert isinstance(heartbeat.schedule, interval_schedule)
    assert not isinstance(heartbeat.schedule, crontab)
    assert heartbeat.schedule.run_every == timedelta(seconds=60)

    assert set(app.tasks.keys()) >= {"workers.tasks.cleanup", "workers.tasks.heartbeat"}


def test_overdue_digest_runs_daily_at_06_15_jakarta():
    from workers.celery_app import app

    spec = app.conf.beat_schedule["overdue-digest"]
    entry = ScheduleEntry(name="overdue-digest", app=app, **dict(spec))
    assert entry.task == "workers.tasks.overdue_digest"
    assert (entry.schedule.hour, entry.schedule.minute) == ({6}, {15})
    assert str(entry.schedule.tz) == "Asia/Jakarta"
    assert {"workers.tasks.overdue_digest", "workers.tasks.build_receipt_bundle"} <= set(
        app.tasks.keys())


FAST_BEAT_MODULE = '''\
"""The project's Celery app with a 1 s heartbeat, for the beat test only."""
from workers.celery_app import app

app.conf.beat_schedule["worker-heartbeat"]["schedule"] = 1.0
'''


def test_beat_sends_heartbeat_that_worker_records(
    monkeypatch, tmp_path, celery_procs, client_app
):
    """Real beat + worker on the embedded broker; beat's heartbeat marks beat_last_run_at."""
    db_url = f"sqlite:///{tmp_path / 'fibernode.db'}"
    migrate(db_url)
    _use_env(monkeypatch, tmp_path, db_url)
    (tmp_path / "fn_fast_beat.py").write_text(FAST_BEAT_MODULE)

    worker = start_worker(celery_procs)
    beat = celery_procs("beat", "-A", "fn_fast_beat", "beat", "--loglevel=INFO",
                        "--max-interval=1")
    beat.wait_for_log("Sending due task worker-heartbeat (workers.tasks.heartbeat)")

    engine = fn_db.create_engine_for(db_url)
    try:
        deadline = time.monotonic() + RESULT_TIMEOUT
        while _setting(engine, "beat_last_run_at") is None:
            worker.assert_running()
            beat.assert_running()
            assert time.monotonic() < deadline, "beat's heartbeat never reached the database"
            time.sleep(0.3)
        assert _setting(engine, "worker_heartbeat_at") is not None
    finally:
        engine.dispose()
    # Beat keeps its state in the data directory, not in the working directory.
    assert list((tmp_path / "data").glob("celerybeat-schedule*"))


IMPORT_HEADER = ("nama,telepon,diskon,tanggal,area,paket_nama,paket_tarif,total_bayar,nik,"
                 "tanggal_register")


def _wait_for_job(job_id, actor, worker: CeleryProcess):
    """Poll the import like the UI does until no worker is busy with it."""
    from fibernode.services import imports

    deadline = time.monotonic() + RESULT_TIMEOUT
    while True:
        view = imports.get_import(actor, job_id)
        assert view.progress_done <= view.progress_total
        if not view.is_running:
            return view
        worker.assert_running()
        assert time.monotonic() < deadline, f"import still {view.status}:\n{worker.log()}"
        time.sleep(0.1)


def test_worker_validates_and_imports_a_large_csv(
    monkeypatch, tmp_path, fresh_pg_database, celery_procs, client_app
):
    """A file over 1,000 rows goes through a real worker on Redis, with progress to the end."""
    from fibernode.models import Customer, ImportStatus
    from fibernode.services import imports
    from tests.factories import World

    redis.Redis.from_url(REDIS_URL).flushdb()
    _use_env(monkeypatch, tmp_path, fresh_pg_database, REDIS_URL=REDIS_URL,
             CELERY_BROKER_URL=REDIS_URL, CELERY_RESULT_BACKEND=REDIS_URL)
    client_app()  # current app: the service enqueues through it, as the web app does
    assert celery_current_app.conf.broker_url == REDIS_URL
    engine = fn_db.create_engine_for(fresh_pg_database)
    fn_db.set_engine(engine)
    try:
        world = World.seeded()
        worker = start_worker(celery_procs)
        n = 2_500
        content = "\n".join([IMPORT_HEADER] + [
            f"Pelanggan {i},0813{i:08d},0,{i % 28 + 1},WiFi Sukamaju,Paket 10 Mbps,100000,"
            "100000,,2025-01-01" for i in range(n)
        ]).encode()

        job = imports.upload_import(world.admin, "besar.csv", content)
        assert job.status == ImportStatus.VALIDATING

        previewed = _wait_for_job(job.id, world.admin, worker)
        assert previewed.status == ImportStatus.PREVIEWED, previewed.error
        assert (previewed.valid_rows, previewed.invalid_rows) == (n, 0)
        assert previewed.progress_done == previewed.progress_total == n

        importing = imports.confirm_import(world.admin, job.id)
        assert importing.status == ImportStatus.IMPORTING
        done = _wait_for_job(job.id, world.admin, worker)
        assert done.status == ImportStatus.DONE, done.error
        assert (done.imported_rows, done.skipped_rows) == (n, 0)
        assert done.progress_done == done.progress_total == n
        with Session(engine) as s:
            mine = s.exec(select(sa.func.count()).select_from(Customer).where(
                Customer.owner_id == world.mitra_a.user_id)).one()
        assert mine == n + 2  # plus the two seeded subscribers
        worker.wait_for_log(f"import {job.id} ran: {{'status': 'done'")
    finally:
        fn_db.set_engine(None)
        engine.dispose()


def test_generate_invoices_runs_daily_at_06_00_jakarta():
    from workers.celery_app import app

    spec = app.conf.beat_schedule["generate-invoices"]
    entry = ScheduleEntry(name="generate-invoices", app=app, **dict(spec))
    assert entry.task == "workers.tasks.generate_invoices"
    # No arguments: the task bills as of today in Jakarta and catches up from there.
    assert (entry.args, entry.kwargs) == ((), {})
    cron = entry.schedule
    assert isinstance(cron, crontab)
    assert (cron.hour, cron.minute) == ({6}, {0})
    assert cron.day_of_month == set(range(1, 32))
    assert str(cron.tz) == "Asia/Jakarta"
    jakarta = ZoneInfo("Asia/Jakarta")
    last_run_at, delta, _now = cron.remaining_delta(datetime(2026, 2, 3, 12, 0, tzinfo=jakarta))
    next_run = last_run_at + delta
    assert next_run == datetime(2026, 2, 4, 6, 0, tzinfo=jakarta)
    assert next_run.astimezone(UTC) == datetime(2026, 2, 3, 23, 0, tzinfo=UTC)
    assert "workers.tasks.generate_invoices" in app.tasks


def test_worker_generates_invoices_and_catches_up(
    monkeypatch, tmp_path, fresh_pg_database, celery_procs, client_app
):
    """The beat task on a real worker (Redis, PostgreSQL): H-1 invoices, then a catch-up."""
    from datetime import date

    from fibernode.models import Customer, Invoice
    from tests.factories import World

    redis.Redis.from_url(REDIS_URL).flushdb()
    _use_env(monkeypatch, tmp_path, fresh_pg_database, REDIS_URL=REDIS_URL,
             CELERY_BROKER_URL=REDIS_URL, CELERY_RESULT_BACKEND=REDIS_URL)
    app = client_app()
    engine = fn_db.create_engine_for(fresh_pg_database)
    fn_db.set_engine(engine)
    try:
        World.seeded()  # Ahmad (D=5), Dewi (D=10), Rudi (D=15)
        with Session(engine) as s:
            s.exec(sa.update(Customer).values(register_date=date(2025, 1, 1)))
            s.commit()
        worker = start_worker(celery_procs)
        task = app.tasks["workers.tasks.generate_invoices"]

        first = task.delay(today="2026-02-04").get(timeout=RESULT_TIMEOUT)
        assert first == {"periods": ["2026-03"], "run_dates": ["2026-02-04"], "created": 1,
                         "already_existed": 0, "owner_id": None, "dry_run": False,
                         "skipped": {"isolated": 0, "inactive": 0, "registered_late": 0}}
        # Beat missed 5..8 Feb: the run of the 9th bills D=6..10 (Dewi).
        caught = task.delay(today="2026-02-09").get(timeout=RESULT_TIMEOUT)
        assert caught["run_dates"] == [f"2026-02-0{d}" for d in range(5, 10)]
        assert caught["created"] == 1
        with Session(engine) as s:
            rows = s.exec(select(Customer.name, Invoice.period, Invoice.due_date)
                          .join(Customer, Customer.id == Invoice.customer_id)
                          .order_by(Invoice.due_date)).all()
            logs = s.exec(select(ActivityLog).where(
                ActivityLog.action == "billing.scheduled_run")).all()
        assert rows == [("Ahmad Fauzi", "2026-03", date(2026, 2, 5)),
                        ("Dewi Lestari", "2026-03", date(2026, 2, 10))]
        assert [log.meta["job"] for log in logs] == ["celery.billing"] * 2
        assert _setting(engine, "billing_last_run_date") == "2026-02-09"
        worker.wait_for_log("billing run ['2026-02-04']: 1 invoices created, 0 already "
                            "existed")
    finally:
        fn_db.set_engine(None)
        engine.dispose()
