"""Database engine: one per process, built from ``DATABASE_URL``."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from fibernode.config import get_settings

_lock = threading.Lock()
_engine: Engine | None = None


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # SQLite ignores foreign keys unless told otherwise on every connection;
    # WAL lets the web app, the worker and beat read while one of them writes.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def create_engine_for(url: str) -> Engine:
    """Create an engine with the settings this app needs for ``url``.

    Args:
        url: A SQLAlchemy URL (``sqlite:///…`` or ``postgresql+psycopg://…``).

    Returns:
        A configured engine.
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def get_engine() -> Engine:
    """Return the process-wide engine, creating it on first use."""
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                settings = get_settings()
                if settings.is_sqlite:
                    settings.data_dir.mkdir(parents=True, exist_ok=True)
                _engine = create_engine_for(settings.database_url)
    return _engine


def set_engine(engine: Engine | None) -> None:
    """Replace the process-wide engine (tests, tools); ``None`` forgets it."""
    global _engine
    with _lock:
        _engine = engine


def new_session() -> Session:
    """A new ORM session on the process-wide engine."""
    return Session(get_engine(), expire_on_commit=False)


def insert_for(session: Session):
    """The dialect's ``insert`` (PostgreSQL or SQLite), which has ``on_conflict_do_*``."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert
