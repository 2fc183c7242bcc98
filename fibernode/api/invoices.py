"""Invoices (``/api/invoices``): list, detail with payments, pay / unpay, generate, export.

Thin: every route calls :mod:`fibernode.services.invoices` (scoping, optimistic
locking, ledger, audit, the WhatsApp receipt), :mod:`~.billing` (the manual run)
or :mod:`~.finance_files` (the recap file), as the UI does. Another owner's invoice
is 404; a stale ``version`` on pay / unpay is 409 ("refresh").
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import Field

from fibernode import clock
from fibernode.api.pagination import (
    ActorDep,
    Body,
    Out,
    PageOut,
    PageQuery,
    PerPageQuery,
    page_out,
)
from fibernode.models import PaymentMethod, PaymentStatus
from fibernode.services import billing, finance_files, invoices

router = APIRouter(prefix="/api/invoices", tags=["invoices"])
SPOOL_BYTES = 8 * 1024 * 1024  # bigger exports spill to a temporary file


class InvoiceOut(Out):
    """An invoice; pass ``version`` back to pay / unpay it."""

    id: uuid.UUID
    customer_id: uuid.UUID
    customer_name: str
    customer_phone: str
    owner_id: uuid.UUID
    area: str
    package_name: str
    package_speed: str
    period: str
    due_date: date
    amount: int
    discount: int
    total_amount: int
    paid_amount: int
    remaining: int
    status: PaymentStatus
    overdue: bool
    paid_at: datetime | None
    paid_by_name: str
    payment_method: str | None
    payment_note: str | None
    version: int
    receipt_token: str | None
    created_at: datetime
    receipt_url: str | None = None


class PaymentOut(Out):
    """One ledger row; reversed rows keep who reversed them and why."""

    id: uuid.UUID
    amount: int
    method: PaymentMethod
    note: str | None
    recorded_by_name: str
    recorded_at: datetime
    reversed_at: datetime | None
    reversed_by_name: str | None
    reversal_reason: str | None


class InvoiceDetailOut(InvoiceOut):
    """An invoice with its ledger, oldest payment first."""

    payments: list[PaymentOut]


class PayBody(Body):
    """A payment: ``amount`` omitted pays the whole remaining amount."""

    version: int = Field(description="Versi tagihan yang ditampilkan (optimistic lock)")
    method: PaymentMethod
    amount: int | None = None
    note: str = ""


class UnpayBody(Body):
    """Reverse every payment of the invoice (the ledger keeps them, marked reversed)."""

    version: int
    reason: str


class GenerateBody(Body):
    """A manual billing run: ``period`` defaults to next month, ``owner_id`` to all owners.

    ``dry_run: true`` only counts what would be created.
    """

    period: str | None = None
    owner_id: uuid.UUID | None = None
    dry_run: bool = False


class BillingRunOut(Out):
    """What the run did (or would do); repeating it never creates an invoice twice."""

    periods: list[str]
    created: int
    already_existed: int
    eligible: int
    skipped: dict[str, int]
    skipped_total: int
    owner_id: uuid.UUID | None
    dry_run: bool


def _out(view: invoices.InvoiceView, model: type[InvoiceOut] = InvoiceOut,
         **extra: Any) -> Any:
    out = model.model_validate({**{name: getattr(view, name)
                                   for name in InvoiceOut.model_fields
                                   if hasattr(view, name)}, **extra})
    if view.receipt_token:
        out.receipt_url = f"/api/receipt/{view.receipt_token}"
    return out


def _chunks(spool, size: int = 64 * 1024) -> Iterator[bytes]:
    try:
        spool.seek(0)
        while chunk := spool.read(size):
            yield chunk
    finally:
        spool.close()


@router.get("", response_model=PageOut[InvoiceOut])
def list_invoices(
    actor: ActorDep, page: PageQuery = 1, per_page: PerPageQuery = 20,
    period: str | None = None,
    status: Annotated[str | None, Query(description="unpaid, partial, paid, overdue")] = None,
    due_date: date | None = None, due_from: date | None = None, due_to: date | None = None,
    owner_id: uuid.UUID | None = None, customer_id: uuid.UUID | None = None,
    search: str = "",
) -> dict:
    """The caller's invoices (a mitra: its own), newest due date first."""
    result = invoices.list_invoices(
        actor, page=page, per_page=per_page, period=period, status=status,
        due_date=due_date, due_from=due_from, due_to=due_to, owner_id=owner_id,
        customer_id=customer_id, search=search)
    return page_out(result.items, total=result.total, page=result.page,
                    per_page=result.per_page, convert=_out)


