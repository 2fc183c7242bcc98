"""WhatsApp use cases for the UI and the REST API: link, status, sends, logs, alerts.

Every owner (superadmin or mitra) has its own number; a message always goes out from
the number of the subscriber's owner. A mitra sees and acts on its own session, logs
and subscribers only; the superadmin acts on its own and may name another owner where
that makes sense (status, logs, disconnect). Single messages are sent directly
(:mod:`wa_direct`, after the commit, never blocking the request); bulk messages go to
the paced queue (:mod:`wa_queue`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from fibernode import clock
from fibernode.config import get_settings
from fibernode.db import new_session
from fibernode.formatting import date_time
from fibernode.models import (
    Customer,
    CustomerStatus,
    Invoice,
    Package,
    PaymentStatus,
    User,
    UserRole,
    WaMessageLog,
    WaMessageQueue,
    WaSession,
    WaSessionStatus,
)
from fibernode.services import ratelimit, wa_direct, wa_numbers, wa_queue, wa_templates
from fibernode.services.context import Actor, require_user
from fibernode.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fibernode.services.paging import Page, check_per_page
from fibernode.services.scoping import scoped
from fibernode.services.uow import unit_of_work
from fibernode.services.validation import clean, normalize_phone, phone_problem
from fibernode.services.wa_sessions import (
    RESTRICTED_STATUSES,
    STATUS_LABELS,
    SessionEvent,
    record_event,
)
from fibernode.whatsapp.base import NOT_CONNECTED_MESSAGE, GatewayError, LinkState

PAGE_SIZE = 20
MAX_TEXT = wa_templates.MAX_LENGTH
MANUAL_TEMPLATES = ("reminder", "receipt", "isolation", "custom")
BULK_TEMPLATES = ("reminder", "custom")
BULK_FILTERS = ("unpaid", "due_today", "overdue")
# "security": a lockout warning to an account's owner (fibernode.services.devices).
MESSAGE_TYPES = ("reminder", "receipt", "isolation", "custom", "test", "security")
LOG_STATUSES = ("pending", "sending", "sent", "delivered", "read", "failed", "skipped",
                "uncertain")
TYPE_LABELS = {"reminder": "Pengingat", "receipt": "Nota", "isolation": "Isolir",
               "custom": "Manual", "test": "Tes", "security": "Keamanan"}
STATUS_TEXT = {"pending": "Menunggu", "sending": "Mengirim", "sent": "Terkirim",
               "delivered": "Diterima", "read": "Dibaca", "failed": "Gagal",
               "skipped": "Dilewati", "uncertain": "Tidak pasti"}
# Said before a deliberate resend (queue, message log, subscriber page).
RESEND_WARNING = ("Pesan dikirim ulang sebagai pesan baru. Bila pesan sebelumnya ternyata "
                  "sudah sampai, pelanggan menerimanya dua kali.")
ALREADY_RESENT = "Pesan ini sudah dikirim ulang; kirim ulang dari percobaan terbarunya."
# Outbox mode records a message as "sent" without sending it: never call that "Terkirim".
OUTBOX_SENT_LABEL = "Dicatat (mode uji — tidak dikirim)"
# Said wherever messages are listed while WA_MODE=outbox: nothing reaches subscribers.
OUTBOX_NOTICE_TITLE = "Mode uji WhatsApp: tidak ada pesan yang terkirim"
OUTBOX_NOTICE_TEXT = ("Pengingat, nota dan pesan lain hanya dicatat di server dan tidak sampai "
                      "ke pelanggan. Minta pengelola server mengatur WA_MODE ke neonize atau "
                      "cloud.")
SPIKE_MIN_FAILED = 5
SPIKE_MIN_RATIO = 0.3
SKIPPED_SHOWN = 100
TEST_TEXT = ("✅ Pesan uji dari {app}.\n\nJika pesan ini sampai, WhatsApp {usaha} sudah "
             "terhubung dan siap mengirim pengingat tagihan serta nota pembayaran.")
REMINDER_TODAY = "Pengingat untuk tagihan ini sudah terkirim hari ini."
REMINDER_QUEUED_TODAY = "Pengingat untuk tagihan ini sudah ada di antrian hari ini."
NO_OPEN_INVOICE = "Pelanggan ini tidak punya tagihan yang belum lunas."
NO_PAID_INVOICE = "Pelanggan ini belum punya tagihan yang dibayar."
INVOICE_NOT_FOUND = "Tagihan tidak ditemukan."
CUSTOMER_NOT_FOUND = "Pelanggan tidak ditemukan."


# --- views ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionView:
    """An owner's WhatsApp link as the page shows it.

    ``qr_svg`` is a ``data:image/svg+xml`` URI of ``qr_code`` (empty when none);
    ``paused`` / ``pause_reason`` describe the owner's queue; ``mode`` is ``WA_MODE``.
    """

    owner_id: uuid.UUID
    status: str
    label: str
    connected: bool
    phone: str | None
    qr_code: str | None
    qr_svg: str
    pairing_code: str | None
    link_method: str | None
    link_expires_at: datetime | None
    link_expired: bool
    banned_until: datetime | None
    last_error: str | None
    paused: bool
    pause_reason: str | None
    mode: str


@dataclass(frozen=True)
class LogView:
    """One row of the message log."""

    id: uuid.UUID
    owner_id: uuid.UUID | None
    owner_name: str
    customer_id: uuid.UUID | None
    customer_name: str
    invoice_id: uuid.UUID | None
    message_type: str
    type_label: str
    phone: str
    content: str
    status: str
    status_label: str
    error_message: str | None
    sent_at: datetime
    sent_at_text: str  # "5 Mar 2026 14.05" (Jakarta)
    delivered_at: datetime | None
    read_at: datetime | None
    # Failed, uncertain or stuck, and not resent already: the owner may resend it.
    can_resend: bool = False


# One page of the message log (20 per page).
LogPage = Page[LogView]


@dataclass(frozen=True)
class SkippedRecipient:
    """A subscriber a bulk send leaves out, and why."""

    customer_id: uuid.UUID
    name: str
    reason: str


@dataclass(frozen=True)
class BulkPreview:
    """What a bulk send would do: how many, one sample message, who is left out."""

    count: int
    sample: str
    skipped: list[SkippedRecipient]
    skipped_count: int
    owners: int  # how many owners' numbers would send


@dataclass(frozen=True)
class Notice:
    """One entry of the header's notification bell."""

    level: str  # "error", "warning" or "info"
    title: str
    message: str
    owner_id: uuid.UUID | None = None
    href: str = "/whatsapp"
    # "session" (the link), "queue" (paused), "spike" (failures), "security" (lockouts)
    # or "mode" (outbox: nothing is really sent)
    kind: str = "session"


