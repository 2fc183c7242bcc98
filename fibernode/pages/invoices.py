"""``/invoices``: prepaid invoices, paid and unpaid, with payments and billing runs.

Desktop: a table with a pay dialog. Phones: cards that reveal a quick "Bayar"
button when swiped left (CSS scroll snapping, so it feels native), and every
form in a bottom sheet.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import reflex as rx

from fibernode import clock
from fibernode.components.layout import app_shell
from fibernode.components.proof_panel import ProofState, proof_sheet
from fibernode.components.pwa import pull_to_refresh
from fibernode.components.ui import (
    alert,
    empty_state,
    field,
    page_title,
    pager,
    select_input,
    sheet,
    skeleton_rows,
    text_input,
)
from fibernode.formatting import date_time, long_date, month_year, number, rupiah
from fibernode.pages.customer_form import parse_int
from fibernode.services import billing, filejobs, invoices, receipts, users, whatsapp
from fibernode.services.context import Actor
from fibernode.services.errors import Conflict, ServiceError, ValidationFailed
from fibernode.state.branding import BrandingState
from fibernode.state.handlers import off_loop, service_event
from fibernode.state.paging import PagedListMixin
from fibernode.state.session import SessionState, current_actor, to_login
from fibernode.state.ui import toast, user_text

STATUS_CHIPS = [("", "Semua"), ("unpaid", "Belum bayar"), ("partial", "Sebagian"),
                ("paid", "Lunas"), ("overdue", "Terlambat")]
METHODS = [{"value": "cash", "label": "Tunai"}, {"value": "transfer", "label": "Transfer bank"},
           {"value": "qris", "label": "QRIS"}]
METHOD_LABELS = {m["value"]: m["label"] for m in METHODS}
# A short buzz where the device supports it, and swiped cards slide back.
VIBRATE = ("navigator.vibrate && navigator.vibrate(40); "
           "document.querySelectorAll('.fn-swipe').forEach(e => e.scrollTo({left: 0}));")


def period_options(today: date, back: int = 12, ahead: int = 2) -> list[dict[str, str]]:
    """Pick-list options of the periods around ``today`` (newest first)."""
    return [{"value": p, "label": month_year(p)}
            for p in billing.periods_around(today, back, ahead)]


def invoice_row(v: invoices.InvoiceView) -> dict[str, str]:
    """An invoice formatted for the table and the cards."""
    status = "overdue" if v.overdue else v.status.value
    return {
        "id": str(v.id), "customer": v.customer_name, "customer_id": str(v.customer_id),
        "phone": v.customer_phone, "area": v.area,
        "package": f"{v.package_name} ({v.package_speed})",
        "period": month_year(v.period), "due": long_date(v.due_date),
        "total": rupiah(v.total_amount), "paid": rupiah(v.paid_amount),
        "remaining": rupiah(v.remaining), "remaining_raw": str(v.remaining),
        "status": status, "version": str(v.version), "token": v.receipt_token or "",
        "paid_at": date_time(v.paid_at) if v.paid_at else "",
        "paid_by": v.paid_by_name or "",
        "method": METHOD_LABELS.get(str(v.payment_method or ""), ""),
        "can_pay": "1" if v.remaining > 0 else "",
        "can_unpay": "1" if v.paid_amount > 0 else "",
    }


# A pay or reverse sent without an invoice opened first (only a forged event does).
NO_INVOICE_OPEN = "Pilih tagihan terlebih dahulu."

class InvoicesState(PagedListMixin, rx.State):
    """One page of invoices, the filters, and the open pay / unpay / run forms."""

    rows: list[dict[str, str]] = []
    period: str = ""
    status: str = ""
    due_date: str = ""
    owner_filter: str = ""
    error: str = ""
    periods: list[dict[str, str]] = []
    owner_options: list[dict[str, str]] = []
    selected: list[str] = []
    # Pay / unpay.
    pay_invoice: dict[str, str] = {}
    pay_open: bool = False
    pay_errors: dict[str, str] = {}
    pay_key: int = 0
    conflict: str = ""
    unpay_open: bool = False
    unpay_error: str = ""
    # Billing run (superadmin).
    run_open: bool = False
    run_result: dict[str, str] = {}
    run_error: str = ""
    # Month receipts bundle (one merged PDF, built by a worker).
    bundle_id: str = ""
    bundle_status: str = ""
    bundle_percent: int = 0
    bundle_error: str = ""
    # WhatsApp reminders to the ticked invoices (queued, paced per owner's number).
    wa_open: bool = False
    wa_preview: dict[str, str] = {}
    wa_error: str = ""

    def _fetch(self, actor: Actor) -> None:
        try:
            result = invoices.list_invoices(
                actor, page=self.page, period=self.period or None, status=self.status or None,
                due_date=date.fromisoformat(self.due_date) if self.due_date else None,
                owner_id=(uuid.UUID(self.owner_filter)
                          if self.owner_filter and actor.is_superadmin else None),
                search=self.search)
        except (ServiceError, ValueError) as exc:
            self.error = getattr(exc, "message", "Filter tidak valid.")
            self.rows, self.total, self.pages = [], 0, 1
            return
        if self.page > result.pages:
            self.page = result.pages
            return self._fetch(actor)
        self.error = ""
        self.rows = [invoice_row(v) for v in result.items]
        self.total, self.pages, self.page = result.total, result.pages, result.page
        self.selected = [s for s in self.selected if any(r["id"] == s for r in self.rows)]
        return None

    @rx.event
    async def load(self):
        """Page load: filter options, ``?status=``/``?period=`` links, the first page."""
        actor = await current_actor(self)
        if actor is None:
            yield await to_login(self)
            return
        self.loading = True
        yield
        self.periods = period_options(clock.today())
        if actor.is_superadmin:
            self.owner_options = [{"value": str(o.id), "label": o.business_name}
                                  for o in users.list_owners(actor)]
        query = self.router.url.query_parameters
        for key in ("status", "period", "q"):
            if key in query:
                setattr(self, "search" if key == "q" else key, query[key])
                self.page = 1
        self._fetch(actor)
        self.loading = False

    @rx.event
    async def set_status(self, value: str):
        """Status chip (overdue is derived: past due and not fully paid)."""
        return await self._set_filter("status", value)

    @rx.event
    async def set_period(self, value: str):
        """Period filter."""
        return await self._set_filter("period", value)

    @rx.event
    async def set_due_date(self, value: str):
        """Due-date filter."""
        return await self._set_filter("due_date", value)

    @rx.event
    async def set_owner_filter(self, value: str):
        """Owner filter (superadmin)."""
        return await self._set_filter("owner_filter", value)

    @rx.event
    async def refresh(self):
        """Reload the page (after a conflict, or pull-to-refresh)."""
        self.conflict = ""
        return await self._refetch()

    @rx.event
    def toggle_selected(self, invoice_id: str):
        """Tick / untick an invoice for a bulk action."""
        if invoice_id in self.selected:
            self.selected = [s for s in self.selected if s != invoice_id]
        else:
            self.selected = [*self.selected, invoice_id]

    @rx.event
    def clear_selection(self):
        """Untick everything."""
        self.selected = []

    # --- pay / unpay -----------------------------------------------------------------------

    def _find(self, invoice_id: str) -> dict[str, str] | None:
        return next((r for r in self.rows if r["id"] == invoice_id), None)

    @rx.event
    def open_pay(self, invoice_id: str):
        """The pay form for one invoice, as it was when the list was loaded."""
        row = self._find(invoice_id)
        if row is None:
            return
        self.pay_invoice, self.pay_errors, self.conflict = row, {}, ""
        self.pay_key += 1
        self.pay_open = True

    @rx.event
    def set_pay_open(self, value: bool):
        """Close the pay sheet."""
        self.pay_open = value

    @rx.event
    async def pay(self, form: dict):
        """Record a payment; a stale version changes nothing and says so."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        inv = self.pay_invoice
        if not inv.get("id"):
            return toast("error", NO_INVOICE_OPEN)
        amount = parse_int(form.get("amount"))
        try:
            invoices.pay_invoice(actor, uuid.UUID(inv["id"]), version=int(inv["version"]),
                                 method=form.get("method") or "cash",
                                 amount=amount if amount != 0 else None,
                                 note=form.get("note", ""))
        except Conflict as exc:
            self.conflict = exc.message
            return None
        except ValidationFailed as exc:
            self.pay_errors = exc.details
            return None
        except ServiceError as exc:
            self.pay_errors = {"form": exc.message}
            return None
        self.pay_open = False
        self._fetch(actor)
        # The customer's name is user text: only through user_text / toast (no Var markers).
        done = [rx.call_script(VIBRATE),
                toast("success", f"Pembayaran {inv['customer']} tercatat.")]
        if form.get("method") == "transfer":  # straight on to the photo of the slip
            done.append(ProofState.open_for(
                inv["id"], user_text(f"{inv['customer']} · {inv['period']}")))
        return done

    @rx.event
    def open_unpay(self, invoice_id: str):
        """Ask for the reason before reversing the payments."""
        row = self._find(invoice_id)
        if row is None:
            return
        self.pay_invoice, self.unpay_error, self.conflict = row, "", ""
        self.unpay_open = True

    @rx.event
    def set_unpay_open(self, value: bool):
        """Close the unpay sheet."""
        self.unpay_open = value

    @rx.event
    async def unpay(self, form: dict):
        """Reverse the payments of an invoice (kept in the ledger as reversed)."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        inv = self.pay_invoice
        if not inv.get("id"):
            return toast("error", NO_INVOICE_OPEN)
        try:
            invoices.unpay_invoice(actor, uuid.UUID(inv["id"]), version=int(inv["version"]),
                                   reason=form.get("reason", ""))
        except Conflict as exc:
            self.conflict = exc.message
            return None
        except ServiceError as exc:
            self.unpay_error = exc.details.get("reason") or exc.message
            return None
        self.unpay_open = False
        self._fetch(actor)
        return rx.toast.success("Pembayaran dibatalkan.")

    # --- billing run (superadmin) -----------------------------------------------------------

    @rx.event
    def set_run_open(self, value: bool):
        """Open / close the billing-run sheet."""
        self.run_open, self.run_result, self.run_error = value, {}, ""

    def _run_args(self, form: dict) -> dict:
        owner = form.get("owner_id") or ""
        return {"period": form.get("period", ""),
                "owner_id": uuid.UUID(owner) if owner else None}

    @rx.event
    @service_event(message="run_error", detail="period")
    async def run_billing(self, actor: Actor, form: dict):
        """Create the chosen period's invoices now (idempotent: existing ones stay).

        Every subscriber of every owner may take seconds: in a thread, off the loop.
        """
        try:
            result = await off_loop(billing.run_billing, actor, **self._run_args(form))
        except ValueError:
            self.run_error = "Pilih pemilik yang valid."
            return None
        self.run_error = ""
        skipped = sum(result.skipped.values())
        self.run_result = {"created": number(result.created),
                           "existing": number(result.already_existed),
                           "skipped": number(skipped),
                           "reasons": ", ".join(f"{reason}: {number(n)}"
                                                for reason, n in result.skipped.items() if n)}
        self._fetch(actor)
        return None


    # --- WhatsApp ---------------------------------------------------------------------------

    @rx.event
    async def wa_resend(self, invoice_id: str, kind: str):
        """Send the receipt or the reminder of one invoice again, right away."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        send = whatsapp.resend_receipt if kind == "receipt" else whatsapp.resend_reminder
        try:
            send(actor, uuid.UUID(invoice_id))
        except ServiceError as exc:
            return toast("error", exc.message)
        return rx.toast.success("Nota dikirim ulang lewat WhatsApp." if kind == "receipt"
                                else "Pengingat dikirim lewat WhatsApp.")

    def _selected_customers(self) -> list[uuid.UUID]:
        ids = {r["customer_id"] for r in self.rows if r["id"] in self.selected}
        return [uuid.UUID(i) for i in sorted(ids)]

    @rx.event
    async def open_wa_bulk(self):
        """Preview reminders to the ticked invoices' subscribers before queueing them."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            preview = whatsapp.preview_bulk(actor, customer_ids=self._selected_customers(),
                                            template="reminder")
        except ServiceError as exc:
            self.wa_preview, self.wa_error = {}, exc.message
        else:
            self.wa_error = ""
            self.wa_preview = {"count": number(preview.count), "raw": str(preview.count),
                               "sample": preview.sample or "",
                               "skipped": ", ".join(f"{s.name} ({s.reason})"
                                                    for s in preview.skipped[:10])}
        self.wa_open = True
        return None

    @rx.event
    def set_wa_open(self, value: bool):
        """Close the WhatsApp sheet."""
        self.wa_open = value

    @rx.event
    async def send_wa_bulk(self):
        """Queue the previewed reminders."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            queued = whatsapp.send_bulk(actor, customer_ids=self._selected_customers(),
                                        template="reminder")
        except ServiceError as exc:
            self.wa_error = exc.message
            return None
        self.wa_open, self.selected = False, []
        return rx.toast.success(f"{number(queued)} pengingat masuk antrian WhatsApp.")

    # --- month receipts bundle --------------------------------------------------------------

    @rx.event
    async def start_bundle(self):
        """Ask a worker for every paid receipt of the chosen period in one PDF."""
        actor = await current_actor(self)
        if actor is None:
            yield await to_login(self)
            return
        owner = self.owner_filter if actor.is_superadmin else str(actor.user_id)
        if not self.period or not owner:
            self.bundle_error = ("Pilih periode" + (" dan mitra" if actor.is_superadmin else "")
                                 + " terlebih dahulu.")
            return
        try:
            job = receipts.start_receipt_bundle(actor, owner_id=uuid.UUID(owner),
                                                period=self.period)
        except ServiceError as exc:
            self.bundle_error = exc.message
            return
        self._show_bundle(job)
        yield InvoicesState.poll_bundle

    def _show_bundle(self, job) -> None:
        self.bundle_id, self.bundle_status = str(job.id), job.status.value
        self.bundle_percent, self.bundle_error = job.progress_percent, job.error or ""

    @rx.event(background=True)
    async def poll_bundle(self):
        """Follow the bundle job until its file is ready (or it failed)."""
        for _ in range(600):
            await asyncio.sleep(1)
            async with self:
                actor = await current_actor(self)
                if actor is None or not self.bundle_id:
                    return
                try:
                    job = filejobs.get_file_job(actor, uuid.UUID(self.bundle_id))
                except ServiceError as exc:
                    self.bundle_error, self.bundle_id = exc.message, ""
                    return
                self._show_bundle(job)
                if not job.is_running:
                    return


