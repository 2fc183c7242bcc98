"""Business time: everything the users see is in Asia/Jakarta."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
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


def period_start(period: str) -> date:
    """The first day of a ``YYYY-MM`` period."""
    return date(int(period[:4]), int(period[5:7]), 1)


def shift_period(period: str, months: int) -> str:
    """``period`` moved by ``months`` (negative: back)."""
    index = int(period[:4]) * 12 + int(period[5:7]) - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def jakarta_midnight(day: date) -> datetime:
    """Midnight at the start of ``day`` in Jakarta, as an aware UTC time.

    Stored timestamps are compared with such bounds (range predicates): the same SQL
    on SQLite and PostgreSQL, and the timestamp indexes apply.
    """
    return datetime.combine(day, time(), JAKARTA).astimezone(UTC)


def month_bounds(period: str) -> tuple[datetime, datetime]:
    """The Jakarta month of ``period`` as an aware UTC interval ``[start, end)``."""
    return (jakarta_midnight(period_start(period)),
            jakarta_midnight(period_start(shift_period(period, 1))))


def period_of(moment: datetime) -> str:
    """The Jakarta ``YYYY-MM`` of an aware moment."""
    return current_period(moment.astimezone(JAKARTA).date())
