"""The ledger rollup of ended months: same figures as the ledger, before and after.

Uses the seeded year of ``test_finance`` (today 2026-06-15, Jakarta).
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from fibernode.db import new_session
from fibernode.models import ActivityLog, RevenueMonth
from fibernode.services import customers, finance, revenue_months
from fibernode.services.context import Actor
from fibernode.services.errors import PermissionDenied
from tests.services.invoice_data import customer
from tests.services.test_finance import K, at, data, pay  # noqa: F401  (data: fixture)

pytestmark = pytest.mark.both_dialects(
    "the rollup marker is an insert_for upsert")

SYSTEM = Actor.system("test.close_months")


def figures(d):
    """Everything that reads whole months of the ledger, for three scopes."""
    out = []
    for actor, owner in ((d.admin, None), (d.admin, d.a_id), (d.a, None), (d.b, None)):
        out.append((finance.series(actor, owner, end="2026-06"),
                    finance.year_summary(actor, 2026, owner),
                    [finance.revenue(actor, f"2026-{m:02d}", owner) for m in range(1, 7)]))
    return out


def rolled() -> dict[tuple, tuple[int, int]]:
    with new_session() as s:
        return {(r.owner_id, r.period): (r.received, r.reversed)
                for r in s.exec(select(RevenueMonth)).all()}


def test_rolled_up_months_give_the_same_figures_as_the_ledger(data):  # noqa: F811  (the fixture)
    before = figures(data)
    assert revenue_months.close_months(SYSTEM) == {
        "first": "2026-01", "last": "2026-05", "months": 5, "rows": 8}
    with new_session() as s:
        assert revenue_months.closed_through(s) == "2026-05"
    rows = rolled()
    # Mitra A: Bela's March payment counts in March, its reversal in April.
    assert rows[(data.a_id, "2026-03")] == (310 * K, 0)
    assert rows[(data.a_id, "2026-04")] == (0, 150 * K)
    assert rows[(data.b_id, "2026-04")] == (50 * K, 0)
    assert figures(data) == before
    # Nothing more to do until a month ends; then only that month is added.
    assert revenue_months.close_months(SYSTEM)["months"] == 0
    with new_session() as s:
        audit = s.exec(select(ActivityLog).where(
            ActivityLog.action == "finance.close_months")).all()
    assert len(audit) == 1


def test_the_running_month_is_read_from_the_ledger(data, monkeypatch):  # noqa: F811  (the fixture)
    revenue_months.close_months(SYSTEM)
    at(monkeypatch, 2026, 6, 16)
    pay(data.admin, data.inv["eka06"])
    assert finance.series(data.admin, end="2026-06")[-1].revenue == 100 * K
    at(monkeypatch, 2026, 7, 1, 1)
    assert revenue_months.close_months(SYSTEM) == {
        "first": "2026-06", "last": "2026-06", "months": 1, "rows": 1}
    assert finance.series(data.admin, end="2026-06")[-1].revenue == 100 * K


def test_deleting_a_subscriber_with_payments_reopens_its_months(data):  # noqa: F811  (the fixture)
    revenue_months.close_months(SYSTEM)
    customers.delete_customer(data.admin, customer("Andi Wijaya").id)
    with new_session() as s:
        # Andi's first payment was in January: everything from January is live again.
        assert revenue_months.closed_through(s) == "2025-12"
    live = figures(data)
    assert finance.revenue(data.a, "2026-01") == 0
    assert revenue_months.close_months(SYSTEM)["first"] == "2026-01"
    assert figures(data) == live


def test_a_mitra_cannot_run_the_rollup(data):  # noqa: F811  (the fixture)
    with pytest.raises(PermissionDenied):
        revenue_months.close_months(data.a)


def test_dashboard_overview_equals_its_parts_before_and_after_the_rollup(data):  # noqa: F811
    from fibernode.services import dashboard

    for _ in range(2):
        for actor, owner in ((data.admin, None), (data.admin, data.b_id), (data.a, None)):
            view = dashboard.overview(actor, owner)
            assert view.stats == dashboard.dashboard_stats(actor, owner)
            assert view.series == finance.series(actor, owner)
            assert view.due_soon == dashboard.due_soon(actor, owner)
        revenue_months.close_months(SYSTEM)
    with pytest.raises(PermissionDenied):
        dashboard.overview(data.b, data.a_id)
