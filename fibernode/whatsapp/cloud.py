"""The official WhatsApp Cloud API gateway (``WA_MODE=cloud``), built on pywa.

Each owner brings their own Cloud API number: a phone number id and an access
token, stored on their ``wa_sessions`` row (the token encrypted like the NIK) by the
superadmin through :func:`fibernode.services.wa_cloud.set_credentials`, which first
asks the Graph API about them (:func:`verify_credentials`).

Reminders, receipts and isolir notices are business-initiated: outside the 24-hour
customer-service window WhatsApp accepts free text and fails it *later* on the status
webhook (131047). They are therefore sent as approved templates
(:data:`fibernode.services.wa_cloud.TEMPLATES`, one variable per field) unless the
subscriber wrote within the window; other messages go out as free text only inside it.

Statuses and subscribers' messages arrive on the webhook
(:mod:`fibernode.api.wa_webhook`), signed with the app secret; :func:`verify_signature`,
:func:`parse_statuses` and :func:`parse_inbound` are its pure halves.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import uuid
from datetime import UTC, datetime

import httpx
import pywa
from pywa import errors as wa_errors
from pywa.types.templates import TemplateLanguage
from sqlmodel import select

from fibernode.config import get_settings
from fibernode.db import new_session
from fibernode.models import WaSession, WaSessionStatus
from fibernode.services import wa_cloud
from fibernode.services.context import Actor
from fibernode.services.crypto import DecryptionError, decrypt_secret
from fibernode.services.errors import ValidationFailed
from fibernode.services.uow import unit_of_work
from fibernode.services.wa_receipts import StatusUpdate
from fibernode.services.wa_sessions import SessionEvent, ensure_session, record_event
from fibernode.whatsapp.base import (
    ErrorKind,
    Gateway,
    GatewayError,
    LinkState,
    OutgoingMessage,
    SendResult,
)

log = logging.getLogger(__name__)

DEFAULT_GRAPH_BASE = "https://graph.facebook.com"
TOKEN_PURPOSE = wa_cloud.TOKEN_PURPOSE
TIMEOUT = httpx.Timeout(20.0, connect=10.0)

NO_CREDENTIALS = ("Nomor WhatsApp Cloud API belum diatur: superadmin mengisi Phone Number ID "
                  "dan token di Pengaturan → WhatsApp Cloud API.")
REENGAGEMENT_MESSAGE = ("Pelanggan belum mengirim pesan dalam 24 jam terakhir: di luar jendela "
                        "24 jam WhatsApp hanya menerima pesan template yang sudah disetujui.")
RATE_LIMITED_MESSAGE = "WhatsApp membatasi kecepatan kirim; pesan dicoba lagi nanti."
RESTRICTED_MESSAGE = "Akun WhatsApp Cloud API dibatasi atau dikunci oleh WhatsApp."
AUTH_MESSAGE = "Token WhatsApp Cloud API tidak valid, kedaluwarsa, atau tanpa izin."
NOT_ON_WA_MESSAGE = "Nomor tujuan tidak dapat menerima pesan WhatsApp."
NOT_ALLOWED_MESSAGE = ("Nomor tujuan belum masuk daftar penerima yang diizinkan "
                       "untuk nomor uji WhatsApp Cloud API.")
NETWORK_MESSAGE = "Tidak dapat menghubungi WhatsApp Cloud API; pesan dicoba lagi nanti."
TEMPLATE_DATA_MISSING = ("Pesan template tidak dapat diisi: tagihan atau pelanggan yang "
                         "dimaksud sudah tidak ada.")
UNCERTAIN_MESSAGE = ("Tidak ada jawaban dari WhatsApp Cloud API setelah pesan dikirim; "
                     "status pesan belum pasti.")

RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131048, 131056, 131064, 131049})
RESTRICTED_CODES = frozenset({368, 131031, 130497, 131005, 131042, 131057})
AUTH_CODES = frozenset({0, 3, 10, 190, *range(200, 300)})
NOT_ON_WA_CODES = frozenset({131026})
INVALID_CODES = frozenset({131008, 131009, 131021, 131030, 131050, 131051, 133010,
                           100, 137000})


class _RebaseTransport(httpx.BaseTransport):
    """Sends every request to ``base`` instead of the host pywa wrote.

    pywa pins its session to graph.facebook.com; this keeps the path (``/v21.0/…``)
    and swaps scheme, host, port and an optional path prefix, so a proxy or a local
    fake Graph server can stand in.
    """

    def __init__(self, base: str):
        url = httpx.URL(base)
        self._scheme, self._host, self._port = url.scheme, url.host, url.port
        self._prefix = url.path.rstrip("/")
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme=self._scheme, host=self._host,
                                            port=self._port,
                                            path=self._prefix + request.url.path)
        request.headers["Host"] = request.url.netloc.decode("ascii")
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def _http_client() -> httpx.Client:
    base = get_settings().wa_cloud_api_base
    if base.rstrip("/") == DEFAULT_GRAPH_BASE:
        return httpx.Client(timeout=TIMEOUT)
    return httpx.Client(timeout=TIMEOUT, transport=_RebaseTransport(base))


def classify_error(exc: BaseException) -> tuple[ErrorKind, str]:
    """The :class:`ErrorKind` and Indonesian message for a failed Graph call."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
                  | httpx.ProxyError | httpx.UnsupportedProtocol):
        return ErrorKind.TRANSIENT, NETWORK_MESSAGE
    if isinstance(exc, httpx.RequestError):
        # The request left this machine; WhatsApp may have accepted it.
        return ErrorKind.UNCERTAIN, UNCERTAIN_MESSAGE
    if not isinstance(exc, wa_errors.WhatsAppError):
        return ErrorKind.TRANSIENT, f"Kesalahan tak terduga: {exc}"
    code = exc.code
    detail = f" (kode {code})"
    if isinstance(exc, wa_errors.ReEngagementMessage) or code == 131047:
        return ErrorKind.REENGAGEMENT, REENGAGEMENT_MESSAGE
    if isinstance(exc, wa_errors.ThrottlingError) or code in RATE_LIMIT_CODES:
        return ErrorKind.RATE_LIMITED, RATE_LIMITED_MESSAGE + detail
    if isinstance(exc, wa_errors.IntegrityError) or code in RESTRICTED_CODES:
        return ErrorKind.RESTRICTED, RESTRICTED_MESSAGE + detail
    if isinstance(exc, wa_errors.AuthorizationError) or code in AUTH_CODES:
        return ErrorKind.RESTRICTED, AUTH_MESSAGE + detail
    if code in NOT_ON_WA_CODES:
        return ErrorKind.NOT_ON_WHATSAPP, NOT_ON_WA_MESSAGE
    if code == 131030:
        return ErrorKind.INVALID, NOT_ALLOWED_MESSAGE
    if code in INVALID_CODES or 132000 <= code < 133000:
        return ErrorKind.INVALID, f"WhatsApp menolak pesan: {exc.message}{detail}."
    if exc.status_code in (502, 504):
        return ErrorKind.UNCERTAIN, UNCERTAIN_MESSAGE
    return ErrorKind.TRANSIENT, f"WhatsApp Cloud API gagal: {exc.message}{detail}."


