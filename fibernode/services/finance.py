"""Finance figures: period totals, month/year/date views, per-owner comparison, series, aging.

Two bases, named the same everywhere (UI tooltips say so):

* **billed** (``tagihan``): the invoices *of a period* (``invoices.period``), with
  ``paid`` = what has been received against them (``paid_amount``, the ledger total
  of their non-reversed payments) and ``unpaid`` = billed − paid.
* **revenue** (``pendapatan``): money recorded in the payments ledger *during* a
  Jakarta calendar month (``payments.recorded_at``), less payments reversed during
  that month (``payments.reversed_at``) — cash basis; a later reversal lowers the
  month it happens in, never a month already reported.

Every aggregate is computed in SQL (GROUP BY, FILTER, window functions); nothing
loads rows into Python to add them up. Every read is scoped to the actor through
:func:`fibernode.services.scoping.scoped`: a mitra sees only their own figures and
naming another owner raises :class:`PermissionDenied`; the superadmin sees every
owner or narrows to one with ``owner_id``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import (
    Customer,
    CustomerStatus,
    Invoice,
    Package,
    Payment,
    PaymentStatus,
    RevenueMonth,
    User,
    UserRole,
)
from fibernode.services import revenue_months, settings
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.customers import name_or_phone_matches
from fibernode.services.errors import NotFound, ValidationFailed
from fibernode.services.paging import Page, check_per_page
from fibernode.services.scoping import check_owner_filter, scoped
from fibernode.services.validation import PERIOD_RE

PAGE_SIZE = 20
SERIES_MONTHS = 12
# Aging buckets by days past the due date (Jakarta) of invoices not fully paid.
AGING_BUCKETS = ("Belum jatuh tempo", "1–30 hari", "31–60 hari", "61–90 hari", "> 90 hari")
MITRA_SORTS = ("business_name", "customers", "billed", "paid", "outstanding", "rate",
               "revenue", "overdue")
STATUS_LABELS = {
    PaymentStatus.PAID: "Lunas",
    PaymentStatus.PARTIAL: "Sebagian",
    PaymentStatus.UNPAID: "Belum Bayar",
}
BASIS_NOTE = ("Tagihan = total tagihan periode tersebut; terbayar = yang sudah diterima "
              "untuk tagihan itu. Pendapatan = uang yang dicatat pada bulan tersebut menurut "
              "buku pembayaran, dikurangi pembatalan pada bulan yang sama.")


@dataclass(frozen=True)
class PeriodTotals:
    """Billed-basis totals of one period (or of a due-date range for the recap).

    ``paid_count`` = fully paid invoices, ``partial_count`` = partly paid,
    ``unpaid_count`` = not fully paid (partial included), so
    ``paid_count + unpaid_count == invoice_count``.
    """

    invoice_count: int
    billed: int
    paid: int
    unpaid: int
    paid_count: int
    partial_count: int
    unpaid_count: int

    @property
    def collected_percent(self) -> float:
        """Share of the billed amount already paid, 0–100, one decimal."""
        return round(self.paid * 100 / self.billed, 1) if self.billed else 0.0


@dataclass(frozen=True)
class MonthRow:
    """One month of a year summary (the ``/finance`` year tab, monthly sales report)."""

    period: str  # YYYY-MM
    totals: PeriodTotals  # billed basis: the invoices of this period
    revenue: int  # cash basis: ledger payments of this month less this month's reversals
    received: int  # ledger payments recorded this month (before reversals)
    reversed: int  # ledger payments reversed this month
    new_customers: int  # subscribers registered this month (register_date)


@dataclass(frozen=True)
class YearSummary:
    """Twelve :class:`MonthRow` (January–December) and their sums."""

    year: int
    months: list[MonthRow]
    totals: PeriodTotals
    revenue: int
    received: int
    reversed: int
    new_customers: int


@dataclass(frozen=True)
class SeriesPoint:
    """One month of the dashboard charts (revenue line, subscriber growth bars)."""

    period: str  # YYYY-MM
    revenue: int  # cash basis, as MonthRow.revenue
    new_customers: int  # registered this month
    customers_total: int  # registered up to the end of this month (running total)


@dataclass(frozen=True)
class DetailRow:
    """One invoice in a finance table (spec "Tabel Detail Tagihan") or the recap."""

    invoice_id: uuid.UUID
    customer_id: uuid.UUID
    customer_name: str
    customer_phone: str
    owner_id: uuid.UUID
    area: str  # owner's business name
    package_name: str
    package_speed: str
    period: str
    due_date: date
    amount: int  # package price at billing time
    discount: int
    total_amount: int
    paid_amount: int
    remaining: int
    status: PaymentStatus
    paid_at: datetime | None
    recorded_by: str  # name of who recorded the (last) payment, "" if none
    payment_method: str | None

    @property
    def status_label(self) -> str:
        """``Lunas`` / ``Sebagian`` / ``Belum Bayar``."""
        return STATUS_LABELS.get(self.status, str(self.status))


@dataclass(frozen=True)
class MonthDetail:
    """The ``/finance`` month tab: totals of the period, its revenue, a page of invoices."""

    period: str
    totals: PeriodTotals
    revenue: int
    page: Page[DetailRow]


@dataclass(frozen=True)
class DateReport:
    """The ``/finance`` date tab: invoices due that day, split paid / not paid.

    ``received`` is what the ledger recorded on that (Jakarta) day, for any invoice,
    less reversals that day.
    """

    day: date
    due: PeriodTotals
    received: int
    page: Page[DetailRow]  # filtered by ``status`` (paid / unpaid / all)


@dataclass(frozen=True)
class MitraRow:
    """One owner side by side with the others (``/admin/finance``, mitra performance)."""

    owner_id: uuid.UUID
    business_name: str
    owner_name: str
    is_superadmin: bool
    active_customers: int
    isolated_customers: int
    totals: PeriodTotals  # the period's invoices of this owner
    revenue: int  # this owner's cash-basis revenue in the period's month
    overdue_count: int  # as of today: due date passed, not fully paid (any period)
    overdue_amount: int


@dataclass(frozen=True)
class PackageRow:
    """Package popularity: subscribers on a package and what it billed in a period."""

    package_id: uuid.UUID
    name: str
    speed: str
    price: int
    active_customers: int
    customers: int  # every status
    share_percent: float  # of active subscribers in scope, 0–100
    totals: PeriodTotals  # the period's invoices of subscribers on this package


@dataclass(frozen=True)
class AgingRow:
    """Open invoices of one owner by days overdue; ``counts``/``amounts`` follow AGING_BUCKETS.

    Amounts are what is still owed (total − paid).
    """

    owner_id: uuid.UUID
    business_name: str
    counts: tuple[int, int, int, int, int]
    amounts: tuple[int, int, int, int, int]

    @property
    def total_count(self) -> int:
        """Open invoices over all buckets."""
        return sum(self.counts)

    @property
    def total_amount(self) -> int:
        """Owed over all buckets."""
        return sum(self.amounts)


@dataclass(frozen=True)
class AgingReport:
    """Aging as of a day, per owner plus the sums."""

    on: date
    rows: list[AgingRow]
    counts: tuple[int, int, int, int, int]
    amounts: tuple[int, int, int, int, int]


@dataclass(frozen=True)
class SettlementLine:
    """One ledger payment in a settlement statement (reversed ones are listed apart)."""

    payment_id: uuid.UUID
    customer_name: str
    period: str  # the invoice's period
    package: str  # "name (speed)"
    amount: int
    method: str
    recorded_at: datetime
    recorded_by: str
    reversed_at: datetime | None


@dataclass(frozen=True)
class Settlement:
    """A mitra's monthly settlement statement (the DOCX): who, what was collected, lines.

    ``collected`` = ``received`` − ``reversed`` = the owner's revenue of the month.
    """

    period: str
    company_name: str  # app_name setting
    admin_name: str  # the superadmin signing for the company
    owner_id: uuid.UUID
    business_name: str
    owner_name: str
    owner_phone: str | None
    bank_name: str | None
    bank_account: str | None
    bank_holder: str | None
    received: int
    reversed: int
    collected: int
    lines: list[SettlementLine]  # payments recorded in the month
    reversals: list[SettlementLine]  # payments reversed in the month


STATUS_FILTERS = ("paid", "unpaid")  # unpaid = not fully paid (partly paid included)
RECAP_MAX_DAYS = 366
MAX_SERIES_MONTHS = 36
YEAR_MIN, YEAR_MAX = 2000, 2100

PERIOD_MESSAGE = "Periode harus berformat TTTT-BB (contoh: 2026-03)."
STATUS_MESSAGE = "Status tidak dikenal; pilih lunas (paid) atau belum lunas (unpaid)."
YEAR_MESSAGE = f"Tahun harus antara {YEAR_MIN} dan {YEAR_MAX}."
DATE_MESSAGE = "Tanggal tidak valid."
RANGE_ORDER_MESSAGE = "Tanggal akhir tidak boleh sebelum tanggal mulai."
RANGE_LENGTH_MESSAGE = f"Rentang tanggal paling lama {RECAP_MAX_DAYS} hari."
SORT_MESSAGE = "Urutan tidak dikenal."
MONTHS_MESSAGE = f"Jumlah bulan harus antara 1 dan {MAX_SERIES_MONTHS}."
OWNER_NOT_FOUND_MESSAGE = "Mitra tidak ditemukan."

_payer = aliased(User, name="payer")
_owner = aliased(User, name="owner")
_recorder = aliased(User, name="recorder")


@dataclass(frozen=True)
class Headline:
    """The dashboard's headline figures of one period, read in one statement.

    ``totals`` are the period's invoices (billed basis); ``revenue`` the month's
    ledger (cash basis); ``overdue_*`` every period's open invoices due before
    ``today``.
    """

    period: str
    today: date
    active_customers: int
    isolated_customers: int
    totals: PeriodTotals
    overdue_count: int
    overdue_amount: int
    received: int
    reversed: int

    @property
    def revenue(self) -> int:
        """Cash-basis revenue of the month: received less reversed."""
        return self.received - self.reversed


# --- validation, scope and time --------------------------------------------------------------


def check_period(period: Any, field: str = "period") -> str:
    """A ``YYYY-MM`` period (surrounding spaces dropped) in the supported years.

    Raises:
        ValidationFailed: anything else, under ``field``.
    """
    if not isinstance(period, str) or not PERIOD_RE.match(period.strip()):
        raise ValidationFailed({field: PERIOD_MESSAGE})
    period = period.strip()
    if not YEAR_MIN <= int(period[:4]) <= YEAR_MAX:
        raise ValidationFailed({field: PERIOD_MESSAGE})
    return period


def _check_status(status: str | None) -> str | None:
    status = (status or "").strip() or None
    if status is not None and status not in STATUS_FILTERS:
        raise ValidationFailed({"status": STATUS_MESSAGE})
    return status


def _check_day(day: Any, field: str) -> date:
    # A datetime is a date too, but would compare oddly with DATE columns.
    if not isinstance(day, date) or isinstance(day, datetime):
        raise ValidationFailed({field: DATE_MESSAGE})
    return day


def _check_range(start: Any, end: Any) -> None:
    _check_day(start, "start")
    _check_day(end, "end")
    if end < start:
        raise ValidationFailed({"end": RANGE_ORDER_MESSAGE})
    if (end - start).days + 1 > RECAP_MAX_DAYS:
        raise ValidationFailed({"end": RANGE_LENGTH_MESSAGE})


def _page_number(page: Any) -> int:
    try:
        return max(1, int(page or 1))
    except (TypeError, ValueError):
        return 1


# --- SQL pieces (shared with the dashboard) ----------------------------------------------------


def _totals_exprs() -> list[Any]:
    """Billed-basis aggregates over ``invoices``, in :class:`PeriodTotals` order (5 values).

    ``count(*)`` (not of a column) so an index holding the amounts is enough to answer.
    """
    full = Invoice.paid_amount >= Invoice.total_amount
    return [
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(Invoice.total_amount), 0),
        sa.func.coalesce(sa.func.sum(Invoice.paid_amount), 0),
        sa.func.count().filter(full),
        sa.func.count().filter(sa.and_(Invoice.paid_amount > 0, sa.not_(full))),
    ]


_TOTALS_NAMES = ("invoice_count", "billed", "paid", "paid_count", "partial_count")


def _totals_columns() -> list[Any]:
    return [e.label(n) for e, n in zip(_totals_exprs(), _TOTALS_NAMES, strict=True)]


def _to_totals(values: Any) -> PeriodTotals:
    """A :class:`PeriodTotals` from the five values of :func:`_totals_exprs` (None = 0)."""
    count, billed, paid, paid_count, partial_count = (int(v or 0) for v in values)
    return PeriodTotals(invoice_count=count, billed=billed, paid=paid, unpaid=billed - paid,
                        paid_count=paid_count, partial_count=partial_count,
                        unpaid_count=count - paid_count)


def _narrow(stmt: Any, actor: Actor, owner_id: uuid.UUID | None, owner_col: Any) -> Any:
    stmt = scoped(stmt, actor, owner_col)
    return stmt if owner_id is None else stmt.where(owner_col == owner_id)


def _invoice_totals(actor: Actor, owner_id: uuid.UUID | None, *conds: Any) -> Any:
    """One row of billed-basis totals of the invoices matching ``conds``."""
    return _narrow(select(*_totals_columns()).select_from(Invoice).where(*conds),
                   actor, owner_id, Invoice.owner_id)


def _ledger_sum(actor: Actor, owner_id: uuid.UUID | None, column: Any, start: datetime,
                end: datetime) -> Any:
    """Σ payments.amount with ``column`` (recorded_at / reversed_at) in ``[start, end)``."""
    return _narrow(select(sa.func.coalesce(sa.func.sum(Payment.amount), 0))
                   .where(column >= start, column < end), actor, owner_id, Payment.owner_id)


def _ledger_columns(actor: Actor, owner_id: uuid.UUID | None, start: datetime,
                    end: datetime) -> list[Any]:
    """``received`` and ``reversed`` of ``[start, end)`` as two scalar subqueries."""
    return [
        _ledger_sum(actor, owner_id, Payment.recorded_at, start, end)
        .scalar_subquery().label("received"),
        _ledger_sum(actor, owner_id, Payment.reversed_at, start, end)
        .scalar_subquery().label("reversed"),
    ]


def _customer_counts(actor: Actor, owner_id: uuid.UUID | None) -> Any:
    return _narrow(
        select(sa.func.count().filter(Customer.status == CustomerStatus.ACTIVE)
               .label("active_customers"),
               sa.func.count().filter(Customer.status == CustomerStatus.ISOLATED)
               .label("isolated_customers"))
        .select_from(Customer),
        actor, owner_id, Customer.owner_id)


def _open() -> Any:
    """Not fully paid (the predicate of the partial index ``idx_invoices_open_due``)."""
    return Invoice.paid_amount < Invoice.total_amount


def _overdue_totals(actor: Actor, owner_id: uuid.UUID | None, today: date) -> Any:
    return _narrow(
        select(sa.func.count().label("overdue_count"),
               sa.func.coalesce(sa.func.sum(Invoice.total_amount - Invoice.paid_amount), 0)
               .label("overdue_amount"))
        .select_from(Invoice).where(Invoice.due_date < today, _open()),
        actor, owner_id, Invoice.owner_id)


def _cross(*subqueries: Any) -> Any:
    """``a JOIN b ON true JOIN …``: one-row subqueries side by side in one statement."""
    joined = subqueries[0]
    for sub in subqueries[1:]:
        joined = joined.join(sub, sa.true())
    return joined


def _bucket(column: Any, bounds: list[Any], before: int | None = None) -> Any:
    """Index ``i`` of the interval ``[bounds[i], bounds[i+1])`` holding ``column``.

    Rows must be filtered to ``column < bounds[-1]`` (and ``>= bounds[0]`` unless
    ``before`` is given, the bucket for everything earlier).
    """
    whens = [(column < bounds[0], before)] if before is not None else []
    whens += [(column < bounds[i + 1], i) for i in range(len(bounds) - 1)]
    return sa.case(*whens, else_=len(bounds) - 1)


def _billed_by_period(s: Any, actor: Actor, owner_id: uuid.UUID | None, first: str,
                      last: str) -> tuple[dict[str, PeriodTotals], PeriodTotals]:
    """Totals per period from ``first`` to ``last``, and over all of them (a window sum)."""
    exprs = _totals_exprs()
    q = _narrow(select(Invoice.period, *exprs, *[sa.func.sum(e).over() for e in exprs])
                .where(Invoice.period >= first, Invoice.period <= last)
                .group_by(Invoice.period),
                actor, owner_id, Invoice.owner_id)
    per: dict[str, PeriodTotals] = {}
    overall = _to_totals((0,) * 5)
    for row in s.exec(q).all():
        per[row[0]] = _to_totals(row[1:6])
        overall = _to_totals(row[6:11])
    return per, overall


def _ledger_by_month(s: Any, actor: Actor, owner_id: uuid.UUID | None, periods: list[str],
                     known: dict[str, tuple[int, int]] | None = None,
                     ) -> tuple[dict[int, int], dict[int, int], int, int]:
    """Payments received and reversed per month of ``periods`` (ascending, contiguous).

    Months up to the rollup's watermark are read from ``revenue_months`` (a few rows
    per owner); the later ones, usually only the running month, from the ledger in
    one statement: receipts (``recorded_at``) and reversals (``reversed_at``, a small
    partial index) side by side in a ``UNION ALL``, bucketed by Jakarta month.

    ``known`` gives months already read in the same scope (the dashboard's headline
    has the running month): ``{period: (received, reversed)}`` at the end of ``periods``.

    Returns:
        ``(received, reversed)`` keyed by the index in ``periods``, and their totals.
    """
    known = known or {}
    through = revenue_months.closed_through(s)
    rolled = [p for p in periods if through is not None and p <= through]
    received: dict[int, int] = {}
    reversed_: dict[int, int] = {}
    if rolled:
        q = _narrow(select(RevenueMonth.period, sa.func.sum(RevenueMonth.received),
                           sa.func.sum(RevenueMonth.reversed))
                    .where(RevenueMonth.period >= rolled[0], RevenueMonth.period <= rolled[-1])
                    .group_by(RevenueMonth.period),
                    actor, owner_id, RevenueMonth.owner_id)
        index = {p: i for i, p in enumerate(periods)}
        for period, rec, rev in s.exec(q).all():
            received[index[period]] = int(rec or 0)
            reversed_[index[period]] = int(rev or 0)
    for i, p in enumerate(periods):
        if p in known:
            received[i], reversed_[i] = known[p]
    live = [p for p in periods[len(rolled):] if p not in known]
    if live:
        offset = len(rolled)
        bounds = [clock.jakarta_midnight(clock.period_start(p)) for p in live]
        bounds.append(clock.jakarta_midnight(clock.period_start(clock.shift_period(live[-1], 1))))
        parts = []
        for kind, column in ((0, Payment.recorded_at), (1, Payment.reversed_at)):
            parts.append(_narrow(
                select(sa.literal_column(str(kind)).label("kind"),
                       _bucket(column, bounds).label("bucket"), Payment.amount.label("amount"))
                .where(column >= bounds[0], column < bounds[-1]),
                actor, owner_id, Payment.owner_id))
        u = sa.union_all(*parts).subquery("ledger")
        q = (select(u.c.kind, u.c.bucket, sa.func.sum(u.c.amount))
             .group_by(u.c.kind, u.c.bucket))
        for kind, bucket, value in s.exec(q).all():
            (received if int(kind) == 0 else reversed_)[offset + int(bucket)] = int(value or 0)
    # Twelve monthly sums at most: adding them up here is not reading rows.
    return received, reversed_, sum(received.values()), sum(reversed_.values())


def _growth(s: Any, actor: Actor, owner_id: uuid.UUID | None,
            bounds: list[date]) -> tuple[dict[int, int], dict[int, int], int]:
    """Subscribers registered per month bucket, the running total (window) and the sum.

    Bucket ``-1`` holds everyone registered before ``bounds[0]`` so the running total
    counts every subscriber registered up to each month's end (all statuses).
    """
    sub = _narrow(select(_bucket(Customer.register_date, bounds, before=-1).label("bucket"))
                  .where(Customer.register_date < bounds[-1]),
                  actor, owner_id, Customer.owner_id).subquery("reg")
    q = (select(sub.c.bucket, sa.func.count(),
                sa.func.sum(sa.func.count()).over(order_by=sub.c.bucket),
                sa.func.sum(sa.case((sub.c.bucket >= 0, sa.func.count()), else_=0)).over())
         .group_by(sub.c.bucket))
    new: dict[int, int] = {}
    running: dict[int, int] = {}
    total = 0
    for bucket, count, run, in_range in s.exec(q).all():
        new[int(bucket)] = int(count)
        running[int(bucket)] = int(run)
        total = int(in_range or 0)
    return new, running, total


def _carry(running: dict[int, int], months: int) -> list[int]:
    """The running total at each month, carried over months nobody registered in."""
    out, last = [], running.get(-1, 0)
    for i in range(months):
        last = running.get(i, last)
        out.append(last)
    return out


# --- detail rows -----------------------------------------------------------------------------


def _detail_select(actor: Actor) -> Any:
    """Invoices the actor may see, with what a :class:`DetailRow` shows."""
    return scoped(
        select(Invoice.id, Invoice.customer_id, Customer.name, Customer.phone, Invoice.owner_id,
               _owner.business_name, Package.name, Package.speed, Invoice.period,
               Invoice.due_date, Invoice.amount, Invoice.discount, Invoice.total_amount,
               Invoice.paid_amount, Invoice.status, Invoice.paid_at, _payer.name,
               Invoice.payment_method)
        .join(Customer, Customer.id == Invoice.customer_id)
        .join(Package, Package.id == Customer.package_id)
        .join(_owner, _owner.id == Invoice.owner_id)
        .outerjoin(_payer, _payer.id == Invoice.paid_by),
        actor, Invoice.owner_id)


def _detail_row(r: Any) -> DetailRow:
    (inv_id, cust_id, name, phone, owner_id, area, pkg_name, pkg_speed, period, due, amount,
     discount, total, paid, status, paid_at, payer, method) = r
    return DetailRow(
        invoice_id=inv_id, customer_id=cust_id, customer_name=name, customer_phone=phone,
        owner_id=owner_id, area=area, package_name=pkg_name, package_speed=pkg_speed,
        period=period, due_date=due, amount=amount, discount=discount, total_amount=total,
        paid_amount=paid, remaining=max(0, total - paid), status=PaymentStatus(status),
        paid_at=paid_at, recorded_by=payer or "", payment_method=method)


def _status_condition(status: str | None) -> Any:
    if status == "paid":
        return Invoice.paid_amount >= Invoice.total_amount
    if status == "unpaid":
        return _open()
    return None


def _detail_page(s: Any, actor: Actor, owner_id: uuid.UUID | None, conds: list[Any],
                 page: int, search: str = "", size: int = PAGE_SIZE) -> Page[DetailRow]:
    """One page (``size`` rows, default ``PAGE_SIZE``) of invoices in customer-name order.

    First the page's ids from invoices and customers only, then those rows with
    everything shown (as the invoice list does), then the count unless the first
    page already holds everything.
    """
    term = name_or_phone_matches(search)
    if term is not None:
        conds = [*conds, term]
    ids_q = _narrow(select(Invoice.id).join(Customer, Customer.id == Invoice.customer_id)
                    .where(*conds), actor, owner_id, Invoice.owner_id)
    ids_q = (ids_q.order_by(sa.func.lower(Customer.name), Invoice.id)
             .offset((page - 1) * size).limit(size))
    ids = list(s.exec(ids_q).all())
    if page == 1 and len(ids) < size:
        total = len(ids)
    else:
        count_q = select(sa.func.count()).select_from(Invoice).where(*conds)
        if term is not None:
            count_q = count_q.join(Customer, Customer.id == Invoice.customer_id)
        total = int(s.exec(_narrow(count_q, actor, owner_id, Invoice.owner_id)).one())
    rows = s.exec(_detail_select(actor).where(Invoice.id.in_(ids))).all() if ids else []
    by_id = {r[0]: r for r in rows}
    return Page([_detail_row(by_id[i]) for i in ids if i in by_id], total, page, size)


# --- use cases -------------------------------------------------------------------------------


def headline(actor: Actor, period: str | None = None, owner_id: uuid.UUID | None = None, *,
             today: date | None = None) -> Headline:
    """The dashboard's headline figures in one statement (one round trip).

    Args:
        actor: Mitra get their own figures; superadmin everyone's or one owner's.
        period: ``YYYY-MM`` (default: the month of ``today``).
        owner_id: Only this owner (a mitra may name only itself).
        today: The reference day for overdue (default today, Jakarta).

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra names another owner.
        ValidationFailed: a malformed period.
    """
    check_owner_filter(actor, owner_id)
    today = today or clock.today()
    period = clock.current_period(today) if period is None else check_period(period)
    with new_session() as s:
        return _headline(s, actor, owner_id, period, today)


def _headline(s: Any, actor: Actor, owner_id: uuid.UUID | None, period: str,
              today: date) -> Headline:
    start, end = clock.month_bounds(period)
    c = _customer_counts(actor, owner_id).subquery("c")
    i = _invoice_totals(actor, owner_id, Invoice.period == period).subquery("i")
    o = _overdue_totals(actor, owner_id, today).subquery("o")
    q = select(c, i, o, *_ledger_columns(actor, owner_id, start, end)).select_from(_cross(c, i, o))
    m = s.exec(q).one()._mapping
    return Headline(
        period=period, today=today,
        active_customers=int(m["active_customers"]),
        isolated_customers=int(m["isolated_customers"]),
        totals=_to_totals(m[n] for n in _TOTALS_NAMES),
        overdue_count=int(m["overdue_count"]), overdue_amount=int(m["overdue_amount"]),
        received=int(m["received"]), reversed=int(m["reversed"]))


def period_totals(actor: Actor, period: str, owner_id: uuid.UUID | None = None) -> PeriodTotals:
    """Billed-basis totals of one period (``YYYY-MM``).

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra names another owner.
        ValidationFailed: a malformed period.
    """
    check_owner_filter(actor, owner_id)
    period = check_period(period)
    with new_session() as s:
        return _to_totals(s.exec(_invoice_totals(actor, owner_id,
                                                 Invoice.period == period)).one())


def revenue(actor: Actor, period: str, owner_id: uuid.UUID | None = None) -> int:
    """Cash-basis revenue of one Jakarta month (``YYYY-MM``).

    Payments recorded in the month less payments reversed in the month.

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra names another owner.
        ValidationFailed: a malformed period.
    """
    check_owner_filter(actor, owner_id)
    period = check_period(period)
    start, end = clock.month_bounds(period)
    with new_session() as s:
        received, reversed_ = s.exec(select(*_ledger_columns(actor, owner_id, start, end))).one()
    return int(received) - int(reversed_)


def series(actor: Actor, owner_id: uuid.UUID | None = None, *, months: int = SERIES_MONTHS,
           end: str | None = None) -> list[SeriesPoint]:
    """The dashboard charts: ``months`` points ending with ``end`` (default this month).

    Revenue per month (ended months from the rollup, the running month from the
    ledger) and subscribers bucketed by register month with a running total.

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra names another owner.
        ValidationFailed: a malformed ``end`` or ``months`` out of 1–36.
    """
    check_owner_filter(actor, owner_id)
    if isinstance(months, bool) or not isinstance(months, int) \
            or not 1 <= months <= MAX_SERIES_MONTHS:
        raise ValidationFailed({"months": MONTHS_MESSAGE})
    end = clock.current_period() if end is None else check_period(end, "end")
    with new_session() as s:
        return _series(s, actor, owner_id, months, end)


def _series(s: Any, actor: Actor, owner_id: uuid.UUID | None, months: int, end: str,
            known: dict[str, tuple[int, int]] | None = None) -> list[SeriesPoint]:
    periods = [clock.shift_period(end, k - months + 1) for k in range(months)]
    days = [clock.period_start(p) for p in periods]
    days.append(clock.period_start(clock.shift_period(end, 1)))
    received, reversed_, _, _ = _ledger_by_month(s, actor, owner_id, periods, known)
    new, running, _ = _growth(s, actor, owner_id, days)
    totals = _carry(running, months)
    return [SeriesPoint(period=p, revenue=received.get(i, 0) - reversed_.get(i, 0),
                        new_customers=new.get(i, 0), customers_total=totals[i])
            for i, p in enumerate(periods)]


@dataclass(frozen=True)
class Overview:
    """What the dashboard shows: the running month's headline and the 12-month series."""

    headline: Headline
    series: list[SeriesPoint]


