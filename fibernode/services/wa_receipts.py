"""Delivery and read receipts from WhatsApp onto ``wa_message_logs`` rows.

Both real gateways report them: the Cloud API through its webhook (``statuses``),
the ``wa-gateway`` service from neonize receipt events. Rows are found by the
provider's message id. A receipt never moves a row backwards (a late "delivered"
after "read" keeps "read"), and receipts are not audited: they are WhatsApp's
facts about a message, not an action by anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from fibernode import clock
from fibernode.models import WaMessageLog
from fibernode.services.context import Actor
from fibernode.services.uow import unit_of_work

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
    """

    provider_message_id: str
    status: str
    at: datetime | None = None
    error: str | None = None


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
        for update in updates:
            row = rows.get(update.provider_message_id)
            if row is None:
                continue
            if _apply(row, update):
                changed += 1
    return changed


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