def _digits(value: str | None) -> str | None:
    digits = re.sub(r"\D", "", value or "")
    return digits or None


class CloudGateway(Gateway):
    """Sends through each owner's WhatsApp Cloud API number."""

    name = "cloud"

    def __init__(self):
        self._lock = threading.Lock()
        self._clients: dict[uuid.UUID, tuple[tuple[str, str], pywa.WhatsApp]] = {}

    # -- credentials -------------------------------------------------------
    def _credentials(self, owner_id: uuid.UUID) -> tuple[str, str] | None:
        with new_session() as s:
            row = s.exec(select(WaSession).where(WaSession.user_id == owner_id)).first()
        if row is None or not row.cloud_phone_id or not row.cloud_token:
            return None
        try:
            return row.cloud_phone_id, decrypt_secret(row.cloud_token, TOKEN_PURPOSE)
        except DecryptionError:
            log.warning("cloud token of owner %s cannot be decrypted", owner_id)
            return None

    def _client(self, owner_id: uuid.UUID) -> pywa.WhatsApp:
        creds = self._credentials(owner_id)
        if creds is None:
            raise GatewayError(ErrorKind.NOT_CONNECTED, NO_CREDENTIALS)
        with self._lock:
            cached = self._clients.get(owner_id)
            if cached is not None and cached[0] == creds:
                return cached[1]
            if cached is not None:
                cached[1].api._session.close()
            # pywa refuses to share an httpx client between instances: one per owner.
            client = pywa.WhatsApp(phone_id=creds[0], token=creds[1], session=_http_client(),
                                   api_version=get_settings().wa_cloud_api_version)
            self._clients[owner_id] = (creds, client)
            return client

    # -- sending -----------------------------------------------------------
    def send_text(self, message: OutgoingMessage) -> SendResult:
        """Send a message the way WhatsApp will deliver it.

        Reminders, receipts and isolir notices go as their approved template unless the
        subscriber wrote within the 24-hour window (then as the full text); any other
        message is free text and only allowed inside the window, so it fails here
        rather than being accepted and failed later by WhatsApp (131047).
        """
        if not _digits(message.phone):
            return SendResult.failed(ErrorKind.INVALID, "Nomor WhatsApp tidak valid.")
        if not message.text.strip():
            return SendResult.failed(ErrorKind.INVALID, "Isi pesan kosong.")
        if self._credentials(message.owner_id) is None:
            return SendResult.failed(ErrorKind.NOT_CONNECTED, NO_CREDENTIALS)
        templated = message.message_type in wa_cloud.TEMPLATES
        if not wa_cloud.window_open(message.owner_id, message.phone):
            if templated:
                return self._send_as_template(message)
            return SendResult.failed(ErrorKind.REENGAGEMENT, REENGAGEMENT_MESSAGE)
        try:
            client = self._client(message.owner_id)
            sent = client.send_message(to=_digits(message.phone), text=message.text,
                                       tracker=message.idempotency_key[:512])
        except GatewayError as exc:
            return SendResult.failed(exc.kind, exc.message)
        except (httpx.HTTPError, wa_errors.WhatsAppError) as exc:
            kind, text = classify_error(exc)
            if kind == ErrorKind.REENGAGEMENT and templated:
                return self._send_as_template(message)
            return SendResult.failed(kind, text)
        return SendResult(ok=True, provider_message_id=sent.id)

    def _send_as_template(self, message: OutgoingMessage) -> SendResult:
        """The message type's approved template, filled from what the message is about."""
        with new_session() as s:
            setting = wa_cloud.template_settings(s)[message.message_type]
            params = wa_cloud.template_params(s, message.message_type,
                                              invoice_id=message.invoice_id,
                                              customer_id=message.customer_id)
        if params is None:
            return SendResult.failed(ErrorKind.INVALID, TEMPLATE_DATA_MISSING)
        return self.send_template(message, template_name=setting.name,
                                  language=setting.language, body_params=params)

    def send_template(self, message: OutgoingMessage, *, template_name: str,
                      language: str = "id",
                      body_params: list[str] | None = None) -> SendResult:
        """Send an approved template (allowed outside the 24-hour window).

        Args:
            message: Owner, recipient and idempotency key (``text`` is not sent).
            template_name: The template's name as approved in WhatsApp Manager.
            language: Its language code (``id`` for Bahasa Indonesia).
            body_params: Values for the body's ``{{1}}``, ``{{2}}``… in order.
        """
        params = None
        if body_params:
            params = [{"type": "body",
                       "parameters": [{"type": "text", "text": p} for p in body_params]}]
        try:
            client = self._client(message.owner_id)
            sent = client.send_template(to=_digits(message.phone), name=template_name,
                                        language=TemplateLanguage(language), params=params,
                                        tracker=message.idempotency_key[:512])
        except GatewayError as exc:
            return SendResult.failed(exc.kind, exc.message)
        except (ValueError, TypeError):  # pywa raises TypeError for an unknown code
            return SendResult.failed(ErrorKind.INVALID, f"Bahasa template {language!r} "
                                     "tidak dikenal.")
        except (httpx.HTTPError, wa_errors.WhatsAppError) as exc:
            return SendResult.failed(*classify_error(exc))
        return SendResult(ok=True, provider_message_id=sent.id)

    def check_numbers(self, owner_id: uuid.UUID, phones: list[str]) -> dict[str, bool]:
        """The Cloud API has no lookup: well-formed numbers count as reachable.

        An unreachable number shows up at send time as 131026 (NOT_ON_WHATSAPP).
        """
        if self._credentials(owner_id) is None:
            raise GatewayError(ErrorKind.NOT_CONNECTED, NO_CREDENTIALS)
        return {p: p.isdigit() and p.startswith("62") and 10 <= len(p) <= 15 for p in phones}

    # -- link ----------------------------------------------------------------
    def start_link(self, owner_id: uuid.UUID, *, method: str = "qr",
                   phone: str | None = None) -> LinkState:
        """Check the stored credentials against the phone-number endpoint.

        Raises:
            GatewayError: no credentials, or WhatsApp refused them.
        """
        try:
            client = self._client(owner_id)
            number = client.get_business_phone_number()
        except GatewayError as exc:
            record_event(owner_id, SessionEvent(status=WaSessionStatus.DISCONNECTED,
                                                error=exc.message), source="cloud")
            raise
        except (httpx.HTTPError, wa_errors.WhatsAppError) as exc:
            kind, text = classify_error(exc)
            record_event(owner_id, SessionEvent(status=WaSessionStatus.DISCONNECTED,
                                                error=text), source="cloud")
            raise GatewayError(kind, text) from exc
        record_event(owner_id, SessionEvent(
            status=WaSessionStatus.CONNECTED, phone_number=_digits(number.display_phone_number),
            link_method="cloud", clear_link=True, link_expired=False, error=""),
            source="cloud")
        return self.link_state(owner_id)

    def link_state(self, owner_id: uuid.UUID) -> LinkState:
        """What the owner's session row says (written by :meth:`start_link`)."""
        with new_session() as s:
            row = s.exec(select(WaSession).where(WaSession.user_id == owner_id)).first()
        if row is None:
            return LinkState(status=WaSessionStatus.DISCONNECTED)
        return LinkState(status=row.status, phone_number=row.phone_number,
                         banned_until=row.banned_until, error=row.last_error)

    def logout(self, owner_id: uuid.UUID) -> None:
        """Forget the owner's Cloud API credentials."""
        with unit_of_work(Actor.system("wa.cloud")) as uow:
            row = ensure_session(uow.session, owner_id)
            row.cloud_phone_id = None
            row.cloud_token = None
            uow.audit("wa.cloud.credentials", "wa_sessions", row.id, owner_id=owner_id,
                      cleared=True)
        with self._lock:
            cached = self._clients.pop(owner_id, None)
        if cached is not None:
            cached[1].api._session.close()
        record_event(owner_id, SessionEvent(status=WaSessionStatus.DISCONNECTED,
                                            clear_link=True, error=""), source="cloud")

    def close(self) -> None:
        """Close every owner's HTTP client."""
        with self._lock:
            clients, self._clients = self._clients, {}
        for _creds, client in clients.values():
            client.api._session.close()


