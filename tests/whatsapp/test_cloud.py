"""Cloud API mode against a fake Graph API on 127.0.0.1; the webhook through the API app."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from fibernode import clock
from fibernode.api import create_api
from fibernode.config import reset_settings
from fibernode.db import new_session
from fibernode.models import (
    ActivityLog,
    WaInboundMessage,
    WaMessageLog,
    WaMessageQueue,
    WaSession,
    WaSessionStatus,
)
from fibernode.services import invoices, wa_cloud, wa_direct, wa_numbers, whatsapp
from fibernode.services.errors import NotFound, PermissionDenied, ValidationFailed
from fibernode.whatsapp import set_gateway
from fibernode.whatsapp.base import ErrorKind, OutgoingMessage
from fibernode.whatsapp.cloud import CloudGateway, verify_signature
from tests.services.invoice_data import customer, invoice, make_invoice
from tests.services.test_wa_queue import NOW, TOMORROW, enqueue, run
from tests.whatsapp.fake_graph import PHONE_ID, SECRET, TOKEN

AHMAD = "6281234567890"  # Ahmad Fauzi, a subscriber of mitra1 (WiFi Sukamaju)


def link(world, owner=None):
    """The superadmin stores (and thereby verifies) mitra1's Cloud API credentials."""
    return wa_cloud.set_credentials(world.admin, owner or world.mitra_a.user_id,
                                    PHONE_ID, TOKEN)


def _msg(owner: uuid.UUID, key: str = "k1", kind: str = "custom", **kw) -> OutgoingMessage:
    return OutgoingMessage(owner_id=owner, phone=AHMAD, text="Halo\nTagihan",
                           idempotency_key=key, message_type=kind, **kw)


def _sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def post_webhook(client: TestClient, value: dict):
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp", **value}}]}]}
    body = json.dumps(payload).encode()
    return client.post("/api/wa/webhook", content=body,
                       headers={"X-Hub-Signature-256": _sign(body),
                                "Content-Type": "application/json"})


def inbound(wamid: str, phone: str = AHMAD, text: str = "Sudah saya transfer ya",
            phone_id: str = PHONE_ID, at: int | None = None) -> dict:
    return {"metadata": {"display_phone_number": "6281234567890",
                         "phone_number_id": phone_id},
            "contacts": [{"profile": {"name": "Ahmad"}, "wa_id": phone}],
            "messages": [{"from": phone, "id": wamid,
                          "timestamp": str(at or int(clock.now().timestamp())),
                          "type": "text", "text": {"body": text}}]}


def audits(action: str) -> list[ActivityLog]:
    with new_session() as s:
        return list(s.exec(select(ActivityLog).where(ActivityLog.action == action)).all())


# --- credentials -----------------------------------------------------------------------------


def test_credentials_are_verified_stored_encrypted_and_audited_as_the_superadmin(graph, world):
    owner = world.mitra_a.user_id
    view = link(world)
    assert graph.requests[0]["method"] == "GET"
    assert graph.requests[0]["path"].startswith(f"/v21.0/{PHONE_ID}?")
    assert graph.requests[0]["auth"] == f"Bearer {TOKEN}"
    assert view.phone_id == PHONE_ID and view.token_hint == "••••cdef"
    assert view.status == "connected" and view.phone_number == "6281234567890"
    with new_session() as s:
        row = s.exec(select(WaSession).where(WaSession.user_id == owner)).one()
    assert row.cloud_phone_id == PHONE_ID and TOKEN not in row.cloud_token
    assert row.status == WaSessionStatus.CONNECTED
    (entry,) = audits("wa.cloud.credentials")
    assert entry.user_id == world.admin.user_id and entry.meta["owner_id"] == str(owner)
    assert TOKEN not in json.dumps(entry.meta)
    # The stored credentials are what the gateway sends with.
    assert CloudGateway().send_template(_msg(owner), template_name="fibernode_isolir",
                                        body_params=["A", "B", "C", "D"]).ok
    assert graph.requests[-1]["auth"] == f"Bearer {TOKEN}"


