"""The /api/wa endpoints: cookie login, one error shape, scoped to the caller."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from fibernode.api import create_api
from fibernode.db import new_session
from fibernode.models import Customer, WaOutbox, WaSessionStatus
from fibernode.services import auth, wa_direct
from fibernode.services.context import Actor
from fibernode.services.wa_sessions import SessionEvent, record_event
from tests.factories import ADMIN_PASSWORD, MITRA_PASSWORD

pytestmark = pytest.mark.usefixtures("outbox_whatsapp")


def _client(username: str | None) -> TestClient:
    client = TestClient(create_api())
    if username:
        password = ADMIN_PASSWORD if username == "superadmin" else MITRA_PASSWORD
        token = auth.login(Actor.anonymous("10.1.1.1", "pytest"), username, password).token
        client.cookies.set(auth.SESSION_COOKIE, token)
        # A browser sends its page's origin; cookie-authenticated changes need it.
        client.headers["Origin"] = "http://testserver"
    return client


def _customer_of(owner_id):
    with new_session() as s:
        return s.exec(select(Customer).where(Customer.owner_id == owner_id)
                      .order_by(Customer.name)).first()


def test_status_connect_and_disconnect(world):
    c = _client("mitra1")
    res = c.get("/api/wa/status")
    assert res.status_code == 200 and res.json()["status"] == "disconnected"
    res = c.post("/api/wa/connect", json={"method": "qr"})
    assert res.status_code == 200 and res.json()["connected"] is True
    assert c.get("/api/wa/qr").json()["status"] == "connected"
    res = c.post("/api/wa/disconnect")
    assert res.status_code == 200 and res.json()["status"] == "disconnected"


def test_pairing_code_needs_a_valid_phone(world):
    res = _client("mitra1").post("/api/wa/connect", json={"method": "code", "phone": "12"})
    assert res.status_code == 422
    assert res.json()["error"]["details"]["phone"].startswith("Nomor telepon")


def test_send_manual_refused_until_connected_then_sent(world):
    cust = _customer_of(world.mitra_a.user_id)
    c = _client("mitra1")
    body = {"customerId": str(cust.id), "template": "custom",
            "customMessage": "Halo {nama_pelanggan}, ada gangguan sebentar."}
    res = c.post("/api/wa/send-manual", json=body)
    assert res.status_code == 409
    assert res.json()["error"]["message"] == "Hubungkan WhatsApp terlebih dahulu."
    record_event(world.mitra_a.user_id, SessionEvent(status=WaSessionStatus.CONNECTED))
    res = c.post("/api/wa/send-manual", json=body)
    assert res.status_code == 200 and res.json()["id"]
    assert wa_direct.wait_for_dispatch(10)
    with new_session() as s:
        [sent] = s.exec(select(WaOutbox)).all()
    assert sent.content == f"Halo {cust.name}, ada gangguan sebentar."
    logs = c.get("/api/wa/logs", params={"type": "custom"}).json()
    assert logs["total"] == 1 and logs["items"][0]["customer_name"] == cust.name
    assert logs["items"][0]["status"] == "sent"


def test_other_mitra_cannot_message_or_read_mitra1(world):
    record_event(world.mitra_a.user_id, SessionEvent(status=WaSessionStatus.CONNECTED))
    record_event(world.mitra_b.user_id, SessionEvent(status=WaSessionStatus.CONNECTED))
    cust = _customer_of(world.mitra_a.user_id)
    c = _client("mitra2")
    res = c.post("/api/wa/send-manual", json={"customerId": str(cust.id),
                                               "template": "isolation"})
    assert res.status_code == 404 and res.json()["error"]["code"] == "NotFound"
    res = c.get("/api/wa/logs", params={"owner_id": str(world.mitra_a.user_id)})
    assert res.status_code == 403
    res = c.get("/api/wa/status", params={"owner_id": str(world.mitra_a.user_id)})
    assert res.status_code == 403


def test_bulk_preview_then_queue(world):
    record_event(world.mitra_a.user_id, SessionEvent(status=WaSessionStatus.CONNECTED))
    cust = _customer_of(world.mitra_a.user_id)
    c = _client("mitra1")
    body = {"customerIds": [str(cust.id)], "template": "custom",
            "customMessage": "Halo {nama_pelanggan}", "preview": True}
    res = c.post("/api/wa/send-bulk", json=body)
    assert res.status_code == 200
    assert res.json()["count"] == 1 and res.json()["sample"] == f"Halo {cust.name}"
    res = c.post("/api/wa/send-bulk", json={**body, "preview": False})
    assert res.status_code == 200 and res.json() == {"queued": 1}
    queue = c.get("/api/wa/queue").json()
    assert queue["counts"]["pending"] == 1 and queue["page"]["total"] == 1
    queue_id = queue["page"]["items"][0]["id"]
    assert c.delete(f"/api/wa/queue/{queue_id}").status_code == 200
    assert c.get("/api/wa/queue").json()["counts"]["cancelled"] == 1


def test_check_number_and_send_test(world):
    c = _client("superadmin")
    assert c.post("/api/wa/check-number", json={"phone": "081234567890"}).status_code == 409
    record_event(world.admin.user_id, SessionEvent(status=WaSessionStatus.CONNECTED))
    res = c.post("/api/wa/check-number", json={"phone": "081234567890"})
    assert res.json() == {"phone": "081234567890", "on_whatsapp": True}
    res = c.post("/api/wa/send-test", json={"phone": "081234567890"})
    assert res.status_code == 200


def test_anonymous_is_refused(world):
    res = _client(None).get("/api/wa/status")
    assert res.status_code == 401
    assert res.json()["error"]["code"] == "AuthenticationRequired"


def test_a_deliberate_resend_answers_with_the_new_key_and_the_duplicate_warning(world):
    import uuid

    from fibernode.db import new_session
    from fibernode.models import WaMessageQueue

    record_event(world.mitra_a.user_id, SessionEvent(status=WaSessionStatus.CONNECTED))
    cust = _customer_of(world.mitra_a.user_id)
    c = _client("mitra1")
    assert c.post("/api/wa/send-bulk", json={
        "customerIds": [str(cust.id)], "template": "custom", "customMessage": "Halo",
        "preview": False}).json() == {"queued": 1}
    queue_id = c.get("/api/wa/queue").json()["page"]["items"][0]["id"]
    assert c.post(f"/api/wa/queue/{queue_id}/retry").status_code == 409  # still waiting
    with new_session() as s:
        row = s.get(WaMessageQueue, uuid.UUID(queue_id))
        row.status = "uncertain"
        key = row.idempotency_key
        s.commit()
    items = c.get("/api/wa/queue", params={"status": "uncertain"}).json()["page"]["items"]
    assert items[0]["can_resend"] is True
    res = c.post(f"/api/wa/queue/{queue_id}/retry")
    assert res.status_code == 200
    assert res.json()["idempotency_key"] == f"{key}#ulang-1"
    assert "dua kali" in res.json()["warning"]
    (logged,) = c.get("/api/wa/logs", params={"status": "uncertain"}).json()["items"]
    assert (logged["status_label"], logged["can_resend"]) == ("Tidak pasti", False)
    assert c.post(f"/api/wa/logs/{logged['id']}/resend").status_code == 409  # resent already


# --- official Cloud API credentials and templates (superadmin) -----------------------------


def test_superadmin_sets_cloud_credentials_verified_by_the_graph_api(world, graph):
    from tests.whatsapp.fake_graph import PHONE_ID, TOKEN

    owner = world.mitra_a.user_id
    admin = _client("superadmin")
    url = f"/api/wa/cloud/credentials/{owner}"
    bad = admin.put(url, json={"phoneNumberId": PHONE_ID,
                               "accessToken": "EAAG-revoked-token-0000000000000"})
    assert bad.status_code == 422
    assert "kode 190" in bad.json()["error"]["details"]["token"]
    unknown = admin.put(url, json={"phoneNumberId": "99887766", "accessToken": TOKEN})
    assert "kode 100" in unknown.json()["error"]["details"]["phone_id"]
    listed = admin.get("/api/wa/cloud/credentials").json()["owners"]
    assert next(o for o in listed if o["owner_id"] == str(owner))["phone_id"] is None
    ok = admin.put(url, json={"phoneNumberId": PHONE_ID, "accessToken": TOKEN})
    assert ok.status_code == 200, ok.text
    assert ok.json()["token_hint"] == "••••cdef" and ok.json()["status"] == "connected"
    assert TOKEN not in admin.get("/api/wa/cloud/credentials").text
    mitra = _client("mitra1")
    assert mitra.put(url, json={"phoneNumberId": PHONE_ID,
                                "accessToken": TOKEN}).status_code == 403
    assert mitra.get("/api/wa/cloud/credentials").status_code == 403
    assert _client(None).get("/api/wa/cloud/credentials").status_code == 401


def test_superadmin_reads_and_renames_the_cloud_templates(world):
    admin = _client("superadmin")
    templates = admin.get("/api/wa/cloud/templates").json()["templates"]
    reminder = next(t for t in templates if t["message_type"] == "reminder")
    assert reminder["name"] == "fibernode_pengingat" and reminder["language"] == "id"
    assert "{{5}}" in reminder["body"]
    res = admin.put("/api/wa/cloud/templates", json={"names": {"receipt": "nota_saya"},
                                                      "language": "id"})
    assert res.status_code == 200
    assert res.json()["changes"]["wa_cloud.template.receipt"]["to"] == "nota_saya"
    bad = admin.put("/api/wa/cloud/templates", json={"names": {"receipt": "Nota Saya"}})
    assert bad.status_code == 422 and "huruf kecil" in bad.json()["error"]["details"]["receipt"]
    assert _client("mitra1").get("/api/wa/cloud/templates").status_code == 403
