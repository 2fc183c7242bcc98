"""Browsing the audit trail (superadmin only)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import ActivityLog, User, UserRole
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.errors import ValidationFailed
from fibernode.services.paging import check_per_page

PAGE_SIZE = 20


@dataclass(frozen=True)
class ActivityRow:
    """One audit row as the log page shows it."""

    id: uuid.UUID
    created_at: datetime
    username: str
    action: str
    resource: str
    resource_id: str
    ip_address: str
    meta: dict


@dataclass(frozen=True)
class ActivityPage:
    """A page of audit rows plus the total for paging."""

    rows: list[ActivityRow]
    total: int
    page: int
    pages: int
    per_page: int = PAGE_SIZE


def list_activity(actor: Actor, *, page: int = 1, action_prefix: str = "",
                  username: str = "", user_id: uuid.UUID | None = None,
                  system_only: bool = False,
                  resource: str = "", resource_id: uuid.UUID | None = None,
                  date_from: date | None = None, date_to: date | None = None,
                  per_page: int | None = None) -> ActivityPage:
    """Newest audit rows first, 20 a page, filtered in SQL.

    Args:
        actor: The superadmin.
        page: 1-based page number.
        action_prefix: Actions starting with this (``customer.`` or ``invoice.pay``).
        username: Rows written by this user (exact, case-insensitive).
        user_id: Rows written by this user id.
        system_only: Only rows without a user: background jobs, the seeder, and
            rows of users since deleted (``user_id`` is set to NULL with them).
        resource: Rows about this table (``customers``, ``invoices``, …).
        resource_id: Rows about this row.
        date_from: Rows written on or after this Jakarta day.
        date_to: Rows written on or before this Jakarta day.
        per_page: Rows a page (default 20, at most 100).

    Raises:
        PermissionDenied: for a mitra.
        ValidationFailed: ``date_to`` before ``date_from`` or a bad ``per_page``.
    """
    require_superadmin(actor)
    page = max(1, page)
    size = check_per_page(per_page, PAGE_SIZE)
    if date_from is not None and date_to is not None and date_to < date_from:
        raise ValidationFailed({"date_to": "Tanggal akhir tidak boleh sebelum tanggal awal."})
    q = select(ActivityLog, User.username).outerjoin(User, User.id == ActivityLog.user_id)
    if action_prefix.strip():
        q = q.where(ActivityLog.action.startswith(action_prefix.strip(), autoescape=True))
    if username.strip():
        q = q.where(sa.func.lower(User.username) == username.strip().lower())
    if user_id is not None:
        q = q.where(ActivityLog.user_id == user_id)
    if system_only:
        q = q.where(ActivityLog.user_id.is_(None))
    if resource.strip():
        q = q.where(ActivityLog.resource == resource.strip())
    if resource_id is not None:
        q = q.where(ActivityLog.resource_id == resource_id)
    if date_from is not None:
        q = q.where(ActivityLog.created_at >= clock.jakarta_midnight(date_from))
    if date_to is not None:
        q = q.where(ActivityLog.created_at
                    < clock.jakarta_midnight(date_to + timedelta(days=1)))
    with new_session() as s:
        total = s.exec(select(sa.func.count()).select_from(q.subquery())).one()
        rows = s.exec(
            q.order_by(ActivityLog.created_at.desc(), ActivityLog.id)
            .offset((page - 1) * size).limit(size)
        ).all()
    return ActivityPage(
        rows=[
            ActivityRow(log.id, log.created_at, name or "sistem", log.action,
                        log.resource or "", str(log.resource_id or ""), log.ip_address or "",
                        log.meta or {})
            for log, name in rows
        ],
        total=total,
        page=page,
        pages=max(1, -(-total // size)),
        per_page=size,
    )


@dataclass(frozen=True)
class ActivityUser:
    """An account the log can be filtered by."""

    id: uuid.UUID
    username: str
    name: str
    role: UserRole
    is_active: bool


@dataclass(frozen=True)
class ActivityFilterOptions:
    """What the log page's pick lists offer."""

    users: list[ActivityUser]
    resources: list[str]


# The log grows without bound; a plain DISTINCT would read every row. This walks the
# (resource, resource_id) index instead, one probe per distinct value.
_DISTINCT_RESOURCES = sa.text("""
    WITH RECURSIVE r(resource) AS (
        SELECT min(resource) FROM activity_logs
        UNION ALL
        SELECT (SELECT min(a.resource) FROM activity_logs a WHERE a.resource > r.resource)
        FROM r WHERE r.resource IS NOT NULL
    )
    SELECT resource FROM r WHERE resource IS NOT NULL
""")


def filter_options(actor: Actor) -> ActivityFilterOptions:
    """What the log's user and resource pick lists offer.

    Every account, superadmin first, deactivated ones too (their rows stay), and
    every resource that occurs in the log.

    Raises:
        PermissionDenied: for a mitra.
    """
    require_superadmin(actor)
    superadmin_first = sa.case((User.role == UserRole.SUPERADMIN, 0), else_=1)
    with new_session() as s:
        users = s.exec(select(User).order_by(superadmin_first, sa.func.lower(User.username))).all()
        resources = s.execute(_DISTINCT_RESOURCES).scalars().all()
    return ActivityFilterOptions(
        users=[ActivityUser(u.id, u.username, u.name, u.role, u.is_active) for u in users],
        resources=list(resources),
    )
