"""Shared fixtures: real PostgreSQL and SQLite databases migrated by alembic.

The suite needs PostgreSQL and Redis on 127.0.0.1 (``scripts/test.sh`` starts
them). Override with ``TEST_PG_ADMIN_URL`` / ``TEST_REDIS_URL``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# Parallel workers (pytest-xdist: gw0, gw1, …) each get a Redis database and a data
# directory of their own: Celery tests flush their database, maintenance tests sweep
# the data directory's tmp/.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
WORKER_NUMBER = int(WORKER[2:]) if WORKER.startswith("gw") and WORKER[2:].isdigit() else 0
REDIS_URL = os.environ.get("TEST_REDIS_URL", f"redis://127.0.0.1:6379/{15 - WORKER_NUMBER % 8}")
if WORKER and "FIBERNODE_DATA_DIR" not in os.environ:
    os.environ["FIBERNODE_DATA_DIR"] = tempfile.mkdtemp(prefix=f"fibernode-{WORKER}-")
    atexit.register(shutil.rmtree, os.environ["FIBERNODE_DATA_DIR"], True)

# Settings are read from the environment once; pin the test values before any
# fibernode module caches them.
os.environ.setdefault("APP_ENV", "test")
os.environ.setdefault("LOGIN_MAX_ATTEMPTS", "5")
os.environ.setdefault("LOGIN_LOCKOUT_MINUTES", "15")
# Tests send thousands of API requests from one address; tests/api/test_security.py
# checks the limits themselves with explicit rules.
os.environ.setdefault("RATE_LIMIT_FACTOR", "1000")
# Every unit of work that changes data must write its audit row: a use case that
# forgets fails its tests (fibernode/services/uow.py).
os.environ.setdefault("AUDIT_STRICT", "1")

from argon2 import PasswordHasher  # noqa: E402

from fibernode import db as fn_db  # noqa: E402
from fibernode.config import reset_settings  # noqa: E402
from fibernode.services import jobqueue, passwords  # noqa: E402
from tests.whatsapp.fake_graph import graph  # noqa: E402, F401 - fake Graph API fixture


def _celery_send(task: str, *args: str) -> None:
    """Queue by name through the workers' Celery app, imported on first use as production does."""
    from workers.celery_app import send

    send(task, *args)


# The web app and the workers install this sender when they import the workers' app;
# tests that call services directly get the same one.
jobqueue.install_sender(_celery_send)


class SentJobs(list):
    """The background tasks the services queued, in order, as ``(task name, args)``.

    Installed as the process's sender by :func:`recorded_jobs` (the ``sent_jobs``
    fixture), it stands in for the broker: nothing reaches Redis and no worker runs
    the tasks, unless the test asks for it with :meth:`run_inline`, or for a broker
    that cannot be reached with :meth:`refuse`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._refusal: Exception | None = None
        self._inline: tuple[str, ...] | None = None
        self._in_thread = False

    def refuse(self, error: Exception | None = None) -> None:
        """Every later send raises ``error`` (default ``ConnectionError``), like a down broker."""
        self._refusal = error or ConnectionError("broker down")

    def run_inline(self, *tasks: str, thread: bool = False) -> None:
        """Every later send of ``tasks`` (of any task when none is named) also runs it here.

        The worker's registered Celery task runs in this process, right after the
        commit that queued it, or on a daemon thread of its own with ``thread`` (as a
        worker runs beside the web app).
        """
        self._inline, self._in_thread = tasks, thread

    def __call__(self, task: str, *args: str) -> None:
        if self._refusal is not None:
            raise self._refusal
        self.append((task, args))
        if self._inline is not None and (not self._inline or task in self._inline):
            from workers.celery_app import app

            run = app.tasks[task]
            if self._in_thread:
                threading.Thread(target=run, args=args, daemon=True).start()
            else:
                run(*args)


@contextlib.contextmanager
def recorded_jobs() -> Iterator[SentJobs]:
    """Install a :class:`SentJobs` as the process's sender; the previous one after."""
    # Importing the workers' app installs Celery's sender: import it now, so that it can
    # never replace the recorder halfway through; the tasks register for run_inline.
    import workers.tasks  # noqa: F401

    sent = SentJobs()
    previous = jobqueue.install_sender(sent)
    try:
        yield sent
    finally:
        jobqueue.install_sender(previous)


@pytest.fixture
def sent_jobs() -> Iterator[SentJobs]:
    """What the services queued for the workers during the test (see :class:`SentJobs`)."""
    with recorded_jobs() as sent:
        yield sent

# Still Argon2id, with the cheapest parameters: the suite hashes thousands of
# passwords, and hashing cost is not what these tests are about.
passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def pg_url_for(name: str) -> str:
    """SQLAlchemy URL of database ``name`` on the test server."""
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"


def create_pg_database(prefix: str) -> tuple[str, str]:
    """Create a fresh PostgreSQL database; returns (name, SQLAlchemy URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, pg_url_for(name)


def drop_pg_database(name: str) -> None:
    """Drop a test database, cutting off any connection left open."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(url: str) -> None:
    """Run every alembic migration against ``url``."""
    from fibernode.cli import migrate_url

    migrate_url(url)


