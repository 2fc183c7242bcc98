"""Subscribers (``/api/customers``): list, CRUD, isolate, CSV import and export.

Thin: every route calls :mod:`fibernode.services.customers`, :mod:`~.history`,
:mod:`~.imports` or :mod:`~.exports`, which check roles and scope, validate and
audit exactly as the UI does. Another owner's subscriber is 404 for a mitra.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from fibernode.api.deps import request_actor, single_change
from fibernode.api.pagination import (
    ActorDep,
    Body,
    Out,
    PageOut,
    PageQuery,
    PerPageQuery,
    from_page,
    page_out,
)
from fibernode.models import (
    CustomerStatus,
    ImportRowOutcome,
    ImportStatus,
    PaymentMethod,
    PaymentStatus,
)
from fibernode.services import customers, exports, history, imports
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.errors import ValidationFailed

router = APIRouter(prefix="/api", tags=["customers"])
MEDIA = {"csv": "text/csv; charset=utf-8",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
SPOOL_BYTES = 8 * 1024 * 1024  # bigger exports spill to a temporary file


def _uuid(value: str | None, field: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationFailed({field: "ID tidak valid."}) from None


def _chunks(spool, size: int = 64 * 1024) -> Iterator[bytes]:
    try:
        spool.seek(0)
        while chunk := spool.read(size):
            yield chunk
    finally:
        spool.close()


@router.get("/customers/export")
def export_customers(
    actor: Annotated[Actor, Depends(request_actor)],
    format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "csv",  # noqa: A002 - API name
    search: str = "",
    status: str | None = None,
    package_id: str | None = None,
    owner_id: str | None = None,
    billing_date: Annotated[int | None, Query(ge=1, le=28)] = None,
    sort: str = "name",
) -> StreamingResponse:
    """Subscribers of the given filter as CSV or XLSX (superadmin only)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed by _chunks
    try:
        exports.export_customers(
            actor, format, spool, search=search, status=status or None,
            package_id=_uuid(package_id, "package_id"), owner_id=_uuid(owner_id, "owner_id"),
            billing_date=billing_date, sort=sort)
    except BaseException:
        spool.close()
        raise
    filename = exports.export_filename(format)
    return StreamingResponse(
        _chunks(spool), media_type=MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"',
                 "Cache-Control": "no-store"})


@router.get("/imports/{job_id}/errors.csv")
def import_error_report(job_id: uuid.UUID,
                        actor: Annotated[Actor, Depends(request_actor)]) -> Response:
    """The rows of an import that were not imported, with the reason (superadmin only)."""
    data = imports.error_report_csv(actor, job_id)
    return Response(data, media_type=MEDIA["csv"],
                    headers={"Content-Disposition": 'attachment; filename="impor-error.csv"',
                             "Cache-Control": "no-store"})


# --- the subscriber REST API (after /customers/export, which {customer_id} would shadow) ---


class CustomerOut(Out):
    """A subscriber; ``nik`` is the plain NIK for the superadmin's detail view only."""

    id: uuid.UUID
    owner_id: uuid.UUID
    area: str
    package_id: uuid.UUID
    package_name: str
    package_speed: str
    package_price: int
    name: str
    phone: str
    nik_masked: str
    nik: str | None
    address: str
    billing_date: int
    discount: int
    total_bill: int
    status: CustomerStatus
    register_date: date
    notes: str
    created_at: datetime
    updated_at: datetime


class CustomerCreate(Body):
    """A new subscriber; a mitra always creates its own (``owner_id`` only for the superadmin)."""

    name: str
    phone: str
    package_id: uuid.UUID
    billing_date: int
    discount: int = 0
    nik: str | None = None
    address: str | None = None
    notes: str | None = None
    owner_id: uuid.UUID | None = None
    register_date: date | None = None


class CustomerUpdate(Body):
    """Fields to change; omitted ones stay.

    A mitra may send only ``phone`` and ``discount`` (anything else: 403). The
    superadmin may change every field; ``owner_id`` moves the subscriber to another
    owner and ``inactive`` stops (or resumes) its billing.
    """

    name: str | None = None
    phone: str | None = None
    package_id: uuid.UUID | None = None
    billing_date: int | None = None
    discount: int | None = None
    nik: str | None = None
    address: str | None = None
    notes: str | None = None
    register_date: date | None = None
    owner_id: uuid.UUID | None = None
    inactive: bool | None = None


