"""API tokens: 15-minute access JWT, refresh rotation, reuse detection, revocation."""

from __future__ import annotations

import threading
from datetime import timedelta

import jwt
import pytest
from sqlmodel import select

from fibernode import clock
from fibernode.config import get_settings
from fibernode.db import new_session
from fibernode.models import ActivityLog, RefreshToken, UserRole
from fibernode.services import api_tokens, auth, users
from fibernode.services.context import Actor
from fibernode.services.errors import AuthenticationRequired, LockedOut, LoginFailed
from tests.factories import ADMIN_PASSWORD, MITRA_PASSWORD

CLIENT = Actor.anonymous("10.7.0.1", "pytest-api/1.0")


def tokens_of(user_id) -> list[RefreshToken]:
    with new_session() as s:
        return list(s.exec(select(RefreshToken).where(RefreshToken.user_id == user_id)
                           .order_by(RefreshToken.created_at)).all())


def actions() -> list[str]:
    with new_session() as s:
        return [a.action for a in s.exec(select(ActivityLog).order_by(ActivityLog.created_at))]


def test_login_returns_short_access_and_stored_hashed_refresh(world):
    before = clock.now()
    pair = api_tokens.login(CLIENT, "mitra1", MITRA_PASSWORD)

    claims = jwt.decode(pair.access_token, get_settings().jwt_secret, algorithms=["HS256"])
    assert claims["sub"] == str(world.mitra_a.user_id) and claims["typ"] == "access"
    access_life = pair.access_expires_at - before
    refresh_life = pair.refresh_expires_at - before
    assert timedelta(minutes=14) < access_life <= timedelta(minutes=15, seconds=5)
    assert timedelta(days=6, hours=23) < refresh_life <= timedelta(days=7, minutes=1)
    (row,) = tokens_of(world.mitra_a.user_id)
    assert row.token != pair.refresh_token and pair.refresh_token not in row.token
    assert (row.user_agent, row.ip_address) == ("pytest-api/1.0", "10.7.0.1")
    assert "auth.api_login" in actions()

    actor = api_tokens.resolve_access_token(pair.access_token, "10.7.0.1")
    assert actor is not None and actor.user_id == world.mitra_a.user_id
    assert actor.role == UserRole.MITRA and actor.token_family == row.family_id


def test_access_token_is_rejected_when_expired_forged_or_a_refresh(world):
    pair = api_tokens.login(CLIENT, "mitra1", MITRA_PASSWORD)
    claims = jwt.decode(pair.access_token, get_settings().jwt_secret, algorithms=["HS256"])
    expired = jwt.encode({**claims, "exp": int((clock.now() - timedelta(seconds=1)).timestamp())},
                         get_settings().jwt_secret, algorithm="HS256")
    forged = jwt.encode(claims, "not-the-secret-at-all-but-long-enough-32", algorithm="HS256")
    wrong_type = jwt.encode({**claims, "typ": "refresh"}, get_settings().jwt_secret,
                            algorithm="HS256")
    for token in (expired, forged, wrong_type, pair.refresh_token, "", "abc.def.ghi"):
        assert api_tokens.resolve_access_token(token) is None


def test_refresh_rotates_and_the_old_token_stops_working(world):
    first = api_tokens.login(CLIENT, "mitra1", MITRA_PASSWORD)
    second = api_tokens.refresh(CLIENT, first.refresh_token)

    assert second.refresh_token != first.refresh_token
    rows = tokens_of(world.mitra_a.user_id)
    assert len(rows) == 2 and rows[0].family_id == rows[1].family_id
    assert rows[0].revoked_reason == "rotated" and rows[0].last_used_at is not None
    assert rows[1].revoked_at is None
    # Both access tokens belong to a live family until something revokes it.
    assert api_tokens.resolve_access_token(second.access_token) is not None
    third = api_tokens.refresh(CLIENT, second.refresh_token)
    assert api_tokens.resolve_access_token(third.access_token) is not None


