"""Finance endpoints (``/api/finance/*``, ``/api/dashboard/stats``) and file-job status.

Thin, like the other routers: each route resolves the acting user from the session
cookie, calls :mod:`fibernode.services.finance` (figures) or
:mod:`fibernode.services.finance_files` (recaps, reports, settlements) and returns
their dataclasses through Pydantic models, so the API shows exactly the figures of the
dashboard and the finance pages. Refusals come back in the one error shape of
:mod:`fibernode.api.deps` (401 anonymous, 403 another owner, 422 bad input).
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from fibernode import clock
from fibernode.api.deps import request_actor
from fibernode.models import FileJobStatus, PaymentStatus
from fibernode.services import dashboard, filejobs, finance, finance_files
from fibernode.services.context import Actor, require_user
from fibernode.services.errors import ValidationFailed

router = APIRouter(prefix="/api", tags=["finance"])

SPOOL_BYTES = 8 * 1024 * 1024  # bigger recaps spill to a temporary file
DATE_MESSAGE = "Tanggal harus berformat TTTT-BB-HH (contoh: 2026-03-15)."


def user_actor(actor: Annotated[Actor, Depends(request_actor)]) -> Actor:
    """The logged-in caller; anonymous requests get 401 before any parameter check."""
    require_user(actor)
    return actor


ActorDep = Annotated[Actor, Depends(user_actor)]
OwnerQuery = Annotated[uuid.UUID | None, Query(description="Superadmin: satu pemilik saja")]
PageQuery = Annotated[int, Query(ge=1, le=1_000_000)]  # keeps the SQL OFFSET in a bigint
PerPageQuery = Annotated[int, Query(ge=1, le=100, description="Baris per halaman (1–100)")]


# --- response models -----------------------------------------------------------------------


class _Out(BaseModel):
    # Built from the services' dataclasses (properties included) by attribute.
    model_config = ConfigDict(from_attributes=True)


class TotalsOut(_Out):
    """Billed basis: the invoices of a period (or of a recap's due-date range)."""

    invoice_count: int
    billed: int
    paid: int
    unpaid: int
    paid_count: int = Field(description="Lunas")
    partial_count: int = Field(description="Dibayar sebagian")
    unpaid_count: int = Field(description="Belum lunas (termasuk sebagian)")
    collected_percent: float = Field(description="Terbayar / tagihan, 0–100")


class DueSoonOut(_Out):
    """An open invoice due today or tomorrow."""

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
    total_amount: int
    paid_amount: int
    remaining: int
    status: PaymentStatus
    overdue: bool


class SeriesPointOut(_Out):
    """One month of the dashboard charts (revenue line, subscriber growth bars)."""

    period: str
    revenue: int
    new_customers: int
    customers_total: int


class DashboardOut(_Out):
    """The dashboard's figures for the current month, its due list and 12-month series."""

    period: str
    active_customers: int
    isolated_customers: int
    invoice_count: int
    billed: int
    paid: int
    unpaid: int
    paid_count: int
    unpaid_count: int
    collected_percent: float
    overdue_count: int
    overdue_amount: int
    revenue: int = Field(description="Pendapatan (kas): pembayaran dicatat bulan ini "
                                     "dikurangi pembatalan bulan ini")
    due_soon: list[DueSoonOut]
    series: list[SeriesPointOut]


class SummaryOut(_Out):
    """A period's totals (billed basis), revenue (cash basis) and today's overdue figures."""

    period: str
    totals: TotalsOut
    revenue: int
    collected_percent: float
    overdue_count: int
    overdue_amount: int
    basis_note: str = finance.BASIS_NOTE


class DetailRowOut(_Out):
    """One invoice of a finance table."""

    invoice_id: uuid.UUID
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
    status_label: str
    paid_at: datetime | None
    recorded_by: str
    payment_method: str | None


class DetailPageOut(_Out):
    """One page of invoices."""

    items: list[DetailRowOut]
    total: int
    page: int
    per_page: int
    pages: int


class MonthDetailOut(_Out):
    """``by-period?period=``: the month's totals, revenue and one page of invoices."""

    kind: str = "month"
    period: str
    totals: TotalsOut
    revenue: int
    page: DetailPageOut


class MonthRowOut(_Out):
    """One month of a year."""

    period: str
    totals: TotalsOut
    revenue: int
    received: int
    reversed: int
    new_customers: int


class YearSummaryOut(_Out):
    """``by-period?year=``: twelve months and their sums."""

    kind: str = "year"
    year: int
    months: list[MonthRowOut]
    totals: TotalsOut
    revenue: int
    received: int
    reversed: int
    new_customers: int


class DateReportOut(_Out):
    """``by-date``: invoices due that day, that day's receipts, one page."""

    day: date
    due: TotalsOut
    received: int
    page: DetailPageOut


class MitraRowOut(_Out):
    """One owner side by side with the others."""

    owner_id: uuid.UUID
    business_name: str
    owner_name: str
    is_superadmin: bool
    active_customers: int
    isolated_customers: int
    totals: TotalsOut
    revenue: int
    overdue_count: int
    overdue_amount: int


class ByMitraOut(_Out):
    """``by-mitra``: every owner for a period."""

    period: str
    sort: str
    desc: bool
    rows: list[MitraRowOut]


class FileJobOut(_Out):
    """A background file job (recap, report, settlement) as a client polls it."""

    id: uuid.UUID
    kind: str
    status: FileJobStatus
    filename: str
    progress_done: int
    progress_total: int
    progress_percent: int
    is_running: bool
    is_ready: bool
    error: str | None
    created_by_name: str
    params: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    download_url: str | None = None
    status_url: str | None = None


def _job(view: filejobs.FileJobView) -> FileJobOut:
    out = FileJobOut.model_validate(view)
    out.status_url = f"/api/files/{view.id}/status"
    if view.is_ready:
        out.download_url = f"/api/files/{view.id}"
    return out


# --- request bodies ------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class RecapBody(_Body):
    """A recap of the invoices due from ``start`` to ``end`` (inclusive)."""

    start: str | None = None
    end: str | None = None
    format: str = "xlsx"
    owner_id: uuid.UUID | None = None


class ReportBody(_Body):
    """A report to build in the background.

    ``monthly_sales`` uses ``year``; ``package_popularity`` and ``mitra_performance``
    use ``period``; ``aging`` uses ``on`` (default today).
    """

    report: str
    format: str = "xlsx"
    period: str | None = None
    year: int | None = None
    on: str | None = None
    owner_id: uuid.UUID | None = None


class SettlementBody(_Body):
    """A mitra's settlement statement (DOCX) for a month."""

    owner_id: uuid.UUID
    period: str


# --- helpers -------------------------------------------------------------------------------


def _day(value: str | None, field: str) -> date | None:
    """A ``YYYY-MM-DD`` parameter, or a 422 naming the field."""
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed({field: DATE_MESSAGE}) from None


def _chunks(spool, size: int = 64 * 1024) -> Iterator[bytes]:
    try:
        spool.seek(0)
        while chunk := spool.read(size):
            yield chunk
    finally:
        spool.close()


# --- figures -------------------------------------------------------------------------------


@router.get("/dashboard/stats", response_model=DashboardOut)
def dashboard_stats(actor: ActorDep, owner_id: OwnerQuery = None) -> DashboardOut:
    """This month's headline figures, the invoices due today/tomorrow and 12-month series."""
    view = dashboard.overview(actor, owner_id)
    fields = {name: getattr(view.stats, name) for name in DashboardOut.model_fields
              if hasattr(view.stats, name)}
    return DashboardOut.model_validate({**fields, "due_soon": view.due_soon,
                                        "series": view.series})


@router.get("/finance/summary", response_model=SummaryOut)
def summary(actor: ActorDep, period: str | None = None,
            owner_id: OwnerQuery = None) -> SummaryOut:
    """A period's billed totals, its revenue and today's overdue figures (default: this month)."""
    h = finance.headline(actor, (period or "").strip() or None, owner_id)
    return SummaryOut(period=h.period, totals=TotalsOut.model_validate(h.totals),
                      revenue=h.revenue, collected_percent=h.totals.collected_percent,
                      overdue_count=h.overdue_count, overdue_amount=h.overdue_amount)


@router.get("/finance/by-period", response_model=MonthDetailOut | YearSummaryOut)
def by_period(actor: ActorDep, period: str | None = None,
              year: Annotated[str | None, Query(description="TTTT")] = None,
              owner_id: OwnerQuery = None, status: str | None = None, search: str = "",
              page: PageQuery = 1,
              per_page: PerPageQuery = finance.PAGE_SIZE) -> MonthDetailOut | YearSummaryOut:
    """One month or one year of figures; give exactly one of ``period`` and ``year``.

    ``period=YYYY-MM``: the month's totals, revenue and a page of its invoices
    (``finance.PAGE_SIZE`` a page, as in the UI);
    ``year=YYYY``: its twelve months and their sums.
    """
    period = (period or "").strip() or None
    year = (year or "").strip() or None
    if (period is None) == (year is None):
        raise ValidationFailed({"period": "Isi salah satu: periode (TTTT-BB) atau tahun (TTTT)."})
    if year is not None:
        if not (year.isdigit() and len(year) == 4):
            raise ValidationFailed({"year": "Tahun harus berupa 4 angka (contoh: 2026)."})
        return YearSummaryOut.model_validate(finance.year_summary(actor, int(year), owner_id))
    detail = finance.month_detail(actor, period, owner_id, page=page, status=status or None,
                                  search=search, per_page=per_page)
    return MonthDetailOut.model_validate(detail)


@router.get("/finance/by-date", response_model=DateReportOut)
def by_date(actor: ActorDep, day: Annotated[str | None, Query(alias="date")] = None,
            owner_id: OwnerQuery = None, status: str | None = None,
            page: PageQuery = 1, per_page: PerPageQuery = finance.PAGE_SIZE) -> DateReportOut:
    """Who is due on ``date`` (default today), who paid and who did not; that day's receipts."""
    on = _day(day, "date") or clock.today()
    return DateReportOut.model_validate(
        finance.by_date(actor, on, owner_id, page=page, status=status or None,
                        per_page=per_page))


@router.get("/finance/by-mitra", response_model=ByMitraOut)
def by_mitra(actor: ActorDep, period: str | None = None, sort: str = "business_name",
             desc: bool = False) -> ByMitraOut:
    """Every owner side by side for a period (superadmin only; default this month)."""
    period = (period or "").strip() or clock.current_period()
    rows = finance.by_mitra(actor, period, sort=sort, descending=desc)
    return ByMitraOut.model_validate({"period": period, "sort": sort, "desc": desc,
                                      "rows": rows})


# --- files ---------------------------------------------------------------------------------


@router.get("/finance/export")
def export_recap(actor: ActorDep, start: str | None = None, end: str | None = None,
                 format: str = "xlsx",  # noqa: A002 - the API's parameter name
                 owner_id: OwnerQuery = None) -> StreamingResponse:
    """The recap of invoices due from ``start`` to ``end`` as CSV or XLSX, built now.

    For API clients; the UI starts a background job instead (``POST export-jobs``).
    Every refusal (bad dates or format, another owner) comes before the first byte.
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


@router.post("/finance/export-jobs", status_code=202, response_model=FileJobOut)
def start_recap(actor: ActorDep, body: RecapBody) -> FileJobOut:
    """Start building a recap in the background; poll ``status_url``, then download."""
    first, last = finance_files.check_range(body.start, body.end)
    return _job(finance_files.start_recap(actor, start=first, end=last, fmt=body.format,
                                          owner_id=body.owner_id))


@router.post("/finance/reports", status_code=202, response_model=FileJobOut)
def start_report(actor: ActorDep, body: ReportBody) -> FileJobOut:
    """Start building a report (XLSX or PDF) in the background."""
    return _job(finance_files.start_report(
        actor, report=body.report, fmt=body.format, period=(body.period or "").strip() or None,
        year=body.year, on=_day(body.on, "on"), owner_id=body.owner_id))


@router.post("/finance/settlements", status_code=202, response_model=FileJobOut)
def start_settlement(actor: ActorDep, body: SettlementBody) -> FileJobOut:
    """Start building a mitra's settlement statement (DOCX) for a month."""
    return _job(finance_files.start_settlement(actor, owner_id=body.owner_id,
                                               period=body.period))


@router.get("/files/{job_id}/status", response_model=FileJobOut)
def file_job_status(job_id: uuid.UUID, actor: ActorDep) -> FileJobOut:
    """A background file job's progress (the creator's own, any for the superadmin)."""
    return _job(filejobs.get_file_job(actor, job_id))
