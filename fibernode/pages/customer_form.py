"""The subscriber form shared by ``/customers`` and ``/customers/{id}``.

Not a route: a state mixin plus the form component. Each page's state
inherits the mixin and says what to refresh after a save (``_after_save``).
"""

from __future__ import annotations

import uuid
from datetime import date

import reflex as rx

from fibernode.components.ui import (
    alert,
    field,
    select_input,
    sheet,
    show_secret,
    text_input,
)
from fibernode.formatting import rupiah
from fibernode.services import customers, packages, users
from fibernode.services.context import Actor
from fibernode.services.errors import ServiceError, ValidationFailed
from fibernode.services.validation import parse_amount
from fibernode.state.session import SessionState, current_actor, to_login

BILLING_DAYS = [{"value": str(d), "label": f"Tanggal {d}"} for d in range(1, 29)]


def parse_int(raw: str | None) -> int | str:
    """``"Rp 10.000"`` → 10000; text that is no number is returned unchanged.

    Services then answer with their own Indonesian message for a non-number.
    """
    text = (raw or "").strip()
    if not text:
        return 0
    value = parse_amount(text)
    return text if value is None else value


def parse_day(raw: str | None) -> date | str:
    """An ``<input type=date>`` value as a date (the raw text when invalid)."""
    try:
        return date.fromisoformat((raw or "").strip())
    except ValueError:
        return raw or ""


