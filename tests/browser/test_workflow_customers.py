"""Packages, mitra and subscribers through the real UI (desktop and phone).

Named to run after test_shell.py, whose dashboard figures assume the seed only.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, shot
from tests.browser.test_shell import login, wait_splash_gone

pytestmark = pytest.mark.browser


def session_cookie(page) -> dict | None:
    """The browser's session cookie (HttpOnly: only the browser itself can read it)."""
    return next((c for c in page.context.cookies() if c["name"] == "fn_session"), None)


def assert_session_set(page) -> None:
    """The session cookie is stored, HttpOnly and SameSite=Lax, invisible to page scripts."""
    for _ in range(100):
        if (cookie := session_cookie(page)) is not None:
            break
        page.wait_for_timeout(100)
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert "fn_session" not in page.evaluate("document.cookie")


def sign_in(page, app_url: str, username: str, password: str) -> None:
    """Log in and wait until the dashboard is up and the session cookie is stored."""
    login(page, app_url, username, password)
    expect(page).to_have_url(re.compile(r"://[^/]+/$"))
    assert_session_set(page)


def goto(page, url: str) -> None:
    page.goto(url)
    wait_splash_gone(page)


def test_superadmin_creates_package_mitra_and_subscriber(app_url, new_page):
    page = new_page(DESKTOP)
    sign_in(page, app_url, "superadmin", "Admin123!")

    # A package.
    goto(page, app_url + "/admin/packages")
    page.click("[data-testid=add-package]")
    sheet = page.locator("[data-testid=package-sheet]")
    sheet.locator("[name=name]").fill("Paket 75 Mbps")
    sheet.locator("[name=speed]").fill("75 Mbps")
    sheet.locator("[name=price]").fill("Rp 300.000")
    sheet.locator("[data-testid=save-package]").click()
    expect(sheet).to_be_hidden()
    row = page.locator("[data-testid=package-row]", has_text="Paket 75 Mbps")
    expect(row).to_contain_text("Rp 300.000")
    expect(row).to_contain_text("Aktif")

    # A mitra; a duplicate business name is refused with the input kept.
    goto(page, app_url + "/admin/mitra")
    expect(page.locator("[data-testid=mitra-row]", has_text="WiFi Sukamaju")).to_be_visible()
    page.click("[data-testid=add-mitra]")
    sheet = page.locator("[data-testid=mitra-sheet]")
    sheet.locator("[name=username]").fill("mitra3")
    sheet.locator("[name=password]").fill("Mitra123!")
    sheet.locator("[name=name]").fill("Joko Widodo")
    sheet.locator("[name=business_name]").fill("wifi sukamaju")
    sheet.locator("[name=phone]").fill("0812-1111-3333")
    sheet.locator("[data-testid=save-mitra]").click()
    expect(sheet).to_contain_text("Nama usaha sudah dipakai.")
    expect(sheet.locator("[name=name]")).to_have_value("Joko Widodo")
    sheet.locator("[name=business_name]").fill("Net Cibubur")
    sheet.locator("[data-testid=save-mitra]").click()
    expect(sheet).to_be_hidden()
    row = page.locator("[data-testid=mitra-row]", has_text="Net Cibubur")
    expect(row).to_contain_text("mitra3")
    expect(row).to_contain_text("6281211113333")

    # A subscriber for the new mitra on the new package.
    goto(page, app_url + "/customers")
    expect(page.locator("[data-testid=customer-row]")).to_have_count(3)
    page.click("[data-testid=add-customer]")
    sheet = page.locator("[data-testid=customer-sheet]")
    sheet.locator("[name=name]").fill("Sri Mulyani")
    sheet.locator("[name=phone]").fill("+62 857 1234 5678")
    sheet.locator("[name=owner_id]").select_option(label="Net Cibubur")
    sheet.locator("[name=package_id]").select_option(label="Paket 75 Mbps · 75 Mbps · Rp 300.000")
    sheet.locator("[name=billing_date]").select_option("12")
    sheet.locator("[name=discount]").fill("25.000")
    expect(sheet.locator("[data-testid=form-total]")).to_have_text("Rp 275.000")
    sheet.locator("[name=nik]").fill("1234")
    sheet.locator("[data-testid=save-customer]").click()
    # Rejected by the server: the reason shows and nothing typed is lost.
    expect(sheet).to_contain_text("NIK harus tepat 16 digit angka.")
    expect(sheet.locator("[name=name]")).to_have_value("Sri Mulyani")
    expect(sheet.locator("[name=phone]")).to_have_value("+62 857 1234 5678")
    sheet.locator("[name=nik]").fill("3201234567890009")
    sheet.locator("[data-testid=save-customer]").click()
    expect(sheet).to_be_hidden()
    row = page.locator("[data-testid=customer-row]", has_text="Sri Mulyani")
    expect(row).to_contain_text("6285712345678")
    expect(row).to_contain_text("Net Cibubur")
    expect(row).to_contain_text("Rp 275.000")
    shot(page, "customers-desktop")

    # The superadmin sees the plain NIK on the detail page.
    row.get_by_role("link", name="Sri Mulyani").click()
    expect(page.locator("[data-testid=detail-name]")).to_have_text("Sri Mulyani")
    expect(page.locator("[data-testid=detail-nik]")).to_have_text("3201234567890009")
    expect(page.locator("[data-testid=detail-total]")).to_have_text("Rp 275.000")

    # The header search finds a subscriber from any page.
    goto(page, app_url + "/admin/packages")
    page.locator("[data-testid=header-search]").fill("dewi")
    hit = page.locator("[data-testid=search-hit]")
    expect(hit).to_have_count(1)
    expect(hit).to_contain_text("Dewi Lestari")
    hit.click()
    expect(page.locator("[data-testid=detail-name]")).to_have_text("Dewi Lestari")


def test_mitra_on_phone_adds_subscriber_in_bottom_sheet_and_edits_phone(app_url, new_page):
    page = new_page(PHONE, mobile=True)
    sign_in(page, app_url, "mitra1", "Mitra123!")
    page.locator("[data-testid=bottom-nav]").get_by_text("Pelanggan").click()
    expect(page).to_have_url(re.compile(r"/customers$"))
    cards = page.locator("[data-testid=customer-card]")
    expect(cards).to_have_count(2)  # only mitra1's own subscribers
    expect(page.locator("[data-testid=customer-row]").first).to_be_hidden()  # no table

    page.click("[data-testid=fab]")
    sheet = page.locator("[data-testid=customer-sheet]")
    expect(sheet).to_be_visible()
    page.wait_for_timeout(400)  # the slide-up animation takes 250 ms
    box = sheet.bounding_box()
    assert abs(box["y"] + box["height"] - PHONE["height"]) <= 2, "sheet must sit on the bottom"
    assert box["width"] >= PHONE["width"] - 1, "sheet spans the screen"
    expect(sheet.locator("[name=owner_id]")).to_have_count(0)  # a mitra adds only its own
    sheet.locator("[name=name]").fill("Bayu Saputra")
    sheet.locator("[name=phone]").fill("0813-2222-4444")
    sheet.locator("[name=package_id]").select_option(label="Paket 20 Mbps · 20 Mbps · Rp 150.000")
    sheet.locator("[name=billing_date]").select_option("7")
    sheet.locator("[name=discount]").fill("0")
    shot(page, "customer-sheet-mobile")
    sheet.locator("[data-testid=save-customer]").click()
    expect(sheet).to_be_hidden()
    card = cards.filter(has_text="Bayu Saputra")
    expect(card).to_contain_text("6281322224444")
    expect(card).to_contain_text("Rp 150.000")
    expect(cards).to_have_count(3)

    # Edit: only phone and discount are editable for a mitra.
    card.locator("button[aria-label=Ubah]").click()
    expect(sheet).to_be_visible()
    expect(sheet.locator("[name=name]")).to_be_disabled()
    expect(sheet.locator("[name=package_id]")).to_be_disabled()
    sheet.locator("[name=phone]").fill("+62 813 5555 6666")
    sheet.locator("[name=discount]").fill("20000")
    expect(sheet.locator("[data-testid=form-total]")).to_have_text("Rp 130.000")
    sheet.locator("[data-testid=save-customer]").click()
    expect(sheet).to_be_hidden()
    card = cards.filter(has_text="Bayu Saputra")
    expect(card).to_contain_text("6281355556666")  # normalised and shown back
    expect(card).to_contain_text("Rp 130.000")  # discount changed the total

    card.locator("a").first.click()
    expect(page.locator("[data-testid=detail-total]")).to_have_text("Rp 130.000")
    expect(page.locator("[data-testid=detail-discount]")).to_have_text("Rp 20.000")
    expect(page.locator("[data-testid=isolir]")).to_have_count(0)  # superadmin only
    shot(page, "customer-detail-mobile")
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0