def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(world):
    first = api_tokens.login(CLIENT, "mitra1", MITRA_PASSWORD)
    other_login = api_tokens.login(CLIENT, "mitra1", MITRA_PASSWORD)
    second = api_tokens.refresh(CLIENT, first.refresh_token)

    # A thief replays the stolen, already-rotated token.
    with pytest.raises(AuthenticationRequired, match="sudah pernah dipakai"):
        api_tokens.refresh(Actor.anonymous("203.0.113.9", "curl"), first.refresh_token)

    # The legitimate holder's newer token and access token die with the family ...
    with pytest.raises(AuthenticationRequired):
        api_tokens.refresh(CLIENT, second.refresh_token)
    assert api_tokens.resolve_access_token(second.access_token) is None
    # ... while another login of the same user (another family) is untouched.
    assert api_tokens.resolve_access_token(other_login.access_token) is not None
    assert "auth.refresh_reuse" in actions()
    family = api_tokens.resolve_access_token(other_login.access_token).token_family
    stolen = [r for r in tokens_of(world.mitra_a.user_id) if r.family_id != family]
    assert [r.revoked_reason for r in stolen] == ["rotated", "reuse_detected"]


def test_refresh_rejects_unknown_expired_and_inactive(world):
    with pytest.raises(AuthenticationRequired):
        api_tokens.refresh(CLIENT, "no-such-token")
    with pytest.raises(AuthenticationRequired):
        api_tokens.refresh(CLIENT, "")
    pair = api_tokens.login(CLIENT, "mitra1", MITRA_PASSWORD)
    with new_session() as s:
        row = s.exec(select(RefreshToken)).one()
        row.expires_at = clock.now() - timedelta(seconds=1)
        s.add(row)
        s.commit()
    with pytest.raises(AuthenticationRequired):
        api_tokens.refresh(CLIENT, pair.refresh_token)

    pair = api_tokens.login(CLIENT, "mitra2", MITRA_PASSWORD)
    users.set_user_active(world.admin, world.mitra_b.user_id, False)
    with pytest.raises(AuthenticationRequired):
        api_tokens.refresh(CLIENT, pair.refresh_token)
    assert api_tokens.resolve_access_token(pair.access_token) is None


def test_logout_revokes_the_family(world):
    pair = api_tokens.login(CLIENT, "superadmin", ADMIN_PASSWORD)
    actor = api_tokens.resolve_access_token(pair.access_token)
    assert api_tokens.logout(actor) == 1
    assert api_tokens.resolve_access_token(pair.access_token) is None
    with pytest.raises(AuthenticationRequired):
        api_tokens.refresh(CLIENT, pair.refresh_token)
    assert "auth.api_logout" in actions()


def test_password_change_and_reset_revoke_every_api_login(world):
    one = api_tokens.login(CLIENT, "mitra1", MITRA_PASSWORD)
    two = api_tokens.login(CLIENT, "mitra1", MITRA_PASSWORD)
    actor = api_tokens.resolve_access_token(one.access_token)
    auth.change_password(actor, MITRA_PASSWORD, "GantiBaru2024", "GantiBaru2024")
    for pair in (one, two):
        assert api_tokens.resolve_access_token(pair.access_token) is None
        with pytest.raises(AuthenticationRequired):
            api_tokens.refresh(CLIENT, pair.refresh_token)

    three = api_tokens.login(CLIENT, "mitra2", MITRA_PASSWORD)
    users.reset_mitra_password(world.admin, world.mitra_b.user_id, "ResetBaru2024")
    assert api_tokens.resolve_access_token(three.access_token) is None


def test_api_login_shares_the_lockout_with_the_web_login(world):
    for _ in range(3):
        with pytest.raises(LoginFailed):
            api_tokens.login(CLIENT, "mitra1", "salah-total-1")
    for _ in range(2):
        with pytest.raises(LoginFailed):
            auth.login(CLIENT, "mitra1", "salah-total-1")
    with pytest.raises(LockedOut):
        api_tokens.login(CLIENT, "mitra1", MITRA_PASSWORD)


def test_concurrent_refreshes_of_one_token_never_both_rotate(pg):
    from tests.factories import World

    World.seeded()
    pair = api_tokens.login(CLIENT, "mitra1", MITRA_PASSWORD)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []
    lock = threading.Lock()

    def go():
        barrier.wait()
        try:
            api_tokens.refresh(CLIENT, pair.refresh_token)
            result = "ok"
        except AuthenticationRequired:
            result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["ok", "refused", "refused", "refused"]
    # The replays revoked the family: no live token is left for this login.
    live = [r for r in tokens_of(pair.user_id) if r.revoked_at is None]
    assert live == []