def test_a_bad_token_is_refused_with_metas_code_190_and_nothing_is_written(graph, world):
    with pytest.raises(ValidationFailed) as exc:
        wa_cloud.set_credentials(world.admin, world.mitra_a.user_id, PHONE_ID,
                                 "EAAG-revoked-token-00000000000000")
    assert "kode 190" in exc.value.details["token"]
    with pytest.raises(ValidationFailed) as exc:
        wa_cloud.set_credentials(world.admin, world.mitra_a.user_id, "998877", TOKEN)
    assert "Phone Number ID tidak ditemukan" in exc.value.details["phone_id"]
    assert "kode 100" in exc.value.details["phone_id"]
    with new_session() as s:
        row = s.exec(select(WaSession).where(
            WaSession.user_id == world.mitra_a.user_id)).first()
    assert row is None or (row.cloud_phone_id is None and row.cloud_token is None)
    assert audits("wa.cloud.credentials") == []


def test_malformed_input_and_a_mitra_are_refused_before_any_call(graph, world):
    with pytest.raises(ValidationFailed) as exc:
        wa_cloud.set_credentials(world.admin, world.mitra_a.user_id, "12ab", "pendek")
    assert set(exc.value.details) == {"phone_id", "token"}
    with pytest.raises(PermissionDenied):
        wa_cloud.set_credentials(world.mitra_a, world.mitra_a.user_id, PHONE_ID, TOKEN)
    with pytest.raises(NotFound):
        wa_cloud.set_credentials(world.admin, uuid.uuid4(), PHONE_ID, TOKEN)
    assert graph.requests == []


def test_graph_unreachable_is_a_clear_refusal(world, monkeypatch):
    monkeypatch.setenv("WA_CLOUD_API_BASE", "http://127.0.0.1:9")  # nothing listens
    reset_settings()
    try:
        with pytest.raises(ValidationFailed) as exc:
            link(world)
        assert "Tidak dapat menghubungi WhatsApp Cloud API" in exc.value.details["form"]
    finally:
        reset_settings()


# --- sending: templates outside the window, free text inside -----------------------------------


def test_no_credentials_means_not_connected(graph, world):
    result = CloudGateway().send_text(_msg(world.mitra_b.user_id, kind="reminder"))
    assert result.error_kind == ErrorKind.NOT_CONNECTED


def test_free_text_outside_the_window_is_refused_without_asking_whatsapp(graph, world):
    owner = world.mitra_a.user_id
    link(world)
    before = len(graph.requests)
    result = CloudGateway().send_text(_msg(owner))
    assert result.error_kind == ErrorKind.REENGAGEMENT and "24 jam" in result.error
    assert len(graph.requests) == before


def test_a_reminder_outside_the_window_goes_as_the_approved_template(graph, world):
    owner = world.mitra_a.user_id
    link(world)
    inv = make_invoice("Ahmad Fauzi", "2026-03", due_date=TOMORROW, amount=100_000,
                       discount=0)
    result = CloudGateway().send_text(_msg(owner, kind="reminder", invoice_id=inv.id,
                                           customer_id=inv.customer_id))
    assert result.ok, result.error
    body = graph.sent()[-1]
    assert body["type"] == "template" and body["to"] == AHMAD
    assert body["template"]["name"] == "fibernode_pengingat"
    assert body["template"]["language"] == {"code": "id"}
    params = [p["text"] for p in body["template"]["components"][0]["parameters"]]
    assert params == ["Ahmad Fauzi", "WiFi Sukamaju", "Maret 2026", "100.000",
                      "5 Februari 2026"]


def test_an_isolir_notice_goes_as_the_isolir_template_with_what_is_owed(graph, world):
    owner = world.mitra_a.user_id
    link(world)
    inv = make_invoice("Ahmad Fauzi", "2026-03", amount=100_000, discount=0)
    result = CloudGateway().send_text(_msg(owner, kind="isolation", invoice_id=inv.id,
                                           customer_id=inv.customer_id))
    assert result.ok, result.error
    body = graph.sent()[-1]["template"]
    assert body["name"] == "fibernode_isolir"
    assert [p["text"] for p in body["components"][0]["parameters"]] == [
        "Ahmad Fauzi", "WiFi Sukamaju", "Maret 2026", "100.000"]


