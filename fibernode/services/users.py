"""User accounts: own profile for everyone, mitra accounts for the superadmin."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import (
    ActivityLog,
    Customer,
    CustomerStatus,
    Invoice,
    Payment,
    RefreshToken,
    User,
    UserRole,
    WaMessageQueue,
    WaSession,
)
from fibernode.services.auth import revoke_user_sessions
from fibernode.services.context import Actor, require_superadmin, require_user
from fibernode.services.errors import Conflict, NotFound, ValidationFailed
from fibernode.services.paging import Page, check_per_page
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
        changes = apply_changes(user, is_active=active)
        user.updated_at = clock.now()
        uow.audit("user.activate" if active else "user.deactivate", "users", user.id,
                  changes=changes)


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


# --- mitra management (superadmin) ------------------------------------------------------

MITRA_PAGE_SIZE = 20
MITRA_NOT_FOUND = "Mitra tidak ditemukan."


@dataclass(frozen=True)
class MitraRow:
    """A mitra as the mitra list and its edit form show it, with subscriber counts."""

    id: uuid.UUID
    username: str
    name: str
    business_name: str
    phone: str
    bank_name: str
    bank_account: str
    bank_holder: str
    is_active: bool
    customer_count: int
    active_count: int
    isolated_count: int
    created_at: datetime


# One page of the mitra list.
MitraPage = Page[MitraRow]


def _mitra_select():
    """Mitra with their subscriber counts from one grouped subquery (no query per row)."""
    counts = (
        select(
            Customer.owner_id,
            sa.func.count().label("total"),
            sa.func.count().filter(Customer.status == CustomerStatus.ACTIVE).label("active"),
            sa.func.count().filter(Customer.status == CustomerStatus.ISOLATED)
            .label("isolated"),
        )
        .group_by(Customer.owner_id)
        .subquery()
    )
    return (
        select(User, sa.func.coalesce(counts.c.total, 0),
               sa.func.coalesce(counts.c.active, 0), sa.func.coalesce(counts.c.isolated, 0))
        .outerjoin(counts, counts.c.owner_id == User.id)
        .where(User.role == UserRole.MITRA)
    )


def _mitra_row(user: User, total: int, active: int, isolated: int) -> MitraRow:
    return MitraRow(
        id=user.id, username=user.username, name=user.name,
        business_name=user.business_name, phone=user.phone or "",
        bank_name=user.bank_name or "", bank_account=user.bank_account or "",
        bank_holder=user.bank_holder or "", is_active=user.is_active,
        customer_count=int(total), active_count=int(active), isolated_count=int(isolated),
        created_at=user.created_at,
    )


def _fetch_mitra_row(session, user_id: uuid.UUID) -> MitraRow:
    row = session.exec(_mitra_select().where(User.id == user_id)).first()
    if row is None:
        raise NotFound(MITRA_NOT_FOUND)
    return _mitra_row(*row)


def _lock_mitra(uow: UnitOfWork, user_id: uuid.UUID) -> User:
    user = uow.session.exec(select(User).where(User.id == user_id).with_for_update()).first()
    if user is None or user.role != UserRole.MITRA:
        raise NotFound(MITRA_NOT_FOUND)
    return user


def list_mitra(actor: Actor, *, page: int = 1, search: str = "",
               include_inactive: bool = True, per_page: int | None = None) -> MitraPage:
    """A page of mitra (20 per page) ordered by business name, with subscriber counts.

    Args:
        actor: The superadmin.
        page: 1-based page number.
        per_page: Rows a page (default 20, at most 100).
        search: Part of the username, name or business name (case-insensitive).
        include_inactive: Also list deactivated mitra.

    Raises:
        PermissionDenied: for a mitra.
    """
    require_superadmin(actor)
    page = max(1, int(page or 1))
    size = check_per_page(per_page, MITRA_PAGE_SIZE)
    q = _mitra_select()
    term = clean(search).lower()
    if term:
        q = q.where(sa.or_(*(sa.func.lower(col).contains(term, autoescape=True)
                             for col in (User.username, User.name, User.business_name))))
    if not include_inactive:
        q = q.where(User.is_active.is_(True))
    with new_session() as s:
        total = s.exec(select(sa.func.count()).select_from(q.subquery())).one()
        rows = s.exec(q.order_by(sa.func.lower(User.business_name), User.id)
                      .offset((page - 1) * size).limit(size)).all()
        items = [_mitra_row(*row) for row in rows]
    return MitraPage(items, int(total), page, size)


def get_mitra(actor: Actor, user_id: uuid.UUID) -> MitraRow:
    """One mitra with its subscriber counts (superadmin only).

    Raises:
        PermissionDenied: for a mitra.
        NotFound: no such mitra (also for the superadmin's own id).
    """
    require_superadmin(actor)
    with new_session() as s:
        return _fetch_mitra_row(s, user_id)


def update_mitra(actor: Actor, user_id: uuid.UUID, *, name: str, business_name: str,
                 phone: str | None = None, bank_name: str | None = None,
                 bank_account: str | None = None, bank_holder: str | None = None,
                 username: str | None = None) -> MitraRow:
    """Change a mitra's account details (superadmin only).

    The optional contact and bank fields are replaced as given (empty clears
    them); ``username`` stays as it is when ``None``. Renaming the business also
    renames the "area" of the mitra's subscribers, since area is the owner's
    business name.

    Raises:
        PermissionDenied: for a mitra.
        NotFound: no such mitra.
        ValidationFailed: with per-field messages, including a taken username or
            business name.
        Conflict: a concurrent change took the same username or business name.
    """
    require_superadmin(actor)
    name, business_name = clean(name), clean(business_name)
    new_username = clean(username).lower() if username is not None else None
    phone_norm = normalize_phone(phone) if clean(phone) else None
    bank_name, bank_account, bank_holder = (optional(bank_name), optional(bank_account),
                                            optional(bank_holder))
    problems = _bank_problems(bank_name, bank_account, bank_holder)
    for field, problem in (
            ("username", username_problem(new_username) if new_username is not None else None),
            ("name", required(name, "Nama", 255)),
            ("business_name", required(business_name, "Nama usaha", 255)),
            ("phone", phone_problem(phone_norm) if phone_norm else None)):
        if problem:
            problems[field] = problem
    if problems:
        raise ValidationFailed(problems)
    with unit_of_work(actor) as uow:
        user = _lock_mitra(uow, user_id)
        new_username = new_username or user.username
        _check_unique(uow, new_username, business_name, exclude=user.id)
        changes = apply_changes(user, username=new_username, name=name,
                                business_name=business_name, phone=phone_norm,
                                bank_name=bank_name, bank_account=bank_account,
                                bank_holder=bank_holder)
        if changes:
            user.updated_at = clock.now()
            try:
                uow.session.flush()
            except sa.exc.IntegrityError as exc:
                # A concurrent create or update won the race for the same name.
                raise Conflict("Username atau nama usaha sudah dipakai.") from exc
            uow.audit("user.update", "users", user.id, changes=changes)
        return _fetch_mitra_row(uow.session, user.id)


def reset_mitra_password(actor: Actor, user_id: uuid.UUID, new_password: str) -> None:
    """Set a new password for a mitra who forgot theirs (superadmin only).

    Every session and API token of the mitra is revoked, so whoever held the old
    password is logged out everywhere at once.

    Raises:
        PermissionDenied: for a mitra.
        NotFound: no such mitra.
        ValidationFailed: the new password breaks the password rules.
    """
    require_superadmin(actor)
    if (p := password_problem(new_password or "")) is not None:
        raise ValidationFailed({"new_password": p})
    with unit_of_work(actor) as uow:
        user = _lock_mitra(uow, user_id)
        now = clock.now()
        user.password_hash = hash_password(new_password)
        user.updated_at = now
        revoked = revoke_user_sessions(uow, user.id, "password_reset")
        uow.session.exec(
            sa.update(RefreshToken)
            .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        # Never the password or its hash: only the fact and its effect.
        uow.audit("user.password_reset", "users", user.id, username=user.username,
                  revoked_sessions=revoked)


def _history_counts(session, user_id: uuid.UUID) -> dict[str, int]:
    """Rows that must outlive the mitra: money records and the audit trail it wrote."""
    def count(model, *conds) -> int:
        return int(session.exec(
            select(sa.func.count()).select_from(model).where(sa.or_(*conds))).one())

    return {
        "tagihan": count(Invoice, Invoice.owner_id == user_id, Invoice.paid_by == user_id),
        "pembayaran": count(Payment, Payment.owner_id == user_id,
                            Payment.recorded_by == user_id, Payment.reversed_by == user_id),
        "catatan aktivitas": count(ActivityLog, ActivityLog.user_id == user_id),
    }


def delete_mitra(actor: Actor, user_id: uuid.UUID) -> None:
    """Delete a mitra account for good (superadmin only).

    Meant for accounts created by mistake. Refused while the mitra owns
    subscribers, and also once it has history that must be kept: invoices or
    payments (financial records) or audit rows it wrote (which would otherwise
    lose their author). Deactivation (:func:`set_user_active`) is the normal way
    to retire a mitra. Its web sessions, API tokens, WhatsApp link and that
    link's still-queued messages go with it; sent-message logs stay.

    Raises:
        PermissionDenied: for a mitra.
        NotFound: no such mitra.
        Conflict: the mitra owns subscribers or has history to keep.
    """
    require_superadmin(actor)
    with unit_of_work(actor) as uow:
        s = uow.session
        user = _lock_mitra(uow, user_id)
        owned = s.exec(select(sa.func.count()).select_from(Customer)
                       .where(Customer.owner_id == user.id)).one()
        if owned:
            raise Conflict(
                f"Mitra {user.business_name} masih memiliki {owned} pelanggan. "
                "Pindahkan atau hapus pelanggan tersebut terlebih dahulu."
            )
        history = {k: n for k, n in _history_counts(s, user.id).items() if n}
        if history:
            listed = ", ".join(f"{n} {label}" for label, n in history.items())
            raise Conflict(
                f"Mitra {user.business_name} sudah memiliki riwayat ({listed}) yang harus "
                "tetap tersimpan, sehingga tidak bisa dihapus. Nonaktifkan mitra ini "
                "sebagai gantinya."
            )
        snapshot = {"username": user.username, "name": user.name,
                    "business_name": user.business_name, "phone": user.phone,
                    "is_active": user.is_active}
        # The queue's link to wa_sessions has no ON DELETE rule, so queued messages of
        # the mitra's WhatsApp link would block the cascade that removes the link.
        wa_ids = select(WaSession.id).where(WaSession.user_id == user.id)
        dropped = s.exec(sa.delete(WaMessageQueue)
                         .where(WaMessageQueue.session_id.in_(wa_ids))).rowcount or 0
        s.delete(user)
        try:
            s.flush()
        except sa.exc.IntegrityError as exc:
            # A subscriber or record pointing at the mitra appeared concurrently.
            raise Conflict(
                f"Mitra {snapshot['business_name']} masih dirujuk oleh data lain dan tidak "
                "bisa dihapus. Nonaktifkan mitra ini sebagai gantinya."
            ) from exc
        uow.audit("user.delete", "users", user_id, before=snapshot,
                  dropped_queued_messages=dropped)
