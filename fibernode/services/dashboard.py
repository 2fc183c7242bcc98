"""Dashboard figures, computed in SQL and scoped to the actor."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import Customer, CustomerStatus, Invoice
from fibernode.services.context import Actor, require_user
from fibernode.services.errors import PermissionDenied
from fibernode.services.scoping import scoped


@dataclass(frozen=True)
class DashboardStats:
    """Headline figures for one scope and one period.

    ``billed`` is the total of the period's invoices; ``paid`` what has been
    received against them (the ledger's non-reversed payments); ``unpaid`` the rest.
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
    require_user(actor)
    if (owner_id is not None and owner_id != actor.user_id
            and not (actor.is_superadmin or actor.is_system)):
        raise PermissionDenied()
    period = clock.current_period(on)
    with new_session() as s:
        cust = scoped(
            select(
                sa.func.count().filter(Customer.status == CustomerStatus.ACTIVE),
                sa.func.count().filter(Customer.status == CustomerStatus.ISOLATED),
            ).select_from(Customer),
            actor, Customer.owner_id,
        )
        inv = scoped(
            select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(Invoice.total_amount), 0),
                sa.func.coalesce(sa.func.sum(Invoice.paid_amount), 0),
                sa.func.count().filter(Invoice.paid_amount >= Invoice.total_amount),
            ).select_from(Invoice).where(Invoice.period == period),
            actor, Invoice.owner_id,
        )
        if owner_id is not None:
            cust = cust.where(Customer.owner_id == owner_id)
            inv = inv.where(Invoice.owner_id == owner_id)
        active, isolated = s.exec(cust).one()
        count, billed, paid, paid_count = s.exec(inv).one()
    return DashboardStats(
        period=period,
        active_customers=active,
        isolated_customers=isolated,
        invoice_count=count,
        billed=int(billed),
        paid=int(paid),
        unpaid=int(billed) - int(paid),
        paid_count=paid_count,
        unpaid_count=count - paid_count,
    )
