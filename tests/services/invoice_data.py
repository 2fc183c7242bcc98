"""Invoices for the invoice and receipt tests, inserted directly (billing is another module)."""

from __future__ import annotations

import secrets
import uuid
from datetime import date

from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import ActivityLog, Customer, Invoice, Payment, User


def customer(name: str) -> Customer:
    with new_session() as s:
        return s.exec(select(Customer).where(Customer.name == name)).one()


def make_invoice(cust: Customer | str, period: str | None = None, *,
                 due_date: date | None = None, amount: int | None = None,
                 discount: int | None = None, token: str | None = None) -> Invoice:
    """An unpaid invoice of ``cust`` (a Customer or its name) for ``period``."""
    if isinstance(cust, str):
        cust = customer(cust)
    discount = cust.discount if discount is None else discount
    amount = cust.total_bill + cust.discount if amount is None else amount
    inv = Invoice(customer_id=cust.id, owner_id=cust.owner_id,
                  period=period or clock.current_period(), amount=amount, discount=discount,
                  total_amount=amount - discount, due_date=due_date or clock.today(),
                  receipt_token=token or secrets.token_urlsafe(24))
    with new_session() as s:
        s.add(inv)
        s.commit()
    return inv


def invoice(invoice_id: uuid.UUID) -> Invoice:
    with new_session() as s:
        return s.get(Invoice, invoice_id)


def payments(invoice_id: uuid.UUID) -> list[Payment]:
    with new_session() as s:
        return list(s.exec(select(Payment).where(Payment.invoice_id == invoice_id)
                           .order_by(Payment.recorded_at, Payment.id)).all())


def ledger_total(invoice_id: uuid.UUID) -> int:
    return sum(p.amount for p in payments(invoice_id) if p.reversed_at is None)


def logs(action: str) -> list[ActivityLog]:
    with new_session() as s:
        return list(s.exec(select(ActivityLog).where(ActivityLog.action == action)
                           .order_by(ActivityLog.created_at)).all())


def set_bank(user_id: uuid.UUID, bank: str | None, account: str | None,
             holder: str | None) -> None:
    with new_session() as s:
        user = s.get(User, user_id)
        user.bank_name, user.bank_account, user.bank_holder = bank, account, holder
        s.commit()
