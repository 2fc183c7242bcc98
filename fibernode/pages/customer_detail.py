"""``/customers/{id}``: one subscriber, its history and the actions the role allows."""

from __future__ import annotations

import uuid

import reflex as rx

from fibernode.components.layout import app_shell
from fibernode.components.proof_panel import ProofState, proof_sheet
from fibernode.components.ui import (
    confirm_dialog,
    empty_state,
    sheet,
    show_secret,
    status_badge,
)
from fibernode.components.wa_replies import customer_replies_section
from fibernode.formatting import date_time, long_date, month_year, rupiah
from fibernode.pages.customer_form import CustomerFormMixin, customer_form, move_sheet
from fibernode.services import customers, history, wa_direct, whatsapp
from fibernode.services.context import Actor
from fibernode.services.errors import NotFound, ServiceError
from fibernode.state.branding import BrandingState
from fibernode.state.session import SessionState, current_actor, to_login
from fibernode.state.ui import toast, user_text

INVOICE_STATUS = {"paid": "Lunas", "partial": "Sebagian", "unpaid": "Belum bayar"}
METHOD_LABELS = {"cash": "Tunai", "transfer": "Transfer", "qris": "QRIS"}
MESSAGE_TYPES = {"reminder": "Pengingat", "receipt": "Nota", "isolation": "Isolir",
                 "custom": "Manual", "test": "Tes"}
WA_TEMPLATES = [("reminder", "Pengingat tagihan"), ("receipt", "Nota pembayaran"),
                ("isolation", "Pemberitahuan isolir"), ("custom", "Pesan bebas")]


