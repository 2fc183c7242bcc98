"""Layout preferences remembered on the device."""

from __future__ import annotations

import reflex as rx


class UIState(rx.State):
    """Whether the desktop sidebar is collapsed to icons (kept in localStorage)."""

    sidebar_collapsed: str = rx.LocalStorage("0", name="fn_sidebar_collapsed", sync=True)

    @rx.var
    def collapsed(self) -> bool:
        """The stored flag as a boolean."""
        return self.sidebar_collapsed == "1"

    @rx.event
    def toggle_sidebar(self):
        """Collapse or expand the sidebar."""
        self.sidebar_collapsed = "0" if self.sidebar_collapsed == "1" else "1"