S = InvoicesState


def _bundle_panel() -> rx.Component:
    return rx.el.div(
        rx.button(rx.icon("file_down", size=16), "Unduh semua nota periode ini (PDF)",
                  variant="soft", on_click=S.start_bundle, data_testid="start-bundle"),
        rx.cond(S.bundle_id != "", rx.el.div(
            rx.match(
                S.bundle_status,
                ("done", rx.el.a(rx.icon("download", size=16), "Unduh PDF nota",
                                 href="/api/files/" + S.bundle_id, class_name="fn-chip",
                                 data_testid="bundle-ready",
                                 style={"display": "inline-flex", "gap": "6px",
                                        "align_items": "center"})),
                ("failed", rx.el.span("Gagal membuat PDF.", class_name="fn-field-error")),
                rx.el.div(rx.el.div(style={"width": S.bundle_percent.to_string() + "%"}),
                          class_name="fn-progress", style={"width": "160px"}),
            ),
            class_name="fn-card-row",
        )),
        rx.cond(S.bundle_error != "", rx.el.span(S.bundle_error, class_name="fn-field-error",
                                                 role="alert")),
        class_name="fn-toolbar-actions",
    )


def _status_pill(status: rx.Var) -> rx.Component:
    return rx.match(
        status,
        ("paid", rx.el.span("Lunas", class_name="fn-pill fn-pill-green")),
        ("partial", rx.el.span("Sebagian", class_name="fn-pill fn-pill-amber")),
        ("overdue", rx.el.span("Terlambat", class_name="fn-pill fn-pill-red")),
        rx.el.span("Belum bayar", class_name="fn-pill fn-pill-grey"),
    )


