"""Each owner's WhatsApp session row: created on demand, updated from gateway events.

The gateway (outbox, the ``wa-gateway`` service, the Cloud API) reports what happened;
this module turns it into ``wa_sessions`` state the rest of the app trusts: the status,
the linked number, the QR / pairing code on offer, a ban's expiry, and whether the
owner's queue is paused because the account is restricted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from fibernode import clock
from fibernode.db import insert_for
from fibernode.models import WaSession, WaSessionStatus
from fibernode.services.context import Actor
from fibernode.services.uow import UnitOfWork, unit_of_work

# Statuses that mean the account cannot send until a person acts (or a ban lapses).
RESTRICTED_STATUSES = frozenset({WaSessionStatus.LOGGED_OUT, WaSessionStatus.BANNED,
                                 WaSessionStatus.OUTDATED})
STATUS_LABELS = {
    WaSessionStatus.DISCONNECTED: "Tidak terhubung",
    WaSessionStatus.CONNECTING: "Menghubungkan…",
    WaSessionStatus.CONNECTED: "Terhubung",
    WaSessionStatus.LOGGED_OUT: "Keluar dari perangkat (scan ulang)",
    WaSessionStatus.BANNED: "Diblokir sementara oleh WhatsApp",
    WaSessionStatus.OUTDATED: "Versi klien usang",
}
# Every restriction pause starts with this, so re-linking the number can lift exactly those.
PAUSE_PREFIX = "Akun WhatsApp dibatasi"


def pause_reason(detail: str) -> str:
    """The pause reason shown to the owner for a restricted account."""
    return f"{PAUSE_PREFIX} ({detail.rstrip('. ') or 'dibatasi'}); antrian dijeda."


@dataclass(frozen=True)
class SessionEvent:
    """One fact reported by a gateway about an owner's link.

    Only the fields that are not ``None`` change; ``clear_link`` wipes the QR /
    pairing code on offer (paired, expired or logged out).
    """

    status: WaSessionStatus | None = None
    phone_number: str | None = None
    qr_code: str | None = None
    pairing_code: str | None = None
    link_method: str | None = None
    link_expires_at: datetime | None = None
    link_expired: bool | None = None
    banned_until: datetime | None = None
    error: str | None = None
    clear_link: bool = False


def ensure_session(session: Session, owner_id: uuid.UUID) -> WaSession:
    """The owner's session row, inserted when missing (safe under concurrent callers)."""
    row = session.exec(select(WaSession).where(WaSession.user_id == owner_id)).first()
    if row is not None:
        return row
    table = WaSession.__table__
    values = {"id": uuid.uuid4(), "user_id": owner_id, "status": WaSessionStatus.DISCONNECTED,
              "created_at": clock.now(), "updated_at": clock.now(), "batch_count": 0,
              "hour_count": 0, "day_count": 0, "link_expired": False}
    session.execute(insert_for(session)(table).values(**values).on_conflict_do_nothing(
        index_elements=["user_id"]))
    session.flush()
    return session.exec(select(WaSession).where(WaSession.user_id == owner_id)).one()


def session_ids_by_owner(session: Session,
                         owner_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """Session ids for many owners at once, creating the missing rows."""
    found = dict(session.exec(sa.select(WaSession.user_id, WaSession.id)
                              .where(WaSession.user_id.in_(owner_ids))).all())
    for owner_id in owner_ids:
        if owner_id not in found:
            found[owner_id] = ensure_session(session, owner_id).id
    return found


def apply_event(session: Session, row: WaSession, event: SessionEvent) -> dict[str, object]:
    """Write ``event`` onto ``row`` and return what changed (for the audit row)."""
    now = clock.now()
    changes: dict[str, object] = {}

    def put(field: str, value: object) -> None:
        if getattr(row, field) != value:
            changes[field] = value
            setattr(row, field, value)

    if event.status is not None and event.status != row.status:
        put("status", event.status)
        row.status_changed_at = now
        if event.status == WaSessionStatus.CONNECTED:
            row.last_connected_at = now
            put("banned_until", None)
            put("last_error", None)
            # A restriction pause ends once the owner has re-linked the number.
            if row.queue_paused_at is not None and (row.queue_pause_reason or "").startswith(
                    PAUSE_PREFIX):
                put("queue_paused_at", None)
                put("queue_pause_reason", None)
        if event.status in RESTRICTED_STATUSES and row.queue_paused_at is None:
            put("queue_paused_at", now)
            put("queue_pause_reason", pause_reason(STATUS_LABELS[event.status].lower()))
    if event.clear_link or event.status in (WaSessionStatus.CONNECTED,
                                            WaSessionStatus.LOGGED_OUT):
        for field in ("qr_code", "pairing_code", "link_expires_at"):
            put(field, None)
    for field in ("phone_number", "qr_code", "pairing_code", "link_method",
                  "link_expires_at", "link_expired", "banned_until"):
        value = getattr(event, field)
        if value is not None:
            put(field, value)
    if event.error is not None:
        put("last_error", event.error or None)
    if changes:
        row.updated_at = now
    return changes


def pause_for_restriction(uow: UnitOfWork, owner_id: uuid.UUID, error: str, *,
                          at: datetime | None = None, **meta: object) -> bool:
    """Pause the owner's queue because WhatsApp restricted the account (the alert).

    Used by the queue and by direct sends alike; the owner's bell and dashboard read the
    pause, and the audit row records it once (a queue already paused stays as it was).

    Returns:
        Whether the queue was running and is now paused.
    """
    table = WaSession.__table__
    at = at or clock.now()
    reason = pause_reason(error)
    session_id = uow.session.execute(sa.update(table).where(
        table.c.user_id == owner_id, table.c.queue_paused_at.is_(None)).values(
        queue_paused_at=at, queue_pause_reason=reason, last_error=error or None,
        updated_at=at).returning(table.c.id)).scalar()
    if session_id is not None:
        uow.audit("wa.queue.paused", "wa_sessions", session_id, owner_id=owner_id,
                  reason=reason, **meta)
    return session_id is not None


def record_event(owner_id: uuid.UUID, event: SessionEvent, *, source: str = "gateway") -> bool:
    """Store a gateway event for ``owner_id`` (system use case, audited on status changes).

    Args:
        owner_id: The superadmin or mitra whose link it is.
        event: What the gateway saw.
        source: Who reported it, for the audit row.

    Returns:
        Whether anything changed.
    """
    actor = Actor.system(f"wa.{source}")
    with unit_of_work(actor) as uow:
        row = ensure_session(uow.session, owner_id)
        # Row lock: events of one owner arrive from several threads (QR rotation, status).
        uow.session.exec(select(WaSession).where(WaSession.id == row.id).with_for_update())
        uow.session.refresh(row)
        before = row.status
        changes = apply_event(uow.session, row, event)
        if "status" in changes or "queue_paused_at" in changes:
            uow.audit("wa.session.status", "wa_sessions", row.id, owner_id=owner_id,
                      status={"from": before, "to": row.status},
                      phone=row.phone_number, error=event.error,
                      queue_paused=row.queue_paused_at is not None)
        else:
            uow.bookkeeping("gateway telemetry (QR, last seen), not a change of state")
        return bool(changes)