@contextlib.contextmanager
def seeded_process_database(prefix: str) -> Iterator[str]:
    """A fresh migrated PostgreSQL database with the demo seed, as this process's database.

    For tiers that serve the app from a real server process (the browser harness, the
    websocket suite): ``DATABASE_URL`` points at it while it lives, Redis is off, and
    both are put back (and the database dropped) afterwards.
    """
    from fibernode.services.context import Actor
    from fibernode.services.seed import seed

    name, url = create_pg_database(prefix)
    migrate(url)
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "REDIS_URL")}
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)
    reset_settings()
    fn_db.set_engine(None)
    try:
        seed(Actor.system("seed"), demo=True)
        yield url
    finally:
        fn_db.set_engine(None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings()
        drop_pg_database(name)


def wipe(engine: sa.Engine) -> None:
    """Empty every table (keeps the schema and alembic_version).

    ``DELETE`` children first, on both dialects: a test leaves a few dozen rows, and
    PostgreSQL's ``TRUNCATE`` of 22 tables (new files for each) took 115 ms a test
    where this takes 6. No table has a sequence to restart.
    """
    tables = [t.name for t in SQLModel.metadata.sorted_tables]
    with engine.begin() as conn:
        for name in reversed(tables):
            conn.execute(sa.text(f"DELETE FROM {name}"))


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a migrated PostgreSQL database for the whole run."""
    try:
        name, url = create_pg_database("fibernode_test")
    except psycopg.OperationalError as exc:  # pragma: no cover - environment problem
        pytest.exit(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}", returncode=3)
    migrate(url)
    yield url
    drop_pg_database(name)


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory) -> str:
    """URL of a migrated SQLite file database for the whole run."""
    path: Path = tmp_path_factory.mktemp("sqlite") / "fibernode.db"
    url = f"sqlite:///{path}"
    migrate(url)
    return url


def _use_engine(url: str) -> Iterator[sa.Engine]:
    reset_settings()
    engine = fn_db.create_engine_for(url)
    wipe(engine)
    fn_db.set_engine(engine)
    try:
        yield engine
    finally:
        from fibernode.services import wa_direct

        # Receipts and isolir notices go out on a background thread after commit; let
        # them finish before the next test wipes the tables or swaps the engine.
        wa_direct.wait_for_dispatch(10)
        fn_db.set_engine(None)
        engine.dispose()


BOTH_DIALECTS = "both_dialects"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run a database test on PostgreSQL, and on SQLite too where the dialect matters.

    A module (or test) whose code takes a different path on SQLite says so, and why,
    with ``pytest.mark.both_dialects("reason")``: bulk insert / COPY, ``insert_for``
    upserts, locks, billing's ``INSERT … SELECT``, backup and restore. Everything else
    runs once, on PostgreSQL, the production database.
    """
    if "db" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker(BOTH_DIALECTS)
    if marker is not None and not (marker.args and str(marker.args[0]).strip()):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: both_dialects needs "
                                "the reason the dialect matters")
    dialects = ["sqlite", "postgresql"] if marker is not None else ["postgresql"]
    metafunc.parametrize("db", dialects, indirect=True)


@pytest.fixture
def db(request) -> Iterator[sa.Engine]:
    """An empty migrated database: PostgreSQL, and SQLite for ``both_dialects`` tests."""
    url = request.getfixturevalue(
        "sqlite_database" if request.param == "sqlite" else "pg_database"
    )
    yield from _use_engine(url)


@pytest.fixture
def pg(pg_database) -> Iterator[sa.Engine]:
    """An empty migrated PostgreSQL database (for races and PostgreSQL-only rules)."""
    yield from _use_engine(pg_database)


@pytest.fixture
def world(db):
    """Seeded demo data (superadmin, 5 packages, 2 mitra, 3 subscribers) with actors."""
    from tests.factories import World

    return World.seeded()


@pytest.fixture
def outbox_whatsapp(monkeypatch) -> Iterator[None]:
    """WhatsApp through the outbox gateway; direct sends are finished before teardown."""
    from fibernode.services import wa_direct, wa_numbers
    from fibernode.whatsapp import set_gateway
    from fibernode.whatsapp.outbox import OutboxGateway

    monkeypatch.setattr(wa_numbers, "CHECK_SPACING_S", 0)
    set_gateway(OutboxGateway())
    yield
    assert wa_direct.wait_for_dispatch(10)
    set_gateway(None)


@pytest.fixture
def real_rate_limits(monkeypatch) -> Iterator[None]:
    """The production limits (factor 1) on fresh in-process counters, for one test."""
    from fibernode.config import reset_settings
    from fibernode.services import ratelimit

    monkeypatch.setenv("RATE_LIMIT_FACTOR", "1")
    monkeypatch.delenv("REDIS_URL", raising=False)
    reset_settings()
    ratelimit.reset_memory()
    yield
    ratelimit.reset_memory()
    reset_settings()
