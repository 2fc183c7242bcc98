"""What every paged list page shares: page number, search, reload (a state mixin)."""

from __future__ import annotations

import reflex as rx

from fibernode.formatting import number
from fibernode.services.context import Actor
from fibernode.state.session import current_actor, to_login


class PagedListMixin(rx.State, mixin=True):
    """Page / pages / total / search of a list filled by ``_fetch`` from a service."""

    page: int = 1
    pages: int = 1
    total: int = 0
    search: str = ""
    loading: bool = True

    @rx.var
    def total_label(self) -> str:
        """Total as Indonesian digits."""
        return number(self.total)

    def _fetch(self, actor: Actor) -> None:
        """Load the current page (each page state says how)."""
        raise NotImplementedError

    async def _refetch(self):
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self._fetch(actor)
        return None

    async def _set_filter(self, name: str, value: str):
        """Change one filter and go back to page 1."""
        setattr(self, name, value)
        self.page = 1
        return await self._refetch()

    @rx.event
    async def apply_search(self, form: dict):
        """Search box submitted: back to page 1."""
        return await self._set_filter("search", (form.get("search") or "").strip())

    @rx.event
    async def go(self, delta: int):
        """Previous / next page, with the skeleton while it loads."""
        self.page = max(1, min(self.pages, self.page + delta))
        self.loading = True
        yield
        redirect = await self._refetch()
        self.loading = False
        if redirect is not None:
            yield redirect

    @rx.event
    async def refresh(self):
        """Reload the current page."""
        return await self._refetch()