def overview(actor: Actor, owner_id: uuid.UUID | None = None, *,
             today: date | None = None, session: Any = None) -> Overview:
    """The dashboard's headline and charts in one session.

    The running month's ledger is read once (by the headline) and reused for the
    last point of the series.

    Args:
        actor: Mitra get their own figures; superadmin everyone's or one owner's.
        owner_id: Only this owner (a mitra may name only itself).
        today: The reference day (default today, Jakarta).
        session: An open session to read in (the dashboard reads its due list too).

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra names another owner.
    """
    check_owner_filter(actor, owner_id)
    today = today or clock.today()
    period = clock.current_period(today)
    if session is None:
        with new_session() as s:
            return overview(actor, owner_id, today=today, session=s)
    h = _headline(session, actor, owner_id, period, today)
    points = _series(session, actor, owner_id, SERIES_MONTHS, period,
                     known={period: (h.received, h.reversed)})
    return Overview(headline=h, series=points)


def year_summary(actor: Actor, year: int, owner_id: uuid.UUID | None = None) -> YearSummary:
    """Twelve months of ``year`` plus their sums (year tab, monthly sales report).

    The year's sums are window sums in the same statements as the months.

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra names another owner.
        ValidationFailed: ``year`` outside 2000–2100.
    """
    check_owner_filter(actor, owner_id)
    if isinstance(year, bool) or not isinstance(year, int) or not YEAR_MIN <= year <= YEAR_MAX:
        raise ValidationFailed({"year": YEAR_MESSAGE})
    periods = [f"{year:04d}-{m:02d}" for m in range(1, 13)]
    days = [clock.period_start(p) for p in periods] + [date(year + 1, 1, 1)]
    with new_session() as s:
        billed, billed_total = _billed_by_period(s, actor, owner_id, periods[0], periods[-1])
        received, reversed_, received_total, reversed_total = _ledger_by_month(
            s, actor, owner_id, periods)
        new, _, new_total = _growth(s, actor, owner_id, days)
    empty = _to_totals((0,) * 5)
    months = [MonthRow(period=p, totals=billed.get(p, empty),
                       revenue=received.get(i, 0) - reversed_.get(i, 0),
                       received=received.get(i, 0), reversed=reversed_.get(i, 0),
                       new_customers=new.get(i, 0))
              for i, p in enumerate(periods)]
    return YearSummary(year=year, months=months, totals=billed_total,
                       revenue=received_total - reversed_total, received=received_total,
                       reversed=reversed_total, new_customers=new_total)


