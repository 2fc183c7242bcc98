"""Billing through the UI: a manual run, paying on a phone, conflicts and public receipts."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import Customer, Invoice
from fibernode.pages.invoices import period_options
from fibernode.services import billing, settings
from fibernode.services.context import Actor
from tests.browser.conftest import DESKTOP, PHONE, shot
from tests.browser.test_workflow_customers import goto, sign_in
from tests.factories import actor_for

pytestmark = pytest.mark.browser


def next_period() -> str:
    """The first period every demo subscriber is billed for: the seed registers them
    today, after this month's billing dates, so their first invoice is due next month
    for the month after."""
    return period_options(clock.today(), back=0, ahead=2)[0]["value"]


def ensure_invoices() -> None:
    """The next period's invoices for everyone (idempotent, as the run itself)."""
    billing.run_billing(actor_for("superadmin"), period=next_period())


def invoice_of(name: str) -> Invoice:
    with new_session() as s:
        return s.exec(select(Invoice).join(Customer, Customer.id == Invoice.customer_id)
                      .where(Customer.name == name, Invoice.period == next_period())).one()


def test_superadmin_runs_billing_by_hand(app_url, new_page):
    page = new_page(DESKTOP)
    sign_in(page, app_url, "superadmin", "Admin123!")
    goto(page, app_url + "/invoices")
    page.click("[data-testid=open-run]")
    sheet = page.locator("[data-testid=run-sheet]")
    sheet.locator("[name=period]").select_option(next_period())
    sheet.locator("[data-testid=run-billing]").click()
    created = sheet.locator("[data-testid=run-created]")
    expect(created).to_have_text(re.compile(r"^\d+$"))
    assert int(created.inner_text()) > 0
    # Running again creates nothing twice.
    sheet.locator("[data-testid=run-billing]").click()
    expect(created).to_have_text("0")
    sheet.locator("button[aria-label=Tutup]").click()
    expect(page.locator("[data-testid=invoice-row]", has_text="Ahmad Fauzi")).to_be_visible()
    shot(page, "invoices-desktop")


def test_mitra_swipes_a_card_and_pays_on_a_phone(app_url, new_page):
    ensure_invoices()
    page = new_page(PHONE, mobile=True)
    sign_in(page, app_url, "mitra1", "Mitra123!")
    page.locator("[data-testid=bottom-nav]").get_by_text("Tagihan").click()
    expect(page).to_have_url(re.compile(r"/invoices$"))
    card = page.locator("[data-testid=invoice-card]", has_text="Ahmad Fauzi")
    expect(card).to_contain_text("Belum bayar")
    pay = card.locator("[data-testid=swipe-pay]")
    expect(pay).not_to_be_in_viewport()  # hidden until the card is swiped left
    card.hover()
    page.mouse.wheel(240, 0)  # a horizontal swipe scrolls the snapping card
    expect(pay).to_be_in_viewport()
    pay.click()
    sheet = page.locator("[data-testid=pay-sheet]")
    expect(sheet).to_contain_text("Rp 100.000")
    sheet.locator("[name=method]").select_option("transfer")
    sheet.locator("[data-testid=confirm-pay]").click()
    expect(sheet).to_be_hidden()
    expect(card).to_contain_text("Lunas")
    shot(page, "invoices-mobile-paid")
    inv = invoice_of("Ahmad Fauzi")
    assert inv.paid_amount == inv.total_amount and inv.version == 2


def test_second_tab_paying_the_same_invoice_sees_the_conflict(app_url, new_page):
    ensure_invoices()
    first, second = new_page(DESKTOP), new_page(DESKTOP)
    for page in (first, second):
        sign_in(page, app_url, "mitra1", "Mitra123!")
        goto(page, app_url + "/invoices?q=Dewi")
        expect(page.locator("[data-testid=invoice-row]", has_text="Dewi Lestari")).to_be_visible()
    before = invoice_of("Dewi Lestari")
    first.locator(f"[data-testid=pay-{before.id}]").click()
    second.locator(f"[data-testid=pay-{before.id}]").click()
    first.locator("[data-testid=confirm-pay]").click()
    expect(first.locator("[data-testid=pay-sheet]")).to_be_hidden()
    second.locator("[data-testid=confirm-pay]").click()
    expect(second.locator("[data-testid=conflict]")).to_contain_text(
        "Data sudah diubah oleh user lain, silakan refresh.")
    after = invoice_of("Dewi Lestari")
    assert after.version == before.version + 1  # the stale pay changed nothing
    assert after.paid_amount == after.total_amount


def test_public_receipt_shows_logo_and_only_the_toggled_fields(app_url, new_page):
    ensure_invoices()
    settings.update_settings(Actor.system("test"), {"receipt_show_area": False,
                                                    "receipt_show_nik": False})
    paid = invoice_of("Ahmad Fauzi")
    if paid.paid_amount == 0:  # this test may run on its own
        from fibernode.services import invoices

        invoices.pay_invoice(actor_for("mitra1"), paid.id, version=paid.version,
                             method="cash")
    page = new_page(PHONE, mobile=True)
    page.goto(f"{app_url}/receipt/{paid.receipt_token}")
    receipt = page.locator("[data-testid=receipt]")
    expect(receipt).to_be_visible(timeout=10_000)  # no splash on public receipts
    expect(page.locator("[data-testid=receipt-status]")).to_have_text("LUNAS")
    expect(page.locator("[data-testid=receipt-customer]")).to_have_text("Ahmad Fauzi")
    expect(page.locator("[data-testid=receipt-company]")).to_have_text("WiFi Sukamaju")
    logo = page.locator("[data-testid=receipt-logo]")
    expect(logo).to_be_visible()
    assert page.evaluate("el => el.naturalWidth > 0", logo.element_handle())
    expect(page.locator("[data-testid=receipt-code]")).to_have_text(re.compile(r"^\w{4}-\w{4}$"))
    html = page.content()
    assert "WiFi Sukamaju" in html
    assert "receipt-area" not in html and "receipt-nik" not in html  # never sent
    shot(page, "receipt-mobile")

    page.goto(f"{app_url}/receipt/{'x' * 32}")
    expect(page.locator("[data-testid=receipt-missing]")).to_have_text("Nota tidak ditemukan")


def test_unpaid_invoice_page_is_a_bill_with_bank_details(app_url, new_page):
    from fibernode.services import customers, packages, users

    admin, mitra2 = actor_for("superadmin"), actor_for("mitra2")
    pkg = next(p for p in packages.list_packages(mitra2) if p.name == "Paket 30 Mbps")
    customers.create_customer(mitra2, name="Yanti Bill", phone="081299880011",
                              package_id=pkg.id, billing_date=20)
    ensure_invoices()
    mitra = users.get_mitra(admin, mitra2.user_id)
    users.update_mitra(admin, mitra.id, name=mitra.name, business_name=mitra.business_name,
                       bank_name="BCA", bank_account="1234567890", bank_holder="Siti Rahayu")
    inv = invoice_of("Yanti Bill")
    page = new_page(DESKTOP)
    page.goto(f"{app_url}/receipt/{inv.receipt_token}")
    expect(page.locator("[data-testid=receipt-status]")).to_have_text("BELUM LUNAS")
    expect(page.locator("[data-testid=receipt-total]")).to_have_text("Rp 200.000")
    expect(page.locator("[data-testid=receipt-bank]")).to_contain_text("1234567890")
