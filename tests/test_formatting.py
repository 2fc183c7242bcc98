"""Indonesian display formats (babel), in Jakarta time."""

from __future__ import annotations

from datetime import UTC, datetime

from fibernode.formatting import date_time


def test_date_time_in_jakarta_with_and_without_seconds():
    moment = datetime(2026, 3, 5, 7, 5, 9, tzinfo=UTC)  # 14.05.09 in Jakarta
    assert date_time(moment) == "5 Mar 2026 14.05"
    assert date_time(moment, seconds=True) == "5 Mar 2026 14.05.09"
    assert date_time(None) == "-"