def month_detail(actor: Actor, period: str, owner_id: uuid.UUID | None = None, *,
                 page: int = 1, status: str | None = None, search: str = "",
                 per_page: int | None = None) -> MonthDetail:
    """A period's totals, revenue and one page of its invoices (name order).

    Args:
        actor: Mitra get their own invoices; superadmin everyone's or one owner's.
        period: ``YYYY-MM``.
        owner_id: Only this owner (a mitra may name only itself).
        page: 1-based page of ``PAGE_SIZE`` invoices.
        status: ``paid`` (fully paid), ``unpaid`` (not fully paid) or ``None`` (all);
            filters the page only, the totals are the whole period's.
        search: Part of the customer's name or phone (filters the page only).
        per_page: Invoices a page (default ``PAGE_SIZE``, at most 100).

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra names another owner.
        ValidationFailed: a malformed period, unknown status or bad ``per_page``.
    """
    check_owner_filter(actor, owner_id)
    period = check_period(period)
    status = _check_status(status)
    page = _page_number(page)
    size = check_per_page(per_page, PAGE_SIZE)
    start, end = clock.month_bounds(period)
    i = _invoice_totals(actor, owner_id, Invoice.period == period).subquery("i")
    figures = select(i, *_ledger_columns(actor, owner_id, start, end)).select_from(i)
    conds = [Invoice.period == period]
    if (cond := _status_condition(status)) is not None:
        conds.append(cond)
    with new_session() as s:
        row = s.exec(figures).one()
        rows = _detail_page(s, actor, owner_id, conds, page, search, size)
    m = row._mapping
    return MonthDetail(period=period, totals=_to_totals(m[n] for n in _TOTALS_NAMES),
                       revenue=int(m["received"]) - int(m["reversed"]), page=rows)