def _row_actions(r) -> rx.Component:
    return rx.el.div(
        rx.cond(r["can_pay"] != "", rx.button(
            rx.icon("banknote", size=14), "Bayar", size="1", color_scheme="green",
            on_click=S.open_pay(r["id"]), data_testid="pay-" + r["id"])),
        rx.cond(r["can_unpay"] != "", rx.button(
            "Batalkan", size="1", variant="soft", color_scheme="gray",
            on_click=S.open_unpay(r["id"]), data_testid="unpay-" + r["id"])),
        rx.cond(r["can_unpay"] != "", rx.button(
            rx.icon("camera", size=14), "Bukti", size="1", variant="soft",
            on_click=ProofState.open_for(r["id"], r["customer"] + " · " + r["period"]),
            data_testid="proofs-" + r["id"])),
        rx.cond(r["token"] != "", rx.link(rx.button(rx.icon("receipt", size=14), "Nota",
                                                    size="1", variant="soft"),
                                          href="/receipt/" + r["token"], is_external=True)),
        _wa_menu(r),
        class_name="fn-toolbar-actions",
    )


def _wa_menu(r) -> rx.Component:
    return rx.menu.root(
        rx.menu.trigger(rx.button(rx.icon("message_circle", size=14), size="1", variant="soft",
                                  aria_label="WhatsApp", data_testid="wa-menu-" + r["id"])),
        rx.menu.content(
            rx.cond(r["can_pay"] != "", rx.menu.item(
                rx.icon("bell_ring", size=14), "Kirim Pengingat",
                on_click=S.wa_resend(r["id"], "reminder"), data_testid="wa-reminder")),
            rx.cond(r["can_unpay"] != "", rx.menu.item(
                rx.icon("receipt", size=14), "Kirim Ulang Nota",
                on_click=S.wa_resend(r["id"], "receipt"), data_testid="wa-receipt")),
        ),
    )


