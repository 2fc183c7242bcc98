"""The app's side of the ``wa-gateway`` service (``WA_MODE=neonize``).

The web app and Celery never hold a WhatsApp connection themselves: they call the
gateway's internal HTTP API with the shared ``WA_GATEWAY_TOKEN``. A refused
connection means the service is down (nothing was handed over); a read timeout
after a send means the message may have gone out (UNCERTAIN, reconciled later
through ``lookup_sent``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from urllib.parse import quote

import httpx

from fibernode.config import get_settings
from fibernode.models import WaSessionStatus
from fibernode.whatsapp.base import (
    ErrorKind,
    Gateway,
    GatewayError,
    LinkState,
    OutgoingMessage,
    SendResult,
    SentLookup,
)

GATEWAY_DOWN = "Layanan WhatsApp gateway tidak berjalan."
GATEWAY_SLOW = "Layanan WhatsApp gateway tidak menjawab; status pesan belum pasti."
GATEWAY_FAILED = "Layanan WhatsApp gateway menolak permintaan ({status})."
# Sending may wait on WhatsApp for a while; everything else is quick.
SEND_TIMEOUT = httpx.Timeout(60.0, connect=3.0)
TIMEOUT = httpx.Timeout(15.0, connect=3.0)


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _state(data: dict) -> LinkState:
    return LinkState(status=WaSessionStatus(data.get("status") or "disconnected"),
                     phone_number=data.get("phone_number"), qr_code=data.get("qr_code"),
                     pairing_code=data.get("pairing_code"),
                     expires_at=_dt(data.get("expires_at")), expired=bool(data.get("expired")),
                     banned_until=_dt(data.get("banned_until")), error=data.get("error"))


class GatewayClient(Gateway):
    """HTTP client of the wa-gateway service."""

    name = "neonize"

    def __init__(self, base_url: str | None = None, token: str | None = None,
                 transport: httpx.BaseTransport | None = None):
        settings = get_settings()
        self._http = httpx.Client(
            base_url=base_url or settings.wa_gateway_url, timeout=TIMEOUT, transport=transport,
            headers={"Authorization": f"Bearer {token or settings.wa_gateway_token}"})

    def _call(self, method: str, path: str, *, json: dict | None = None,
              timeout: httpx.Timeout = TIMEOUT) -> dict:
        """One request; gateway-level failures become :class:`GatewayError`."""
        try:
            res = self._http.request(method, path, json=json, timeout=timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise GatewayError(ErrorKind.NOT_CONNECTED, GATEWAY_DOWN) from exc
        except httpx.HTTPError as exc:
            raise GatewayError(ErrorKind.UNCERTAIN, GATEWAY_SLOW) from exc
        if res.status_code == 409:
            err = res.json().get("error") or {}
            raise GatewayError(ErrorKind(err.get("kind", "transient")),
                               err.get("message") or GATEWAY_FAILED.format(status=409))
        if res.status_code >= 400:
            raise GatewayError(ErrorKind.TRANSIENT, GATEWAY_FAILED.format(status=res.status_code))
        return res.json()

    def send_text(self, message: OutgoingMessage) -> SendResult:
        """Hand the message to the gateway (idempotent by key on its side)."""
        try:
            data = self._call("POST", f"/sessions/{message.owner_id}/send", json={
                "phone": message.phone, "text": message.text,
                "idempotency_key": message.idempotency_key}, timeout=SEND_TIMEOUT)
        except GatewayError as exc:
            return SendResult.failed(exc.kind, exc.message)
        if data.get("ok"):
            return SendResult(ok=True, provider_message_id=data.get("message_id"))
        return SendResult.failed(ErrorKind(data.get("error_kind") or "transient"),
                                 data.get("error") or "Gagal mengirim.")

    def check_numbers(self, owner_id: uuid.UUID, phones: list[str]) -> dict[str, bool]:
        """Ask the gateway (it checks slowly, one number at a time).

        Numbers without an explicit answer are left out (unknown).
        """
        if not phones:
            return {}
        data = self._call("POST", f"/sessions/{owner_id}/check", json={"phones": phones},
                          timeout=SEND_TIMEOUT)
        # ``null`` is no answer: never turn it into "not on WhatsApp".
        return {p: bool(v) for p, v in data["results"].items() if v is not None}

    def start_link(self, owner_id: uuid.UUID, *, method: str = "qr",
                   phone: str | None = None) -> LinkState:
        """Start a QR or pairing-code link; returns the first QR / code when ready."""
        return _state(self._call("POST", f"/sessions/{owner_id}/link",
                                 json={"method": method, "phone": phone}))

    def link_state(self, owner_id: uuid.UUID) -> LinkState:
        """The gateway's view of the owner's session."""
        return _state(self._call("GET", f"/sessions/{owner_id}"))

    def logout(self, owner_id: uuid.UUID) -> None:
        """Unlink the number and delete its auth store."""
        self._call("POST", f"/sessions/{owner_id}/logout")

    def lookup_sent(self, owner_id: uuid.UUID, idempotency_key: str) -> SentLookup:
        """The gateway's record of the key; UNKNOWN when it cannot be asked."""
        try:
            data = self._call("GET", f"/sessions/{owner_id}/sent/{quote(idempotency_key, safe='')}")
        except GatewayError:
            return SentLookup.UNKNOWN
        return SentLookup(data.get("status") or "unknown")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()
