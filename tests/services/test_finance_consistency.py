"""One seeded month, every place that shows its figures: they must all agree.

The dashboard, the finance pages (period totals, month detail, revenue, per mitra),
the recap files (XLSX and CSV summary over the month's due dates) and the reports
(monthly sales row, mitra performance totals) are read for the same scope and
compared with each other and with hand-computed amounts.
"""

from __future__ import annotations

import calendar
import csv
import io
from dataclasses import dataclass

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.formatting import month_year
from fibernode.models import Package
from fibernode.services import customers, dashboard, finance, finance_files, invoices
from tests.services.invoice_data import customer, invoice, make_invoice

P = clock.current_period()
YEAR, MONTH = int(P[:4]), int(P[5:])
FIRST = clock.period_start(P)
LAST = FIRST.replace(day=calendar.monthrange(YEAR, MONTH)[1])
PREVIOUS = clock.shift_period(P, -1)


@dataclass(frozen=True)
class Figures:
    invoice_count: int
    billed: int
    paid: int
    unpaid: int
    revenue: int


def pay(actor, inv_id, **kw):
    invoices.pay_invoice(actor, inv_id, version=invoice(inv_id).version, **kw)


def package(name: str):
    with new_session() as s:
        return s.exec(select(Package.id).where(Package.name == name)).one()


@pytest.fixture
def month(world):
    """The month P of four owners.

    superadmin (FiberNode Pusat): Rudi 250.000 paid then reversed (unpaid);
        Tono 150.000 isolated, unpaid.
    mitra1 (WiFi Sukamaju): Ahmad 100.000 paid; Dewi 140.000 paid in two parts
        (40.000 + 100.000); last period's Ahmad invoice 100.000 paid now (revenue, not
        billed in P).
    mitra2 (Net Mekarjaya): Sari 200.000 paid 120.000 (partial); Wati 100.000 unpaid.
    mitra3 (Net Ketiga): Umar 350.000 paid by QRIS.

    billed 1.290.000, paid 710.000, unpaid 580.000, 7 invoices (3 paid, 1 partial);
    received 250.000 + 100.000 + 140.000 + 100.000 (last period) + 120.000 + 350.000
    = 1.060.000, reversed 250.000: revenue 810.000.
    """
    mitra3 = world.new_mitra("mitra3", "Net Ketiga")
    admin, m1, m2 = world.admin, world.mitra_a, world.mitra_b
    customers.create_customer(admin, name="Tono Sugiarto", phone="081277770010",
                              package_id=package("Paket 20 Mbps"), billing_date=12)
    customers.create_customer(m2, name="Sari Wulan", phone="081277770011",
                              package_id=package("Paket 30 Mbps"), billing_date=8)
    customers.create_customer(m2, name="Wati Susanti", phone="081277770012",
                              package_id=package("Paket 10 Mbps"), billing_date=25)
    customers.create_customer(admin, name="Umar Bakri", phone="081277770013",
                              package_id=package("Paket 100 Mbps"), billing_date=3,
                              owner_id=mitra3)

    def bill(name: str, day: int):
        return make_invoice(name, P, due_date=FIRST.replace(day=day)).id

    rudi, tono = bill("Rudi Hartono", 15), bill("Tono Sugiarto", 12)
    assert invoice(tono).total_amount == 150_000
    ahmad, dewi = bill("Ahmad Fauzi", 5), bill("Dewi Lestari", 10)
    sari, wati, umar = bill("Sari Wulan", 8), bill("Wati Susanti", 25), bill("Umar Bakri", 3)
    old = make_invoice("Ahmad Fauzi", PREVIOUS,
                       due_date=clock.period_start(PREVIOUS).replace(day=5)).id

    pay(admin, rudi, method="cash")
    invoices.unpay_invoice(admin, rudi, version=invoice(rudi).version, reason="Salah catat")
    customers.set_isolated(admin, customer("Tono Sugiarto").id, True, "Belum bayar")
    pay(m1, ahmad, method="cash")
    pay(m1, dewi, method="transfer", amount=40_000)
    pay(m1, dewi, method="cash", amount=100_000)  # the rest
    pay(m1, old, method="cash")
    pay(m2, sari, method="qris", amount=120_000)
    pay(admin, umar, method="qris")
    assert invoice(wati).paid_amount == 0
    return world, mitra3


def dashboard_figures(actor, owner_id=None) -> Figures:
    d = dashboard.dashboard_stats(actor, owner_id=owner_id)
    assert d.period == P
    return Figures(d.invoice_count, d.billed, d.paid, d.unpaid, d.revenue)


def finance_figures(actor, owner_id=None) -> Figures:
    t = finance.period_totals(actor, P, owner_id)
    revenue = finance.revenue(actor, P, owner_id)
    detail = finance.month_detail(actor, P, owner_id)
    assert detail.totals == t and detail.revenue == revenue
    assert detail.page.total == t.invoice_count
    return Figures(t.invoice_count, t.billed, t.paid, t.unpaid, revenue)


def recap_xlsx_figures(actor, owner_id=None) -> tuple[int, int, int, int]:
    buf = io.BytesIO()
    rows = finance_files.write_recap(actor, buf, start=FIRST, end=LAST, fmt="xlsx",
                                     owner_id=owner_id)
    ws = load_workbook(io.BytesIO(buf.getvalue()))["Rekap Keuangan"]
    summary = {r[1].value: r[2].value for r in ws.iter_rows(min_row=rows + 2)
               if r[1].value}
    assert summary["Jumlah tagihan"] == rows
    return (summary["Jumlah tagihan"], summary["Total tagihan"], summary["Terbayar"],
            summary["Belum terbayar"])


