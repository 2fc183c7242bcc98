"""Two-step login (TOTP) for superadmin accounts: enrolment, login, recovery, disable."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import ActivityLog, LoginAttempt, RecoveryCode, User
from fibernode.services import api_tokens, auth, two_factor
from fibernode.services.context import Actor
from fibernode.services.errors import (
    AuthenticationRequired,
    Conflict,
    LockedOut,
    LoginFailed,
    PermissionDenied,
    TwoFactorRequired,
    ValidationFailed,
)
from tests.factories import ADMIN_PASSWORD

CLIENT = Actor.anonymous("10.8.0.1", "pytest")


def code_at(secret: str, when=None) -> str:
    return pyotp.TOTP(secret).at(when or clock.now())


def enrol(actor: Actor) -> tuple[str, list[str]]:
    enrolment = two_factor.begin_enrolment(actor)
    codes = two_factor.confirm_enrolment(actor, code_at(enrolment.secret))
    return enrolment.secret, codes


def user_row(actor: Actor) -> User:
    with new_session() as s:
        return s.get(User, actor.user_id)


def test_enrolment_stores_the_secret_encrypted_and_returns_recovery_codes(world):
    enrolment = two_factor.begin_enrolment(world.admin)
    assert enrolment.uri.startswith("otpauth://totp/") and "superadmin" in enrolment.uri
    assert enrolment.qr_svg_data_uri.startswith("data:image/svg+xml")
    row = user_row(world.admin)
    assert row.totp_secret and enrolment.secret not in row.totp_secret
    assert row.totp_enabled_at is None
    assert two_factor.status(world.admin).pending is True

    with pytest.raises(ValidationFailed, match="Kode verifikasi salah"):
        two_factor.confirm_enrolment(world.admin, "000000")
    codes = two_factor.confirm_enrolment(world.admin, code_at(enrolment.secret))

    assert len(codes) == two_factor.RECOVERY_CODE_COUNT == len(set(codes))
    status = two_factor.status(world.admin)
    assert (status.enabled, status.pending, status.recovery_codes_left) == (True, False, 10)
    with new_session() as s:
        stored = {r.code_hash for r in s.exec(select(RecoveryCode))}
        logged = [a.action for a in s.exec(select(ActivityLog))]
    assert not stored & set(codes)
    assert {"auth.two_factor_enrol", "auth.two_factor_enabled"} <= set(logged)
    with pytest.raises(Conflict):
        two_factor.begin_enrolment(world.admin)


def test_only_superadmins_use_two_step_login(world):
    with pytest.raises(PermissionDenied):
        two_factor.begin_enrolment(world.mitra_a)
    with pytest.raises(AuthenticationRequired):
        two_factor.begin_enrolment(world.anonymous)


def test_login_needs_the_code_once_enabled_in_ui_and_api(world, monkeypatch):
    secret, _ = enrol(world.admin)
    # Enrolment used the current step; each later login uses the next one.
    start = clock.now()
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=30))

    with pytest.raises(TwoFactorRequired):
        auth.login(CLIENT, "superadmin", ADMIN_PASSWORD)
    with pytest.raises(TwoFactorRequired):
        api_tokens.login(CLIENT, "superadmin", ADMIN_PASSWORD)
    # Asking for the code records nothing: the code request is the attempt that counts.
    with new_session() as s:
        assert s.exec(select(LoginAttempt).where(LoginAttempt.ip_address == "10.8.0.1")).all() == []

    result = auth.login(CLIENT, "superadmin", ADMIN_PASSWORD, otp=code_at(secret))
    assert result.actor.is_superadmin
    with pytest.raises(LoginFailed, match="Kode verifikasi salah"):
        # The same code again is a replay.
        api_tokens.login(CLIENT, "superadmin", ADMIN_PASSWORD, otp=code_at(secret))
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=60))
    pair = api_tokens.login(CLIENT, "superadmin", ADMIN_PASSWORD, otp=code_at(secret))
    assert pair.role == "superadmin" and pair.refresh_token

    # A wrong password never reveals whether the code was needed.
    with pytest.raises(LoginFailed, match="Username atau password salah"):
        auth.login(CLIENT, "superadmin", "salah-total-1")


def test_wrong_codes_count_towards_the_lockout(world):
    enrol(world.admin)
    for _ in range(5):
        with pytest.raises(LoginFailed, match="Kode verifikasi salah"):
            auth.login(CLIENT, "superadmin", ADMIN_PASSWORD, otp="123456")
    with pytest.raises(LockedOut):
        auth.login(CLIENT, "superadmin", ADMIN_PASSWORD, otp="123456")


def test_recovery_codes_work_once(world):
    _, codes = enrol(world.admin)
    auth.login(CLIENT, "superadmin", ADMIN_PASSWORD, otp=codes[0].lower().replace("-", " "))
    with pytest.raises(LoginFailed):
        auth.login(CLIENT, "superadmin", ADMIN_PASSWORD, otp=codes[0])
    assert two_factor.status(world.admin).recovery_codes_left == 9
    with new_session() as s:
        assert "auth.recovery_code_used" in {a.action for a in s.exec(select(ActivityLog))}


def test_regenerate_and_disable(world):
    secret, codes = enrol(world.admin)
    new_codes = two_factor.regenerate_recovery_codes(world.admin, codes[1])
    assert not set(new_codes) & set(codes)
    with pytest.raises(LoginFailed):
        auth.login(CLIENT, "superadmin", ADMIN_PASSWORD, otp=codes[2])  # old set is gone

    with pytest.raises(ValidationFailed) as info:
        two_factor.disable(world.admin, "salah", "000000")
    assert set(info.value.details) == {"password", "code"}
    two_factor.disable(world.admin, ADMIN_PASSWORD, new_codes[0])
    row = user_row(world.admin)
    assert (row.totp_secret, row.totp_enabled_at) == (None, None)
    assert auth.login(CLIENT, "superadmin", ADMIN_PASSWORD).actor.is_superadmin
    with new_session() as s:
        assert s.exec(select(RecoveryCode)).all() == []