class IsolateBody(Body):
    """Isolate (cut off, ``reason`` required) or restore a subscriber."""

    isolated: bool
    reason: str = ""


class IsolateOut(Out):
    """The subscriber after the toggle, and whether its status changed."""

    changed: bool
    customer: CustomerOut


class InvoiceLineOut(Out):
    """One invoice of the subscriber."""

    id: uuid.UUID
    period: str
    due_date: date
    total_amount: int
    paid_amount: int
    status: PaymentStatus
    paid_at: datetime | None
    paid_by: str


class PaymentLineOut(Out):
    """One ledger row of the subscriber (reversed ones included)."""

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


class MessageLineOut(Out):
    """One WhatsApp message to the subscriber."""

    id: uuid.UUID
    message_type: str
    phone: str
    status: str
    error_message: str
    sent_at: datetime
    preview: str


class HistoryOut(Out):
    """The newest invoices, payments and messages of a subscriber."""

    invoices: list[InvoiceLineOut]
    payments: list[PaymentLineOut]
    messages: list[MessageLineOut]


class ImportRowOut(Out):
    """One data line of an uploaded CSV with its outcome and reasons."""

    line_no: int
    name: str
    phone: str
    area: str
    package: str
    total: int | None
    outcome: ImportRowOutcome
    problems: list[str]


class ImportJobSummaryOut(Out):
    """An import in the list of recent imports: counts and state, without its rows."""

    id: uuid.UUID
    filename: str
    status: ImportStatus
    created_by_name: str
    total_rows: int
    valid_rows: int
    invalid_rows: int
    imported_rows: int
    skipped_rows: int
    progress_done: int
    progress_total: int
    progress_percent: int
    is_running: bool
    can_confirm: bool
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    status_url: str | None = None

    @classmethod
    def of(cls, view: imports.ImportJobView) -> ImportJobSummaryOut:
        """The summary of one import, with the URL of its full view."""
        out = cls.model_validate(view)
        out.status_url = f"/api/customers/import/{view.id}"
        return out


class ImportJobOut(ImportJobSummaryOut):
    """An import: counts, progress and one page of its rows (``rows``)."""

    rows: list[ImportRowOut]
    page: int
    per_page: int
    pages: int
    row_count: int
    outcome_filter: ImportRowOutcome | None
    confirm_url: str | None = None
    error_report_url: str | None = None


def _import_out(view: imports.ImportJobView) -> ImportJobOut:
    out = ImportJobOut.of(view)
    if view.can_confirm:
        out.confirm_url = f"/api/customers/import/{view.id}/confirm"
    if view.invalid_rows or view.skipped_rows:
        out.error_report_url = f"/api/imports/{view.id}/errors.csv"
    return out


@router.get("/customers", response_model=PageOut[CustomerOut])
def list_customers(
    actor: ActorDep, page: PageQuery = 1, per_page: PerPageQuery = 20, search: str = "",
    status: str | None = None, package_id: uuid.UUID | None = None,
    owner_id: uuid.UUID | None = None,
    billing_date: Annotated[int | None, Query(ge=1, le=28)] = None, sort: str = "name",
) -> dict:
    """The caller's subscribers (a mitra: its own), filtered and sorted.

    ``sort``: ``name``, ``billing_date``, ``register_date``, ``total_bill`` or
    ``created_at``, with a leading ``-`` for descending.
    """
    return from_page(customers.list_customers(
        actor, page=page, per_page=per_page, search=search, status=status or None,
        package_id=package_id, owner_id=owner_id, billing_date=billing_date, sort=sort),
        CustomerOut)


@router.post("/customers", status_code=201, response_model=CustomerOut)
def create_customer(actor: ActorDep, body: CustomerCreate) -> CustomerOut:
    """Add a subscriber (superadmin: for any active owner; mitra: its own)."""
    customer_id = customers.create_customer(actor, **body.model_dump())
    return CustomerOut.model_validate(customers.get_customer(actor, customer_id))


