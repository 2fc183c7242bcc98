"""Cloud API gateway against a local fake Graph server; the webhook through the API app."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from fibernode.api import create_api
from fibernode.config import reset_settings
from fibernode.db import new_session
from fibernode.models import WaMessageLog, WaSession, WaSessionStatus
from fibernode.whatsapp.base import ErrorKind, OutgoingMessage
from fibernode.whatsapp.cloud import CloudGateway, set_cloud_credentials, verify_signature

TOKEN = "EAAG-test-token-0123456789abcdef"  # noqa: S105
SECRET = "app-secret-for-tests"  # noqa: S105


class FakeGraph:
    """Records requests; answers with queued errors or a message id."""

    def __init__(self):
        self.requests: list[dict] = []
        self.errors: list[tuple[int, dict]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body: dict | None):
                fake.requests.append({"method": self.command, "path": self.path,
                                      "auth": self.headers.get("Authorization"),
                                      "json": body})
                if fake.errors:
                    status, error = fake.errors.pop(0)
                    payload = {"error": error}
                elif self.command == "GET":
                    status = 200
                    payload = {"id": "1122", "display_phone_number": "+62 812-3456-7890",
                               "verified_name": "WiFi Sukamaju"}
                else:
                    status = 200
                    payload = {"messaging_product": "whatsapp",
                               "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                               "messages": [{"id": f"wamid.{len(fake.requests)}"}]}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                self._answer(None)

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                self._answer(json.loads(self.rfile.read(length)))

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def graph(monkeypatch, world):
    fake = FakeGraph()
    monkeypatch.setenv("WA_CLOUD_API_BASE", fake.url)
    monkeypatch.setenv("WA_CLOUD_APP_SECRET", SECRET)
    monkeypatch.setenv("WA_CLOUD_VERIFY_TOKEN", "verify-me")
    reset_settings()
    yield fake
    fake.close()
    reset_settings()


def _msg(owner: uuid.UUID, key: str = "k1", kind: str = "reminder") -> OutgoingMessage:
    return OutgoingMessage(owner_id=owner, phone="6281234567890", text="Halo\nTagihan",
                           idempotency_key=key, message_type=kind)


def test_credentials_are_validated_stored_encrypted_and_used(graph, world):
    owner = world.mitra_a.user_id
    gw = CloudGateway(templates={})
    state = set_cloud_credentials(owner, "1122", TOKEN, gateway=gw)
    assert state.status == WaSessionStatus.CONNECTED and state.phone_number == "6281234567890"
    assert graph.requests[0]["path"].startswith("/v21.0/1122")
    with new_session() as s:
        row = s.exec(select(WaSession).where(WaSession.user_id == owner)).one()
    assert row.cloud_phone_id == "1122" and TOKEN not in row.cloud_token

    result = gw.send_text(_msg(owner))
    assert result.ok and result.provider_message_id == "wamid.2"
    req = graph.requests[-1]
    assert req["path"] == "/v21.0/1122/messages" and req["auth"] == f"Bearer {TOKEN}"
    assert req["json"]["type"] == "text" and req["json"]["to"] == "6281234567890"
    assert req["json"]["text"]["body"] == "Halo\nTagihan"
    assert req["json"]["biz_opaque_callback_data"] == "k1"


def test_no_credentials_means_not_connected(graph, world):
    result = CloudGateway(templates={}).send_text(_msg(world.mitra_b.user_id))
    assert result.error_kind == ErrorKind.NOT_CONNECTED


@pytest.mark.parametrize(("code", "kind"), [
    (131047, ErrorKind.REENGAGEMENT), (130429, ErrorKind.RATE_LIMITED),
    (131056, ErrorKind.RATE_LIMITED), (4, ErrorKind.RATE_LIMITED),
    (368, ErrorKind.RESTRICTED), (131031, ErrorKind.RESTRICTED), (190, ErrorKind.RESTRICTED),
    (131026, ErrorKind.NOT_ON_WHATSAPP), (131030, ErrorKind.INVALID),
])
def test_graph_errors_map_to_error_kinds(graph, world, code, kind):
    owner = world.mitra_a.user_id
    gw = CloudGateway(templates={})
    set_cloud_credentials(owner, "1122", TOKEN, gateway=gw)
    graph.errors.append((400, {"message": "nope", "type": "OAuthException", "code": code}))
    result = gw.send_text(_msg(owner))
    assert not result.ok and result.error_kind == kind
    if kind == ErrorKind.REENGAGEMENT:
        assert "24 jam" in result.error and "template" in result.error


def test_reengagement_falls_back_to_the_configured_template(graph, world):
    owner = world.mitra_a.user_id
    gw = CloudGateway(templates={"reminder": ("tagihan_pengingat", "id")})
    set_cloud_credentials(owner, "1122", TOKEN, gateway=gw)
    graph.errors.append((400, {"message": "Re-engagement message", "code": 131047}))
    result = gw.send_text(_msg(owner))
    assert result.ok
    body = graph.requests[-1]["json"]
    assert body["type"] == "template"
    assert body["template"]["name"] == "tagihan_pengingat"
    assert body["template"]["language"] == {"code": "id"}
    assert body["template"]["components"][0]["parameters"][0]["text"] == "Halo Tagihan"


def test_network_errors(world, monkeypatch):
    monkeypatch.setenv("WA_CLOUD_API_BASE", "http://127.0.0.1:9")  # nothing listens
    reset_settings()
    owner = world.mitra_a.user_id
    set_cloud_credentials(owner, "1122", TOKEN, validate=False)
    result = CloudGateway(templates={}).send_text(_msg(owner))
    assert result.error_kind == ErrorKind.TRANSIENT
    reset_settings()


def _sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_signature_check():
    body = b'{"entry": []}'
    assert verify_signature(SECRET, body, _sign(body))
    assert not verify_signature(SECRET, body + b" ", _sign(body))
    assert not verify_signature(SECRET, body, None)
    assert not verify_signature("", body, _sign(body))


def _log(owner: uuid.UUID, provider_id: str) -> uuid.UUID:
    with new_session() as s:
        row = WaMessageLog(owner_id=owner, message_type="reminder", phone="6281234567890",
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
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp", "statuses": [
            {"id": "wamid.A", "status": "delivered", "timestamp": "1741575600"},
            {"id": "wamid.A", "status": "read", "timestamp": "1741575660"},
            {"id": "wamid.B", "status": "failed", "timestamp": "1741575600",
             "errors": [{"code": 131047, "title": "Re-engagement message"}]},
        ]}}]}]}
    body = json.dumps(payload).encode()
    tampered = client.post("/api/wa/webhook", content=body + b" ",
                           headers={"X-Hub-Signature-256": _sign(body)})
    assert tampered.status_code == 401
    assert client.post("/api/wa/webhook", content=body).status_code == 401
    res = client.post("/api/wa/webhook", content=body,
                      headers={"X-Hub-Signature-256": _sign(body),
                               "Content-Type": "application/json"})
    assert res.status_code == 200 and res.json()["changed"] == 3
    with new_session() as s:
        row = s.get(WaMessageLog, log_id)
        failed = s.get(WaMessageLog, failed_id)
    assert row.status == "read" and row.delivered_at is not None and row.read_at is not None
    assert failed.status == "failed" and "24 jam" in failed.error_message