def test_a_message_whose_invoice_is_gone_fails_clearly(graph, world):
    link(world)
    result = CloudGateway().send_text(_msg(world.mitra_a.user_id, kind="reminder",
                                           invoice_id=uuid.uuid4()))
    assert result.error_kind == ErrorKind.INVALID and "tidak dapat diisi" in result.error


def test_template_names_and_language_are_settings(graph, world):
    owner = world.mitra_a.user_id
    link(world)
    with pytest.raises(PermissionDenied):
        wa_cloud.update_template_settings(world.mitra_a, {"reminder": "x"}, "id")
    with pytest.raises(ValidationFailed) as exc:
        wa_cloud.update_template_settings(world.admin, {"reminder": "Tagihan Saya"}, "ID!")
    assert set(exc.value.details) == {"reminder", "language"}
    with pytest.raises(ValidationFailed) as exc:
        wa_cloud.update_template_settings(world.admin, {}, "xx")  # no such WhatsApp language
    assert set(exc.value.details) == {"language"}
    wa_cloud.update_template_settings(world.admin, {"reminder": "tagihan_saya"}, "en_US")
    assert audits("wa.cloud.templates")[0].user_id == world.admin.user_id
    inv = make_invoice("Ahmad Fauzi", "2026-03", due_date=TOMORROW)
    result = CloudGateway().send_text(_msg(owner, kind="reminder", invoice_id=inv.id))
    body = graph.sent()[-1]
    assert body["template"]["name"] == "tagihan_saya"
    assert body["template"]["language"] == {"code": "en_US"}
    # Not approved on WhatsApp's side: refused, and the owner is told which code.
    assert result.error_kind == ErrorKind.INVALID and "132001" in result.error


def test_shipped_template_bodies_are_ones_whatsapp_accepts():
    doc = (Path(__file__).parents[2] / "docs" / "whatsapp-cloud-api.md").read_text()
    for tpl in wa_cloud.TEMPLATES.values():
        assert wa_cloud.template_problems(tpl.body) == [], tpl.message_type
        assert len(wa_cloud.VARIABLE_RE.findall(tpl.body)) == len(tpl.fields)
        # What the owner submits to Meta is exactly what is sent.
        assert f"`{tpl.default_name}`" in doc and f"\n{tpl.body}\n" in doc
    assert wa_cloud.template_problems("{{1}}, tagihan Anda")
    assert wa_cloud.template_problems("Halo, tagihan Anda {{1}}.")
    assert wa_cloud.template_problems("Halo {{1}} {{2}} ya")
    assert wa_cloud.template_problems("Halo {{2}} ya")
    assert wa_cloud.clean_param("Jl. Mawar\n\tNo. 5     ") == "Jl. Mawar No. 5"
    assert wa_cloud.clean_param("") == "-"


def test_a_receipt_on_payment_goes_as_the_receipt_template_with_its_link(graph, world,
                                                                         monkeypatch):
    monkeypatch.setattr(wa_numbers, "CHECK_SPACING_S", 0)
    link(world)
    inv = make_invoice("Ahmad Fauzi", "2026-03", amount=100_000, discount=0, token="tok123")
    set_gateway(CloudGateway())
    try:
        invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash")
        assert wa_direct.wait_for_dispatch(10)
    finally:
        set_gateway(None)
    body = graph.sent()[-1]
    assert body["template"]["name"] == "fibernode_nota"
    params = [p["text"] for p in body["template"]["components"][0]["parameters"]]
    assert params[:4] == ["Ahmad Fauzi", "WiFi Sukamaju", "Maret 2026", "100.000"]
    assert params[4].endswith("tok123")
    with new_session() as s:
        log = s.exec(select(WaMessageLog).where(WaMessageLog.message_type == "receipt")).one()
    assert log.status == "sent" and log.provider_message_id.startswith("wamid.")


def test_graph_errors_map_to_error_kinds(graph, world):
    owner = world.mitra_a.user_id
    link(world)
    inv = make_invoice("Ahmad Fauzi", "2026-03", due_date=TOMORROW)
    for code, kind in [(130429, ErrorKind.RATE_LIMITED), (131056, ErrorKind.RATE_LIMITED),
                       (368, ErrorKind.RESTRICTED), (190, ErrorKind.RESTRICTED),
                       (131026, ErrorKind.NOT_ON_WHATSAPP), (131030, ErrorKind.INVALID)]:
        graph.errors.append((400, {"message": "nope", "type": "OAuthException",
                                   "code": code}))
        result = CloudGateway().send_text(_msg(owner, kind="reminder", invoice_id=inv.id))
        assert not result.ok and result.error_kind == kind, code


