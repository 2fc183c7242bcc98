"""User accounts: own profile for everyone, mitra accounts for the superadmin."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import Customer, User, UserRole
from fibernode.services.auth import revoke_user_sessions
from fibernode.services.context import Actor, require_superadmin, require_user
from fibernode.services.errors import Conflict, NotFound, ValidationFailed
from fibernode.services.passwords import hash_password, password_problem
from fibernode.services.uow import UnitOfWork, apply_changes, unit_of_work
from fibernode.services.validation import (
    clean,
    normalize_phone,
    optional,
    phone_problem,
    required,
    too_long,
    username_problem,
)


@dataclass(frozen=True)
class Profile:
    """What the profile page shows and edits."""

    id: uuid.UUID
    username: str
    name: str
    role: UserRole
    phone: str
    business_name: str
    bank_name: str
    bank_account: str
    bank_holder: str


def _profile(user: User) -> Profile:
    return Profile(user.id, user.username, user.name, user.role, user.phone or "",
                   user.business_name, user.bank_name or "", user.bank_account or "",
                   user.bank_holder or "")


def get_profile(actor: Actor) -> Profile:
    """The actor's own profile."""
    require_user(actor)
    with new_session() as s:
        user = s.get(User, actor.user_id)
        if user is None:
            raise NotFound()
        return _profile(user)


def _bank_problems(bank_name: str | None, bank_account: str | None,
                   bank_holder: str | None) -> dict[str, str]:
    problems: dict[str, str] = {}
    if bank_account and not bank_account.replace(" ", "").replace("-", "").isdigit():
        problems["bank_account"] = "Nomor rekening hanya boleh berisi angka."
    for field, value, label, n in (("bank_name", bank_name, "Nama bank", 100),
                                   ("bank_account", bank_account, "Nomor rekening", 50),
                                   ("bank_holder", bank_holder, "Nama pemilik rekening", 255)):
        if (p := too_long(value, label, n)) and field not in problems:
            problems[field] = p
    return problems


def update_profile(actor: Actor, *, name: str, phone: str | None = None,
                   bank_name: str | None = None, bank_account: str | None = None,
                   bank_holder: str | None = None) -> Profile:
    """Update the actor's own name, phone and bank details (for transfer payments).

    Raises:
        ValidationFailed: with per-field messages.
    """
    require_user(actor)
    name = clean(name)
    phone_norm = normalize_phone(phone) if clean(phone) else None
    bank_name, bank_account, bank_holder = (optional(bank_name), optional(bank_account),
                                            optional(bank_holder))
    problems = _bank_problems(bank_name, bank_account, bank_holder)
    if (p := required(name, "Nama", 255)):
        problems["name"] = p
    if phone_norm is not None and (p := phone_problem(phone_norm)):
        problems["phone"] = p
    if problems:
        raise ValidationFailed(problems)
    with unit_of_work(actor) as uow:
        user = uow.session.get(User, actor.user_id)
        if user is None:
            raise NotFound()
        changes = apply_changes(user, name=name, phone=phone_norm, bank_name=bank_name,
                         bank_account=bank_account, bank_holder=bank_holder)
        if changes:
            user.updated_at = clock.now()
            uow.audit("user.profile_update", "users", user.id, changes=changes)
        return _profile(user)



def create_mitra(actor: Actor, *, username: str, password: str, name: str,
                 business_name: str, phone: str | None = None,
                 bank_name: str | None = None, bank_account: str | None = None,
                 bank_holder: str | None = None) -> uuid.UUID:
    """Create a mitra account (superadmin only).

    Raises:
        PermissionDenied: for a mitra.
        ValidationFailed: with per-field messages, including a taken username or
            business name.
    """
    require_superadmin(actor)
    username = clean(username).lower()
    name, business_name = clean(name), clean(business_name)
    phone_norm = normalize_phone(phone) if clean(phone) else None
    bank_name, bank_account, bank_holder = (optional(bank_name), optional(bank_account),
                                            optional(bank_holder))
    problems = _bank_problems(bank_name, bank_account, bank_holder)
    for field, problem in (("username", username_problem(username)),
                           ("password", password_problem(password or "")),
                           ("name", required(name, "Nama", 255)),
                           ("business_name", required(business_name, "Nama usaha", 255)),
                           ("phone", phone_problem(phone_norm) if phone_norm else None)):
        if problem:
            problems[field] = problem
    if problems:
        raise ValidationFailed(problems)
    with unit_of_work(actor) as uow:
        _check_unique(uow, username, business_name)
        user = User(username=username, password_hash=hash_password(password), name=name,
                    role=UserRole.MITRA, phone=phone_norm, business_name=business_name,
                    bank_name=bank_name, bank_account=bank_account, bank_holder=bank_holder)
        uow.session.add(user)
        try:
            uow.session.flush()
        except sa.exc.IntegrityError as exc:
            # A concurrent create won the race for the same name.
            raise Conflict("Username atau nama usaha sudah dipakai.") from exc
        uow.audit("user.create", "users", user.id, username=username,
                  business_name=business_name, role=UserRole.MITRA)
        return user.id


def _check_unique(uow: UnitOfWork, username: str, business_name: str,
                  exclude: uuid.UUID | None = None) -> None:
    problems = {}
    q = select(User.id).where(sa.func.lower(User.username) == username.lower())
    if exclude:
        q = q.where(User.id != exclude)
    if uow.session.exec(q).first():
        problems["username"] = "Username sudah dipakai."
    q = select(User.id).where(sa.func.lower(User.business_name) == business_name.lower())
    if exclude:
        q = q.where(User.id != exclude)
    if uow.session.exec(q).first():
        problems["business_name"] = "Nama usaha sudah dipakai."
    if problems:
        raise ValidationFailed(problems)


def set_user_active(actor: Actor, user_id: uuid.UUID, active: bool) -> None:
    """Activate or deactivate a mitra (superadmin only).

    Deactivation logs the mitra out everywhere at once. It is refused while the
    mitra still owns subscribers, because nobody could then collect from them.

    Raises:
        NotFound: no such mitra.
        Conflict: the mitra still owns subscribers.
    """
    require_superadmin(actor)
    with unit_of_work(actor) as uow:
        user = uow.session.get(User, user_id)
        if user is None or user.role != UserRole.MITRA:
            raise NotFound("Mitra tidak ditemukan.")
        if user.is_active == active:
            return
        if not active:
            owned = uow.session.exec(
                select(sa.func.count()).select_from(Customer).where(Customer.owner_id == user.id)
            ).one()
            if owned:
                raise Conflict(
                    f"Mitra {user.business_name} masih memiliki {owned} pelanggan. "
                    "Pindahkan atau hapus pelanggan tersebut terlebih dahulu."
                )
            revoke_user_sessions(uow, user.id, "deactivated")
        user.is_active = active
        user.updated_at = clock.now()
        uow.audit("user.activate" if active else "user.deactivate", "users", user.id)


@dataclass(frozen=True)
class OwnerOption:
    """An owner (superadmin or mitra) for pick lists and filters."""

    id: uuid.UUID
    business_name: str
    name: str
    role: UserRole


def list_owners(actor: Actor) -> list[OwnerOption]:
    """Owners the actor may filter by: everyone for superadmin, oneself for a mitra."""
    require_user(actor)
    with new_session() as s:
        q = select(User).where(User.is_active.is_(True)).order_by(User.business_name)
        if not (actor.is_superadmin or actor.is_system):
            q = q.where(User.id == actor.user_id)
        return [OwnerOption(u.id, u.business_name, u.name, u.role) for u in s.exec(q).all()]
