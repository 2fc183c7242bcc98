"""The gateway's own record of what it sent, by idempotency key.

A small SQLite file in the sessions directory (``gateway.sqlite3``), so the record
survives restarts and lives beside the auth stores it belongs to. A key is marked
``sending`` before the message goes to WhatsApp and ``sent`` with its message id
after; a key left ``sending`` (the process died mid-send) is reported as unknown
and never resent blindly.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fibernode import clock

SENDING = "sending"
SENT = "sent"


@dataclass(frozen=True)
class SentRecord:
    """What the gateway remembers about one key."""

    status: str
    message_id: str | None


class SentKeys:
    """``sent_keys(owner_id, key, status, message_id, sent_at)`` in a SQLite file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._mutex = threading.Lock()
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS sent_keys (owner_id TEXT NOT NULL, "
                "key TEXT NOT NULL, status TEXT NOT NULL, message_id TEXT, "
                "sent_at TEXT NOT NULL, PRIMARY KEY (owner_id, key))")
            conn.execute("CREATE INDEX IF NOT EXISTS sent_keys_message "
                         "ON sent_keys (owner_id, message_id)")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            with conn:  # commit on success, roll back on error
                yield conn
        finally:
            conn.close()

    def get(self, owner_id: uuid.UUID, key: str) -> SentRecord | None:
        """The record of ``key``, if any."""
        with self._mutex, self._connect() as conn:
            row = conn.execute("SELECT status, message_id FROM sent_keys "
                               "WHERE owner_id = ? AND key = ?", (str(owner_id), key)).fetchone()
        return SentRecord(row[0], row[1]) if row else None

    def key_of(self, owner_id: uuid.UUID, message_id: str) -> str | None:
        """The key a message id was sent under (receipts carry only the message id)."""
        with self._mutex, self._connect() as conn:
            row = conn.execute("SELECT key FROM sent_keys WHERE owner_id = ? AND message_id = ?",
                               (str(owner_id), message_id)).fetchone()
        return row[0] if row else None

    def begin(self, owner_id: uuid.UUID, key: str) -> SentRecord | None:
        """Claim ``key`` for sending; returns the existing record when already claimed."""
        with self._mutex, self._connect() as conn:
            cur = conn.execute("INSERT OR IGNORE INTO sent_keys VALUES (?, ?, ?, NULL, ?)",
                               (str(owner_id), key, SENDING, clock.now().isoformat()))
            if cur.rowcount == 1:
                return None
            row = conn.execute("SELECT status, message_id FROM sent_keys "
                               "WHERE owner_id = ? AND key = ?", (str(owner_id), key)).fetchone()
        return SentRecord(row[0], row[1])

    def mark_sent(self, owner_id: uuid.UUID, key: str, message_id: str) -> None:
        """WhatsApp accepted the message."""
        with self._mutex, self._connect() as conn:
            conn.execute("UPDATE sent_keys SET status = ?, message_id = ?, sent_at = ? "
                         "WHERE owner_id = ? AND key = ?",
                         (SENT, message_id, clock.now().isoformat(), str(owner_id), key))

    def forget(self, owner_id: uuid.UUID, key: str) -> None:
        """The send failed for certain: the key may be tried again."""
        with self._mutex, self._connect() as conn:
            conn.execute("DELETE FROM sent_keys WHERE owner_id = ? AND key = ?",
                         (str(owner_id), key))
