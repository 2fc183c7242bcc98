"""Delivery and read receipts from WhatsApp onto ``wa_message_logs`` rows.

A ``failed`` status (the Cloud API accepted a message, then could not deliver it)
fails the log row and the queued message behind it, with the reason for the owner, and
clears the invoice's "sent" time that send had stamped.

Both real gateways report them: the Cloud API through its webhook (``statuses``),
the ``wa-gateway`` service from neonize receipt events. Rows are found by the
provider's message id, or, for a send settled by idempotency key after its worker died
(which never learnt the id), by that key: the id is then kept on the row. A receipt
never moves a row backwards (a late "delivered" after "read" keeps "read"), and
receipts are not audited: they are WhatsApp's facts about a message, not an action by
anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from fibernode import clock
from fibernode.models import Invoice, WaMessageLog, WaMessageQueue
from fibernode.services.context import Actor
from fibernode.services.uow import unit_of_work
from fibernode.services.wa_direct import SENT_COLUMNS

# How far a log row has got; a receipt only moves a row forward.
_RANK = {"pending": 0, "sending": 1, "failed": 2, "sent": 2, "delivered": 3, "read": 4}


@dataclass(frozen=True)
class StatusUpdate:
    """One provider status for one message.

    Attributes:
        provider_message_id: The id the provider gave the message when it was sent.
        status: ``sent``, ``delivered``, ``read`` or ``failed``.
        at: When the provider says it happened.
        error: Why it failed (``failed`` only), for the owner.
        idempotency_key: The key the message was sent under, when the provider knows it
            (the wa-gateway does); finds a row that lacks the provider id.
    """

    provider_message_id: str
    status: str
    at: datetime | None = None
    error: str | None = None
    idempotency_key: str | None = None


def record_status_updates(updates: list[StatusUpdate], *, source: str = "gateway") -> int:
    """Apply provider statuses to the message log (system use case).

    Args:
        updates: Statuses in the order the provider sent them.
        source: Who reported them (``cloud``, ``neonize``), for the actor's name.

    Returns:
        How many log rows changed.
    """
    if not updates:
        return 0
    changed = 0
    with unit_of_work(Actor.system(f"wa.{source}")) as uow:
        uow.bookkeeping("provider delivery statuses, kept in wa_message_logs")
        ids = sorted({u.provider_message_id for u in updates})
        rows = {row.provider_message_id: row for row in uow.session.exec(
            sa.select(WaMessageLog).where(WaMessageLog.provider_message_id.in_(ids))
            .with_for_update()).scalars()}
        keys = sorted({u.idempotency_key for u in updates
                       if u.idempotency_key and u.provider_message_id not in rows})
        if keys:
            rows.update(_adopt_ids(uow.session, keys, {
                u.idempotency_key: u.provider_message_id for u in updates
                if u.idempotency_key in keys}))
        for update in updates:
            row = rows.get(update.provider_message_id)
            if row is None:
                continue
            if _apply(row, update):
                changed += 1
                if row.status == "failed":
                    _undo_sent(uow.session, row)
    return changed


def _undo_sent(session, row: WaMessageLog) -> None:
    """What recorded a message WhatsApp failed later as sent says otherwise now.

    The queued message behind the row fails too (the queue page would go on saying
    "sent"), and the invoice's "reminder / receipt / isolir sent" time that this very
    send stamped is cleared, so the owner may send it again the same day.
    """
    column = SENT_COLUMNS.get(row.message_type)
    if column and row.invoice_id is not None:
        inv = Invoice.__table__
        session.execute(sa.update(inv).where(inv.c.id == row.invoice_id,
                                             inv.c[column] == row.sent_at)
                        .values({column: None}))
    q = WaMessageQueue.__table__
    match = (q.c.id == row.queue_id) if row.queue_id is not None else (
        q.c.idempotency_key == row.idempotency_key)
    if row.queue_id is None and row.idempotency_key is None:
        return
    session.execute(sa.update(q).where(match, q.c.status.in_(("sent", "sending"))).values(
        status="failed", error_message=row.error_message, updated_at=clock.now()))


def _adopt_ids(session, keys: list[str], ids: dict[str, str]) -> dict[str, WaMessageLog]:
    """Rows sent under ``keys`` without a provider id take the id their receipt names."""
    found: dict[str, WaMessageLog] = {}
    for row in session.exec(sa.select(WaMessageLog).where(
            WaMessageLog.idempotency_key.in_(keys),
            WaMessageLog.provider_message_id.is_(None)).with_for_update()).scalars():
        row.provider_message_id = ids[row.idempotency_key]
        found[row.provider_message_id] = row
        session.execute(sa.update(WaMessageQueue.__table__).where(
            WaMessageQueue.idempotency_key == row.idempotency_key,
            WaMessageQueue.provider_message_id.is_(None))
            .values(provider_message_id=row.provider_message_id))
    return found


def _apply(row: WaMessageLog, update: StatusUpdate) -> bool:
    at = update.at or clock.now()
    before = (row.status, row.delivered_at, row.read_at, row.error_message)
    if update.status == "failed":
        # Accepted by the provider, then undeliverable: the owner must see it failed.
        if row.status != "read":
            row.status = "failed"
            row.error_message = update.error or "Pesan gagal terkirim menurut WhatsApp."
    elif update.status in ("delivered", "read"):
        if row.delivered_at is None:
            row.delivered_at = at
        if update.status == "read" and row.read_at is None:
            row.read_at = at
        if _RANK.get(update.status, 0) > _RANK.get(row.status, 0):
            row.status = update.status
    return before != (row.status, row.delivered_at, row.read_at, row.error_message)
