"""Browsing the audit trail (superadmin only)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import select

from fibernode.db import new_session
from fibernode.models import ActivityLog, User
from fibernode.services.context import Actor, require_superadmin

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


def list_activity(actor: Actor, *, page: int = 1, action_prefix: str = "",
                  username: str = "") -> ActivityPage:
    """Newest audit rows first, 20 a page, filtered by action prefix and username."""
    require_superadmin(actor)
    page = max(1, page)
    q = select(ActivityLog, User.username).outerjoin(User, User.id == ActivityLog.user_id)
    if action_prefix.strip():
        q = q.where(ActivityLog.action.startswith(action_prefix.strip()))
    if username.strip():
        q = q.where(sa.func.lower(User.username) == username.strip().lower())
    with new_session() as s:
        total = s.exec(select(sa.func.count()).select_from(q.subquery())).one()
        rows = s.exec(
            q.order_by(ActivityLog.created_at.desc(), ActivityLog.id)
            .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
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
        pages=max(1, -(-total // PAGE_SIZE)),
    )
