"""Trusted devices (OWASP device cookie): a username lockout cannot keep the owner out.

Issue 16, finding 10: anyone could lock any account, the superadmin's included, from
any address. Unknown devices keep the spec's lockout; a device that logged in before
keeps logging in, with a failure limit of its own; lockouts are audited and the owner
is told.
"""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import (
    ActivityLog,
    LoginAttempt,
    TrustedDevice,
    WaMessageLog,
    WaOutbox,
    WaSessionStatus,
)
from fibernode.services import auth, devices, two_factor, users, wa_direct
from fibernode.services.context import Actor
from fibernode.services.errors import LockedOut, LoginFailed, TwoFactorRequired
from fibernode.services.wa_sessions import SessionEvent, record_event
from tests.factories import ADMIN_PASSWORD, MITRA_PASSWORD, World
from tests.services.test_auth import age_attempts

OWNER_IP = "10.40.0.1"
ATTACKER_IP = "203.0.113.66"
ATTACKER_AGENT = "curl/8.5 (penyerang)"
NEW_PASSWORD = "GantiBaru2024"


def browser(ip: str = OWNER_IP, agent: str = "pytest-browser") -> Actor:
    """An anonymous client at ``ip``."""
    return Actor.anonymous(ip, agent)


def attack(username: str, times: int = 5, ip: str = ATTACKER_IP) -> None:
    """``times`` wrong passwords for ``username`` from an unknown device."""
    for _ in range(times):
        with pytest.raises(LoginFailed):
            auth.login(browser(ip, ATTACKER_AGENT), username, "tebak-tebak-1")


def known_device(username: str = "mitra1", password: str = MITRA_PASSWORD) -> str:
    """Log in once from the owner's device; returns the device token it gets."""
    result = auth.login(browser(), username, password)
    assert result.device_token
    return result.device_token


def device_from_days_ago(monkeypatch, days: int) -> str:
    """A device token issued ``days`` ago (attempts are recorded in real time, so the
    token is made old rather than the clock moved on)."""
    past = clock.now() - timedelta(days=days)
    with monkeypatch.context() as m:
        m.setattr(clock, "now", lambda: past)
        return known_device()


def lockout_rows(scope: str | None = None) -> list[ActivityLog]:
    with new_session() as s:
        rows = s.exec(select(ActivityLog).where(ActivityLog.action == "auth.lockout")
                      .order_by(ActivityLog.created_at)).all()
    return [r for r in rows if scope is None or r.meta["scope"] == scope]


# --- the finding: an attacker cannot keep the owner out ------------------------------------


def test_attacker_locking_the_username_does_not_lock_out_the_owners_known_device(world):
    token = known_device()
    attack("mitra1")

    # An unknown device, even with the right password, is locked out as the spec says.
    with pytest.raises(LockedOut, match="15 menit"):
        auth.login(browser("10.40.0.2"), "mitra1", MITRA_PASSWORD)
    # The owner's device, from another address, still logs in and gets a renewed token.
    result = auth.login(browser("10.40.9.9"), "mitra1", MITRA_PASSWORD, device_token=token)
    assert result.actor.user_id == world.mitra_a.user_id
    assert auth.resolve_session(result.token) is not None
    assert result.device_token.split(".")[:3] == token.split(".")[:3]  # same device
    # ...and the renewed token keeps working while the lock lasts.
    assert auth.login(browser(), "mitra1", MITRA_PASSWORD,
                      device_token=result.device_token).token
    # The owner's logins did not reset the lock: the attacker gets no fresh tries.
    with pytest.raises(LockedOut):
        auth.login(browser(ATTACKER_IP), "mitra1", MITRA_PASSWORD)


def test_the_superadmin_keeps_access_while_the_username_is_locked(world):
    token = known_device("superadmin", ADMIN_PASSWORD)
    attack("superadmin")
    with pytest.raises(LockedOut):
        auth.login(browser("10.40.0.3"), "superadmin", ADMIN_PASSWORD)
    assert auth.login(browser(), "superadmin", ADMIN_PASSWORD, device_token=token).token


def test_unknown_device_lockout_is_unchanged(world):
    attack("mitra1", 4)
    # Four failures: the right password still works for anyone (and resets the count).
    assert auth.login(browser("10.40.1.1"), "mitra1", MITRA_PASSWORD).token
    attack("mitra1", 5, ip="203.0.113.67")
    with pytest.raises(LockedOut) as exc:
        auth.login(browser("10.40.1.1"), "mitra1", MITRA_PASSWORD)
    assert exc.value.minutes == 15
    age_attempts(timedelta(minutes=15, seconds=5))
    assert auth.login(browser("10.40.1.1"), "mitra1", MITRA_PASSWORD).token