class CustomerFormMixin(rx.State, mixin=True):
    """Open / fill / save the add-or-edit subscriber sheet."""

    form_open: bool = False
    form_editing: str = ""  # subscriber id while editing, "" when adding
    form_values: dict[str, str] = {}
    form_errors: dict[str, str] = {}
    # Bumped only when the form gets new defaults, so a rejected submit keeps
    # everything the user typed.
    form_key: int = 0
    form_saving: bool = False
    form_mitra_only: bool = False  # a mitra may change only phone and discount
    package_options: list[dict[str, str]] = []
    owner_options: list[dict[str, str]] = []
    preview_price: int = 0
    preview_discount: int = 0
    _prices: dict[str, int] = {}
    # Moving subscribers to another owner (superadmin).
    move_open: bool = False
    move_error: str = ""

    @rx.var
    def preview_total(self) -> str:
        """Package price minus discount, as the form is being filled."""
        return rupiah(max(0, self.preview_price - self.preview_discount))

    @rx.var
    def form_title(self) -> str:
        """Sheet title."""
        return "Ubah Pelanggan" if self.form_editing else "Tambah Pelanggan"

    def _load_options(self, actor: Actor) -> None:
        pkgs = packages.list_packages(actor)
        self._prices = {str(p.id): p.price for p in pkgs}
        self.package_options = [
            {"value": str(p.id), "label": f"{p.name} · {p.speed} · {rupiah(p.price)}"}
            for p in pkgs
        ]
        self.owner_options = [
            {"value": str(o.id), "label": o.business_name} for o in users.list_owners(actor)
        ]

    async def _after_save(self, actor: Actor, customer_id: uuid.UUID) -> None:
        """Refresh what the page shows after a successful save."""

    @rx.event
    async def open_create(self):
        """An empty form (owner defaults to the first option for the superadmin)."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self._load_options(actor)
        first_pkg = self.package_options[0]["value"] if self.package_options else ""
        self.form_values = {
            "name": "", "phone": "", "package_id": first_pkg, "billing_date": "1",
            "discount": "0", "nik": "", "address": "", "notes": "",
            "owner_id": str(actor.user_id), "register_date": date.today().isoformat(),
        }
        self.form_editing, self.form_mitra_only = "", False
        self.preview_price, self.preview_discount = self._prices.get(first_pkg, 0), 0
        self.form_errors = {}
        self.form_key += 1
        self.form_open = True
        return None

    @rx.event
    async def open_edit(self, customer_id: str):
        """The form filled with one subscriber's current values."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            c = customers.get_customer(actor, uuid.UUID(customer_id))
        except (ServiceError, ValueError):
            return rx.toast.error("Pelanggan tidak ditemukan.")
        self._load_options(actor)
        if str(c.package_id) not in self._prices:  # a retired package stays selectable
            self._prices[str(c.package_id)] = c.package_price
            self.package_options = [
                {"value": str(c.package_id),
                 "label": f"{c.package_name} · {c.package_speed} (tidak aktif)"},
                *self.package_options,
            ]
        self.form_values = {
            "name": c.name, "phone": c.phone, "package_id": str(c.package_id),
            "billing_date": str(c.billing_date), "discount": str(c.discount),
            # The plain NIK (superadmin) is written into the field, never into the state.
            "nik": "" if actor.is_superadmin else (c.nik_masked or ""),
            "address": c.address, "notes": c.notes, "owner_id": str(c.owner_id),
            "register_date": c.register_date.isoformat(),
        }
        self.form_editing = customer_id
        self.form_mitra_only = not actor.is_superadmin
        self.preview_price, self.preview_discount = c.package_price, c.discount
        self.form_errors = {}
        self.form_key += 1
        self.form_open = True
        if actor.is_superadmin and c.nik:
            return show_secret("nik", c.nik, prop="value")
        return None

    @rx.event
    def set_move_open(self, value: bool):
        """Open / close the move sheet."""
        self.move_open, self.move_error = value, ""

    def _move(self, actor: Actor, customer_ids: list[str], form: dict) -> int | None:
        """Move to the owner picked in ``form``; ``None`` (with the reason shown) on refusal."""
        try:
            moved = customers.move_customers(actor, [uuid.UUID(c) for c in customer_ids],
                                             uuid.UUID(form.get("new_owner_id") or ""))
        except ValueError:
            self.move_error = "Pilih pemilik tujuan."
            return None
        except ServiceError as exc:
            self.move_error = exc.message
            return None
        self.move_open = False
        return moved

    @rx.event
    def set_form_open(self, value: bool):
        """Close (or reopen) the sheet."""
        self.form_open = value

    @rx.event
    def preview_package(self, package_id: str):
        """Update the total preview when another package is picked."""
        self.preview_price = self._prices.get(package_id, 0)

    @rx.event
    def preview_discount_text(self, raw: str):
        """Update the total preview as the discount is typed."""
        value = parse_int(raw)
        self.preview_discount = value if isinstance(value, int) else 0

    @rx.event
    async def save_form(self, form: dict):
        """Create or update; on rejection keep the input and show why, field by field."""
        actor = await current_actor(self)
        if actor is None:
            yield await to_login(self)
            return
        self.form_saving = True
        yield
        try:
            customer_id = self._save(actor, form)
        except ValidationFailed as exc:
            self.form_errors = exc.details
            self.form_saving = False
            return
        except ServiceError as exc:
            self.form_errors = {"form": exc.message}
            self.form_saving = False
            return
        self.form_errors, self.form_saving, self.form_open = {}, False, False
        await self._after_save(actor, customer_id)
        yield rx.toast.success("Pelanggan disimpan." if self.form_editing
                               else "Pelanggan ditambahkan.")

    def _save(self, actor: Actor, form: dict) -> uuid.UUID:
        phone, discount = form.get("phone", ""), parse_int(form.get("discount"))
        if self.form_editing:
            cid = uuid.UUID(self.form_editing)
            if self.form_mitra_only:
                customers.update_customer(actor, cid, phone=phone, discount=discount)
                return cid
            try:
                package_id = uuid.UUID(form.get("package_id", ""))
            except ValueError:
                raise ValidationFailed({"package_id": "Pilih paket."}) from None
            customers.update_customer(
                actor, cid, name=form.get("name", ""), phone=phone, package_id=package_id,
                billing_date=parse_int(form.get("billing_date")), discount=discount,
                nik=form.get("nik", ""), address=form.get("address", ""),
                notes=form.get("notes", ""), register_date=parse_day(form.get("register_date")))
            return cid
        try:
            package_id = uuid.UUID(form.get("package_id", ""))
        except ValueError:
            raise ValidationFailed({"package_id": "Pilih paket."}) from None
        owner_id = None
        if actor.is_superadmin and form.get("owner_id"):
            try:
                owner_id = uuid.UUID(form["owner_id"])
            except ValueError:
                raise ValidationFailed({"owner_id": "Pilih pemilik."}) from None
        return customers.create_customer(
            actor, name=form.get("name", ""), phone=phone, package_id=package_id,
            billing_date=parse_int(form.get("billing_date")), discount=discount,
            nik=form.get("nik") or None, address=form.get("address"), notes=form.get("notes"),
            owner_id=owner_id, register_date=parse_day(form.get("register_date")))


def _err(state, key: str) -> rx.Var:
    return state.form_errors.get(key, "")