def test_mitra_cannot_open_admin_pages_or_others_subscribers(app_url, new_page):
    page = new_page(DESKTOP)
    sign_in(page, app_url, "mitra2", "Mitra123!")
    for path in ("/admin/mitra", "/admin/packages", "/customers/import"):
        goto(page, app_url + path)
        expect(page.locator("[data-testid=forbidden]")).to_be_visible()
    goto(page, app_url + "/customers")
    expect(page.locator("[data-testid=customer-row]")).to_have_count(0)
    expect(page.get_by_text("Tidak ada pelanggan")).to_be_visible()
    page.locator("[data-testid=header-search]").fill("Ahmad")  # mitra1's subscriber
    expect(page.get_by_text("Tidak ada pelanggan yang cocok.")).to_be_visible()


IMPORT_CSV = (
    "\ufeffnama;telepon;diskon;tanggal;area;paket_nama;paket_tarif;total_bayar;nik;"
    "tanggal_register\n"
    "Hendra Gunawan;0812-7000-0001;0;3;WiFi Sukamaju;Paket 10 Mbps;100.000;Rp 100.000;;"
    "15/01/2025\n"
    "Lina Marlina;+62 812 7000 0002;10000;9;Net Mekarjaya;Paket 20 Mbps;150000;140000;;"
    "2025-02-01\n"
    "Tanpa Area;6281270000003;0;5;Net Antah Berantah;Paket 10 Mbps;100000;100000;;2025-02-01\n"
)


def test_superadmin_imports_csv_with_preview_and_error_report(app_url, new_page):
    page = new_page(DESKTOP)
    sign_in(page, app_url, "superadmin", "Admin123!")
    goto(page, app_url + "/customers")
    page.click("[data-testid=import-link]")
    expect(page).to_have_url(re.compile(r"/customers/import$"))

    # A binary file is refused with a clear message.
    page.locator("input[type=file]").set_input_files(files=[{
        "name": "foto.csv", "mimeType": "text/csv", "buffer": b"\x89PNG\r\n\x1a\n\x00\x00"}])
    expect(page.locator("[data-testid=upload-error]")).to_contain_text("bukan file CSV")

    page.locator("input[type=file]").set_input_files(files=[{
        "name": "pelanggan.csv", "mimeType": "text/csv",
        "buffer": IMPORT_CSV.encode("utf-8")}])
    expect(page.locator("[data-testid=import-status]")).to_have_text(
        "Pratinjau — belum diimpor")
    expect(page.locator("[data-testid=count-valid]")).to_have_text("2")
    expect(page.locator("[data-testid=count-invalid]")).to_have_text("1")
    bad = page.locator("[data-testid=import-row-invalid]")
    expect(bad).to_contain_text("Tanpa Area")
    expect(bad).to_contain_text("Net Antah Berantah")
    expect(page.locator("[data-testid=import-row-valid]")).to_have_count(2)
    shot(page, "import-preview")

    page.click("[data-testid=confirm-import]")
    expect(page.locator("[data-testid=import-status]")).to_have_text("Selesai")
    expect(page.locator("[data-testid=count-imported]")).to_have_text("2")
    with page.expect_download() as dl:
        page.click("[data-testid=error-report]")
    report = dl.value.path().read_text(encoding="utf-8-sig")
    assert "Tanpa Area" in report and "Hendra Gunawan" not in report

    goto(page, app_url + "/customers?q=7000")
    rows = page.locator("[data-testid=customer-row]")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="Lina Marlina")).to_contain_text("Rp 140.000")
