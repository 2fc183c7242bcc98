"""The audit trail (``/api/activity-logs``, superadmin only).

Thin: :func:`fibernode.services.activity.list_activity` checks the role and
filters in SQL, as the ``/admin/activity`` page does.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from fibernode.api.pagination import ActorDep, Out, PageOut, PageQuery, PerPageQuery, page_out
from fibernode.services import activity

router = APIRouter(prefix="/api", tags=["activity"])


class ActivityOut(Out):
    """One audit row: who did what to which row, from where, with its details."""

    id: uuid.UUID
    created_at: datetime
    username: str
    action: str
    resource: str
    resource_id: str
    ip_address: str
    meta: dict[str, Any]


@router.get("/activity-logs", response_model=PageOut[ActivityOut])
def list_activity_logs(
    actor: ActorDep, page: PageQuery = 1, per_page: PerPageQuery = 20,
    action: Annotated[str, Query(description="Awalan aksi, mis. customer. atau invoice.pay")] = "",
    username: str = "", user_id: uuid.UUID | None = None,
    system: Annotated[bool, Query(description="Hanya baris tanpa pengguna (tugas sistem)")]
    = False,
    resource: Annotated[str, Query(description="Tabel, mis. customers atau invoices")] = "",
    resource_id: uuid.UUID | None = None,
    date_from: date | None = None, date_to: date | None = None,
) -> dict:
    """Newest audit rows first, filtered by action prefix, user, row and Jakarta days."""
    result = activity.list_activity(
        actor, page=page, per_page=per_page, action_prefix=action, username=username,
        user_id=user_id, system_only=system, resource=resource, resource_id=resource_id,
        date_from=date_from, date_to=date_to)
    return page_out(result.rows, total=result.total, page=result.page,
                    per_page=result.per_page, convert=ActivityOut.model_validate)
