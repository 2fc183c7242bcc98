"""Payment-proof endpoints × superadmin / mitra A (owner) / mitra B / no session."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from fibernode.api import create_api
from fibernode.config import reset_settings
from fibernode.services import auth, invoices, payment_proofs, ratelimit
from fibernode.services.context import Actor
from tests.factories import ADMIN_PASSWORD, MITRA_PASSWORD
from tests.services import proof_image_data as gen
from tests.services.invoice_data import make_invoice

SLIP = gen.encode(gen.photographed_slip())
WHO = {"superadmin": "superadmin", "mitra_a": "mitra1", "mitra_b": "mitra2", "none": None}


@pytest.fixture(autouse=True)
def _setup(tmp_path, monkeypatch, sent_jobs):
    ratelimit.reset_memory()
    monkeypatch.setenv("UPLOADS_DIR", str(tmp_path / "uploads"))
    reset_settings()
    # The worker runs inline, right after the commit.
    sent_jobs.run_inline(payment_proofs.PROCESS_TASK)
    yield
    reset_settings()


def client(who: str) -> TestClient:
    c = TestClient(create_api())
    username = WHO[who]
    if username:
        password = ADMIN_PASSWORD if username == "superadmin" else MITRA_PASSWORD
        token = auth.login(Actor.anonymous("10.3.3.3", "pytest"), username, password).token
        c.cookies.set(auth.SESSION_COOKIE, token)
        # A browser sends its page's origin; cookie-authenticated changes need it.
        c.headers["Origin"] = "http://testserver"
    return c


@pytest.fixture
def paid(world):
    inv = make_invoice("Dewi Lestari", "2026-03")
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="transfer")
    return inv


def upload(c: TestClient, invoice_id, data: bytes = SLIP, name: str = "slip.jpg"):
    return c.post(f"/api/invoices/{invoice_id}/payment-proofs",
                  files={"file": (name, data, "image/jpeg")})


@pytest.mark.parametrize(("who", "code"), [("superadmin", 201), ("mitra_a", 201),
                                           ("mitra_b", 404), ("none", 401)])
def test_upload(world, paid, who, code):
    res = upload(client(who), paid.id)
    assert res.status_code == code, res.text
    if code == 201:
        body = res.json()
        # Processed inline here: the upload's answer is still the pending proof.
        assert body["status"] == "pending" and body["processed_url"] is None
        assert body["original_url"].endswith("/file?variant=original")
    else:
        assert set(res.json()["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize(("who", "code"), [("superadmin", 200), ("mitra_a", 200),
                                           ("mitra_b", 404), ("none", 401)])
def test_list_and_files(world, paid, who, code):
    upload(client("mitra_a"), paid.id)
    c = client(who)
    res = c.get(f"/api/invoices/{paid.id}/payment-proofs")
    assert res.status_code == code
    proof_id = payment_proofs.list_proofs(world.admin, paid.id)[0].id
    processed = c.get(f"/api/payment-proofs/{proof_id}/file?variant=processed")
    original = c.get(f"/api/payment-proofs/{proof_id}/file?variant=original")
    single = c.get(f"/api/payment-proofs/{proof_id}")
    assert (processed.status_code, original.status_code, single.status_code) == (code,) * 3
    if code != 200:
        return
    [item] = res.json()["items"]
    assert item["status"] == "ready" and res.json()["total"] == 1
    assert [s["step"] for s in item["steps"]][:3] == ["upload", "decode", "detect"]
    assert all(s["duration_ms"] >= 0 and s["outcome"] == "ok" for s in item["steps"])
    assert item["processed_url"] == f"/api/payment-proofs/{proof_id}/file?variant=processed"
    assert processed.headers["content-type"] == "image/jpeg"
    assert processed.content[:3] == b"\xff\xd8\xff"
    assert original.content == SLIP
    assert processed.headers["cache-control"].startswith("private")


def test_blurred_upload_is_listed_as_rejected_with_the_reason(world, paid):
    c = client("mitra_a")
    assert upload(c, paid.id, gen.encode(gen.blurred_slip())).status_code == 201
    [item] = c.get(f"/api/invoices/{paid.id}/payment-proofs").json()["items"]
    assert (item["status"], item["reject_reason"]) == ("rejected",
                                                       "Foto buram, silakan ulangi")
    assert item["processed_url"] is None
    res = c.get(f"/api/payment-proofs/{item['id']}/file?variant=processed")
    assert res.status_code == 409


def test_non_image_is_422_with_the_field(world, paid):
    res = upload(client("mitra_a"), paid.id, b"%PDF-1.4 bukan foto", "slip.pdf")
    assert res.status_code == 422
    assert "bukan gambar" in res.json()["error"]["details"]["file"]
    res = client("mitra_a").get(f"/api/payment-proofs/{uuid.uuid4()}/file?variant=thumb")
    assert res.status_code == 422


@pytest.mark.parametrize(("who", "code"), [("superadmin", 204), ("mitra_a", 204),
                                           ("mitra_b", 404), ("none", 401)])
def test_delete(world, paid, who, code):
    body = upload(client("mitra_a"), paid.id).json()
    assert client(who).delete(f"/api/payment-proofs/{body['id']}").status_code == code
    left = payment_proofs.list_proofs(world.admin, paid.id)
    assert len(left) == (0 if code == 204 else 1)


def test_unknown_invoice_is_404(world):
    assert upload(client("superadmin"), uuid.uuid4()).status_code == 404
