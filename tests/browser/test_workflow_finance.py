"""Finance through the UI: dashboard charts on a phone and in dark mode, the per-mitra
comparison, and a recap export job with its download link.

Only subscribers made here, registered months ago, are billed for past periods, so the
seed's customers and their next-period invoices (which the invoice and WhatsApp tests
use) are left alone.
"""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.formatting import short_month_year
from fibernode.models import Customer, Invoice
from fibernode.services import billing, customers, finance_files, invoices, packages
from tests.browser.conftest import DESKTOP, PHONE, PROJECT_ROOT, shot
from tests.browser.test_workflow_customers import goto, sign_in
from tests.factories import actor_for

pytestmark = pytest.mark.browser

# (name, phone, owner, billing day, months registered before this month)
SUBSCRIBERS = [("Fina Grafik", "081277000101", "mitra2", 3, 6),
               ("Galih Grafik", "081277000102", "mitra2", 8, 5),
               ("Hana Grafik", "081277000103", "mitra1", 12, 4)]
BILLED_BACK = 3  # this month and the three before


def backend_url() -> str:
    """The harness's backend origin (the cookies are per host, so the session goes along)."""
    env = json.loads((PROJECT_ROOT / ".web" / "env.json").read_text())
    return env["PING"].rsplit("/", 1)[0]


def months_ago(today: date, months: int) -> date:
    """The first day of the month ``months`` before ``today``'s."""
    index = today.year * 12 + today.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


@pytest.fixture(scope="module")
def finance_data(app_url) -> dict:
    """Three older subscribers, four billed periods, full and partial payments."""
    today = clock.today()
    admin = actor_for("superadmin")
    owners = {u: actor_for(u) for u in ("mitra1", "mitra2")}
    pkg = next(p for p in packages.list_packages(admin) if p.name == "Paket 30 Mbps")
    for name, phone, owner, day, back in SUBSCRIBERS:
        customers.create_customer(owners[owner], name=name, phone=phone, package_id=pkg.id,
                                  billing_date=day, register_date=months_ago(today, back))
    periods = billing.periods_around(today, BILLED_BACK, 0)
    for period in periods:
        billing.run_billing(admin, period=period)
    with new_session() as s:
        rows = s.exec(select(Invoice, Customer.name)
                      .join(Customer, Customer.id == Invoice.customer_id)
                      .where(Customer.name.in_([n for n, *_ in SUBSCRIBERS]))
                      .order_by(Invoice.period)).all()
    assert len(rows) >= 2 * len(SUBSCRIBERS)
    for i, (inv, name) in enumerate(rows):
        owner = next(o for n, _, o, *_ in SUBSCRIBERS if n == name)
        if i % 3 == 2:
            continue  # left unpaid
        amount = 50_000 if i % 3 == 1 else None  # partial / full
        invoices.pay_invoice(owners[owner], inv.id, version=inv.version, method="cash",
                             amount=amount)
    return {"period": periods[0], "mitra2_id": str(owners["mitra2"].user_id)}


@pytest.fixture
def inline_worker(sent_jobs):
    """Build finance files in a thread of this process instead of a Celery worker."""
    sent_jobs.run_inline(finance_files.BUILD_TASK, thread=True)


def charts_drawn(page, test_id: str, layer: str) -> None:
    """The plotly chart inside ``test_id`` has drawn at least one trace in ``layer``."""
    box = page.locator(f"[data-testid={test_id}]")
    expect(box.locator(".js-plotly-plot .main-svg").first).to_be_visible(timeout=30_000)
    expect(box.locator(f".{layer} .trace").first).to_be_attached()


