"""Web logins whose token only ever travels in an HttpOnly cookie.

The login form runs over Reflex's websocket, which cannot set an HttpOnly
cookie, and anything a websocket handler holds ends up in the page state
(pickled to disk or Redis). So a web login happens in two steps:

1. :func:`begin` checks the credentials (the one check behind every login,
   :func:`fibernode.services.auth.authenticate`) and opens the session
   *unclaimed*: its token is never revealed; the page gets a one-time claim
   code that lives for :data:`CLAIM_SECONDS`.
2. :func:`claim` is called by ``POST /api/session/claim`` (plain HTTP): it
   swaps the code for a fresh token, once, which the response sets as the
   ``HttpOnly`` session cookie.

From then on the websocket never sees the token either: the HTTP layer replaces
the cookie by its SHA-256 (the *session reference*, :func:`reference`), which is
what the server stores and what :func:`resolve` looks up. A stolen state file
or Redis key therefore holds nothing that works as a cookie.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import select

from fibernode import clock
from fibernode.models import UserSession
from fibernode.services import auth
from fibernode.services.context import Actor
from fibernode.services.uow import unit_of_work

# Long enough for a slow phone to follow the redirect, short enough to be useless later.
CLAIM_SECONDS = 60
# Cookie the HTTP layer hands to the websocket instead of the session cookie.
REFERENCE_COOKIE = "fn_sref"


@dataclass(frozen=True)
class PendingLogin:
    """A checked login waiting for its cookie: the one-time code for the page.

    ``device_token`` is the browser's next trusted-device token (the lockout's
    device cookie, :mod:`fibernode.services.devices`); the claim sets it HttpOnly.
    """

    code: str
    actor: Actor
    device_token: str = ""


@dataclass(frozen=True)
class ClaimedSession:
    """What the claim response needs to set the session cookie."""

    token: str
    remember: bool
    expires_at: datetime


def reference(token: str) -> str:
    """The server-side reference of a raw session token (what is stored)."""
    return auth.hash_token(token)


def begin(actor: Actor, username: str, password: str, remember: bool = False,
          otp: str | None = None, device_token: str | None = None) -> PendingLogin:
    """Check the credentials and open an unclaimed session.

    ``device_token`` is the browser's trusted-device cookie, if any: a known
    device keeps logging in while its username is locked for everyone else.

    Raises:
        ValidationFailed, LockedOut, LoginFailed, TwoFactorRequired: as
            :func:`fibernode.services.auth.authenticate`.
    """
    code = secrets.token_urlsafe(32)

    def open_unclaimed(uow, user, logged_in: Actor, now: datetime,
                       new_device_token: str) -> PendingLogin:
        # A token nobody knows: the real one is minted by the claim.
        auth.open_web_session(uow, user, actor, now, remember,
                              auth.hash_token(secrets.token_urlsafe(32)),
                              claim_hash=auth.hash_token(code),
                              claim_expires_at=now + timedelta(seconds=CLAIM_SECONDS))
        return PendingLogin(code, logged_in, new_device_token)

    return auth.authenticate(actor, username, password, open_unclaimed, otp=otp,
                             device_token=device_token)


def claim(actor: Actor, code: str) -> ClaimedSession | None:
    """Swap a one-time claim code for the session's token; ``None`` if not valid.

    A code works once, within :data:`CLAIM_SECONDS`, for a session that is still
    live. The row is locked while it is claimed, so two claims of one code never
    both get a token.
    """
    if not code or len(code) > 200:
        return None
    now = clock.now()
    with unit_of_work(actor) as uow:
        sess = uow.session.exec(
            select(UserSession)
            .where(UserSession.claim_hash == auth.hash_token(code))
            .with_for_update()
        ).first()
        if sess is None:
            return None
        live = (sess.revoked_at is None and sess.claim_expires_at is not None
                and auth.clock_aware(sess.claim_expires_at) > now
                and auth.clock_aware(sess.expires_at) > now)
        token = secrets.token_urlsafe(32)
        sess.claim_hash, sess.claim_expires_at = None, None
        if live:
            sess.token_hash = auth.hash_token(token)
        # Handing out (or burning) the cookie of a login that was already audited.
        uow.bookkeeping("session claim: the login itself is audited as auth.login")
        if not live:
            return None
        return ClaimedSession(token, sess.remember, auth.clock_aware(sess.expires_at))


def resolve(ref: str | None, ip: str = "", user_agent: str = "") -> Actor | None:
    """The live user behind a session reference (see :func:`reference`)."""
    return auth.resolve_session_hash(ref, ip, user_agent)


def logout(actor: Actor, ref: str | None) -> None:
    """Revoke the session behind a reference (no-op if it is already gone)."""
    auth.logout_hash(actor, ref or "")