# -- webhook -----------------------------------------------------------------
def verify_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``X-Hub-Signature-256`` is Meta's HMAC-SHA256 of ``body``.

    An empty app secret verifies nothing: without it the webhook must be refused.
    """
    if not app_secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


def parse_statuses(payload: dict | bytes | str) -> list[StatusUpdate]:
    """Message statuses (sent / delivered / read / failed) from a webhook body."""
    if isinstance(payload, bytes | str):
        payload = json.loads(payload)
    updates: list[StatusUpdate] = []
    for entry in payload.get("entry") or []:
        for change in entry.get("changes") or []:
            value = change.get("value") or {}
            for st in value.get("statuses") or []:
                if not st.get("id") or not st.get("status"):
                    continue
                at = _when(st.get("timestamp"))
                error = None
                if st.get("errors"):
                    first = st["errors"][0]
                    error = _status_error(first)
                updates.append(StatusUpdate(provider_message_id=st["id"],
                                            status=st["status"], at=at, error=error))
    return updates


# Why WhatsApp failed a message it had accepted (status webhook), for the owner.
STATUS_ERRORS = {
    131047: "di luar jendela 24 jam; gunakan template yang sudah disetujui",
    131026: ("pesan tidak dapat diterima nomor ini (tidak terdaftar di WhatsApp, aplikasi "
             "terlalu lama, atau penerima belum menyetujui ketentuan WhatsApp)"),
    131049: ("ditahan WhatsApp untuk menjaga kenyamanan penerima (batas pesan bisnis); "
             "coba lagi nanti"),
    131050: "penerima berhenti menerima pesan pemasaran dari bisnis ini",
    131051: "jenis pesan tidak didukung",
    131052: "media dari penerima tidak dapat diunduh",
    131053: "media tidak dapat diunggah",
    131000: "kesalahan tak dikenal di WhatsApp; coba kirim lagi",
    131016: "layanan WhatsApp sedang tidak tersedia; coba lagi nanti",
    131031: "akun WhatsApp Business dikunci",
    131042: "ada masalah pembayaran pada akun WhatsApp Business",
    131045: "nomor pengirim belum terdaftar dengan benar di WhatsApp Business",
    131056: "terlalu banyak pesan ke nomor yang sama dalam waktu singkat; coba lagi nanti",
    130429: "batas kecepatan kirim tercapai; coba lagi nanti",
    130472: "nomor penerima sedang dalam eksperimen WhatsApp (pesan pemasaran tidak dikirim)",
    132000: "jumlah variabel tidak cocok dengan template yang disetujui",
    132001: "template tidak ditemukan untuk nama dan bahasa ini; periksa pengaturan template",
    132005: "isi template setelah diisi terlalu panjang",
    132007: "isi template melanggar kebijakan WhatsApp",
    132012: "format variabel tidak sesuai dengan template",
    132015: "template dijeda WhatsApp karena kualitasnya rendah",
    132016: "template dinonaktifkan WhatsApp",
    368: "akun dibatasi sementara karena melanggar kebijakan WhatsApp",
}


def status_error(code: object, title: str | None = None) -> str:
    """The Indonesian reason for a ``failed`` status with WhatsApp's error code."""
    reason = STATUS_ERRORS.get(code) if isinstance(code, int) else None
    if reason is None:
        reason = f"ditolak WhatsApp: {title or 'alasan tidak diketahui'}"
    return f"Gagal: {reason} (kode {code})." if code is not None else f"Gagal: {reason}."