def _table() -> rx.Component:
    return rx.el.div(rx.el.table(
        rx.el.thead(rx.el.tr(rx.el.th(""), *[rx.el.th(h) for h in (
            "Pelanggan", "Periode", "Jatuh tempo", "Total", "Dibayar", "Status", "")])),
        rx.el.tbody(rx.foreach(S.rows, lambda r: rx.el.tr(
            rx.el.td(rx.el.input(type="checkbox", checked=S.selected.contains(r["id"]),
                                 on_change=S.toggle_selected(r["id"]), class_name="fn-checkbox",
                                 aria_label="Pilih")),
            rx.el.td(rx.link(r["customer"], href="/customers/" + r["customer_id"],
                             class_name="fn-row-link"),
                     rx.el.div(r["package"], rx.cond(SessionState.is_superadmin,
                                                     rx.el.span(" · ", r["area"])),
                               class_name="fn-muted")),
            rx.el.td(r["period"], class_name="fn-nowrap"),
            rx.el.td(r["due"], class_name="fn-nowrap"),
            rx.el.td(r["total"], class_name="fn-nowrap"),
            rx.el.td(r["paid"], rx.cond(r["paid_by"] != "", rx.el.div(
                r["method"], " · ", r["paid_by"], class_name="fn-muted")),
                class_name="fn-nowrap"),
            rx.el.td(_status_pill(r["status"])),
            rx.el.td(_row_actions(r)),
            data_testid="invoice-row",
        ))),
        class_name="fn-table",
    ), class_name="fn-table-wrap fn-desktop-only")