@dataclass
class _Recipient:
    customer: Customer
    invoice: Invoice | None
    owner: User
    text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# --- helpers -------------------------------------------------------------------------------


def _require_person(actor: Actor) -> uuid.UUID:
    """WhatsApp is per user: a logged-in superadmin or mitra (not a job)."""
    require_user(actor)
    if not actor.is_authenticated:
        raise PermissionDenied("WhatsApp hanya dapat diatur oleh pengguna yang login.")
    return actor.user_id


def _owner(actor: Actor, owner_id: uuid.UUID | None) -> uuid.UUID:
    """The owner whose session is meant: the actor's own, or (superadmin) the named one."""
    me = _require_person(actor)
    if owner_id is None or owner_id == me:
        return me
    if not actor.is_superadmin:
        raise PermissionDenied()
    with new_session() as s:
        if s.get(User, owner_id) is None:
            raise NotFound("Pengguna tidak ditemukan.")
    return owner_id


def _phone(raw: str | None) -> str:
    phone = normalize_phone(raw)
    if (p := phone_problem(phone)):
        raise ValidationFailed({"phone": p})
    return phone


def _qr_svg(payload: str | None) -> str:
    if not payload:
        return ""
    import base64
    import io

    import segno

    buf = io.BytesIO()
    segno.make(payload, error="l", micro=False).save(
        buf, kind="svg", xmldecl=False, svgns=True, nl=False, scale=5, border=2)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _view(owner_id: uuid.UUID, row: WaSession | None) -> SessionView:
    mode = get_settings().wa_mode
    if row is None:
        return SessionView(owner_id, WaSessionStatus.DISCONNECTED.value,
                           STATUS_LABELS[WaSessionStatus.DISCONNECTED], False, None, None, "",
                           None, None, None, False, None, None, False, None, mode)
    status = WaSessionStatus(row.status)
    return SessionView(
        owner_id=owner_id, status=status.value, label=STATUS_LABELS[status],
        connected=status == WaSessionStatus.CONNECTED, phone=row.phone_number,
        qr_code=row.qr_code, qr_svg=_qr_svg(row.qr_code), pairing_code=row.pairing_code,
        link_method=row.link_method, link_expires_at=row.link_expires_at,
        link_expired=bool(row.link_expired), banned_until=row.banned_until,
        last_error=row.last_error, paused=row.queue_paused_at is not None,
        pause_reason=row.queue_pause_reason, mode=mode)


def _read_session(owner_id: uuid.UUID) -> WaSession | None:
    with new_session() as s:
        return s.exec(select(WaSession).where(WaSession.user_id == owner_id)).first()


def _event_of(state: LinkState, method: str | None = None) -> SessionEvent:
    return SessionEvent(status=state.status, phone_number=state.phone_number,
                        qr_code=state.qr_code, pairing_code=state.pairing_code,
                        link_method=method, link_expires_at=state.expires_at,
                        link_expired=state.expired, banned_until=state.banned_until,
                        error=state.error)


def _gateway():
    from fibernode.whatsapp import get_gateway

    return get_gateway()


def _require_connected(session: Session, owner_id: uuid.UUID) -> None:
    if not wa_numbers.session_connected(session, owner_id):
        raise Conflict(NOT_CONNECTED_MESSAGE)


def _text_problem(text: str) -> str | None:
    if not text.strip():
        return "Isi pesan wajib diisi."
    if len(text) > MAX_TEXT:
        return f"Isi pesan maksimal {MAX_TEXT} karakter (sekarang {len(text)})."
    return None


# --- session -------------------------------------------------------------------------------


def get_status(actor: Actor, owner_id: uuid.UUID | None = None) -> SessionView:
    """The WhatsApp link of the actor (or, for the superadmin, of ``owner_id``).

    Raises:
        PermissionDenied: a mitra names another owner.
        NotFound: the superadmin names an unknown user.
    """
    owner_id = _owner(actor, owner_id)
    return _view(owner_id, _read_session(owner_id))


