"""Finance figures against a seeded year with hand-computed expectations (SQLite and PostgreSQL).

The data is built through the services, with the clock moved to when each thing
happens (payments take ``recorded_at`` from :func:`fibernode.clock.now`):

======== ======================= ======= ===== ==========================================
customer owner                   package disc. register
======== ======================= ======= ===== ==========================================
Andi     mitra A (WiFi Sukamaju) 10 Mbps 0     2025-12-10, billing day 5
Bela     mitra A                 20 Mbps 0     2026-01-20, day 10; discount 20,000 from May
Cahya    mitra A                 10 Mbps 0     2026-03-02, day 15; isolated on 1 May
Dodi     mitra B (Net Mekarjaya) 20 Mbps 0     2026-02-14, day 5
Eka      superadmin (FiberNode)  10 Mbps 0     2026-04-01, day 20
======== ======================= ======= ===== ==========================================

Invoices (period: due date, total) and what happened to them (Jakarta times):

* Andi 01 (01-05, 100k): paid in full 2026-01-04.
* Andi 02 (02-05, 100k): 40k on 2026-02-03 (superadmin), 60k on 2026-03-01 (mitra A).
* Bela 02 (02-10, 150k): paid 2026-02-01 00:30 Jakarta = 2026-01-31 17:30 UTC (February).
* Andi 03 (03-05, 100k): paid 2026-03-05.
* Bela 03 (03-10, 150k): paid 2026-03-09, reversed 2026-04-02 (lowers April, not March).
* Dodi 03 (03-05, 150k): paid 2026-03-04 by mitra B.
* Andi 04 (04-05, 100k), Cahya 04 (04-15, 100k): open.
* Dodi 04 (04-05, 150k): 50k on 2026-04-06.
* Bela 05 (05-10, 150k − 20k = 130k): 30k on 2026-05-11.
* Eka 05 (05-20, 100k): paid 2026-05-20 by the superadmin.
* Eka 06 (06-20, 100k): open.

"Today" for the assertions is 2026-06-15 (Jakarta).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import Customer, Package, PaymentStatus
from fibernode.services import customers, dashboard, finance, invoices
from fibernode.services.errors import PermissionDenied, ValidationFailed
from fibernode.services.finance import PeriodTotals
from tests.services.invoice_data import customer, invoice, make_invoice

K = 1000


def at(monkeypatch, y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> None:
    """Freeze the clock at a Jakarta wall-clock time."""
    local = datetime(y, m, d, hh, mm, tzinfo=clock.JAKARTA)
    monkeypatch.setattr(clock, "now", lambda: local.astimezone(UTC))
    monkeypatch.setattr(clock, "local_now", lambda: local)
    monkeypatch.setattr(clock, "today", lambda: local.date())


def package_id(name: str) -> uuid.UUID:
    with new_session() as s:
        return s.exec(select(Package.id).where(Package.name == name)).one()


def pay(actor, invoice_id, amount=None, method="cash"):
    return invoices.pay_invoice(actor, invoice_id, version=invoice(invoice_id).version,
                                method=method, amount=amount)


def totals(count, billed, paid, paid_count, partial_count) -> PeriodTotals:
    return PeriodTotals(invoice_count=count, billed=billed, paid=paid, unpaid=billed - paid,
                        paid_count=paid_count, partial_count=partial_count,
                        unpaid_count=count - paid_count)


ZERO = totals(0, 0, 0, 0, 0)


@dataclass
class Data:
    world: object
    admin: object
    a: object  # mitra A actor (WiFi Sukamaju)
    b: object  # mitra B actor (Net Mekarjaya)
    a_id: uuid.UUID
    b_id: uuid.UUID
    admin_id: uuid.UUID
    inv: dict[str, uuid.UUID]
    pkg10: uuid.UUID
    pkg20: uuid.UUID


def clear_demo_customers(world) -> None:
    with new_session() as s:
        ids = list(s.exec(select(Customer.id)).all())
    for cid in ids:
        customers.delete_customer(world.admin, cid)


@pytest.fixture
def data(world, monkeypatch) -> Data:
    admin, a, b = world.admin, world.mitra_a, world.mitra_b
    clear_demo_customers(world)
    p10, p20 = package_id("Paket 10 Mbps"), package_id("Paket 20 Mbps")
    at(monkeypatch, 2026, 1, 2)

    def new(actor, name, phone, pkg, day, reg, owner_id=None):
        return customers.create_customer(actor, name=name, phone=phone, package_id=pkg,
                                         billing_date=day, register_date=reg,
                                         owner_id=owner_id)

    new(a, "Andi Wijaya", "081200000001", p10, 5, date(2025, 12, 10))
    new(a, "Bela Sari", "081200000002", p20, 10, date(2026, 1, 20))
    new(a, "Cahya Putri", "081200000003", p10, 15, date(2026, 3, 2))
    new(b, "Dodi Pratama", "081200000004", p20, 5, date(2026, 2, 14))
    new(admin, "Eka Saputra", "081200000005", p10, 20, date(2026, 4, 1))

    inv: dict[str, uuid.UUID] = {}

    def bill(key, name, period, due):
        inv[key] = make_invoice(customer(name), period, due_date=due).id

    bill("andi01", "Andi Wijaya", "2026-01", date(2026, 1, 5))
    bill("andi02", "Andi Wijaya", "2026-02", date(2026, 2, 5))
    bill("bela02", "Bela Sari", "2026-02", date(2026, 2, 10))
    bill("andi03", "Andi Wijaya", "2026-03", date(2026, 3, 5))
    bill("bela03", "Bela Sari", "2026-03", date(2026, 3, 10))
    bill("dodi03", "Dodi Pratama", "2026-03", date(2026, 3, 5))
    bill("andi04", "Andi Wijaya", "2026-04", date(2026, 4, 5))
    bill("cahya04", "Cahya Putri", "2026-04", date(2026, 4, 15))
    bill("dodi04", "Dodi Pratama", "2026-04", date(2026, 4, 5))

    at(monkeypatch, 2026, 1, 4)
    pay(a, inv["andi01"])
    at(monkeypatch, 2026, 2, 1, 0, 30)  # still 31 January in UTC
    pay(a, inv["bela02"])
    at(monkeypatch, 2026, 2, 3)
    pay(admin, inv["andi02"], 40 * K)
    at(monkeypatch, 2026, 3, 1)
    pay(a, inv["andi02"], method="transfer")
    at(monkeypatch, 2026, 3, 4)
    pay(b, inv["dodi03"])
    at(monkeypatch, 2026, 3, 5, 8)
    pay(a, inv["andi03"])
    at(monkeypatch, 2026, 3, 9)
    pay(a, inv["bela03"])
    at(monkeypatch, 2026, 4, 2)
    invoices.unpay_invoice(admin, inv["bela03"], version=invoice(inv["bela03"]).version,
                           reason="Salah catat")
    at(monkeypatch, 2026, 4, 6)
    pay(b, inv["dodi04"], 50 * K)
    at(monkeypatch, 2026, 4, 20)
    # Discount change mid-year: May's invoice is billed with it.
    customers.update_customer(admin, customer("Bela Sari").id, discount=20 * K)
    bill("bela05", "Bela Sari", "2026-05", date(2026, 5, 10))
    bill("eka05", "Eka Saputra", "2026-05", date(2026, 5, 20))
    at(monkeypatch, 2026, 5, 1)
    customers.set_isolated(admin, customer("Cahya Putri").id, True, "Menunggak")
    at(monkeypatch, 2026, 5, 11)
    pay(a, inv["bela05"], 30 * K)
    at(monkeypatch, 2026, 5, 20)
    pay(admin, inv["eka05"], method="qris")
    bill("eka06", "Eka Saputra", "2026-06", date(2026, 6, 20))
    at(monkeypatch, 2026, 6, 15)
    return Data(world, admin, a, b, a.user_id, b.user_id, admin.user_id, inv, p10, p20)


# --- billed basis ----------------------------------------------------------------------------


def test_period_totals(data):
    admin, a, b = data.admin, data.a, data.b
    assert finance.period_totals(admin, "2026-01") == totals(1, 100 * K, 100 * K, 1, 0)
    assert finance.period_totals(admin, "2026-02") == totals(2, 250 * K, 250 * K, 2, 0)
    assert finance.period_totals(admin, "2026-03") == totals(3, 400 * K, 250 * K, 2, 0)
    assert finance.period_totals(admin, "2026-04") == totals(3, 350 * K, 50 * K, 0, 1)
    # Bela's May invoice carries the new discount: 150,000 − 20,000.
    assert finance.period_totals(admin, "2026-05") == totals(2, 230 * K, 130 * K, 1, 1)
    assert finance.period_totals(admin, "2026-07") == ZERO
    assert finance.period_totals(a, "2026-03") == totals(2, 250 * K, 100 * K, 1, 0)
    assert finance.period_totals(admin, "2026-03", data.a_id) == totals(2, 250 * K, 100 * K, 1, 0)
    assert finance.period_totals(b, "2026-03") == totals(1, 150 * K, 150 * K, 1, 0)
    t = finance.period_totals(admin, "2026-03")
    assert t.collected_percent == 62.5
    assert t.paid_count + t.unpaid_count == t.invoice_count


@pytest.mark.parametrize("period", ["2026-13", "26-03", "2026-3", "", None, "1999-12"])
def test_period_must_be_yyyy_mm(data, period):
    with pytest.raises(ValidationFailed) as exc:
        finance.period_totals(data.admin, period)
    assert exc.value.details == {"period": "Periode harus berformat TTTT-BB (contoh: 2026-03)."}


# --- cash basis ------------------------------------------------------------------------------


def test_revenue_counts_the_jakarta_month_and_reversals_lower_the_later_month(data):
    admin, a, b = data.admin, data.a, data.b
    expected = {"2026-01": 100 * K, "2026-02": 190 * K, "2026-03": 460 * K,
                "2026-04": -100 * K, "2026-05": 130 * K, "2026-06": 0, "2025-12": 0}
    assert {p: finance.revenue(admin, p) for p in expected} == expected
    # Bela's February invoice was paid at 00:30 on 1 February in Jakarta (31 January UTC).
    assert finance.revenue(a, "2026-01") == 100 * K
    assert finance.revenue(a, "2026-02") == 190 * K
    # The reversal of Bela's March payment lowers April; March keeps what was received.
    assert finance.revenue(a, "2026-03") == 310 * K
    assert finance.revenue(a, "2026-04") == -150 * K
    assert finance.revenue(b, "2026-03") == 150 * K
    assert finance.revenue(b, "2026-04") == 50 * K
    assert finance.revenue(admin, "2026-05", data.admin_id) == 100 * K


def test_series_has_twelve_points_with_a_running_customer_total(data):
    points = finance.series(data.admin, end="2026-06")
    assert [p.period for p in points] == [f"2025-{m:02d}" for m in range(7, 13)] + [
        f"2026-{m:02d}" for m in range(1, 7)]
    by = {p.period: p for p in points}
    assert [by[p].revenue for p in ("2026-01", "2026-02", "2026-03", "2026-04", "2026-05",
                                    "2026-06")] == [100 * K, 190 * K, 460 * K, -100 * K,
                                                    130 * K, 0]
    assert [p.new_customers for p in points] == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0]
    assert [p.customers_total for p in points] == [0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 5, 5]
    # Default: twelve months ending this month.
    assert finance.series(data.admin) == points

    mine = finance.series(data.a, end="2026-06", months=4)
    assert [p.period for p in mine] == ["2026-03", "2026-04", "2026-05", "2026-06"]
    assert [p.revenue for p in mine] == [310 * K, -150 * K, 30 * K, 0]
    # Andi (December) and Bela (January) registered before the first point.
    assert [p.customers_total for p in mine] == [3, 3, 3, 3]
    assert [p.new_customers for p in mine] == [1, 0, 0, 0]
    with pytest.raises(ValidationFailed):
        finance.series(data.admin, months=0)
    with pytest.raises(ValidationFailed):
        finance.series(data.admin, end="2026-00")


def test_year_summary(data):
    y = finance.year_summary(data.admin, 2026)
    assert [m.period for m in y.months] == [f"2026-{m:02d}" for m in range(1, 13)]
    months = {m.period: m for m in y.months}
    assert months["2026-03"].totals == totals(3, 400 * K, 250 * K, 2, 0)
    assert (months["2026-03"].received, months["2026-03"].reversed,
            months["2026-03"].revenue) == (460 * K, 0, 460 * K)
    assert (months["2026-04"].received, months["2026-04"].reversed,
            months["2026-04"].revenue) == (50 * K, 150 * K, -100 * K)
    assert [m.new_customers for m in y.months] == [1, 1, 1, 1] + [0] * 8
    assert months["2026-12"].totals == ZERO
    assert y.totals == totals(12, 1430 * K, 780 * K, 6, 2)
    assert (y.received, y.reversed, y.revenue, y.new_customers) == (930 * K, 150 * K, 780 * K, 4)

    mine = finance.year_summary(data.a, 2026)
    assert mine.totals == totals(8, 930 * K, 480 * K, 4, 1)
    assert (mine.received, mine.reversed, mine.revenue, mine.new_customers) == (
        630 * K, 150 * K, 480 * K, 2)
    assert finance.year_summary(data.b, 2025).totals == ZERO
    with pytest.raises(ValidationFailed) as exc:
        finance.year_summary(data.admin, 1999)
    assert "year" in exc.value.details


# --- tables ----------------------------------------------------------------------------------


def test_month_detail_totals_filter_and_search(data):
    d = finance.month_detail(data.admin, "2026-03")
    assert d.totals == totals(3, 400 * K, 250 * K, 2, 0)
    assert d.revenue == 460 * K
    assert [r.customer_name for r in d.page.items] == ["Andi Wijaya", "Bela Sari",
                                                      "Dodi Pratama"]
    assert (d.page.total, d.page.page, d.page.per_page) == (3, 1, 20)
    andi = d.page.items[0]
    assert (andi.package_name, andi.package_speed, andi.total_amount, andi.status,
            andi.status_label) == ("Paket 10 Mbps", "10 Mbps", 100 * K, PaymentStatus.PAID,
                                   "Lunas")
    assert andi.paid_at == datetime(2026, 3, 5, 8, tzinfo=clock.JAKARTA)
    assert andi.recorded_by == data.world.mitra_a.name
    assert andi.area == "WiFi Sukamaju"
    bela = d.page.items[1]
    assert (bela.status, bela.status_label, bela.paid_amount, bela.remaining, bela.paid_at,
            bela.recorded_by) == (PaymentStatus.UNPAID, "Belum Bayar", 0, 150 * K, None, "")

    unpaid = finance.month_detail(data.admin, "2026-03", status="unpaid")
    assert [r.customer_name for r in unpaid.page.items] == ["Bela Sari"]
    assert unpaid.totals == d.totals  # the filter narrows the table, not the totals
    paid = finance.month_detail(data.admin, "2026-03", status="paid")
    assert [r.customer_name for r in paid.page.items] == ["Andi Wijaya", "Dodi Pratama"]
    found = finance.month_detail(data.admin, "2026-03", search="dodi")
    assert [r.customer_name for r in found.page.items] == ["Dodi Pratama"]
    partial = finance.month_detail(data.admin, "2026-05", status="unpaid")
    assert [(r.customer_name, r.status_label, r.amount, r.discount, r.total_amount)
            for r in partial.page.items] == [("Bela Sari", "Sebagian", 150 * K, 20 * K, 130 * K)]

    mine = finance.month_detail(data.b, "2026-03")
    assert [r.customer_name for r in mine.page.items] == ["Dodi Pratama"]
    assert (mine.totals.billed, mine.revenue) == (150 * K, 150 * K)
    with pytest.raises(ValidationFailed) as exc:
        finance.month_detail(data.admin, "2026-03", status="lunas")
    assert "status" in exc.value.details


def test_month_detail_pages_by_twenty(world, monkeypatch):
    clear_demo_customers(world)
    at(monkeypatch, 2026, 7, 1)
    pkg = package_id("Paket 10 Mbps")
    for i in range(23):
        cid = customers.create_customer(world.mitra_b, name=f"Pelanggan {i:02d}",
                                        phone=f"0812300000{i:02d}", package_id=pkg,
                                        billing_date=5)
        make_invoice(customer(f"Pelanggan {i:02d}"), "2026-07", due_date=date(2026, 7, 5))
        assert cid
    first = finance.month_detail(world.admin, "2026-07")
    assert (len(first.page.items), first.page.total, first.page.pages) == (20, 23, 2)
    assert first.page.items[0].customer_name == "Pelanggan 00"
    second = finance.month_detail(world.mitra_b, "2026-07", page=2)
    assert [r.customer_name for r in second.page.items] == [
        "Pelanggan 20", "Pelanggan 21", "Pelanggan 22"]
    assert second.page.total == 23
    assert finance.month_detail(world.mitra_a, "2026-07").page.total == 0
    assert finance.month_detail(world.admin, "2026-07", page=9).page.items == []
    assert finance.month_detail(world.admin, "2026-07", page=9).page.total == 23


def test_by_date(data):
    day = finance.by_date(data.admin, date(2026, 3, 5))
    assert day.due == totals(2, 250 * K, 250 * K, 2, 0)
    assert day.received == 100 * K  # Andi's March invoice, paid that day
    assert [r.customer_name for r in day.page.items] == ["Andi Wijaya", "Dodi Pratama"]

    april = finance.by_date(data.admin, date(2026, 4, 5))
    assert april.due == totals(2, 250 * K, 50 * K, 0, 1)
    assert april.received == 0
    assert finance.by_date(data.admin, date(2026, 4, 5), status="paid").page.items == []
    assert [r.customer_name for r in finance.by_date(
        data.admin, date(2026, 4, 5), status="unpaid").page.items] == ["Andi Wijaya",
                                                                         "Dodi Pratama"]
    # The reversal day lowers that day's receipts.
    assert finance.by_date(data.admin, date(2026, 4, 2)).received == -150 * K
    mine = finance.by_date(data.b, date(2026, 4, 5))
    assert [r.customer_name for r in mine.page.items] == ["Dodi Pratama"]
    assert mine.due == totals(1, 150 * K, 50 * K, 0, 1)


# --- owners side by side -------------------------------------------------------------------


def test_by_mitra_sorted_and_superadmin_only(data):
    rows = finance.by_mitra(data.admin, "2026-03")
    assert [r.business_name for r in rows] == ["FiberNode Pusat", "Net Mekarjaya",
                                               "WiFi Sukamaju"]
    pusat, net, wifi = rows
    assert pusat.is_superadmin and not wifi.is_superadmin
    assert (pusat.active_customers, pusat.totals, pusat.revenue, pusat.overdue_count) == (
        1, ZERO, 0, 0)
    assert (net.active_customers, net.isolated_customers, net.totals, net.revenue,
            net.overdue_count, net.overdue_amount) == (
        1, 0, totals(1, 150 * K, 150 * K, 1, 0), 150 * K, 1, 100 * K)
    assert (wifi.active_customers, wifi.isolated_customers, wifi.totals, wifi.revenue,
            wifi.overdue_count, wifi.overdue_amount) == (
        2, 1, totals(2, 250 * K, 100 * K, 1, 0), 310 * K, 4, 450 * K)
    # The owners add up to the all-owners figures.
    assert sum(r.totals.billed for r in rows) == finance.period_totals(data.admin,
                                                                       "2026-03").billed
    assert sum(r.revenue for r in rows) == finance.revenue(data.admin, "2026-03")

    def names(**kw):
        return [r.business_name for r in finance.by_mitra(data.admin, "2026-03", **kw)]

    assert names(sort="billed", descending=True) == ["WiFi Sukamaju", "Net Mekarjaya",
                                                     "FiberNode Pusat"]
    assert names(sort="rate", descending=True) == ["Net Mekarjaya", "WiFi Sukamaju",
                                                   "FiberNode Pusat"]
    assert names(sort="overdue") == ["FiberNode Pusat", "Net Mekarjaya", "WiFi Sukamaju"]
    assert names(sort="business_name", descending=True) == ["WiFi Sukamaju", "Net Mekarjaya",
                                                            "FiberNode Pusat"]
    with pytest.raises(ValidationFailed) as exc:
        finance.by_mitra(data.admin, "2026-03", sort="nama")
    assert "sort" in exc.value.details
    with pytest.raises(PermissionDenied):
        finance.by_mitra(data.a, "2026-03")


def test_mitra_performance_gives_a_mitra_their_own_row(data):
    (mine,) = finance.mitra_performance(data.a, "2026-03")
    assert (mine.business_name, mine.totals.billed, mine.revenue) == (
        "WiFi Sukamaju", 250 * K, 310 * K)
    (other,) = finance.mitra_performance(data.b, "2026-04")
    assert (other.business_name, other.totals, other.revenue) == (
        "Net Mekarjaya", totals(1, 150 * K, 50 * K, 0, 1), 50 * K)
    assert len(finance.mitra_performance(data.admin, "2026-03")) == 3
    (one,) = finance.mitra_performance(data.admin, "2026-03", data.b_id)
    assert one.business_name == "Net Mekarjaya"
    with pytest.raises(PermissionDenied):
        finance.mitra_performance(data.a, "2026-03", data.b_id)


def test_package_popularity(data):
    rows = finance.package_popularity(data.admin, "2026-03")
    top = {r.name: r for r in rows[:2]}
    assert [r.name for r in rows[:2]] == ["Paket 10 Mbps", "Paket 20 Mbps"]
    p10, p20 = top["Paket 10 Mbps"], top["Paket 20 Mbps"]
    # Cahya (isolated) counts as a subscriber but not as an active one.
    assert (p10.active_customers, p10.customers, p10.share_percent, p10.totals) == (
        2, 3, 50.0, totals(1, 100 * K, 100 * K, 1, 0))
    assert (p20.active_customers, p20.customers, p20.share_percent, p20.totals) == (
        2, 2, 50.0, totals(2, 300 * K, 150 * K, 1, 0))
    assert all(r.active_customers == 0 and r.totals == ZERO for r in rows[2:])
    mine = {r.name: r for r in finance.package_popularity(data.b, "2026-03")}
    assert (mine["Paket 20 Mbps"].active_customers, mine["Paket 20 Mbps"].share_percent,
            mine["Paket 20 Mbps"].totals.billed) == (1, 100.0, 150 * K)
    assert mine["Paket 10 Mbps"].customers == 0


def test_aging_buckets(data):
    report = finance.aging(data.admin, date(2026, 6, 15))
    assert [r.business_name for r in report.rows] == ["FiberNode Pusat", "Net Mekarjaya",
                                                      "WiFi Sukamaju"]
    pusat, net, wifi = report.rows
    assert (pusat.counts, pusat.amounts) == ((1, 0, 0, 0, 0), (100 * K, 0, 0, 0, 0))
    # Dodi's April invoice: 71 days late, 100,000 still owed of 150,000.
    assert (net.counts, net.amounts) == ((0, 0, 0, 1, 0), (0, 0, 0, 100 * K, 0))
    # Bela 05 (36 days, 100k owed), Andi 04 (71) and Cahya 04 (61), Bela 03 (97 days).
    assert (wifi.counts, wifi.amounts) == ((0, 0, 1, 2, 1), (0, 0, 100 * K, 200 * K, 150 * K))
    assert (wifi.total_count, wifi.total_amount) == (4, 450 * K)
    assert report.counts == (1, 0, 1, 3, 1)
    assert report.amounts == (100 * K, 0, 100 * K, 300 * K, 150 * K)
    # Bucket edges: due on the day is not yet due; the day after is 1 day late.
    # (Open invoices as they stand now: Andi 04, Cahya 04, Bela 03 and Bela 05.)
    edge = {r.business_name: r for r in finance.aging(data.admin, date(2026, 4, 15)).rows}
    assert edge["WiFi Sukamaju"].counts == (2, 1, 1, 0, 0)  # Cahya 04 due that very day
    later = {r.business_name: r for r in finance.aging(data.admin, date(2026, 4, 16)).rows}
    assert later["WiFi Sukamaju"].counts == (1, 2, 1, 0, 0)  # Cahya 04 now 1 day late
    assert finance.aging(data.admin).on == date(2026, 6, 15)
    (own,) = finance.aging(data.b, date(2026, 6, 15)).rows
    assert own.business_name == "Net Mekarjaya"
    assert finance.aging(data.b, date(2026, 6, 15)).amounts == (0, 0, 0, 100 * K, 0)


# --- recap and settlement --------------------------------------------------------------------


def test_recap_totals_and_rows(data):
    start, end = date(2026, 3, 1), date(2026, 4, 30)
    assert finance.recap_totals(data.admin, start, end) == totals(6, 750 * K, 300 * K, 2, 1)
    rows = list(finance.recap_rows(data.admin, start, end))
    assert [(r.due_date.isoformat(), r.customer_name) for r in rows] == [
        ("2026-03-05", "Andi Wijaya"), ("2026-03-05", "Dodi Pratama"),
        ("2026-03-10", "Bela Sari"), ("2026-04-05", "Andi Wijaya"),
        ("2026-04-05", "Dodi Pratama"), ("2026-04-15", "Cahya Putri")]
    assert sum(r.total_amount for r in rows) == 750 * K
    transfer = next(r for r in finance.recap_rows(data.admin, date(2026, 2, 5),
                                                  date(2026, 2, 5)))
    assert (transfer.customer_name, transfer.payment_method, transfer.status) == (
        "Andi Wijaya", "transfer", PaymentStatus.PAID)
    mine = list(finance.recap_rows(data.b, start, end))
    assert [r.customer_name for r in mine] == ["Dodi Pratama", "Dodi Pratama"]
    assert finance.recap_totals(data.b, start, end) == totals(2, 300 * K, 200 * K, 1, 1)
    assert finance.recap_totals(data.admin, start, end, data.a_id).billed == 450 * K

    with pytest.raises(ValidationFailed) as exc:
        finance.recap_totals(data.admin, end, start)
    assert exc.value.details == {"end": "Tanggal akhir tidak boleh sebelum tanggal mulai."}
    with pytest.raises(ValidationFailed) as exc:
        finance.recap_rows(data.admin, date(2026, 1, 1), date(2027, 1, 2))
    assert "end" in exc.value.details
    # 366 days is allowed (a leap year).
    assert finance.recap_totals(data.admin, date(2028, 1, 1), date(2028, 12, 31)) == ZERO


def test_settlement_lists_the_months_payments_and_reversals(data):
    march = finance.settlement(data.admin, data.a_id, "2026-03")
    assert (march.business_name, march.owner_name, march.company_name, march.admin_name) == (
        "WiFi Sukamaju", data.world.mitra_a.name, "FiberNode Internet",
        data.world.admin.name)
    assert (march.received, march.reversed, march.collected) == (310 * K, 0, 310 * K)
    assert [(ln.customer_name, ln.period, ln.amount, ln.method) for ln in march.lines] == [
        ("Andi Wijaya", "2026-02", 60 * K, "transfer"),
        ("Andi Wijaya", "2026-03", 100 * K, "cash"),
        ("Bela Sari", "2026-03", 150 * K, "cash")]
    assert march.lines[0].package == "Paket 10 Mbps (10 Mbps)"
    assert march.lines[2].reversed_at == datetime(2026, 4, 2, 10, tzinfo=clock.JAKARTA)
    assert march.reversals == []
    assert march.collected == finance.revenue(data.admin, "2026-03", data.a_id)

    april = finance.settlement(data.a, data.a_id, "2026-04")
    assert (april.received, april.reversed, april.collected) == (0, 150 * K, -150 * K)
    assert april.lines == []
    assert [(r.customer_name, r.amount) for r in april.reversals] == [("Bela Sari", 150 * K)]
    with pytest.raises(PermissionDenied):
        finance.settlement(data.b, data.a_id, "2026-03")


# --- scope and agreement ---------------------------------------------------------------------


def test_a_mitra_never_sees_another_mitras_figures(data):
    a, b = data.a, data.b
    assert finance.period_totals(b, "2026-03") == totals(1, 150 * K, 150 * K, 1, 0)
    assert sum(p.revenue for p in finance.series(b, end="2026-06")) == 200 * K
    assert finance.series(b, end="2026-06")[-1].customers_total == 1
    assert finance.year_summary(b, 2026).totals.billed == 300 * K
    assert finance.headline(b).active_customers == 1
    assert finance.settlement(b, data.b_id, "2026-03").lines[0].customer_name == "Dodi Pratama"
    for call in (
        lambda: finance.period_totals(b, "2026-03", data.a_id),
        lambda: finance.revenue(b, "2026-03", data.a_id),
        lambda: finance.series(b, data.a_id),
        lambda: finance.year_summary(b, 2026, data.a_id),
        lambda: finance.month_detail(b, "2026-03", data.a_id),
        lambda: finance.by_date(b, date(2026, 3, 5), data.a_id),
        lambda: finance.mitra_performance(b, "2026-03", data.a_id),
        lambda: finance.package_popularity(b, "2026-03", data.a_id),
        lambda: finance.aging(b, None, data.a_id),
        lambda: finance.recap_totals(b, date(2026, 1, 1), date(2026, 6, 30), data.a_id),
        lambda: finance.recap_rows(b, date(2026, 1, 1), date(2026, 6, 30), data.a_id),
        lambda: finance.settlement(b, data.a_id, "2026-03"),
        lambda: finance.headline(b, owner_id=data.a_id),
        lambda: finance.by_mitra(b, "2026-03"),
    ):
        with pytest.raises(PermissionDenied):
            call()
    # A mitra may name itself.
    assert finance.period_totals(a, "2026-03", data.a_id) == finance.period_totals(a, "2026-03")


def test_dashboard_agrees_with_the_finance_figures(data):
    on = date(2026, 3, 20)
    stats = dashboard.dashboard_stats(data.admin, on=on)
    t = finance.period_totals(data.admin, "2026-03")
    assert (stats.period, stats.billed, stats.paid, stats.unpaid, stats.invoice_count,
            stats.paid_count, stats.unpaid_count) == (
        "2026-03", t.billed, t.paid, t.unpaid, t.invoice_count, t.paid_count, t.unpaid_count)
    assert stats.revenue == finance.revenue(data.admin, "2026-03") == 460 * K
    # Overdue on 20 March: only Bela's March invoice (reversed, due 10 March).
    assert (stats.overdue_count, stats.overdue_amount) == (1, 150 * K)
    assert (stats.active_customers, stats.isolated_customers) == (4, 1)
    h = finance.headline(data.a, "2026-04", today=date(2026, 6, 15))
    assert (h.totals, h.received, h.reversed, h.revenue) == (
        totals(2, 200 * K, 0, 0, 0), 0, 150 * K, -150 * K)
    assert (h.overdue_count, h.overdue_amount, h.active_customers, h.isolated_customers) == (
        4, 450 * K, 2, 1)
    mine = dashboard.dashboard_stats(data.b, on=date(2026, 4, 10))
    assert (mine.billed, mine.paid, mine.revenue) == (150 * K, 50 * K, 50 * K)
    assert finance.series(data.admin, end="2026-03", months=1)[0].revenue == stats.revenue