def test_mitra_sees_dashboard_charts_on_a_phone(app_url, new_page, finance_data):
    page = new_page(PHONE, mobile=True)
    sign_in(page, app_url, "mitra2", "Mitra123!")
    charts_drawn(page, "chart-revenue", "scatterlayer")
    charts_drawn(page, "chart-growth", "barlayer")
    this_month = short_month_year(clock.current_period())
    plot = page.locator("[data-testid=chart-revenue] .js-plotly-plot")
    assert plot.evaluate("e => e.data[0].x[e.data[0].x.length - 1]") == this_month
    # The chart scrolls sideways inside its card; the page itself does not.
    box = page.locator("[data-testid=chart-revenue]")
    assert box.evaluate("e => e.scrollWidth > e.clientWidth + 100")
    box.evaluate("e => { e.scrollLeft = 200; }")
    assert box.evaluate("e => e.scrollLeft") > 0
    assert page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
    expect(page.locator("[data-testid=basis-note]")).to_contain_text("Pendapatan")
    shot(page, "finance-dashboard-mitra-phone")

    # Her own month on /finance, as cards, and the year chart.
    page.get_by_text("Laporan keuangan lengkap").click()
    expect(page).to_have_url(re.compile(r"/finance$"))
    page.locator("[data-testid=finance-month]").select_option(
        finance_data["period"].split("-")[1])
    expect(page.locator("[data-testid=finance-card]", has_text="Fina Grafik")).to_be_visible()
    expect(page.locator("[data-testid=finance-card]", has_text="Hana Grafik")).to_have_count(0)
    page.click("[data-testid=finance-tab-year]")
    charts_drawn(page, "chart-year", "barlayer")
    expect(page.locator("[data-testid=year-card]")).to_have_count(12)
    shot(page, "finance-year-mitra-phone")


def test_superadmin_dark_dashboard_mitra_comparison_and_recap(app_url, new_page, finance_data,
                                                            inline_worker):
    page = new_page(DESKTOP)
    sign_in(page, app_url, "superadmin", "Admin123!")
    page.click("[data-testid=theme-toggle]")
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
    charts_drawn(page, "chart-revenue", "scatterlayer")
    charts_drawn(page, "chart-growth", "barlayer")
    # plotly_dark's light tick labels on the dark card.
    fill = page.locator("[data-testid=chart-revenue] .xtick text").first.evaluate(
        "e => getComputedStyle(e).fill")
    channels = [int(c) for c in re.findall(r"\d+", fill)[:3]]
    assert sum(channels) > 600, fill
    shot(page, "finance-dashboard-admin-dark")

    # Every mitra side by side; biggest billed first; a row opens that mitra's month.
    goto(page, f"{app_url}/admin/finance?period={finance_data['period']}")
    rows = page.locator("[data-testid=mitra-finance-row]")
    expect(rows.filter(has_text="Net Mekarjaya")).to_be_visible()
    expect(rows.filter(has_text="WiFi Sukamaju")).to_be_visible()
    expect(page.locator("[data-testid=mitra-finance-total]")).to_contain_text("Rp")
    page.click("[data-testid=mitra-sort-billed]")
    expect(rows.first).to_contain_text("Net Mekarjaya")
    shot(page, "finance-admin-mitra-dark")
    rows.filter(has_text="Net Mekarjaya").locator("td").nth(2).click()
    expect(page).to_have_url(re.compile(
        rf"/finance\?.*owner={finance_data['mitra2_id']}.*"))
    table = page.locator("[data-testid=finance-row]")
    expect(table.filter(has_text="Fina Grafik")).to_be_visible()
    expect(table.filter(has_text="Hana Grafik")).to_have_count(0)
    expect(page.locator("[data-testid=finance-owner]")).to_have_value(finance_data["mitra2_id"])
    shot(page, "finance-month-owner-dark")

    # A recap export: a job with progress, then a download link.
    page.click("[data-testid=finance-report-link]")
    expect(page).to_have_url(re.compile(r"/finance/report$"))
    page.fill("[data-testid=recap-start]", months_ago(clock.today(), 5).isoformat())
    page.click("[data-testid=start-recap]")
    link = page.locator("[data-testid=job-ready]")
    expect(link).to_be_visible(timeout=30_000)
    href = link.get_attribute("href")
    assert re.fullmatch(r"/api/files/[0-9a-f-]{36}", href or "")
    # Production serves UI and API on one port; the harness has a separate backend.
    download = page.request.get(backend_url() + href)
    assert download.ok, download.status
    assert download.body()[:2] == b"PK"  # an XLSX is a zip
    # An aging PDF (its parameter is a day) and a mitra's settlement DOCX.
    page.locator("[data-testid=report-kind]").select_option("aging")
    expect(page.locator("[data-testid=report-day]")).to_be_visible()
    page.locator("[data-testid=report-fmt]").select_option("pdf")
    page.click("[data-testid=start-report]")
    page.locator("[data-testid=settle-owner]").select_option(finance_data["mitra2_id"])
    page.click("[data-testid=start-settlement]")
    expect(page.locator("[data-testid=job-ready]")).to_have_count(3, timeout=60_000)
    expect(page.locator("[data-testid=job]").first).to_contain_text("Rekonsiliasi")
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "finance-report-jobs")