def start_link(actor: Actor, method: str = "qr", phone: str | None = None) -> SessionView:
    """Start linking the actor's own number by QR (``qr``) or pairing code (``code``).

    Args:
        actor: The superadmin or mitra linking its number.
        method: ``qr`` (scan in WhatsApp) or ``code`` (enter a pairing code).
        phone: The number being linked (``62…``), required for a pairing code.

    Raises:
        ValidationFailed: unknown method, or a missing / invalid phone for ``code``.
        Conflict: already connected, or the gateway could not start.
    """
    owner_id = _require_person(actor)
    if method not in ("qr", "code"):
        raise ValidationFailed({"method": "Metode penautan harus 'qr' atau 'code'."})
    number = _phone(phone) if method == "code" else None
    row = _read_session(owner_id)
    if row is not None and row.status == WaSessionStatus.CONNECTED:
        raise Conflict("WhatsApp sudah terhubung. Putuskan dulu untuk menautkan nomor lain.")
    try:
        state = _gateway().start_link(owner_id, method=method, phone=number)
    except GatewayError as exc:
        raise Conflict(exc.message) from exc
    with unit_of_work(actor) as uow:
        uow.audit("wa.link.start", "wa_sessions", row.id if row else None, owner_id=owner_id,
                  method=method, phone=number)
    record_event(owner_id, _event_of(state, method), source="link")
    return _view(owner_id, _read_session(owner_id))


def refresh_link(actor: Actor) -> SessionView:
    """Ask the gateway for the current QR / pairing state while linking (page polling).

    Only a link in progress is asked about; other states are the stored ones (the
    gateway reports changes by itself).
    """
    owner_id = _require_person(actor)
    row = _read_session(owner_id)
    if row is None or row.status != WaSessionStatus.CONNECTING:
        return _view(owner_id, row)
    try:
        state = _gateway().link_state(owner_id)
    except GatewayError as exc:
        record_event(owner_id, SessionEvent(error=exc.message), source="link")
    else:
        record_event(owner_id, _event_of(state), source="link")
    return _view(owner_id, _read_session(owner_id))


def logout(actor: Actor, owner_id: uuid.UUID | None = None) -> SessionView:
    """Unlink the number (the actor's own; the superadmin may name an owner).

    Raises:
        Conflict: the gateway could not log out.
    """
    owner_id = _owner(actor, owner_id)
    row = _read_session(owner_id)
    try:
        _gateway().logout(owner_id)
    except GatewayError as exc:
        raise Conflict(exc.message) from exc
    with unit_of_work(actor) as uow:
        uow.audit("wa.logout", "wa_sessions", row.id if row else None, owner_id=owner_id,
                  phone=row.phone_number if row else None)
    record_event(owner_id, SessionEvent(status=WaSessionStatus.DISCONNECTED, clear_link=True,
                                        link_expired=False), source="logout")
    return _view(owner_id, _read_session(owner_id))


# --- single messages -----------------------------------------------------------------------


def send_test(actor: Actor, phone: str, text: str | None = None) -> uuid.UUID:
    """Send a test message from the actor's own number (direct).

    Returns:
        The message log id.

    Raises:
        ValidationFailed: invalid phone or text.
        Conflict: the actor's WhatsApp is not connected.
    """
    owner_id = _require_person(actor)
    phone = _phone(phone)
    text = clean(text)
    with unit_of_work(actor) as uow:
        s = uow.session
        _require_connected(s, owner_id)
        if not text:
            me = s.get(User, owner_id)
            text = TEST_TEXT.format(app="FiberNode", usaha=me.business_name)
        if (p := _text_problem(text)):
            raise ValidationFailed({"text": p})
        log_id = wa_direct.record_direct(
            uow, owner_id=owner_id, customer_id=None, invoice_id=None, message_type="test",
            phone=phone, content=text, idempotency_key=f"test:{uuid.uuid4()}",
            sent_by=owner_id)
        uow.audit("wa.send_test", "wa_message_logs", log_id, phone=phone)
    return log_id


def check_number(actor: Actor, phone: str) -> bool | None:
    """Whether a number is on WhatsApp (cached; else asked through the actor's session).

    Returns:
        ``True`` / ``False``, or ``None`` when the gateway could not tell.

    Raises:
        ValidationFailed: invalid phone.
        Conflict: no cached answer and the actor's WhatsApp is not connected.
    """
    owner_id = _require_person(actor)
    phone = _phone(phone)
    with new_session() as s:
        cached = wa_numbers.known(s, [phone])
        if phone in cached:
            return cached[phone]
        _require_connected(s, owner_id)
    return wa_numbers.check_number(_gateway(), owner_id, phone)


def _customer(session: Session, actor: Actor, customer_id: Any) -> Customer:
    try:
        customer_id = uuid.UUID(str(customer_id))
    except ValueError:
        raise NotFound(CUSTOMER_NOT_FOUND) from None
    cust = session.exec(scoped(select(Customer).where(Customer.id == customer_id),
                               actor, Customer.owner_id)).first()
    if cust is None:
        raise NotFound(CUSTOMER_NOT_FOUND)
    return cust


def _invoice_of(session: Session, cust: Customer, invoice_id: Any, *,
                paid: bool) -> Invoice:
    """The named invoice of the subscriber, or its newest open (``paid``: paid) one."""
    q = select(Invoice).where(Invoice.customer_id == cust.id)
    if invoice_id is not None:
        try:
            invoice_id = uuid.UUID(str(invoice_id))
        except ValueError:
            raise NotFound(INVOICE_NOT_FOUND) from None
        inv = session.exec(q.where(Invoice.id == invoice_id)).first()
        if inv is None:
            raise NotFound(INVOICE_NOT_FOUND)
        return inv
    if paid:
        q = q.where(Invoice.paid_amount > 0).order_by(Invoice.paid_at.desc().nulls_last(),
                                                      Invoice.due_date.desc())
    else:
        q = q.where(Invoice.paid_amount < Invoice.total_amount).order_by(
            Invoice.due_date.desc())
    inv = session.exec(q.limit(1)).first()
    if inv is None:
        raise ValidationFailed({"invoice_id": NO_PAID_INVOICE if paid else NO_OPEN_INVOICE})
    return inv


