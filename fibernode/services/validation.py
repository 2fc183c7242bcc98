"""Input rules shared by use cases (messages in Indonesian)."""

from __future__ import annotations

import re

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,49}$")


def clean(value: str | None) -> str:
    """Trim a text field; ``None`` becomes empty."""
    return (value or "").strip()


def optional(value: str | None) -> str | None:
    """Trim a text field; empty becomes ``None``."""
    value = clean(value)
    return value or None


def normalize_phone(raw: str | None) -> str:
    """Normalise an Indonesian phone number to ``62…`` digits.

    ``0812-3456-7890`` and ``+62 812 3456 7890`` both become ``6281234567890``.
    The result is not validated; see :func:`phone_problem`.
    """
    digits = re.sub(r"\D", "", raw or "")
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
