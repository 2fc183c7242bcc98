"""Login, lockout, server-side sessions, logout and password changes."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import ActivityLog, LoginAttempt, User, UserRole, UserSession
from fibernode.services import auth, users
from fibernode.services.context import Actor
from fibernode.services.errors import (
    AuthenticationRequired,
    LockedOut,
    LoginFailed,
    NotFound,
    ValidationFailed,
)
from tests.factories import MITRA_PASSWORD, World

pytestmark = pytest.mark.both_dialects(
    "the lockout check is serialised by advisory locks on PostgreSQL only")

NEW_PASSWORD = "GantiBaru2024"


def client(ip: str) -> Actor:
    """An anonymous browser at ``ip``."""
    return Actor.anonymous(ip, "pytest-browser")


def attempts(**where) -> list[LoginAttempt]:
    with new_session() as s:
        q = select(LoginAttempt)
        for column, value in where.items():
            q = q.where(getattr(LoginAttempt, column) == value)
        return list(s.exec(q).all())


def fail_logins(username: str, times: int, ip: str = "10.1.1.1") -> None:
    """``times`` wrong-password logins, each answered with the generic message."""
    for _ in range(times):
        with pytest.raises(LoginFailed, match="Username atau password salah."):
            auth.login(client(ip), username, "salah-total-1")


def age_attempts(delta: timedelta) -> None:
    """Move every recorded login attempt ``delta`` into the past."""
    with new_session() as s:
        for attempt in s.exec(select(LoginAttempt)).all():
            attempt.created_at -= delta
        s.commit()


def session_row(token: str) -> UserSession:
    with new_session() as s:
        return s.exec(
            select(UserSession).where(UserSession.token_hash == auth.hash_token(token))
        ).one()


# --- login -------------------------------------------------------------------------------


def test_login_success_opens_a_session_and_audits_it(world):
    before = clock.now()
    result = auth.login(client("10.2.0.1"), "mitra1", MITRA_PASSWORD)

    assert result.token and len(result.token) >= 32
    assert result.actor.role == UserRole.MITRA
    assert result.actor.user_id == world.mitra_a.user_id
    assert result.remember is False

    resolved = auth.resolve_session(result.token, ip="10.2.0.1")
    assert resolved is not None
    assert (resolved.user_id, resolved.role, resolved.name) == (
        world.mitra_a.user_id, UserRole.MITRA, "Budi Santoso")

    with new_session() as s:
        user = s.get(User, world.mitra_a.user_id)
        assert user.last_login_at is not None and user.last_login_at >= before
        sess = s.exec(select(UserSession).where(
            UserSession.token_hash == auth.hash_token(result.token))).one()
        # Only the hash of the token is stored.
        assert result.token not in {sess.token_hash, sess.user_agent}
        log = s.exec(select(ActivityLog).where(
            ActivityLog.action == "auth.login", ActivityLog.resource_id == sess.id)).one()
    assert log.user_id == world.mitra_a.user_id
    assert log.ip_address == "10.2.0.1"
    assert attempts(username="mitra1", ip_address="10.2.0.1", success=True)


def test_wrong_password_is_refused_and_the_attempt_is_committed(world):
    with pytest.raises(LoginFailed) as exc:
        auth.login(client("10.2.0.2"), "mitra1", "BukanPassword1")
    assert exc.value.message == "Username atau password salah."

    failed = attempts(username="mitra1", ip_address="10.2.0.2")
    assert [a.success for a in failed] == [False]
    assert failed[0].user_agent == "pytest-browser"


def test_unknown_username_gets_the_same_message(world):
    with pytest.raises(LoginFailed) as exc:
        auth.login(client("10.2.0.3"), "tidakada", MITRA_PASSWORD)
    assert exc.value.message == "Username atau password salah."
    assert [a.success for a in attempts(username="tidakada")] == [False]


@pytest.mark.parametrize(
    ("username", "password", "expected"),
    [
        ("", "", {"username": "Username wajib diisi.", "password": "Password wajib diisi."}),
        ("   ", "x", {"username": "Username wajib diisi."}),
        ("mitra1", "", {"password": "Password wajib diisi."}),
    ],
)
def test_empty_fields_are_validation_errors(world, username, password, expected):
    with pytest.raises(ValidationFailed) as exc:
        auth.login(client("10.2.0.4"), username, password)
    assert exc.value.details == expected
    assert attempts(ip_address="10.2.0.4") == []


def test_overlong_username_is_a_validation_error_not_a_crash(world):
    with pytest.raises(ValidationFailed) as exc:
        auth.login(client("10.2.0.6"), "a" * 101, "whatever1")
    assert exc.value.details == {"username": "Username maksimal 100 karakter."}
    with pytest.raises(LoginFailed):
        auth.login(client("10.2.0.6"), "a" * 100, "whatever1")


def test_overlong_client_address_is_truncated_not_a_crash(world):
    # E.g. a forwarded-for chain; the columns hold 45 characters (a full IPv6 address).
    chain = "203.0.113.250, 198.51.100.250, 192.0.2.250, 10.0.0.250"
    fail_logins("mitra1", 1, ip=chain)
    assert attempts(username="mitra1", success=False)[0].ip_address == chain[:45]
    result = auth.login(client(chain), "mitra1", MITRA_PASSWORD)
    assert session_row(result.token).ip_address == chain[:45]
    # Lockout by address still works on the truncated value.
    for i in range(5):
        with pytest.raises(LoginFailed):
            auth.login(client(chain), f"tebakan{i}", "salah-total-1")
    with pytest.raises(LockedOut):
        auth.login(client(chain), "mitra2", MITRA_PASSWORD)


def test_username_is_trimmed_and_case_insensitive(world):
    result = auth.login(client("10.2.0.5"), "  MiTrA1 ", MITRA_PASSWORD)
    assert result.actor.user_id == world.mitra_a.user_id
    assert attempts(ip_address="10.2.0.5")[0].username == "mitra1"


# --- lockout -----------------------------------------------------------------------------


def test_five_failures_lock_the_username_even_for_the_right_password(world):
    fail_logins("mitra1", 5, ip="10.3.0.1")

    with pytest.raises(LockedOut) as exc:
        auth.login(client("10.3.0.2"), "mitra1", MITRA_PASSWORD)
    assert exc.value.minutes == 15
    assert "15 menit" in exc.value.message
    # Another user is not affected.
    assert auth.login(client("10.3.0.2"), "mitra2", MITRA_PASSWORD).token


def test_lock_message_counts_down_the_minutes_left(world, monkeypatch):
    fail_logins("mitra1", 5, ip="10.3.1.1")
    later = clock.now() + timedelta(minutes=10)
    monkeypatch.setattr(clock, "now", lambda: later)
    with pytest.raises(LockedOut, match="coba lagi dalam 5 menit"):
        auth.login(client("10.3.1.2"), "mitra1", MITRA_PASSWORD)


def test_five_failures_from_one_ip_lock_that_ip_across_usernames(world):
    for i in range(5):
        with pytest.raises(LoginFailed):
            auth.login(client("10.3.2.1"), f"tebakan{i}", "salah-total-1")

    with pytest.raises(LockedOut, match="15 menit"):
        auth.login(client("10.3.2.1"), "mitra2", MITRA_PASSWORD)
    # The same account from another address is fine: no username had 5 failures.
    assert auth.login(client("10.3.2.2"), "mitra2", MITRA_PASSWORD).token


def test_lock_expires_after_the_window(world):
    fail_logins("mitra1", 5, ip="10.3.3.1")
    with pytest.raises(LockedOut):
        auth.login(client("10.3.3.1"), "mitra1", MITRA_PASSWORD)

    age_attempts(timedelta(minutes=15, seconds=5))
    result = auth.login(client("10.3.3.1"), "mitra1", MITRA_PASSWORD)
    assert auth.resolve_session(result.token) is not None


def test_lock_expires_when_the_clock_moves_on(world, monkeypatch):
    fail_logins("mitra1", 5, ip="10.3.4.1")
    later = clock.now() + timedelta(minutes=16)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert auth.login(client("10.3.4.1"), "mitra1", MITRA_PASSWORD).token


def test_refused_attempts_during_a_lock_are_not_recorded(world):
    fail_logins("mitra1", 5, ip="10.3.5.1")
    assert len(attempts(username="mitra1", success=False)) == 5

    for password in (MITRA_PASSWORD, "salah-lagi-1", MITRA_PASSWORD):
        with pytest.raises(LockedOut):
            auth.login(client("10.3.5.1"), "mitra1", password)

    assert len(attempts(username="mitra1", success=False)) == 5
    assert not attempts(username="mitra1", ip_address="10.3.5.1", success=True)
    with new_session() as s:
        blocked = s.exec(select(ActivityLog).where(
            ActivityLog.action == "auth.login_blocked")).all()
    assert len(blocked) == 3
    # Because refused tries are not counted, the lock ends 15 minutes after the 5th failure.
    age_attempts(timedelta(minutes=15, seconds=5))
    assert auth.login(client("10.3.5.1"), "mitra1", MITRA_PASSWORD).token


def test_a_success_before_the_threshold_resets_the_count(world):
    fail_logins("mitra1", 4, ip="10.3.6.1")
    auth.login(client("10.3.6.1"), "mitra1", MITRA_PASSWORD)
    fail_logins("mitra1", 4, ip="10.3.6.1")
    # 8 failures in the window, but only 4 since the last success: still a plain failure.
    fail_logins("mitra1", 1, ip="10.3.6.1")
    # Now 5 since the last success: locked.
    with pytest.raises(LockedOut):
        auth.login(client("10.3.6.1"), "mitra1", MITRA_PASSWORD)


def test_failures_spread_over_more_than_the_window_do_not_lock(world):
    fail_logins("mitra1", 1, ip="10.3.7.1")
    age_attempts(timedelta(minutes=20))
    fail_logins("mitra1", 4, ip="10.3.7.1")
    assert auth.login(client("10.3.7.1"), "mitra1", MITRA_PASSWORD).token


# --- inactive users ----------------------------------------------------------------------


def test_inactive_user_cannot_log_in(world):
    mitra2 = world.user_id("mitra2")
    users.set_user_active(world.admin, mitra2, False)

    with pytest.raises(LoginFailed) as exc:
        auth.login(client("10.4.0.1"), "mitra2", MITRA_PASSWORD)
    assert exc.value.message.startswith("Akun Anda dinonaktifkan")
    # A wrong password on an inactive account does not reveal that it is inactive.
    with pytest.raises(LoginFailed, match="Username atau password salah."):
        auth.login(client("10.4.0.1"), "mitra2", "salah-total-1")

    users.set_user_active(world.admin, mitra2, True)
    assert auth.login(client("10.4.0.1"), "mitra2", MITRA_PASSWORD).token


def test_deactivating_a_mitra_ends_their_sessions_at_once(world):
    first = auth.login(client("10.4.1.1"), "mitra2", MITRA_PASSWORD)
    second = auth.login(client("10.4.1.2"), "mitra2", MITRA_PASSWORD, remember=True)
    assert auth.resolve_session(first.token) is not None

    users.set_user_active(world.admin, world.user_id("mitra2"), False)

    assert auth.resolve_session(first.token) is None
    assert auth.resolve_session(second.token) is None
    assert session_row(first.token).revoked_reason == "deactivated"
    # Reactivation does not bring revoked sessions back.
    users.set_user_active(world.admin, world.user_id("mitra2"), True)
    assert auth.resolve_session(first.token) is None


# --- sessions ----------------------------------------------------------------------------


def test_logout_revokes_only_that_session(world):
    one = auth.login(client("10.5.0.1"), "mitra1", MITRA_PASSWORD)
    two = auth.login(client("10.5.0.2"), "mitra1", MITRA_PASSWORD)
    assert one.token != two.token

    auth.logout(client("10.5.0.1"), one.token)

    assert auth.resolve_session(one.token) is None
    assert auth.resolve_session(two.token).user_id == world.mitra_a.user_id
    assert session_row(one.token).revoked_reason == "logout"
    with new_session() as s:
        log = s.exec(select(ActivityLog).where(ActivityLog.action == "auth.logout")).one()
    assert log.user_id == world.mitra_a.user_id
    # Logging out twice, or with garbage, is harmless.
    auth.logout(client("10.5.0.1"), one.token)
    auth.logout(client("10.5.0.1"), "not-a-token")


def test_resolve_session_rejects_missing_and_unknown_tokens(world):
    assert auth.resolve_session(None) is None
    assert auth.resolve_session("") is None
    assert auth.resolve_session("x" * 43) is None


def test_expired_session_does_not_resolve(world):
    result = auth.login(client("10.5.1.1"), "mitra1", MITRA_PASSWORD)
    with new_session() as s:
        s.exec(sa.update(UserSession)
               .where(UserSession.token_hash == auth.hash_token(result.token))
               .values(expires_at=clock.now() - timedelta(minutes=1)))
        s.commit()
    assert auth.resolve_session(result.token) is None


def test_remember_me_sessions_last_longer(world):
    start = clock.now()
    normal = auth.login(client("10.5.2.1"), "mitra1", MITRA_PASSWORD)
    remembered = auth.login(client("10.5.2.1"), "mitra1", MITRA_PASSWORD, remember=True)

    assert remembered.remember is True
    for result, lifetime in ((normal, timedelta(hours=12)), (remembered, timedelta(days=30))):
        stored = session_row(result.token)
        assert stored.remember is result.remember
        assert stored.expires_at == result.expires_at
        assert abs(stored.expires_at - (start + lifetime)) < timedelta(minutes=1)


def test_resolve_session_refreshes_last_seen_only_occasionally(world, monkeypatch):
    result = auth.login(client("10.5.3.1"), "mitra1", MITRA_PASSWORD)
    first_seen = session_row(result.token).last_seen_at

    auth.resolve_session(result.token)
    assert session_row(result.token).last_seen_at == first_seen

    later = clock.now() + timedelta(minutes=6)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert auth.resolve_session(result.token) is not None
    assert session_row(result.token).last_seen_at == later


def test_list_my_sessions_shows_only_my_live_sessions(world):
    one = auth.login(client("10.5.4.1"), "mitra1", MITRA_PASSWORD)
    two = auth.login(client("10.5.4.2"), "mitra1", MITRA_PASSWORD)
    auth.login(client("10.5.4.3"), "mitra2", MITRA_PASSWORD)
    auth.logout(client("10.5.4.1"), one.token)

    mine = auth.list_my_sessions(two.actor, current_token=two.token)

    ids = {s.id for s in mine}
    assert session_row(two.token).id in ids
    assert session_row(one.token).id not in ids
    # The fixture's own login of mitra1 is still live too.
    assert len(mine) == 2
    assert [s.ip_address for s in mine if s.current] == ["10.5.4.2"]
    with pytest.raises(AuthenticationRequired):
        auth.list_my_sessions(world.anonymous)


def test_revoke_my_session(world):
    phone = auth.login(client("10.5.5.1"), "mitra1", MITRA_PASSWORD)
    laptop = auth.login(client("10.5.5.2"), "mitra1", MITRA_PASSWORD)
    phone_id = session_row(phone.token).id

    # Another mitra, and even the superadmin, cannot revoke it through this use case.
    for other in (world.mitra_b, world.admin):
        with pytest.raises(NotFound, match="Sesi tidak ditemukan."):
            auth.revoke_my_session(other, phone_id)
    assert auth.resolve_session(phone.token) is not None

    auth.revoke_my_session(laptop.actor, phone_id)

    assert auth.resolve_session(phone.token) is None
    assert auth.resolve_session(laptop.token) is not None
    assert session_row(phone.token).revoked_reason == "revoked_by_user"
    with pytest.raises(NotFound):
        auth.revoke_my_session(laptop.actor, phone_id)


# --- password change ---------------------------------------------------------------------


def test_change_password_revokes_other_sessions_and_keeps_the_current(world):
    here = auth.login(client("10.6.0.1"), "mitra1", MITRA_PASSWORD)
    elsewhere = auth.login(client("10.6.0.2"), "mitra1", MITRA_PASSWORD)

    revoked = auth.change_password(here.actor, MITRA_PASSWORD, NEW_PASSWORD, NEW_PASSWORD,
                                   keep_token=here.token)

    # The other login above plus the fixture's own login of mitra1.
    assert revoked == 2
    assert auth.resolve_session(here.token) is not None
    assert auth.resolve_session(elsewhere.token) is None
    assert session_row(elsewhere.token).revoked_reason == "password_changed"
    with pytest.raises(LoginFailed, match="Username atau password salah."):
        auth.login(client("10.6.0.3"), "mitra1", MITRA_PASSWORD)
    assert auth.login(client("10.6.0.3"), "mitra1", NEW_PASSWORD).token
    with new_session() as s:
        log = s.exec(select(ActivityLog).where(
            ActivityLog.action == "auth.password_change")).one()
    assert log.meta == {"revoked_sessions": 2}
    assert NEW_PASSWORD not in str(log.meta) and MITRA_PASSWORD not in str(log.meta)


def test_change_password_without_keep_token_revokes_every_session(world):
    here = auth.login(client("10.6.1.1"), "mitra1", MITRA_PASSWORD)
    auth.change_password(here.actor, MITRA_PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
    assert auth.resolve_session(here.token) is None


@pytest.mark.parametrize(
    ("current", "new", "confirm", "expected"),
    [
        ("SalahLama1", NEW_PASSWORD, NEW_PASSWORD,
         {"current_password": "Password saat ini salah."}),
        (MITRA_PASSWORD, "abc1", "abc1", {"new_password": "Password minimal 8 karakter."}),
        (MITRA_PASSWORD, "hanyahuruf", "hanyahuruf",
         {"new_password": "Password harus mengandung huruf dan angka."}),
        (MITRA_PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x",
         {"confirm_password": "Konfirmasi password tidak sama."}),
        ("SalahLama1", "pendek1", "lain",
         {"current_password": "Password saat ini salah.",
          "new_password": "Password minimal 8 karakter.",
          "confirm_password": "Konfirmasi password tidak sama."}),
        (MITRA_PASSWORD, MITRA_PASSWORD, MITRA_PASSWORD,
         {"new_password": "Password baru harus berbeda."}),
    ],
    ids=["wrong-current", "too-short", "no-digit", "mismatch", "all-wrong", "unchanged"],
)
def test_change_password_validation(world, current, new, confirm, expected):
    here = auth.login(client("10.6.2.1"), "mitra1", MITRA_PASSWORD)
    with pytest.raises(ValidationFailed) as exc:
        auth.change_password(here.actor, current, new, confirm, keep_token=here.token)
    assert exc.value.details == expected
    # Nothing changed: the old password still works and no session was revoked.
    assert auth.resolve_session(here.token) is not None
    assert auth.login(client("10.6.2.2"), "mitra1", MITRA_PASSWORD).token
    with new_session() as s:
        assert not s.exec(select(ActivityLog).where(
            ActivityLog.action == "auth.password_change")).all()


# --- lockout under parallel requests (PostgreSQL, the production database) ---------------


def parallel_logins(calls: list[tuple[str, str]]) -> list[str]:
    """Run (ip, username) wrong-password logins at once; returns the error class names."""
    outcomes: list[str] = []
    start = threading.Barrier(len(calls))

    def attempt(ip: str, username: str) -> None:
        start.wait()
        try:
            auth.login(client(ip), username, "salah-total-1")
        except Exception as exc:  # collected and asserted below
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=attempt, args=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(outcomes)


def test_parallel_guesses_for_one_username_get_only_five_tries(pg):
    World.seeded()
    outcomes = parallel_logins([(f"10.10.0.{i}", "mitra1") for i in range(20)])
    assert outcomes == ["LockedOut"] * 15 + ["LoginFailed"] * 5
    assert len(attempts(username="mitra1", success=False)) == 5


def test_parallel_guesses_from_one_address_get_only_five_tries(pg):
    World.seeded()
    outcomes = parallel_logins([("10.10.1.1", f"tebakan{i}") for i in range(20)])
    assert outcomes == ["LockedOut"] * 15 + ["LoginFailed"] * 5
    assert len(attempts(ip_address="10.10.1.1")) == 5