def recap_csv_figures(actor, owner_id=None) -> tuple[int, int, int, int]:
    buf = io.BytesIO()
    rows = finance_files.write_recap(actor, buf, start=FIRST, end=LAST, fmt="csv",
                                     owner_id=owner_id)
    lines = list(csv.reader(io.StringIO(buf.getvalue().decode("utf-8-sig"))))
    summary = {r[1]: r[2] for r in lines[rows + 2:] if len(r) > 2 and r[1]}
    return (int(summary["Jumlah tagihan"]), int(summary["Total tagihan"]),
            int(summary["Terbayar"]), int(summary["Belum terbayar"]))


def report_row(actor, report: str, label: str, owner_id=None, **kw) -> dict:
    buf = io.BytesIO()
    finance_files.write_report(actor, buf, report=report, fmt="xlsx", owner_id=owner_id, **kw)
    ws = load_workbook(io.BytesIO(buf.getvalue())).active
    header = [c.value for c in ws[1]]
    for row in ws.iter_rows(min_row=2, values_only=True):
        if row[0] == label:
            return dict(zip(header, row, strict=True))
    raise AssertionError(f"no row {label!r}")


def report_figures(row: dict) -> Figures:
    return Figures(row["Jumlah tagihan"], row["Total tagihan"], row["Terbayar"],
                   row["Belum terbayar"], row["Pendapatan"])


EXPECTED_ALL = Figures(invoice_count=7, billed=1_290_000, paid=710_000, unpaid=580_000,
                       revenue=810_000)
EXPECTED_MITRA1 = Figures(invoice_count=2, billed=240_000, paid=240_000, unpaid=0,
                          revenue=340_000)
EXPECTED_MITRA2 = Figures(invoice_count=2, billed=300_000, paid=120_000, unpaid=180_000,
                          revenue=120_000)


def scopes(world, mitra3):
    """(actor, owner_id, expected figures or None) for every scope compared."""
    return [
        (world.admin, None, EXPECTED_ALL),
        (world.admin, world.mitra_a.user_id, EXPECTED_MITRA1),
        (world.mitra_a, None, EXPECTED_MITRA1),
        (world.mitra_b, None, EXPECTED_MITRA2),
        (world.admin, mitra3, Figures(1, 350_000, 350_000, 0, 350_000)),
        (world.admin, world.admin.user_id, Figures(2, 400_000, 0, 400_000, 0)),
    ]


def test_every_view_of_the_month_agrees(month):
    world, mitra3 = month
    for actor, owner_id, expected in scopes(world, mitra3):
        where = f"{actor.name} owner={owner_id}"
        figures = finance_figures(actor, owner_id)
        assert figures == expected, where
        assert dashboard_figures(actor, owner_id) == expected, where
        recap = (expected.invoice_count, expected.billed, expected.paid, expected.unpaid)
        assert recap_xlsx_figures(actor, owner_id) == recap, where
        assert recap_csv_figures(actor, owner_id) == recap, where
        sales = report_row(actor, "monthly_sales", month_year(P), owner_id, year=YEAR)
        assert report_figures(sales) == expected, where
        performance = report_row(actor, "mitra_performance", "Total", owner_id, period=P)
        assert report_figures(performance) == expected, where


def test_per_mitra_rows_add_up_to_the_whole(month):
    world, mitra3 = month
    rows = finance.by_mitra(world.admin, P)
    assert {r.business_name for r in rows} >= {"FiberNode Pusat", "WiFi Sukamaju",
                                                "Net Mekarjaya", "Net Ketiga"}
    assert sum(r.totals.billed for r in rows) == EXPECTED_ALL.billed
    assert sum(r.totals.paid for r in rows) == EXPECTED_ALL.paid
    assert sum(r.totals.unpaid for r in rows) == EXPECTED_ALL.unpaid
    assert sum(r.totals.invoice_count for r in rows) == EXPECTED_ALL.invoice_count
    assert sum(r.revenue for r in rows) == EXPECTED_ALL.revenue
    by_owner = {r.owner_id: r for r in rows}
    for actor, owner_id, expected in scopes(world, mitra3):
        owner = owner_id or (actor.user_id if actor.is_mitra else None)
        if owner is None:
            continue
        row = by_owner[owner]
        assert Figures(row.totals.invoice_count, row.totals.billed, row.totals.paid,
                       row.totals.unpaid, row.revenue) == expected
        # The mitra performance report lists the same row.
        report = report_row(world.admin, "mitra_performance", row.business_name,
                            period=P)
        assert report_figures(report) == expected
    # Isolated subscribers are counted apart, on the dashboard and per mitra alike.
    assert by_owner[world.admin.user_id].isolated_customers == 1
    assert dashboard.dashboard_stats(world.admin).isolated_customers == 1


def test_the_year_summary_month_is_the_month(month):
    world, _mitra3 = month
    summary = finance.year_summary(world.admin, YEAR)
    row = next(m for m in summary.months if m.period == P)
    assert Figures(row.totals.invoice_count, row.totals.billed, row.totals.paid,
                   row.totals.unpaid, row.revenue) == EXPECTED_ALL
    assert row.received - row.reversed == row.revenue == EXPECTED_ALL.revenue
    assert row.reversed == 250_000
    sales = report_row(world.admin, "monthly_sales", month_year(P), year=YEAR)
    assert (sales["Diterima"], sales["Dibatalkan"]) == (row.received, row.reversed)
