"""Two-step login (TOTP, RFC 6238) for superadmin accounts, with one-time recovery codes.

Optional per account and enforced once enabled, for the web login and the API
alike (:func:`fibernode.services.auth.authenticate` asks :func:`check_login_code`).
The shared secret is stored encrypted; recovery codes only as hashes; a code's
time step is remembered so an observed code cannot be replayed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno
import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import RecoveryCode, User, UserRole
from fibernode.services import settings as settings_service
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.crypto import decrypt_secret, encrypt_secret
from fibernode.services.errors import Conflict, NotFound, ValidationFailed
from fibernode.services.passwords import verify_password
from fibernode.services.uow import unit_of_work

WRONG_CODE = "Kode verifikasi salah."
RECOVERY_CODE_COUNT = 10
_PURPOSE = "totp"
# One step either side: phones whose clocks drift by up to 30 s still log in.
_VALID_WINDOW = 1
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


@dataclass(frozen=True)
class Enrolment:
    """What the user needs to add the account to an authenticator app."""

    secret: str  # base32, for typing in by hand
    uri: str  # otpauth:// URI
    qr_svg_data_uri: str  # the URI as a QR code


@dataclass(frozen=True)
class TwoFactorStatus:
    """Whether two-step login is on, and how many recovery codes are left."""

    enabled: bool
    pending: bool
    recovery_codes_left: int


def is_enabled(user: User | None) -> bool:
    """Whether the account needs a second step at login."""
    return user is not None and user.totp_enabled_at is not None


def _hash_code(code: str) -> str:
    return hashlib.sha256(_normalise_recovery(code).encode()).hexdigest()


def _normalise_recovery(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def _new_recovery_codes(session, user_id) -> list[str]:
    session.exec(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        code = f"{raw[:5]}-{raw[5:]}"
        session.add(RecoveryCode(user_id=user_id, code_hash=_hash_code(code)))
        codes.append(code)
    return codes


def _totp(user: User) -> pyotp.TOTP:
    return pyotp.TOTP(decrypt_secret(user.totp_secret, _PURPOSE))


def _matching_step(user: User, code: str, now: datetime) -> int | None:
    """The time step a 6-digit code belongs to, if it is valid now and not yet used."""
    code = "".join(ch for ch in code if ch.isdigit())
    if len(code) != 6 or not user.totp_secret:
        return None
    totp = _totp(user)
    current = totp.timecode(now)
    for step in range(current - _VALID_WINDOW, current + _VALID_WINDOW + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            if user.totp_last_step is not None and step <= user.totp_last_step:
                return None  # replay of a code already used
            return step
    return None


def _own_superadmin(uow, actor: Actor) -> User:
    require_superadmin(actor)
    user = uow.session.get(User, actor.user_id)
    if user is None or user.role != UserRole.SUPERADMIN:
        raise NotFound()
    return user


def status(actor: Actor) -> TwoFactorStatus:
    """The actor's own two-step login state (superadmin only)."""
    require_superadmin(actor)
    with new_session() as s:
        user = s.get(User, actor.user_id)
        if user is None:
            raise NotFound()
        left = s.exec(select(sa.func.count()).select_from(RecoveryCode).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))).one()
        return TwoFactorStatus(is_enabled(user),
                               bool(user.totp_secret) and not is_enabled(user), int(left))


def begin_enrolment(actor: Actor) -> Enrolment:
    """Create a new secret for the actor's own account, pending confirmation.

    Raises:
        Conflict: two-step login is already on (turn it off first).
    """
    with unit_of_work(actor) as uow:
        user = _own_superadmin(uow, actor)
        if is_enabled(user):
            raise Conflict("Verifikasi dua langkah sudah aktif.")
        secret = pyotp.random_base32()
        user.totp_secret = encrypt_secret(secret, _PURPOSE)
        user.totp_last_step = None
        user.updated_at = clock.now()
        uow.audit("auth.two_factor_enrol", "users", user.id)
        issuer = settings_service.get_values(["app_name"])["app_name"] or "FiberNode"
        uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=issuer)
    qr = segno.make(uri, error="m").svg_data_uri(scale=4, border=2)
    return Enrolment(secret=secret, uri=uri, qr_svg_data_uri=qr)


def confirm_enrolment(actor: Actor, code: str) -> list[str]:
    """Turn two-step login on with a first code from the app.

    Returns:
        The recovery codes, shown to the user this once.

    Raises:
        ValidationFailed: no enrolment was started, or the code is wrong.
    """
    now = clock.now()
    with unit_of_work(actor) as uow:
        user = _own_superadmin(uow, actor)
        if is_enabled(user):
            raise Conflict("Verifikasi dua langkah sudah aktif.")
        if not user.totp_secret:
            raise ValidationFailed({"code": "Mulai pendaftaran authenticator terlebih dahulu."})
        step = _matching_step(user, code or "", now)
        if step is None:
            raise ValidationFailed({"code": WRONG_CODE})
        user.totp_enabled_at = now
        user.totp_last_step = step
        user.updated_at = now
        codes = _new_recovery_codes(uow.session, user.id)
        uow.audit("auth.two_factor_enabled", "users", user.id)
        return codes


def _check_code_or_recovery(uow, user: User, code: str, now: datetime) -> bool:
    step = _matching_step(user, code, now)
    if step is not None:
        user.totp_last_step = step
        return True
    if len(_normalise_recovery(code)) != 10:
        return False
    row = uow.session.exec(select(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _hash_code(code),
        RecoveryCode.used_at.is_(None)).with_for_update()).first()
    if row is None:
        return False
    row.used_at = now
    uow.audit("auth.recovery_code_used", "users", user.id)
    return True


def check_login_code(uow, user: User, code: str, now: datetime) -> bool:
    """Check a login's second step (an authenticator code or an unused recovery code).

    Runs inside the login's unit of work, so the used step or recovery code is
    recorded with the login itself.
    """
    return _check_code_or_recovery(uow, user, code or "", now)


def regenerate_recovery_codes(actor: Actor, code: str) -> list[str]:
    """Replace all recovery codes after confirming with a current code."""
    now = clock.now()
    with unit_of_work(actor) as uow:
        user = _own_superadmin(uow, actor)
        if not is_enabled(user):
            raise ValidationFailed({"code": "Verifikasi dua langkah belum aktif."})
        if not _check_code_or_recovery(uow, user, code or "", now):
            raise ValidationFailed({"code": WRONG_CODE})
        codes = _new_recovery_codes(uow.session, user.id)
        uow.audit("auth.recovery_codes_regenerated", "users", user.id)
        return codes


def disable(actor: Actor, password: str, code: str) -> None:
    """Turn two-step login off; needs the password and a code (or a recovery code)."""
    now = clock.now()
    with unit_of_work(actor) as uow:
        user = _own_superadmin(uow, actor)
        if not user.totp_secret:
            raise ValidationFailed({"code": "Verifikasi dua langkah belum aktif."})
        problems = {}
        if not verify_password(user.password_hash, password or ""):
            problems["password"] = "Password salah."  # noqa: S105
        if is_enabled(user) and not _check_code_or_recovery(uow, user, code or "", now):
            problems["code"] = WRONG_CODE
        if problems:
            raise ValidationFailed(problems)
        user.totp_secret = None
        user.totp_enabled_at = None
        user.totp_last_step = None
        user.updated_at = now
        uow.session.exec(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        uow.audit("auth.two_factor_disabled", "users", user.id)
