"""Subscribers (pelanggan): owned by a mitra or the superadmin, always read through scoping."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import Select
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import Customer, CustomerStatus, Invoice, Package, Payment, User
from fibernode.services import revenue_months, wa_direct
from fibernode.services.context import Actor, require_superadmin, require_user
from fibernode.services.crypto import decrypt_nik, encrypt_nik, mask_nik
from fibernode.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fibernode.services.paging import Page, check_per_page
from fibernode.services.scoping import scoped
from fibernode.services.uow import UnitOfWork, apply_changes, unit_of_work
from fibernode.services.validation import (
    billing_date_problem,
    clean,
    discount_problem,
    nik_clean,
    nik_problem,
    normalize_phone,
    optional,
    phone_problem,
    required,
    too_long,
)

PAGE_SIZE = 20
MITRA_FIELDS = frozenset({"phone", "discount"})
EDITABLE_FIELDS = frozenset({"name", "phone", "package_id", "billing_date", "discount", "nik",
                             "address", "notes", "register_date"})
MITRA_FIELDS_MESSAGE = "Mitra hanya boleh mengubah nomor telepon dan diskon."
NOT_FOUND_MESSAGE = "Pelanggan tidak ditemukan."
SORTS = {
    "name": (sa.func.lower(Customer.name).asc(),),
    "-name": (sa.func.lower(Customer.name).desc(),),
    "billing_date": (Customer.billing_date.asc(), sa.func.lower(Customer.name).asc()),
    "-billing_date": (Customer.billing_date.desc(), sa.func.lower(Customer.name).asc()),
    "register_date": (Customer.register_date.asc(),),
    "-register_date": (Customer.register_date.desc(),),
    "total_bill": (Customer.total_bill.asc(),),
    "-total_bill": (Customer.total_bill.desc(),),
    "created_at": (Customer.created_at.asc(),),
    "-created_at": (Customer.created_at.desc(),),
}


@dataclass(frozen=True)
class CustomerView:
    """A subscriber as the detail page and lists show it.

    ``nik`` holds the plain NIK for the superadmin only (``None`` otherwise and in
    lists); ``nik_masked`` is always safe to show.
    """

    id: uuid.UUID
    owner_id: uuid.UUID
    area: str  # the owner's business name
    package_id: uuid.UUID
    package_name: str
    package_speed: str
    package_price: int
    name: str
    phone: str
    nik_masked: str
    nik: str | None
    address: str
    billing_date: int
    discount: int
    total_bill: int
    status: CustomerStatus
    register_date: date
    notes: str
    created_at: datetime
    updated_at: datetime


# One page of a customer list.
CustomerPage = Page[CustomerView]


def _plain_nik(stored: str | None) -> str | None:
    return decrypt_nik(stored) if stored else None


def _view(c: Customer, pkg: Package, owner: User, *, show_nik: bool) -> CustomerView:
    plain = _plain_nik(c.nik)
    return CustomerView(
        id=c.id, owner_id=c.owner_id, area=owner.business_name, package_id=c.package_id,
        package_name=pkg.name, package_speed=pkg.speed, package_price=pkg.price,
        name=c.name, phone=c.phone, nik_masked=mask_nik(plain),
        nik=plain if show_nik else None, address=c.address or "",
        billing_date=c.billing_date, discount=c.discount, total_bill=c.total_bill,
        status=c.status, register_date=c.register_date, notes=c.notes or "",
        created_at=c.created_at, updated_at=c.updated_at,
    )


def _base(actor: Actor):
    return scoped(
        select(Customer, Package, User)
        .join(Package, Package.id == Customer.package_id)
        .join(User, User.id == Customer.owner_id),
        actor, Customer.owner_id,
    )


def _load(uow: UnitOfWork, actor: Actor, customer_id: uuid.UUID) -> Customer:
    """The customer, locked for update, if the actor may see it."""
    q = scoped(select(Customer).where(Customer.id == customer_id), actor, Customer.owner_id)
    customer = uow.session.exec(q.with_for_update()).first()
    if customer is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    return customer



# --- validation ----------------------------------------------------------------------------


# The field rules live in validation so the CSV import applies exactly the same ones.


def _text_problems(values: dict[str, Any]) -> dict[str, str]:
    problems: dict[str, str] = {}
    if "name" in values and (p := required(values["name"], "Nama pelanggan", 255)):
        problems["name"] = p
    if "phone" in values and (p := phone_problem(values["phone"])):
        problems["phone"] = p
    if "billing_date" in values and (p := billing_date_problem(values["billing_date"])):
        problems["billing_date"] = p
    if "nik" in values and (p := nik_problem(values["nik"])):
        problems["nik"] = p
    if "address" in values and (p := too_long(values["address"], "Alamat", 1000)):
        problems["address"] = p
    if "notes" in values and (p := too_long(values["notes"], "Catatan", 2000)):
        problems["notes"] = p
    if "register_date" in values and not isinstance(values["register_date"], date):
        problems["register_date"] = "Tanggal daftar tidak valid."
    return problems


def _normalise(fields: dict[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    if "name" in out:
        out["name"] = clean(out["name"])
    if "phone" in out:
        out["phone"] = normalize_phone(out["phone"])
    if "nik" in out:
        out["nik"] = nik_clean(out["nik"])
    for key in ("address", "notes"):
        if key in out:
            out[key] = optional(out[key])
    return out


def _active_package(session, package_id: Any) -> Package:
    pkg = session.get(Package, package_id) if isinstance(package_id, uuid.UUID) else None
    if pkg is None or not pkg.is_active:
        raise ValidationFailed({"package_id": "Paket tidak ditemukan atau sudah tidak aktif."})
    return pkg


def _active_owner(session, owner_id: Any, field: str = "owner_id") -> User:
    owner = session.get(User, owner_id) if isinstance(owner_id, uuid.UUID) else None
    if owner is None or not owner.is_active:
        raise ValidationFailed({field: "Pemilik pelanggan tidak ditemukan atau tidak aktif."})
    return owner


# --- use cases -----------------------------------------------------------------------------


def create_customer(actor: Actor, *, name: str, phone: str, package_id: uuid.UUID,
                    billing_date: int, discount: int = 0, nik: str | None = None,
                    address: str | None = None, notes: str | None = None,
                    owner_id: uuid.UUID | None = None,
                    register_date: date | None = None) -> uuid.UUID:
    """Add a subscriber.

    A mitra always creates its own subscribers; the superadmin may pick any
    active owner (default: itself).

    Raises:
        PermissionDenied: a mitra names another owner.
        ValidationFailed: with per-field messages.
    """
    require_user(actor)
    if not (actor.is_superadmin or actor.is_system):
        if owner_id is not None and owner_id != actor.user_id:
            raise PermissionDenied("Mitra hanya boleh menambah pelanggan miliknya sendiri.")
        owner_id = actor.user_id
    values = _normalise({"name": name, "phone": phone, "billing_date": billing_date,
                         "nik": nik, "address": address, "notes": notes,
                         "register_date": register_date or clock.today()})
    problems = _text_problems(values)
    if (p := discount_problem(discount, None)):
        problems["discount"] = p
    if problems:
        raise ValidationFailed(problems)
    with unit_of_work(actor) as uow:
        if owner_id is None:
            owner_id = actor.user_id
        owner = _active_owner(uow.session, owner_id)
        pkg = _active_package(uow.session, package_id)
        if (p := discount_problem(discount, pkg.price)):
            raise ValidationFailed({"discount": p})
        stored_nik = encrypt_nik(values["nik"]) if values["nik"] else None
        customer = Customer(
            owner_id=owner.id, package_id=pkg.id, name=values["name"], phone=values["phone"],
            nik=stored_nik, address=values["address"], billing_date=billing_date,
            discount=discount, total_bill=pkg.price - discount,
            status=CustomerStatus.ACTIVE, register_date=values["register_date"],
            notes=values["notes"],
        )
        uow.session.add(customer)
        uow.session.flush()
        uow.audit("customer.create", "customers", customer.id, name=customer.name,
                  phone=customer.phone, owner_id=owner.id, package_id=pkg.id,
                  billing_date=billing_date, discount=discount,
                  total_bill=customer.total_bill, nik="diisi" if stored_nik else None)
        return customer.id


def update_customer(actor: Actor, customer_id: uuid.UUID, **fields: Any) -> CustomerView:
    """Change a subscriber's fields; only those given are touched.

    A mitra may change only ``phone`` and ``discount`` of its own subscribers;
    the superadmin may change name, phone, package_id, billing_date, discount,
    nik (``None`` or empty clears it), address, notes and register_date.
    ``total_bill`` is recomputed whenever the discount or package changes.

    Raises:
        PermissionDenied: a mitra gives any other field.
        NotFound: no such subscriber in the actor's scope.
        ValidationFailed: with per-field messages.
    """
    require_user(actor)
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"unknown customer fields: {sorted(unknown)}")
    if not (actor.is_superadmin or actor.is_system) and set(fields) - MITRA_FIELDS:
        raise PermissionDenied(MITRA_FIELDS_MESSAGE)
    values = _normalise(fields)
    problems = _text_problems(values)
    if "discount" in values and (p := discount_problem(values["discount"], None)):
        problems["discount"] = p
    if problems:
        raise ValidationFailed(problems)
    with unit_of_work(actor) as uow:
        customer = _load(uow, actor, customer_id)
        pkg = uow.session.get(Package, customer.package_id)
        if "package_id" in values and values["package_id"] != customer.package_id:
            pkg = _active_package(uow.session, values["package_id"])
        discount = values.get("discount", customer.discount)
        if (p := discount_problem(discount, pkg.price)):
            raise ValidationFailed({"discount": p})
        nik_changed = False
        if "nik" in values:
            new_nik = values.pop("nik")
            if new_nik != _plain_nik(customer.nik):
                customer.nik = encrypt_nik(new_nik) if new_nik else None
                nik_changed = True
        values["total_bill"] = pkg.price - discount
        changes = apply_changes(customer, **values)
        if nik_changed:
            changes["nik"] = "diubah"
        if changes:
            customer.updated_at = clock.now()
            uow.audit("customer.update", "customers", customer.id, changes=changes)
        owner = uow.session.get(User, customer.owner_id)
        return _view(customer, pkg, owner, show_nik=actor.is_superadmin or actor.is_system)


def get_customer(actor: Actor, customer_id: uuid.UUID) -> CustomerView:
    """One subscriber; the plain NIK only for the superadmin.

    Raises:
        NotFound: no such subscriber in the actor's scope.
    """
    require_user(actor)
    with new_session() as s:
        row = s.exec(_base(actor).where(Customer.id == customer_id)).first()
        if row is None:
            raise NotFound(NOT_FOUND_MESSAGE)
        c, pkg, owner = row
        return _view(c, pkg, owner, show_nik=actor.is_superadmin or actor.is_system)


def name_or_phone_matches(search: str) -> Any:
    """The "name or phone contains …" condition of the search boxes, or ``None``.

    Digits also match as typed with a leading 0 (``0812…`` finds ``62812…``).
    """
    term = clean(search)
    if not term:
        return None
    conds = [sa.func.lower(Customer.name).contains(term.lower(), autoescape=True)]
    digits = re.sub(r"\D", "", term)
    if digits:
        conds.append(Customer.phone.contains(digits, autoescape=True))
        normalised = normalize_phone(digits)
        if normalised != digits:
            conds.append(Customer.phone.contains(normalised, autoescape=True))
    return sa.or_(*conds)


def filtered_query(actor: Actor, *, search: str = "",
                   status: CustomerStatus | str | None = None,
                   package_id: uuid.UUID | None = None, owner_id: uuid.UUID | None = None,
                   billing_date: int | None = None,
                   sort: str = "name") -> tuple[Select, tuple[Any, ...]]:
    """The scoped, filtered select behind the customer list and the export.

    Rows are ``(Customer, Package, owner User)``. The ordering is returned apart
    so that counting can skip it; callers add ``Customer.id`` as the tie-breaker.

    Args:
        actor: Any logged-in user; a mitra sees only its own subscribers.
        search: Part of the name (case-insensitive) or of the phone digits.
        status: Only this status.
        package_id: Only this package.
        owner_id: Only this owner (a mitra may name only itself).
        billing_date: Only this billing day.
        sort: One of ``SORTS`` (prefix ``-`` for descending).

    Returns:
        The select and its ``ORDER BY`` clauses.

    Raises:
        PermissionDenied: a mitra filters by another owner.
        ValidationFailed: unknown status or sort.
    """
    require_user(actor)
    if (owner_id is not None and owner_id != actor.user_id
            and not (actor.is_superadmin or actor.is_system)):
        raise PermissionDenied()
    if sort not in SORTS:
        raise ValidationFailed({"sort": "Urutan tidak dikenal."})
    if status is not None and status != "":
        try:
            status = CustomerStatus(status)
        except ValueError as exc:
            raise ValidationFailed({"status": "Status pelanggan tidak dikenal."}) from exc
    else:
        status = None
    q = _base(actor)
    if (match := name_or_phone_matches(search)) is not None:
        q = q.where(match)
    if status is not None:
        q = q.where(Customer.status == status)
    if package_id is not None:
        q = q.where(Customer.package_id == package_id)
    if owner_id is not None:
        q = q.where(Customer.owner_id == owner_id)
    if billing_date is not None:
        q = q.where(Customer.billing_date == billing_date)
    return q, SORTS[sort]


def list_customers(actor: Actor, *, page: int = 1, search: str = "",
                   status: CustomerStatus | str | None = None,
                   package_id: uuid.UUID | None = None, owner_id: uuid.UUID | None = None,
                   billing_date: int | None = None, sort: str = "name",
                   per_page: int | None = None) -> CustomerPage:
    """A page of the actor's subscribers (20 per page), filtered and sorted in SQL.

    Args:
        actor: Any logged-in user; a mitra sees only its own subscribers.
        page: 1-based page number.
        per_page: Rows a page (default 20, at most 100).
        search: Part of the name (case-insensitive) or of the phone digits.
        status: Only this status.
        package_id: Only this package.
        owner_id: Only this owner (a mitra may name only itself).
        billing_date: Only this billing day.
        sort: One of ``SORTS`` (prefix ``-`` for descending).

    Raises:
        PermissionDenied: a mitra filters by another owner.
        ValidationFailed: unknown status or sort.
    """
    q, order = filtered_query(actor, search=search, status=status, package_id=package_id,
                              owner_id=owner_id, billing_date=billing_date, sort=sort)
    page = max(1, int(page or 1))
    size = check_per_page(per_page, PAGE_SIZE)
    with new_session() as s:
        # One pass over the matches sorts out the page's ids and counts them all (a
        # window count); only those ids are then loaded with their package and owner.
        hits = s.execute(q.with_only_columns(Customer.id, sa.func.count().over())
                         .order_by(*order, Customer.id)
                         .offset((page - 1) * size).limit(size)).all()
        if hits or page == 1:
            total = hits[0][1] if hits else 0
        else:  # a page past the end still tells how many there are
            total = s.exec(select(sa.func.count()).select_from(q.subquery())).one()
        ids = [customer_id for customer_id, _ in hits]
        found = {c.id: (c, pkg, owner) for c, pkg, owner in s.exec(
            _base(actor).where(Customer.id.in_(ids))).all()} if ids else {}
        # (A subscriber deleted between the two statements is simply left out.)
        items = [_view(*found[i], show_nik=False) for i in ids if i in found]
    return CustomerPage(items, int(total), page, size)


def delete_customer(actor: Actor, customer_id: uuid.UUID) -> None:
    """Delete a subscriber and its invoices (superadmin only).

    Raises:
        NotFound: no such subscriber.
    """
    require_superadmin(actor)
    with unit_of_work(actor) as uow:
        customer = _load(uow, actor, customer_id)
        snapshot = {"name": customer.name, "phone": customer.phone,
                    "owner_id": customer.owner_id, "package_id": customer.package_id,
                    "status": customer.status, "total_bill": customer.total_bill}
        # Its payments go with it: months already rolled up must be read from the
        # ledger again so every figure keeps matching it.
        revenue_months.forget_from(uow.session, uow.session.exec(
            select(sa.func.min(Payment.recorded_at)).join(
                Invoice, Invoice.id == Payment.invoice_id)
            .where(Invoice.customer_id == customer_id)).one())
        uow.session.delete(customer)
        uow.session.flush()
        uow.audit("customer.delete", "customers", customer_id, before=snapshot)


def set_isolated(actor: Actor, customer_id: uuid.UUID, isolated: bool, reason: str = "") -> bool:
    """Isolate (cut off) or restore a subscriber (superadmin only).

    Returns:
        Whether the status changed (``False`` when it already was as asked).

    Raises:
        NotFound: no such subscriber.
        ValidationFailed: isolating without a reason.
        Conflict: the subscriber is inactive.
    """
    require_superadmin(actor)
    reason = clean(reason)
    if isolated and not reason:
        raise ValidationFailed({"reason": "Alasan isolir wajib diisi."})
    if (p := too_long(reason, "Alasan", 500)):
        raise ValidationFailed({"reason": p})
    with unit_of_work(actor) as uow:
        customer = _load(uow, actor, customer_id)
        if customer.status == CustomerStatus.INACTIVE:
            raise Conflict("Pelanggan berstatus nonaktif. Aktifkan pelanggan terlebih dahulu.")
        target = CustomerStatus.ISOLATED if isolated else CustomerStatus.ACTIVE
        changes = apply_changes(customer, status=target)
        if not changes:
            return False
        customer.updated_at = clock.now()
        uow.audit("customer.isolate" if isolated else "customer.unisolate", "customers",
                  customer.id, changes=changes, reason=reason or None)
        if isolated:
            # The isolir notice goes out from the owner's number after the commit.
            wa_direct.record_isolation(uow, customer)
        return True


def set_inactive(actor: Actor, customer_id: uuid.UUID, inactive: bool) -> bool:
    """Deactivate a subscriber (stops billing) or reactivate it (superadmin only).

    Returns:
        Whether the status changed.

    Raises:
        NotFound: no such subscriber.
    """
    require_superadmin(actor)
    with unit_of_work(actor) as uow:
        customer = _load(uow, actor, customer_id)
        if inactive:
            target = CustomerStatus.INACTIVE
        elif customer.status == CustomerStatus.INACTIVE:
            target = CustomerStatus.ACTIVE
        else:
            return False
        changes = apply_changes(customer, status=target)
        if not changes:
            return False
        customer.updated_at = clock.now()
        uow.audit("customer.deactivate" if inactive else "customer.activate", "customers",
                  customer.id, changes=changes)
        return True


def move_customers(actor: Actor, customer_ids: Iterable[uuid.UUID],
                   new_owner_id: uuid.UUID) -> int:
    """Give subscribers to another active owner (superadmin only), in one transaction.

    Issued invoices stay with the owner that issued them.

    Returns:
        How many subscribers changed owner.

    Raises:
        NotFound: one of the subscribers does not exist.
        ValidationFailed: no subscribers given, or the new owner is unknown or inactive.
    """
    require_superadmin(actor)
    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        raise ValidationFailed({"customer_ids": "Pilih minimal satu pelanggan."})
    with unit_of_work(actor) as uow:
        owner = _active_owner(uow.session, new_owner_id, "new_owner_id")
        customers = uow.session.exec(
            scoped(select(Customer).where(Customer.id.in_(ids)), actor, Customer.owner_id)
            .with_for_update()
        ).all()
        if len(customers) != len(ids):
            raise NotFound(NOT_FOUND_MESSAGE)
        now = clock.now()
        moved = 0
        for customer in customers:
            changes = apply_changes(customer, owner_id=owner.id)
            if changes:
                customer.updated_at = now
                moved += 1
                uow.audit("customer.move", "customers", customer.id, changes=changes,
                          new_owner=owner.business_name)
        return moved
