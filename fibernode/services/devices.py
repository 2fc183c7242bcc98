"""Trusted devices (OWASP "device cookie"): the owner keeps logging in during a lockout.

The spec locks a username for LOGIN_LOCKOUT_MINUTES after LOGIN_MAX_ATTEMPTS wrong
passwords, so anyone who knows a username can keep its owner out, 15 minutes at a
time, from any address. Following OWASP's "Slow Down Online Guessing Attacks with
Device Cookies", :func:`fibernode.services.auth.authenticate` applies these rules:

* A complete login (password, and the code when two-step login is on) gets a device
  token (:func:`issue_device_token`): ``v1.<user>.<device>.<issued>.<signature>``,
  HMAC-SHA256 with a key derived from ``JWT_SECRET`` (changing that secret forgets
  every device), valid DEVICE_COOKIE_DAYS (180) days and backed by a
  ``trusted_devices`` row so it can be revoked. The web login sets it as the
  :data:`DEVICE_COOKIE` cookie (HttpOnly, Secure over HTTPS, SameSite=Lax); API
  clients get it in the login response and send it back.
* With a valid token for the account being logged in to (:func:`trusted_device`),
  the username and address locks do not apply. The device has its own limit
  instead: LOGIN_MAX_ATTEMPTS failures from it lock that device alone. Its failures
  do not count toward the username or address locks, and its successes do not reset
  them (the owner logging in must not hand an attacker fresh tries).
* Without one (no token, or a forged, expired, revoked or another user's token) the
  device is unknown and the spec's lockout applies exactly as before.
* A trusted device skips the address lock too: subscribers of an RT/RW-Net share
  addresses (CGNAT), so a neighbour spraying usernames would otherwise lock the owner
  out; a token works for one account only and has its own limit, so it cannot be
  used to spray.
* At most :data:`MAX_DEVICES` live devices per account (the least recently used go),
  so someone who once knew the password cannot stockpile tokens for more guesses; a
  password change or reset and a deactivation revoke them all.
* Every lockout is audited (``auth.lockout`` with the attacker's address and user
  agent); the account's owner sees it in the header bell for
  :data:`LOCKOUT_NOTICE_DAYS` days and, when the account has a phone number and the
  superadmin's WhatsApp is connected, gets at most one WhatsApp message a day.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from fibernode import clock
from fibernode.config import get_settings
from fibernode.db import new_session
from fibernode.formatting import date_time
from fibernode.models import (
    ActivityLog,
    TrustedDevice,
    User,
    UserRole,
    WaSession,
    WaSessionStatus,
)
from fibernode.services.context import Actor, require_user
from fibernode.services.uow import UnitOfWork

# The cookie the web login sets with the token (the HTTP layer sets and reads it).
DEVICE_COOKIE = "fn_device"
# The header API clients may send the token in (or ``device_token`` in the body).
DEVICE_HEADER = "X-Device-Token"
MAX_DEVICES = 10
LOCKOUT_NOTICE_DAYS = 7
LOCKOUT_ACTION = "auth.lockout"
# Clock skew tolerated on a token's issue time.
_FUTURE_SKEW = timedelta(minutes=5)
_VERSION = "v1"
_MAX_TOKEN_LENGTH = 200


def device_lifetime() -> timedelta:
    """How long a device token (and its cookie) stays valid."""
    return timedelta(days=get_settings().device_cookie_days)


def _key() -> bytes:
    # A key of its own (derived), so a device signature can never pass for a JWT's.
    return hmac.new(get_settings().jwt_secret.encode(), b"fibernode device token v1",
                    hashlib.sha256).digest()


def _signature(user_id: uuid.UUID, device_id: uuid.UUID, issued: int) -> str:
    message = f"{_VERSION}.{user_id.hex}.{device_id.hex}.{issued}".encode()
    digest = hmac.new(_key(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _token(user_id: uuid.UUID, device_id: uuid.UUID, now: datetime) -> str:
    issued = int(now.timestamp())
    return (f"{_VERSION}.{user_id.hex}.{device_id.hex}.{issued}."
            f"{_signature(user_id, device_id, issued)}")


@dataclass(frozen=True)
class _Parsed:
    user_id: uuid.UUID
    device_id: uuid.UUID
    issued: int
    signature: str


def _parse(token: str) -> _Parsed | None:
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    parts = token.strip().split(".")
    if len(parts) != 5 or parts[0] != _VERSION:
        return None
    try:
        return _Parsed(uuid.UUID(hex=parts[1]), uuid.UUID(hex=parts[2]), int(parts[3]),
                       parts[4])
    except ValueError:
        return None


def trusted_device(session: Session, user: User, token: str | None,
                   now: datetime) -> TrustedDevice | None:
    """The live trusted device behind ``token``, if it belongs to ``user``.

    Returns:
        The device row, or ``None`` for a missing, malformed, forged, expired or
        revoked token and for another account's token (an unknown device).
    """
    parsed = _parse(token or "")
    if parsed is None or parsed.user_id != user.id:
        return None
    expected = _signature(parsed.user_id, parsed.device_id, parsed.issued)
    if not hmac.compare_digest(parsed.signature, expected):
        return None
    issued = datetime.fromtimestamp(parsed.issued, now.tzinfo)
    if issued > now + _FUTURE_SKEW or issued + device_lifetime() <= now:
        return None
    device = session.get(TrustedDevice, parsed.device_id)
    if (device is None or device.user_id != user.id or device.revoked_at is not None
            or device.expires_at <= now):
        return None
    return device


def issue_device_token(uow: UnitOfWork, user: User, actor: Actor, now: datetime,
                       device: TrustedDevice | None = None) -> str:
    """A new device token for ``user`` after a complete login, inside its transaction.

    Args:
        uow: The login's unit of work (audited by the login itself).
        user: Who logged in.
        actor: The logged-in actor (its address and user agent are kept).
        now: The login time.
        device: The trusted device the login came from, to renew; ``None`` for an
            unknown device, which becomes trusted.

    Returns:
        The token for the client (cookie or API response).
    """
    expires = now + device_lifetime()
    if device is None:
        _revoke_beyond_limit(uow.session, user.id, now)
        device = TrustedDevice(user_id=user.id, created_at=now, expires_at=expires)
        uow.session.add(device)
    device.user_agent = (actor.user_agent or "")[:500]
    device.ip_address = (actor.ip or "")[:45]
    device.last_used_at = now
    device.expires_at = expires
    uow.session.flush()
    return _token(user.id, device.id, now)


def _revoke_beyond_limit(session: Session, user_id: uuid.UUID, now: datetime) -> None:
    """Keep room for one new device: revoke the least recently used beyond the limit."""
    live = session.exec(
        select(TrustedDevice.id)
        .where(TrustedDevice.user_id == user_id, TrustedDevice.revoked_at.is_(None),
               TrustedDevice.expires_at > now)
        .order_by(TrustedDevice.last_used_at.desc())
        .offset(MAX_DEVICES - 1)
    ).all()
    if live:
        session.exec(sa.update(TrustedDevice).where(TrustedDevice.id.in_(live))
                     .values(revoked_at=now, revoked_reason="limit"))


def revoke_devices(uow: UnitOfWork, user_id: uuid.UUID, reason: str) -> int:
    """Revoke every live trusted device of a user inside ``uow`` (the caller audits).

    Returns:
        How many were revoked.
    """
    return uow.session.exec(
        sa.update(TrustedDevice)
        .where(TrustedDevice.user_id == user_id, TrustedDevice.revoked_at.is_(None))
        .values(revoked_at=clock.now(), revoked_reason=reason)
    ).rowcount or 0


def delete_dead(session: Session, cutoff: datetime) -> int:
    """Delete devices expired or revoked before ``cutoff`` (maintenance).

    Returns:
        How many rows were deleted.
    """
    return session.exec(
        sa.delete(TrustedDevice).where(
            sa.or_(TrustedDevice.expires_at < cutoff, TrustedDevice.revoked_at < cutoff))
    ).rowcount or 0


# --- lockouts: audit and the owner's notices ----------------------------------------------


WA_LOCKOUT_TEXT = (
    "Peringatan keamanan FiberNode: login ke akun \"{username}\" dikunci sementara "
    "{minutes} menit karena password salah berulang kali dari alamat {ip} ({time} WIB). "
    "Perangkat yang biasa Anda pakai tetap bisa login. Jika itu bukan Anda, segera "
    "ganti password di menu Profil."
)


def record_lockout(uow: UnitOfWork, *, scope: str, username: str, user: User | None,
                   until: datetime, now: datetime, device: TrustedDevice | None = None,
                   ) -> None:
    """Audit a lockout that has just started and tell the account's owner.

    Args:
        uow: The failed login's unit of work (the anonymous caller, with its address).
        scope: ``username`` (unknown devices), ``ip`` (that address) or ``device``.
        username: The username that was tried.
        user: Its account, if it exists.
        until: When the lock ends.
        now: The time of the failure that started it.
        device: The locked trusted device (``device`` scope).
    """
    minutes = max(1, round((until - now).total_seconds() / 60))
    owner = user if scope != "ip" else None
    uow.audit(LOCKOUT_ACTION, "users", owner.id if owner else None, scope=scope,
              username=username, user_agent=(uow.actor.user_agent or "")[:500],
              locked_until=until.isoformat(), minutes=minutes,
              device=str(device.id) if device else None)
    if owner is not None and owner.is_active and owner.phone:
        _whatsapp_owner(uow, owner, username, minutes, now)


def _whatsapp_owner(uow: UnitOfWork, owner: User, username: str, minutes: int,
                    now: datetime) -> None:
    """One WhatsApp a day per account, from the superadmin's number when it is connected.

    The day's idempotency key bounds what an attacker can make the number send (the
    spec's anti-ban rules); nothing is recorded while the number is not connected, so
    a lockout never shows up as a failed message.
    """
    from fibernode.services import wa_direct  # the WhatsApp stack, only when needed

    s = uow.session
    sender = s.exec(
        select(User.id).join(WaSession, WaSession.user_id == User.id)
        .where(User.role == UserRole.SUPERADMIN, User.is_active.is_(True),
               WaSession.status == WaSessionStatus.CONNECTED)
        .order_by(User.created_at)
    ).first()
    if sender is None:
        return
    day = now.astimezone(clock.JAKARTA).date().isoformat()
    text = WA_LOCKOUT_TEXT.format(username=username, minutes=minutes,
                                  ip=uow.actor.ip or "-", time=date_time(now))
    wa_direct.record_direct(uow, owner_id=sender, customer_id=None, invoice_id=None,
                            message_type="security", phone=owner.phone, content=text,
                            idempotency_key=f"security:lockout:{owner.id}:{day}",
                            sent_by=None)


@dataclass(frozen=True)
class LockoutSummary:
    """The recent lockouts of the actor's own account, for the header bell."""

    count: int
    last_at: datetime
    last_ip: str
    title: str
    message: str


def recent_lockouts(actor: Actor) -> LockoutSummary | None:
    """Lockouts of the actor's account in the last LOCKOUT_NOTICE_DAYS days, if any."""
    require_user(actor)
    since = clock.now() - timedelta(days=LOCKOUT_NOTICE_DAYS)
    where = (ActivityLog.action == LOCKOUT_ACTION, ActivityLog.resource == "users",
             ActivityLog.resource_id == actor.user_id, ActivityLog.created_at >= since)
    with new_session() as s:
        count = s.exec(select(sa.func.count()).select_from(ActivityLog).where(*where)).one()
        if not count:
            return None
        last = s.exec(select(ActivityLog).where(*where)
                      .order_by(ActivityLog.created_at.desc())).first()
    ip = last.ip_address or "-"
    message = (f"Login ke akun Anda dikunci sementara {count} kali dalam "
               f"{LOCKOUT_NOTICE_DAYS} hari terakhir karena password salah berulang kali; "
               f"terakhir {date_time(last.created_at)} dari alamat {ip}. Perangkat yang "
               "biasa Anda pakai tetap bisa login. Jika itu bukan Anda, ganti password.")
    return LockoutSummary(int(count), last.created_at, ip, "Akun Anda sempat dikunci",
                          message)