def test_a_known_device_skips_the_address_lock_of_a_shared_address(world):
    # Subscribers of one RT/RW-Net share an address (CGNAT): a neighbour sprays usernames.
    shared = "100.64.7.7"
    token = known_device()
    for i in range(5):
        with pytest.raises(LoginFailed):
            auth.login(browser(shared), f"tebakan{i}", "tebak-tebak-1")
    with pytest.raises(LockedOut):
        auth.login(browser(shared), "mitra1", MITRA_PASSWORD)
    assert auth.login(browser(shared), "mitra1", MITRA_PASSWORD, device_token=token).token


# --- tokens that do not count -------------------------------------------------------------


def tampered(token: str) -> str:
    head, signature = token.rsplit(".", 1)
    return f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


def reissued(token: str, days: int) -> str:
    """The same device's token with its issue time moved (the signature then fails)."""
    version, user, device, issued, signature = token.split(".")
    return f"{version}.{user}.{device}.{int(issued) - days * 86400}.{signature}"


@pytest.mark.parametrize("kind", ["garbage", "empty", "tampered", "backdated",
                                  "other-user", "revoked-row"])
def test_forged_or_foreign_device_tokens_count_as_unknown(world, kind):
    own = known_device()
    token = {
        "garbage": lambda: "v1.bukan.token.sama.sekali",
        "empty": lambda: "",
        "tampered": lambda: tampered(own),
        "backdated": lambda: reissued(own, 1),
        "other-user": lambda: known_device("mitra2"),
        "revoked-row": lambda: own,
    }[kind]()
    if kind == "revoked-row":
        with new_session() as s:
            s.exec(sa.update(TrustedDevice).values(revoked_at=clock.now(),
                                                   revoked_reason="test"))
            s.commit()
    attack("mitra1")
    with pytest.raises(LockedOut):
        auth.login(browser(), "mitra1", MITRA_PASSWORD, device_token=token)


def test_an_expired_device_token_counts_as_unknown(world, monkeypatch):
    token = device_from_days_ago(monkeypatch, 181)
    attack("mitra1")
    with pytest.raises(LockedOut):
        auth.login(browser(), "mitra1", MITRA_PASSWORD, device_token=token)


def test_a_device_token_still_valid_after_179_days(world, monkeypatch):
    token = device_from_days_ago(monkeypatch, 179)
    attack("mitra1")
    assert auth.login(browser(), "mitra1", MITRA_PASSWORD, device_token=token).token