def _payer_name(session: Session, inv: Invoice) -> str | None:
    if inv.paid_by is None:
        return None
    user = session.get(User, inv.paid_by)
    return user.name if user else None


def _basic_values(session: Session, cust: Customer, inv: Invoice | None) -> dict[str, Any]:
    """Placeholder values for a free text about a subscriber (and its invoice)."""
    if inv is not None:
        return wa_templates.reminder_values(wa_direct.reminder_row(session, inv.id))
    owner = session.get(User, cust.owner_id)
    return wa_templates.isolation_values(
        customer_name=cust.name, business_name=owner.business_name,
        bank_name=owner.bank_name, bank_account=owner.bank_account,
        bank_holder=owner.bank_holder)


def _compose(session: Session, cust: Customer, template: str, invoice_id: Any,
             text: str | None = None) -> tuple[str, Invoice | None]:
    if template not in MANUAL_TEMPLATES:
        raise ValidationFailed({"template": "Template pesan tidak dikenal."})
    if template == "isolation":
        inv = wa_direct.latest_open_invoice(session, cust.id)
        inv = session.get(Invoice, inv) if inv else None
        if text is not None:
            return wa_templates.render(text, _basic_values(session, cust, None)), inv
        return wa_direct.isolation_text(session, cust), inv
    if template == "receipt":
        inv = _invoice_of(session, cust, invoice_id, paid=True)
        if inv.paid_amount <= 0:
            raise Conflict("Tagihan ini belum dibayar; belum ada nota untuk dikirim.")
        if text is not None:
            return text, inv
        _i, _c, body = wa_direct.receipt_text(session, inv.id,
                                              recorded_by=_payer_name(session, inv))
        return body, inv
    if template == "reminder":
        inv = _invoice_of(session, cust, invoice_id, paid=False)
        if inv.paid_amount >= inv.total_amount:
            raise Conflict("Tagihan ini sudah lunas.")
        if text is None:
            key = wa_templates.reminder_key_for(inv.due_date)
            text = wa_templates.load_templates()[key]
        return wa_templates.render(text, wa_templates.reminder_values(
            wa_direct.reminder_row(session, inv.id))), inv
    inv = _invoice_of(session, cust, invoice_id, paid=False) if invoice_id else None
    if text is None:
        return "", inv
    return wa_templates.render(text, _basic_values(session, cust, inv)), inv


def compose(actor: Actor, customer_id: uuid.UUID, template: str,
            invoice_id: uuid.UUID | None = None) -> str:
    """The message a manual send would carry, for the editable preview.

    Args:
        actor: Superadmin, or the mitra owning the subscriber.
        customer_id: The subscriber.
        template: ``reminder``, ``receipt``, ``isolation`` or ``custom`` (empty text).
        invoice_id: The invoice meant (default: the newest open one for a reminder,
            the newest paid one for a receipt).

    Raises:
        NotFound: no such subscriber / invoice in the actor's scope.
        ValidationFailed: unknown template, or no invoice to talk about.
    """
    _require_person(actor)
    with new_session() as s:
        cust = _customer(s, actor, customer_id)
        return _compose(s, cust, template, invoice_id)[0]


def _reminder_key(session: Session, inv: Invoice, today: date) -> str:
    """The day's reminder key of an invoice, refusing a second reminder that day.

    The key is the queue's (``reminder:<invoice>:<day>``), so the gateway also refuses
    to deliver it twice; after a failed attempt a fresh key is used.
    """
    key = f"reminder:{inv.id}:{today.isoformat()}"
    start = datetime.combine(today, time.min, tzinfo=clock.JAKARTA)
    if inv.reminder_sent_at is not None and inv.reminder_sent_at >= start:
        raise Conflict(REMINDER_TODAY)
    logged = session.exec(select(WaMessageLog.status).where(
        WaMessageLog.invoice_id == inv.id, WaMessageLog.message_type == "reminder",
        WaMessageLog.sent_at >= start,
        WaMessageLog.status.not_in(("failed", "skipped")))).first()
    if logged is not None:
        raise Conflict(REMINDER_TODAY)
    queued = session.exec(select(WaMessageQueue.status).where(
        WaMessageQueue.idempotency_key == key)).first()
    if queued is not None and queued in ("sent", "sending", "uncertain"):
        raise Conflict(REMINDER_TODAY)
    if queued == "pending":
        raise Conflict(REMINDER_QUEUED_TODAY)
    taken = session.exec(select(WaMessageLog.id).where(
        WaMessageLog.idempotency_key == key)).first()
    return key if taken is None and queued is None else f"{key}:{uuid.uuid4().hex[:8]}"


def send_manual(actor: Actor, customer_id: uuid.UUID, template: str,
                text: str | None = None, invoice_id: uuid.UUID | None = None) -> uuid.UUID:
    """Send one message to a subscriber now, from its owner's number (direct).

    Args:
        actor: Superadmin, or the mitra owning the subscriber.
        customer_id: The subscriber.
        template: ``reminder``, ``receipt``, ``isolation`` or ``custom``.
        text: The (edited) text; required for ``custom``; ``None`` uses the template.
            Placeholders in it are filled from the subscriber's data.
        invoice_id: The invoice meant (see :func:`compose`).

    Returns:
        The message log id.

    Raises:
        NotFound: no such subscriber / invoice in the actor's scope.
        ValidationFailed: unknown template, empty or too long text, no invoice.
        Conflict: the owner's WhatsApp is not connected ("Hubungkan WhatsApp terlebih
            dahulu."), or a reminder for that invoice already went out today.
    """
    _require_person(actor)
    if text is not None:
        text = text.replace("\r\n", "\n").strip()
    if template == "custom" and not text:
        raise ValidationFailed({"text": "Isi pesan wajib diisi."})
    with unit_of_work(actor) as uow:
        s = uow.session
        cust = _customer(s, actor, customer_id)
        _require_connected(s, cust.owner_id)
        body, inv = _compose(s, cust, template, invoice_id, text)
        if (p := _text_problem(body)):
            raise ValidationFailed({"text": p})
        key = f"manual:{uuid.uuid4()}"
        if template == "reminder" and inv is not None:
            key = _reminder_key(s, inv, clock.today())
        log_id = wa_direct.record_direct(
            uow, owner_id=cust.owner_id, customer_id=cust.id,
            invoice_id=inv.id if inv else None, message_type=template, phone=cust.phone,
            content=body, idempotency_key=key, sent_by=actor.user_id)
        uow.audit("wa.send_manual", "wa_message_logs", log_id, customer_id=cust.id,
                  invoice_id=inv.id if inv else None, template=template)
    return log_id