def by_date(actor: Actor, day: date, owner_id: uuid.UUID | None = None, *, page: int = 1,
            status: str | None = None, per_page: int | None = None) -> DateReport:
    """Invoices due on ``day``: totals, that day's receipts, one page (paid / unpaid / all).

    ``per_page``: invoices a page (default ``PAGE_SIZE``, at most 100).

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra names another owner.
        ValidationFailed: not a date, an unknown status or a bad ``per_page``.
    """
    check_owner_filter(actor, owner_id)
    day = _check_day(day, "day")
    status = _check_status(status)
    page = _page_number(page)
    size = check_per_page(per_page, PAGE_SIZE)
    start, end = clock.jakarta_midnight(day), clock.jakarta_midnight(day + timedelta(days=1))
    i = _invoice_totals(actor, owner_id, Invoice.due_date == day).subquery("i")
    figures = select(i, *_ledger_columns(actor, owner_id, start, end)).select_from(i)
    conds = [Invoice.due_date == day]
    if (cond := _status_condition(status)) is not None:
        conds.append(cond)
    with new_session() as s:
        row = s.exec(figures).one()
        rows = _detail_page(s, actor, owner_id, conds, page, size=size)
    m = row._mapping
    return DateReport(day=day, due=_to_totals(m[n] for n in _TOTALS_NAMES),
                      received=int(m["received"]) - int(m["reversed"]), page=rows)


