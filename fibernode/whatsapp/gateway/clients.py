"""What the session manager drives: a neonize client, or the test-mode double.

A *backend* builds one :class:`LinkClient` per owner and knows whether an auth
store holds credentials. Clients report everything through ``emit(event)`` with
neonize's own event objects (plus :class:`~.events.QrIssued`), so the manager
treats the real client and the double alike.
"""

from __future__ import annotations

import abc
import json
import logging
import re
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from fibernode import clock
from fibernode.whatsapp.base import ErrorKind
from fibernode.whatsapp.gateway.events import (
    ERR_DISCONNECTED_BEFORE_RESPONSE,
    ERR_MESSAGE_TIMED_OUT,
    ERR_NOT_CONNECTED,
    ERR_NOT_LOGGED_IN,
    SEND_ERROR_MESSAGES,
    QrIssued,
    classify_send_error,
)

log = logging.getLogger(__name__)
Emit = Callable[[object], None]


def number_query(phone: str) -> str:
    """The query whatsmeow's ``IsOnWhatsApp`` expects for ``62…`` digits.

    whatsmeow answers nothing at all for a number without the leading ``+``.
    """
    return f"+{phone}"


def read_number_answer(answers: Sequence) -> bool | None:
    """``True`` / ``False`` from an explicit answer; ``None`` (unknown) when there is none.

    An empty answer says nothing about the number: it must never be taken as
    "not on WhatsApp" (that would be cached and stop reminders and receipts).
    """
    if not answers:
        return None
    return any(a.IsIn for a in answers)


