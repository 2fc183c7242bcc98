"""The gateway interface: how the app hands a WhatsApp message to whatever sends it.

Three gateways implement it (chosen by ``WA_MODE``): ``outbox`` records messages and
never contacts anyone (the embedded default), ``neonize`` talks to the separate
``wa-gateway`` service that holds each owner's linked WhatsApp number, and ``cloud``
calls the official WhatsApp Cloud API with the owner's phone id and token.

A gateway only *acts*. The session status the app shows and trusts lives in
``wa_sessions`` and is written by :mod:`fibernode.services.wa_sessions` from the
gateway's events, so every decision ("is this owner connected?") is one database read.
"""

from __future__ import annotations

import abc
import enum
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from fibernode.models import WaSessionStatus


class ErrorKind(enum.StrEnum):
    """What a failed send means for whoever handed it over (direct send or queue)."""

    # No linked, connected session (or the gateway is down): nothing was handed over.
    NOT_CONNECTED = "not_connected"
    # The number has no WhatsApp account: mark it and skip, never retry.
    NOT_ON_WHATSAPP = "not_on_whatsapp"
    # The account is restricted (logged out, banned, WhatsApp's 463 "reach-out
    # timelock", locked): pause the session's queue and alert the owner.
    RESTRICTED = "restricted"
    # The provider throttles us: retry later, counts as an attempt.
    RATE_LIMITED = "rate_limited"
    # Cloud API: the customer has not written within 24 hours, a template is needed.
    REENGAGEMENT = "reengagement"
    # The request itself is wrong (bad number, empty text): fail, no retry.
    INVALID = "invalid"
    # Failed before anything reached WhatsApp (network, timeout on connect): retry.
    TRANSIENT = "transient"
    # It may or may not have gone out: reconcile by idempotency key, never resend blindly.
    UNCERTAIN = "uncertain"


class GatewayError(Exception):
    """A gateway operation failed; ``message`` is for the user, in Indonesian."""

    def __init__(self, kind: ErrorKind, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class OutgoingMessage:
    """One text message from an owner's number.

    Attributes:
        owner_id: The superadmin or mitra whose WhatsApp number sends it.
        phone: Recipient in international digits (``62…``).
        text: The message body.
        idempotency_key: Unique per message; a gateway that has already sent a
            message with this key returns the earlier result instead of sending again.
        message_type: ``reminder``, ``receipt``, ``isolation``, ``custom``, ``test``.
        invoice_id: The invoice it is about, if any (a Cloud API template is filled
            from it).
        customer_id: The subscriber it goes to, if known.
    """

    owner_id: uuid.UUID
    phone: str
    text: str
    idempotency_key: str
    message_type: str = "custom"
    invoice_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None


@dataclass(frozen=True)
class SendResult:
    """The outcome of a send; ``error`` is an Indonesian sentence when not ``ok``."""

    ok: bool
    provider_message_id: str | None = None
    error_kind: ErrorKind | None = None
    error: str | None = None

    @classmethod
    def failed(cls, kind: ErrorKind, error: str) -> SendResult:
        """A failed send of the given kind."""
        return cls(ok=False, error_kind=kind, error=error)


@dataclass(frozen=True)
class LinkState:
    """What a gateway knows about an owner's link right now."""

    status: WaSessionStatus
    phone_number: str | None = None
    qr_code: str | None = None
    pairing_code: str | None = None
    expires_at: datetime | None = None
    expired: bool = False
    banned_until: datetime | None = None
    error: str | None = None


class SentLookup(enum.StrEnum):
    """A gateway's answer to "did the message with this key go out?"."""

    SENT = "sent"
    NOT_SENT = "not_sent"
    UNKNOWN = "unknown"


NOT_CONNECTED_MESSAGE = "Hubungkan WhatsApp terlebih dahulu."


class Gateway(abc.ABC):
    """Sends messages and manages links for every owner (one instance per process)."""

    name: str = "gateway"

    @abc.abstractmethod
    def send_text(self, message: OutgoingMessage) -> SendResult:
        """Send one text message from the owner's number (never raises for send errors)."""

    @abc.abstractmethod
    def check_numbers(self, owner_id: uuid.UUID, phones: list[str]) -> dict[str, bool]:
        """Which of ``phones`` have WhatsApp, asked through the owner's session.

        A number WhatsApp gave no explicit answer for is left out (unknown, not "no").

        Raises:
            GatewayError: ``NOT_CONNECTED`` when the owner's session cannot ask.
        """

    @abc.abstractmethod
    def start_link(self, owner_id: uuid.UUID, *, method: str = "qr",
                   phone: str | None = None) -> LinkState:
        """Begin linking the owner's number by QR (``method="qr"``) or pairing code.

        Raises:
            GatewayError: when linking cannot start (gateway down, bad phone).
        """

    @abc.abstractmethod
    def link_state(self, owner_id: uuid.UUID) -> LinkState:
        """The owner's link as the gateway sees it now."""

    @abc.abstractmethod
    def logout(self, owner_id: uuid.UUID) -> None:
        """Unlink the owner's number and forget its credentials."""

    def lookup_sent(self, owner_id: uuid.UUID, idempotency_key: str) -> SentLookup:
        """Whether a message handed over with ``idempotency_key`` went out.

        Used to reconcile a send whose worker died; gateways that cannot tell say UNKNOWN.
        """
        return SentLookup.UNKNOWN

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (tests, shutdown)."""


_NON_DIGITS = re.compile(r"\D")


def to_jid(phone: str) -> str:
    """The WhatsApp user JID of a phone number (``62812…@s.whatsapp.net``)."""
    return f"{_NON_DIGITS.sub('', phone)}@s.whatsapp.net"
