"""Login with lockout, server-side web sessions, logout and password changes.

Lockout (the spec: LOGIN_MAX_ATTEMPTS failures lock for LOGIN_LOCKOUT_MINUTES) applies
by username and by address to unknown devices; a device that logged in before and
presents its device token has its own limit instead (:mod:`fibernode.services.devices`).
"""

from __future__ import annotations

import hashlib
import math
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.config import get_settings
from fibernode.db import new_session
from fibernode.models import AwareDateTime, LoginAttempt, RefreshToken, User, UserSession
from fibernode.services import devices
from fibernode.services.context import Actor, require_user
from fibernode.services.errors import (
    LockedOut,
    LoginFailed,
    NotFound,
    TwoFactorRequired,
    ValidationFailed,
)
from fibernode.services.passwords import (
    hash_password,
    needs_rehash,
    password_problem,
    verify_password,
)
from fibernode.services.uow import unit_of_work

WRONG_CREDENTIALS = "Username atau password salah."
INACTIVE_ACCOUNT = "Akun Anda dinonaktifkan. Hubungi superadmin."
# last_seen_at is refreshed at most this often, so page loads do not all write.
LAST_SEEN_RESOLUTION = timedelta(minutes=5)
# Cookies that carry the raw web-session token (the UI sets them; the API's
# cookie-authenticated downloads read them).
SESSION_COOKIE = "fn_session"
REMEMBER_COOKIE = "fn_remember"
_AWARE = AwareDateTime()
T = TypeVar("T")


def hash_token(raw: str) -> str:
    """SHA-256 of a session token; only the hash is stored."""
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class LoginResult:
    """A successful login: the raw token goes to the client cookie, once.

    ``device_token`` is the trusted-device token to store in the
    :data:`devices.DEVICE_COOKIE` cookie (HttpOnly, Secure over HTTPS, SameSite=Lax,
    max age :func:`devices.device_lifetime`), replacing the one sent, on every login.
    """

    token: str
    actor: Actor
    expires_at: datetime
    remember: bool
    device_token: str = ""


def _locked_until(session, column, value: Any, now: datetime) -> datetime | None:
    """When the lock on ``value`` ends, or ``None`` if not locked.

    ``column`` is the username or the IP (counting unknown devices' attempts only)
    or a trusted device's id (counting that device's attempts).
    Locked means: at least LOGIN_MAX_ATTEMPTS failures since the last success,
    all within one lockout window, the latest less than a window ago.
    Attempts refused during a lock are not recorded, so a lock always ends.
    """
    settings = get_settings()
    window = timedelta(minutes=settings.login_lockout_minutes)
    # A trusted device's tries neither count toward nor reset the username and
    # address locks: the owner logging in must not give an attacker fresh tries.
    mine = [column == value]
    if column is not LoginAttempt.device_id:
        mine.append(LoginAttempt.device_id.is_(None))
    last_success = session.exec(
        select(sa.func.max(LoginAttempt.created_at)).where(
            *mine, LoginAttempt.success.is_(True)
        )
    ).one()
    since = now - window * 2
    if last_success is not None:
        since = max(since, clock_aware(last_success))
    failures = session.exec(
        select(LoginAttempt.created_at)
        .where(
            *mine,
            LoginAttempt.success.is_(False),
            LoginAttempt.created_at > since,
        )
        .order_by(LoginAttempt.created_at.desc())
        .limit(settings.login_max_attempts)
    ).all()
    if len(failures) < settings.login_max_attempts:
        return None
    latest, oldest = clock_aware(failures[0]), clock_aware(failures[-1])
    if latest - oldest > window:
        return None
    until = latest + window
    return until if until > now else None


def clock_aware(value: datetime) -> datetime:
    """Aggregates bypass the column type on SQLite; make them aware UTC."""
    return _AWARE.process_result_value(value, None)


def _minutes_left(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds() / 60))