def test_a_password_change_revokes_the_devices_trusted_before(world):
    token = known_device()
    here = auth.login(browser(), "mitra1", MITRA_PASSWORD)
    auth.change_password(here.actor, MITRA_PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
    attack("mitra1")
    with pytest.raises(LockedOut):
        auth.login(browser(), "mitra1", NEW_PASSWORD, device_token=token)
    with new_session() as s:
        reasons = set(s.exec(select(TrustedDevice.revoked_reason).where(
            TrustedDevice.user_id == world.mitra_a.user_id)).all())
    assert reasons == {"password_changed"}


def test_an_account_keeps_at_most_ten_trusted_devices(world):
    first = known_device()
    for _ in range(devices.MAX_DEVICES):
        known_device()
    with new_session() as s:
        live = s.exec(select(sa.func.count()).select_from(TrustedDevice).where(
            TrustedDevice.user_id == world.mitra_a.user_id,
            TrustedDevice.revoked_at.is_(None))).one()
    # The world fixture's own login of mitra1 made a device too.
    assert live == devices.MAX_DEVICES
    attack("mitra1")
    with pytest.raises(LockedOut):
        auth.login(browser(), "mitra1", MITRA_PASSWORD, device_token=first)


# --- the device's own limit ---------------------------------------------------------------


def test_failures_with_a_device_token_lock_that_device_only(world):
    stolen = known_device()
    other = known_device()
    for _ in range(5):
        with pytest.raises(LoginFailed):
            auth.login(browser(ATTACKER_IP), "mitra1", "tebak-tebak-1", device_token=stolen)

    with pytest.raises(LockedOut, match="15 menit"):
        auth.login(browser(OWNER_IP), "mitra1", MITRA_PASSWORD, device_token=stolen)
    # The username is not locked for unknown devices, nor the address, nor other devices.
    assert auth.login(browser("10.40.2.2"), "mitra1", MITRA_PASSWORD).token
    assert auth.login(browser(ATTACKER_IP), "mitra2", MITRA_PASSWORD).token
    assert auth.login(browser(), "mitra1", MITRA_PASSWORD, device_token=other).token
    with new_session() as s:
        counted = s.exec(select(sa.func.count()).select_from(LoginAttempt).where(
            LoginAttempt.device_id.is_not(None), LoginAttempt.success.is_(False))).one()
    assert counted == 5


def test_a_device_lock_ends_after_the_window(world, monkeypatch):
    token = known_device()
    for _ in range(5):
        with pytest.raises(LoginFailed):
            auth.login(browser(), "mitra1", "tebak-tebak-1", device_token=token)
    later = clock.now() + timedelta(minutes=16)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert auth.login(browser(), "mitra1", MITRA_PASSWORD, device_token=token).token


def test_the_device_token_comes_only_after_the_second_step(world, monkeypatch):
    enrolment = two_factor.begin_enrolment(world.admin)
    two_factor.confirm_enrolment(world.admin, pyotp.TOTP(enrolment.secret).now())
    with new_session() as s:
        s.exec(sa.delete(TrustedDevice))
        s.commit()
    with pytest.raises(TwoFactorRequired):
        auth.login(browser(), "superadmin", ADMIN_PASSWORD)
    with new_session() as s:
        assert s.exec(select(TrustedDevice)).all() == []
    later = clock.now() + timedelta(seconds=31)  # a fresh time step (no code replay)
    monkeypatch.setattr(clock, "now", lambda: later)
    code = pyotp.TOTP(enrolment.secret).at(later)
    result = auth.login(browser(), "superadmin", ADMIN_PASSWORD, otp=code)
    assert result.device_token


# --- audit and notice ---------------------------------------------------------------------


def test_a_lockout_is_audited_with_the_attackers_address_and_the_owner_sees_it(world):
    attack("mitra1")
    with pytest.raises(LockedOut):  # refused tries do not start another lockout
        attack("mitra1", 1)

    [row] = lockout_rows("username")
    assert row.resource == "users" and row.resource_id == world.mitra_a.user_id
    assert row.user_id is None and row.ip_address == ATTACKER_IP
    assert row.meta["scope"] == "username" and row.meta["username"] == "mitra1"
    assert row.meta["user_agent"] == ATTACKER_AGENT and row.meta["minutes"] == 15

    # Five failures from one address lock that address as well: audited, nobody's account.
    [ip_row] = lockout_rows("ip")
    assert ip_row.resource_id is None and ip_row.ip_address == ATTACKER_IP

    summary = devices.recent_lockouts(world.mitra_a)
    assert summary is not None and summary.count == 1 and summary.last_ip == ATTACKER_IP
    assert ATTACKER_IP in summary.message and "1 kali" in summary.message
    assert devices.recent_lockouts(world.mitra_b) is None


def test_lockout_notices_fade_after_a_week(world, monkeypatch):
    attack("mitra1")
    later = clock.now() + timedelta(days=devices.LOCKOUT_NOTICE_DAYS, minutes=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert devices.recent_lockouts(world.mitra_a) is None


def test_address_and_device_lockouts_are_audited_too(world):
    for i in range(5):
        with pytest.raises(LoginFailed):
            auth.login(browser("198.51.100.5"), f"tebakan{i}", "tebak-tebak-1")
    token = known_device()
    for _ in range(5):
        with pytest.raises(LoginFailed):
            auth.login(browser("198.51.100.6"), "mitra1", "tebak-tebak-1", device_token=token)
    ip_row, device_row = lockout_rows()
    assert ip_row.meta["scope"] == "ip" and ip_row.resource_id is None
    assert ip_row.ip_address == "198.51.100.5"
    assert device_row.meta["scope"] == "device"
    assert device_row.resource_id == world.mitra_a.user_id
    assert device_row.meta["device"] is not None


def test_the_owner_gets_one_whatsapp_a_day_from_the_superadmins_number(world, outbox_whatsapp):
    users.update_profile(world.mitra_a, name="Budi Santoso", phone="081234567890")
    record_event(world.admin.user_id, SessionEvent(status=WaSessionStatus.CONNECTED,
                                                   phone_number="6281111111111"))
    attack("mitra1")
    age_attempts(timedelta(minutes=15, seconds=5))  # the lock is over; lock it again
    attack("mitra1", ip="203.0.113.67")
    assert wa_direct.wait_for_dispatch(10)

    assert len(lockout_rows("username")) == 2
    with new_session() as s:
        [log] = s.exec(select(WaMessageLog)).all()
        [sent] = s.exec(select(WaOutbox)).all()
    assert (log.message_type, log.status, log.owner_id) == (
        "security", "sent", world.admin.user_id)
    assert log.phone == sent.phone == "6281234567890"
    assert "mitra1" in sent.content and ATTACKER_IP in sent.content


def test_no_whatsapp_while_the_superadmins_number_is_not_connected(world, outbox_whatsapp):
    users.update_profile(world.mitra_a, name="Budi Santoso", phone="081234567890")
    attack("mitra1")
    assert wa_direct.wait_for_dispatch(10)
    assert len(lockout_rows("username")) == 1
    with new_session() as s:
        assert s.exec(select(WaMessageLog)).all() == []


# --- under parallel requests (PostgreSQL) -------------------------------------------------


def test_parallel_guesses_with_one_device_token_get_only_five_tries(pg):
    import threading

    World.seeded()
    token = known_device()
    outcomes: list[str] = []
    start = threading.Barrier(12)

    def guess() -> None:
        start.wait()
        try:
            auth.login(browser(ATTACKER_IP), "mitra1", "tebak-tebak-1", device_token=token)
        except Exception as exc:  # collected and asserted below
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["LockedOut"] * 7 + ["LoginFailed"] * 5
    assert len(lockout_rows()) == 1
