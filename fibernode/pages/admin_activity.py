"""``/admin/activity``: the audit trail (superadmin only).

Filters (action, user, data, Jakarta days, one row's history) all run in SQL in
:func:`fibernode.services.activity.list_activity`, 20 rows a page. Each row shows
what changed as ``field: old → new`` lines; the raw JSON of one row at a time is
kept server-side and sent only when asked for.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

import reflex as rx

from fibernode.components.layout import app_shell
from fibernode.components.ui import alert, empty_state, page_title, pager, superadmin_page
from fibernode.formatting import date_time, number
from fibernode.models import UserRole
from fibernode.services import activity
from fibernode.services.errors import PermissionDenied, ValidationFailed
from fibernode.state.branding import BrandingState
from fibernode.state.session import current_actor, to_login

SYSTEM = "system"
"""The user filter's value for rows without a user (background jobs)."""

ACTION_GROUPS = [
    ("auth.", "Login & keamanan"),
    ("customer.", "Pelanggan"),
    ("invoice.", "Tagihan"),
    ("billing.", "Penagihan otomatis"),
    ("payment_proof.", "Bukti transfer"),
    ("package.", "Paket"),
    ("user.", "Pengguna / mitra"),
    ("settings.", "Pengaturan"),
    ("wa.", "WhatsApp"),
    ("finance.", "Keuangan"),
    ("import.", "Impor"),
    ("maintenance.", "Pemeliharaan"),
]

RESOURCE_LABELS = {
    "customers": "Pelanggan",
    "invoices": "Tagihan",
    "payments": "Pembayaran",
    "payment_proofs": "Bukti transfer",
    "packages": "Paket",
    "users": "Pengguna",
    "user_sessions": "Sesi login",
    "refresh_tokens": "Token API",
    "settings": "Pengaturan",
    "import_jobs": "Impor",
    "file_jobs": "Berkas ekspor",
    "revenue_months": "Tutup buku",
    "wa_sessions": "Sesi WhatsApp",
    "wa_message_queue": "Antrian WhatsApp",
    "wa_message_logs": "Log WhatsApp",
}

VALUE_CHARS = 40
META_CHARS = 300
CHANGE_LINES = 12
JSON_CHARS = 20_000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def short_value(value: Any, limit: int = VALUE_CHARS) -> str:
    """One audit value as a short readable string (``(kosong)`` for nothing)."""
    if value is None or value == "":
        return "(kosong)"
    if isinstance(value, bool):
        return "ya" if value else "tidak"
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    return _cut(" ".join(text.split()), limit)


def _pairs(before: dict, after: dict) -> dict[str, dict[str, Any]]:
    return {k: {"from": before.get(k), "to": after.get(k)}
            for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)}


def describe(meta: dict | None) -> tuple[str, str]:
    """An audit row's metadata as (change lines, the rest in one line).

    ``changes`` (``{field: {"from", "to"}}``, see ``uow.apply_changes``) and a
    ``before``/``after`` pair become ``field: old → new`` lines, one a field;
    the other keys become ``key: value · …``. Long values are cut.
    """
    meta = dict(meta or {})
    lines: list[str] = []
    changes = meta.pop("changes", None)
    if isinstance(changes, dict):
        for field, change in changes.items():
            if isinstance(change, dict) and {"from", "to"} <= change.keys():
                lines.append(f"{field}: {short_value(change['from'])} → "
                             f"{short_value(change['to'])}")
            else:
                lines.append(f"{field}: {short_value(change)}")
    elif changes is not None:
        meta["changes"] = changes
    if "before" in meta and "after" in meta:
        before, after = meta.pop("before"), meta.pop("after")
        if isinstance(before, dict) and isinstance(after, dict):
            lines += [f"{k}: {short_value(c['from'])} → {short_value(c['to'])}"
                      for k, c in _pairs(before, after).items()]
        else:
            lines.append(f"isi: {short_value(before)} → {short_value(after)}")
    if len(lines) > CHANGE_LINES:
        lines = [*lines[:CHANGE_LINES], f"… {len(lines) - CHANGE_LINES} perubahan lagi"]
    rest = " · ".join(f"{k}: {short_value(v)}" for k, v in meta.items())
    return "\n".join(lines), _cut(rest, META_CHARS)