def _cards() -> rx.Component:
    return rx.el.div(rx.foreach(S.rows, lambda r: rx.el.div(
        rx.el.div(
            rx.link(
                rx.el.div(rx.el.div(r["customer"], class_name="fn-card-title"),
                          _status_pill(r["status"]), class_name="fn-card-row"),
                rx.el.div(r["period"], " · jatuh tempo ", r["due"], class_name="fn-muted"),
                rx.el.div(rx.el.span(r["package"], class_name="fn-muted"),
                          rx.el.span(r["total"], class_name="fn-card-amount"),
                          class_name="fn-card-row"),
                href="/customers/" + r["customer_id"], underline="none",
                class_name="fn-card-link",
            ),
            rx.cond(r["can_unpay"] != "", rx.el.button(
                rx.icon("camera", size=14), "Bukti transfer", type="button",
                on_click=ProofState.open_for(r["id"], r["customer"] + " · " + r["period"]),
                class_name="fn-chip", data_testid="card-proofs")),
            class_name="fn-swipe-main",
        ),
        rx.cond(r["can_pay"] != "",
                rx.el.button(rx.icon("banknote", size=22), "Bayar", type="button",
                             on_click=S.open_pay(r["id"]), class_name="fn-swipe-action",
                             data_testid="swipe-pay"),
                rx.cond(r["can_unpay"] != "",
                        rx.el.button(rx.icon("undo_2", size=22), "Batal", type="button",
                                     on_click=S.open_unpay(r["id"]),
                                     class_name="fn-swipe-action fn-swipe-grey"))),
        class_name="fn-swipe",
        data_testid="invoice-card",
    )), class_name="fn-card-list fn-mobile-only")


