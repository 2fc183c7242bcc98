"""WhatsApp through the UI: linking against the gateway in test mode, receipts in the outbox."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect
from sqlmodel import select

from fibernode.config import reset_settings
from fibernode.db import new_session
from fibernode.models import User, WaOutbox
from fibernode.services import receipts
from fibernode.whatsapp import set_gateway
from tests.browser.conftest import DESKTOP, PHONE, shot
from tests.browser.test_workflow_customers import goto, sign_in
from tests.browser.test_workflow_invoices import ensure_invoices, invoice_of

pytestmark = pytest.mark.browser

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GATEWAY_TOKEN = "browser-test-gateway-token"  # noqa: S105
LINKED_PHONE = "6281298765432"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def user_id(username: str) -> str:
    with new_session() as s:
        return str(s.exec(select(User.id).where(User.username == username)).one())


@pytest.fixture
def test_gateway(app_url) -> Iterator[str]:
    """The wa-gateway service in test mode (a recording double instead of WhatsApp),
    with this process's app talking to it as in neonize mode."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "WA_GATEWAY_TOKEN": GATEWAY_TOKEN, "WA_GATEWAY_URL": url,
           "WA_MODE": "neonize", "WA_GATEWAY_TEST_MODE": "1"}
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "fibernode.cli", "wa-gateway", "--test-mode", "--port",
         str(port)], cwd=PROJECT_ROOT, env=env)
    saved = {k: os.environ.get(k) for k in ("WA_GATEWAY_TOKEN", "WA_GATEWAY_URL", "WA_MODE")}
    try:
        for _ in range(100):
            try:
                if httpx.get(url + "/health", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        os.environ.update({k: env[k] for k in saved})
        reset_settings()
        set_gateway(None)  # rebuilt from the settings: the gateway client
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings()
        set_gateway(None)


def test_mitra_links_a_number_by_qr_from_the_gateway(app_url, new_page, test_gateway):
    page = new_page(PHONE, mobile=True)
    sign_in(page, app_url, "mitra2", "Mitra123!")
    page.locator("[data-testid=bottom-nav]").get_by_text("WhatsApp").click()
    expect(page).to_have_url(re.compile(r"/whatsapp$"))
    page.click("[data-testid=wa-connect]")
    qr = page.locator("[data-testid=wa-qr]")
    expect(qr).to_be_visible()
    assert qr.get_attribute("src").startswith("data:image/svg+xml")
    shot(page, "whatsapp-qr-phone")
    # The phone scans it: the gateway reports the pairing and the page follows.
    owner = user_id("mitra2")
    response = httpx.post(f"{test_gateway}/test/sessions/{owner}/pair",
                          json={"phone": LINKED_PHONE},
                          headers={"Authorization": f"Bearer {GATEWAY_TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    expect(page.locator("[data-testid=wa-phone]")).to_have_text(LINKED_PHONE, timeout=30_000)
    expect(qr).to_be_hidden()
    page.click("[data-testid=wa-logout]")
    expect(page.locator("[data-testid=wa-connect]")).to_be_visible()
    # Unlinked: the dashboard says so and the bell lists it.
    page.locator("[data-testid=bottom-nav]").get_by_text("Dashboard").click()
    expect(page.locator("[data-testid=wa-banner]")).to_be_visible()
    expect(page.locator("[data-testid=bell-count]")).to_be_visible()


def test_paying_an_invoice_puts_the_receipt_in_the_outbox(app_url, new_page):
    ensure_invoices()
    page = new_page(DESKTOP)
    sign_in(page, app_url, "superadmin", "Admin123!")
    goto(page, app_url + "/whatsapp")
    # Outbox mode links at once, as the owner's own number.
    connect = page.locator("[data-testid=wa-connect]")
    if connect.is_visible():
        connect.click()
    expect(page.locator("[data-testid=wa-logout]")).to_be_visible()
    invoice = invoice_of("Rudi Hartono")
    goto(page, app_url + "/invoices")
    page.click(f"[data-testid=pay-{invoice.id}]")
    sheet = page.locator("[data-testid=pay-sheet]")
    sheet.locator("[data-testid=confirm-pay]").click()
    expect(sheet).to_be_hidden()
    link = receipts.receipt_url(invoice.receipt_token)
    content = ""
    for _ in range(50):
        with new_session() as s:
            row = s.exec(select(WaOutbox).where(
                WaOutbox.content.contains(invoice.receipt_token))).first()
        if row is not None:
            content = row.content
            break
        time.sleep(0.2)
    assert "✅ *Nota Pembayaran WiFi*" in content
    assert "*Rudi Hartono*" in content
    assert "dikonfirmasi oleh *Super Admin*" in content
    assert f"🧾 Lihat nota lengkap: {link}" in content
    assert "*Rp 250.000*" in content
    # The message log on /whatsapp says it was only recorded (outbox mode), never "Terkirim".
    goto(page, app_url + "/whatsapp?tab=logs")
    log_row = page.locator("[data-testid=wa-log-row]", has_text="Rudi Hartono")
    expect(log_row).to_contain_text("Dicatat (mode uji — tidak dikirim)")
    expect(log_row).not_to_contain_text("Terkirim")
    shot(page, "whatsapp-log-desktop")
