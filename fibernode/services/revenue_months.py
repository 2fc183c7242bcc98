"""Ended months of the payments ledger, rolled up per owner (``revenue_months``).

Payments are recorded and reversed at the server's "now", so once a Jakarta month
has ended its received / reversed totals never change. The nightly job
(:func:`close_months`) stores them once per owner and month and moves the
watermark (setting ``revenue_closed_through``, a ``YYYY-MM``) forward; finance
reads months up to the watermark from here and every later month from the ledger
itself. Deleting payments (a subscriber deleted with its invoices) lowers the
watermark below their month first (:func:`forget_from`), so those months are read
from the ledger again until the next run rolls them up anew: what the rollup says
always equals what the ledger says.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from fibernode import clock
from fibernode.db import insert_for
from fibernode.models import Payment, RevenueMonth, Setting
from fibernode.models.types import new_id
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.uow import unit_of_work

log = logging.getLogger(__name__)

CLOSED_THROUGH_KEY = "revenue_closed_through"
_months = RevenueMonth.__table__
_settings = Setting.__table__


def closed_through(session: Session, *, for_update: bool = False) -> str | None:
    """The last month held in ``revenue_months`` (``None``: nothing rolled up yet)."""
    q = select(Setting.value).where(Setting.key == CLOSED_THROUGH_KEY)
    if for_update:
        q = q.with_for_update()
    return session.exec(q).first() or None


def _set_closed_through(session: Session, period: str) -> None:
    now = clock.now()
    session.execute(
        insert_for(session)(_settings)
        .values(id=new_id(), key=CLOSED_THROUGH_KEY, value=period, updated_at=now)
        .on_conflict_do_update(index_elements=["key"],
                               set_={"value": period, "updated_at": now}))


def _bucket(column: Any, bounds: list[datetime]) -> Any:
    """Index of the month in ``bounds`` (month starts plus the end) holding ``column``."""
    return sa.case(*[(column < bounds[i + 1], i) for i in range(len(bounds) - 1)],
                   else_=len(bounds) - 2)


def close_months(actor: Actor, today: date | None = None) -> dict[str, Any]:
    """Roll up every ended month after the watermark (the nightly job).

    One transaction: the ledger of the months grouped per owner and month in SQL,
    the rows replaced, the watermark moved to last month, one audit row.

    Args:
        actor: The system job or the superadmin.
        today: The reference day (default today, Jakarta).

    Returns:
        ``{"first": …, "last": …, "months": n, "rows": n}`` (``months`` 0 when up to date).

    Raises:
        PermissionDenied: for a mitra.
    """
    require_superadmin(actor)
    last = clock.shift_period(clock.current_period(today), -1)
    with unit_of_work(actor) as uow:
        s = uow.session
        through = closed_through(s, for_update=True)
        if through is None:
            first_at = s.exec(select(sa.func.min(Payment.recorded_at))).one()
            first = clock.period_of(first_at) if first_at is not None else last
        else:
            first = clock.shift_period(through, 1)
        if first > last:
            return {"first": first, "last": last, "months": 0, "rows": 0}
        periods = [first]
        while periods[-1] < last:
            periods.append(clock.shift_period(periods[-1], 1))
        bounds = [clock.month_bounds(p)[0] for p in periods] + [clock.month_bounds(last)[1]]
        parts = [
            select(Payment.owner_id.label("owner_id"), sa.literal(kind).label("kind"),
                   _bucket(column, bounds).label("bucket"), Payment.amount.label("amount"))
            .where(column >= bounds[0], column < bounds[-1])
            for kind, column in ((0, Payment.recorded_at), (1, Payment.reversed_at))
        ]
        u = sa.union_all(*parts).subquery("ledger")
        sums: dict[tuple[Any, int], list[int]] = {}
        for owner_id, kind, bucket, amount in s.execute(
                sa.select(u.c.owner_id, u.c.kind, u.c.bucket, sa.func.sum(u.c.amount))
                .group_by(u.c.owner_id, u.c.kind, u.c.bucket)).all():
            sums.setdefault((owner_id, int(bucket)), [0, 0])[int(kind)] = int(amount or 0)
        s.execute(sa.delete(_months).where(_months.c.period >= first,
                                           _months.c.period <= last))
        now = clock.now()
        rows = [{"id": new_id(), "owner_id": owner_id, "period": periods[bucket],
                 "received": received, "reversed": reversed_, "computed_at": now}
                for (owner_id, bucket), (received, reversed_) in sums.items()]
        if rows:
            s.execute(sa.insert(_months), rows)
        _set_closed_through(s, last)
        uow.audit("finance.close_months", "revenue_months", None, first=first, last=last,
                  rows=len(rows))
    log.info("revenue months %s..%s rolled up: %d rows", first, last, len(rows))
    return {"first": first, "last": last, "months": len(periods), "rows": len(rows)}


def forget_from(session: Session, earliest: datetime | None) -> None:
    """Payments recorded from ``earliest`` on are about to be deleted (caller's transaction).

    Lowers the watermark below that month, so those months are read from the
    ledger until the next :func:`close_months` rolls them up again.
    """
    if earliest is None:
        return
    through = closed_through(session, for_update=True)
    month = clock.period_of(earliest)
    if through is not None and month <= through:
        _set_closed_through(session, clock.shift_period(month, -1))