def _filters() -> rx.Component:
    return rx.el.div(
        rx.el.div(
            *[rx.el.button(label, type="button", on_click=S.set_status(value),
                           class_name=rx.cond(S.status == value, "fn-chip active", "fn-chip"),
                           data_testid=f"inv-chip-{value or 'all'}")
              for value, label in STATUS_CHIPS],
            class_name="fn-chips fn-chips-scroll",
        ),
        rx.el.div(
            rx.el.select(rx.el.option("Semua periode", value=""),
                         rx.foreach(S.periods,
                                    lambda o: rx.el.option(o["label"], value=o["value"])),
                         value=S.period, on_change=S.set_period,
                         class_name="fn-input fn-select", aria_label="Periode"),
            rx.el.input(type="date", value=S.due_date, on_change=S.set_due_date,
                        class_name="fn-input fn-select", aria_label="Jatuh tempo"),
            rx.cond(SessionState.is_superadmin, rx.el.select(
                rx.el.option("Semua mitra", value=""),
                rx.foreach(S.owner_options,
                           lambda o: rx.el.option(o["label"], value=o["value"])),
                value=S.owner_filter, on_change=S.set_owner_filter,
                class_name="fn-input fn-select", aria_label="Mitra")),
            class_name="fn-filter-bar",
        ),
        rx.form(
            rx.el.div(rx.icon("search", size=18, class_name="fn-search-icon"),
                      rx.el.input(name="search", default_value=S.search, type="search",
                                  placeholder="Cari nama atau nomor…",
                                  class_name="fn-input fn-search-input"),
                      class_name="fn-search"),
            rx.button("Cari", type="submit", variant="soft"),
            on_submit=S.apply_search, reset_on_submit=False, class_name="fn-search-row",
        ),
        class_name="fn-stack-tight",
    )