def _visible_invoice(session: Session, actor: Actor, invoice_id: Any) -> Invoice:
    try:
        invoice_id = uuid.UUID(str(invoice_id))
    except ValueError:
        raise NotFound(INVOICE_NOT_FOUND) from None
    inv = session.exec(scoped(select(Invoice).where(Invoice.id == invoice_id), actor,
                              Invoice.owner_id)).first()
    if inv is None:
        raise NotFound(INVOICE_NOT_FOUND)
    return inv


def resend_receipt(actor: Actor, invoice_id: uuid.UUID) -> uuid.UUID:
    """Send an invoice's receipt again, from its owner's number (direct).

    Raises:
        NotFound: no such invoice in the actor's scope.
        Conflict: nothing paid yet, or the owner's WhatsApp is not connected.
    """
    _require_person(actor)
    with unit_of_work(actor) as uow:
        s = uow.session
        inv = _visible_invoice(s, actor, invoice_id)
        if inv.status not in (PaymentStatus.PAID, PaymentStatus.PARTIAL) or \
                inv.paid_amount <= 0:
            raise Conflict("Tagihan ini belum dibayar; belum ada nota untuk dikirim.")
        _require_connected(s, inv.owner_id)
        log_id = wa_direct.record_receipt(uow, inv.id, key=f"receipt-resend:{uuid.uuid4()}",
                                          recorded_by=_payer_name(s, inv))
        uow.audit("wa.resend_receipt", "wa_message_logs", log_id, invoice_id=inv.id)
    return log_id


def resend_reminder(actor: Actor, invoice_id: uuid.UUID) -> uuid.UUID:
    """Send a payment reminder for an invoice now (direct), at most once a day.

    Raises:
        NotFound: no such invoice in the actor's scope.
        Conflict: already paid, the owner's WhatsApp is not connected, or a reminder
            for this invoice already went out (or is queued) today (Jakarta).
    """
    _require_person(actor)
    with unit_of_work(actor) as uow:
        s = uow.session
        inv = _visible_invoice(s, actor, invoice_id)
        if inv.paid_amount >= inv.total_amount:
            raise Conflict("Tagihan ini sudah lunas.")
        _require_connected(s, inv.owner_id)
        today = clock.today()
        key = _reminder_key(s, inv, today)
        row = wa_direct.reminder_row(s, inv.id, today)
        text = wa_templates.render(
            wa_templates.load_templates()[wa_templates.reminder_key_for(inv.due_date, today)],
            wa_templates.reminder_values(row))
        cust = row["customer"]
        log_id = wa_direct.record_direct(
            uow, owner_id=inv.owner_id, customer_id=cust.id, invoice_id=inv.id,
            message_type="reminder", phone=cust.phone, content=text, idempotency_key=key,
            sent_by=actor.user_id)
        uow.audit("wa.resend_reminder", "wa_message_logs", log_id, invoice_id=inv.id)
    return log_id


# --- bulk ----------------------------------------------------------------------------------