def login(actor: Actor, username: str, password: str, remember: bool = False,
          otp: str | None = None, device_token: str | None = None) -> LoginResult:
    """Check credentials and open a server-side web session.

    Args:
        actor: The anonymous caller (its IP and user agent are recorded).
        username: As typed; compared case-insensitively after trimming.
        password: As typed.
        remember: Keep the session for REMEMBER_ME_DAYS instead of SESSION_HOURS.
        otp: The authenticator or recovery code, for accounts with two-step login.
        device_token: The :data:`devices.DEVICE_COOKIE` cookie, if the browser has one.

    Returns:
        The new session's raw token, the logged-in actor and the device token to set.

    Raises:
        ValidationFailed: when a field is empty.
        LockedOut: after too many failures for this username or this IP (unknown
            devices), or from this trusted device.
        LoginFailed: wrong credentials, a wrong second-step code or an inactive account.
        TwoFactorRequired: the password was right and the account needs its code.
    """
    def open_session(uow, user: User, logged_in: Actor, now: datetime,
                     new_device_token: str) -> LoginResult:
        token = secrets.token_urlsafe(32)
        sess = open_web_session(uow, user, actor, now, remember, hash_token(token))
        return LoginResult(token, logged_in, sess.expires_at, remember, new_device_token)

    return authenticate(actor, username, password, open_session, otp=otp,
                        device_token=device_token)


def open_web_session(uow, user: User, actor: Actor, now: datetime, remember: bool,
                     token_hash: str, **extra: Any) -> UserSession:
    """Add a web session row for a checked login and write its ``auth.login`` audit row.

    Args:
        uow: The login's unit of work.
        user: Who logged in.
        actor: The caller (its IP and user agent are recorded).
        now: The login's time.
        remember: "Ingat saya": REMEMBER_ME_DAYS instead of SESSION_HOURS.
        token_hash: The stored hash of the session's token.
        **extra: Further columns (the web login's one-time claim).
    """
    settings = get_settings()
    lifetime = (timedelta(days=settings.remember_days) if remember
                else timedelta(hours=settings.session_hours))
    sess = UserSession(
        user_id=user.id,
        token_hash=token_hash,
        user_agent=(actor.user_agent or "")[:500],
        ip_address=(actor.ip or "")[:45],
        remember=remember,
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        **extra,
    )
    uow.session.add(sess)
    uow.session.flush()
    uow.audit("auth.login", "user_sessions", sess.id, remember=remember)
    return sess


def authenticate(actor: Actor, username: str, password: str,
                 issue: Callable[[Any, User, Actor, datetime, str], T],
                 otp: str | None = None, device_token: str | None = None) -> T:
    """The one credential check behind web and API logins (lockout, 2FA, audit).

    Args:
        actor: The anonymous caller (its IP and user agent are recorded).
        username: As typed; compared case-insensitively after trimming.
        password: As typed.
        issue: Opens the login's session or tokens inside the same transaction,
            given the unit of work, the user, the logged-in actor, the time and the
            new device token for the client.
        otp: The second-step code, for accounts that have one.
        device_token: The client's trusted-device token, if it has one. Valid for
            this account, the username and address locks do not apply, only the
            device's own; otherwise the device is unknown (the spec's lockout).

    Returns:
        Whatever ``issue`` returned.

    Raises:
        ValidationFailed: when a field is empty.
        LockedOut: after too many failures for this username or this IP (unknown
            devices), or from this trusted device.
        LoginFailed: wrong credentials, a wrong second-step code or an inactive account.
        TwoFactorRequired: the password was right and the account needs its code.
    """
    from fibernode.services import two_factor

    username = (username or "").strip().lower()
    problems = {}
    if not username:
        problems["username"] = "Username wajib diisi."
    elif len(username) > 100:  # login_attempts.username is VARCHAR(100)
        problems["username"] = "Username maksimal 100 karakter."
    if not password:
        problems["password"] = "Password wajib diisi."  # noqa: S105
    if problems:
        raise ValidationFailed(problems)

    now = clock.now()
    ip = (actor.ip or "-")[:45]  # login_attempts.ip_address is VARCHAR(45)
    failure: Exception | None = None
    result: T | None = None
    with unit_of_work(actor) as uow:
        s = uow.session
        if s.get_bind().dialect.name == "postgresql":
            # Serialise check, verify and record per username and per address until
            # commit; otherwise parallel requests all pass the lockout check before
            # any of their failures is recorded. Always username first: no deadlock.
            s.exec(sa.select(sa.func.pg_advisory_xact_lock(1, sa.func.hashtext(username))))
            s.exec(sa.select(sa.func.pg_advisory_xact_lock(2, sa.func.hashtext(ip))))
        user = s.exec(select(User).where(sa.func.lower(User.username) == username)).first()
        device = (devices.trusted_device(s, user, device_token, now)
                  if user is not None and device_token else None)
        if device is not None:
            until = _locked_until(s, LoginAttempt.device_id, device.id, now)
        else:
            until = max(
                filter(None, [
                    _locked_until(s, LoginAttempt.username, username, now),
                    _locked_until(s, LoginAttempt.ip_address, ip, now),
                ]),
                default=None,
            )
        if until is not None:
            uow.audit("auth.login_blocked", "users", None, username=username,
                      **({"device": str(device.id)} if device else {}))
            failure = LockedOut(_minutes_left(until, now))
        else:
            ok = verify_password(user.password_hash if user else None, password)
            success = bool(user and ok and user.is_active)
            if success and two_factor.is_enabled(user) and not (otp or "").strip():
                # Right password, code still to come: nothing is recorded either way,
                # so the second request (with the code) is the one that counts.
                failure = TwoFactorRequired()
            else:
                second_ok = (not success or not two_factor.is_enabled(user)
                             or two_factor.check_login_code(uow, user, otp or "", now))
                s.add(LoginAttempt(
                    username=username,
                    ip_address=ip,
                    success=success and second_ok,
                    user_agent=(actor.user_agent or None) and actor.user_agent[:500],
                    device_id=device.id if device else None,
                ))
                if not (success and second_ok):
                    _record_new_locks(uow, username, ip, user, device, now)
                if user is not None and ok and not user.is_active:
                    failure = LoginFailed(INACTIVE_ACCOUNT)
                elif not success:
                    failure = LoginFailed(WRONG_CREDENTIALS)
                elif not second_ok:
                    uow.audit("auth.two_factor_failed", "users", user.id)
                    failure = LoginFailed(two_factor.WRONG_CODE)
                else:
                    if needs_rehash(user.password_hash):
                        user.password_hash = hash_password(password)
                    user.last_login_at = now
                    logged_in = Actor(user_id=user.id, role=user.role, name=user.name,
                                      ip=actor.ip, user_agent=actor.user_agent)
                    uow.actor = logged_in
                    new_device_token = devices.issue_device_token(uow, user, logged_in, now,
                                                                  device)
                    result = issue(uow, user, logged_in, now, new_device_token)
    # The attempt is committed before the failure is raised, so lockout counts it.
    if failure is not None:
        raise failure
    assert result is not None
    return result


