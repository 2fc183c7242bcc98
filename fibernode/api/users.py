"""Mitra accounts (``/api/users``, superadmin only).

Thin: every route calls :mod:`fibernode.services.users`, which checks the role,
validates and audits exactly as the ``/admin/mitra`` page does. A mitra gets 403
on every route; an id that is not a mitra (also the superadmin's own) is 404.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import Field

from fibernode.api.deps import single_change
from fibernode.api.pagination import (
    ActorDep,
    Body,
    Out,
    PageOut,
    PageQuery,
    PerPageQuery,
    from_page,
)
from fibernode.services import users

router = APIRouter(prefix="/api/users", tags=["users"])


class MitraOut(Out):
    """A mitra with its subscriber counts."""

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


class MitraCreate(Body):
    """A new mitra account."""

    username: str
    password: str
    name: str
    business_name: str
    phone: str | None = None
    bank_name: str | None = None
    bank_account: str | None = None
    bank_holder: str | None = None


class MitraUpdate(Body):
    """Fields to change; omitted ones stay as they are.

    ``is_active: false`` deactivates the mitra (refused with 409 while it still owns
    subscribers) and logs it out everywhere; ``new_password`` sets a new password and
    revokes every session and token of the mitra.
    """

    username: str | None = None
    name: str | None = None
    business_name: str | None = None
    phone: str | None = None
    bank_name: str | None = None
    bank_account: str | None = None
    bank_holder: str | None = None
    is_active: bool | None = None
    new_password: str | None = Field(default=None, description="Reset password mitra")


DETAIL_FIELDS = ("username", "name", "business_name", "phone", "bank_name", "bank_account",
                 "bank_holder")


@router.get("", response_model=PageOut[MitraOut])
def list_users(actor: ActorDep, page: PageQuery = 1, per_page: PerPageQuery = 20,
               search: str = "", include_inactive: bool = True) -> dict:
    """Mitra ordered by business name, with their subscriber counts."""
    return from_page(users.list_mitra(actor, page=page, search=search,
                                      include_inactive=include_inactive, per_page=per_page),
                     MitraOut)


@router.post("", status_code=201, response_model=MitraOut)
def create_user(actor: ActorDep, body: MitraCreate) -> MitraOut:
    """Create a mitra account (409 when a concurrent request took the same name)."""
    user_id = users.create_mitra(actor, **body.model_dump())
    return MitraOut.model_validate(users.get_mitra(actor, user_id))


@router.get("/{user_id}", response_model=MitraOut)
def get_user(user_id: uuid.UUID, actor: ActorDep) -> MitraOut:
    """One mitra with its subscriber counts."""
    return MitraOut.model_validate(users.get_mitra(actor, user_id))


@router.patch("/{user_id}", response_model=MitraOut)
def update_user(user_id: uuid.UUID, actor: ActorDep, body: MitraUpdate) -> MitraOut:
    """Change a mitra: details, a password reset or (de)activation, one per request.

    Each is its own audited use case, so a body mixing them is refused (422) rather
    than half applied.
    """
    given = body.model_dump(exclude_unset=True)
    single_change(given, {"data mitra": set(DETAIL_FIELDS), "password": {"new_password"},
                          "status aktif": {"is_active"}})
    current = users.get_mitra(actor, user_id)
    if any(name in given for name in DETAIL_FIELDS):
        details = {name: given.get(name, getattr(current, name)) for name in DETAIL_FIELDS}
        # update_mitra replaces the optional fields as given: keep the current ones.
        details["name"] = details["name"] if details["name"] is not None else current.name
        details["business_name"] = (details["business_name"]
                                    if details["business_name"] is not None
                                    else current.business_name)
        users.update_mitra(actor, user_id, **details)
    if given.get("new_password") is not None:
        users.reset_mitra_password(actor, user_id, given["new_password"])
    if given.get("is_active") is not None:
        users.set_user_active(actor, user_id, given["is_active"])
    return MitraOut.model_validate(users.get_mitra(actor, user_id))


@router.delete("/{user_id}", status_code=204)
def delete_user(user_id: uuid.UUID, actor: ActorDep,
                permanent: Annotated[bool, Query(
                    description="Hapus permanen (hanya akun tanpa riwayat)")] = False,
                ) -> Response:
    """Soft delete: deactivate the mitra (409 while it still owns subscribers).

    ``permanent=true`` removes an account created by mistake; refused (409) once it
    owns subscribers or has invoices, payments or audit history.
    """
    if permanent:
        users.delete_mitra(actor, user_id)
    else:
        users.set_user_active(actor, user_id, False)
    return Response(status_code=204)