def _owner_rows(actor: Actor, period: str, owner_id: uuid.UUID | None) -> list[MitraRow]:
    """Every owner's figures for a period in one statement (owners LEFT JOIN aggregates)."""
    start, end = clock.month_bounds(period)
    today = clock.today()
    cust = _narrow(
        select(Customer.owner_id.label("owner_id"),
               sa.func.count().filter(Customer.status == CustomerStatus.ACTIVE).label("active"),
               sa.func.count().filter(Customer.status == CustomerStatus.ISOLATED)
               .label("isolated"),
               sa.func.count().label("customers"))
        .group_by(Customer.owner_id), actor, owner_id, Customer.owner_id).subquery("cust")
    inv = _narrow(select(Invoice.owner_id.label("owner_id"), *_totals_columns())
                  .where(Invoice.period == period).group_by(Invoice.owner_id),
                  actor, owner_id, Invoice.owner_id).subquery("inv")
    ledger = []
    for name, column in (("rec", Payment.recorded_at), ("rev", Payment.reversed_at)):
        ledger.append(_narrow(
            select(Payment.owner_id.label("owner_id"), sa.func.sum(Payment.amount).label("amount"))
            .where(column >= start, column < end).group_by(Payment.owner_id),
            actor, owner_id, Payment.owner_id).subquery(name))
    rec, rev = ledger
    ovd = _narrow(
        select(Invoice.owner_id.label("owner_id"), sa.func.count().label("count"),
               sa.func.sum(Invoice.total_amount - Invoice.paid_amount).label("amount"))
        .where(Invoice.due_date < today, _open()).group_by(Invoice.owner_id),
        actor, owner_id, Invoice.owner_id).subquery("ovd")

    def z(col: Any) -> Any:
        return sa.func.coalesce(col, 0)

    q = (select(User.id, User.business_name, User.name, User.role, z(cust.c.active),
                z(cust.c.isolated), *[z(inv.c[n]) for n in _TOTALS_NAMES], z(rec.c.amount),
                z(rev.c.amount), z(ovd.c.count), z(ovd.c.amount))
         .outerjoin(cust, cust.c.owner_id == User.id)
         .outerjoin(inv, inv.c.owner_id == User.id)
         .outerjoin(rec, rec.c.owner_id == User.id)
         .outerjoin(rev, rev.c.owner_id == User.id)
         .outerjoin(ovd, ovd.c.owner_id == User.id)
         .order_by(sa.func.lower(User.business_name), User.id))
    q = scoped(q, actor, User.id)
    if owner_id is not None:
        q = q.where(User.id == owner_id)
    else:
        # Active mitra, plus anyone (the superadmin, a deactivated mitra) that still owns
        # subscribers or figures: the rows then add up to the all-owners totals.
        q = q.where(sa.or_(sa.and_(User.role == UserRole.MITRA, User.is_active),
                           *[sub.c.owner_id.is_not(None) for sub in (cust, inv, rec, rev, ovd)]))
    with new_session() as s:
        rows = s.exec(q).all()
    return [MitraRow(owner_id=r[0], business_name=r[1], owner_name=r[2],
                     is_superadmin=r[3] == UserRole.SUPERADMIN, active_customers=int(r[4]),
                     isolated_customers=int(r[5]), totals=_to_totals(r[6:11]),
                     revenue=int(r[11]) - int(r[12]), overdue_count=int(r[13]),
                     overdue_amount=int(r[14]))
            for r in rows]


