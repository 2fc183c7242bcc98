"""Indonesian formatting of money, dates and periods (babel)."""

from __future__ import annotations

from datetime import date, datetime

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

from fibernode.clock import JAKARTA

LOCALE = "id_ID"


def rupiah(amount: int | None) -> str:
    """Format whole Rupiah the way Indonesians write it: ``Rp 150.000``."""
    value = int(amount or 0)
    sign = "-" if value < 0 else ""
    return f"{sign}Rp {format_decimal(abs(value), format='#,##0', locale=LOCALE)}"


def number(value: int | float) -> str:
    """A number with Indonesian grouping (``1.234``)."""
    return format_decimal(value, locale=LOCALE)


def month_year(value: date | str) -> str:
    """``Maret 2026`` from a date or a ``YYYY-MM`` period."""
    if isinstance(value, str):
        year, month = value.split("-")
        value = date(int(year), int(month), 1)
    return format_date(value, "LLLL yyyy", locale=LOCALE)


def short_month_year(value: date | str) -> str:
    """``Mar 2026`` from a date or a ``YYYY-MM`` period (chart axes)."""
    if isinstance(value, str):
        value = date(int(value[:4]), int(value[5:7]), 1)
    return format_date(value, "LLL yyyy", locale=LOCALE)


def long_date(value: date | None) -> str:
    """``5 Maret 2026``."""
    return format_date(value, "d MMMM yyyy", locale=LOCALE) if value else "-"


def date_time(value: datetime | None, *, seconds: bool = False) -> str:
    """``5 Mar 2026 14.05`` (or ``14.05.09`` with ``seconds``) in Jakarta time."""
    if value is None:
        return "-"
    pattern = "d MMM yyyy HH.mm.ss" if seconds else "d MMM yyyy HH.mm"
    return format_datetime(value.astimezone(JAKARTA), pattern, locale=LOCALE)
