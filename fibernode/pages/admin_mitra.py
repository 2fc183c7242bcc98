"""``/admin/mitra``: partner accounts with their subscriber counts (superadmin)."""

from __future__ import annotations

import uuid

import reflex as rx

from fibernode.components.layout import app_shell
from fibernode.components.ui import (
    active_pill,
    alert,
    confirm_dialog,
    empty_state,
    fab,
    field,
    page_title,
    pager,
    sheet,
    superadmin_page,
    text_input,
)
from fibernode.formatting import number
from fibernode.services import users
from fibernode.services.context import Actor
from fibernode.services.errors import ServiceError, ValidationFailed
from fibernode.state.branding import BrandingState
from fibernode.state.paging import PagedListMixin
from fibernode.state.session import current_actor, to_login
from fibernode.state.ui import toast


class MitraState(PagedListMixin, rx.State):
    """One page of mitra and the open form / dialogs."""

    rows: list[dict[str, str]] = []
    forbidden: bool = False
    ready: bool = False
    form_open: bool = False
    form_editing: str = ""
    form_values: dict[str, str] = {}
    form_errors: dict[str, str] = {}
    form_key: int = 0
    password_for: str = ""  # mitra id whose password is being reset
    password_name: str = ""
    password_errors: dict[str, str] = {}
    confirm_action: str = ""  # "deactivate" / "delete"
    confirm_id: str = ""
    confirm_name: str = ""

    def _fetch(self, actor: Actor) -> None:
        result = users.list_mitra(actor, page=self.page, search=self.search)
        self.page, self.pages, self.total = result.page, result.pages, result.total
        self.rows = [
            {"id": str(m.id), "username": m.username, "name": m.name,
             "business_name": m.business_name, "phone": m.phone or "",
             "bank_name": m.bank_name or "", "bank_account": m.bank_account or "",
             "bank_holder": m.bank_holder or "", "active": "1" if m.is_active else "",
             "customers": number(m.customer_count), "active_count": number(m.active_count),
             "isolated": number(m.isolated_count)}
            for m in result.items
        ]

    @rx.event
    async def load(self):
        """Page load; a mitra gets the no-access view."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.forbidden = not actor.is_superadmin
        if not self.forbidden:
            self._fetch(actor)
        self.ready = True
        return None

    @rx.event
    def open_create(self):
        """Empty form."""
        self.form_editing = ""
        self.form_values = {k: "" for k in ("username", "name", "business_name", "phone",
                                            "bank_name", "bank_account", "bank_holder")}
        self.form_errors, self.form_open = {}, True
        self.form_key += 1

    @rx.event
    def open_edit(self, mitra_id: str):
        """Form filled with one mitra."""
        row = next((r for r in self.rows if r["id"] == mitra_id), None)
        if row is None:
            return
        self.form_editing = mitra_id
        self.form_values = {k: row[k] for k in ("username", "name", "business_name", "phone",
                                                "bank_name", "bank_account", "bank_holder")}
        self.form_errors, self.form_open = {}, True
        self.form_key += 1

    @rx.event
    def set_form_open(self, value: bool):
        """Close the sheet."""
        self.form_open = value

    @rx.event
    async def save(self, form: dict):
        """Create or update a mitra; keeps the input when the server says no."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        common = {k: form.get(k, "") for k in ("name", "business_name", "phone", "bank_name",
                                               "bank_account", "bank_holder")}
        try:
            if self.form_editing:
                users.update_mitra(actor, uuid.UUID(self.form_editing),
                                   username=form.get("username", ""), **common)
            else:
                users.create_mitra(actor, username=form.get("username", ""),
                                   password=form.get("password", ""), **common)
        except ValidationFailed as exc:
            self.form_errors = exc.details
            return None
        except ServiceError as exc:
            self.form_errors = {"form": exc.message}
            return None
        created = not self.form_editing
        self.form_open, self.form_errors = False, {}
        self._fetch(actor)
        return rx.toast.success("Mitra ditambahkan." if created else "Data mitra disimpan.")

    @rx.event
    def open_password(self, mitra_id: str, name: str):
        """Reset-password dialog."""
        self.password_for, self.password_name, self.password_errors = mitra_id, name, {}

    @rx.event
    def set_password_open(self, value: bool):
        """Close the reset-password dialog."""
        if not value:
            self.password_for = ""

    @rx.event
    async def reset_password(self, form: dict):
        """Set a new password; the mitra is logged out everywhere."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            users.reset_mitra_password(actor, uuid.UUID(self.password_for),
                                       form.get("new_password", ""))
        except ValidationFailed as exc:
            self.password_errors = exc.details
            return None
        except ServiceError as exc:
            self.password_errors = {"form": exc.message}
            return None
        self.password_for = ""
        return rx.toast.success("Password direset. Mitra harus login ulang.")

    @rx.event
    async def activate(self, mitra_id: str):
        """Let a deactivated mitra log in again."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            users.set_user_active(actor, uuid.UUID(mitra_id), True)
        except ServiceError as exc:
            return toast("error", exc.message)
        self._fetch(actor)
        return rx.toast.success("Mitra diaktifkan.")

    @rx.event
    def ask(self, action: str, mitra_id: str, name: str):
        """Confirm a deactivation or deletion."""
        self.confirm_action, self.confirm_id, self.confirm_name = action, mitra_id, name

    @rx.event
    def set_confirm_open(self, value: bool):
        """Close the confirmation."""
        if not value:
            self.confirm_action = ""

    @rx.event
    async def confirm(self):
        """Run the confirmed action; refusals explain what to do first."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        action, mitra_id, self.confirm_action = self.confirm_action, self.confirm_id, ""
        try:
            target = uuid.UUID(mitra_id)
        except ValueError:
            return None  # a second tap after the dialog closed: nothing left to confirm
        try:
            if action == "delete":
                users.delete_mitra(actor, target)
            elif action == "deactivate":
                users.set_user_active(actor, target, False)
            else:
                return None
        except ServiceError as exc:
            return toast("error", exc.message, duration=10000)
        self._fetch(actor)
        return rx.toast.success("Mitra dihapus." if action == "delete" else
                                "Mitra dinonaktifkan dan dikeluarkan dari semua perangkat.")


S = MitraState


def _err(key: str) -> rx.Var:
    return S.form_errors.get(key, "")


def _form() -> rx.Component:
    v = S.form_values
    return sheet(
        S.form_open, S.set_form_open,
        rx.cond(S.form_editing != "", "Ubah Mitra", "Tambah Mitra"),
        rx.form(
            rx.el.div(
                field("Username", text_input("username", v["username"], error=_err("username"),
                                             placeholder="mitra3"), _err("username")),
                rx.cond(S.form_editing == "", field(
                    "Password awal", text_input("password", type_="password",
                                                error=_err("password"),
                                                autocomplete="new-password"),
                    _err("password"), hint="Minimal 8 karakter, huruf dan angka.")),
                field("Nama", text_input("name", v["name"], error=_err("name")), _err("name")),
                field("Nama usaha (area)", text_input("business_name", v["business_name"],
                                                      error=_err("business_name"),
                                                      placeholder="WiFi Sukamaju"),
                      _err("business_name"), hint="Dipakai kolom area pada impor CSV."),
                field("Nomor HP / WhatsApp", text_input("phone", v["phone"], type_="tel",
                                                        error=_err("phone"), input_mode="tel"),
                      _err("phone")),
                field("Nama bank", text_input("bank_name", v["bank_name"],
                                              error=_err("bank_name")), _err("bank_name")),
                field("Nomor rekening", text_input("bank_account", v["bank_account"],
                                                   error=_err("bank_account"),
                                                   input_mode="numeric"), _err("bank_account")),
                field("Atas nama", text_input("bank_holder", v["bank_holder"],
                                              error=_err("bank_holder")), _err("bank_holder")),
                class_name="fn-grid-2",
            ),
            alert(_err("form")),
            rx.el.div(rx.button("Simpan", type="submit", size="3", data_testid="save-mitra"),
                      class_name="fn-dialog-actions"),
            on_submit=S.save,
            reset_on_submit=False,
            key=S.form_key.to_string(),
            class_name="fn-form",
        ),
        test_id="mitra-sheet",
    )


def _password_sheet() -> rx.Component:
    e = S.password_errors
    return sheet(
        S.password_for != "", S.set_password_open, "Reset Password " + S.password_name,
        rx.form(
            field("Password baru", text_input("new_password", type_="password",
                                              error=e.get("new_password", ""),
                                              autocomplete="new-password"),
                  e.get("new_password", ""), hint="Minimal 8 karakter, huruf dan angka."),
            alert(e.get("form", "")),
            rx.el.div(rx.button("Reset Password", type="submit", size="3"),
                      class_name="fn-dialog-actions"),
            on_submit=S.reset_password,
            reset_on_submit=True,
            class_name="fn-form",
        ),
        test_id="password-sheet",
    )


def _actions(r) -> rx.Component:
    return rx.el.div(
        rx.button(rx.icon("pencil", size=14), "Ubah", size="1", variant="soft",
                  on_click=S.open_edit(r["id"])),
        rx.button(rx.icon("key_round", size=14), "Password", size="1", variant="soft",
                  on_click=S.open_password(r["id"], r["business_name"])),
        rx.cond(r["active"] != "",
                rx.button("Nonaktifkan", size="1", variant="soft", color_scheme="gray",
                          on_click=S.ask("deactivate", r["id"], r["business_name"])),
                rx.button("Aktifkan", size="1", variant="soft", color_scheme="green",
                          on_click=S.activate(r["id"]))),
        rx.button(rx.icon("trash_2", size=14), size="1", variant="soft", color_scheme="red",
                  on_click=S.ask("delete", r["id"], r["business_name"]), aria_label="Hapus"),
        class_name="fn-toolbar-actions",
    )


def _table() -> rx.Component:
    return rx.el.div(rx.el.table(
        rx.el.thead(rx.el.tr(*[rx.el.th(h) for h in ("Nama usaha", "Pemilik", "Username",
                                                      "Telepon", "Pelanggan", "Status", "")])),
        rx.el.tbody(rx.foreach(S.rows, lambda r: rx.el.tr(
            rx.el.td(rx.link(rx.el.strong(r["business_name"]),
                             href="/customers?mitra=" + r["id"])),
            rx.el.td(r["name"]), rx.el.td(r["username"]), rx.el.td(r["phone"]),
            rx.el.td(r["customers"], rx.el.div(r["active_count"], " aktif · ", r["isolated"],
                                               " isolir", class_name="fn-muted")),
            rx.el.td(active_pill(r["active"])),
            rx.el.td(_actions(r)),
            data_testid="mitra-row",
        ))),
        class_name="fn-table",
    ), class_name="fn-table-wrap fn-desktop-only")


def _cards() -> rx.Component:
    return rx.el.div(rx.foreach(S.rows, lambda r: rx.el.div(
        rx.el.div(
            rx.el.div(rx.el.div(r["business_name"], class_name="fn-card-title"),
                      active_pill(r["active"]),
                      class_name="fn-card-row"),
            rx.el.div(r["name"], " · @", r["username"], " · ", r["customers"], " pelanggan",
                      class_name="fn-muted"),
            _actions(r),
            class_name="fn-card-link",
        ),
        class_name="fn-list-card",
    )), class_name="fn-card-list fn-mobile-only")


@rx.page(route="/admin/mitra", title="Mitra — FiberNode Internet",
         on_load=[BrandingState.load, MitraState.load])
def mitra_page() -> rx.Component:
    """Partner management."""
    return app_shell(
        "Mitra",
        superadmin_page(
            S.ready, S.forbidden,
            rx.el.div(
                page_title("Mitra", S.total_label + " mitra"),
                rx.button(rx.icon("plus", size=16), "Tambah Mitra", on_click=S.open_create,
                          class_name="fn-desktop-only", data_testid="add-mitra"),
                class_name="fn-page-bar",
            ),
            rx.el.div(
                rx.form(
                    rx.el.input(name="search", default_value=S.search, type="search",
                                placeholder="Cari nama, usaha atau username…",
                                class_name="fn-input"),
                    rx.button(rx.icon("search", size=16), "Cari", type="submit",
                              variant="soft"),
                    on_submit=S.apply_search, reset_on_submit=False,
                    class_name="fn-search-row",
                ),
                rx.cond(S.rows.length() == 0,
                        empty_state("handshake", "Belum ada mitra",
                                    "Tambahkan mitra dengan tombol Tambah Mitra."),
                        rx.fragment(_table(), _cards())),
                pager(S.page, S.pages, S.total_label, "mitra", S.go(-1), S.go(1)),
                class_name="fn-card fn-stack fn-list-panel",
            ),
            fab("Tambah mitra", S.open_create),
            _form(),
            _password_sheet(),
            confirm_dialog(
                S.confirm_action != "", S.set_confirm_open,
                rx.cond(S.confirm_action == "delete", "Hapus mitra?", "Nonaktifkan mitra?"),
                rx.cond(S.confirm_action == "delete",
                        "Akun " + S.confirm_name + " akan dihapus permanen.",
                        "Akun " + S.confirm_name + " tidak bisa login lagi sampai "
                        "diaktifkan kembali."),
                "Ya, lanjutkan", S.confirm, test_id="mitra-confirm"),
        ),
    )
