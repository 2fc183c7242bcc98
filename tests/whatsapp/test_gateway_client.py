"""GatewayClient against the wa-gateway HTTP server in test mode (real HTTP, real uvicorn)."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
import uvicorn
from sqlmodel import select

from fibernode.db import new_session
from fibernode.models import WaMessageLog, WaSessionStatus
from fibernode.services import invoices, wa_direct, wa_numbers
from fibernode.whatsapp import set_gateway
from fibernode.whatsapp.base import ErrorKind, GatewayError, OutgoingMessage, SentLookup
from fibernode.whatsapp.gateway.clients import FakeBackend
from fibernode.whatsapp.gateway.locks import FileOwnerLocks
from fibernode.whatsapp.gateway.manager import SessionManager, Timings
from fibernode.whatsapp.gateway.server import create_app
from fibernode.whatsapp.gateway_client import GATEWAY_DOWN, GatewayClient
from tests.services.invoice_data import customer, make_invoice

TOKEN = "gateway-test-token"  # noqa: S105


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gateway(world, tmp_path):
    backend = FakeBackend()
    backend.world.first_qr_s = backend.world.qr_interval_s = 5
    manager = SessionManager(tmp_path / "wa", backend, FileOwnerLocks(tmp_path / "wa"),
                             timings=Timings(first_qr_ttl_s=5, qr_ttl_s=5, link_window_s=30,
                                             check_delay_s=0.01))
    app = create_app(manager, token=TOKEN, test_mode=True)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    client = GatewayClient(base_url=url, token=TOKEN)
    yield client, url, manager
    client.close()
    server.should_exit = True
    thread.join(timeout=10)


def test_link_pair_send_idempotent_and_lookup(gateway, world):
    client, url, manager = gateway
    owner = world.mitra_a.user_id
    state = client.start_link(owner)
    assert state.status == WaSessionStatus.CONNECTING and state.qr_code.startswith("2@")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.post(f"{url}/test/sessions/{owner}/pair", json={"phone": "6281211112222"},
                      headers=headers).status_code == 200
    deadline = time.monotonic() + 5
    while client.link_state(owner).status != WaSessionStatus.CONNECTED:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.link_state(owner).phone_number == "6281211112222"

    msg = OutgoingMessage(owner_id=owner, phone="6281234567890", text="Nota",
                          idempotency_key="receipt:abc/1", message_type="receipt")
    first = client.send_text(msg)
    second = client.send_text(msg)
    assert first.ok and second.provider_message_id == first.provider_message_id
    sent = httpx.get(f"{url}/test/sent", headers=headers).json()["messages"]
    assert [(m["phone"], m["text"]) for m in sent] == [("6281234567890", "Nota")]
    assert client.lookup_sent(owner, "receipt:abc/1") == SentLookup.SENT
    assert client.lookup_sent(owner, "receipt:other") == SentLookup.NOT_SENT
    assert client.check_numbers(owner, ["6281298765432", "6281200000000"]) == {
        "6281298765432": True, "6281200000000": False}

    assert httpx.post(f"{url}/test/sessions/{owner}/event", json={"kind": "logged_out"},
                      headers=headers).status_code == 200
    deadline = time.monotonic() + 5
    while client.link_state(owner).status != WaSessionStatus.DISCONNECTED:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    result = client.send_text(OutgoingMessage(owner_id=owner, phone="6281234567890",
                                              text="x", idempotency_key="k2"))
    assert result.error_kind == ErrorKind.NOT_CONNECTED


def test_wrong_token_is_refused(gateway, world):
    _client, url, _manager = gateway
    res = httpx.get(f"{url}/sessions/{world.mitra_a.user_id}",
                    headers={"Authorization": "Bearer wrong"})
    assert res.status_code == 401


def test_gateway_down_means_not_connected(world):
    client = GatewayClient(base_url=f"http://127.0.0.1:{free_port()}", token=TOKEN)
    result = client.send_text(OutgoingMessage(owner_id=world.mitra_a.user_id,
                                              phone="6281234567890", text="x",
                                              idempotency_key="k"))
    assert result.error_kind == ErrorKind.NOT_CONNECTED and result.error == GATEWAY_DOWN
    with pytest.raises(GatewayError) as exc:
        client.start_link(world.mitra_a.user_id)
    assert exc.value.message == GATEWAY_DOWN
    assert client.lookup_sent(world.mitra_a.user_id, "k") == SentLookup.UNKNOWN


def test_read_timeout_after_send_is_uncertain(world):
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    client = GatewayClient(base_url="http://gateway", token=TOKEN,
                           transport=httpx.MockTransport(slow))
    result = client.send_text(OutgoingMessage(owner_id=world.mitra_a.user_id,
                                              phone="6281234567890", text="x",
                                              idempotency_key="k"))
    assert result.error_kind == ErrorKind.UNCERTAIN


def _link(client: GatewayClient, url: str, owner) -> None:
    client.start_link(owner)
    assert httpx.post(f"{url}/test/sessions/{owner}/pair", json={"phone": "6281211112222"},
                      headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    deadline = time.monotonic() + 5
    while client.link_state(owner).status != WaSessionStatus.CONNECTED:
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.usefixtures("outbox_whatsapp")
def test_no_answer_from_whatsapp_still_sends_the_receipt_and_only_a_no_is_remembered(
        gateway, world):
    client, url, manager = gateway
    owner = world.mitra_a.user_id
    _link(client, url, owner)
    set_gateway(client)
    phone = customer("Ahmad Fauzi").phone
    manager.backend.world.silent_numbers.add(phone)
    assert client.check_numbers(owner, [phone]) == {}  # unknown, not False

    inv = make_invoice("Ahmad Fauzi")
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash")
    assert wa_direct.wait_for_dispatch(10)
    assert [m.phone for m in manager.backend.world.sent] == [phone]
    with new_session() as s:
        [log] = s.exec(select(WaMessageLog).where(WaMessageLog.invoice_id == inv.id)).all()
        assert log.status == "sent"
        assert wa_numbers.known(s, [phone]) == {}  # asked again next time

    # With the "+" the gateway gets WhatsApp's explicit answers; only a "no" is kept as no.
    assert wa_numbers.check_number(client, owner, "6281298765432") is True
    assert wa_numbers.check_number(client, owner, "6281200000000") is False
    with new_session() as s:
        assert wa_numbers.known(s, ["6281298765432", "6281200000000"]) == {
            "6281298765432": True, "6281200000000": False}
