"""The official WhatsApp Cloud API gateway (``WA_MODE=cloud``), built on pywa.

Each owner brings their own Cloud API number: a phone number id and an access
token, stored on their ``wa_sessions`` row (the token encrypted like the NIK).
"Linking" is checking those credentials against the phone-number endpoint.

Outside the 24-hour customer-service window WhatsApp only accepts approved
templates (error 131047). A message type can be given a template in
``WA_CLOUD_TEMPLATES`` (``reminder=tagihan_pengingat:id,receipt=nota_bayar``); a text
refused for the window is then sent again as that template, with the whole text
as its single body parameter ``{{1}}``.

Delivery and read statuses arrive on the webhook (:mod:`fibernode.api.wa_webhook`),
signed with the app secret; :func:`verify_signature` and :func:`parse_statuses`
are its pure halves.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
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
from fibernode.services.context import Actor
from fibernode.services.crypto import DecryptionError, decrypt_secret, encrypt_secret
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
TOKEN_PURPOSE = "wa_sessions.cloud_token"  # noqa: S105 - a label, not a secret
TIMEOUT = httpx.Timeout(20.0, connect=10.0)

NO_CREDENTIALS = "Isi Phone Number ID dan token WhatsApp Cloud API terlebih dahulu."
REENGAGEMENT_MESSAGE = ("Pelanggan belum mengirim pesan dalam 24 jam terakhir: di luar jendela "
                        "24 jam WhatsApp hanya menerima pesan template yang sudah disetujui.")
RATE_LIMITED_MESSAGE = "WhatsApp membatasi kecepatan kirim; pesan dicoba lagi nanti."
RESTRICTED_MESSAGE = "Akun WhatsApp Cloud API dibatasi atau dikunci oleh WhatsApp."
AUTH_MESSAGE = "Token WhatsApp Cloud API tidak valid, kedaluwarsa, atau tanpa izin."
NOT_ON_WA_MESSAGE = "Nomor tujuan tidak dapat menerima pesan WhatsApp."
NOT_ALLOWED_MESSAGE = ("Nomor tujuan belum masuk daftar penerima yang diizinkan "
                       "untuk nomor uji WhatsApp Cloud API.")
NETWORK_MESSAGE = "Tidak dapat menghubungi WhatsApp Cloud API; pesan dicoba lagi nanti."
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


def _templates_from_env() -> dict[str, tuple[str, str]]:
    """``WA_CLOUD_TEMPLATES`` → {message_type: (template name, language code)}."""
    spec = os.environ.get("WA_CLOUD_TEMPLATES", "")
    found: dict[str, tuple[str, str]] = {}
    for part in spec.split(","):
        kind, sep, rest = part.partition("=")
        if not sep or not kind.strip() or not rest.strip():
            continue
        name, _, lang = rest.strip().partition(":")
        found[kind.strip()] = (name.strip(), (lang or "id").strip())
    return found


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

    def __init__(self, templates: dict[str, tuple[str, str]] | None = None):
        self.templates = _templates_from_env() if templates is None else templates
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
        """Send a text; refused for the 24-hour window, retry as the type's template."""
        if not _digits(message.phone):
            return SendResult.failed(ErrorKind.INVALID, "Nomor WhatsApp tidak valid.")
        if not message.text.strip():
            return SendResult.failed(ErrorKind.INVALID, "Isi pesan kosong.")
        try:
            client = self._client(message.owner_id)
            sent = client.send_message(to=_digits(message.phone), text=message.text,
                                       tracker=message.idempotency_key[:512])
        except GatewayError as exc:
            return SendResult.failed(exc.kind, exc.message)
        except (httpx.HTTPError, wa_errors.WhatsAppError) as exc:
            kind, text = classify_error(exc)
            template = self.templates.get(message.message_type)
            if kind == ErrorKind.REENGAGEMENT and template is not None:
                return self.send_template(message, template_name=template[0],
                                          language=template[1],
                                          body_params=[" ".join(message.text.split())])
            return SendResult.failed(kind, text)
        return SendResult(ok=True, provider_message_id=sent.id)

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
        except ValueError:
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


def set_cloud_credentials(owner_id: uuid.UUID, phone_id: str, token: str, *,
                          gateway: CloudGateway | None = None,
                          validate: bool = True) -> LinkState | None:
    """Store an owner's Cloud API phone number id and token, then check them.

    The caller (the WhatsApp service) has already checked who may do this.

    Args:
        owner_id: The superadmin or mitra whose number it is.
        phone_id: The Phone Number ID from WhatsApp Manager (digits).
        token: A system-user access token (stored encrypted).
        gateway: The gateway to validate with (default: a new one).
        validate: Whether to call the phone-number endpoint now.

    Returns:
        The link state after validation (``None`` when not validated).

    Raises:
        ValidationFailed: a field is empty or malformed.
        GatewayError: WhatsApp refused the credentials (the status row says why).
    """
    phone_id, token = (phone_id or "").strip(), (token or "").strip()
    problems = {}
    if not phone_id.isdigit():
        problems["phone_id"] = "Phone Number ID harus berupa angka."
    if len(token) < 20:
        problems["token"] = "Token WhatsApp Cloud API tidak valid."  # noqa: S105
    if problems:
        raise ValidationFailed(problems)
    with unit_of_work(Actor.system("wa.cloud")) as uow:
        row = ensure_session(uow.session, owner_id)
        row.cloud_phone_id = phone_id
        row.cloud_token = encrypt_secret(token, TOKEN_PURPOSE)
        uow.audit("wa.cloud.credentials", "wa_sessions", row.id, owner_id=owner_id,
                  phone_id=phone_id)
    record_event(owner_id, SessionEvent(status=WaSessionStatus.CONNECTING, link_method="cloud",
                                        error=""), source="cloud")
    if not validate:
        return None
    gw = gateway or CloudGateway()
    return gw.start_link(owner_id)


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
                at = None
                if str(st.get("timestamp", "")).isdigit():
                    at = datetime.fromtimestamp(int(st["timestamp"]), tz=UTC)
                error = None
                if st.get("errors"):
                    first = st["errors"][0]
                    error = _status_error(first)
                updates.append(StatusUpdate(provider_message_id=st["id"],
                                            status=st["status"], at=at, error=error))
    return updates


def _status_error(err: dict) -> str:
    code = err.get("code")
    if code == 131047:
        return REENGAGEMENT_MESSAGE
    if code == 131026:
        return NOT_ON_WA_MESSAGE
    title = err.get("title") or err.get("message") or "tidak diketahui"
    return f"Pesan gagal terkirim menurut WhatsApp: {title} (kode {code})."
