"""Argon2id password hashing and the password policy."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2-cffi defaults to Argon2id (RFC 9106 low-memory profile)
# Hashed once so that a login for an unknown username costs as much as a real one.
_DUMMY_HASH = _hasher.hash("fibernode-timing-equaliser")


def hash_password(password: str) -> str:
    """Hash a password with Argon2id."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check ``password`` against a stored hash (or a dummy one to equalise timing)."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash uses outdated parameters."""
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str) -> str | None:
    """Return why a new password is unacceptable, or ``None`` if it is fine."""
    if len(password) < 8:
        return "Password minimal 8 karakter."
    if len(password) > 128:
        return "Password maksimal 128 karakter."
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        return "Password harus mengandung huruf dan angka."
    return None
