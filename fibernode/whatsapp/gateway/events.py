"""Pure mapping from neonize (whatsmeow) events to ``wa_sessions`` facts.

The session manager feeds every event a client emits through :func:`map_event`;
the result is handed to :func:`fibernode.services.wa_sessions.record_event`. Keeping
the mapping free of I/O lets tests feed it real neonize protobuf objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from neonize.events import (
    ClientOutdatedEv,
    ConnectedEv,
    ConnectFailureEv,
    DisconnectedEv,
    KeepAliveRestoredEv,
    KeepAliveTimeoutEv,
    LoggedOutEv,
    PairStatusEv,
    QREv,
    ReceiptEv,
    StreamReplacedEv,
    TemporaryBanEv,
)
from neonize.proto import Neonize_pb2

from fibernode import clock
from fibernode.models import WaSessionStatus
from fibernode.services.wa_sessions import SessionEvent
from fibernode.whatsapp.base import ErrorKind

ConnectFailureReason = Neonize_pb2.ConnectFailureReason


@dataclass(frozen=True)
class QrIssued:
    """A QR payload offered for scanning (neonize hands these to ``event.qr``)."""

    code: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class PairCodeIssued:
    """A pairing code to type into WhatsApp on the phone (``client.PairPhone``)."""

    code: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Receipt:
    """A delivery or read receipt for messages this session sent."""

    message_ids: tuple[str, ...]
    kind: str  # "delivered" | "read"
    at: datetime


# Why WhatsApp banned the number, for the owner (TemporaryBan.TempBanReason).
BAN_REASONS = {
    1: "mengirim ke terlalu banyak orang",
    2: "diblokir oleh banyak pengguna",
    3: "membuat terlalu banyak grup",
    4: "mengirim pesan yang sama terlalu sering",
    5: "daftar siaran",
}
LOGGED_OUT_ERROR = "Perangkat dikeluarkan dari WhatsApp. Tautkan ulang dengan scan QR."
OUTDATED_ERROR = "Versi klien WhatsApp gateway usang; perbarui layanan wa-gateway."
DISCONNECTED_ERROR = "Koneksi ke WhatsApp terputus; menyambung ulang otomatis."
REPLACED_ERROR = ("Sesi diganti oleh koneksi lain untuk nomor ini; "
                  "gateway tidak menyambung ulang otomatis.")
UNSTABLE_ERROR = "Koneksi ke WhatsApp tidak stabil (keep-alive gagal)."
LOGOUT_REASONS = {ConnectFailureReason.LOGGED_OUT, ConnectFailureReason.MAIN_DEVICE_GONE,
                  ConnectFailureReason.UNKNOWN_LOGOUT}


def _jid_user(jid: object) -> str | None:
    user = getattr(jid, "User", "") or ""
    return user or None


UNKNOWN_BAN_REASON = "alasan tidak diketahui"


def ban_message(code: int | None, until: datetime | None) -> str:
    """Indonesian sentence for a temporary ban.

    Args:
        code: The ``TempBanReason`` WhatsApp gave, or ``None`` when it gave none (or one
            neonize does not know): never guessed, the owner reads "alasan tidak diketahui".
        until: When the ban ends, if known.
    """
    reason = BAN_REASONS.get(code) if code is not None else None
    text = "Nomor WhatsApp diblokir sementara oleh WhatsApp"
    text += f" ({reason or UNKNOWN_BAN_REASON})"
    if until is not None:
        text += f" sampai {until.astimezone(clock.JAKARTA):%d-%m-%Y %H:%M} WIB"
    return text + "."


def map_event(ev: object, *, now: datetime | None = None,
              phone: str | None = None) -> SessionEvent | None:
    """The session fact an event stands for, or ``None`` when it changes nothing.

    Args:
        ev: A neonize event (protobuf from :mod:`neonize.events`) or :class:`QrIssued`
            / :class:`PairCodeIssued`.
        now: The current time (tests pin it).
        phone: The linked number as the client knows it (``client.get_me()``), used
            when the event itself does not carry it (``ConnectedEv``).
    """
    now = now or clock.now()
    if isinstance(ev, QrIssued):
        return SessionEvent(status=WaSessionStatus.CONNECTING, qr_code=ev.code,
                            link_method="qr", link_expires_at=ev.expires_at,
                            link_expired=False, error="")
    if isinstance(ev, QREv):
        if not ev.Codes:
            return None
        return SessionEvent(status=WaSessionStatus.CONNECTING, qr_code=ev.Codes[0],
                            link_method="qr", link_expired=False, error="")
    if isinstance(ev, PairCodeIssued):
        return SessionEvent(status=WaSessionStatus.CONNECTING, pairing_code=ev.code,
                            link_method="code", link_expires_at=ev.expires_at,
                            link_expired=False, error="")
    if isinstance(ev, PairStatusEv):
        if ev.Status == PairStatusEv.SUCCESS:
            # whatsmeow: PairSuccess is followed by the server's 515 "restart required"
            # and a reconnect; only the Connected event after it means "connected".
            return SessionEvent(status=WaSessionStatus.CONNECTING,
                                phone_number=_jid_user(ev.ID) or phone, clear_link=True,
                                link_expired=False, error="")
        return SessionEvent(status=WaSessionStatus.DISCONNECTED, clear_link=True,
                            error=f"Gagal menautkan perangkat: {ev.Error or 'tidak diketahui'}.")
    if isinstance(ev, ConnectedEv):
        return SessionEvent(status=WaSessionStatus.CONNECTED, phone_number=phone,
                            clear_link=True, link_expired=False, error="")
    if isinstance(ev, LoggedOutEv):
        return SessionEvent(status=WaSessionStatus.LOGGED_OUT, error=LOGGED_OUT_ERROR)
    if isinstance(ev, TemporaryBanEv):
        # neonize sends the ban's remaining duration in seconds.
        until = now + timedelta(seconds=ev.Expire) if ev.Expire > 0 else None
        # proto2: an unset (or unknown) Code reads as 1, "too many people"; don't blame that.
        code = ev.Code if ev.HasField("Code") else None
        return SessionEvent(status=WaSessionStatus.BANNED, banned_until=until,
                            error=ban_message(code, until))
    if isinstance(ev, ClientOutdatedEv):
        return SessionEvent(status=WaSessionStatus.OUTDATED, error=OUTDATED_ERROR)
    if isinstance(ev, StreamReplacedEv):
        return SessionEvent(status=WaSessionStatus.DISCONNECTED, error=REPLACED_ERROR)
    if isinstance(ev, ConnectFailureEv):
        return _connect_failure(ev)
    if isinstance(ev, DisconnectedEv):
        return SessionEvent(status=WaSessionStatus.DISCONNECTED, error=DISCONNECTED_ERROR)
    if isinstance(ev, KeepAliveTimeoutEv):
        return SessionEvent(error=UNSTABLE_ERROR)
    if isinstance(ev, KeepAliveRestoredEv):
        return SessionEvent(error="")
    return None


def _connect_failure(ev: object) -> SessionEvent:
    reason = ev.Reason
    if reason in LOGOUT_REASONS:
        return SessionEvent(status=WaSessionStatus.LOGGED_OUT, error=LOGGED_OUT_ERROR)
    if reason == ConnectFailureReason.TEMP_BANNED:
        return SessionEvent(status=WaSessionStatus.BANNED, error=ban_message(None, None))
    if reason == ConnectFailureReason.CLIENT_OUTDATED:
        return SessionEvent(status=WaSessionStatus.OUTDATED, error=OUTDATED_ERROR)
    detail = f" ({ev.Message})" if ev.Message else ""
    return SessionEvent(status=WaSessionStatus.DISCONNECTED,
                        error=f"Gagal terhubung ke WhatsApp{detail}.")


def is_terminal(ev: object) -> bool:
    """Whether, after ``ev``, reconnecting would be pointless or harmful.

    Logout, ban and an outdated client need a person; a replaced stream means
    another connection holds the number, and fighting it gets the number flagged.
    """
    if isinstance(ev, LoggedOutEv | TemporaryBanEv | ClientOutdatedEv | StreamReplacedEv):
        return True
    if isinstance(ev, ConnectFailureEv):
        return ev.Reason in LOGOUT_REASONS | {ConnectFailureReason.TEMP_BANNED,
                                              ConnectFailureReason.CLIENT_OUTDATED}
    return False


def map_receipt(ev: object) -> Receipt | None:
    """Delivered / read receipts of our own messages; anything else is ``None``."""
    if not isinstance(ev, ReceiptEv):
        return None
    # proto2: an unset Type, or one this neonize does not know, reads as DELIVERED (1);
    # only a type WhatsApp actually stated may move a message forward.
    if not ev.HasField("Type"):
        return None
    kinds = {ReceiptEv.DELIVERED: "delivered", ReceiptEv.READ: "read",
             ReceiptEv.PLAYED: "read"}
    kind = kinds.get(ev.Type)
    if kind is None or not ev.MessageIDs:
        return None
    at = datetime.fromtimestamp(ev.Timestamp, tz=clock.now().tzinfo) if ev.Timestamp \
        else clock.now()
    return Receipt(message_ids=tuple(ev.MessageIDs), kind=kind, at=at)


# whatsmeow's own error texts (errors.go, send.go, request.go), as neonize hands them on.
# 463 is a server nack ("server returned error %d" in send.go): WhatsApp's reach-out
# timelock on the account; the message was refused, not delivered.
ERR_SERVER_463 = "server returned error 463"
# retryFrame(): the socket dropped after the message frame went out; it may have arrived.
ERR_DISCONNECTED_BEFORE_RESPONSE = "websocket disconnected before message send returned response"
# send.go: the frame went out, the server's ack did not come back in time.
ERR_MESSAGE_TIMED_OUT = "timed out waiting for message send response"
# request.go: an IQ (device list, prekeys, usync) before the message itself timed out.
ERR_IQ_TIMED_OUT = "info query timed out"
ERR_NOT_CONNECTED = "websocket not connected"
ERR_NOT_LOGGED_IN = "the store doesn't contain a device JID"

# Fragments of neonize / whatsmeow send errors and what they mean for the sender
# (first match wins: "maybe sent" is checked before anything else).
_SEND_ERRORS: tuple[tuple[tuple[str, ...], ErrorKind], ...] = (
    ((ERR_MESSAGE_TIMED_OUT, "websocket disconnected before message send",
      "message send timed out"), ErrorKind.UNCERTAIN),
    (("error 463", "reach-out", "reachout", "timelock", "banned", "error 401", "error 403"),
     ErrorKind.RESTRICTED),
    (("not logged in", ERR_NOT_CONNECTED, "not connected", "doesn't contain a device",
      "no device jid"), ErrorKind.NOT_CONNECTED),
    (("error 429", "rate-overlimit", "rate overlimit"), ErrorKind.RATE_LIMITED),
    (("not on whatsapp", "no devices found", "user not found"), ErrorKind.NOT_ON_WHATSAPP),
    # Before the message frame left: nothing was sent, a retry is safe.
    ((ERR_IQ_TIMED_OUT, "websocket disconnected before info query"), ErrorKind.TRANSIENT),
)


def classify_send_error(error: str) -> ErrorKind:
    """The :class:`ErrorKind` of a neonize send error text (``SendMessageError``).

    WhatsApp's 463 "reach-out timelock" and other account refusals pause the
    owner's queue (RESTRICTED); anything unrecognised failed before the message was
    accepted and may be retried (TRANSIENT).
    """
    text = (error or "").lower()
    for needles, kind in _SEND_ERRORS:
        if any(n in text for n in needles):
            return kind
    return ErrorKind.TRANSIENT


SEND_ERROR_MESSAGES = {
    ErrorKind.RESTRICTED: "WhatsApp membatasi akun ini (mis. reach-out timelock 463); "
                          "antrian dijeda.",
    ErrorKind.NOT_CONNECTED: "Hubungkan WhatsApp terlebih dahulu.",
    ErrorKind.UNCERTAIN: "WhatsApp tidak menjawab setelah pesan dikirim; status belum pasti.",
    ErrorKind.RATE_LIMITED: "WhatsApp membatasi kecepatan kirim; dicoba lagi nanti.",
    ErrorKind.NOT_ON_WHATSAPP: "Nomor tujuan tidak terdaftar di WhatsApp.",
    ErrorKind.TRANSIENT: "Gagal mengirim lewat WhatsApp; dicoba lagi nanti.",
}


def is_paired(ev: object) -> bool:
    """Whether ``ev`` says a device was just linked to the account."""
    return isinstance(ev, PairStatusEv) and ev.Status == PairStatusEv.SUCCESS


def is_connected(ev: object) -> bool:
    """Whether ``ev`` says the session is connected and logged in."""
    return isinstance(ev, ConnectedEv)


def is_drop(ev: object) -> bool:
    """Whether ``ev`` is a connection loss worth reconnecting after."""
    return isinstance(ev, DisconnectedEv | ConnectFailureEv) and not is_terminal(ev)