class SendFailure(Exception):
    """A send or number check failed; ``kind`` tells the caller what to do."""

    def __init__(self, kind: ErrorKind, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def send_failure(error: str) -> SendFailure:
    """The :class:`SendFailure` for a whatsmeow error text (as neonize raises it)."""
    kind = classify_send_error(error)
    return SendFailure(kind, f"{SEND_ERROR_MESSAGES[kind]} ({error})")


class LinkClient(abc.ABC):
    """One owner's connection to WhatsApp."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Connect and block until stopped or the connection ends for good."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Make :meth:`connect` return (safe from any thread, idempotent)."""

    @abc.abstractmethod
    def pair_phone(self, phone: str) -> str:
        """Ask WhatsApp for a pairing code for ``phone`` (after the first QR)."""

    @abc.abstractmethod
    def logout(self) -> None:
        """Unlink this device from the account."""

    @abc.abstractmethod
    def send_text(self, phone: str, text: str) -> str:
        """Send a text; returns WhatsApp's message id.

        Raises:
            SendFailure: with the kind of failure.
        """

    @abc.abstractmethod
    def lookup_numbers(self, *queries: str) -> Sequence:
        """WhatsApp's raw answers for ``queries`` as given (neonize's ``is_on_whatsapp``).

        Returns:
            ``IsOnWhatsAppResponse`` messages (possibly none at all).

        Raises:
            SendFailure: the question could not be asked.
        """

    def is_on_whatsapp(self, phone: str) -> bool | None:
        """Whether ``phone`` (``62…`` digits) has a WhatsApp account; ``None`` if unknown.

        Raises:
            SendFailure: the question could not be asked.
        """
        return read_number_answer(self.lookup_numbers(number_query(phone)))

    @abc.abstractmethod
    def phone_number(self) -> str | None:
        """The linked account's number, once known."""


class Backend(abc.ABC):
    """Builds clients and reads auth stores."""

    @abc.abstractmethod
    def create(self, owner_id: uuid.UUID, db_path: Path, emit: Emit) -> LinkClient:
        """A new client for the owner's auth store at ``db_path``."""

    @abc.abstractmethod
    def has_credentials(self, db_path: Path) -> bool:
        """Whether the auth store holds a linked device (resumable without a QR)."""

    def forget(self, db_path: Path) -> None:
        """Delete an auth store (after a logout)."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)


# -- neonize -----------------------------------------------------------------
DEVICE_NAME = "FiberNode"


def device_props():
    """The ``DeviceProps`` the phone shows under "Perangkat tertaut" (spec: "FiberNode").

    CHROME has the same number in ``DeviceProps`` and neonize's ``ClientType``, so a
    pairing code asks for the same platform the device then reports.
    """
    from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps

    return DeviceProps(os=DEVICE_NAME, platformType=DeviceProps.CHROME)


class NeonizeLinkClient(LinkClient):
    """A neonize ``NewClient`` with its events forwarded to ``emit``.

    Never create two of these for one owner in one process, nor run two owners in
    one process: :mod:`.process` hosts each in its own (see there why).
    """

    def __init__(self, owner_id: uuid.UUID, db_path: Path, emit: Emit, *,
                 proxy: str | None = None):
        from neonize import events as nev
        from neonize.client import NewClient

        self._proxy = proxy

        # One SQLite auth store per owner; uuid keys the Go-side client. The props name
        # the linked device on the phone ("FiberNode", not neonize's default "Neonize").
        self._client = NewClient(str(db_path), uuid=str(owner_id), props=device_props())
        self._client.event.qr(lambda _c, data: emit(QrIssued(
            data.decode() if isinstance(data, bytes) else str(data))))
        for ev_type in (nev.ConnectedEv, nev.PairStatusEv, nev.LoggedOutEv, nev.TemporaryBanEv,
                        nev.ClientOutdatedEv, nev.DisconnectedEv, nev.StreamReplacedEv,
                        nev.ConnectFailureEv, nev.KeepAliveTimeoutEv, nev.KeepAliveRestoredEv,
                        nev.ReceiptEv):
            self._client.event(ev_type)(lambda _c, ev: emit(ev))

    def connect(self) -> None:
        """Run neonize's blocking connect (returns after :meth:`stop`)."""
        settings = None
        if self._proxy:
            from neonize._binder import ProxySettings

            settings = ProxySettings(proxy_address=self._proxy)
        self._client.connect(settings)

    def stop(self) -> None:
        """Cancel the Go-side context."""
        try:
            self._client.stop()
        except Exception:  # already stopped
            log.debug("neonize stop failed", exc_info=True)

    def pair_phone(self, phone: str) -> str:
        """``PairPhone`` with a push notification on the phone."""
        from neonize.exc import PairPhoneError

        try:
            return self._client.PairPhone(phone, show_push_notification=True)
        except PairPhoneError as exc:
            # Offline whatsmeow says "websocket not connected": not the number's fault.
            kind = classify_send_error(str(exc))
            raise SendFailure(ErrorKind.NOT_CONNECTED if kind == ErrorKind.NOT_CONNECTED
                              else ErrorKind.INVALID,
                              f"Gagal meminta kode pairing: {exc}.") from exc

    def logout(self) -> None:
        """Unlink the device on WhatsApp's side."""
        self._client.logout()

    def send_text(self, phone: str, text: str) -> str:
        """Send a plain conversation message."""
        from neonize.exc import NeonizeError
        from neonize.utils.jid import build_jid

        if not self._client.is_logged_in:
            raise SendFailure(ErrorKind.NOT_CONNECTED, SEND_ERROR_MESSAGES[
                ErrorKind.NOT_CONNECTED])
        try:
            return self._client.send_message(build_jid(phone), text).ID
        except NeonizeError as exc:
            raise send_failure(str(exc)) from exc

    def lookup_numbers(self, *queries: str) -> Sequence:
        """``IsOnWhatsApp`` for the queries exactly as given."""
        from neonize.exc import NeonizeError

        try:
            return self._client.is_on_whatsapp(*queries)
        except NeonizeError as exc:
            kind = classify_send_error(str(exc))
            raise SendFailure(kind, f"Gagal memeriksa nomor: {exc}.") from exc

    def phone_number(self) -> str | None:
        """The JID user of the linked device."""
        try:
            return self._client.get_me().JID.User or None
        except Exception:
            return None


class NeonizeBackend(Backend):
    """The real thing."""

    def create(self, owner_id: uuid.UUID, db_path: Path, emit: Emit) -> LinkClient:
        """A neonize client on ``db_path``."""
        return NeonizeLinkClient(owner_id, db_path, emit)

    def has_credentials(self, db_path: Path) -> bool:
        """A ``whatsmeow_device`` row means a linked device."""
        if not Path(db_path).exists():
            return False
        try:
            with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as conn:
                return conn.execute("SELECT 1 FROM whatsmeow_device LIMIT 1").fetchone() \
                    is not None
        except sqlite3.Error:
            return False


# -- test mode -----------------------------------------------------------------
@dataclass
class SentMessage:
    """A message the test double "sent"."""

    owner_id: str
    phone: str
    text: str
    message_id: str
    sent_at: datetime


@dataclass
class FakeWorld:
    """Shared state of the test double: what was sent, how WhatsApp's clock runs.

    The defaults are whatsmeow's (``qrchan.go``): the server hands over six QR refs, the
    first is shown 60 s and each later one 20 s; then the QR channel times out and the
    client disconnects. After a pairing, the server ends the stream ("515 restart
    required") and whatsmeow reconnects: ``pair_reconnect_s`` later comes ``Connected``.
    """

    first_qr_s: float = 60.0
    qr_interval_s: float = 20.0
    qr_codes: int = 6
    pair_reconnect_s: float = 1.0
    sent: list[SentMessage] = field(default_factory=list)
    clients: dict[str, FakeLinkClient] = field(default_factory=dict)
    # owner -> whatsmeow's error text for that owner's next send or number check
    # (e.g. ``events.ERR_SERVER_463``); the two "maybe sent" errors do deliver the message.
    fail_next: dict[str, str] = field(default_factory=dict)
    # Numbers WhatsApp answers nothing for (as whatsmeow sometimes does, even with ``+``).
    silent_numbers: set[str] = field(default_factory=set)
    mutex: threading.Lock = field(default_factory=threading.Lock)

    @property
    def link_window_s(self) -> float:
        """How long a QR round lasts before whatsmeow gives up (160 s by default)."""
        return self.first_qr_s + (self.qr_codes - 1) * self.qr_interval_s


# Errors after which the message frame had already left: it may well have arrived.
_MAYBE_SENT = (ERR_DISCONNECTED_BEFORE_RESPONSE, ERR_MESSAGE_TIMED_OUT)


class FakeLinkClient(LinkClient):
    """Behaves like neonize/whatsmeow without the network.

    - QR codes rotate on whatsmeow's clock (first 60 s, then 20 s, six codes, then
      nothing more until stopped);
    - a pairing (``PairStatusEv`` SUCCESS) is *not* a connection: ``ConnectedEv``
      follows separately after the post-pairing reconnect;
    - sends and number checks fail with whatsmeow's own error texts;
    - receipts can come without a type (protobuf default), as unknown ones do.

    The auth store is a small JSON file; pairing writes it, logout deletes it.
    Numbers ending in ``0000`` are "not on WhatsApp". Number checks are as strict as
    whatsmeow's: a query without the leading ``+`` gets no answer at all.
    """

    def __init__(self, world: FakeWorld, owner_id: uuid.UUID, db_path: Path, emit: Emit):
        self.world, self.owner_id, self.db_path, self.emit = world, owner_id, db_path, emit
        self.calls: list[str] = []
        self._stop = threading.Event()
        self._paired = threading.Event()
        self._wake = threading.Event()  # set by pair() and stop()
        self.connected = False
        with world.mutex:
            world.clients[str(owner_id)] = self

    def _creds(self) -> dict | None:
        try:
            return json.loads(self.db_path.read_text())
        except (OSError, ValueError):
            return None

    def connect(self) -> None:
        """Connect with stored creds, else rotate QR codes; block until stopped."""
        from neonize.events import ConnectedEv

        self.calls.append("connect")
        if self._creds() is None:
            for n in range(self.world.qr_codes):
                if self._paired.is_set() or self._stop.is_set():
                    break
                self.emit(QrIssued(f"2@fibernode-test-{self.owner_id}-{n + 1}-"
                                   f"{secrets.token_urlsafe(16)}"))
                self._wake.wait(self.world.first_qr_s if n == 0 else self.world.qr_interval_s)
            if not self._paired.is_set():
                # Out of codes: whatsmeow disconnects; neonize's connect() blocks on.
                self._stop.wait()
                return
            # Paired: the server restarts the stream (515), whatsmeow reconnects.
            if self._stop.wait(self.world.pair_reconnect_s):
                return
        if self._stop.is_set():
            return
        self.connected = True
        self.emit(ConnectedEv(status=True))
        self._stop.wait()
        self.connected = False

    def stop(self) -> None:
        """End :meth:`connect`."""
        self.calls.append("stop")
        self._stop.set()
        self._wake.set()

    def pair(self, phone: str) -> None:
        """Test hook: the owner scanned the QR (or typed the code) on ``phone``."""
        from neonize.events import PairStatusEv
        from neonize.proto.Neonize_pb2 import JID

        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db_path.write_text(json.dumps({"phone": phone}))
        self.emit(PairStatusEv(ID=JID(User=phone, Server="s.whatsapp.net"),
                               Status=PairStatusEv.SUCCESS))
        self._paired.set()
        self._wake.set()

    def receipt(self, message_ids: Sequence[str], kind: int | None = None,
                timestamp: int | None = None) -> None:
        """Test hook: WhatsApp reports ``kind`` (``ReceiptEv.DELIVERED`` ...) for messages.

        ``kind=None`` leaves the type unset, as a receipt type this neonize does not
        know arrives (it reads as the protobuf default, DELIVERED).
        """
        from neonize.events import ReceiptEv

        at = timestamp or int(clock.now().timestamp())
        ev = ReceiptEv(MessageIDs=list(message_ids), Timestamp=at)
        if kind is not None:
            ev.Type = kind
        self.emit(ev)

    def simulate(self, kind: str) -> None:
        """Test hook: WhatsApp logs the device out, bans it, drops it, or finds it outdated."""
        from neonize import events as nev
        from neonize.proto import Neonize_pb2

        if kind == "logged_out":
            self.db_path.unlink(missing_ok=True)
            self.emit(nev.LoggedOutEv(OnConnect=False,
                                      Reason=Neonize_pb2.ConnectFailureReason.LOGGED_OUT))
        elif kind == "banned":
            self.emit(nev.TemporaryBanEv(Code=nev.TemporaryBanEv.SEND_TO_TOO_MANY_PEOPLE,
                                         Expire=3600))
        elif kind == "outdated":
            self.emit(nev.ClientOutdatedEv())
        elif kind == "disconnected":
            self.emit(nev.DisconnectedEv())
        else:
            raise ValueError(kind)
        self.connected = False
        self._stop.set()  # the connection ends, as it would in whatsmeow
        self._wake.set()

    def _check_usable(self) -> None:
        """Fail like whatsmeow when there is no device or no socket, or as told."""
        if self._creds() is None:
            raise send_failure(ERR_NOT_LOGGED_IN)
        if not self.connected:
            raise send_failure(ERR_NOT_CONNECTED)

    def pair_phone(self, phone: str) -> str:
        """A pairing code like WhatsApp's (8 characters, shown as XXXX-XXXX)."""
        self.calls.append(f"pair_phone:{phone}")
        alphabet = "ABCDEFGHJKLMNPQRSTVWXYZ123456789"
        code = "".join(secrets.choice(alphabet) for _ in range(8))
        return f"{code[:4]}-{code[4:]}"

    def logout(self) -> None:
        """Forget the fake credentials."""
        self.calls.append("logout")
        self.db_path.unlink(missing_ok=True)

    def send_text(self, phone: str, text: str) -> str:
        """Record the message, or fail with the error text in ``world.fail_next``."""
        self._check_usable()
        with self.world.mutex:
            error = self.world.fail_next.pop(str(self.owner_id), None)
        if error is not None and error not in _MAYBE_SENT:
            raise send_failure(error)
        message_id = "3EB0" + secrets.token_hex(8).upper()
        with self.world.mutex:
            self.world.sent.append(SentMessage(str(self.owner_id), phone, text, message_id,
                                               clock.now()))
        if error is not None:  # the frame went out; only the answer got lost
            raise send_failure(error)
        return message_id

    def lookup_numbers(self, *queries: str) -> Sequence:
        """Valid ``+62…`` numbers are on WhatsApp, except those ending in 0000.

        Like whatsmeow, a query without ``+`` (or a number in ``world.silent_numbers``)
        gets no answer at all.
        """
        from neonize.proto.Neonize_pb2 import JID, IsOnWhatsAppResponse

        self._check_usable()
        with self.world.mutex:
            error = self.world.fail_next.pop(str(self.owner_id), None)
        if error is not None:
            raise send_failure(error)
        answers = []
        for query in queries:
            digits = query[1:]
            if not query.startswith("+") or digits in self.world.silent_numbers:
                continue
            is_in = bool(re.fullmatch(r"62\d{8,13}", digits)) and not digits.endswith("0000")
            answers.append(IsOnWhatsAppResponse(
                Query=query, JID=JID(User=digits, Server="s.whatsapp.net"), IsIn=is_in))
        return answers

    def phone_number(self) -> str | None:
        """The number it was paired with."""
        creds = self._creds()
        return creds.get("phone") if creds else None


class FakeBackend(Backend):
    """Test-mode backend: :class:`FakeLinkClient` in a shared :class:`FakeWorld`."""

    def __init__(self, world: FakeWorld | None = None):
        self.world = world or FakeWorld()

    def create(self, owner_id: uuid.UUID, db_path: Path, emit: Emit) -> LinkClient:
        """A fake client for the owner."""
        return FakeLinkClient(self.world, owner_id, db_path, emit)

    def has_credentials(self, db_path: Path) -> bool:
        """The fake auth store is JSON with the paired phone."""
        try:
            return "phone" in json.loads(Path(db_path).read_text())
        except (OSError, ValueError):
            return False

    def client(self, owner_id: uuid.UUID) -> FakeLinkClient | None:
        """The owner's latest client."""
        with self.world.mutex:
            return self.world.clients.get(str(owner_id))

