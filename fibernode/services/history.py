"""A subscriber's invoices, payments and WhatsApp messages for its detail page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import aliased
from sqlmodel import select

from fibernode.db import new_session
from fibernode.models import (
    Customer,
    Invoice,
    Payment,
    PaymentMethod,
    PaymentStatus,
    User,
    WaMessageLog,
)
from fibernode.services.context import Actor, require_user
from fibernode.services.customers import NOT_FOUND_MESSAGE
from fibernode.services.errors import NotFound
from fibernode.services.scoping import scoped

HISTORY_LIMIT = 24  # two years of monthly invoices


@dataclass(frozen=True)
class InvoiceLine:
    """One invoice of the subscriber."""

    id: uuid.UUID
    period: str
    due_date: date
    total_amount: int
    paid_amount: int
    status: PaymentStatus
    paid_at: datetime | None
    paid_by: str  # name of who recorded the payment, "" when unpaid


@dataclass(frozen=True)
class PaymentLine:
    """One payment in the ledger, reversed ones included (they are never deleted)."""

    id: uuid.UUID
    invoice_id: uuid.UUID
    period: str
    amount: int
    method: PaymentMethod
    note: str
    recorded_by: str
    recorded_at: datetime
    reversed_at: datetime | None
    reversal_reason: str


@dataclass(frozen=True)
class MessageLine:
    """One WhatsApp message sent (or attempted) to the subscriber."""

    id: uuid.UUID
    message_type: str
    phone: str
    status: str
    error_message: str
    sent_at: datetime
    preview: str


@dataclass(frozen=True)
class CustomerHistory:
    """The newest invoices and messages of one subscriber."""

    invoices: list[InvoiceLine]
    payments: list[PaymentLine]
    messages: list[MessageLine]


def customer_history(actor: Actor, customer_id: uuid.UUID) -> CustomerHistory:
    """Newest invoices and WhatsApp messages of a subscriber the actor may see.

    Raises:
        NotFound: no such subscriber in the actor's scope.
    """
    require_user(actor)
    with new_session() as s:
        visible = s.exec(scoped(select(Customer.id).where(Customer.id == customer_id),
                                actor, Customer.owner_id)).first()
        if visible is None:
            raise NotFound(NOT_FOUND_MESSAGE)
        invoices = s.exec(
            select(Invoice, User.name)
            .outerjoin(User, User.id == Invoice.paid_by)
            .where(Invoice.customer_id == customer_id)
            .order_by(Invoice.period.desc())
            .limit(HISTORY_LIMIT)
        ).all()
        recorder = aliased(User)
        payments = s.exec(
            select(Payment, Invoice.period, recorder.name)
            .join(Invoice, Invoice.id == Payment.invoice_id)
            .join(recorder, recorder.id == Payment.recorded_by)
            .where(Invoice.customer_id == customer_id)
            .order_by(Payment.recorded_at.desc(), Payment.id)
            .limit(HISTORY_LIMIT)
        ).all()
        messages = s.exec(
            select(WaMessageLog).where(WaMessageLog.customer_id == customer_id)
            .order_by(WaMessageLog.sent_at.desc(), WaMessageLog.id)
            .limit(HISTORY_LIMIT)
        ).all()
        return CustomerHistory(
            invoices=[InvoiceLine(i.id, i.period, i.due_date, i.total_amount, i.paid_amount,
                                  i.status, i.paid_at, payer or "") for i, payer in invoices],
            payments=[PaymentLine(p.id, p.invoice_id, period, p.amount, p.method, p.note or "",
                                  who, p.recorded_at, p.reversed_at, p.reversal_reason or "")
                      for p, period, who in payments],
            messages=[MessageLine(m.id, m.message_type, m.phone, m.status,
                                  m.error_message or "", m.sent_at,
                                  _preview(m.content)) for m in messages],
        )


def _preview(content: str, size: int = 140) -> str:
    text = " ".join(content.split())
    return text if len(text) <= size else text[: size - 1] + "…"