def _bulk_recipients(session: Session, actor: Actor, customer_ids: list[Any] | None,
                     filter_: str | None, template: str, text: str | None,
                     ) -> tuple[list[_Recipient], list[SkippedRecipient]]:
    if template not in BULK_TEMPLATES:
        raise ValidationFailed({"template": "Template pesan massal harus pengingat atau "
                                            "pesan bebas."})
    if text is not None:
        text = text.replace("\r\n", "\n").strip()
        if (p := _text_problem(text)):
            raise ValidationFailed({"text": p})
    elif template == "custom":
        raise ValidationFailed({"text": "Isi pesan wajib diisi."})
    if filter_ is not None and filter_ not in BULK_FILTERS:
        raise ValidationFailed({"filter": "Filter penerima tidak dikenal."})
    if not customer_ids and filter_ is None:
        raise ValidationFailed({"customer_ids": "Pilih minimal satu pelanggan atau filter."})
    today = clock.today()
    open_ = Invoice.paid_amount < Invoice.total_amount
    conds: list[Any] = [open_]
    if filter_ == "due_today":
        conds.append(Invoice.due_date == today)
    elif filter_ == "overdue":
        conds.append(Invoice.due_date < today)
    q = select(Customer)
    if customer_ids:
        ids = []
        for raw in customer_ids:
            try:
                ids.append(uuid.UUID(str(raw)))
            except ValueError:
                continue
        q = q.where(Customer.id.in_(ids))
    if filter_ is not None:
        q = q.where(sa.exists().where(Invoice.customer_id == Customer.id, *conds))
    customers = session.exec(scoped(q, actor, Customer.owner_id)
                             .order_by(sa.func.lower(Customer.name))).all()
    if not customers:
        return [], []
    cust_ids = [c.id for c in customers]
    # The newest matching open invoice of each subscriber.
    invoices: dict[uuid.UUID, Invoice] = {}
    for inv in session.exec(select(Invoice).where(Invoice.customer_id.in_(cust_ids), *conds)
                            .order_by(Invoice.due_date)).all():
        invoices[inv.customer_id] = inv
    owners = {u.id: u for u in session.exec(select(User).where(
        User.id.in_({c.owner_id for c in customers}))).all()}
    statuses = dict(session.exec(select(WaSession.user_id, WaSession.status).where(
        WaSession.user_id.in_(list(owners)))).all())
    packages = {p.id: p for p in session.exec(select(Package).where(
        Package.id.in_({c.package_id for c in customers}))).all()}
    on_wa = wa_numbers.known(session, [c.phone for c in customers])
    templates = wa_templates.load_templates()
    out: list[_Recipient] = []
    skipped: list[SkippedRecipient] = []
    for cust in customers:
        owner = owners[cust.owner_id]
        inv = invoices.get(cust.id)
        reason = None
        if cust.status == CustomerStatus.INACTIVE:
            reason = "Pelanggan nonaktif."
        elif phone_problem(cust.phone):
            reason = "Nomor telepon tidak valid."
        elif on_wa.get(cust.phone) is False:
            reason = "Nomor tidak terdaftar di WhatsApp."
        elif template == "reminder" and inv is None:
            reason = "Tidak ada tagihan yang belum lunas."
        elif statuses.get(owner.id) != WaSessionStatus.CONNECTED:
            reason = f"WhatsApp {owner.business_name} belum terhubung."
        if reason:
            skipped.append(SkippedRecipient(cust.id, cust.name, reason))
            continue
        if inv is not None:
            values = wa_templates.reminder_values(wa_direct.reminder_row_of(
                inv, cust, packages[cust.package_id], owner, today))
        else:
            values = _basic_values(session, cust, None)
        body = text if text is not None else templates[
            wa_templates.reminder_key_for(inv.due_date, today)]
        # Bulk messages are queued and paced: a greeting that fits any hour.
        out.append(_Recipient(cust, inv, owner, wa_templates.render(body, values,
                                                                    queued=True)))
    return out, skipped


def preview_bulk(actor: Actor, *, customer_ids: list[uuid.UUID] | None = None,
                 filter: str | None = None, template: str,  # noqa: A002 - API name
                 text: str | None = None) -> BulkPreview:
    """What a bulk send would do (nothing is queued).

    Args:
        actor: Superadmin (every owner's subscribers) or mitra (its own).
        customer_ids: Chosen subscribers (checkboxes); combined with ``filter`` if both.
        filter: ``unpaid``, ``due_today`` or ``overdue`` (open invoices).
        template: ``reminder`` (the fitting reminder template) or ``custom``.
        text: Custom (or edited) text; placeholders are filled per subscriber.

    Raises:
        ValidationFailed: unknown template / filter, no recipients chosen, bad text.
    """
    _require_person(actor)
    with new_session() as s:
        recipients, skipped = _bulk_recipients(s, actor, customer_ids, filter, template, text)
    return BulkPreview(count=len(recipients),
                       sample=recipients[0].text if recipients else "",
                       skipped=skipped[:SKIPPED_SHOWN], skipped_count=len(skipped),
                       owners=len({r.owner.id for r in recipients}))


def send_bulk(actor: Actor, *, customer_ids: list[uuid.UUID] | None = None,
              filter: str | None = None, template: str,  # noqa: A002 - API name
              text: str | None = None) -> int:
    """Queue a message for many subscribers, each from its owner's number (paced).

    Same arguments as :func:`preview_bulk`. Messages are logged as ``custom``.

    Returns:
        How many messages were queued.

    Raises:
        ValidationFailed: as :func:`preview_bulk`.
        Conflict: nobody to send to, because WhatsApp is not connected or every
            subscriber was left out.
    """
    from fibernode.services import wa_queue

    _require_person(actor)
    with new_session() as s:
        recipients, skipped = _bulk_recipients(s, actor, customer_ids, filter, template, text)
    if not recipients:
        if any(r.reason.startswith("WhatsApp ") for r in skipped):
            raise Conflict(NOT_CONNECTED_MESSAGE)
        raise Conflict("Tidak ada penerima yang bisa dikirimi pesan.")
    by_owner: dict[uuid.UUID, list[Any]] = {}
    batch = uuid.uuid4().hex[:12]
    for r in recipients:
        by_owner.setdefault(r.owner.id, []).append(wa_queue.BulkItem(
            customer_id=r.customer.id, invoice_id=r.invoice.id if r.invoice else None,
            phone=r.customer.phone, content=r.text,
            idempotency_key=f"bulk:{batch}:{r.customer.id}"))
    ratelimit.require_quota(actor, "bulk-send", ratelimit.BULK_SENDS_PER_5_MIN, 300)
    queued = 0
    # One transaction for every owner's messages: all are queued, or none.
    with unit_of_work(actor) as uow:
        for owner_id, items in by_owner.items():
            queued += int(wa_queue.enqueue_bulk(actor, owner_id=owner_id, items=items,
                                                message_type="custom",
                                                created_by=actor.user_id, uow=uow) or 0)
        uow.audit("wa.send_bulk", "wa_message_queue", None, template=template, filter=filter,
                  queued=queued, skipped=len(skipped), owners=[str(o) for o in by_owner],
                  batch=batch)
    return queued


# --- logs and alerts -----------------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=clock.JAKARTA)


