"""Reading a ``Cookie`` request header, the one way every layer does it."""

from __future__ import annotations


def parse(header: str | None) -> dict[str, str]:
    """Every cookie in ``header``; a name sent twice keeps its first value.

    Browsers send the most specific path first, so the first value is the one meant.
    Quotes around a value are dropped, as RFC 6265 allows them.
    """
    found: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in found:
            found[name] = value.strip().strip('"')
    return found


def value(header: str | None, name: str) -> str:
    """One cookie's value from ``header`` (``""`` when absent)."""
    return parse(header).get(name, "")