def test_network_errors(graph, world, monkeypatch):
    link(world)
    monkeypatch.setenv("WA_CLOUD_API_BASE", "http://127.0.0.1:9")  # nothing listens
    reset_settings()
    inv = make_invoice("Ahmad Fauzi", "2026-03", due_date=TOMORROW)
    result = CloudGateway().send_text(_msg(world.mitra_a.user_id, kind="reminder",
                                           invoice_id=inv.id))
    assert result.error_kind == ErrorKind.TRANSIENT


# --- the webhook -------------------------------------------------------------------------------


def test_signature_check():
    body = b'{"entry": []}'
    assert verify_signature(SECRET, body, _sign(body))
    assert not verify_signature(SECRET, body + b" ", _sign(body))
    assert not verify_signature(SECRET, body, None)
    assert not verify_signature("", body, _sign(body))


def _log(owner: uuid.UUID, provider_id: str) -> uuid.UUID:
    with new_session() as s:
        row = WaMessageLog(owner_id=owner, message_type="reminder", phone=AHMAD,
                           content="x", status="sent", provider_message_id=provider_id)
        s.add(row)
        s.commit()
        return row.id


def test_webhook_verifies_and_applies_statuses(graph, world):
    owner = world.mitra_a.user_id
    log_id = _log(owner, "wamid.A")
    failed_id = _log(owner, "wamid.B")
    client = TestClient(create_api())
    ok = client.get("/api/wa/webhook", params={"hub.mode": "subscribe",
                                               "hub.verify_token": "verify-me",
                                               "hub.challenge": "12345"})
    assert ok.status_code == 200 and ok.text == "12345"
    assert client.get("/api/wa/webhook", params={"hub.mode": "subscribe",
                                                 "hub.verify_token": "x",
                                                 "hub.challenge": "1"}).status_code == 403
    value = {"statuses": [
        {"id": "wamid.A", "status": "delivered", "timestamp": "1741575600"},
        {"id": "wamid.A", "status": "read", "timestamp": "1741575660"},
        {"id": "wamid.B", "status": "failed", "timestamp": "1741575600",
         "errors": [{"code": 131047, "title": "Re-engagement message"}]}]}
    body = json.dumps({"entry": [{"changes": [{"value": value}]}]}).encode()
    assert client.post("/api/wa/webhook", content=body + b" ",
                       headers={"X-Hub-Signature-256": _sign(body)}).status_code == 401
    assert client.post("/api/wa/webhook", content=body).status_code == 401
    res = post_webhook(client, value)
    assert res.status_code == 200 and res.json()["changed"] == 3
    again = post_webhook(client, value)  # Meta delivers at least once
    assert again.status_code == 200 and again.json()["changed"] == 0
    with new_session() as s:
        row = s.get(WaMessageLog, log_id)
        failed = s.get(WaMessageLog, failed_id)
    assert row.status == "read" and row.delivered_at is not None and row.read_at is not None
    assert failed.status == "failed"
    assert failed.error_message == ("Gagal: di luar jendela 24 jam; gunakan template yang "
                                    "sudah disetujui (kode 131047).")


