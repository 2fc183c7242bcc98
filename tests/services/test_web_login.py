"""Web logins hand their token to the browser only as an HttpOnly cookie, through a one-time claim.

Both dialects: the claim locks its row (``SELECT … FOR UPDATE`` on PostgreSQL),
and the race below runs on PostgreSQL where the lock is real.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import ActivityLog, UserSession
from fibernode.services import auth, web_login
from fibernode.services.context import Actor
from fibernode.services.errors import LoginFailed
from tests.factories import MITRA_PASSWORD

pytestmark = pytest.mark.both_dialects(
    "the claim locks its row (SELECT … FOR UPDATE) on PostgreSQL only")

ANON = Actor.anonymous("10.9.9.9", "pytest")


def _count(model, *where) -> int:
    with new_session() as s:
        return len(s.exec(select(model).where(*where)).all())


def test_a_login_reveals_only_a_one_time_code_and_the_claim_mints_the_token(world):
    logins = _count(ActivityLog, ActivityLog.action == "auth.login")
    pending = web_login.begin(ANON, "mitra1", MITRA_PASSWORD)
    assert pending.actor.user_id == world.user_id("mitra1")
    # Before the claim no token exists that anybody knows: the code is not one.
    assert auth.resolve_session(pending.code) is None
    claimed = web_login.claim(ANON, pending.code)
    assert claimed is not None and claimed.token != pending.code
    actor = web_login.resolve(web_login.reference(claimed.token))
    assert actor is not None and actor.user_id == world.user_id("mitra1")
    # The login is audited once, as every login is.
    assert _count(ActivityLog, ActivityLog.action == "auth.login") == logins + 1


def test_a_code_works_once(world):
    pending = web_login.begin(ANON, "mitra1", MITRA_PASSWORD)
    assert web_login.claim(ANON, pending.code) is not None
    assert web_login.claim(ANON, pending.code) is None
    assert web_login.claim(ANON, "") is None
    assert web_login.claim(ANON, "x" * 500) is None


def test_a_code_expires_after_a_minute(world, monkeypatch):
    pending = web_login.begin(ANON, "mitra1", MITRA_PASSWORD)
    later = clock.now() + timedelta(seconds=web_login.CLAIM_SECONDS + 1)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert web_login.claim(ANON, pending.code) is None


def test_a_revoked_login_cannot_be_claimed(world):
    pending = web_login.begin(ANON, "mitra1", MITRA_PASSWORD)
    with new_session() as s:
        sess = s.exec(select(UserSession).where(
            UserSession.claim_hash == auth.hash_token(pending.code))).one()
        sess.revoked_at = clock.now()
        s.add(sess)
        s.commit()
    assert web_login.claim(ANON, pending.code) is None


def test_wrong_credentials_open_nothing(world):
    sessions = _count(UserSession)
    with pytest.raises(LoginFailed):
        web_login.begin(ANON, "mitra1", "salah-sekali")
    assert _count(UserSession) == sessions


def test_logout_by_reference_ends_the_session(world):
    claimed = web_login.claim(ANON, web_login.begin(ANON, "mitra1", MITRA_PASSWORD).code)
    ref = web_login.reference(claimed.token)
    web_login.logout(ANON, ref)
    assert web_login.resolve(ref) is None
    assert auth.resolve_session(claimed.token) is None


def test_two_claims_of_one_code_racing_give_one_token(pg):
    from tests.factories import World

    World.seeded()
    pending = web_login.begin(ANON, "mitra1", MITRA_PASSWORD)
    barrier = threading.Barrier(4)
    results: list = []

    def claim() -> None:
        barrier.wait()
        results.append(web_login.claim(ANON, pending.code))

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    tokens = [r.token for r in results if r is not None]
    assert len(results) == 4 and len(tokens) == 1
    assert web_login.resolve(web_login.reference(tokens[0])) is not None


def test_a_known_browser_logs_in_while_an_attacker_holds_the_username_locked(world):
    """Finding 10 through the web login: the device cookie of an earlier login still works."""
    from fibernode.services.errors import LockedOut

    device = web_login.begin(ANON, "mitra1", MITRA_PASSWORD).device_token
    assert device
    attacker = Actor.anonymous("198.51.100.66", "curl")
    for _ in range(6):
        with pytest.raises((LoginFailed, LockedOut)):
            web_login.begin(attacker, "mitra1", "tebak-tebakan")
    with pytest.raises(LockedOut):
        web_login.begin(ANON, "mitra1", MITRA_PASSWORD)
    pending = web_login.begin(ANON, "mitra1", MITRA_PASSWORD, device_token=device)
    assert web_login.claim(ANON, pending.code) is not None