def _parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise ValidationFailed({"date": "Tanggal tidak valid."}) from None


def _user_label(u: activity.ActivityUser) -> str:
    label = f"{u.username} · {u.name}" if u.name and u.name != u.username else u.username
    if u.role == UserRole.SUPERADMIN:
        label += " (superadmin)"
    return label if u.is_active else label + " (nonaktif)"


class ActivityState(rx.State):
    """One page of audit rows (20), filtered in SQL; the filters survive paging."""

    rows: list[dict[str, str]] = []
    page: int = 1
    pages: int = 1
    total: str = "0"
    # Filters: an action group and/or a typed prefix (the typed one wins), a user
    # ("" all, SYSTEM, or a user id), a resource, Jakarta days, one row's history.
    action_group: str = ""
    action_prefix: str = ""
    user: str = ""
    resource: str = ""
    date_from: str = ""
    date_to: str = ""
    resource_id: str = ""
    user_options: list[dict[str, str]] = []
    resource_options: list[dict[str, str]] = []
    error: str = ""
    # Bumped to remount the (uncontrolled) filter form when the filters change
    # from the server side (reset, a row's history).
    form_key: int = 0
    open_id: str = ""
    open_json: str = ""
    forbidden: bool = False
    # Nothing is drawn until the handler has decided, so a mitra never sees the
    # table frame before the no-access view.
    ready: bool = False
    # Raw JSON of the page's rows, by row id: only the opened one goes to the browser.
    _json: dict[str, str] = {}

    def _query(self) -> dict[str, Any]:
        user_id = None
        if self.user and self.user != SYSTEM:
            try:
                user_id = uuid.UUID(self.user)
            except ValueError:
                raise ValidationFailed({"user": "Pengguna tidak dikenal."}) from None
        try:
            resource_id = uuid.UUID(self.resource_id) if self.resource_id else None
        except ValueError:
            raise ValidationFailed({"resource_id": "Data tidak dikenal."}) from None
        return {
            "page": self.page,
            "action_prefix": self.action_prefix or self.action_group,
            "user_id": user_id,
            "system_only": self.user == SYSTEM,
            "resource": self.resource,
            "resource_id": resource_id,
            "date_from": _parse_day(self.date_from),
            "date_to": _parse_day(self.date_to),
        }

    def _show(self, result: activity.ActivityPage) -> None:
        self.page, self.pages, self.total = result.page, result.pages, number(result.total)
        self.rows, self._json = [], {}
        for r in result.rows:
            changes, rest = describe(r.meta)
            row_id = str(r.id)
            self.rows.append({
                "id": row_id,
                # With seconds: several changes often fall in the same minute.
                "time": date_time(r.created_at, seconds=True),
                "user": r.username,
                "action": r.action,
                "resource": r.resource,
                "resource_label": RESOURCE_LABELS.get(r.resource, r.resource),
                "resource_id": r.resource_id,
                "short_id": r.resource_id[:8],
                "ip": r.ip_address or "-",
                "changes": changes,
                "meta": rest,
            })
            if r.meta:
                self._json[row_id] = _cut(json.dumps(r.meta, ensure_ascii=False, indent=2),
                                          JSON_CHARS)

    def _forbid(self) -> None:
        self.forbidden, self.rows, self._json, self.ready = True, [], {}, True

    @rx.event
    async def open(self):
        """Opening the page: the pick lists (once per visit), then the rows."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            options = activity.filter_options(actor)
        except PermissionDenied:
            self._forbid()
            return None
        self.user_options = (
            [{"value": str(u.id), "label": _user_label(u)} for u in options.users]
            + [{"value": SYSTEM, "label": "Sistem (tugas otomatis)"}])
        self.resource_options = [
            {"value": r, "label": f"{RESOURCE_LABELS[r]} ({r})" if r in RESOURCE_LABELS else r}
            for r in options.resources]
        return ActivityState.load

    @rx.event
    async def load(self):
        """Fetch the current page of rows; a mitra gets the no-access view."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.error, self.open_id, self.open_json = "", "", ""
        try:
            self._show(activity.list_activity(actor, **self._query()))
            self.forbidden, self.ready = False, True
        except PermissionDenied:
            self._forbid()
        except ValidationFailed as exc:
            self.forbidden, self.ready = False, True
            self.error = exc.message
            self.rows, self._json, self.total, self.pages = [], {}, "0", 1
        return None

    @rx.event
    async def apply_filter(self, form: dict):
        """Take the filter form's values, back to page 1."""
        self.action_group = (form.get("action_group") or "").strip()
        self.action_prefix = (form.get("action_prefix") or "").strip()
        self.user = (form.get("user") or "").strip()
        self.resource = (form.get("resource") or "").strip()
        self.date_from = (form.get("date_from") or "").strip()
        self.date_to = (form.get("date_to") or "").strip()
        self.page = 1
        return ActivityState.load

    @rx.event
    async def reset_filters(self):
        """Every filter off, page 1."""
        self.action_group = self.action_prefix = self.user = self.resource = ""
        self.date_from = self.date_to = self.resource_id = ""
        self.page = 1
        self.form_key += 1
        return ActivityState.load

    @rx.event
    async def show_history(self, resource: str, resource_id: str):
        """Every row about one record (by anyone, any day), newest first."""
        self.action_group = self.action_prefix = self.user = ""
        self.date_from = self.date_to = ""
        self.resource, self.resource_id = resource, resource_id
        self.page = 1
        self.form_key += 1
        return ActivityState.load

    @rx.event
    async def clear_history(self):
        """Leave one record's history, keeping the other filters."""
        self.resource_id = ""
        self.page = 1
        return ActivityState.load

    @rx.event
    async def toggle_json(self, row_id: str):
        """Show (or hide) one row's full metadata as JSON."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        if not actor.is_superadmin or self.open_id == row_id:
            self.open_id = self.open_json = ""
            return None
        self.open_id, self.open_json = row_id, self._json.get(row_id, "")
        return None

    @rx.event
    async def go(self, delta: int):
        """Previous / next page."""
        self.page = max(1, min(self.pages, self.page + delta))
        return ActivityState.load


S = ActivityState


def _option_list(options: rx.Var, all_label: str) -> list[rx.Component]:
    return [rx.el.option(all_label, value=""),
            rx.foreach(options, lambda o: rx.el.option(o["label"], value=o["value"]))]


def _filters() -> rx.Component:
    return rx.form(
        rx.el.select(rx.el.option("Semua aksi", value=""),
                     *[rx.el.option(label, value=prefix) for prefix, label in ACTION_GROUPS],
                     name="action_group", default_value=S.action_group,
                     class_name="fn-input fn-select", aria_label="Jenis aksi"),
        rx.el.input(name="action_prefix", placeholder="Aksi, mis. customer.update",
                    default_value=S.action_prefix, class_name="fn-input",
                    aria_label="Awalan aksi"),
        rx.el.select(*_option_list(S.user_options, "Semua pengguna"), name="user",
                     default_value=S.user, class_name="fn-input fn-select",
                     aria_label="Pengguna"),
        rx.el.select(*_option_list(S.resource_options, "Semua data"), name="resource",
                     default_value=S.resource, class_name="fn-input fn-select",
                     aria_label="Data"),
        rx.el.label(rx.el.span("Dari", class_name="fn-muted"),
                    rx.el.input(type="date", name="date_from", default_value=S.date_from,
                                class_name="fn-input", aria_label="Dari tanggal"),
                    class_name="fn-date-field"),
        rx.el.label(rx.el.span("Sampai", class_name="fn-muted"),
                    rx.el.input(type="date", name="date_to", default_value=S.date_to,
                                class_name="fn-input", aria_label="Sampai tanggal"),
                    class_name="fn-date-field"),
        rx.el.div(
            rx.button(rx.icon("search", size=16), "Terapkan", type="submit",
                      data_testid="activity-apply"),
            rx.button(rx.icon("rotate_ccw", size=16), "Reset", type="button", variant="soft",
                      color_scheme="gray", on_click=S.reset_filters,
                      data_testid="activity-reset"),
            class_name="fn-toolbar-actions",
        ),
        on_submit=S.apply_filter,
        reset_on_submit=False,
        key=S.form_key.to_string(),
        class_name="fn-filter-bar fn-activity-filters",
        data_testid="activity-filters",
    )


def _history_chip() -> rx.Component:
    return rx.cond(S.resource_id != "", rx.el.div(
        rx.icon("history", size=16),
        rx.el.span("Riwayat satu data: ", rx.el.code(S.resource), " ",
                   rx.el.code(S.resource_id)),
        rx.el.button(rx.icon("x", size=14), "Tutup riwayat", type="button",
                     class_name="fn-link-btn", on_click=S.clear_history,
                     data_testid="activity-history-clear"),
        class_name="fn-alert fn-alert-info fn-activity-history",
        data_testid="activity-history",
    ))


def _data_cell(r: rx.Var) -> rx.Component:
    return rx.el.td(
        rx.el.span(r["resource_label"]), " ",
        rx.cond(r["resource_id"] != "", rx.el.button(
            r["short_id"], type="button", class_name="fn-link-btn fn-mono",
            title="Lihat riwayat data ini",
            on_click=S.show_history(r["resource"], r["resource_id"]),
            data_testid="activity-resource-id")),
        class_name="fn-act-data",
    )


def _detail_cell(r: rx.Var) -> rx.Component:
    return rx.el.td(
        rx.cond(r["changes"] != "", rx.el.div(r["changes"], class_name="fn-changes",
                                              data_testid="activity-changes")),
        rx.cond(r["meta"] != "", rx.el.div(r["meta"], class_name="fn-detail",
                                           data_testid="activity-meta")),
        rx.cond((r["changes"] != "") | (r["meta"] != ""), rx.el.button(
            rx.cond(S.open_id == r["id"], "Tutup JSON", "JSON"), type="button",
            class_name="fn-link-btn fn-detail", on_click=S.toggle_json(r["id"]),
            data_testid="activity-json-toggle")),
        rx.cond(S.open_id == r["id"], rx.el.pre(S.open_json, class_name="fn-activity-json",
                                                data_testid="activity-json")),
        class_name="fn-act-detail",
    )


def _table() -> rx.Component:
    return rx.el.div(
        rx.el.table(
            rx.el.thead(rx.el.tr(*[rx.el.th(h) for h in
                                   ("Waktu", "Pengguna", "Aksi", "Data", "IP", "Detail")])),
            rx.el.tbody(
                rx.foreach(S.rows, lambda r: rx.el.tr(
                    rx.el.td(r["time"], class_name="fn-nowrap fn-act-time"),
                    rx.el.td(r["user"], class_name="fn-act-user", data_testid="activity-user"),
                    rx.el.td(rx.el.code(r["action"]), class_name="fn-act-action",
                             data_testid="activity-action"),
                    _data_cell(r),
                    rx.el.td(r["ip"], class_name="fn-nowrap fn-act-ip"),
                    _detail_cell(r),
                    data_testid="activity-row",
                )),
            ),
            class_name="fn-table fn-activity-table",
        ),
        class_name="fn-table-wrap",
    )


def _pager() -> rx.Component:
    return pager(S.page, S.pages, S.total, "catatan", S.go(-1), S.go(1))


@rx.page(route="/admin/activity", title="Log Aktivitas — FiberNode Internet",
         on_load=[BrandingState.load, ActivityState.open])
def activity_page() -> rx.Component:
    """Who did what, newest first."""
    return app_shell(
        "Log Aktivitas",
        superadmin_page(
            S.ready, S.forbidden,
            page_title("Log Aktivitas", "Semua perubahan data tercatat di sini."),
            rx.el.div(
                _filters(),
                _history_chip(),
                alert(S.error),
                rx.cond(S.rows.length() == 0,
                        empty_state("history", "Tidak ada catatan",
                                    "Ubah atau reset filter untuk melihat catatan lain."),
                        _table()),
                _pager(),
                class_name="fn-card fn-stack",
            ),
        ),
    )
