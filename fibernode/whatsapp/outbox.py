"""The outbox gateway: records every message as it would be sent and contacts nobody.

It is the embedded default for development and demos. Linking "connects" at once with
the owner's own phone number, number checks say yes to every valid Indonesian number,
and every message lands in ``wa_outbox`` exactly once per idempotency key, so the
outbox is the place to read what subscribers would have received.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from fibernode.db import new_session
from fibernode.models import User, WaOutbox, WaSessionStatus
from fibernode.whatsapp.base import (
    ErrorKind,
    Gateway,
    LinkState,
    OutgoingMessage,
    SendResult,
    SentLookup,
    to_jid,
)

VALID_PHONE_DIGITS = range(10, 16)


def _valid(phone: str) -> bool:
    return phone.isdigit() and phone.startswith("62") and len(phone) in VALID_PHONE_DIGITS


class OutboxGateway(Gateway):
    """Records messages in ``wa_outbox`` instead of sending them."""

    name = "outbox"

    def send_text(self, message: OutgoingMessage) -> SendResult:
        """Record the message once per idempotency key; a repeat returns the first record."""
        if not _valid(message.phone):
            return SendResult.failed(ErrorKind.INVALID, "Nomor WhatsApp tidak valid.")
        if not message.text.strip():
            return SendResult.failed(ErrorKind.INVALID, "Isi pesan kosong.")
        with new_session() as s:
            existing = s.exec(sa.select(WaOutbox.id).where(
                WaOutbox.idempotency_key == message.idempotency_key)).first()
            if existing is not None:
                return SendResult(ok=True, provider_message_id=f"outbox-{existing[0]}")
            row = WaOutbox(owner_id=message.owner_id, phone=message.phone,
                           jid=to_jid(message.phone), content=message.text,
                           idempotency_key=message.idempotency_key)
            s.add(row)
            try:
                s.commit()
            except IntegrityError:  # a concurrent send of the same key won the insert
                s.rollback()
                existing = s.exec(sa.select(WaOutbox.id).where(
                    WaOutbox.idempotency_key == message.idempotency_key)).one()
                return SendResult(ok=True, provider_message_id=f"outbox-{existing[0]}")
            return SendResult(ok=True, provider_message_id=f"outbox-{row.id}")

    def check_numbers(self, owner_id: uuid.UUID, phones: list[str]) -> dict[str, bool]:
        """Every well-formed Indonesian number counts as being on WhatsApp."""
        return {p: _valid(p) for p in phones}

    def start_link(self, owner_id: uuid.UUID, *, method: str = "qr",
                   phone: str | None = None) -> LinkState:
        """Connect at once, as the owner's own phone number."""
        return self.link_state(owner_id)

    def link_state(self, owner_id: uuid.UUID) -> LinkState:
        """Always connected, showing the owner's phone number (or nothing if unset)."""
        with new_session() as s:
            phone = s.exec(sa.select(User.phone).where(User.id == owner_id)).first()
        return LinkState(status=WaSessionStatus.CONNECTED,
                         phone_number=(phone[0] if phone else None) or None)

    def logout(self, owner_id: uuid.UUID) -> None:
        """Nothing to forget: the outbox holds no credentials."""

    def lookup_sent(self, owner_id: uuid.UUID, idempotency_key: str) -> SentLookup:
        """The outbox knows exactly what it recorded."""
        with new_session() as s:
            found = s.exec(sa.select(WaOutbox.id).where(
                WaOutbox.idempotency_key == idempotency_key)).first()
        return SentLookup.SENT if found is not None else SentLookup.NOT_SENT
