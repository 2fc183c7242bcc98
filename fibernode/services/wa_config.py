"""The WhatsApp queue's limits and the reminder schedule (superadmin settings).

Stored in the ``settings`` table: one key per :class:`RateConfig` field
(``wa_rate.min_delay_s`` …) and ``wa_reminder_offsets`` (e.g. ``"-3,-1,3"``). A key
never stored means the spec's default (``WA_RATE_CONFIG``, H-1 only).
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import Setting
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.errors import ValidationFailed
from fibernode.services.uow import unit_of_work
from fibernode.services.wa_throttle import RateConfig, parse_hhmm

__all__ = ["ALLOWED_OFFSETS", "DEFAULT_OFFSETS", "RateConfig", "get_wa_config",
           "load_rate_config", "load_reminder_offsets", "offset_label", "update_wa_config"]

RATE_PREFIX = "wa_rate."
OFFSETS_KEY = "wa_reminder_offsets"
ALLOWED_OFFSETS = (-7, -3, -1, 1, 3, 7)
DEFAULT_OFFSETS = (-1,)
RATE_FIELDS = tuple(f.name for f in fields(RateConfig))
TIME_FIELDS = ("quiet_start", "quiet_end")
INT_FIELDS = tuple(f for f in RATE_FIELDS if f not in TIME_FIELDS)
# (least, greatest) accepted value of each number: wide enough for any real use,
# narrow enough that a typo cannot stop the queue for a week.
LIMITS: dict[str, tuple[int, int]] = {
    "min_delay_s": (1, 3600),
    "max_delay_s": (1, 3600),
    "jitter_s": (0, 3600),
    "max_per_hour": (1, 1000),
    "max_per_day": (1, 10_000),
    "batch_size": (1, 1000),
    "batch_cooldown_s": (0, 86_400),
    "retry_delay_s": (1, 86_400),
    "max_retries": (1, 10),
}
LABELS = {
    "min_delay_s": "Jeda minimum",
    "max_delay_s": "Jeda maksimum",
    "jitter_s": "Jeda acak tambahan",
    "max_per_hour": "Batas per jam",
    "max_per_day": "Batas per hari",
    "batch_size": "Ukuran batch",
    "batch_cooldown_s": "Istirahat antar batch",
    "retry_delay_s": "Jeda coba ulang",
    "max_retries": "Jumlah percobaan",
    "quiet_start": "Jam tenang mulai",
    "quiet_end": "Jam tenang selesai",
    "reminder_offsets": "Jadwal pengingat",
}


def offset_label(offset: int) -> str:
    """``-1`` → ``"H-1"``, ``3`` → ``"H+3"``."""
    return f"H{offset:+d}"


def _stored() -> dict[str, str | None]:
    with new_session() as s:
        rows = s.exec(select(Setting.key, Setting.value).where(
            Setting.key.startswith(RATE_PREFIX) | (Setting.key == OFFSETS_KEY))).all()
    return dict(rows)


def _rate_from(stored: dict[str, str | None]) -> RateConfig:
    defaults = RateConfig()
    values: dict[str, Any] = {}
    for name in RATE_FIELDS:
        raw = stored.get(RATE_PREFIX + name)
        if raw is None:
            continue
        if name in TIME_FIELDS:
            values[name] = raw.strip()
            continue
        try:
            values[name] = int(raw)
        except ValueError:  # a hand-edited row: keep the default rather than stop sending
            values[name] = getattr(defaults, name)
    return RateConfig(**values)


def _offsets_from(stored: dict[str, str | None]) -> list[int]:
    raw = stored.get(OFFSETS_KEY)
    if raw is None:
        return list(DEFAULT_OFFSETS)
    try:
        found = {int(part) for part in raw.split(",") if part.strip()}
    except ValueError:
        return list(DEFAULT_OFFSETS)
    return sorted(found & set(ALLOWED_OFFSETS))


def load_rate_config() -> RateConfig:
    """The queue's current limits (stored values over the spec's defaults)."""
    return _rate_from(_stored())


def load_reminder_offsets() -> list[int]:
    """Enabled reminder days relative to the due date, ascending (default ``[-1]``)."""
    return _offsets_from(_stored())


def _as_dict(rate: RateConfig, offsets: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = asdict(rate)
    out["reminder_offsets"] = list(offsets)
    return out


def get_wa_config(actor: Actor) -> dict[str, Any]:
    """The queue limits and reminder schedule for the settings page (superadmin).

    Returns:
        Every :class:`RateConfig` field plus ``reminder_offsets`` (list of ints).
    """
    require_superadmin(actor)
    stored = _stored()
    return _as_dict(_rate_from(stored), _offsets_from(stored))


def _clean_int(name: str, value: Any) -> tuple[int | None, str | None]:
    if isinstance(value, bool):
        return None, "Harus berupa bilangan bulat."
    text = str(value).strip() if value is not None else ""
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if not text.lstrip("-").isdigit():
        return None, "Harus berupa bilangan bulat."
    number = int(text)
    low, high = LIMITS[name]
    if number < low:
        return None, ("Tidak boleh negatif." if low == 0 else
                      f"Harus bilangan bulat positif (minimal {low}).")
    if number > high:
        return None, f"Maksimal {high:,}.".replace(",", ".")
    return number, None


def _clean_offsets(value: Any) -> tuple[list[int] | None, str | None]:
    parts = value.split(",") if isinstance(value, str) else list(value or [])
    found: set[int] = set()
    for part in parts:
        text = str(part).strip().upper().removeprefix("H")
        if not text:
            continue
        try:
            found.add(int(text))
        except ValueError:
            found.add(0)  # reported below
    if found - set(ALLOWED_OFFSETS):
        allowed = ", ".join(offset_label(o) for o in ALLOWED_OFFSETS)
        return None, f"Jadwal pengingat hanya boleh {allowed}."
    return sorted(found), None


def update_wa_config(actor: Actor, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Change queue limits and/or the reminder schedule (superadmin), audited.

    Args:
        actor: The superadmin.
        values: Any of the :class:`RateConfig` field names (numbers as int or text,
            quiet hours as ``HH:MM`` or empty for none) and ``reminder_offsets``
            (list of ints or ``"-3,-1,3"``).

    Returns:
        What changed, ``{field: {"from": old, "to": new}}``.

    Raises:
        ValidationFailed: unknown fields or values that do not fit, in Indonesian.
    """
    require_superadmin(actor)
    stored = _stored()
    current = _as_dict(_rate_from(stored), _offsets_from(stored))
    merged = dict(current)
    problems: dict[str, str] = {}
    for name, value in values.items():
        if name in INT_FIELDS:
            number, problem = _clean_int(name, value)
        elif name in TIME_FIELDS:
            text = str(value or "").strip()
            try:
                parsed = parse_hhmm(text)
            except ValueError:
                parsed, problem = None, "Format jam harus JJ:MM (misalnya 21:00)."
            else:
                problem = None
            number = parsed.strftime("%H:%M") if parsed else ""
        elif name == "reminder_offsets":
            number, problem = _clean_offsets(value)
        else:
            problems[name] = "Pengaturan tidak dikenal."
            continue
        if problem:
            problems[name] = problem
        else:
            merged[name] = number
    if not problems:
        problems.update(_cross_problems(merged))
    if problems:
        raise ValidationFailed(problems)
    changes = {k: {"from": current[k], "to": merged[k]} for k in merged
               if merged[k] != current[k]}
    if not changes:
        return {}
    with unit_of_work(actor) as uow:
        for name, change in changes.items():
            key = OFFSETS_KEY if name == "reminder_offsets" else RATE_PREFIX + name
            text = (",".join(str(o) for o in change["to"]) if name == "reminder_offsets"
                    else str(change["to"]))
            _put(uow.session, key, text)
        uow.audit("wa.config.update", "settings", None, changes=changes)
    return changes


def _cross_problems(merged: dict[str, Any]) -> dict[str, str]:
    problems: dict[str, str] = {}
    if merged["min_delay_s"] > merged["max_delay_s"]:
        problems["min_delay_s"] = "Jeda minimum tidak boleh lebih besar dari jeda maksimum."
    if merged["max_per_hour"] > merged["max_per_day"]:
        problems["max_per_hour"] = "Batas per jam tidak boleh melebihi batas per hari."
    start, end = merged["quiet_start"], merged["quiet_end"]
    if bool(start) != bool(end):
        problems["quiet_end" if start else "quiet_start"] = (
            "Isi jam mulai dan jam selesai, atau kosongkan keduanya.")
    elif start and start == end:
        problems["quiet_end"] = "Jam selesai harus berbeda dari jam mulai."
    return problems


def _put(session, key: str, value: str) -> None:
    row = session.exec(select(Setting).where(Setting.key == key)).first()
    if row is None:
        session.add(Setting(key=key, value=value))
    elif row.value != value:
        row.value = value
        row.updated_at = clock.now()
