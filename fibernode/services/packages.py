"""Internet packages: global, read by everyone logged in, managed by the superadmin."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.formatting import rupiah
from fibernode.models import Customer, Package
from fibernode.services.context import Actor, require_superadmin, require_user
from fibernode.services.errors import Conflict, NotFound, ValidationFailed
from fibernode.services.scoping import scoped
from fibernode.services.uow import apply_changes, unit_of_work
from fibernode.services.validation import clean, optional, required

MAX_PRICE = 100_000_000
_UNSET: Any = object()


@dataclass(frozen=True)
class PackageRow:
    """A package as lists and pick lists show it.

    ``subscriber_count`` counts only the subscribers the actor may see (all of them
    for the superadmin, the mitra's own for a mitra).
    """

    id: uuid.UUID
    name: str
    speed: str
    price: int
    description: str
    is_active: bool
    subscriber_count: int


def _rows(actor: Actor, include_inactive: bool):
    """Packages with the actor's subscriber counts (inactive ones: superadmin only)."""
    counts = scoped(
        select(Customer.package_id, sa.func.count().label("n")),
        actor, Customer.owner_id,
    ).group_by(Customer.package_id).subquery()
    q = (select(Package, sa.func.coalesce(counts.c.n, 0))
         .outerjoin(counts, counts.c.package_id == Package.id))
    if not (include_inactive and (actor.is_superadmin or actor.is_system)):
        q = q.where(Package.is_active.is_(True))
    return q


def _row(p: Package, n: Any) -> PackageRow:
    return PackageRow(p.id, p.name, p.speed, p.price, p.description or "", p.is_active, int(n))


def list_packages(actor: Actor, include_inactive: bool = False) -> list[PackageRow]:
    """Packages ordered by price, each with its subscriber count.

    Args:
        actor: Any logged-in user.
        include_inactive: Also list soft-deleted packages (honoured for the
            superadmin only; a mitra never sees inactive packages).
    """
    require_user(actor)
    q = _rows(actor, include_inactive).order_by(Package.price, Package.name, Package.id)
    with new_session() as s:
        return [_row(p, n) for p, n in s.exec(q).all()]


def get_package(actor: Actor, package_id: uuid.UUID) -> PackageRow:
    """One package with its subscriber count, as the list shows it.

    Raises:
        NotFound: no such package, or an inactive one asked by a mitra.
    """
    require_user(actor)
    with new_session() as s:
        found = s.exec(_rows(actor, include_inactive=True)
                       .where(Package.id == package_id)).first()
    if found is None:
        raise NotFound("Paket tidak ditemukan.")
    return _row(*found)


def _price_problem(price: Any) -> str | None:
    if isinstance(price, bool) or not isinstance(price, int):
        return "Harga harus berupa angka bulat (Rupiah)."
    if not 1 <= price <= MAX_PRICE:
        return f"Harga harus antara Rp 1 dan {rupiah(MAX_PRICE)}."
    return None


def _validate(name: str, speed: str, price: Any, description: str | None) -> None:
    problems = {}
    for field, problem in (("name", required(name, "Nama paket", 255)),
                           ("speed", required(speed, "Kecepatan", 50)),
                           ("price", _price_problem(price))):
        if problem:
            problems[field] = problem
    if description is not None and len(description) > 2000:
        problems["description"] = "Deskripsi maksimal 2000 karakter."
    if problems:
        raise ValidationFailed(problems)


def create_package(actor: Actor, name: str, speed: str, price: int,
                   description: str | None = None) -> uuid.UUID:
    """Create a package (superadmin only).

    Raises:
        PermissionDenied: for a mitra.
        ValidationFailed: with per-field messages.
    """
    require_superadmin(actor)
    name, speed, description = clean(name), clean(speed), optional(description)
    _validate(name, speed, price, description)
    with unit_of_work(actor) as uow:
        pkg = Package(name=name, speed=speed, price=price, description=description)
        uow.session.add(pkg)
        uow.session.flush()
        uow.audit("package.create", "packages", pkg.id, name=name, speed=speed, price=price)
        return pkg.id


def _get(session, package_id: uuid.UUID, lock: bool = False) -> Package:
    q = select(Package).where(Package.id == package_id)
    if lock:
        q = q.with_for_update()
    pkg = session.exec(q).first()
    if pkg is None:
        raise NotFound("Paket tidak ditemukan.")
    return pkg



def update_package(actor: Actor, package_id: uuid.UUID, *, name: str = _UNSET,
                   speed: str = _UNSET, price: int = _UNSET,
                   description: str | None = _UNSET) -> None:
    """Change a package (superadmin only); omitted fields stay as they are.

    A new price applies to future invoices only: issued invoices keep their
    snapshot. Subscribers' ``total_bill`` (price − discount) is recomputed in the
    same transaction.

    Raises:
        NotFound: no such package.
        ValidationFailed: bad input, or a subscriber's discount exceeds the new price.
    """
    require_superadmin(actor)
    with unit_of_work(actor) as uow:
        pkg = _get(uow.session, package_id, lock=True)
        new = {
            "name": pkg.name if name is _UNSET else clean(name),
            "speed": pkg.speed if speed is _UNSET else clean(speed),
            "price": pkg.price if price is _UNSET else price,
            "description": pkg.description if description is _UNSET else optional(description),
        }
        _validate(new["name"], new["speed"], new["price"], new["description"])
        changes = apply_changes(pkg, **new)
        if not changes:
            return
        recomputed = 0
        if "price" in changes:
            recomputed = _recompute_totals(uow, pkg)
        pkg.updated_at = clock.now()
        uow.audit("package.update", "packages", pkg.id, changes=changes,
                  customers_recomputed=recomputed)


def _recompute_totals(uow, pkg: Package) -> int:
    """Set every subscriber's total_bill to the new price minus their discount.

    Set-based: one aggregate to refuse a price below any discount, one UPDATE.
    Returns how many subscribers the package has.
    """
    count, too_big, biggest = uow.session.exec(
        select(
            sa.func.count(),
            sa.func.count().filter(Customer.discount > pkg.price),
            sa.func.max(Customer.discount),
        ).where(Customer.package_id == pkg.id)
    ).one()
    if too_big:
        raise ValidationFailed({"price": (
            f"Harga baru {rupiah(pkg.price)} lebih kecil dari diskon {too_big} "
            f"pelanggan (diskon terbesar {rupiah(biggest)}). Kurangi diskon pelanggan "
            "tersebut terlebih dahulu."
        )})
    new_total = pkg.price - Customer.discount
    uow.session.exec(
        sa.update(Customer)
        .where(Customer.package_id == pkg.id, Customer.total_bill != new_total)
        .values(total_bill=new_total, updated_at=clock.now())
    )
    return count


def set_package_active(actor: Actor, package_id: uuid.UUID, active: bool) -> None:
    """Show or hide a package in pick lists (soft delete; superadmin only).

    Subscribers already on an inactive package keep it and keep being billed.

    Raises:
        NotFound: no such package.
    """
    require_superadmin(actor)
    with unit_of_work(actor) as uow:
        pkg = _get(uow.session, package_id)
        changes = apply_changes(pkg, is_active=active)
        if changes:
            pkg.updated_at = clock.now()
            uow.audit("package.activate" if active else "package.deactivate", "packages",
                      pkg.id, changes=changes)


def delete_package(actor: Actor, package_id: uuid.UUID) -> None:
    """Delete a package for good (superadmin only), only when nobody uses it.

    Raises:
        NotFound: no such package.
        Conflict: subscribers still use it.
    """
    require_superadmin(actor)
    with unit_of_work(actor) as uow:
        pkg = _get(uow.session, package_id, lock=True)
        _refuse_if_used(uow.session, pkg)
        snapshot = {"name": pkg.name, "speed": pkg.speed, "price": pkg.price,
                    "is_active": pkg.is_active}
        uow.session.delete(pkg)
        try:
            uow.session.flush()
        except sa.exc.IntegrityError as exc:
            # A subscriber was put on the package concurrently.
            raise Conflict("Paket masih dipakai oleh pelanggan. Pindahkan pelanggan ke "
                           "paket lain atau nonaktifkan paket ini.") from exc
        uow.audit("package.delete", "packages", package_id, before=snapshot)


def _refuse_if_used(session, pkg: Package) -> None:
    used = session.exec(
        select(sa.func.count()).select_from(Customer).where(Customer.package_id == pkg.id)
    ).one()
    if used:
        raise Conflict(
            f"Paket masih dipakai oleh {used} pelanggan. Pindahkan pelanggan ke paket "
            "lain atau nonaktifkan paket ini."
        )