_SORT_KEYS = {
    "business_name": lambda r: r.business_name.lower(),
    "customers": lambda r: r.active_customers,
    "billed": lambda r: r.totals.billed,
    "paid": lambda r: r.totals.paid,
    "outstanding": lambda r: r.totals.unpaid,
    "rate": lambda r: r.totals.collected_percent,
    "revenue": lambda r: r.revenue,
    "overdue": lambda r: r.overdue_amount,
}


def by_mitra(actor: Actor, period: str, *, sort: str = "business_name",
             descending: bool = False) -> list[MitraRow]:
    """Every owner side by side for a period (superadmin only).

    Lists every active mitra, and any other owner (the superadmin, a deactivated
    mitra) that has subscribers or figures, so the rows add up to the totals.

    Args:
        actor: A superadmin.
        period: ``YYYY-MM``.
        sort: One of ``MITRA_SORTS``; ties in business-name order.
        descending: Largest first.

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra calls.
        ValidationFailed: a malformed period or unknown sort.
    """
    require_superadmin(actor)
    period = check_period(period)
    if sort not in MITRA_SORTS:
        raise ValidationFailed({"sort": SORT_MESSAGE})
    rows = _owner_rows(actor, period, None)
    if sort != "business_name" or descending:
        rows.sort(key=_SORT_KEYS[sort], reverse=descending)  # stable: ties keep name order
    return rows


