"""The header's subscriber search, available on every page."""

from __future__ import annotations

from urllib.parse import quote

import reflex as rx

from fibernode.services import customers
from fibernode.services.errors import ServiceError
from fibernode.state.session import current_actor

MAX_HITS = 6


class HeaderSearchState(rx.State):
    """The typed term and the first few matches (own subscribers for a mitra)."""

    term: str = ""
    hits: list[dict[str, str]] = []
    more: int = 0
    open: bool = False

    @rx.event
    async def search(self, term: str):
        """Look up name or phone as the user types (debounced by the input)."""
        self.term = term.strip()
        if len(self.term) < 2:
            self.hits, self.more, self.open = [], 0, False
            return
        actor = await current_actor(self)
        if actor is None:
            self.hits, self.open = [], False
            return
        try:
            page = customers.list_customers(actor, search=self.term)
        except ServiceError:
            self.hits, self.open = [], False
            return
        self.hits = [{"id": str(c.id), "name": c.name, "phone": c.phone, "area": c.area}
                     for c in page.items[:MAX_HITS]]
        self.more = max(0, page.total - len(self.hits))
        self.open = True

    @rx.event
    def submit(self, form: dict):
        """Enter: the full result list on the subscribers page."""
        term = (form.get("q") or "").strip()
        self.open = False
        return rx.redirect(f"/customers?q={quote(term)}" if term else "/customers")

    @rx.event
    def close(self):
        """Hide the result list (after a pick or when focus leaves)."""
        self.open = False
