"""Business time: everything the users see is in Asia/Jakarta."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

JAKARTA = ZoneInfo("Asia/Jakarta")


def now() -> datetime:
    """Current aware UTC time (what the database stores)."""
    return datetime.now(UTC)


def local_now() -> datetime:
    """Current time in Asia/Jakarta."""
    return datetime.now(JAKARTA)


def today() -> date:
    """Today's date in Asia/Jakarta."""
    return local_now().date()


def current_period(on: date | None = None) -> str:
    """The ``YYYY-MM`` period of a date (default: today in Jakarta)."""
    on = on or today()
    return f"{on.year:04d}-{on.month:02d}"