@router.post("/customers/import", status_code=201, response_model=ImportJobOut)
async def upload_import(actor: ActorDep, file: Annotated[UploadFile, File()]) -> ImportJobOut:
    """Upload a subscriber CSV (multipart ``file``, ≤ 5 MB; superadmin only).

    Nothing is imported yet: the answer is the preview (status ``previewed`` with
    valid/invalid counts and the first page of rows), or ``validating`` for large
    files (poll ``status_url``). Then ``POST …/{job_id}/confirm`` imports the valid
    rows.
    """
    require_superadmin(actor)  # before reading a mitra's upload at all
    content = await file.read(imports.MAX_FILE_BYTES + 1)  # one byte over: refused, not cut
    view = await run_in_threadpool(imports.upload_import, actor,
                                   file.filename or "pelanggan.csv", content)
    return _import_out(view)


@router.get("/customers/import", response_model=PageOut[ImportJobSummaryOut])
def list_imports(actor: ActorDep, page: PageQuery = 1, per_page: PerPageQuery = 20) -> dict:
    """Recent subscriber imports, newest first (superadmin only)."""
    jobs = imports.list_imports(actor, page=page, per_page=per_page)
    return page_out(jobs.items, total=jobs.total, page=jobs.page, per_page=jobs.per_page,
                    convert=ImportJobSummaryOut.of)


@router.get("/customers/import/{job_id}", response_model=ImportJobOut)
def get_import(job_id: uuid.UUID, actor: ActorDep, page: PageQuery = 1,
               outcome: str | None = None) -> ImportJobOut:
    """An import's status, counts and one page of rows (``outcome`` filters the rows)."""
    return _import_out(imports.get_import(actor, job_id, page=page, outcome=outcome or None))


@router.post("/customers/import/{job_id}/confirm", response_model=ImportJobOut)
def confirm_import(job_id: uuid.UUID, actor: ActorDep) -> ImportJobOut:
    """Import the valid rows of a previewed import (409 when confirmed already)."""
    return _import_out(imports.confirm_import(actor, job_id))


@router.post("/customers/import/{job_id}/cancel", response_model=ImportJobOut)
def cancel_import(job_id: uuid.UUID, actor: ActorDep) -> ImportJobOut:
    """Abandon an import that was not confirmed."""
    return _import_out(imports.cancel_import(actor, job_id))


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def get_customer(customer_id: uuid.UUID, actor: ActorDep) -> CustomerOut:
    """One subscriber (another owner's: 404)."""
    return CustomerOut.model_validate(customers.get_customer(actor, customer_id))


@router.get("/customers/{customer_id}/history", response_model=HistoryOut)
def customer_history(customer_id: uuid.UUID, actor: ActorDep) -> HistoryOut:
    """The subscriber's newest invoices, payments and WhatsApp messages."""
    return HistoryOut.model_validate(history.customer_history(actor, customer_id))


@router.patch("/customers/{customer_id}", response_model=CustomerOut)
def update_customer(customer_id: uuid.UUID, actor: ActorDep,
                    body: CustomerUpdate) -> CustomerOut:
    """Change a subscriber (mitra: only ``phone`` and ``discount``).

    Data, a move to another owner and stopping billing are separate use cases:
    one of them per request (422 otherwise), so nothing is half applied.
    """
    given = body.model_dump(exclude_unset=True)
    single_change(given, {"data pelanggan": given.keys() - {"owner_id", "inactive"},
                          "pemilik": {"owner_id"}, "status berlangganan": {"inactive"}})
    new_owner = given.pop("owner_id", None)
    inactive = given.pop("inactive", None)
    if given:
        customers.update_customer(actor, customer_id, **given)
    if new_owner is not None:
        customers.move_customers(actor, [customer_id], new_owner)
    if inactive is not None:
        customers.set_inactive(actor, customer_id, inactive)
    return CustomerOut.model_validate(customers.get_customer(actor, customer_id))


@router.delete("/customers/{customer_id}", status_code=204)
def delete_customer(customer_id: uuid.UUID, actor: ActorDep) -> Response:
    """Delete a subscriber with its invoices (superadmin only)."""
    customers.delete_customer(actor, customer_id)
    return Response(status_code=204)


@router.patch("/customers/{customer_id}/isolate", response_model=IsolateOut)
def isolate_customer(customer_id: uuid.UUID, actor: ActorDep, body: IsolateBody) -> IsolateOut:
    """Isolate (``reason`` required; the owner's number sends the isolir notice) or restore."""
    changed = customers.set_isolated(actor, customer_id, body.isolated, body.reason)
    return IsolateOut(changed=changed, customer=CustomerOut.model_validate(
        customers.get_customer(actor, customer_id)))