def test_a_failure_reported_later_fails_the_queued_message_too(graph, world):
    link(world)
    inv = make_invoice("Ahmad Fauzi", "2026-03", due_date=TOMORROW)
    assert enqueue().enqueued >= 1
    assert run(CloudGateway(), now=NOW + timedelta(seconds=30)) >= 1
    with new_session() as s:
        q = s.exec(select(WaMessageQueue).where(
            WaMessageQueue.owner_id == world.mitra_a.user_id)).one()
    assert q.status == "sent" and graph.sent()[-1]["type"] == "template"
    assert invoice(inv.id).reminder_sent_at is not None
    res = post_webhook(TestClient(create_api()), {"statuses": [
        {"id": q.provider_message_id, "status": "failed", "timestamp": "1741575600",
         "recipient_id": AHMAD,
         "errors": [{"code": 131026, "title": "Message undeliverable",
                     "message": "Message undeliverable",
                     "error_data": {"details": "Message Undeliverable."}}]}]})
    assert res.json()["changed"] == 1
    with new_session() as s:
        q = s.get(WaMessageQueue, q.id)
        log = s.exec(select(WaMessageLog).where(WaMessageLog.queue_id == q.id)).one()
    assert q.status == "failed" and log.status == "failed"
    # Not "sent" any more: the owner may send the reminder again today.
    assert invoice(inv.id).reminder_sent_at is None
    assert q.error_message == log.error_message
    assert log.error_message.startswith("Gagal: pesan tidak dapat diterima nomor ini")
    assert "(kode 131026)" in log.error_message
    # The owner reads it on the message log (the /whatsapp page's rows).
    (shown,) = whatsapp.list_logs(world.mitra_a, status="failed").items
    assert shown.error_message == log.error_message and shown.status_label == "Gagal"


def test_an_unknown_failure_code_keeps_whatsapps_title():
    from fibernode.whatsapp.cloud import status_error

    assert status_error(131999, "Something new") == (
        "Gagal: ditolak WhatsApp: Something new (kode 131999).")


@pytest.mark.both_dialects("inbound messages are stored with an insert_for upsert")
def test_inbound_messages_are_stored_once_and_open_the_window(graph, world):
    owner = world.mitra_a.user_id
    link(world)
    client = TestClient(create_api())
    res = post_webhook(client, inbound("wamid.IN1"))
    assert res.status_code == 200 and res.json()["stored"] == 1
    assert post_webhook(client, inbound("wamid.IN1")).json()["stored"] == 0
    # Another owner's number, or a number nobody here has: not stored for mitra1.
    assert post_webhook(client, inbound("wamid.IN2", phone_id="5555")).json()["stored"] == 0
    with new_session() as s:
        rows = s.exec(select(WaInboundMessage)).all()
    assert len(rows) == 1 and rows[0].owner_id == owner
    assert rows[0].customer_id == customer("Ahmad Fauzi").id
    assert rows[0].text == "Sudah saya transfer ya"
    assert wa_cloud.window_open(owner, AHMAD)
    assert not wa_cloud.window_open(world.mitra_b.user_id, AHMAD)
    # Inside the window free text goes out as text, reminders too.
    result = CloudGateway().send_text(_msg(owner))
    assert result.ok and graph.sent()[-1]["type"] == "text"
    assert graph.sent()[-1]["text"]["body"] == "Halo\nTagihan"


def test_an_old_message_does_not_open_the_window(graph, world):
    link(world)
    old = int(clock.now().timestamp()) - 25 * 3600
    post_webhook(TestClient(create_api()), inbound("wamid.OLD", at=old))
    assert not wa_cloud.window_open(world.mitra_a.user_id, AHMAD)


def test_replies_show_to_the_owner_and_the_superadmin_only(graph, world):
    link(world)
    post_webhook(TestClient(create_api()), inbound("wamid.R1", text="Kapan teknisi datang?"))
    ahmad = customer("Ahmad Fauzi").id
    (reply,) = wa_cloud.customer_replies(world.mitra_a, ahmad)
    assert reply.text == "Kapan teknisi datang?"
    assert wa_cloud.customer_replies(world.admin, ahmad)[0].text == reply.text
    with pytest.raises(NotFound):
        wa_cloud.customer_replies(world.mitra_b, ahmad)


@pytest.mark.both_dialects("inbound messages are stored with an insert_for upsert")
def test_record_inbound_is_a_system_use_case_in_one_transaction(graph, world):
    link(world)
    msg = wa_cloud.InboundMessage(PHONE_ID, AHMAD, "wamid.X", "image", None, clock.now())
    assert wa_cloud.record_inbound([msg, msg]) == 1
    assert audits("wa.cloud.inbound")[0].meta["count"] == 1
    (reply,) = wa_cloud.customer_replies(world.admin, customer("Ahmad Fauzi").id)
    assert reply.text == "[image]"