def _record_new_locks(uow, username: str, ip: str, user: User | None,
                      device, now: datetime) -> None:
    """Audit (and tell the owner about) the locks the failure just recorded started.

    The locks were all open before it (a locked try is refused unrecorded), so any
    lock in force now began with this failure.
    """
    s = uow.session
    s.flush()
    if device is not None:
        checks = [("device", LoginAttempt.device_id, device.id)]
    else:
        checks = [("username", LoginAttempt.username, username),
                  ("ip", LoginAttempt.ip_address, ip)]
    for scope, column, value in checks:
        if (until := _locked_until(s, column, value, now)) is not None:
            devices.record_lockout(uow, scope=scope, username=username, user=user,
                                   until=until, now=now, device=device)


def resolve_session(token: str | None, ip: str = "", user_agent: str = "") -> Actor | None:
    """Turn a session cookie into an actor, checking the database every time.

    Returns ``None`` for unknown, expired or revoked sessions and for
    deactivated users, so logout and deactivation take effect on the next call.
    """
    return resolve_session_hash(hash_token(token) if token else None, ip, user_agent)


def resolve_session_hash(token_hash: str | None, ip: str = "",
                         user_agent: str = "") -> Actor | None:
    """:func:`resolve_session` given the token's hash (the websocket only ever sees that)."""
    if not token_hash:
        return None
    now = clock.now()
    with unit_of_work(Actor.system("auth.session")).bookkeeping(
            "session last-seen time; login and logout are audited") as uow:
        s = uow.session
        row = s.exec(
            select(UserSession, User)
            .join(User, User.id == UserSession.user_id)
            .where(
                UserSession.token_hash == token_hash,
                UserSession.revoked_at.is_(None),
                UserSession.expires_at > now,
                User.is_active.is_(True),
            )
        ).first()
        if row is None:
            return None
        sess, user = row
        if now - sess.last_seen_at > LAST_SEEN_RESOLUTION:
            s.exec(
                sa.update(UserSession).where(UserSession.id == sess.id).values(last_seen_at=now)
            )
        return Actor(user_id=user.id, role=user.role, name=user.name, ip=ip,
                     user_agent=user_agent)


def logout(actor: Actor, token: str) -> None:
    """Revoke the session behind ``token`` (no-op if it is already gone)."""
    logout_hash(actor, hash_token(token or ""))


