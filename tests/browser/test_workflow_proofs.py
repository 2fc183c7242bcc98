"""Transfer-slip photos through the UI: a mitra on a phone pays by transfer, photographs
the slip, sees it processed; a blurred retake is flagged "Foto buram, silakan ulangi"."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from fibernode.services import customers, packages, payment_proofs
from tests.browser.conftest import PHONE, shot
from tests.browser.test_workflow_customers import sign_in
from tests.browser.test_workflow_finance import backend_url
from tests.factories import actor_for
from tests.services import proof_image_data as gen
from tests.services.invoice_data import make_invoice

pytestmark = pytest.mark.browser

NAME = "Putri Buktitransfer"


@pytest.fixture
def inline_worker(sent_jobs):
    """Process proofs in a thread of this process instead of a Celery worker."""
    sent_jobs.run_inline(payment_proofs.PROCESS_TASK, thread=True)


@pytest.fixture
def unpaid_invoice(app_url):
    mitra = actor_for("mitra1")
    pkg = next(p for p in packages.list_packages(actor_for("superadmin"))
               if p.name == "Paket 10 Mbps")
    cust = customers.create_customer(mitra, name=NAME, phone="081277001122",
                                     package_id=pkg.id, billing_date=9)
    assert cust
    return make_invoice(NAME, "2026-01")


def test_mitra_photographs_the_transfer_slip_on_a_phone(app_url, new_page, inline_worker,
                                                        unpaid_invoice):
    page = new_page(PHONE, mobile=True)
    sign_in(page, app_url, "mitra1", "Mitra123!")
    page.goto(app_url + "/invoices?q=" + NAME.split()[1])
    card = page.locator("[data-testid=invoice-card]", has_text=NAME)
    expect(card).to_contain_text("Belum bayar")
    card.hover()
    page.mouse.wheel(240, 0)
    pay = card.locator("[data-testid=swipe-pay]")
    expect(pay).to_be_in_viewport()
    pay.click()
    sheet = page.locator("[data-testid=pay-sheet]")
    sheet.locator("[name=method]").select_option("transfer")
    sheet.locator("[data-testid=confirm-pay]").click()

    # Straight on to the photo: the camera input of the proof sheet.
    proofs = page.locator("[data-testid=proof-sheet]")
    expect(proofs).to_be_visible()
    expect(proofs).to_contain_text("Unggah bukti transfer")
    camera = proofs.locator("input[type=file]")
    assert camera.get_attribute("capture") == "environment"
    assert "image/*" in (camera.get_attribute("accept") or "")
    camera.set_input_files(files=[{"name": "IMG_0001.jpg", "mimeType": "image/jpeg",
                                   "buffer": gen.encode(gen.photographed_slip())}])
    status = proofs.locator("[data-testid=proof-status]").first
    expect(status).to_have_attribute("data-status", "ready", timeout=30_000)
    thumb = proofs.locator("[data-testid=proof-thumb]")
    expect(thumb).to_have_count(1)
    src = thumb.get_attribute("src")
    assert re.fullmatch(r"/api/payment-proofs/[0-9a-f-]{36}/file\?variant=processed", src)
    image = page.request.get(backend_url() + src)  # the session cookie goes along
    assert image.status == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.body()[:3] == b"\xff\xd8\xff"
    original = proofs.locator("[data-testid=proof-original]").first.get_attribute("href")
    assert original.endswith("variant=original")
    # The processing log, step by step with milliseconds.
    proofs.locator("[data-testid=proof-log] summary").first.click()
    steps = proofs.locator("[data-testid=proof-card]").first.locator(
        "[data-testid=proof-step]")
    expect(steps.first).to_be_visible()
    assert steps.count() >= 8
    expect(proofs).to_contain_text("Deteksi dokumen")
    shot(page, "proofs-ready-phone")

    # A blurred retake is flagged prominently, with a retake prompt.
    camera.set_input_files(files=[{"name": "IMG_0002.jpg", "mimeType": "image/jpeg",
                                   "buffer": gen.encode(gen.blurred_slip())}])
    expect(proofs.locator("[data-testid=proof-reject]")).to_have_text(
        re.compile("Foto buram, silakan ulangi"), timeout=30_000)
    expect(proofs).to_contain_text("Foto ulang bukti transfer")
    expect(proofs.locator("[data-testid=proof-card]")).to_have_count(2)
    shot(page, "proofs-blurred-phone")

    # A file that is no image is refused at once.
    camera.set_input_files(files=[{"name": "slip.jpg", "mimeType": "image/jpeg",
                                   "buffer": b"%PDF-1.4 bukan foto"}])
    expect(proofs.locator("[data-testid=proof-error]")).to_contain_text("bukan gambar")