@router.get("/export")
def export_invoices(actor: ActorDep, start: str | None = None, end: str | None = None,
                    format: str = "xlsx",  # noqa: A002 - the API's parameter name
                    owner_id: uuid.UUID | None = None) -> StreamingResponse:
    """The invoices due from ``start`` to ``end`` (≤ 366 days) as CSV or XLSX.

    The same file as the finance recap: a mitra gets its own invoices, the superadmin
    every owner's or ``owner_id``'s. Every refusal comes before the first byte.
    """
    first, last = finance_files.check_range(start, end)
    fmt = (format or "").strip().lower()
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed by _chunks
    try:
        finance_files.write_recap(actor, spool, start=first, end=last, fmt=fmt,
                                  owner_id=owner_id)
    except BaseException:
        spool.close()
        raise
    filename = finance_files.recap_filename(first, last, fmt)
    return StreamingResponse(
        _chunks(spool), media_type=finance_files.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"',
                 "Cache-Control": "no-store"})


@router.post("/generate", response_model=BillingRunOut)
def generate_invoices(actor: ActorDep, body: GenerateBody | None = None) -> BillingRunOut:
    """Create a period's invoices now (superadmin; all owners or one).

    Idempotent: invoices that exist already are counted in ``already_existed``
    and left as they are, so a repeated run answers 200 with ``created: 0``.
    """
    body = body or GenerateBody()
    period = (body.period or "").strip() or clock.shift_period(clock.current_period(), 1)
    run = billing.preview_billing if body.dry_run else billing.run_billing
    result = run(actor, period=period, owner_id=body.owner_id)
    return BillingRunOut.model_validate(
        {"periods": list(result.periods), "created": result.created,
         "already_existed": result.already_existed, "eligible": result.eligible,
         "skipped": dict(result.skipped), "skipped_total": result.skipped_total,
         "owner_id": result.owner_id, "dry_run": result.dry_run})


@router.get("/{invoice_id}", response_model=InvoiceDetailOut)
def get_invoice(invoice_id: uuid.UUID, actor: ActorDep) -> InvoiceDetailOut:
    """One invoice with its payments (another owner's: 404)."""
    view = invoices.get_invoice(actor, invoice_id)
    payments = [PaymentOut.model_validate(p) for p in invoices.list_payments(actor, invoice_id)]
    return _out(view, InvoiceDetailOut, payments=payments)


@router.patch("/{invoice_id}/pay", response_model=InvoiceOut)
def pay_invoice(invoice_id: uuid.UUID, actor: ActorDep, body: PayBody) -> InvoiceOut:
    """Record a payment (full, or partial with ``amount``); 409 on a stale ``version``."""
    return _out(invoices.pay_invoice(actor, invoice_id, version=body.version,
                                     method=body.method, amount=body.amount, note=body.note))


@router.patch("/{invoice_id}/unpay", response_model=InvoiceOut)
def unpay_invoice(invoice_id: uuid.UUID, actor: ActorDep, body: UnpayBody) -> InvoiceOut:
    """Reverse the invoice's payments (``reason`` required); 409 on a stale ``version``."""
    return _out(invoices.unpay_invoice(actor, invoice_id, version=body.version,
                                       reason=body.reason))