def _conflict_box() -> rx.Component:
    return rx.cond(S.conflict != "", rx.el.div(
        rx.icon("triangle_alert", size=18), rx.el.span(S.conflict),
        rx.button("Muat ulang", size="1", variant="soft", on_click=[S.refresh,
                                                                   S.set_pay_open(False),
                                                                   S.set_unpay_open(False)]),
        class_name="fn-alert fn-alert-error", role="alert", data_testid="conflict",
    ))


def _pay_sheet() -> rx.Component:
    inv, e = S.pay_invoice, S.pay_errors
    return sheet(
        S.pay_open, S.set_pay_open, "Catat Pembayaran",
        rx.form(
            rx.el.div(rx.el.strong(inv["customer"]), rx.el.span(inv["period"],
                                                                class_name="fn-muted"),
                      class_name="fn-card-row"),
            rx.el.div(rx.el.span("Sisa tagihan", class_name="fn-muted"),
                      rx.el.span(inv["remaining"], class_name="fn-total-preview"),
                      class_name="fn-card-row"),
            field("Metode", select_input("method", METHODS, "cash",
                                         error=e.get("method", "")), e.get("method", ""),
                  hint="Transfer: setelah disimpan, langsung foto bukti transfernya."),
            field("Jumlah dibayar (Rp)",
                  text_input("amount", inv["remaining_raw"], error=e.get("amount", ""),
                             input_mode="numeric"),
                  e.get("amount", ""), hint="Kurangi untuk pembayaran sebagian."),
            field("Catatan (opsional)", text_input("note", "", error=e.get("note", "")),
                  e.get("note", "")),
            alert(e.get("form", "")),
            _conflict_box(),
            rx.el.div(rx.button(rx.icon("check", size=16), "Tandai Lunas / Bayar", type="submit",
                                size="3", color_scheme="green", data_testid="confirm-pay"),
                      class_name="fn-dialog-actions"),
            on_submit=S.pay, reset_on_submit=False, key=S.pay_key.to_string(),
            class_name="fn-form",
        ),
        test_id="pay-sheet",
    )


def _unpay_sheet() -> rx.Component:
    return sheet(
        S.unpay_open, S.set_unpay_open, "Batalkan Pembayaran",
        rx.form(
            rx.el.p("Semua pembayaran tagihan ", S.pay_invoice["customer"], " periode ",
                    S.pay_invoice["period"], " akan dibatalkan (tetap tercatat di riwayat).",
                    class_name="fn-muted"),
            rx.el.textarea(name="reason", rows=2, placeholder="Alasan pembatalan",
                           class_name="fn-input fn-textarea", data_testid="unpay-reason"),
            rx.cond(S.unpay_error != "", rx.el.div(S.unpay_error, class_name="fn-field-error",
                                                   role="alert")),
            _conflict_box(),
            rx.el.div(rx.button("Batalkan Pembayaran", type="submit", size="3",
                                color_scheme="red", data_testid="confirm-unpay"),
                      class_name="fn-dialog-actions"),
            on_submit=S.unpay, reset_on_submit=False, class_name="fn-form",
        ),
        test_id="unpay-sheet",
    )


def _run_sheet() -> rx.Component:
    res = S.run_result
    return sheet(
        S.run_open, S.set_run_open, "Buat Tagihan Manual",
        rx.form(
            rx.el.p("Tagihan dibuat untuk semua pelanggan aktif pada periode terpilih. Tagihan "
                    "yang sudah ada tidak dibuat dua kali.", class_name="fn-muted"),
            field("Periode (bulan layanan)", select_input("period", S.periods, "")),
            field("Pemilik", rx.el.select(
                rx.el.option("Semua pemilik", value=""),
                rx.foreach(S.owner_options, lambda o: rx.el.option(o["label"], value=o["value"])),
                name="owner_id", class_name="fn-input")),
            rx.cond(S.run_error != "", rx.el.div(S.run_error, class_name="fn-field-error",
                                                 role="alert")),
            rx.cond(res.length() > 0, rx.el.div(
                rx.el.div("Dibuat: ", rx.el.strong(res["created"], data_testid="run-created")),
                rx.el.div("Sudah ada: ", rx.el.strong(res["existing"])),
                rx.el.div("Dilewati: ", rx.el.strong(res["skipped"]), " ",
                          rx.el.span(res["reasons"], class_name="fn-muted")),
                class_name="fn-alert fn-alert-success fn-stack-tight",
            )),
            rx.el.div(rx.button(rx.icon("file_plus", size=16), "Buat Tagihan", type="submit",
                                size="3", data_testid="run-billing"),
                      class_name="fn-dialog-actions"),
            on_submit=S.run_billing, reset_on_submit=False, class_name="fn-form",
        ),
        test_id="run-sheet",
    )