def _status_error(err: dict) -> str:
    return status_error(err.get("code"), err.get("title") or err.get("message"))


def _when(timestamp: object) -> datetime | None:
    text = str(timestamp or "")
    return datetime.fromtimestamp(int(text), tz=UTC) if text.isdigit() else None


def _inbound_text(msg: dict) -> str | None:
    kind = msg.get("type")
    part = msg.get(kind) if isinstance(kind, str) else None
    if not isinstance(part, dict):
        return None
    if kind == "text":
        return part.get("body")
    if kind == "button":
        return part.get("text")
    if kind == "interactive":
        reply = part.get("button_reply") or part.get("list_reply") or {}
        return reply.get("title")
    if kind == "reaction":
        return part.get("emoji")
    return part.get("caption")


def parse_inbound(payload: dict | bytes | str) -> list[wa_cloud.InboundMessage]:
    """Messages subscribers sent, with the owner's phone number id, from a webhook body."""
    if isinstance(payload, bytes | str):
        payload = json.loads(payload)
    found: list[wa_cloud.InboundMessage] = []
    for entry in payload.get("entry") or []:
        for change in entry.get("changes") or []:
            value = change.get("value") or {}
            phone_number_id = str((value.get("metadata") or {}).get("phone_number_id") or "")
            for msg in value.get("messages") or []:
                if not phone_number_id or not msg.get("id") or not msg.get("from"):
                    continue
                found.append(wa_cloud.InboundMessage(
                    phone_number_id=phone_number_id, phone=str(msg["from"]),
                    provider_message_id=str(msg["id"]), message_type=str(msg.get("type")),
                    text=_inbound_text(msg),
                    at=_when(msg.get("timestamp")) or datetime.now(UTC)))
    return found


