"""Public receipt PDFs (rate-limited) and cookie-authenticated file downloads."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from fibernode.api import create_api
from fibernode.services import auth, invoices, ratelimit, receipts
from fibernode.services.context import Actor
from tests.factories import ADMIN_PASSWORD, MITRA_PASSWORD
from tests.services.invoice_data import make_invoice


@pytest.fixture(autouse=True)
def _fresh_limits():
    ratelimit.reset_memory()
    yield
    ratelimit.reset_memory()


def _client(username: str | None = None) -> TestClient:
    client = TestClient(create_api())
    if username:
        password = ADMIN_PASSWORD if username == "superadmin" else MITRA_PASSWORD
        token = auth.login(Actor.anonymous("10.2.2.2", "pytest"), username, password).token
        client.cookies.set(auth.SESSION_COOKIE, token)
        # A browser sends its page's origin; cookie-authenticated changes need it.
        client.headers["Origin"] = "http://testserver"
    return client


def test_receipt_pdf_is_public_and_unknown_tokens_are_404(world):
    inv = make_invoice("Ahmad Fauzi")
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash")
    res = _client().get(f"/api/receipt/{inv.receipt_token}.pdf")
    assert res.status_code == 200
    assert res.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(res.content)).pages)
    assert "Ahmad Fauzi" in text
    missing = _client().get("/api/receipt/" + "x" * 32 + ".pdf")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Nota tidak ditemukan."


def test_receipt_pdf_is_rate_limited_per_ip(world):
    client = _client()
    codes = [client.get("/api/receipt/" + "y" * 32 + ".pdf").status_code for _ in range(21)]
    assert codes[:20] == [404] * 20
    assert codes[20] == 429
    res = client.get("/api/receipt/" + "y" * 32 + ".pdf")
    assert int(res.headers["retry-after"]) > 0


def test_bundle_file_downloads_only_for_its_owner_or_superadmin(world):
    inv = make_invoice("Ahmad Fauzi")
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash")
    job = receipts.start_receipt_bundle(world.mitra_a, owner_id=world.mitra_a.user_id,
                                        period=inv.period)
    receipts.build_bundle_job(job.id)
    for who in ("mitra1", "superadmin"):
        res = _client(who).get(f"/api/files/{job.id}")
        assert res.status_code == 200, who
        assert len(PdfReader(io.BytesIO(res.content)).pages) == 1
    assert _client("mitra2").get(f"/api/files/{job.id}").status_code == 404
    assert _client().get(f"/api/files/{job.id}").status_code == 401
