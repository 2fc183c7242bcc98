"""``/whatsapp``: link the owner's number, watch the queue and the message log, send in bulk.

Every owner links their own number (QR or pairing code); the page follows the QR as it
rotates. Mitra see only their own session, queue and messages; the superadmin sees all
of them (or one mitra) and also edits the message templates and the sending rules.

Every handler resolves the session first (:func:`current_actor`) and changes or reads
nothing without one; the template and sending-rule handlers also need the superadmin
and read the templates through the service that checks it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime
from typing import Any

import reflex as rx

from fibernode.components.layout import app_shell
from fibernode.components.ui import alert, empty_state, field, page_title, pager, text_input
from fibernode.formatting import date_time, number
from fibernode.services import users, wa_config, wa_queue, wa_templates, whatsapp
from fibernode.services.context import Actor
from fibernode.services.errors import ServiceError
from fibernode.state.branding import BrandingState
from fibernode.state.session import SessionState, current_actor, to_login
from fibernode.state.ui import toast

TABS = [("connection", "Koneksi", "smartphone"), ("queue", "Antrian", "list_ordered"),
        ("logs", "Log Pesan", "history"), ("send", "Kirim Pesan", "send")]
ADMIN_TABS = [("templates", "Template", "file_text"),
              ("settings", "Aturan Kirim", "sliders_horizontal")]
QUEUE_STATUSES = [("", "Semua"), ("pending", "Menunggu"), ("sending", "Mengirim"),
                  ("sent", "Terkirim"), ("failed", "Gagal"), ("uncertain", "Tidak pasti"),
                  ("cancelled", "Dibatalkan"), ("skipped", "Dilewati")]
STATUS_LABELS = dict(QUEUE_STATUSES[1:]) | {"delivered": "Diterima", "read": "Dibaca"}
TYPE_LABELS = whatsapp.TYPE_LABELS
LOG_STATUSES = [("", "Semua status"), ("sent", "Terkirim"), ("delivered", "Diterima"),
                ("read", "Dibaca"), ("failed", "Gagal"), ("uncertain", "Tidak pasti"),
                ("skipped", "Dilewati"), ("pending", "Menunggu")]
BULK_FILTERS = [{"value": "unpaid", "label": "Semua yang belum bayar"},
                {"value": "due_today", "label": "Jatuh tempo hari ini"},
                {"value": "overdue", "label": "Terlambat bayar"}]
BULK_TEMPLATES = [{"value": "reminder", "label": "Pengingat tagihan"},
                  {"value": "custom", "label": "Pesan bebas"}]
OFFSET_LABELS = {-7: "H-7", -3: "H-3", -1: "H-1", 1: "H+1", 3: "H+3", 7: "H+7"}
CONFIG_FIELDS = [
    ("min_delay_s", "Jeda minimum antar pesan (detik)"),
    ("max_delay_s", "Jeda maksimum antar pesan (detik)"),
    ("jitter_s", "Tambahan acak (detik)"),
    ("batch_size", "Pesan per gelombang"),
    ("batch_cooldown_s", "Istirahat antar gelombang (detik)"),
    ("max_per_hour", "Maksimum per jam"),
    ("max_per_day", "Maksimum per hari"),
    ("retry_delay_s", "Jeda sebelum kirim ulang (detik)"),
    ("max_retries", "Maksimum percobaan"),
    ("quiet_start", "Jam tenang mulai (HH:MM)"),
    ("quiet_end", "Jam tenang selesai (HH:MM)"),
]
LINK_POLL_SECONDS = 2
LINK_POLL_LIMIT = 150


def _when(value: datetime | None) -> str:
    return date_time(value) if value else ""


def status_view(view: whatsapp.SessionView) -> dict[str, str]:
    """The session as the connection card shows it."""
    return {
        "status": view.status, "label": view.label, "phone": view.phone or "",
        "qr_svg": view.qr_svg, "pairing_code": view.pairing_code or "",
        "expires": _when(view.link_expires_at), "expired": "1" if view.link_expired else "",
        "banned_until": _when(view.banned_until), "error": view.last_error or "",
        "paused": "1" if view.paused else "", "pause_reason": view.pause_reason or "",
        "mode": view.mode,
    }


def queue_row(row: wa_queue.QueueRow) -> dict[str, str]:
    """One queued message for the queue list."""
    return {
        "id": str(row.id), "customer": row.customer_name or "-", "phone": row.phone,
        "type": TYPE_LABELS.get(row.message_type, "Pesan"),
        "status": row.status,
        # In outbox mode a "sent" row was only recorded: never call it "Terkirim".
        "status_label": whatsapp.status_label(row.status) if row.status == "sent"
        else STATUS_LABELS.get(row.status, row.status),
        "scheduled": _when(row.scheduled_at), "sent": _when(row.sent_at),
        "retries": str(row.retry_count), "error": row.error or "",
        "resend": f"queue:{row.id}" if row.can_resend else "",
    }


def log_row(row: whatsapp.LogView) -> dict[str, str]:
    """One message of the log."""
    return {
        "id": str(row.id), "customer": row.customer_name or "-",
        "customer_id": str(row.customer_id or ""), "phone": row.phone,
        "type": row.type_label, "status": row.status, "status_label": row.status_label,
        "at": row.sent_at_text, "content": row.content, "error": row.error_message or "",
        "area": row.owner_name, "resend": f"log:{row.id}" if row.can_resend else "",
    }


def overview_view(ov: wa_queue.QueueOverview) -> dict[str, str]:
    """The queue's pacing line (paused?, next send, sent today)."""
    return {"paused": "1" if ov.paused else "", "pause_reason": ov.pause_reason or "",
            "next_send_at": _when(ov.next_send_at), "sent_today": number(ov.sent_today)}


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _tabs_for(actor: Actor) -> set[str]:
    """The tabs this user may open (templates and sending rules: superadmin)."""
    return {t[0] for t in TABS} | ({t[0] for t in ADMIN_TABS} if actor.is_superadmin
                                    else set())


