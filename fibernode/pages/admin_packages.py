"""``/admin/packages``: internet packages with their subscriber counts (superadmin)."""

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
    sheet,
    superadmin_page,
    text_input,
)
from fibernode.formatting import number, rupiah
from fibernode.pages.customer_form import parse_int
from fibernode.services import packages
from fibernode.services.context import Actor
from fibernode.services.errors import PermissionDenied, ServiceError, ValidationFailed
from fibernode.state.branding import BrandingState
from fibernode.state.session import current_actor, to_login
from fibernode.state.ui import toast


class PackagesState(rx.State):
    """All packages (active and retired) and the open form."""

    rows: list[dict[str, str]] = []
    forbidden: bool = False
    ready: bool = False
    form_open: bool = False
    form_editing: str = ""
    form_values: dict[str, str] = {}
    form_errors: dict[str, str] = {}
    form_key: int = 0
    delete_id: str = ""
    delete_name: str = ""

    def _fetch(self, actor: Actor) -> None:
        self.rows = [
            {"id": str(p.id), "name": p.name, "speed": p.speed, "price": rupiah(p.price),
             "price_raw": str(p.price), "description": p.description,
             "active": "1" if p.is_active else "", "count": number(p.subscriber_count)}
            for p in packages.list_packages(actor, include_inactive=True)
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
        self.form_values = {"name": "", "speed": "", "price": "", "description": ""}
        self.form_errors, self.form_open = {}, True
        self.form_key += 1

    @rx.event
    def open_edit(self, package_id: str):
        """Form filled with one package."""
        row = next((r for r in self.rows if r["id"] == package_id), None)
        if row is None:
            return
        self.form_editing = package_id
        self.form_values = {"name": row["name"], "speed": row["speed"],
                            "price": row["price_raw"], "description": row["description"]}
        self.form_errors, self.form_open = {}, True
        self.form_key += 1

    @rx.event
    def set_form_open(self, value: bool):
        """Close the sheet."""
        self.form_open = value

    @rx.event
    async def save(self, form: dict):
        """Create or update; the price change recomputes subscribers' totals, not invoices."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        values = {"name": form.get("name", ""), "speed": form.get("speed", ""),
                  "price": parse_int(form.get("price")),
                  "description": form.get("description", "")}
        try:
            if self.form_editing:
                packages.update_package(actor, uuid.UUID(self.form_editing), **values)
            else:
                packages.create_package(actor, **values)
        except ValidationFailed as exc:
            self.form_errors = exc.details
            return None
        except ServiceError as exc:
            self.form_errors = {"form": exc.message}
            return None
        self.form_open, self.form_errors = False, {}
        self._fetch(actor)
        return rx.toast.success("Paket disimpan.")

    @rx.event
    async def toggle_active(self, package_id: str, active: bool):
        """Retire a package from pick lists, or offer it again."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            packages.set_package_active(actor, uuid.UUID(package_id), active)
        except (ServiceError, PermissionDenied) as exc:
            return toast("error", exc.message)
        self._fetch(actor)
        return rx.toast.success("Paket diaktifkan." if active else
                                "Paket dinonaktifkan; pelanggan lama tetap memakainya.")

    @rx.event
    def ask_delete(self, package_id: str, name: str):
        """Confirm before deleting."""
        self.delete_id, self.delete_name = package_id, name

    @rx.event
    def set_delete_open(self, value: bool):
        """Close the confirmation."""
        if not value:
            self.delete_id = ""

    @rx.event
    async def delete(self):
        """Delete for good (refused while subscribers use it)."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        package_id, self.delete_id = self.delete_id, ""
        try:
            packages.delete_package(actor, uuid.UUID(package_id))
        except ValueError:
            return toast("error", "Pilih paket yang akan dihapus.")
        except ServiceError as exc:
            return toast("error", exc.message, duration=8000)
        self._fetch(actor)
        return rx.toast.success("Paket dihapus.")


S = PackagesState


def _err(key: str) -> rx.Var:
    return S.form_errors.get(key, "")


def _form() -> rx.Component:
    v = S.form_values
    return sheet(
        S.form_open, S.set_form_open,
        rx.cond(S.form_editing != "", "Ubah Paket", "Tambah Paket"),
        rx.form(
            field("Nama paket", text_input("name", v["name"], error=_err("name"),
                                           placeholder="Paket 20 Mbps"), _err("name")),
            rx.el.div(
                field("Kecepatan", text_input("speed", v["speed"], error=_err("speed"),
                                              placeholder="20 Mbps"), _err("speed")),
                field("Harga / bulan (Rp)", text_input("price", v["price"], error=_err("price"),
                                                       input_mode="numeric",
                                                       placeholder="150000"), _err("price")),
                class_name="fn-grid-2",
            ),
            field("Deskripsi", rx.el.textarea(name="description", default_value=v["description"],
                                              rows=2, class_name="fn-input fn-textarea"),
                  _err("description")),
            rx.cond(S.form_editing != "",
                    rx.el.p("Perubahan harga berlaku untuk tagihan berikutnya; tagihan yang "
                            "sudah terbit tidak berubah.", class_name="fn-muted")),
            alert(_err("form")),
            rx.el.div(rx.button("Simpan", type="submit", size="3", data_testid="save-package"),
                      class_name="fn-dialog-actions"),
            on_submit=S.save,
            reset_on_submit=False,
            key=S.form_key.to_string(),
            class_name="fn-form",
        ),
        test_id="package-sheet",
    )


def _row_actions(r) -> rx.Component:
    return rx.el.div(
        rx.button(rx.icon("pencil", size=14), "Ubah", size="1", variant="soft",
                  on_click=S.open_edit(r["id"])),
        rx.cond(r["active"] != "",
                rx.button("Nonaktifkan", size="1", variant="soft", color_scheme="gray",
                          on_click=S.toggle_active(r["id"], False)),
                rx.button("Aktifkan", size="1", variant="soft", color_scheme="green",
                          on_click=S.toggle_active(r["id"], True))),
        rx.button(rx.icon("trash_2", size=14), size="1", variant="soft", color_scheme="red",
                  on_click=S.ask_delete(r["id"], r["name"]), aria_label="Hapus"),
        class_name="fn-toolbar-actions",
    )


def _table() -> rx.Component:
    return rx.el.div(rx.el.table(
        rx.el.thead(rx.el.tr(*[rx.el.th(h) for h in ("Paket", "Kecepatan", "Harga", "Pelanggan",
                                                      "Status", "")])),
        rx.el.tbody(rx.foreach(S.rows, lambda r: rx.el.tr(
            rx.el.td(rx.el.strong(r["name"]), rx.cond(r["description"] != "", rx.el.div(
                r["description"], class_name="fn-muted"))),
            rx.el.td(r["speed"]), rx.el.td(r["price"], class_name="fn-nowrap"),
            rx.el.td(r["count"]),
            rx.el.td(active_pill(r["active"])),
            rx.el.td(_row_actions(r)),
            data_testid="package-row",
        ))),
        class_name="fn-table",
    ), class_name="fn-table-wrap fn-desktop-only")


def _cards() -> rx.Component:
    return rx.el.div(rx.foreach(S.rows, lambda r: rx.el.div(
        rx.el.div(
            rx.el.div(rx.el.div(r["name"], class_name="fn-card-title"),
                      rx.el.span(r["price"], class_name="fn-card-amount"),
                      class_name="fn-card-row"),
            rx.el.div(r["speed"], " · ", r["count"], " pelanggan",
                      rx.cond(r["active"] == "", rx.el.span(" · nonaktif")), class_name="fn-muted"),
            _row_actions(r),
            class_name="fn-card-link",
        ),
        class_name="fn-list-card",
    )), class_name="fn-card-list fn-mobile-only")


@rx.page(route="/admin/packages", title="Paket Internet — FiberNode Internet",
         on_load=[BrandingState.load, PackagesState.load])
def packages_page() -> rx.Component:
    """Package management."""
    return app_shell(
        "Paket Internet",
        superadmin_page(
            S.ready, S.forbidden,
            rx.el.div(
                page_title("Paket Internet",
                           "Paket nonaktif tidak muncul di pilihan, pelanggan lama tetap "
                           "memakainya."),
                rx.button(rx.icon("plus", size=16), "Tambah Paket", on_click=S.open_create,
                          class_name="fn-desktop-only", data_testid="add-package"),
                class_name="fn-page-bar",
            ),
            rx.el.div(
                rx.cond(S.rows.length() == 0,
                        empty_state("package", "Belum ada paket",
                                    "Tambahkan paket internet pertama Anda."),
                        rx.fragment(_table(), _cards())),
                class_name="fn-card fn-list-panel",
            ),
            fab("Tambah paket", S.open_create),
            _form(),
            confirm_dialog(S.delete_id != "", S.set_delete_open, "Hapus paket?",
                           "Paket " + S.delete_name + " akan dihapus permanen. Paket yang "
                           "masih dipakai pelanggan tidak bisa dihapus — nonaktifkan saja.",
                           "Hapus", S.delete, test_id="delete-package"),
        ),
    )