def logout_hash(actor: Actor, token_hash: str) -> None:
    """:func:`logout` given the token's hash."""
    if not token_hash:
        return
    with unit_of_work(actor) as uow:
        sess = uow.session.exec(
            select(UserSession).where(UserSession.token_hash == token_hash)
        ).first()
        if sess is None or sess.revoked_at is not None:
            return
        sess.revoked_at = clock.now()
        sess.revoked_reason = "logout"
        if actor.user_id is None:
            uow.actor = Actor(user_id=sess.user_id, ip=actor.ip, user_agent=actor.user_agent)
        uow.audit("auth.logout", "user_sessions", sess.id)


def revoke_user_sessions(uow, user_id: uuid.UUID, reason: str,
                         keep_token: str | None = None, keep_hash: str | None = None) -> int:
    """Revoke every live web session, API token family and trusted device of a user.

    Runs inside ``uow``. Trusted devices go too, so a device token obtained before a
    password change or reset cannot skip the username lockout afterwards.

    Returns:
        How many web sessions were revoked.
    """
    now = clock.now()
    devices.revoke_devices(uow, user_id, reason)
    uow.session.exec(
        sa.update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    stmt = (
        sa.update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    keep_hash = hash_token(keep_token) if keep_token else keep_hash
    if keep_hash:
        stmt = stmt.where(UserSession.token_hash != keep_hash)
    return uow.session.exec(stmt).rowcount or 0


@dataclass(frozen=True)
class SessionInfo:
    """One of the user's own live sessions, for the profile page."""

    id: uuid.UUID
    user_agent: str
    ip_address: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    remember: bool
    current: bool


def list_my_sessions(actor: Actor, current_token: str | None = None,
                     current_hash: str | None = None) -> list[SessionInfo]:
    """The actor's own live sessions, newest first (``current`` marks the caller's)."""
    require_user(actor)
    current_hash = hash_token(current_token) if current_token else current_hash
    with new_session() as s:
        rows = s.exec(
            select(UserSession)
            .where(
                UserSession.user_id == actor.user_id,
                UserSession.revoked_at.is_(None),
                UserSession.expires_at > clock.now(),
            )
            .order_by(UserSession.last_seen_at.desc())
        ).all()
        return [
            SessionInfo(r.id, r.user_agent, r.ip_address, r.created_at, r.last_seen_at,
                        r.expires_at, r.remember, r.token_hash == current_hash)
            for r in rows
        ]


def revoke_my_session(actor: Actor, session_id: uuid.UUID) -> None:
    """Log one of the actor's own sessions out (e.g. a lost phone)."""
    require_user(actor)
    with unit_of_work(actor) as uow:
        sess = uow.session.get(UserSession, session_id)
        if sess is None or sess.user_id != actor.user_id or sess.revoked_at is not None:
            raise NotFound("Sesi tidak ditemukan.")
        sess.revoked_at = clock.now()
        sess.revoked_reason = "revoked_by_user"
        uow.audit("auth.session_revoke", "user_sessions", sess.id)


def change_password(actor: Actor, current_password: str, new_password: str,
                    confirm_password: str, keep_token: str | None = None,
                    keep_hash: str | None = None) -> int:
    """Change the actor's own password and log out every other session.

    Returns:
        How many other sessions were revoked.

    Raises:
        ValidationFailed: wrong current password, weak or mismatched new one.
    """
    require_user(actor)
    problems: dict[str, str] = {}
    if (p := password_problem(new_password or "")) is not None:
        problems["new_password"] = p
    if new_password != confirm_password:
        problems["confirm_password"] = "Konfirmasi password tidak sama."  # noqa: S105
    with unit_of_work(actor) as uow:
        user = uow.session.get(User, actor.user_id)
        if user is None:
            raise NotFound()
        if not verify_password(user.password_hash, current_password or ""):
            problems = {"current_password": "Password saat ini salah.", **problems}
        if problems:
            raise ValidationFailed(problems)
        if verify_password(user.password_hash, new_password):
            raise ValidationFailed({"new_password": "Password baru harus berbeda."})
        user.password_hash = hash_password(new_password)
        user.updated_at = clock.now()
        revoked = revoke_user_sessions(uow, user.id, "password_changed", keep_token, keep_hash)
        uow.audit("auth.password_change", "users", user.id, revoked_sessions=revoked)
        return revoked
