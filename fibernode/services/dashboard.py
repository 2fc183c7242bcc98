"""Dashboard figures, computed in SQL from invoices and the payments ledger, scoped to the actor."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import Customer, Invoice, Setting
from fibernode.services import finance, invoices
from fibernode.services.context import Actor, require_user
from fibernode.services.invoices import InvoiceView, OverdueSummary
from fibernode.services.scoping import check_owner_filter

DUE_SOON_LIMIT = 50


@dataclass(frozen=True)
class DashboardStats:
    """Headline figures for one scope and one period.

    ``billed`` is the total of the period's invoices; ``paid`` what has been
    received against them (the ledger's non-reversed payments); ``unpaid`` the rest.
    ``overdue_count`` / ``overdue_amount``: invoices of any period whose due date
    has passed and that are not fully paid, and what is still owed on them.
    ``revenue``: money recorded in the ledger during the calendar month (Jakarta),
    less payments reversed during that month (cash basis: a later reversal lowers
    the month it happens in, never a month already reported).
    """

    period: str
    active_customers: int
    isolated_customers: int
    invoice_count: int
    billed: int
    paid: int
    unpaid: int
    paid_count: int
    unpaid_count: int
    overdue_count: int = 0
    overdue_amount: int = 0
    revenue: int = 0

    @property
    def collected_percent(self) -> float:
        """Share of the billed amount already paid, 0–100."""
        return round(self.paid * 100 / self.billed, 1) if self.billed else 0.0


def dashboard_stats(actor: Actor, owner_id: uuid.UUID | None = None,
                    on: date | None = None) -> DashboardStats:
    """Figures for the current period (``YYYY-MM`` of today in Jakarta).

    Args:
        actor: Mitra get their own figures; superadmin gets everyone's or one owner's.
        owner_id: Superadmin only: narrow to one owner.
        on: The day whose month is reported (default today).

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra asks for another owner.
    """
    # The same SQL pieces as the finance pages (finance.headline), so the figures agree;
    # one statement, one round trip.
    return _stats(finance.headline(actor, owner_id=owner_id, today=on or clock.today()))


def _stats(h: finance.Headline) -> DashboardStats:
    t = h.totals
    return DashboardStats(
        period=h.period,
        active_customers=h.active_customers,
        isolated_customers=h.isolated_customers,
        invoice_count=t.invoice_count,
        billed=t.billed,
        paid=t.paid,
        unpaid=t.unpaid,
        paid_count=t.paid_count,
        unpaid_count=t.unpaid_count,
        overdue_count=h.overdue_count,
        overdue_amount=h.overdue_amount,
        revenue=h.revenue,
    )


@dataclass(frozen=True)
class Overview:
    """Everything the dashboard shows: figures, the 12-month series, the due list."""

    stats: DashboardStats
    series: list[finance.SeriesPoint]
    due_soon: list[InvoiceView]


def overview(actor: Actor, owner_id: uuid.UUID | None = None,
             today: date | None = None) -> Overview:
    """The dashboard in one session: :func:`dashboard_stats`, ``finance.series``, :func:`due_soon`.

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra asks for another owner.
    """
    require_user(actor)
    check_owner_filter(actor, owner_id)
    today = today or clock.today()
    with new_session() as s:
        o = finance.overview(actor, owner_id, today=today, session=s)
        due = _due_soon(s, actor, owner_id, today, DUE_SOON_LIMIT)
    return Overview(stats=_stats(o.headline), series=o.series, due_soon=due)


def due_soon(actor: Actor, owner_id: uuid.UUID | None = None,
             today: date | None = None, *, limit: int = DUE_SOON_LIMIT) -> list[InvoiceView]:
    """Invoices due today or tomorrow (Jakarta) that are not fully paid.

    Ordered by due date, then customer name; at most ``limit`` of them.

    Args:
        actor: Mitra get their own; superadmin everyone's or one owner's.
        owner_id: Only this owner (a mitra may name only itself).
        today: The reference day (default today in Jakarta).
        limit: How many at most.

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra asks for another owner.
    """
    require_user(actor)
    check_owner_filter(actor, owner_id)
    today = today or clock.today()
    with new_session() as s:
        return _due_soon(s, actor, owner_id, today, limit)


def _due_soon(s, actor: Actor, owner_id: uuid.UUID | None, today: date,
              limit: int) -> list[InvoiceView]:
    q = invoices.visible_invoices(actor).where(
        Invoice.due_date >= today, Invoice.due_date <= today + timedelta(days=1),
        invoices.open_invoices())
    if owner_id is not None:
        q = q.where(Invoice.owner_id == owner_id)
    q = q.order_by(Invoice.due_date, sa.func.lower(Customer.name), Invoice.id).limit(limit)
    return invoices.to_views(s.exec(q).all(), today)


@dataclass(frozen=True)
class OverdueDigest:
    """The overdue figures stored by the daily job (cheap to read on every page load)."""

    date: date
    generated_at: datetime
    owners: list[OverdueSummary]

    @property
    def count(self) -> int:
        """Overdue invoices over the listed owners."""
        return sum(o.count for o in self.owners)

    @property
    def amount(self) -> int:
        """Unpaid Rupiah over the listed owners."""
        return sum(o.amount for o in self.owners)


def overdue_digest(actor: Actor) -> OverdueDigest | None:
    """The last stored overdue digest, narrowed to what the actor may see.

    ``None`` until the daily job (``workers.tasks.overdue_digest``) has run once.

    Raises:
        AuthenticationRequired: when nobody is logged in.
    """
    require_user(actor)
    with new_session() as s:
        raw = s.exec(select(Setting.value)
                     .where(Setting.key == invoices.OVERDUE_DIGEST_KEY)).first()
    if not raw:
        return None
    try:
        doc = json.loads(raw)
        owners = [OverdueSummary(uuid.UUID(o["owner_id"]), o["business_name"],
                                 int(o["count"]), int(o["amount"])) for o in doc["owners"]]
        digest_date = date.fromisoformat(doc["date"])
        generated_at = datetime.fromisoformat(doc["generated_at"])
    except (ValueError, KeyError, TypeError):
        return None
    if not (actor.is_superadmin or actor.is_system):
        owners = [o for o in owners if o.owner_id == actor.user_id]
    return OverdueDigest(digest_date, generated_at, owners)
