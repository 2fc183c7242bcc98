"""The header bell: lockouts of the user's account, WhatsApp problems and failure spikes."""

from __future__ import annotations

from typing import Any

import reflex as rx

from fibernode.services import devices, whatsapp
from fibernode.services.errors import ServiceError
from fibernode.state.session import current_actor


def notice_row(notice: whatsapp.Notice, user_id: Any) -> dict[str, str]:
    """A notice as the bell and the dashboard banner show it."""
    own = notice.owner_id == user_id
    return {"title": notice.title, "text": notice.message, "href": notice.href,
            "level": notice.level, "own": "1" if own else "",
            # The owner's own link or queue problem (not a failure spike) is the banner.
            "session": "1" if own and notice.level != "info"
            and notice.kind in ("session", "queue") else ""}


def lockout_notice(actor: Any) -> list[whatsapp.Notice]:
    """The account's recent lockouts (someone guessing its password), as a bell entry."""
    summary = devices.recent_lockouts(actor)
    if summary is None:
        return []
    return [whatsapp.Notice("warning", summary.title, summary.message, actor.user_id,
                            href="/profile", kind="security")]


class NotificationState(rx.State):
    """What the bell lists; loaded when the shell mounts (every page)."""

    items: list[dict[str, str]] = []
    # The owner's own session problem, for the dashboard banner.
    banner: str = ""

    @rx.event
    async def load(self):
        """Fetch the current notices (nothing for anonymous visitors)."""
        actor = await current_actor(self)
        if actor is None:
            self.items, self.banner = [], ""
            return
        try:
            rows = [notice_row(n, actor.user_id)
                    for n in [*lockout_notice(actor), *whatsapp.notifications(actor)]]
        except ServiceError:
            rows = []
        self.items = rows
        self.banner = next((f"{r['title']}. {r['text']}" for r in rows if r["session"]), "")