def mitra_performance(actor: Actor, period: str,
                      owner_id: uuid.UUID | None = None) -> list[MitraRow]:
    """As :func:`by_mitra`, scoped: a mitra gets their own row.

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra names another owner.
        ValidationFailed: a malformed period.
    """
    check_owner_filter(actor, owner_id)
    period = check_period(period)
    return _owner_rows(actor, period, owner_id)


def package_popularity(actor: Actor, period: str,
                       owner_id: uuid.UUID | None = None) -> list[PackageRow]:
    """Packages by active subscribers (most first), with the period's billed figures.

    Lists every active package, and inactive ones still used by subscribers in scope.
    A period's invoices count under the subscriber's current package.

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra names another owner.
        ValidationFailed: a malformed period.
    """
    check_owner_filter(actor, owner_id)
    period = check_period(period)
    cust = _narrow(
        select(Customer.package_id.label("package_id"),
               sa.func.count().filter(Customer.status == CustomerStatus.ACTIVE).label("active"),
               sa.func.count().label("customers"))
        .group_by(Customer.package_id), actor, owner_id, Customer.owner_id).subquery("cust")
    inv = _narrow(
        select(Customer.package_id.label("package_id"), *_totals_columns())
        .select_from(Invoice).join(Customer, Customer.id == Invoice.customer_id)
        .where(Invoice.period == period).group_by(Customer.package_id),
        actor, owner_id, Invoice.owner_id).subquery("inv")
    active = sa.func.coalesce(cust.c.active, 0)
    q = (select(Package.id, Package.name, Package.speed, Package.price, active,
                sa.func.coalesce(cust.c.customers, 0), sa.func.sum(active).over(),
                *[sa.func.coalesce(inv.c[n], 0) for n in _TOTALS_NAMES])
         .outerjoin(cust, cust.c.package_id == Package.id)
         .outerjoin(inv, inv.c.package_id == Package.id)
         .where(sa.or_(Package.is_active, cust.c.package_id.is_not(None),
                       inv.c.package_id.is_not(None)))
         .order_by(active.desc(), sa.func.lower(Package.name), Package.id))
    with new_session() as s:
        rows = s.exec(q).all()
    return [PackageRow(package_id=r[0], name=r[1], speed=r[2], price=r[3],
                       active_customers=int(r[4]), customers=int(r[5]),
                       share_percent=round(int(r[4]) * 100 / int(r[6]), 1) if r[6] else 0.0,
                       totals=_to_totals(r[7:12]))
            for r in rows]


def aging(actor: Actor, on: date | None = None, owner_id: uuid.UUID | None = None) -> AgingReport:
    """Open invoices per owner by days overdue as of ``on`` (default today, Jakarta).

    Buckets (``AGING_BUCKETS``): not yet due (due date on or after ``on``), then
    1–30, 31–60, 61–90 and more than 90 days past the due date. Amounts are what is
    still owed. The sums over owners are window sums of the same statement.

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra names another owner.
        ValidationFailed: ``on`` is not a date.
    """
    check_owner_filter(actor, owner_id)
    on = clock.today() if on is None else _check_day(on, "on")
    due = Invoice.due_date
    edges = [on - timedelta(days=d) for d in (30, 60, 90)]
    conds = [due >= on,
             sa.and_(due < on, due >= edges[0]),
             sa.and_(due < edges[0], due >= edges[1]),
             sa.and_(due < edges[1], due >= edges[2]),
             due < edges[2]]
    owed = Invoice.total_amount - Invoice.paid_amount
    counts = [sa.func.count().filter(c) for c in conds]
    amounts = [sa.func.coalesce(sa.func.sum(owed).filter(c), 0) for c in conds]
    q = _narrow(
        select(Invoice.owner_id, User.business_name, *counts, *amounts,
               *[sa.func.sum(e).over() for e in (*counts, *amounts)])
        .join(User, User.id == Invoice.owner_id)
        .where(_open())
        .group_by(Invoice.owner_id, User.business_name)
        .order_by(sa.func.lower(User.business_name), Invoice.owner_id),
        actor, owner_id, Invoice.owner_id)
    with new_session() as s:
        rows = s.exec(q).all()
    out = [AgingRow(owner_id=r[0], business_name=r[1],
                    counts=tuple(int(v) for v in r[2:7]),  # type: ignore[arg-type]
                    amounts=tuple(int(v) for v in r[7:12]))  # type: ignore[arg-type]
           for r in rows]
    sums = rows[0][12:22] if rows else (0,) * 10
    return AgingReport(on=on, rows=out,
                       counts=tuple(int(v) for v in sums[:5]),  # type: ignore[arg-type]
                       amounts=tuple(int(v) for v in sums[5:]))  # type: ignore[arg-type]


