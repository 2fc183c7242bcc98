"""A subscriber's invoice and WhatsApp history, newest first and tenant-scoped."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import Invoice, Payment, PaymentMethod, PaymentStatus, WaMessageLog
from fibernode.services import history
from fibernode.services.errors import NotFound


def _add_invoice(customer, period: str, status=PaymentStatus.UNPAID, paid_by=None) -> None:
    with new_session() as s:
        s.add(Invoice(customer_id=customer.id, owner_id=customer.owner_id, period=period,
                      amount=customer.total_bill, total_amount=customer.total_bill,
                      paid_amount=customer.total_bill if status == PaymentStatus.PAID else 0,
                      status=status, paid_by=paid_by,
                      paid_at=clock.now() if paid_by else None,
                      due_date=date(2026, int(period[5:]), customer.billing_date)))
        s.commit()


def _invoices(customer) -> list[Invoice]:
    with new_session() as s:
        return list(s.exec(select(Invoice).where(Invoice.customer_id == customer.id)).all())


def test_history_lists_invoices_newest_first_with_payer(world):
    customer = world.customers_of(world.mitra_a)[0]
    _add_invoice(customer, "2026-10", PaymentStatus.PAID, paid_by=world.mitra_a.user_id)
    _add_invoice(customer, "2026-11")
    with new_session() as s:
        s.add(WaMessageLog(customer_id=customer.id, message_type="receipt",
                           phone=customer.phone, content="Terima kasih  atas\npembayaran",
                           status="sent"))
        s.commit()

    paid = next(i for i in _invoices(customer) if i.status == PaymentStatus.PAID)
    with new_session() as s:
        s.add(Payment(invoice_id=paid.id, owner_id=customer.owner_id, amount=paid.total_amount,
                      method=PaymentMethod.CASH, recorded_by=world.mitra_a.user_id,
                      reversed_at=clock.now(), reversed_by=world.admin.user_id,
                      reversal_reason="salah catat"))
        s.commit()

    h = history.customer_history(world.mitra_a, customer.id)

    assert [i.period for i in h.invoices] == ["2026-11", "2026-10"]
    assert h.invoices[1].paid_by == "Budi Santoso"
    assert h.invoices[0].paid_by == ""
    assert [m.preview for m in h.messages] == ["Terima kasih atas pembayaran"]
    [payment] = h.payments
    assert (payment.period, payment.recorded_by, payment.reversal_reason) == (
        "2026-10", "Budi Santoso", "salah catat")


def test_history_of_another_mitras_subscriber_is_not_found(world):
    customer = world.customers_of(world.mitra_a)[0]
    with pytest.raises(NotFound):
        history.customer_history(world.mitra_b, customer.id)
    assert history.customer_history(world.admin, customer.id).invoices == []
