"""REST API tokens: a short-lived access JWT and a rotating refresh token.

* Login (same lockout and two-step rules as the web login) returns an access
  JWT (``JWT_EXPIRES_IN``, 15 minutes) and an opaque refresh token
  (``REFRESH_TOKEN_EXPIRES_IN``, 7 days). Refresh tokens are stored as keyed
  hashes with the client's user agent and IP.
* Every refresh **rotates**: the presented token is retired and a new one of
  the same *family* is issued. Presenting a retired token again means it was
  copied — the whole family is revoked (theft detection) and both holders must
  log in again.
* Logout revokes the family; a password change, a reset or a deactivation
  revokes every family of the user (through ``auth.revoke_user_sessions``).
* An access token names its family, and each request checks that the family
  is still alive and the user active, so revocation takes effect at once
  rather than when the 15 minutes are up.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

import jwt
import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.config import get_settings
from fibernode.db import new_session
from fibernode.models import RefreshToken, User
from fibernode.services import auth
from fibernode.services.context import Actor, require_user
from fibernode.services.errors import AuthenticationRequired
from fibernode.services.uow import unit_of_work

ALGORITHM = "HS256"
INVALID_REFRESH = "Sesi tidak valid. Silakan login kembali."
REUSE_MESSAGE = "Token sudah pernah dipakai. Demi keamanan semua sesi perangkat ini diakhiri."


@dataclass(frozen=True)
class TokenPair:
    """What login and refresh return to an API client."""

    access_token: str
    refresh_token: str
    access_expires_at: datetime
    refresh_expires_at: datetime
    user_id: uuid.UUID
    role: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth scheme name, not a secret
    # Login only: the trusted-device token to send with the next login
    # (fibernode.services.devices); ``None`` on refresh.
    device_token: str | None = None


def _hash_refresh(raw: str) -> str:
    """Keyed hash of a refresh token: a leaked table alone cannot forge lookups."""
    key = get_settings().jwt_refresh_secret.encode()
    return hmac.new(key, raw.encode(), hashlib.sha256).hexdigest()


def _access_token(user: User, family_id: uuid.UUID, now: datetime) -> tuple[str, datetime]:
    settings = get_settings()
    expires = now + settings.access_token_ttl
    claims = {
        "sub": str(user.id),
        "role": str(user.role),
        "fam": str(family_id),
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=ALGORITHM), expires


def _issue(uow, user: User, family_id: uuid.UUID, actor: Actor, now: datetime) -> TokenPair:
    raw = secrets.token_urlsafe(48)
    expires = now + get_settings().refresh_token_ttl
    uow.session.add(RefreshToken(
        user_id=user.id,
        token=_hash_refresh(raw),
        family_id=family_id,
        user_agent=(actor.user_agent or "")[:500],
        ip_address=(actor.ip or "")[:45],
        expires_at=expires,
        created_at=now,
    ))
    access, access_expires = _access_token(user, family_id, now)
    return TokenPair(access, raw, access_expires, expires, user.id, str(user.role))


def login(actor: Actor, username: str, password: str, otp: str | None = None,
          device_token: str | None = None) -> TokenPair:
    """Log in through the API (same lockout, audit and two-step rules as the UI).

    ``device_token`` is the one a previous login returned: with it the client keeps
    logging in while the username is locked for unknown devices.

    Raises:
        ValidationFailed, LockedOut, LoginFailed, TwoFactorRequired: as ``auth.login``.
    """
    def issue(uow, user: User, logged_in: Actor, now: datetime,
              new_device_token: str) -> TokenPair:
        family = uuid.uuid4()
        pair = _issue(uow, user, family, logged_in, now)
        uow.audit("auth.api_login", "refresh_tokens", None, family=str(family))
        return replace(pair, device_token=new_device_token)

    return auth.authenticate(actor, username, password, issue, otp=otp,
                             device_token=device_token)


def refresh(actor: Actor, raw_token: str) -> TokenPair:
    """Exchange a refresh token for a new pair, retiring the presented one.

    Raises:
        AuthenticationRequired: unknown, expired or revoked token, inactive user,
            or a retired token presented again (its whole family is then revoked).
    """
    if not raw_token:
        raise AuthenticationRequired(INVALID_REFRESH)
    now = clock.now()
    failure: AuthenticationRequired | None = None
    pair: TokenPair | None = None
    with unit_of_work(actor) as uow:
        s = uow.session
        # Row lock: two concurrent refreshes of one token cannot both rotate it.
        row = s.exec(select(RefreshToken).where(RefreshToken.token == _hash_refresh(raw_token))
                     .with_for_update()).first()
        if row is None:
            raise AuthenticationRequired(INVALID_REFRESH)
        user = s.get(User, row.user_id)
        uow.actor = Actor(user_id=row.user_id, role=user.role if user else None,
                          name=user.name if user else "", ip=actor.ip,
                          user_agent=actor.user_agent)
        if row.revoked_at is not None:
            if row.revoked_reason == "rotated":
                revoked = _revoke_family(s, row.family_id, "reuse_detected", now)
                uow.audit("auth.refresh_reuse", "refresh_tokens", row.id,
                          family=str(row.family_id), revoked=revoked)
                failure = AuthenticationRequired(REUSE_MESSAGE)
            else:
                failure = AuthenticationRequired(INVALID_REFRESH)
        elif auth.clock_aware(row.expires_at) <= now or user is None or not user.is_active:
            failure = AuthenticationRequired(INVALID_REFRESH)
        else:
            row.revoked_at = now
            row.revoked_reason = "rotated"
            row.last_used_at = now
            pair = _issue(uow, user, row.family_id, uow.actor, now)
            uow.audit("auth.api_refresh", "refresh_tokens", row.id, family=str(row.family_id))
    # Committed first: a detected reuse stays revoked even though the call fails.
    if failure is not None:
        raise failure
    assert pair is not None
    return pair


def _revoke_family(session, family_id: uuid.UUID, reason: str, now: datetime) -> int:
    return session.exec(
        sa.update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    ).rowcount or 0


def logout(actor: Actor, raw_token: str | None = None) -> int:
    """End this API login: revoke the family of the access (or given refresh) token.

    Returns:
        How many tokens were revoked.
    """
    require_user(actor)
    family = actor.token_family
    with unit_of_work(actor) as uow:
        if raw_token:
            row = uow.session.exec(select(RefreshToken).where(
                RefreshToken.token == _hash_refresh(raw_token),
                RefreshToken.user_id == actor.user_id)).first()
            if row is not None:
                family = row.family_id
        if family is None:
            return 0
        revoked = _revoke_family(uow.session, family, "logout", clock.now())
        uow.audit("auth.api_logout", "refresh_tokens", None, family=str(family),
                  revoked=revoked)
        return revoked


def resolve_access_token(token: str, ip: str = "", user_agent: str = "") -> Actor | None:
    """The actor behind a bearer token, or ``None`` when it is not valid now.

    Checks the signature and expiry, then the database: the user is active and
    the token's family has not been revoked.
    """
    settings = get_settings()
    try:
        claims = jwt.decode(token, settings.jwt_secret, algorithms=[ALGORITHM],
                            options={"require": ["exp", "sub", "fam", "typ"]})
        if claims.get("typ") != "access":
            return None
        user_id = uuid.UUID(claims["sub"])
        family = uuid.UUID(claims["fam"])
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    now = clock.now()
    with new_session() as s:
        user = s.get(User, user_id)
        if user is None or not user.is_active:
            return None
        alive = s.exec(select(RefreshToken.id).where(
            RefreshToken.family_id == family, RefreshToken.user_id == user_id,
            RefreshToken.revoked_at.is_(None), RefreshToken.expires_at > now).limit(1)).first()
        if alive is None:
            return None
        return Actor(user_id=user.id, role=user.role, name=user.name, ip=ip,
                     user_agent=user_agent, token_family=family)