def recap_totals(actor: Actor, start: date, end: date,
                 owner_id: uuid.UUID | None = None) -> PeriodTotals:
    """Totals of the invoices due from ``start`` to ``end`` inclusive (the recap's summary).

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra names another owner.
        ValidationFailed: not dates, ``end`` before ``start`` or more than 366 days.
    """
    check_owner_filter(actor, owner_id)
    _check_range(start, end)
    with new_session() as s:
        return _to_totals(s.exec(_invoice_totals(
            actor, owner_id, Invoice.due_date >= start, Invoice.due_date <= end)).one())


def _recap_query(actor: Actor, start: date, end: date, owner_id: uuid.UUID | None,
                 select_: Any) -> Any:
    check_owner_filter(actor, owner_id)
    _check_range(start, end)
    q = select_.where(Invoice.due_date >= start, Invoice.due_date <= end)
    if owner_id is not None:
        q = q.where(Invoice.owner_id == owner_id)
    return q.order_by(Invoice.due_date, sa.func.lower(Customer.name), Invoice.id)


def recap_rows(actor: Actor, start: date, end: date,
               owner_id: uuid.UUID | None = None) -> Iterator[DetailRow]:
    """Stream the invoices due from ``start`` to ``end`` as :class:`DetailRow` (yield_per).

    Ordered by due date, then customer name. The arguments are checked at once (not
    on the first ``next``); the rows are read in batches while the caller iterates.

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra names another owner.
        ValidationFailed: not dates, ``end`` before ``start`` or more than 366 days.
    """
    q = _recap_query(actor, start, end, owner_id, _detail_select(actor))
    return (_detail_row(r) for r in _stream(q))


# What a recap file shows of each invoice, in this order (see :func:`recap_records`).
RECAP_FIELDS = ("customer_name", "customer_phone", "area", "package_name", "package_speed",
                "period", "due_date", "amount", "discount", "total_amount", "paid_amount",
                "status", "paid_at", "payment_method", "recorded_by")


def recap_records(actor: Actor, start: date, end: date,
                  owner_id: uuid.UUID | None = None) -> Iterator[tuple]:
    """:func:`recap_rows` as plain tuples of :data:`RECAP_FIELDS` (``recorded_by`` may be None).

    For the recap files of a whole year (a million rows and more): no object is
    built per invoice and only the shown columns are read.

    Raises:
        As :func:`recap_rows`.
    """
    q = _recap_query(actor, start, end, owner_id, scoped(
        select(Customer.name, Customer.phone, _owner.business_name, Package.name,
               Package.speed, Invoice.period, Invoice.due_date, Invoice.amount,
               Invoice.discount, Invoice.total_amount, Invoice.paid_amount, Invoice.status,
               Invoice.paid_at, Invoice.payment_method, _payer.name)
        .join(Customer, Customer.id == Invoice.customer_id)
        .join(Package, Package.id == Customer.package_id)
        .join(_owner, _owner.id == Invoice.owner_id)
        .outerjoin(_payer, _payer.id == Invoice.paid_by),
        actor, Invoice.owner_id))
    return (tuple(r) for r in _stream(q))


STREAM_BATCH = 5000


def _stream(q: Any) -> Iterator[Any]:
    """Rows of ``q`` read in batches through a server-side cursor while the caller iterates."""
    with new_session() as s:
        conn = s.connection()
        if conn.dialect.name == "postgresql":
            # Every row will be read: plan for the whole result (hash joins, one sort),
            # not for the first rows as a cursor otherwise does (nested loops).
            conn.execute(sa.text("SET LOCAL cursor_tuple_fraction = 1.0"))
        yield from conn.execution_options(yield_per=STREAM_BATCH).execute(q)


def _settlement_lines(s: Any, actor: Actor, owner_id: uuid.UUID, column: Any,
                      start: datetime, end: datetime) -> list[SettlementLine]:
    q = _narrow(
        select(Payment.id, Customer.name, Invoice.period, Package.name, Package.speed,
               Payment.amount, Payment.method, Payment.recorded_at, _recorder.name,
               Payment.reversed_at)
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .join(Customer, Customer.id == Invoice.customer_id)
        .join(Package, Package.id == Customer.package_id)
        .join(_recorder, _recorder.id == Payment.recorded_by)
        .where(column >= start, column < end)
        .order_by(column, Payment.id),
        actor, owner_id, Payment.owner_id)
    return [SettlementLine(payment_id=r[0], customer_name=r[1], period=r[2],
                           package=f"{r[3]} ({r[4]})", amount=r[5], method=str(r[6]),
                           recorded_at=r[7], recorded_by=r[8], reversed_at=r[9])
            for r in s.exec(q).all()]


def settlement(actor: Actor, owner_id: uuid.UUID, period: str) -> Settlement:
    """A mitra's settlement statement for a month (superadmin any owner, mitra only own).

    ``lines`` are the payments recorded in the Jakarta month (a later reversal shows
    in ``reversed_at``), ``reversals`` the payments reversed in it; ``collected`` is
    the owner's revenue of the month.

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra names another owner.
        NotFound: no such owner.
        ValidationFailed: a malformed period.
    """
    check_owner_filter(actor, owner_id)
    if owner_id is None:
        raise NotFound(OWNER_NOT_FOUND_MESSAGE)
    period = check_period(period)
    start, end = clock.month_bounds(period)
    with new_session() as s:
        owner = s.exec(scoped(select(User).where(User.id == owner_id), actor, User.id)).first()
        if owner is None:
            raise NotFound(OWNER_NOT_FOUND_MESSAGE)
        received, reversed_ = s.exec(select(*_ledger_columns(actor, owner_id, start, end))).one()
        lines = _settlement_lines(s, actor, owner_id, Payment.recorded_at, start, end)
        reversals = _settlement_lines(s, actor, owner_id, Payment.reversed_at, start, end)
        admin_name = s.exec(select(User.name)
                            .where(User.role == UserRole.SUPERADMIN, User.is_active)
                            .order_by(User.created_at, User.id).limit(1)).first()
    company = settings.get_values(["app_name"]).get("app_name") or settings.DEFAULTS["app_name"]
    return Settlement(
        period=period, company_name=company, admin_name=admin_name or "",
        owner_id=owner.id, business_name=owner.business_name, owner_name=owner.name,
        owner_phone=owner.phone, bank_name=owner.bank_name, bank_account=owner.bank_account,
        bank_holder=owner.bank_holder, received=int(received), reversed=int(reversed_),
        collected=int(received) - int(reversed_), lines=lines, reversals=reversals)
