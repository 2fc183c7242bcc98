"""Input rules shared by use cases (messages in Indonesian)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fibernode.formatting import rupiah
from fibernode.services.errors import NotFound

_AMOUNT_RE = re.compile(r"\d{1,3}(?:\.\d{3}){1,4}|\d{1,12}")
_RP_RE = re.compile(r"^rp\.?\s*", re.IGNORECASE)
_CENTS_RE = re.compile(r",(?:-|0{1,2})$")  # "100.000,-" and "100.000,00"
# A billing period, ``YYYY-MM``.
PERIOD_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,49}$")
_NON_DIGITS = re.compile(r"\D")
_WHITESPACE = re.compile(r"\s")


def clean(value: str | None) -> str:
    """Trim a text field; ``None`` becomes empty and NUL characters are dropped.

    PostgreSQL text can hold no NUL at all: one typed or sent in a search or a name
    would otherwise be a server error instead of a search for the rest.
    """
    return (value or "").replace("\x00", "").strip()


def optional(value: str | None) -> str | None:
    """Trim a text field; empty becomes ``None``."""
    value = clean(value)
    return value or None


def normalize_phone(raw: str | None) -> str:
    """Normalise an Indonesian phone number to ``62…`` digits.

    ``0812-3456-7890`` and ``+62 812 3456 7890`` both become ``6281234567890``.
    The result is not validated; see :func:`phone_problem`.
    """
    digits = _NON_DIGITS.sub("", raw or "")
    if digits.startswith("0"):
        digits = "62" + digits[1:]
    elif digits.startswith("8"):
        digits = "62" + digits
    return digits


def phone_problem(phone: str) -> str | None:
    """Why a normalised phone number is invalid, or ``None``."""
    if not phone:
        return "Nomor telepon wajib diisi."
    if not phone.isdigit() or not phone.startswith("62"):
        return "Nomor telepon harus diawali 62 (contoh: 6281234567890)."
    if not 10 <= len(phone) <= 15:
        return "Nomor telepon harus 10–15 digit (contoh: 6281234567890)."
    return None


def username_problem(username: str) -> str | None:
    """Why a username is unacceptable, or ``None``."""
    if not username:
        return "Username wajib diisi."
    if not USERNAME_RE.match(username):
        return ("Username 3–50 karakter: huruf kecil, angka, titik, garis bawah atau "
                "tanda hubung, diawali huruf atau angka.")
    return None


def required(value: str, label: str, max_len: int) -> str | None:
    """Message for an empty or too long required text field, or ``None``."""
    if not value:
        return f"{label} wajib diisi."
    if len(value) > max_len:
        return f"{label} maksimal {max_len} karakter."
    return None


def too_long(value: str | None, label: str, max_len: int) -> str | None:
    """Message for a too long optional text field, or ``None``."""
    if value and len(value) > max_len:
        return f"{label} maksimal {max_len} karakter."
    return None


def int_problem(value: Any, label: str) -> str | None:
    """Message when ``value`` is not a whole number (booleans are not), or ``None``."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{label} harus berupa angka bulat."
    return None


def billing_date_problem(value: Any) -> str | None:
    """Why a monthly billing day is unacceptable (it must be 1–28), or ``None``."""
    if (p := int_problem(value, "Tanggal tagihan")):
        return p
    if not 1 <= value <= 28:
        return "Tanggal tagihan harus antara 1 dan 28."
    return None


def discount_problem(value: Any, price: int | None) -> str | None:
    """Why a discount is unacceptable, or ``None``.

    Args:
        value: The discount in Rupiah.
        price: The package price it may not exceed (``None``: not checked yet).
    """
    if (p := int_problem(value, "Diskon")):
        return p
    if value < 0:
        return "Diskon tidak boleh negatif."
    if price is not None and value > price:
        return f"Diskon tidak boleh melebihi harga paket ({rupiah(price)})."
    return None


def nik_clean(nik: str | None) -> str | None:
    """A NIK without any whitespace; empty becomes ``None``."""
    return _WHITESPACE.sub("", nik or "") or None


def nik_problem(nik: str | None) -> str | None:
    """Why a cleaned NIK is invalid (it must be exactly 16 digits), or ``None``."""
    if nik is not None and not (len(nik) == 16 and nik.isdigit()):
        return "NIK harus tepat 16 digit angka."
    return None


def as_uuid(value: Any, not_found: str) -> uuid.UUID:
    """An id from text or UUID; anything else names no row, so ``NotFound(not_found)``."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise NotFound(not_found) from exc


def parse_amount(text: str | None) -> int | None:
    """Read a Rupiah amount as written in Indonesian sheets.

    ``100000``, ``100.000``, ``Rp 100.000``, ``Rp100.000,-`` and ``100.000,00``
    all give ``100000``; a leading ``-`` gives a negative number.

    Returns:
        The whole Rupiah, or ``None`` when it is not such an amount.
    """
    s = (text or "").replace("\xa0", " ").strip()
    if s.isascii() and s.isdigit() and len(s) <= 12:
        return int(s)  # the common case, kept cheap for files of 20,000 rows
    negative = s.startswith("-")
    s = s.lstrip("-").strip()
    s = _RP_RE.sub("", s)
    if not negative and s.startswith("-"):
        negative, s = True, s[1:].strip()
    s = _CENTS_RE.sub("", s).replace(" ", "")
    if not _AMOUNT_RE.fullmatch(s):
        return None
    value = int(s.replace(".", ""))
    return -value if negative else value