def customer_form(state) -> rx.Component:
    """The add / edit sheet for a page state that inherits :class:`CustomerFormMixin`."""
    v, locked = state.form_values, state.form_mitra_only
    full = ~locked
    return sheet(
        state.form_open, state.set_form_open, state.form_title,
        rx.form(
            rx.cond(locked, rx.el.p("Sebagai mitra, Anda hanya dapat mengubah nomor telepon "
                                    "dan diskon.", class_name="fn-muted")),
            field("Nama pelanggan",
                  text_input("name", v["name"], error=_err(state, "name"), autocomplete="off",
                             disabled=locked),
                  _err(state, "name")),
            field("Nomor WhatsApp",
                  text_input("phone", v["phone"], type_="tel", error=_err(state, "phone"),
                             placeholder="0812-3456-7890", input_mode="tel"),
                  _err(state, "phone"), hint="Boleh 08… atau +62…; disimpan sebagai 62…"),
            rx.cond(
                SessionState.is_superadmin & (state.form_editing == ""),
                field("Pemilik (area)",
                      select_input("owner_id", state.owner_options, v["owner_id"],
                                   error=_err(state, "owner_id")),
                      _err(state, "owner_id")),
            ),
            rx.el.div(
                field("Paket",
                      select_input("package_id", state.package_options, v["package_id"],
                                   error=_err(state, "package_id"), disabled=locked,
                                   on_change=state.preview_package),
                      _err(state, "package_id")),
                field("Tanggal tagihan",
                      select_input("billing_date", BILLING_DAYS, v["billing_date"],
                                   error=_err(state, "billing_date"), disabled=locked),
                      _err(state, "billing_date"), hint="Tagihan bulan depan dibuat H-1."),
                class_name="fn-grid-2",
            ),
            rx.el.div(
                field("Diskon (Rp)",
                      rx.el.input(name="discount", id="discount", default_value=v["discount"],
                                  input_mode="numeric", auto_complete="off",
                                  on_change=state.preview_discount_text.debounce(250),
                                  class_name=rx.cond(_err(state, "discount") != "",
                                                     "fn-input fn-input-error", "fn-input")),
                      _err(state, "discount")),
                rx.el.div(
                    rx.el.span("Total tagihan / bulan", class_name="fn-field-label"),
                    rx.el.div(state.preview_total, class_name="fn-total-preview",
                              data_testid="form-total"),
                    class_name="fn-field",
                ),
                class_name="fn-grid-2",
            ),
            rx.cond(
                full,
                rx.fragment(
                    field("NIK (opsional)",
                          text_input("nik", v["nik"], error=_err(state, "nik"),
                                     input_mode="numeric", placeholder="16 digit"),
                          _err(state, "nik"), hint="Disimpan terenkripsi."),
                    field("Tanggal daftar",
                          text_input("register_date", v["register_date"], type_="date",
                                     error=_err(state, "register_date")),
                          _err(state, "register_date")),
                    field("Alamat",
                          rx.el.textarea(name="address", default_value=v["address"],
                                         rows=2, class_name="fn-input fn-textarea"),
                          _err(state, "address")),
                    field("Catatan",
                          rx.el.textarea(name="notes", default_value=v["notes"], rows=2,
                                         class_name="fn-input fn-textarea"),
                          _err(state, "notes")),
                ),
            ),
            alert(_err(state, "form")),
            rx.el.div(
                rx.dialog.close(rx.button("Batal", type="button", variant="soft",
                                          color_scheme="gray", size="3")),
                rx.button("Simpan", type="submit", size="3", loading=state.form_saving,
                          data_testid="save-customer"),
                class_name="fn-dialog-actions",
            ),
            on_submit=state.save_form,
            reset_on_submit=False,
            key=state.form_key.to_string(),
            class_name="fn-form",
            data_testid="customer-form",
        ),
        test_id="customer-sheet",
    )


def move_sheet(state, title: str, intro: rx.Var | str, on_submit) -> rx.Component:
    """Pick the owner subscribers move to (a state inheriting :class:`CustomerFormMixin`)."""
    return sheet(
        state.move_open, state.set_move_open, title,
        rx.form(
            rx.el.p(intro, " Tagihan yang sudah terbit tetap milik pemilik lama.",
                    class_name="fn-muted"),
            select_input("new_owner_id", state.owner_options, "",
                         placeholder="Pilih pemilik tujuan"),
            rx.cond(state.move_error != "", rx.el.div(state.move_error,
                                                      class_name="fn-field-error",
                                                      role="alert")),
            rx.el.div(rx.button("Pindahkan", type="submit", size="3"),
                      class_name="fn-dialog-actions"),
            on_submit=on_submit,
            reset_on_submit=False,
            class_name="fn-form",
        ),
        test_id="move-sheet",
    )