def _wa_sheet() -> rx.Component:
    p = S.wa_preview
    return sheet(
        S.wa_open, S.set_wa_open, "Kirim Pengingat WhatsApp",
        rx.el.div(
            rx.cond(p.length() > 0, rx.fragment(
                rx.el.div(rx.el.strong(p["count"], data_testid="wa-bulk-count"),
                          " pelanggan akan menerima pengingat, dikirim bertahap dari nomor "
                          "WhatsApp pemiliknya."),
                rx.el.pre(p["sample"], class_name="fn-wa-bubble"),
                rx.cond(p["skipped"] != "", rx.el.p("Dilewati: ", p["skipped"],
                                                    class_name="fn-muted")))),
            rx.cond(S.wa_error != "", rx.el.div(S.wa_error, class_name="fn-alert fn-alert-error",
                                                role="alert")),
            rx.el.div(rx.button(rx.icon("send", size=16), "Masukkan ke antrian", size="3",
                                on_click=S.send_wa_bulk, disabled=p["raw"] == "0",
                                data_testid="wa-bulk-confirm"),
                      class_name="fn-dialog-actions"),
            class_name="fn-form",
        ),
        test_id="wa-sheet",
    )


@rx.page(route="/invoices", title="Tagihan — FiberNode Internet",
         on_load=[BrandingState.load, InvoicesState.load])
def invoices_page() -> rx.Component:
    """Invoice list."""
    return app_shell(
        "Tagihan",
        pull_to_refresh(S.refresh),
        rx.el.div(
            page_title("Tagihan", S.total_label + " tagihan pra-bayar"),
            rx.el.div(
                rx.cond(SessionState.is_superadmin, rx.button(
                    rx.icon("file_plus", size=16), "Buat Tagihan", variant="soft",
                    on_click=S.set_run_open(True), data_testid="open-run")),
                class_name="fn-toolbar-actions",
            ),
            class_name="fn-page-bar",
        ),
        rx.el.div(
            _filters(),
            rx.cond(S.error != "", rx.el.div(S.error, class_name="fn-alert fn-alert-error")),
            _bundle_panel(),
            rx.cond(S.selected.length() > 0, rx.el.div(
                rx.el.span(S.selected.length().to_string(), " tagihan dipilih"),
                rx.button(rx.icon("message_circle", size=14), "Kirim pengingat WA", size="1",
                          on_click=S.open_wa_bulk, data_testid="wa-bulk"),
                rx.button("Batal pilih", size="1", variant="soft", on_click=S.clear_selection),
                class_name="fn-bulk-bar")),
            rx.cond(S.loading, skeleton_rows(), rx.cond(
                S.rows.length() == 0,
                empty_state("receipt", "Tidak ada tagihan",
                            "Tagihan bulan depan dibuat otomatis sehari sebelum tanggal "
                            "tagihan tiap pelanggan."),
                rx.fragment(_table(), _cards()),
            )),
            pager(S.page, S.pages, S.total_label, "tagihan", S.go(-1), S.go(1)),
            class_name="fn-card fn-stack fn-list-panel",
        ),
        _pay_sheet(),
        proof_sheet(),
        _unpay_sheet(),
        _run_sheet(),
        _wa_sheet(),
    )