class WhatsAppState(rx.State):
    """The shown tab and what each tab needs; lists are paged in SQL, 20 rows a page."""

    tab: str = "connection"
    ready: bool = False
    # WA_MODE=outbox: messages are only recorded; every tab says so.
    outbox: bool = False
    session: dict[str, str] = {}
    link_error: str = ""
    pairing: bool = False
    watching: bool = False
    test_error: str = ""
    owner_filter: str = ""
    owner_options: list[dict[str, str]] = []
    # Queue.
    counts: dict[str, str] = {}
    overview: dict[str, str] = {}
    queue_rows: list[dict[str, str]] = []
    queue_status: str = ""
    queue_page: int = 1
    queue_pages: int = 1
    queue_total: str = "0"
    # "queue:<id>" / "log:<id>" whose resend waits for the owner's confirmation.
    resend_target: str = ""
    # Log.
    log_rows: list[dict[str, str]] = []
    log_type: str = ""
    log_status: str = ""
    log_from: str = ""
    log_to: str = ""
    log_page: int = 1
    log_pages: int = 1
    log_total: str = "0"
    spike: str = ""
    # Bulk send.
    bulk_filter: str = "unpaid"
    bulk_template: str = "reminder"
    bulk_text: str = ""
    bulk_preview: dict[str, str] = {}
    bulk_skipped: list[dict[str, str]] = []
    bulk_error: str = ""
    # Templates (superadmin).
    tpl_keys: list[dict[str, str]] = []
    tpl_key: str = "reminder_m1"
    tpl_text: str = ""
    tpl_preview: str = ""
    tpl_errors: dict[str, str] = {}
    # Sending rules (superadmin).
    config: dict[str, str] = {}
    offsets: list[str] = []
    config_errors: dict[str, str] = {}

    # --- loading ---------------------------------------------------------------------------

    def _owner(self, actor: Actor) -> uuid.UUID | None:
        if actor.is_superadmin and self.owner_filter:
            try:
                return uuid.UUID(self.owner_filter)
            except ValueError:
                return None
        return None

    def _load_session(self, actor: Actor) -> None:
        try:
            self.session = status_view(whatsapp.get_status(actor))
            self.outbox = self.session["mode"] == "outbox"
        except ServiceError as exc:
            self.link_error = exc.message

    def _load_queue(self, actor: Actor) -> None:
        owner = self._owner(actor)
        counts = wa_queue.queue_counts(actor, owner_id=owner)
        self.counts = {k: number(v) for k, v in counts.items()}
        self.overview = overview_view(wa_queue.queue_overview(actor, owner_id=owner))
        result = wa_queue.list_queue(actor, page=self.queue_page,
                                     status=self.queue_status or None, owner_id=owner)
        self.queue_rows = [queue_row(r) for r in result.items]
        self.queue_page, self.queue_pages = result.page, max(1, result.pages)
        self.queue_total = number(result.total)

    def _load_logs(self, actor: Actor) -> None:
        owner = self._owner(actor)
        result = whatsapp.list_logs(actor, page=self.log_page,
                                    message_type=self.log_type or None,
                                    status=self.log_status or None,
                                    date_from=_date(self.log_from), date_to=_date(self.log_to),
                                    owner_id=owner)
        self.log_rows = [log_row(r) for r in result.items]
        self.log_page, self.log_pages = result.page, max(1, result.pages)
        self.log_total = number(result.total)
        self.spike = whatsapp.failure_spike(actor, owner_id=owner) or ""

    def _load_templates(self, actor: Actor) -> None:
        views = wa_templates.list_templates(actor)  # superadmin only
        self.tpl_keys = [{"value": v.key, "label": v.label} for v in views]
        texts = {v.key: v.text for v in views}
        if self.tpl_key not in texts:
            self.tpl_key = next(iter(texts), "")
        self.tpl_text = texts.get(self.tpl_key, "")
        self._preview_template()

    def _preview_template(self) -> None:
        self.tpl_errors = wa_templates.validate(self.tpl_key, self.tpl_text)
        self.tpl_preview = "" if self.tpl_errors else wa_templates.preview(self.tpl_key,
                                                                            self.tpl_text)

    def _load_config(self, actor: Actor) -> None:
        values = wa_config.get_wa_config(actor)
        offsets = values.get("reminder_offsets", [-1])
        self.offsets = [str(o) for o in offsets]
        self.config = {k: str(v) for k, v in values.items() if k != "reminder_offsets"}

    def _load_tab(self, actor: Actor) -> None:
        try:
            if self.tab == "connection":
                self._load_session(actor)
            elif self.tab == "queue":
                self._load_queue(actor)
            elif self.tab == "logs":
                self._load_logs(actor)
            elif self.tab == "templates" and actor.is_superadmin:
                self._load_templates(actor)
            elif self.tab == "settings" and actor.is_superadmin:
                self._load_config(actor)
        except ServiceError as exc:
            self.link_error = exc.message

    @rx.event
    async def load(self):
        """Page load: the chosen tab (``?tab=``), the session, and owner options."""
        actor = await current_actor(self)
        if actor is None:
            yield await to_login(self)
            return
        tab = self.router.url.query_parameters.get("tab", "")
        valid = _tabs_for(actor)
        if tab in valid:
            self.tab = tab
        elif self.tab not in valid:
            self.tab = "connection"
        if actor.is_superadmin:
            self.owner_options = [{"value": str(o.id), "label": o.business_name}
                                  for o in users.list_owners(actor)]
        self._load_session(actor)
        self._load_tab(actor)
        self.ready = True
        if self.session.get("status") == "connecting" and not self.watching:
            yield WhatsAppState.watch_link

    @rx.event
    async def set_tab(self, tab: str):
        """Switch tab and load what it shows."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        if tab in _tabs_for(actor):
            self.tab = tab
            self._load_tab(actor)
        return None

    @rx.event
    async def set_owner_filter(self, value: str):
        """Superadmin narrows queue and log to one owner."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.owner_filter, self.queue_page, self.log_page = value, 1, 1
        self._load_tab(actor)
        return None

    # --- connection ------------------------------------------------------------------------

    async def _admin(self) -> tuple[Actor | None, Any]:
        """The superadmin behind this tab, else ``None`` and what the handler returns.

        No session goes to the login page; a mitra changes and reads nothing.
        """
        actor = await current_actor(self)
        if actor is None:
            return None, await to_login(self)
        return (actor, None) if actor.is_superadmin else (None, None)

    @rx.event
    async def set_pairing(self, value: bool):
        """Choose linking by pairing code instead of QR."""
        if await current_actor(self) is None:
            return await to_login(self)
        self.pairing = bool(value)
        return None

    @rx.event
    async def start_link(self, form: dict):
        """Begin linking this user's number (QR, or a pairing code for a phone number)."""
        actor = await current_actor(self)
        if actor is None:
            yield await to_login(self)
            return
        try:
            whatsapp.start_link(actor, method="code" if self.pairing else "qr",
                                phone=(form.get("phone") or "").strip() or None)
        except ServiceError as exc:
            self.link_error = exc.details.get("phone") or exc.message
            return
        self.link_error = ""
        self._load_session(actor)
        if not self.watching:
            yield WhatsAppState.watch_link

    @rx.event(background=True)
    async def watch_link(self):
        """Follow the link while it is being made: the QR rotates, then it connects."""
        async with self:
            if self.watching:
                return
            self.watching = True
        try:
            for _ in range(LINK_POLL_LIMIT):
                await asyncio.sleep(LINK_POLL_SECONDS)
                async with self:
                    actor = await current_actor(self)
                    if actor is None:
                        return
                    self._load_session(actor)
                    if self.session.get("status") != "connecting":
                        return
        finally:
            async with self:
                self.watching = False

    @rx.event
    async def logout(self):
        """Unlink this user's number."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            whatsapp.logout(actor)
        except ServiceError as exc:
            self.link_error = exc.message
            return None
        self._load_session(actor)
        return rx.toast.success("WhatsApp diputuskan.")

    @rx.event
    async def send_test(self, form: dict):
        """Send a test message to a number the user types."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            whatsapp.send_test(actor, (form.get("phone") or "").strip(),
                               (form.get("text") or "").strip() or None)
        except ServiceError as exc:
            self.test_error = exc.details.get("phone") or exc.message
            return None
        self.test_error = ""
        return rx.toast.success("Pesan tes dikirim. Lihat hasilnya di Log Pesan.")

    # --- queue -----------------------------------------------------------------------------

    @rx.event
    async def set_queue_status(self, value: str):
        """Queue status filter."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.queue_status, self.queue_page = value, 1
        self._load_tab(actor)
        return None

    @rx.event
    async def queue_go(self, delta: int):
        """Previous / next page of the queue."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.queue_page = max(1, min(self.queue_pages, self.queue_page + int(delta)))
        self._load_tab(actor)
        return None

    @rx.event
    async def reload_queue(self):
        """Reload counts and the current page of the queue."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self._load_tab(actor)
        return None

    async def _queue_action(self, fn, queue_id: str, done: str):
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            fn(actor, uuid.UUID(queue_id))
        except (ServiceError, ValueError) as exc:
            return toast("error", getattr(exc, "message", "Pesan tidak ditemukan."))
        self._load_queue(actor)
        return rx.toast.success(done)

    @rx.event
    async def ask_resend(self, target: str):
        """First step of a deliberate resend: show the "may arrive twice" warning."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.resend_target = target
        return None

    @rx.event
    async def cancel_resend(self):
        """Close the resend warning without sending."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.resend_target = ""
        return None

    @rx.event
    async def resend(self, target: str):
        """Resend ``queue:<id>`` / ``log:<id>`` as a new message (new key), once confirmed."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        kind, _, raw = target.partition(":")
        self.resend_target = ""
        try:
            item = uuid.UUID(raw)
            if kind == "queue":
                wa_queue.retry_message(actor, item)
            else:
                whatsapp.resend_message(actor, item)
        except (ServiceError, ValueError) as exc:
            return toast("error", getattr(exc, "message", "Pesan tidak ditemukan."))
        if kind == "queue":
            self._load_queue(actor)
        else:
            self._reload_logs(actor)
        return rx.toast.success("Pesan dikirim ulang sebagai pesan baru.")

    @rx.event
    async def cancel(self, queue_id: str):
        """Cancel a message that is still waiting."""
        return await self._queue_action(wa_queue.cancel_message, queue_id,
                                        "Pesan dibatalkan.")

    @rx.event
    async def resume(self):
        """Continue a paused queue (after the account problem is solved)."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            wa_queue.resume_queue(actor, owner_id=self._owner(actor))
        except ServiceError as exc:
            return toast("error", exc.message)
        self._load_session(actor)
        self._load_queue(actor)
        return rx.toast.success("Antrian dilanjutkan.")

    # --- log -------------------------------------------------------------------------------

    @rx.event
    async def filter_logs(self, form: dict):
        """Apply the log filters (type, status, dates)."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.log_type = form.get("type", "")
        self.log_status = form.get("status", "")
        self.log_from, self.log_to = form.get("from", ""), form.get("to", "")
        self.log_page = 1
        self._reload_logs(actor)
        return None

    @rx.event
    async def log_go(self, delta: int):
        """Previous / next page of the log."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.log_page = max(1, min(self.log_pages, self.log_page + int(delta)))
        self._reload_logs(actor)
        return None

    def _reload_logs(self, actor: Actor) -> None:
        try:
            self._load_logs(actor)
        except ServiceError as exc:
            self.link_error = exc.message

    @rx.event
    async def reload_logs(self):
        """Reload the log page."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self._reload_logs(actor)
        return None

    # --- bulk send -------------------------------------------------------------------------

    def _bulk_args(self) -> dict[str, Any]:
        return {"filter": self.bulk_filter, "template": self.bulk_template,
                "text": self.bulk_text or None}

    @rx.event
    async def preview_bulk(self, form: dict):
        """Show who would get the message, and a sample, before anything is queued."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.bulk_filter = form.get("filter") or "unpaid"
        self.bulk_template = form.get("template") or "reminder"
        self.bulk_text = form.get("text") or ""
        try:
            preview = whatsapp.preview_bulk(actor, **self._bulk_args())
        except ServiceError as exc:
            self.bulk_error, self.bulk_preview = exc.details.get("text") or exc.message, {}
            return None
        self.bulk_error = ""
        self.bulk_preview = {"count": number(preview.count), "raw_count": str(preview.count),
                             "sample": preview.sample or ""}
        self.bulk_skipped = [{"name": r.name, "reason": r.reason}
                             for r in preview.skipped[:20]]
        return None

    @rx.event
    async def send_bulk(self):
        """Queue the previewed messages (they go out paced, per owner's number)."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            queued = whatsapp.send_bulk(actor, **self._bulk_args())
        except ServiceError as exc:
            self.bulk_error = exc.message
            return None
        self.bulk_preview, self.bulk_skipped = {}, []
        return rx.toast.success(f"{number(queued)} pesan masuk antrian.")

    @rx.event
    async def clear_bulk(self):
        """Back to the bulk form."""
        if await current_actor(self) is None:
            return await to_login(self)
        self.bulk_preview, self.bulk_skipped, self.bulk_error = {}, [], ""
        return None

    # --- templates (superadmin) ------------------------------------------------------------

    @rx.event
    async def choose_template(self, key: str):
        """Edit another template (superadmin)."""
        actor, refusal = await self._admin()
        if actor is None:
            return refusal
        texts = {v.key: v.text for v in wa_templates.list_templates(actor)}
        if key in texts:
            self.tpl_key, self.tpl_text = key, texts[key]
            self._preview_template()
        return None

    @rx.event
    async def edit_template(self, text: str):
        """Live preview while typing (superadmin)."""
        actor, refusal = await self._admin()
        if actor is None:
            return refusal
        self.tpl_text = text
        self._preview_template()
        return None

    @rx.event
    async def save_template(self):
        """Store the edited template."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            wa_templates.update_template(actor, self.tpl_key, self.tpl_text)
        except ServiceError as exc:
            self.tpl_errors = exc.details or {"text": exc.message}
            return None
        return rx.toast.success("Template disimpan.")

    @rx.event
    async def reset_template(self):
        """Back to the built-in text."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            wa_templates.reset_template(actor, self.tpl_key)
        except ServiceError as exc:
            return toast("error", exc.message)
        self._load_templates(actor)
        return rx.toast.success("Template dikembalikan ke bawaan.")

    # --- sending rules (superadmin) --------------------------------------------------------

    @rx.event
    async def toggle_offset(self, offset: str):
        """Switch one extra reminder day on or off (superadmin)."""
        actor, refusal = await self._admin()
        if actor is None:
            return refusal
        if offset not in {str(o) for o in OFFSET_LABELS}:
            return None
        self.offsets = ([o for o in self.offsets if o != offset] if offset in self.offsets
                        else [*self.offsets, offset])
        return None

    @rx.event
    async def save_config(self, form: dict):
        """Store the pacing rules and reminder days."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        values: dict[str, Any] = {k: (form.get(k) or "").strip() for k, _ in CONFIG_FIELDS}
        values["reminder_offsets"] = sorted(int(o) for o in self.offsets)
        try:
            wa_config.update_wa_config(actor, values)
        except ServiceError as exc:
            self.config_errors = exc.details or {"form": exc.message}
            return None
        self.config_errors = {}
        self._load_config(actor)
        return rx.toast.success("Aturan pengiriman disimpan.")


S = WhatsAppState


def _tabs() -> rx.Component:
    def tab(key: str, label: str, icon: str) -> rx.Component:
        return rx.el.button(rx.icon(icon, size=16), label, type="button",
                            on_click=S.set_tab(key),
                            class_name=rx.cond(S.tab == key, "fn-chip active", "fn-chip"),
                            data_testid=f"wa-tab-{key}")

    return rx.el.div(
        *[tab(*t) for t in TABS],
        rx.cond(SessionState.is_superadmin, rx.fragment(*[tab(*t) for t in ADMIN_TABS])),
        class_name="fn-chips fn-chips-scroll fn-wa-tabs",
    )


def _session_pill() -> rx.Component:
    return rx.match(
        S.session["status"],
        ("connected", rx.el.span("Terhubung", class_name="fn-pill fn-pill-green")),
        ("connecting", rx.el.span("Menghubungkan", class_name="fn-pill fn-pill-amber")),
        rx.el.span(S.session["label"], class_name="fn-pill fn-pill-red"),
    )


def _link_form() -> rx.Component:
    return rx.form(
        rx.el.div(
            rx.el.button("Scan QR", type="button", on_click=S.set_pairing(False),
                         class_name=rx.cond(S.pairing, "fn-chip", "fn-chip active")),
            rx.el.button("Kode pairing", type="button", on_click=S.set_pairing(True),
                         class_name=rx.cond(S.pairing, "fn-chip active", "fn-chip"),
                         data_testid="wa-pairing-mode"),
            class_name="fn-chips",
        ),
        rx.cond(S.pairing, field("Nomor WhatsApp Anda (62…)",
                                 text_input("phone", "", input_mode="tel",
                                            placeholder="6281234567890"))),
        rx.button(rx.icon("link", size=16),
                  rx.cond(S.pairing, "Minta kode pairing", "Tampilkan QR"),
                  type="submit", size="3", data_testid="wa-connect"),
        on_submit=S.start_link, reset_on_submit=False, class_name="fn-form",
    )


def _sent_label(status: str, label: str, outbox_label: str) -> rx.Component | str:
    """A status filter's label: "sent" reads as only recorded in outbox mode."""
    return rx.cond(S.outbox, outbox_label, label) if status == "sent" else label


def _outbox_notice() -> rx.Component:
    """Above every tab in outbox mode: nothing reaches subscribers."""
    return rx.cond(S.outbox, rx.el.div(
        rx.icon("triangle_alert", size=18),
        rx.el.div(rx.el.strong(whatsapp.OUTBOX_NOTICE_TITLE),
                  rx.el.p(whatsapp.OUTBOX_NOTICE_TEXT)),
        class_name="fn-alert fn-alert-warning", role="status",
        data_testid="wa-outbox-notice"))


def _connection() -> rx.Component:
    s = S.session
    return rx.el.div(
        rx.el.div(
            rx.el.div(rx.icon("smartphone", size=20), rx.el.strong("Nomor WhatsApp"),
                      _session_pill(), class_name="fn-card-row"),
            rx.cond(s["phone"] != "", rx.el.div("Nomor terhubung: ", rx.el.strong(
                s["phone"], data_testid="wa-phone"))),
            rx.cond(s["banned_until"] != "", alert(
                "WhatsApp memblokir nomor ini sementara sampai " + s["banned_until"] + ".")),
            rx.cond(s["error"] != "", rx.el.p(s["error"], class_name="fn-muted")),
            rx.cond(s["paused"] != "", rx.el.div(
                rx.icon("circle_pause", size=18), rx.el.span(s["pause_reason"]),
                rx.button("Lanjutkan antrian", size="1", variant="soft", on_click=S.resume),
                class_name="fn-alert fn-alert-error", data_testid="wa-paused")),
            alert(S.link_error),
            rx.cond(s["status"] == "connecting", rx.el.div(
                rx.cond(s["qr_svg"] != "", rx.el.div(
                    rx.el.img(src=s["qr_svg"], alt="QR WhatsApp", class_name="fn-wa-qr",
                              data_testid="wa-qr"),
                    rx.el.ol(
                        rx.el.li("Buka WhatsApp di HP Anda."),
                        rx.el.li("Ketuk Menu ⋮ atau Setelan, lalu Perangkat tertaut."),
                        rx.el.li("Ketuk Tautkan perangkat, lalu arahkan kamera ke QR ini."),
                        class_name="fn-muted"),
                    class_name="fn-wa-link")),
                rx.cond(s["pairing_code"] != "", rx.el.div(
                    rx.el.div("Kode pairing", class_name="fn-muted"),
                    rx.el.div(s["pairing_code"], class_name="fn-wa-code",
                              data_testid="wa-pairing-code"),
                    rx.el.p("Di WhatsApp: Perangkat tertaut → Tautkan perangkat → Tautkan "
                            "dengan nomor telepon, lalu masukkan kode ini.",
                            class_name="fn-muted"))),
                rx.cond(s["expires"] != "", rx.el.p("Berlaku sampai ", s["expires"],
                                                    class_name="fn-muted")),
                class_name="fn-stack-tight")),
            rx.cond(s["expired"] != "", rx.el.div(
                rx.icon("timer_off", size=18),
                "Waktu menautkan habis sebelum QR dipindai. Minta QR baru.",
                class_name="fn-alert fn-alert-error", data_testid="wa-expired")),
            rx.cond(s["status"] == "connected",
                    rx.button(rx.icon("unlink", size=16), "Putuskan WhatsApp", variant="soft",
                              color_scheme="red", on_click=S.logout, data_testid="wa-logout"),
                    _link_form()),
            class_name="fn-card fn-stack",
        ),
        rx.el.div(
            rx.el.h3("Kirim Pesan Tes", class_name="fn-section-title"),
            rx.form(
                field("Nomor tujuan (62…)", text_input("phone", "", input_mode="tel",
                                                       placeholder="6281234567890")),
                field("Pesan (opsional)", rx.el.textarea(
                    name="text", rows=2, class_name="fn-input fn-textarea",
                    placeholder="Tes pesan dari FiberNode Internet")),
                alert(S.test_error),
                rx.button(rx.icon("send", size=16), "Kirim Tes", type="submit",
                          data_testid="wa-send-test"),
                on_submit=S.send_test, reset_on_submit=False, class_name="fn-form"),
            class_name="fn-card fn-stack",
        ),
        class_name="fn-grid-2",
    )


def _owner_picker() -> rx.Component:
    return rx.cond(SessionState.is_superadmin, rx.el.select(
        rx.el.option("Semua pemilik", value=""),
        rx.foreach(S.owner_options, lambda o: rx.el.option(o["label"], value=o["value"])),
        value=S.owner_filter, on_change=S.set_owner_filter,
        class_name="fn-input fn-select", aria_label="Pemilik"))


def _count(label: str, key: str, tone: str) -> rx.Component:
    return rx.el.div(rx.el.div(S.counts[key], class_name="fn-stat-value",
                               data_testid=f"wa-count-{key}"),
                     rx.el.div(label, class_name="fn-muted"),
                     class_name=f"fn-card fn-wa-count fn-wa-{tone}")


def _resend_confirm(target) -> rx.Component:
    """The warning before a deliberate resend: the subscriber may get the message twice."""
    return rx.cond((target != "") & (S.resend_target == target), rx.el.div(
        rx.icon("triangle_alert", size=18),
        rx.el.div(rx.el.strong("Kirim ulang pesan ini?"),
                  rx.el.p(whatsapp.RESEND_WARNING),
                  rx.el.div(rx.button("Ya, kirim ulang", size="1", color_scheme="amber",
                                      on_click=S.resend(target),
                                      data_testid="wa-resend-confirm"),
                            rx.button("Batal", size="1", variant="soft", color_scheme="gray",
                                      on_click=S.cancel_resend),
                            class_name="fn-toolbar-actions")),
        class_name="fn-alert fn-alert-warning", role="alertdialog",
        data_testid="wa-resend-warning"))


def _queue() -> rx.Component:
    return rx.el.div(
        rx.el.div(_count("Menunggu", "pending", "grey"), _count("Mengirim", "sending", "amber"),
                  _count("Terkirim", "sent", "green"), _count("Gagal", "failed", "red"),
                  class_name="fn-wa-counts"),
        rx.cond(S.overview["paused"] != "", rx.el.div(
            rx.icon("circle_pause", size=18), rx.el.span(S.overview["pause_reason"]),
            rx.button("Lanjutkan antrian", size="1", variant="soft", on_click=S.resume),
            class_name="fn-alert fn-alert-error")),
        rx.cond(S.overview["next_send_at"] != "", rx.el.p(
            "Pesan berikutnya paling cepat ", S.overview["next_send_at"],
            " · terkirim hari ini ", S.overview["sent_today"], class_name="fn-muted")),
        rx.el.div(
            rx.el.div(*[rx.el.button(_sent_label(value, label, "Dicatat"), type="button",
                                     on_click=S.set_queue_status(value),
                                     class_name=rx.cond(S.queue_status == value,
                                                        "fn-chip active", "fn-chip"))
                        for value, label in QUEUE_STATUSES],
                      class_name="fn-chips fn-chips-scroll"),
            _owner_picker(), class_name="fn-filter-bar"),
        rx.cond(S.queue_rows.length() == 0,
                empty_state("list_ordered", "Antrian kosong",
                            "Pengingat tagihan dan kiriman massal muncul di sini."),
                rx.el.div(rx.foreach(S.queue_rows, lambda r: rx.el.div(
                    rx.el.div(rx.el.div(rx.el.strong(r["customer"]),
                                        rx.el.span(" · ", r["phone"], class_name="fn-muted")),
                              rx.el.span(r["status_label"], class_name="fn-pill fn-pill-grey"),
                              class_name="fn-card-row"),
                    rx.el.div(r["type"], " · jadwal ", r["scheduled"],
                              rx.cond(r["sent"] != "", rx.el.span(
                                  rx.cond(S.outbox, " · dicatat ", " · terkirim "), r["sent"])),
                              class_name="fn-muted"),
                    rx.cond(r["error"] != "", rx.el.div(r["error"], class_name="fn-field-error")),
                    _resend_confirm(r["resend"]),
                    rx.el.div(
                        rx.cond(r["resend"] != "",
                                rx.button("Kirim ulang", size="1", variant="soft",
                                          on_click=S.ask_resend(r["resend"]),
                                          data_testid="wa-retry")),
                        rx.cond(r["status"] == "pending",
                                rx.button("Batalkan", size="1", variant="soft",
                                          color_scheme="gray", on_click=S.cancel(r["id"]),
                                          data_testid="wa-cancel")),
                        class_name="fn-toolbar-actions"),
                    class_name="fn-message-row fn-stack-tight", data_testid="wa-queue-row",
                )), class_name="fn-stack-tight")),
        pager(S.queue_page, S.queue_pages, S.queue_total, "pesan", S.queue_go(-1),
              S.queue_go(1), test_id="wa-queue-pager"),
        class_name="fn-card fn-stack",
    )


def _logs() -> rx.Component:
    return rx.el.div(
        rx.cond(S.spike != "", rx.el.div(rx.icon("triangle_alert", size=18),
                                         rx.el.span(S.spike),
                                         class_name="fn-alert fn-alert-error",
                                         data_testid="wa-spike")),
        rx.form(
            rx.el.select(rx.el.option("Semua jenis", value=""),
                         *[rx.el.option(label, value=key) for key, label in TYPE_LABELS.items()],
                         name="type", default_value=S.log_type, class_name="fn-input fn-select",
                         aria_label="Jenis pesan"),
            rx.el.select(*[rx.el.option(_sent_label(key, label, "Dicatat (mode uji)"), value=key)
                           for key, label in LOG_STATUSES],
                         name="status", default_value=S.log_status,
                         class_name="fn-input fn-select", aria_label="Status"),
            rx.el.input(type="date", name="from", default_value=S.log_from,
                        class_name="fn-input fn-select", aria_label="Dari tanggal"),
            rx.el.input(type="date", name="to", default_value=S.log_to,
                        class_name="fn-input fn-select", aria_label="Sampai tanggal"),
            _owner_picker(),
            rx.button("Terapkan", type="submit", variant="soft"),
            on_submit=S.filter_logs, reset_on_submit=False, class_name="fn-filter-bar"),
        rx.cond(S.log_rows.length() == 0,
                empty_state("history", "Belum ada pesan",
                            "Nota, pengingat, isolir dan pesan manual tercatat di sini."),
                rx.el.div(rx.foreach(S.log_rows, lambda r: rx.el.details(
                    rx.el.summary(
                        rx.el.div(rx.el.strong(r["customer"]),
                                  rx.el.span(" · ", r["type"], " · ", r["at"],
                                             rx.cond(SessionState.is_superadmin,
                                                     rx.el.span(" · ", r["area"])),
                                             class_name="fn-muted")),
                        # Recorded in outbox mode is not a success: never green.
                        rx.el.span(r["status_label"], class_name=rx.cond(
                            S.outbox & (r["status"] == "sent"), "fn-pill fn-pill-amber",
                            rx.match(r["status"], ("failed", "fn-pill fn-pill-red"),
                                     ("uncertain", "fn-pill fn-pill-amber"),
                                     ("skipped", "fn-pill fn-pill-grey"),
                                     "fn-pill fn-pill-green"))),
                        class_name="fn-card-row"),
                    rx.cond(r["error"] != "", rx.el.div(r["error"], class_name="fn-field-error")),
                    rx.el.pre(r["content"], class_name="fn-wa-bubble"),
                    _resend_confirm(r["resend"]),
                    rx.cond(r["resend"] != "", rx.el.div(
                        rx.button("Kirim ulang", size="1", variant="soft",
                                  on_click=S.ask_resend(r["resend"]),
                                  data_testid="wa-log-resend"),
                        class_name="fn-toolbar-actions")),
                    class_name="fn-message-row", data_testid="wa-log-row",
                )), class_name="fn-stack-tight")),
        pager(S.log_page, S.log_pages, S.log_total, "pesan", S.log_go(-1), S.log_go(1),
              test_id="wa-log-pager"),
        class_name="fn-card fn-stack",
    )


def _send() -> rx.Component:
    p = S.bulk_preview
    return rx.el.div(
        rx.el.h3("Kirim Pesan ke Banyak Pelanggan", class_name="fn-section-title"),
        rx.el.p("Pesan masuk antrian dan dikirim bertahap dari nomor WhatsApp pemilik "
                "pelanggan (jeda acak, istirahat tiap 20 pesan) agar nomor tidak diblokir.",
                class_name="fn-muted"),
        rx.cond(p.length() == 0, rx.form(
            field("Penerima", rx.el.select(
                *[rx.el.option(o["label"], value=o["value"]) for o in BULK_FILTERS],
                name="filter", default_value=S.bulk_filter, class_name="fn-input")),
            field("Jenis pesan", rx.el.select(
                *[rx.el.option(o["label"], value=o["value"]) for o in BULK_TEMPLATES],
                name="template", default_value=S.bulk_template, class_name="fn-input")),
            field("Isi pesan bebas", rx.el.textarea(
                name="text", rows=4, default_value=S.bulk_text,
                class_name="fn-input fn-textarea", data_testid="wa-bulk-text"),
                hint="Hanya untuk pesan bebas. Boleh memakai {nama_pelanggan}."),
            alert(S.bulk_error),
            rx.button(rx.icon("eye", size=16), "Pratinjau", type="submit",
                      data_testid="wa-bulk-preview"),
            on_submit=S.preview_bulk, reset_on_submit=False, class_name="fn-form"),
            rx.el.div(
                rx.el.div(rx.el.strong(p["count"], data_testid="wa-bulk-count"),
                          " pelanggan akan menerima pesan ini."),
                rx.el.pre(p["sample"], class_name="fn-wa-bubble"),
                rx.cond(S.bulk_skipped.length() > 0, rx.el.div(
                    rx.el.div("Dilewati:", class_name="fn-muted"),
                    rx.foreach(S.bulk_skipped, lambda s: rx.el.div(
                        s["name"], " — ", s["reason"], class_name="fn-muted")))),
                alert(S.bulk_error),
                rx.el.div(
                    rx.button("Ubah", variant="soft", color_scheme="gray", on_click=S.clear_bulk),
                    rx.button(rx.icon("send", size=16), "Masukkan ke antrian",
                              on_click=S.send_bulk, disabled=p["raw_count"] == "0",
                              data_testid="wa-bulk-confirm"),
                    class_name="fn-dialog-actions"),
                class_name="fn-stack")),
        class_name="fn-card fn-stack",
    )


def _templates() -> rx.Component:
    e = S.tpl_errors
    return rx.el.div(
        rx.el.div(
            field("Template", rx.el.select(
                rx.foreach(S.tpl_keys, lambda o: rx.el.option(o["label"], value=o["value"])),
                value=S.tpl_key, on_change=S.choose_template, class_name="fn-input",
                data_testid="wa-tpl-key")),
            field("Isi template", rx.el.textarea(
                value=S.tpl_text, on_change=S.edit_template.debounce(400), rows=16,
                class_name="fn-input fn-textarea fn-mono", data_testid="wa-tpl-text"),
                hint="{salam} dan {penutup} diisi acak per pesan agar tidak identik."),
            rx.foreach(e, lambda kv: rx.el.div(kv[1], class_name="fn-field-error",
                                               role="alert")),
            rx.el.div(
                rx.button("Kembalikan bawaan", variant="soft", color_scheme="gray",
                          on_click=S.reset_template),
                rx.button(rx.icon("save", size=16), "Simpan template",
                          on_click=S.save_template, disabled=e.length() > 0,
                          data_testid="wa-tpl-save"),
                class_name="fn-dialog-actions"),
            class_name="fn-card fn-stack",
        ),
        rx.el.div(
            rx.el.h3("Pratinjau", class_name="fn-section-title"),
            rx.el.pre(S.tpl_preview, class_name="fn-wa-bubble", data_testid="wa-tpl-preview"),
            class_name="fn-card fn-stack",
        ),
        class_name="fn-grid-2",
    )


def _settings() -> rx.Component:
    e = S.config_errors
    return rx.el.div(
        rx.form(
            rx.el.h3("Jadwal Pengingat", class_name="fn-section-title"),
            rx.el.p("H-1 adalah pengingat bawaan. Hari lain bisa diaktifkan, masing-masing "
                    "dengan templatenya sendiri. Tagihan yang sudah lunas tidak diingatkan lagi.",
                    class_name="fn-muted"),
            rx.el.div(*[rx.el.button(label, type="button", on_click=S.toggle_offset(str(off)),
                                     class_name=rx.cond(S.offsets.contains(str(off)),
                                                        "fn-chip active", "fn-chip"),
                                     data_testid=f"wa-offset-{off}")
                        for off, label in OFFSET_LABELS.items()], class_name="fn-chips"),
            rx.el.h3("Batas Pengiriman per Nomor", class_name="fn-section-title"),
            rx.el.div(*[field(label, text_input(key, S.config[key], error=e.get(key, "")),
                              e.get(key, "")) for key, label in CONFIG_FIELDS],
                      class_name="fn-form-grid"),
            alert(e.get("form", "")),
            rx.el.div(rx.button(rx.icon("save", size=16), "Simpan aturan", type="submit",
                                data_testid="wa-config-save"),
                      class_name="fn-dialog-actions"),
            on_submit=S.save_config, reset_on_submit=False, class_name="fn-form",
            key=S.config.to_string(),
        ),
        class_name="fn-card fn-stack",
    )


@rx.page(route="/whatsapp", title="WhatsApp — FiberNode Internet",
         on_load=[BrandingState.load, WhatsAppState.load])
def whatsapp_page() -> rx.Component:
    """Link, queue, log, bulk send, templates and rules."""
    return app_shell(
        "WhatsApp",
        rx.el.div(page_title("WhatsApp", "Nomor WhatsApp Anda untuk nota, pengingat dan "
                                         "pemberitahuan pelanggan"),
                  class_name="fn-page-bar"),
        _outbox_notice(),
        _tabs(),
        rx.cond(S.ready, rx.match(
            S.tab,
            ("queue", _queue()),
            ("logs", _logs()),
            ("send", _send()),
            ("templates", _templates()),
            ("settings", _settings()),
            _connection(),
        )),
    )
