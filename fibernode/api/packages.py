"""Internet packages (``/api/packages``): read by every role, managed by the superadmin.

Thin: every route calls :mod:`fibernode.services.packages` (role checks, validation,
audit, the price change recomputing subscribers' totals). A mitra sees active
packages only (an inactive one is 404 for it) and gets 403 on every change.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from fibernode.api.deps import single_change
from fibernode.api.pagination import (
    ActorDep,
    Body,
    Out,
    PageOut,
    PageQuery,
    PerPageQuery,
    page_out,
)
from fibernode.services import packages

router = APIRouter(prefix="/api/packages", tags=["packages"])


class PackageOut(Out):
    """A package; ``subscriber_count`` counts only the subscribers the caller may see."""

    id: uuid.UUID
    name: str
    speed: str
    price: int
    description: str
    is_active: bool
    subscriber_count: int


class PackageCreate(Body):
    """A new package (price in whole Rupiah)."""

    name: str
    speed: str
    price: int
    description: str | None = None


class PackageUpdate(Body):
    """Fields to change; omitted ones stay. ``is_active`` hides or shows the package."""

    name: str | None = None
    speed: str | None = None
    price: int | None = None
    description: str | None = None
    is_active: bool | None = None


def _find(actor, package_id: uuid.UUID) -> PackageOut:
    return PackageOut.model_validate(packages.get_package(actor, package_id))


@router.get("", response_model=PageOut[PackageOut])
def list_packages(actor: ActorDep, page: PageQuery = 1, per_page: PerPageQuery = 20,
                  include_inactive: bool = False) -> dict:
    """Packages by price (inactive ones only for the superadmin with ``include_inactive``)."""
    rows = packages.list_packages(actor, include_inactive=include_inactive)
    start = (page - 1) * per_page
    return page_out(rows[start:start + per_page], total=len(rows), page=page,
                    per_page=per_page, convert=PackageOut.model_validate)


@router.post("", status_code=201, response_model=PackageOut)
def create_package(actor: ActorDep, body: PackageCreate) -> PackageOut:
    """Create a package."""
    package_id = packages.create_package(actor, body.name, body.speed, body.price,
                                         body.description)
    return _find(actor, package_id)


@router.get("/{package_id}", response_model=PackageOut)
def get_package(package_id: uuid.UUID, actor: ActorDep) -> PackageOut:
    """One package (a mitra: active packages only)."""
    return _find(actor, package_id)


@router.patch("/{package_id}", response_model=PackageOut)
def update_package(package_id: uuid.UUID, actor: ActorDep, body: PackageUpdate) -> PackageOut:
    """Change a package; a new price applies to future invoices only."""
    given = body.model_dump(exclude_unset=True)
    single_change(given, {"data paket": given.keys() - {"is_active"},
                          "status aktif": {"is_active"}})
    active = given.pop("is_active", None)
    for field in ("name", "speed", "price"):
        if field in given and given[field] is None:
            given.pop(field)  # null means "leave as it is" for required fields
    if given:
        packages.update_package(actor, package_id, **given)
    if active is not None:
        packages.set_package_active(actor, package_id, active)
    if not given and active is None:
        packages.update_package(actor, package_id)  # role and existence checks only
    return _find(actor, package_id)


@router.delete("/{package_id}", status_code=204)
def delete_package(package_id: uuid.UUID, actor: ActorDep,
                   permanent: Annotated[bool, Query(
                       description="Hapus permanen (hanya paket tanpa pelanggan)")] = False,
                   ) -> Response:
    """Soft delete: hide the package from pick lists (subscribers on it keep it).

    ``permanent=true`` deletes it for good; refused (409) while subscribers use it.
    """
    if permanent:
        packages.delete_package(actor, package_id)
    else:
        packages.set_package_active(actor, package_id, False)
    return Response(status_code=204)
