"""The audit log as an ISP owner reads it: filters by user, data and Jakarta days, one
record's history, before → after lines, paging that keeps the filters, and reset.

Runs before the other workflow tests: its subscriber (and with it its invoice and
payment) is deleted again at the end, so their counts see the seed only.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import User
from fibernode.services import activity, customers, invoices, packages
from tests.browser.conftest import DESKTOP, PHONE, shot
from tests.browser.test_workflow_customers import goto, sign_in
from tests.factories import actor_for
from tests.services.invoice_data import make_invoice

pytestmark = pytest.mark.browser

NAME = "Rudi Auditlog"
PHONE_A, PHONE_B = "081277009001", "081377009002"
STORED_A, STORED_B = "6281277009001", "6281377009002"
UPDATES = 21  # A → B, B → A, …, A → B: with the create, 22 rows (two pages of 20)


def user_id(username: str) -> str:
    with new_session() as s:
        return str(s.exec(select(User.id).where(User.username == username)).one())


@pytest.fixture(scope="module")
def audit_data(app_url):
    """A subscriber of mitra1 whose phone mitra1 changes 21 times, and an invoice of it
    the superadmin pays; all of it deleted again afterwards (the audit rows stay)."""
    admin, mitra = actor_for("superadmin"), actor_for("mitra1")
    pkg = next(p for p in packages.list_packages(admin) if p.name == "Paket 10 Mbps")
    cid = customers.create_customer(mitra, name=NAME, phone=PHONE_A, package_id=pkg.id,
                                    billing_date=9)
    for i in range(UPDATES):
        customers.update_customer(mitra, cid, phone=PHONE_B if i % 2 == 0 else PHONE_A)
    inv = make_invoice(NAME)
    invoices.pay_invoice(admin, inv.id, version=inv.version, method="cash")
    yield {"customer_id": str(cid), "invoice_id": str(inv.id)}
    customers.delete_customer(actor_for("superadmin"), cid)


def apply(page) -> None:
    page.click("[data-testid=activity-apply]")


def pager_text(page):
    return page.locator("[data-testid=pager]")


def test_superadmin_filters_reads_changes_pages_and_resets(app_url, new_page, audit_data):
    page = new_page(DESKTOP)
    sign_in(page, app_url, "superadmin", "Admin123!")
    goto(page, app_url + "/admin/activity")
    form = page.locator("[data-testid=activity-filters]")
    rows = page.locator("[data-testid=activity-row]")
    expect(rows).to_have_count(20)

    # By user and data: mitra1's changes to subscribers, newest first (earlier browser
    # tests may have added a few of their own).
    mine = activity.list_activity(actor_for("superadmin"), user_id=uuid.UUID(user_id("mitra1")),
                                  resource="customers").total
    assert 22 <= mine <= 40
    form.locator("[name=user]").select_option(user_id("mitra1"))
    form.locator("[name=resource]").select_option("customers")
    apply(page)
    expect(pager_text(page)).to_contain_text(f"{mine} catatan · halaman 1 dari 2")
    expect(rows).to_have_count(20)
    expect(page.locator("[data-testid=activity-user]", has_text="mitra1")).to_have_count(20)
    newest = rows.first
    expect(newest.locator("[data-testid=activity-action]")).to_have_text("customer.update")
    expect(newest.locator("[data-testid=activity-changes]")).to_have_text(
        f"phone: {STORED_A} → {STORED_B}")
    expect(newest).to_contain_text("Pelanggan")
    expect(newest.locator("[data-testid=activity-resource-id]")).to_have_text(
        audit_data["customer_id"][:8])
    shot(page, "activity-filtered")

    # The filters survive paging.
    page.get_by_role("button", name="Berikutnya").click()
    expect(pager_text(page)).to_contain_text("halaman 2 dari 2")
    expect(rows).to_have_count(mine - 20)
    expect(page.locator("[data-testid=activity-user]", has_text="mitra1")).to_have_count(mine - 20)
    expect(form.locator("[name=user]")).to_have_value(user_id("mitra1"))
    created = rows.filter(has_text="customer.create").filter(
        has=page.locator("[data-testid=activity-resource-id]",
                         has_text=audit_data["customer_id"][:8]))
    expect(created).to_have_count(1)

    # The full metadata of one row, on demand.
    created.locator("[data-testid=activity-json-toggle]").click()
    expect(page.locator("[data-testid=activity-json]")).to_contain_text(NAME)
    created.locator("[data-testid=activity-json-toggle]").click()
    expect(page.locator("[data-testid=activity-json]")).to_have_count(0)

    # Reset: every filter off, page 1.
    page.click("[data-testid=activity-reset]")
    expect(pager_text(page)).to_contain_text("halaman 1 dari ")
    expect(form.locator("[name=user]")).to_have_value("")
    expect(form.locator("[name=resource]")).to_have_value("")
    expect(rows).to_have_count(20)
    expect(page.locator("[data-testid=activity-user]", has_text="superadmin").first).to_be_visible()

    # The payment reads as before → after.
    form.locator("[name=resource]").select_option("invoices")
    form.locator("[name=action_group]").select_option("invoice.")
    apply(page)
    paid = rows.filter(has_text="invoice.pay").first
    expect(paid.locator("[data-testid=activity-user]")).to_have_text("superadmin")
    changes = paid.locator("[data-testid=activity-changes]")
    expect(changes).to_contain_text("status: unpaid → paid")
    expect(changes).to_contain_text(re.compile(r"paid_amount: 0 → \d+"))
    expect(paid.locator("[data-testid=activity-meta]")).to_contain_text("method: cash")

    # A subscriber's id: that record's whole history, by anyone, and the filters cleared.
    form.locator("[name=resource]").select_option("customers")
    form.locator("[name=action_group]").select_option("")
    apply(page)
    rows.filter(has_text="customer.update").first.locator(
        "[data-testid=activity-resource-id]").click()
    history = page.locator("[data-testid=activity-history]")
    expect(history).to_contain_text(audit_data["customer_id"])
    expect(pager_text(page)).to_contain_text("22 catatan")
    expect(form.locator("[name=resource]")).to_have_value("customers")
    expect(page.locator("[data-testid=activity-resource-id]",
                        has_text=audit_data["customer_id"][:8])).to_have_count(20)
    page.get_by_role("button", name="Berikutnya").click()
    expect(pager_text(page)).to_contain_text("halaman 2 dari 2")
    expect(rows).to_have_count(2)
    expect(rows.last.locator("[data-testid=activity-action]")).to_have_text("customer.create")
    expect(history).to_be_visible()
    page.click("[data-testid=activity-history-clear]")
    expect(history).to_have_count(0)

    # Jakarta days: today has rows, tomorrow none, and a backwards range is refused.
    today = clock.today()
    page.click("[data-testid=activity-reset]")
    form.locator("[name=date_from]").fill(today.isoformat())
    form.locator("[name=date_to]").fill(today.isoformat())
    apply(page)
    expect(rows.first).to_be_visible()
    expect(page.locator(".fn-alert-error")).to_have_count(0)
    form.locator("[name=date_from]").fill((today + timedelta(days=1)).isoformat())
    form.locator("[name=date_to]").fill("")
    apply(page)
    expect(page.get_by_text("Tidak ada catatan")).to_be_visible()
    expect(rows).to_have_count(0)
    form.locator("[name=date_from]").fill(today.isoformat())
    form.locator("[name=date_to]").fill((today - timedelta(days=1)).isoformat())
    apply(page)
    expect(page.locator(".fn-alert-error")).to_have_text(
        "Tanggal akhir tidak boleh sebelum tanggal awal.")
    expect(rows).to_have_count(0)
    # What was typed stays, to be corrected.
    expect(form.locator("[name=date_to]")).to_have_value((today - timedelta(days=1)).isoformat())
    shot(page, "activity-bad-range")
    page.click("[data-testid=activity-reset]")
    expect(page.locator(".fn-alert-error")).to_have_count(0)
    expect(form.locator("[name=date_from]")).to_have_value("")
    expect(rows).to_have_count(20)

    # Background jobs and the seeder: "Sistem".
    form.locator("[name=user]").select_option("system")
    apply(page)
    expect(rows.first.locator("[data-testid=activity-user]")).to_have_text("sistem")
    expect(page.locator("[data-testid=activity-user]", has_text="superadmin")).to_have_count(0)


def test_audit_log_on_a_phone(app_url, new_page, audit_data):
    page = new_page(PHONE, mobile=True)
    sign_in(page, app_url, "superadmin", "Admin123!")
    goto(page, app_url + "/admin/activity")
    form = page.locator("[data-testid=activity-filters]")
    form.locator("[name=resource]").select_option("customers")
    form.locator("[name=user]").select_option(user_id("mitra1"))
    page.click("[data-testid=activity-apply]")
    row = page.locator("[data-testid=activity-row]").first
    expect(row.locator("[data-testid=activity-changes]")).to_have_text(
        f"phone: {STORED_A} → {STORED_B}")
    # Nothing is wider than the screen: the filters wrap, the rows stack.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    for name in ("action_group", "user", "resource", "date_from", "date_to"):
        box = form.locator(f"[name={name}]").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (name, box)
    expect(page.locator("[data-testid=activity-apply]")).to_be_in_viewport()
    shot(page, "activity-phone")


def test_mitra_gets_no_access(app_url, new_page):
    page = new_page(DESKTOP)
    sign_in(page, app_url, "mitra1", "Mitra123!")
    goto(page, app_url + "/admin/activity")
    expect(page.locator("[data-testid=forbidden]")).to_contain_text("tidak punya akses")
    expect(page.locator("[data-testid=activity-filters]")).to_have_count(0)
    expect(page.locator("table")).to_have_count(0)