# -- checking credentials ------------------------------------------------------
BAD_TOKEN_MESSAGE = ("Token akses ditolak WhatsApp: tidak valid, kedaluwarsa, atau "  # noqa: S105
                     "dicabut (kode 190). Buat token baru di Meta Business Suite.")
UNKNOWN_PHONE_ID_MESSAGE = ("Phone Number ID tidak ditemukan, atau token ini tidak punya "
                            "akses ke nomor tersebut (kode 100).")
NO_PERMISSION_MESSAGE = ("Token tidak punya izin whatsapp_business_messaging / "
                         "whatsapp_business_management untuk nomor ini")


def verify_credentials(phone_id: str, token: str) -> wa_cloud.VerifiedNumber:
    """Ask the Graph API about ``phone_id`` with ``token`` (``GET /{version}/{phone_id}``).

    Raises:
        ValidationFailed: WhatsApp refused (reason under ``token`` or ``phone_id``), or
            could not be reached (under ``form``); all in Indonesian.
    """
    version = get_settings().wa_cloud_api_version.removeprefix("v")
    url = f"{DEFAULT_GRAPH_BASE}/v{version}/{phone_id}"
    try:
        with _http_client() as client:
            res = client.get(url, params={"fields": "display_phone_number,verified_name"},
                             headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        log.warning("graph api unreachable while checking credentials: %s", exc)
        raise ValidationFailed({"form": NETWORK_MESSAGE.replace(
            "; pesan dicoba lagi nanti", "; periksa koneksi server lalu coba lagi")}) from exc
    try:
        body = res.json()
    except ValueError:
        body = {}
    if res.status_code == 200 and isinstance(body, dict) and body.get("display_phone_number"):
        return wa_cloud.VerifiedNumber(display_phone_number=str(body["display_phone_number"]),
                                       verified_name=body.get("verified_name"))
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    if code == 190 or code in (102, 2500):
        raise ValidationFailed({"token": BAD_TOKEN_MESSAGE})
    if code == 100 or code == 803:
        raise ValidationFailed({"phone_id": UNKNOWN_PHONE_ID_MESSAGE})
    if code in (10, 3) or (isinstance(code, int) and 200 <= code < 300):
        raise ValidationFailed({"token": f"{NO_PERMISSION_MESSAGE} (kode {code})."})
    detail = error.get("message") or f"HTTP {res.status_code}"
    raise ValidationFailed({"form": f"WhatsApp menolak pemeriksaan nomor: {detail}"
                                    + (f" (kode {code})." if code is not None else ".")})
