"""Errors raised by use cases; every message is for the end user, in Indonesian."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of all expected, user-facing failures.

    Attributes:
        code: A stable machine code (the API maps it to an HTTP status).
        message: The sentence shown to the user.
        details: Per-field messages, when the failure is about input.
    """

    code = "error"

    def __init__(self, message: str, details: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


class AuthenticationRequired(ServiceError):
    """No valid session (HTTP 401)."""

    code = "unauthenticated"

    def __init__(self, message: str = "Sesi Anda telah berakhir. Silakan login kembali."):
        super().__init__(message)


class PermissionDenied(ServiceError):
    """The actor may not do this (HTTP 403)."""

    code = "forbidden"

    def __init__(self, message: str = "Anda tidak punya akses untuk melakukan tindakan ini."):
        super().__init__(message)


class NotFound(ServiceError):
    """No such row in the actor's scope (HTTP 404); never says whether it exists elsewhere."""

    code = "not_found"

    def __init__(self, message: str = "Data tidak ditemukan."):
        super().__init__(message)


class ValidationFailed(ServiceError):
    """Input rejected (HTTP 422); ``details`` maps field names to messages."""

    code = "validation_error"

    def __init__(self, details: dict[str, str], message: str | None = None):
        first = next(iter(details.values()), "Data tidak valid.")
        super().__init__(message or first, details)


class Conflict(ServiceError):
    """A concurrent change or a duplicate (HTTP 409)."""

    code = "conflict"


class LoginFailed(ServiceError):
    """Wrong credentials or an inactive account (HTTP 401)."""

    code = "login_failed"


class TwoFactorRequired(ServiceError):
    """The password was right; the account also needs its authenticator code (HTTP 401)."""

    code = "two_factor_required"

    def __init__(self, message: str = "Masukkan kode verifikasi dari aplikasi authenticator."):
        super().__init__(message)


class LockedOut(ServiceError):
    """Too many failed logins (HTTP 429)."""

    code = "locked_out"

    def __init__(self, minutes: int):
        super().__init__(
            "Terlalu banyak percobaan login yang gagal. "
            f"Akun dikunci sementara, coba lagi dalam {minutes} menit."
        )
        self.minutes = minutes


class RateLimited(ServiceError):
    """Too many requests from one address or user in a short time."""

    def __init__(self, retry_after: int):
        super().__init__("Terlalu banyak permintaan. Coba lagi sebentar lagi.")
        self.retry_after = retry_after