class CustomerDetailState(CustomerFormMixin, rx.State):
    """The shown subscriber (formatted) and the open action dialogs."""

    customer: dict[str, str] = {}
    invoices: list[dict[str, str]] = []
    payments: list[dict[str, str]] = []
    messages: list[dict[str, str]] = []
    not_found: bool = False
    # The viewer may see the plain NIK (superadmin): shown by :meth:`load`, never stored.
    nik_plain: bool = False
    ready: bool = False
    isolate_open: bool = False
    isolate_error: str = ""
    delete_open: bool = False
    # "Kirim Pesan WA": the chosen template, filled in and editable before it goes.
    wa_open: bool = False
    wa_template: str = "reminder"
    wa_text: str = ""
    wa_error: str = ""
    wa_key: int = 0
    # The message log id whose deliberate resend waits for confirmation.
    resend_target: str = ""
    _customer_id: str = ""

    def _id_from_url(self) -> str:
        return self.router.url.path.rstrip("/").rsplit("/", 1)[-1]

    def _show(self, actor: Actor) -> None:
        try:
            c = customers.get_customer(actor, uuid.UUID(self._customer_id))
            h = history.customer_history(actor, c.id)
        except (NotFound, ValueError):
            self.not_found, self.customer, self.invoices, self.messages = True, {}, [], []
            return
        self.not_found = False
        self.nik_plain = bool(c.nik)
        self.customer = {
            "id": str(c.id), "name": c.name, "phone": c.phone, "area": c.area,
            "owner_id": str(c.owner_id),
            "package": f"{c.package_name} ({c.package_speed})",
            "price": rupiah(c.package_price), "discount": rupiah(c.discount),
            "total": rupiah(c.total_bill), "billing_date": f"Tanggal {c.billing_date}",
            "status": c.status.value,
            # Only the masked NIK is kept; the plain one goes straight to the page.
            "nik": c.nik_masked or "-",
            "address": c.address or "-", "notes": c.notes or "-",
            "register_date": long_date(c.register_date),
            "updated": date_time(c.updated_at),
        }
        self.invoices = [
            {"id": str(i.id), "period": month_year(i.period), "due": long_date(i.due_date),
             "total": rupiah(i.total_amount), "paid": rupiah(i.paid_amount),
             "status": i.status.value, "status_label": INVOICE_STATUS.get(i.status.value, ""),
             "paid_at": date_time(i.paid_at) if i.paid_at else "-", "paid_by": i.paid_by or "-"}
            for i in h.invoices
        ]
        self.payments = [
            {"period": month_year(p.period), "amount": rupiah(p.amount),
             "method": METHOD_LABELS.get(p.method.value, p.method.value),
             "by": p.recorded_by, "at": date_time(p.recorded_at), "note": p.note,
             "reversed": ("Dibatalkan " + date_time(p.reversed_at) + " — " + p.reversal_reason)
             if p.reversed_at else ""}
            for p in h.payments
        ]
        self.messages = [
            {"type": MESSAGE_TYPES.get(m.message_type, m.message_type),
             "status": m.status, "status_label": whatsapp.status_label(m.status),
             "time": date_time(m.sent_at), "preview": m.preview,
             "error": m.error_message}
            for m in h.messages
        ]
        # Failed, uncertain or stuck messages may be resent on purpose (a new message).
        for line, m in zip(self.messages, h.messages, strict=True):
            line["resend"] = str(m.id) if wa_direct.can_resend(m.status, m.sent_at) else ""

    async def _after_save(self, actor: Actor, customer_id: uuid.UUID) -> None:
        self._show(actor)

    @rx.event
    async def load(self):
        """Page load: the subscriber named in the URL."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self._customer_id = self._id_from_url()
        self._load_options(actor)
        self._show(actor)
        self.ready = True
        if self.nik_plain:
            c = customers.get_customer(actor, uuid.UUID(self._customer_id))
            return show_secret("detail-nik", c.nik or "")
        return None

    @rx.event
    async def edit(self):
        """Open the edit sheet for this subscriber."""
        return CustomerDetailState.open_edit(user_text(self._customer_id))  # from the URL

    # --- WhatsApp ---------------------------------------------------------------------------

    @rx.event
    async def ask_resend(self, log_id: str):
        """Ask before resending a failed, uncertain or stuck message."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.resend_target = log_id
        return None

    @rx.event
    async def set_resend_open(self, value: bool):
        """The resend warning closed (Batal, Esc): forget what it was about."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        if not value:
            self.resend_target = ""
        return None

    @rx.event
    async def resend(self, log_id: str):
        """Resend the message as a new one, once confirmed; the old attempt stays listed."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.resend_target = ""
        try:
            whatsapp.resend_message(actor, uuid.UUID(log_id))
        except (ServiceError, ValueError) as exc:
            return toast("error", getattr(exc, "message", "Pesan tidak ditemukan."))
        self._show(actor)
        return rx.toast.success("Pesan dikirim ulang sebagai pesan baru.")

    def _compose(self, actor: Actor) -> None:
        try:
            self.wa_text = ("" if self.wa_template == "custom" else
                            whatsapp.compose(actor, uuid.UUID(self._customer_id),
                                             self.wa_template))
            self.wa_error = ""
        except ServiceError as exc:
            self.wa_text, self.wa_error = "", exc.message
        self.wa_key += 1

    @rx.event
    async def open_wa(self):
        """Open the message sheet with the reminder filled in."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.wa_template = "reminder"
        self._compose(actor)
        self.wa_open = True
        return None

    @rx.event
    def set_wa_open(self, value: bool):
        """Close the message sheet."""
        self.wa_open = value

    @rx.event
    async def choose_wa_template(self, template: str):
        """Fill the text from another template."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.wa_template = template
        self._compose(actor)
        return None

    @rx.event
    async def send_wa(self, form: dict):
        """Send the (edited) message now from the owner's number."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        text = (form.get("text") or "").strip()
        try:
            whatsapp.send_manual(actor, uuid.UUID(self._customer_id), self.wa_template,
                                 text=text)
        except ServiceError as exc:
            self.wa_error = exc.details.get("text") or exc.message
            return None
        self.wa_open = False
        self._show(actor)
        return rx.toast.success("Pesan WhatsApp dikirim.")

    # --- superadmin actions ---------------------------------------------------------------

    @rx.event
    def set_isolate_open(self, value: bool):
        """Open / close the isolir dialog."""
        self.isolate_open, self.isolate_error = value, ""

    @rx.event
    async def toggle_isolir(self, form: dict):
        """Isolate with a reason, or lift the isolation."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        isolate = self.customer.get("status") != "isolated"
        try:
            customers.set_isolated(actor, uuid.UUID(self._customer_id), isolate,
                                   form.get("reason", ""))
        except ServiceError as exc:
            self.isolate_error = exc.message
            return None
        self.isolate_open = False
        self._show(actor)
        return rx.toast.success("Pelanggan diisolir." if isolate else "Isolir dibuka.")

    @rx.event
    async def toggle_inactive(self):
        """Mark as stopped (no more invoices) or active again."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        stop = self.customer.get("status") != "inactive"
        try:
            customers.set_inactive(actor, uuid.UUID(self._customer_id), stop)
        except ServiceError as exc:
            return toast("error", exc.message)
        self._show(actor)
        return rx.toast.success("Pelanggan dinonaktifkan." if stop else "Pelanggan diaktifkan.")

    @rx.event
    def set_delete_open(self, value: bool):
        """Open / close the delete confirmation."""
        self.delete_open = value

    @rx.event
    async def delete(self):
        """Delete the subscriber and go back to the list."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            customers.delete_customer(actor, uuid.UUID(self._customer_id))
        except ServiceError as exc:
            self.delete_open = False
            return toast("error", exc.message)
        self.delete_open = False
        return [rx.toast.success("Pelanggan dihapus."), rx.redirect("/customers")]

    @rx.event
    async def move(self, form: dict):
        """Give this subscriber to another owner."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        if self._move(actor, [self._customer_id], form) is None:
            return None
        self._show(actor)
        return rx.toast.success("Pelanggan dipindahkan.")


S = CustomerDetailState


def _item(label: str, value: rx.Var, test_id: str = "") -> rx.Component:
    return rx.el.div(rx.el.dt(label), rx.el.dd(value, data_testid=test_id or None),
                     class_name="fn-dl-item")


def _facts() -> rx.Component:
    c = S.customer
    return rx.el.div(
        rx.el.h3("Data Pelanggan", class_name="fn-section-title"),
        rx.el.dl(
            _item("Nomor WhatsApp", c["phone"], "detail-phone"),
            _item("Area / pemilik", c["area"]),
            _item("Paket", c["package"]),
            _item("Harga paket", c["price"]),
            _item("Diskon", c["discount"], "detail-discount"),
            _item("Total tagihan / bulan", c["total"], "detail-total"),
            _item("Tanggal tagihan", c["billing_date"]),
            rx.cond(
                S.nik_plain,
                # No children from state: the plain NIK is written in by show_secret.
                rx.el.div(rx.el.dt("NIK"), rx.el.dd(id="detail-nik", data_testid="detail-nik"),
                          class_name="fn-dl-item"),
                _item("NIK", c["nik"], "detail-nik"),
            ),
            _item("Alamat", c["address"]),
            _item("Tanggal daftar", c["register_date"]),
            _item("Catatan", c["notes"]),
            _item("Terakhir diubah", c["updated"]),
            class_name="fn-dl",
        ),
        class_name="fn-card",
    )


def _invoices() -> rx.Component:
    return rx.el.div(
        rx.el.h3("Riwayat Tagihan", class_name="fn-section-title"),
        rx.cond(
            S.invoices.length() == 0,
            empty_state("receipt", "Belum ada tagihan",
                        "Tagihan pra-bayar dibuat otomatis sehari sebelum tanggal tagihan."),
            rx.el.div(rx.el.table(
                rx.el.thead(rx.el.tr(*[rx.el.th(h) for h in (
                    "Periode", "Jatuh tempo", "Total", "Dibayar", "Status", "Tanggal bayar",
                    "Dicatat oleh", "")])),
                rx.el.tbody(rx.foreach(S.invoices, lambda i: rx.el.tr(
                    rx.el.td(i["period"]), rx.el.td(i["due"], class_name="fn-nowrap"),
                    rx.el.td(i["total"], class_name="fn-nowrap"),
                    rx.el.td(i["paid"], class_name="fn-nowrap"),
                    rx.el.td(rx.el.span(i["status_label"], class_name=rx.match(
                        i["status"], ("paid", "fn-pill fn-pill-green"),
                        ("partial", "fn-pill fn-pill-amber"), "fn-pill fn-pill-red"))),
                    rx.el.td(i["paid_at"]), rx.el.td(i["paid_by"]),
                    rx.el.td(rx.cond(i["status"] != "unpaid", rx.button(
                        rx.icon("camera", size=14), "Bukti", size="1", variant="soft",
                        on_click=ProofState.open_for(
                            i["id"], S.customer["name"] + " · " + i["period"]),
                        data_testid="history-proofs"))),
                ))),
                class_name="fn-table",
            ), class_name="fn-table-wrap"),
        ),
        class_name="fn-card",
    )


def _payments() -> rx.Component:
    return rx.el.div(
        rx.el.h3("Riwayat Pembayaran", class_name="fn-section-title"),
        rx.cond(
            S.payments.length() == 0,
            rx.el.p("Belum ada pembayaran tercatat.", class_name="fn-muted"),
            rx.el.div(rx.foreach(S.payments, lambda p: rx.el.div(
                rx.el.div(rx.el.strong(p["amount"]), rx.el.span(p["period"], " · ", p["method"],
                                                                class_name="fn-muted"),
                          class_name="fn-card-row"),
                rx.el.div(p["at"], " oleh ", p["by"],
                          rx.cond(p["note"] != "", rx.el.span(" · ", p["note"])),
                          class_name="fn-muted"),
                rx.cond(p["reversed"] != "", rx.el.div(p["reversed"],
                                                       class_name="fn-field-error")),
                class_name="fn-message-row",
            )), class_name="fn-stack-tight"),
        ),
        class_name="fn-card",
    )


def _messages() -> rx.Component:
    return rx.el.div(
        rx.el.h3("Riwayat WhatsApp", class_name="fn-section-title"),
        rx.cond(
            S.messages.length() == 0,
            empty_state("message_circle", "Belum ada pesan WhatsApp",
                        "Pengingat, nota dan pemberitahuan isolir akan tercatat di sini."),
            rx.el.div(rx.foreach(S.messages, lambda m: rx.el.div(
                rx.el.div(rx.el.strong(m["type"]), rx.el.span(m["time"], class_name="fn-muted"),
                          rx.el.span(m["status_label"], class_name="fn-pill fn-pill-grey"),
                          class_name="fn-card-row"),
                rx.el.div(m["preview"], class_name="fn-muted"),
                rx.cond(m["error"] != "", rx.el.div(m["error"], class_name="fn-field-error")),
                rx.cond(m["resend"] != "", rx.el.div(
                    rx.button("Kirim ulang", size="1", variant="soft",
                              on_click=S.ask_resend(m["resend"]),
                              data_testid="customer-wa-resend"),
                    class_name="fn-toolbar-actions")),
                class_name="fn-message-row",
            )), class_name="fn-stack-tight"),
        ),
        class_name="fn-card",
    )


def _actions() -> rx.Component:
    status = S.customer["status"]
    return rx.el.div(
        rx.button(rx.icon("pencil", size=16), "Ubah", on_click=S.edit, data_testid="edit"),
        rx.button(rx.icon("message_circle", size=16), "Kirim Pesan WA", variant="soft",
                  color_scheme="green", on_click=S.open_wa, data_testid="send-wa"),
        rx.cond(SessionState.is_superadmin, rx.fragment(
            rx.cond(status != "inactive", rx.button(
                rx.icon("ban", size=16),
                rx.cond(status == "isolated", "Buka Isolir", "Isolir"),
                color_scheme=rx.cond(status == "isolated", "green", "red"), variant="soft",
                on_click=S.set_isolate_open(True), data_testid="isolir")),
            rx.button(rx.icon("power", size=16),
                      rx.cond(status == "inactive", "Aktifkan", "Nonaktifkan"),
                      variant="soft", color_scheme="gray", on_click=S.toggle_inactive,
                      data_testid="toggle-inactive"),
            rx.button(rx.icon("arrow_right_left", size=16), "Pindahkan", variant="soft",
                      on_click=S.set_move_open(True), data_testid="move"),
            rx.button(rx.icon("trash_2", size=16), "Hapus", variant="soft", color_scheme="red",
                      on_click=S.set_delete_open(True), data_testid="delete"),
        )),
        class_name="fn-toolbar-actions",
    )


def _isolate_sheet() -> rx.Component:
    isolated = S.customer["status"] == "isolated"
    return sheet(
        S.isolate_open, S.set_isolate_open,
        rx.cond(isolated, "Buka Isolir", "Isolir Pelanggan"),
        rx.form(
            rx.el.p(rx.cond(isolated,
                            "Layanan pelanggan akan dibuka kembali dan tagihan berjalan normal.",
                            "Pelanggan yang diisolir tidak dibuatkan tagihan dan tidak "
                            "menerima pengingat."), class_name="fn-muted"),
            rx.el.textarea(name="reason", rows=2, class_name="fn-input fn-textarea",
                           placeholder=rx.cond(isolated, "Catatan (opsional)",
                                               "Alasan isolir, mis. menunggak 2 bulan"),
                           data_testid="isolir-reason"),
            rx.cond(S.isolate_error != "", rx.el.div(S.isolate_error,
                                                     class_name="fn-field-error",
                                                     role="alert")),
            rx.el.div(rx.button("Simpan", type="submit", size="3",
                                data_testid="isolir-submit"),
                      class_name="fn-dialog-actions"),
            on_submit=S.toggle_isolir,
            reset_on_submit=False,
            class_name="fn-form",
        ),
        test_id="isolir-sheet",
    )


def _wa_sheet() -> rx.Component:
    return sheet(
        S.wa_open, S.set_wa_open, "Kirim Pesan WhatsApp",
        rx.form(
            rx.el.div(*[rx.el.button(label, type="button", on_click=S.choose_wa_template(key),
                                     class_name=rx.cond(S.wa_template == key, "fn-chip active",
                                                        "fn-chip"))
                        for key, label in WA_TEMPLATES], class_name="fn-chips fn-chips-scroll"),
            rx.el.textarea(name="text", default_value=S.wa_text, rows=12,
                           key=S.wa_key.to_string(), class_name="fn-input fn-textarea",
                           placeholder="Tulis pesan…", data_testid="wa-text"),
            rx.cond(S.wa_error != "", rx.el.div(S.wa_error, class_name="fn-alert fn-alert-error",
                                                role="alert", data_testid="wa-error")),
            rx.el.div(rx.button(rx.icon("send", size=16), "Kirim via WhatsApp", type="submit",
                                size="3", color_scheme="green", data_testid="wa-send"),
                      class_name="fn-dialog-actions"),
            on_submit=S.send_wa, reset_on_submit=False, class_name="fn-form",
        ),
        test_id="wa-sheet",
    )


def _move_sheet() -> rx.Component:
    return move_sheet(S, "Pindahkan ke Mitra Lain", "", S.move)


@rx.page(route="/customers/[customer_id]", title="Detail Pelanggan — FiberNode Internet",
         on_load=[BrandingState.load, CustomerDetailState.load])
def customer_detail_page() -> rx.Component:
    """One subscriber."""
    return app_shell(
        "Detail Pelanggan",
        rx.cond(
            S.ready,
            rx.cond(
                S.not_found,
                empty_state("user_x", "Pelanggan tidak ditemukan",
                            "Mungkin sudah dihapus, atau bukan pelanggan Anda."),
                rx.fragment(
                    rx.el.div(
                        rx.el.div(
                            rx.link(rx.icon("arrow_left", size=16), "Pelanggan",
                                    href="/customers", class_name="fn-back-link"),
                            rx.el.div(rx.el.h1(S.customer["name"], class_name="fn-page-title",
                                               data_testid="detail-name"),
                                      status_badge(S.customer["status"]),
                                      class_name="fn-card-row"),
                            class_name="fn-page-head",
                        ),
                        _actions(),
                        class_name="fn-page-bar",
                    ),
                    rx.el.div(_facts(), rx.el.div(_invoices(), _payments(), _messages(),
                                                  customer_replies_section(S.customer["id"]),
                                                  class_name="fn-stack"),
                              class_name="fn-two-col"),
                ),
            ),
        ),
        customer_form(S),
        proof_sheet(),
        _isolate_sheet(),
        _move_sheet(),
        _wa_sheet(),
        confirm_dialog(S.delete_open, S.set_delete_open, "Hapus pelanggan?",
                       "Pelanggan beserta seluruh tagihannya akan dihapus permanen. "
                       "Untuk pelanggan yang berhenti, pilih Nonaktifkan saja.",
                       "Hapus", S.delete, test_id="delete-confirm"),
        confirm_dialog(S.resend_target != "", S.set_resend_open, "Kirim ulang pesan ini?",
                       whatsapp.RESEND_WARNING, "Ya, kirim ulang",
                       S.resend(S.resend_target),
                       tone="amber", test_id="resend-confirm"),
    )