def list_logs(actor: Actor, *, page: int = 1, message_type: str | None = None,
              status: str | None = None, date_from: date | None = None,
              date_to: date | None = None, owner_id: uuid.UUID | None = None,
              per_page: int | None = None) -> LogPage:
    """A page of the message log (20 per page, newest first), filtered in SQL.

    Args:
        actor: Superadmin (every owner, or ``owner_id``) or mitra (its own only).
        page: 1-based page.
        message_type: ``reminder``, ``receipt``, ``isolation``, ``custom``, ``test``.
        status: ``pending``, ``sending``, ``sent``, ``delivered``, ``read``, ``failed``.
        date_from: First day (Jakarta), inclusive.
        date_to: Last day (Jakarta), inclusive.
        owner_id: Only this owner's messages (a mitra may name only itself).
        per_page: Rows a page (default 20, at most 100).

    Raises:
        PermissionDenied: a mitra names another owner.
        ValidationFailed: unknown type or status, ``date_to`` before ``date_from``, or
            a bad ``per_page``.
    """
    _require_person(actor)
    size = check_per_page(per_page, PAGE_SIZE)
    if owner_id is not None and owner_id != actor.user_id and not actor.is_superadmin:
        raise PermissionDenied()
    problems = {}
    if message_type and message_type not in MESSAGE_TYPES:
        problems["message_type"] = "Jenis pesan tidak dikenal."
    if status and status not in LOG_STATUSES:
        problems["status"] = "Status pesan tidak dikenal."
    if date_from and date_to and date_to < date_from:
        problems["date_to"] = "Tanggal akhir tidak boleh sebelum tanggal awal."
    if problems:
        raise ValidationFailed(problems)
    conds: list[Any] = []
    if message_type:
        conds.append(WaMessageLog.message_type == message_type)
    if status:
        conds.append(WaMessageLog.status == status)
    if date_from:
        conds.append(WaMessageLog.sent_at >= _day_start(date_from))
    if date_to:
        conds.append(WaMessageLog.sent_at < _day_start(date_to + timedelta(days=1)))
    if owner_id is not None:
        conds.append(WaMessageLog.owner_id == owner_id)
    page = max(1, int(page or 1))
    base = scoped(select(WaMessageLog, Customer.name, User.business_name,
                         WaMessageQueue.idempotency_key)
                  .outerjoin(Customer, Customer.id == WaMessageLog.customer_id)
                  .outerjoin(User, User.id == WaMessageLog.owner_id)
                  .outerjoin(WaMessageQueue, WaMessageQueue.id == WaMessageLog.queue_id)
                  .where(*conds), actor, WaMessageLog.owner_id)
    count_q = scoped(select(sa.func.count()).select_from(WaMessageLog).where(*conds),
                     actor, WaMessageLog.owner_id)
    now = clock.now()
    with new_session() as s:
        rows = s.exec(base.order_by(WaMessageLog.sent_at.desc(), WaMessageLog.id)
                      .offset((page - 1) * size).limit(size)).all()
        total = len(rows) if page == 1 and len(rows) < size else s.exec(count_q).one()
    items = [LogView(
        id=m.id, owner_id=m.owner_id, owner_name=owner or "", customer_id=m.customer_id,
        customer_name=name or "", invoice_id=m.invoice_id, message_type=m.message_type,
        type_label=TYPE_LABELS.get(m.message_type, m.message_type), phone=m.phone,
        content=m.content, status=m.status, status_label=status_label(m.status),
        error_message=m.error_message, sent_at=m.sent_at, sent_at_text=date_time(m.sent_at),
        delivered_at=m.delivered_at, read_at=m.read_at,
        can_resend=wa_direct.can_resend(m.status, m.sent_at, now=now) and (
            m.queue_id is None or queued_key == m.idempotency_key))
        for m, name, owner, queued_key in rows]
    return LogPage(items, int(total), page, size)


def resend_message(actor: Actor, log_id: uuid.UUID) -> None:
    """Resend a failed, uncertain or stuck message from the log, on purpose.

    A queued message goes back to its queue under a new key
    (:func:`wa_queue.retry_message`), a direct one (receipt, isolir notice, manual) is
    sent again as a new message (:func:`wa_direct.resend`). Either way the old attempt
    stays in the log and the subscriber may receive the message twice
    (:data:`RESEND_WARNING`, shown before the owner confirms).

    Raises:
        NotFound: no such message in the actor's scope.
        Conflict: not failed, uncertain or stuck, or already resent.
    """
    _require_person(actor)
    with new_session() as s:
        row = s.exec(scoped(select(WaMessageLog.queue_id, WaMessageLog.idempotency_key)
                            .where(WaMessageLog.id == log_id), actor,
                            WaMessageLog.owner_id)).first()
        if row is None:
            raise NotFound(wa_direct.NOT_FOUND_MESSAGE)
        queue_id, key = row
        current = None if queue_id is None else s.exec(select(
            WaMessageQueue.idempotency_key).where(WaMessageQueue.id == queue_id)).first()
    if queue_id is None:
        wa_direct.resend(actor, log_id)
        return
    if current != key:
        raise Conflict(ALREADY_RESENT)
    wa_queue.retry_message(actor, queue_id)


def status_label(status: str, mode: str | None = None) -> str:
    """What a user reads for a message status.

    Args:
        status: A ``wa_message_logs.status``.
        mode: ``WA_MODE`` (default: this process's); in outbox mode nothing is sent.

    Returns:
        The Indonesian label; "sent" is "Dicatat (mode uji — tidak dikirim)" in outbox mode.
    """
    if status == "sent" and (mode or get_settings().wa_mode) == "outbox":
        return OUTBOX_SENT_LABEL
    return STATUS_TEXT.get(status, status)


