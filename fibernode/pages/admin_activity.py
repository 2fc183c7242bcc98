"""``/admin/activity``: the audit trail (superadmin only)."""

from __future__ import annotations

import json

import reflex as rx

from fibernode.components.layout import app_shell
from fibernode.components.ui import page_title, pager, superadmin_page
from fibernode.formatting import date_time, number
from fibernode.services import activity
from fibernode.services.errors import PermissionDenied
from fibernode.state.branding import BrandingState
from fibernode.state.session import current_actor, to_login


class ActivityState(rx.State):
    """One page of audit rows (20), filtered in SQL."""

    rows: list[dict[str, str]] = []
    page: int = 1
    pages: int = 1
    total: str = "0"
    action_prefix: str = ""
    username: str = ""
    forbidden: bool = False
    # Nothing is drawn until the handler has decided, so a mitra never sees the
    # table frame before the no-access view.
    ready: bool = False

    @rx.event
    async def load(self):
        """Fetch the current page; a mitra gets the no-access view."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            result = activity.list_activity(actor, page=self.page,
                                            action_prefix=self.action_prefix,
                                            username=self.username)
        except PermissionDenied:
            self.forbidden, self.rows, self.ready = True, [], True
            return
        self.forbidden, self.ready = False, True
        self.page, self.pages, self.total = result.page, result.pages, number(result.total)
        self.rows = [
            {
                "time": date_time(r.created_at),
                "user": r.username,
                "action": r.action,
                "resource": r.resource,
                "ip": r.ip_address or "-",
                "detail": json.dumps(r.meta, ensure_ascii=False)[:300] if r.meta else "",
            }
            for r in result.rows
        ]

    @rx.event
    async def apply_filter(self, form: dict):
        """Filter by action prefix and username, back to page 1."""
        self.action_prefix = (form.get("action_prefix") or "").strip()
        self.username = (form.get("username") or "").strip()
        self.page = 1
        return ActivityState.load

    @rx.event
    async def go(self, delta: int):
        """Previous / next page."""
        self.page = max(1, min(self.pages, self.page + delta))
        return ActivityState.load


def _filters() -> rx.Component:
    return rx.form(
        rx.el.input(name="action_prefix", placeholder="Aksi, mis. auth.", class_name="fn-input",
                    default_value=ActivityState.action_prefix),
        rx.el.input(name="username", placeholder="Username", class_name="fn-input",
                    default_value=ActivityState.username),
        rx.button(rx.icon("search", size=16), "Filter", type="submit"),
        on_submit=ActivityState.apply_filter,
        reset_on_submit=False,
        class_name="fn-filter-bar",
    )


def _table() -> rx.Component:
    return rx.el.div(
        rx.el.table(
            rx.el.thead(rx.el.tr(*[rx.el.th(h) for h in
                                   ("Waktu", "Pengguna", "Aksi", "Data", "IP", "Detail")])),
            rx.el.tbody(
                rx.foreach(ActivityState.rows, lambda r: rx.el.tr(
                    rx.el.td(r["time"], class_name="fn-nowrap"), rx.el.td(r["user"]),
                    rx.el.td(rx.el.code(r["action"])), rx.el.td(r["resource"]),
                    rx.el.td(r["ip"]), rx.el.td(r["detail"], class_name="fn-detail"),
                )),
            ),
            class_name="fn-table",
        ),
        class_name="fn-table-wrap",
    )


def _pager() -> rx.Component:
    return pager(ActivityState.page, ActivityState.pages, ActivityState.total, "catatan",
                 ActivityState.go(-1), ActivityState.go(1))


@rx.page(route="/admin/activity", title="Log Aktivitas — FiberNode Internet",
         on_load=[BrandingState.load, ActivityState.load])
def activity_page() -> rx.Component:
    """Who did what, newest first."""
    return app_shell(
        "Log Aktivitas",
        superadmin_page(
            ActivityState.ready, ActivityState.forbidden,
            page_title("Log Aktivitas", "Semua perubahan data tercatat di sini."),
            rx.el.div(_filters(), _table(), _pager(), class_name="fn-card fn-stack"),
        ),
    )
