"""One live connection per number: a lock per owner held while its client runs.

On PostgreSQL a session-level advisory lock on a connection kept open for the
session's lifetime (it vanishes with the connection if the process dies); on
SQLite (development) an exclusive ``flock`` on a lock file beside the auth store.
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import os
import threading
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

# Namespace of pg_advisory_lock(int, int) (auth uses 1-2, imports 3-4).
LOCK_WA_SESSION = 5


class OwnerLocks(abc.ABC):
    """Take and give back the per-owner "this process runs the number" lock."""

    @abc.abstractmethod
    def acquire(self, owner_id: uuid.UUID) -> bool:
        """Take the owner's lock without waiting; ``False`` when another holder has it."""

    @abc.abstractmethod
    def release(self, owner_id: uuid.UUID) -> None:
        """Give the owner's lock back (no-op when not held)."""

    def release_all(self) -> None:
        """Give every held lock back (shutdown)."""
        for owner_id in list(self.held()):
            self.release(owner_id)

    @abc.abstractmethod
    def held(self) -> list[uuid.UUID]:
        """Owners whose lock this object holds."""

    def lost(self) -> list[uuid.UUID]:
        """Owners whose lock vanished behind our back; they no longer count as held."""
        return []


class PgOwnerLocks(OwnerLocks):
    """PostgreSQL advisory locks, one dedicated connection per held owner."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._conns: dict[uuid.UUID, Connection] = {}
        self._mutex = threading.Lock()

    def acquire(self, owner_id: uuid.UUID) -> bool:
        """Take ``pg_try_advisory_lock(5, hashtext(owner))`` on a connection kept open."""
        with self._mutex:
            if owner_id in self._conns:
                return True
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:ns, hashtext(:k))"),
                                   {"ns": LOCK_WA_SESSION, "k": str(owner_id)}).scalar()
            except Exception:
                conn.close()
                raise
            if not got:
                conn.close()
                return False
            self._conns[owner_id] = conn
            return True

    def release(self, owner_id: uuid.UUID) -> None:
        """Unlock and close the connection (invalidated if the unlock fails)."""
        with self._mutex:
            conn = self._conns.pop(owner_id, None)
        if conn is None:
            return
        try:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:ns, hashtext(:k))"),
                         {"ns": LOCK_WA_SESSION, "k": str(owner_id)})
            conn.close()
        except Exception:
            # A pooled connection must never keep a session lock: drop it instead.
            conn.invalidate()

    def held(self) -> list[uuid.UUID]:
        """Owners locked through this object."""
        with self._mutex:
            return list(self._conns)

    def lost(self) -> list[uuid.UUID]:
        """Owners whose lock connection died (``pg_terminate_backend``, a database restart).

        A session advisory lock lives exactly as long as its backend: when a query on
        the connection fails, the lock is gone and another gateway may hold it already.
        """
        gone = []
        with self._mutex:  # a connection is used by one thread at a time
            for owner_id, conn in list(self._conns.items()):
                try:
                    conn.execute(sa.text("SELECT 1"))
                except Exception:
                    gone.append(owner_id)
                    del self._conns[owner_id]
                    # Never back into the pool (the failed query may have invalidated it).
                    with contextlib.suppress(Exception):
                        conn.invalidate()
                        conn.close()
        return gone


class FileOwnerLocks(OwnerLocks):
    """Exclusive ``flock`` on ``<dir>/<owner>.lock`` (SQLite / single-host setups)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._fds: dict[uuid.UUID, int] = {}
        self._mutex = threading.Lock()

    def acquire(self, owner_id: uuid.UUID) -> bool:
        """Take the lock file without waiting."""
        with self._mutex:
            if owner_id in self._fds:
                return True
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / f"{owner_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            self._fds[owner_id] = fd
            return True

    def release(self, owner_id: uuid.UUID) -> None:
        """Unlock and close the lock file."""
        with self._mutex:
            fd = self._fds.pop(owner_id, None)
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def held(self) -> list[uuid.UUID]:
        """Owners locked through this object."""
        with self._mutex:
            return list(self._fds)


def default_locks(sessions_dir: Path) -> OwnerLocks:
    """Advisory locks on PostgreSQL, lock files on SQLite."""
    from fibernode.config import get_settings
    from fibernode.db import get_engine

    if get_settings().is_sqlite:
        return FileOwnerLocks(sessions_dir)
    return PgOwnerLocks(get_engine())