def _spike_text(failed: int, total: int) -> str | None:
    if failed >= SPIKE_MIN_FAILED and total and failed / total >= SPIKE_MIN_RATIO:
        return (f"Banyak pesan WhatsApp gagal dalam 1 jam terakhir ({failed} dari {total}). "
                "Periksa koneksi WhatsApp dan antrian pesan.")
    return None


def _hour_counts(session: Session, owner_ids: list[uuid.UUID] | None
                 ) -> dict[uuid.UUID, tuple[int, int]]:
    since = clock.now() - timedelta(hours=1)
    failed = sa.func.sum(sa.case((WaMessageLog.status == "failed", 1), else_=0))
    q = (select(WaMessageLog.owner_id, failed, sa.func.count())
         .where(WaMessageLog.sent_at >= since,
                WaMessageLog.status.in_(("sent", "delivered", "read", "failed")))
         .group_by(WaMessageLog.owner_id))
    if owner_ids is not None:
        q = q.where(WaMessageLog.owner_id.in_(owner_ids))
    return {o: (int(f or 0), int(t)) for o, f, t in session.exec(q).all() if o is not None}


def failure_spike(actor: Actor, owner_id: uuid.UUID | None = None) -> str | None:
    """A warning when many of the last hour's messages failed (≥ 5 and ≥ 30 %).

    Args:
        actor: Superadmin or mitra.
        owner_id: Whose messages (default: the actor's own; a mitra only its own).
    """
    owner_id = _owner(actor, owner_id)
    with new_session() as s:
        failed, total = _hour_counts(s, [owner_id]).get(owner_id, (0, 0))
    return _spike_text(failed, total)


def _session_notices(row: WaSession, who: str | None) -> list[Notice]:
    """Problems of one session; ``who`` names another owner (superadmin's view)."""
    prefix = f"{who}: " if who else ""
    status = WaSessionStatus(row.status)
    out: list[Notice] = []
    if status == WaSessionStatus.BANNED:
        until = f" sampai {date_time(row.banned_until)}" if row.banned_until else ""
        number = f"Nomor {row.phone_number}" if row.phone_number else "Nomor WhatsApp"
        out.append(Notice("error", prefix + "WhatsApp diblokir sementara",
                          f"{number} diblokir oleh WhatsApp{until}. Pengiriman dihentikan.",
                          row.user_id))
    elif status == WaSessionStatus.LOGGED_OUT:
        out.append(Notice("error", prefix + "WhatsApp keluar dari perangkat",
                          "Sesi WhatsApp dikeluarkan. Scan ulang kode QR untuk "
                          "menghubungkan kembali.", row.user_id))
    elif status == WaSessionStatus.OUTDATED:
        out.append(Notice("error", prefix + "Versi klien WhatsApp usang",
                          "WhatsApp menolak versi klien. Perbarui layanan WhatsApp "
                          "lalu hubungkan ulang.", row.user_id))
    elif status == WaSessionStatus.DISCONNECTED and (row.last_connected_at or not who):
        out.append(Notice("warning", prefix + "WhatsApp tidak terhubung",
                          "Pengingat, nota dan pemberitahuan isolir tidak dapat dikirim "
                          "sampai WhatsApp dihubungkan.", row.user_id))
    elif status == WaSessionStatus.CONNECTING and row.link_expired and not who:
        out.append(Notice("info", "Kode QR kedaluwarsa",
                          "Buat kode QR baru untuk menghubungkan WhatsApp.", row.user_id))
    if row.queue_paused_at is not None:
        out.append(Notice("warning", prefix + "Antrian pesan dijeda",
                          row.queue_pause_reason or "Antrian pesan WhatsApp dijeda.",
                          row.user_id, kind="queue"))
    return out


def notifications(actor: Actor) -> list[Notice]:
    """The bell's entries: the actor's session problems, a paused queue, failure spikes.

    The superadmin also sees mitra sessions that need attention (dropped, logged out,
    banned, outdated, queue paused, failures spiking).
    """
    me = _require_person(actor)
    notices: list[Notice] = []
    if get_settings().wa_mode == "outbox":
        notices.append(Notice("warning", OUTBOX_NOTICE_TITLE, OUTBOX_NOTICE_TEXT, me,
                              kind="mode"))
    with new_session() as s:
        own = s.exec(select(WaSession).where(WaSession.user_id == me)).first()
        if own is None:
            notices.append(Notice("warning", "WhatsApp belum terhubung",
                                  "Hubungkan WhatsApp agar pengingat dan nota terkirim "
                                  "otomatis.", me))
        else:
            notices += _session_notices(own, None)
        counts = _hour_counts(s, None if actor.is_superadmin else [me])
        if (text := _spike_text(*counts.get(me, (0, 0)))):
            notices.append(Notice("warning", "Banyak pesan gagal", text, me, kind="spike"))
        if actor.is_superadmin:
            rows = s.exec(select(WaSession, User.business_name)
                          .join(User, User.id == WaSession.user_id)
                          .where(WaSession.user_id != me, User.role == UserRole.MITRA,
                                 User.is_active.is_(True))
                          .order_by(User.business_name)).all()
            for row, business in rows:
                notices += _session_notices(row, business)
                if (text := _spike_text(*counts.get(row.user_id, (0, 0)))):
                    notices.append(Notice("warning", f"{business}: Banyak pesan gagal", text,
                                          row.user_id, kind="spike"))
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(notices, key=lambda n: order.get(n.level, 3))


# Statuses that stop every send of an owner (re-exported for the UI).
PROBLEM_STATUSES = RESTRICTED_STATUSES
