"""A subscriber's own WhatsApp messages (Cloud API webhook) on their detail page.

Replies to reminders ("sudah saya transfer") land here; each also opened WhatsApp's
24-hour window in which the owner may answer with free text.
"""

from __future__ import annotations

import uuid

import reflex as rx

from fibernode.components.ui import empty_state
from fibernode.config import get_settings
from fibernode.services import wa_cloud
from fibernode.services.errors import NotFound
from fibernode.state.session import current_actor

LIMIT = 10


class CustomerRepliesState(rx.State):
    """The shown subscriber's latest messages to their owner's number."""

    replies: list[dict[str, str]] = []
    # Only the Cloud API delivers subscribers' messages: in other modes an empty card
    # would promise replies that can never arrive.
    cloud: bool = False

    @rx.event
    async def load_for(self, customer_id: str):
        """Read the replies of ``customer_id`` (only if the viewer may see the subscriber)."""
        actor = await current_actor(self)
        self.replies = []
        self.cloud = get_settings().wa_mode == "cloud"
        if actor is None:
            return
        try:
            found = wa_cloud.customer_replies(actor, uuid.UUID(str(customer_id)), LIMIT)
        except (NotFound, ValueError):
            return
        self.replies = [{"text": r.text, "time": r.received_text} for r in found]


def customer_replies_section(customer_id: rx.Var) -> rx.Component:
    """The "Balasan Pelanggan" card, loaded when the subscriber is on screen.

    Shown in Cloud API mode, and in any mode once there are replies to show.
    """
    s = CustomerRepliesState
    card = rx.el.div(
        rx.el.h3("Balasan Pelanggan", class_name="fn-section-title"),
        rx.cond(
            s.replies.length() == 0,
            empty_state("message_circle", "Belum ada balasan",
                        "Pesan WhatsApp dari pelanggan ke nomor Anda tampil di sini."),
            rx.el.div(rx.foreach(s.replies, lambda r: rx.el.div(
                rx.el.div(rx.el.span(r["time"], class_name="fn-muted"),
                          class_name="fn-card-row"),
                rx.el.div(r["text"]),
                class_name="fn-message-row", data_testid="customer-reply",
            )), class_name="fn-stack-tight"),
        ),
        class_name="fn-card",
        data_testid="customer-replies",
    )
    # The wrapper is always there so it can load; it has no box of its own.
    return rx.el.div(rx.cond(s.cloud | (s.replies.length() > 0), card),
                     on_mount=s.load_for(customer_id), key=customer_id,
                     style={"display": "contents"})
