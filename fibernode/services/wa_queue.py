"""The anti-ban WhatsApp queue: reminders and bulk sends, paced per owner's number.

Spec "Strategi Anti-Banned WhatsApp". Three parts:

* **Enqueueing** (:func:`enqueue_reminders`, the daily job after billing, and
  :func:`enqueue_bulk`): rows in ``wa_message_queue`` with staggered ``scheduled_at``
  per session and an idempotency key, inserted in bulk with ``ON CONFLICT DO
  NOTHING`` so running a job twice queues nothing twice.
* **The worker** (:func:`run_once`, :func:`reconcile_stale`, called by the Celery
  tick). A claim is one short transaction that locks a ready session row (PostgreSQL
  ``FOR UPDATE SKIP LOCKED``; on SQLite a write takes the database's single write
  lock), moves its first due message to ``sending`` and advances the session's pacing
  state (:mod:`wa_throttle`). The send happens after that commit, outside any
  transaction; the outcome is written in a second transaction, and only then is the
  session's next send time set, counted from the end of the send. A session with a
  message in ``sending`` is never claimed, so each number has one message in flight
  and the spacing between two real sends never drops below the minimum, however many
  workers run. A worker that dies mid-send leaves ``sending``; :func:`reconcile_stale`
  asks the gateway by idempotency key and never resends blindly.
* **What the page shows** (actor-scoped): counts, a paged list, retry, cancel,
  resume after a restriction pause, and each session's pacing overview.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from fibernode import clock
from fibernode.db import insert_for, new_session
from fibernode.formatting import long_date
from fibernode.models import (
    Customer,
    CustomerStatus,
    Invoice,
    Package,
    User,
    WaMessageLog,
    WaMessageQueue,
    WaSession,
    WaSessionStatus,
)
from fibernode.services import wa_numbers, wa_sessions, wa_templates, wa_throttle
from fibernode.services.context import Actor, require_superadmin, require_user
from fibernode.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fibernode.services.paging import Page, check_per_page
from fibernode.services.scoping import can_touch_owner, scoped
from fibernode.services.uow import UnitOfWork, unit_of_work
from fibernode.services.wa_config import load_rate_config, load_reminder_offsets
from fibernode.services.wa_throttle import PacingState, RateConfig
from fibernode.whatsapp.base import (
    ErrorKind,
    Gateway,
    OutgoingMessage,
    SendResult,
    SentLookup,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 20
STATUSES = ("pending", "sending", "sent", "failed", "cancelled", "skipped", "uncertain")
MESSAGE_TYPES = frozenset({"reminder", "receipt", "isolation", "custom", "test"})
WORKER_ACTOR = "wa.queue"

PAID_REASON = "Tagihan sudah dibayar"
ISOLATED_REASON = "Pelanggan diisolir"
INACTIVE_REASON = "Pelanggan nonaktif"
DELETED_REASON = "Tagihan atau pelanggan sudah dihapus"
ALREADY_REMINDED_REASON = "Pengingat tagihan ini sudah dikirim hari ini"
NOT_ON_WHATSAPP_REASON = "Nomor tidak terdaftar di WhatsApp"
EXPIRED_DUE_REASON = "Pengingat kedaluwarsa: tanggal jatuh tempo sudah tiba"
EXPIRED_DAY_REASON = "Pengingat kedaluwarsa: tidak terkirim pada hari {day}"
UNCERTAIN_NOTE = ("Status pengiriman tidak pasti — periksa di WhatsApp lalu kirim ulang "
                  "bila perlu")
CANCELLED_BY_USER = "Dibatalkan oleh {name}"
SEND_CRASHED = "Pengiriman terhenti karena kesalahan sistem."
NOT_FOUND_MESSAGE = "Pesan antrian tidak ditemukan."
RETRY_CONFLICT = ("Hanya pesan yang gagal, tidak pasti, atau macet saat dikirim yang bisa "
                  "dikirim ulang.")
# What the log keeps of an attempt the owner chose to resend (the new one has its own row).
RESENT_NOTE = "dikirim ulang oleh {name} sebagai pesan baru"
STALE_SESSION = ("Gateway WhatsApp tidak memegang sesi ini (mis. setelah gateway dimulai "
                 "ulang); antrian menunggu sampai tersambung kembali.")
CANCEL_CONFLICT = "Hanya pesan yang masih menunggu yang bisa dibatalkan."

# Sessions a claim looks at before giving up (each one already failed a recheck).
MAX_SESSION_TRIES = 8
# Due reminders cancelled in one claim before it stops (paid in the meantime).
MAX_CANCELS_PER_CLAIM = 200
# A session whose gateway says "not connected" is asked again after at least this.
NOT_CONNECTED_BACKOFF_S = 60.0
# A message in ``sending`` this long is stuck (far beyond reconcile_stale's window): the
# owner may resend it on purpose.
STUCK_AFTER_S = 15 * 60
# How long a session the gateway confirmed as connected is trusted before asking again.
VERIFY_EVERY_S = 60.0
# An uncertain message is asked about again (the gateway may have learnt the outcome
# after its caller gave up) at most this often, for this long.
RECHECK_EVERY_S = 600.0
RECHECK_FOR = timedelta(days=2)
# A deliberate resend's key: the original key plus this and a counter (``#ulang-2``).
RESEND_MARK = "#ulang-"
# Outcomes that never reached WhatsApp: they spend none of the session's caps or spacing.
NOT_ATTEMPTS = frozenset({ErrorKind.NOT_CONNECTED, ErrorKind.INVALID,
                          ErrorKind.NOT_ON_WHATSAPP})
# Log statuses of a reminder already handed over (by a direct "kirim ulang pengingat").
_LOG_DONE = ("pending", "sending", "sent", "delivered", "read")
# The log status of a message deliberately not sent; the reason is its error_message.
SKIPPED = "skipped"

Q = WaMessageQueue.__table__
S = WaSession.__table__
L = WaMessageLog.__table__


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _log_skipped(s: Session, rows: list[dict[str, Any]]) -> None:
    """Write ``skipped`` log rows (one per idempotency key) so nothing vanishes silently.

    A key already logged as handed over (sent, delivered …) keeps its row: that message
    did go out, and the log must not say otherwise.
    """
    if not rows:
        return
    values = [{"id": uuid.uuid4(), "session_id": None, "customer_id": None,
               "invoice_id": None, "queue_id": None, "sent_by": None, **r,
               "status": SKIPPED} for r in rows]
    stmt = insert_for(s)(L)
    s.execute(stmt.on_conflict_do_update(
        index_elements=["idempotency_key"],
        set_={k: getattr(stmt.excluded, k) for k in ("status", "error_message", "sent_at",
                                                     "queue_id")},
        where=L.c.status.not_in(_LOG_DONE)), values)


# --- enqueueing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkItem:
    """One message of a bulk send (built by the caller, content already rendered)."""

    customer_id: uuid.UUID | None
    invoice_id: uuid.UUID | None
    phone: str
    content: str
    idempotency_key: str


@dataclass
class EnqueueResult:
    """What the daily reminder job queued.

    Attributes:
        date: The run date (Jakarta).
        offsets: Reminder days relative to the due date that were enabled.
        enqueued: New queue rows.
        already_queued: Reminders already in the queue for this date (a re-run).
        already_sent: Reminders already sent directly today ("kirim ulang pengingat").
        not_on_whatsapp: Subscribers skipped because their number has no WhatsApp.
        by_owner: New rows per owner id (text).
    """

    date: date
    offsets: list[int]
    enqueued: int = 0
    already_queued: int = 0
    already_sent: int = 0
    not_on_whatsapp: int = 0
    by_owner: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (task results, audit)."""
        out = asdict(self)
        out["date"] = self.date.isoformat()
        return out


def reminder_key(invoice_id: uuid.UUID, on: date) -> str:
    """The idempotency key of an invoice's reminder on a day (one per invoice per day)."""
    return f"reminder:{invoice_id}:{on.isoformat()}"


def _not_on_whatsapp(session: Session, phones: Iterable[str]) -> set[str]:
    answers = wa_numbers.known(session, phones)
    return {phone for phone, on in answers.items() if not on}


def _queue_row(*, session_id: uuid.UUID, owner_id: uuid.UUID, customer_id, invoice_id,
               message_type: str, phone: str, content: str, scheduled_at: datetime,
               key: str, max_retries: int, now: datetime, offset: int | None = None,
               created_by: uuid.UUID | None = None, priority: int = 0) -> dict[str, Any]:
    return {"id": uuid.uuid4(), "session_id": session_id, "owner_id": owner_id,
            "customer_id": customer_id, "invoice_id": invoice_id,
            "message_type": message_type, "phone": phone, "content": content,
            "priority": priority, "status": "pending", "retry_count": 0,
            "max_retries": max_retries, "scheduled_at": scheduled_at, "sent_at": None,
            "error_message": None, "idempotency_key": key, "reminder_offset": offset,
            "claimed_at": None, "claimed_by": None, "provider_message_id": None,
            "created_by": created_by, "created_at": now, "updated_at": now}


# Columns inserted in bulk on PostgreSQL, with their array item types (the rest are NULL).
_PG_ARRAY_COLUMNS = (
    ("id", sa.Uuid()), ("session_id", sa.Uuid()), ("owner_id", sa.Uuid()),
    ("customer_id", sa.Uuid()), ("invoice_id", sa.Uuid()), ("message_type", sa.String()),
    ("phone", sa.String()), ("content", sa.Text()), ("priority", sa.Integer()),
    ("status", sa.String()), ("retry_count", sa.Integer()), ("max_retries", sa.Integer()),
    ("scheduled_at", sa.DateTime(timezone=True)), ("idempotency_key", sa.String()),
    ("reminder_offset", sa.Integer()), ("created_by", sa.Uuid()),
    ("created_at", sa.DateTime(timezone=True)), ("updated_at", sa.DateTime(timezone=True)))


def _pg_bulk_insert():
    """``INSERT … SELECT * FROM unnest(:col1[], :col2[], …) ON CONFLICT DO NOTHING``."""
    from sqlalchemy.dialects import postgresql as pg

    names = [name for name, _ in _PG_ARRAY_COLUMNS]
    arrays = [sa.cast(sa.bindparam(name), pg.ARRAY(kind)) for name, kind in _PG_ARRAY_COLUMNS]
    rows = sa.func.unnest(*arrays).table_valued(*names).render_derived("r")
    return (pg.insert(Q).from_select(names, sa.select(*[rows.c[n] for n in names]))
            .on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(Q.c.id))


def _insert_rows(session: Session, rows: list[dict[str, Any]]) -> set[uuid.UUID]:
    """Insert queue rows, skipping keys already queued; returns the ids inserted."""
    if not rows:
        return set()
    if _is_pg(session):
        # One statement over arrays: thousands of rows in a few milliseconds, where a
        # multi-row VALUES list of the same size spends most of its time being parsed.
        params = {c: [r[c] for r in rows] for c, _ in _PG_ARRAY_COLUMNS}
        return set(session.execute(_pg_bulk_insert(), params).scalars().all())
    stmt = (insert_for(session)(Q).on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(Q.c.id))
    return set(session.execute(stmt, rows).scalars().all())


def _start_time(now: datetime, config: RateConfig) -> datetime:
    # Queued during quiet hours: count the spacing from their end, not from now.
    return wa_throttle.quiet_end_after(now, config)


def enqueue_reminders(actor: Actor, today: date | None = None, *,
                      now: datetime | None = None, config: RateConfig | None = None,
                      offsets: list[int] | None = None,
                      rng: random.Random | None = None) -> EnqueueResult:
    """Queue today's reminders (system job after billing, or the superadmin).

    For each enabled offset, every open invoice (not fully paid) whose due date is
    ``today - offset`` (H-1: due tomorrow) of an active subscriber gets one message,
    rendered from that offset's template, staggered per owner's session.

    Args:
        actor: The system job or the superadmin.
        today: Run date (default: today in Jakarta).
        now: Start of the staggering (default: now).
        config: Limits (default: the stored ones).
        offsets: Reminder days (default: the stored schedule).
        rng: Random source (spacing, greeting and closing).

    Returns:
        Counts of what was queued and skipped.
    """
    require_superadmin(actor)
    today = today or clock.today()
    now = now or clock.now()
    config = config or load_rate_config()
    offsets = sorted(load_reminder_offsets() if offsets is None else offsets)
    rng = rng or random.Random()
    result = EnqueueResult(date=today, offsets=offsets)
    if not offsets:
        return result
    offset_of = {today - timedelta(days=o): o for o in offsets}
    templates = wa_templates.load_templates()
    with unit_of_work(actor) as uow:
        s = uow.session
        rows = s.execute(
            sa.select(Invoice.id, Invoice.customer_id, Invoice.owner_id, Invoice.period,
                      Invoice.total_amount, Invoice.discount, Invoice.due_date,
                      Customer.name.label("customer_name"), Customer.phone,
                      Package.name.label("package_name"),
                      Package.speed.label("package_speed"), User.bank_name,
                      User.bank_account, User.bank_holder, User.business_name)
            .join(Customer, Customer.id == Invoice.customer_id)
            .join(Package, Package.id == Customer.package_id)
            .join(User, User.id == Invoice.owner_id)
            .where(Invoice.due_date.in_(list(offset_of)),
                   Invoice.paid_amount < Invoice.total_amount,
                   Customer.status == CustomerStatus.ACTIVE)
            .order_by(Invoice.owner_id, Invoice.due_date, Customer.name, Invoice.id)
        ).all()
        no_wa: list = []
        if rows:
            rows, no_wa = _drop_known(s, rows, today, result)
        by_owner: dict[uuid.UUID, list] = {}
        for row in rows:
            by_owner.setdefault(row.owner_id, []).append(row)
        sessions = wa_sessions.session_ids_by_owner(s, list(by_owner)) if by_owner else {}
        new_rows: list[dict[str, Any]] = []
        start = _start_time(now, config)
        shared: dict[tuple, dict[str, str | None]] = {}
        for owner_id, owner_rows in by_owner.items():
            times = wa_throttle.stagger(start, len(owner_rows), config, rng)
            for row, at in zip(owner_rows, times, strict=True):
                offset = offset_of[row.due_date]
                text = templates[wa_templates.template_key_for_offset(offset)]
                values = _reminder_values(row, today, shared)
                new_rows.append(_queue_row(
                    session_id=sessions[owner_id], owner_id=owner_id,
                    customer_id=row.customer_id, invoice_id=row.id,
                    message_type="reminder", phone=row.phone,
                    content=wa_templates.render(text, values, rng, queued=True),
                    scheduled_at=at,
                    key=reminder_key(row.id, today), max_retries=config.max_retries,
                    now=now, offset=offset))
        inserted = _insert_rows(s, new_rows)
        # Reminders not queued because the number has no WhatsApp stay visible in the log.
        _log_skipped(s, [{
            "owner_id": row.owner_id, "customer_id": row.customer_id, "invoice_id": row.id,
            "message_type": "reminder", "phone": row.phone,
            "content": wa_templates.render(
                templates[wa_templates.template_key_for_offset(offset_of[row.due_date])],
                _reminder_values(row, today, shared), rng, queued=True),
            "error_message": NOT_ON_WHATSAPP_REASON,
            "idempotency_key": reminder_key(row.id, today), "sent_at": now}
            for row in no_wa])
        result.enqueued = len(inserted)
        result.already_queued = len(new_rows) - len(inserted)
        for row in new_rows:
            if row["id"] in inserted:
                key = str(row["owner_id"])
                result.by_owner[key] = result.by_owner.get(key, 0) + 1
        uow.audit("wa.queue.enqueue_reminders", "wa_message_queue", None,
                  **{k: v for k, v in result.as_dict().items() if k != "by_owner"},
                  owners=len(result.by_owner))
    log.info("reminders for %s: %s", today, result.as_dict())
    return result


# Row fields that only identify the message; every other field feeds reminder_values.
_NOT_TEMPLATE_FIELDS = frozenset({"id", "customer_id", "phone", "customer_name"})


def _reminder_values(row, today: date,
                     shared: dict[tuple, dict[str, str | None]]) -> dict[str, str | None]:
    """``wa_templates.reminder_values`` of a row, formatting what subscribers share once.

    Subscribers of one owner, package and amount differ only by name, and formatting
    money and dates (babel) is most of the cost of 2,500 reminders.
    """
    mapping = {k: v for k, v in row._mapping.items() if k not in _NOT_TEMPLATE_FIELDS}
    key = tuple(sorted(mapping.items(), key=lambda kv: kv[0]))
    values = shared.get(key)
    if values is None:
        values = wa_templates.reminder_values({**mapping, "customer_name": "", "today": today})
        shared[key] = values
    return {**values, "nama_pelanggan": row.customer_name}


def _drop_known(s: Session, rows: list, today: date,
                result: EnqueueResult) -> tuple[list, list]:
    """Rows minus numbers known not to be on WhatsApp and reminders already sent today.

    Returns:
        ``(kept, not_on_whatsapp)``: the rows to queue, and those skipped for the number.
    """
    no_wa = _not_on_whatsapp(s, {r.phone for r in rows})
    keys = [reminder_key(r.id, today) for r in rows]
    sent = set()
    for chunk in range(0, len(keys), 5000):
        sent.update(s.execute(sa.select(L.c.idempotency_key).where(
            L.c.idempotency_key.in_(keys[chunk:chunk + 5000]),
            L.c.status.in_(_LOG_DONE))).scalars().all())
    # A reminder its owner resent by hand lives on under ``key#ulang-N``: queueing the
    # plain key again would send it a second time.
    ids = list({r.id for r in rows})
    for chunk in range(0, len(ids), 5000):
        sent.update(k.split(RESEND_MARK)[0] for k in s.execute(
            sa.select(Q.c.idempotency_key).where(
                Q.c.invoice_id.in_(ids[chunk:chunk + 5000]), Q.c.message_type == "reminder",
                Q.c.idempotency_key.contains(RESEND_MARK))).scalars())
    kept, skipped = [], []
    for row, key in zip(rows, keys, strict=True):
        if key in sent:
            result.already_sent += 1
        elif row.phone in no_wa:
            result.not_on_whatsapp += 1
            skipped.append(row)
        else:
            kept.append(row)
    return kept, skipped


def _bulk_item(item: BulkItem | Mapping[str, Any]) -> BulkItem:
    if isinstance(item, BulkItem):
        return item
    return BulkItem(customer_id=item.get("customer_id"), invoice_id=item.get("invoice_id"),
                    phone=item["phone"], content=item["content"],
                    idempotency_key=item["idempotency_key"])


def enqueue_bulk(actor: Actor, *, owner_id: uuid.UUID,
                 items: Iterable[BulkItem | Mapping[str, Any]],
                 message_type: str = "custom", created_by: uuid.UUID | None = None,
                 uow: UnitOfWork | None = None, now: datetime | None = None,
                 config: RateConfig | None = None,
                 rng: random.Random | None = None) -> int:
    """Queue messages from one owner's number, staggered after what is already queued.

    Args:
        actor: The owner (mitra for their own number) or the superadmin / system.
        owner_id: Whose number sends.
        items: The messages (:class:`BulkItem` or mappings with the same keys).
        message_type: ``custom`` (bulk send), ``reminder`` …
        created_by: Who asked (kept on the rows and on the log when sent).
        uow: Run inside the caller's transaction (its audit row too) instead of a new one.
        now: Start of the staggering (default: now).
        config: Limits (default: the stored ones).
        rng: Random source for the spacing.

    Returns:
        How many messages were queued (keys already queued and numbers known not to be
        on WhatsApp are skipped).

    Raises:
        PermissionDenied: a mitra queueing on another owner's number.
        ValidationFailed: an unknown message type or an empty message.
    """
    require_user(actor)
    if not can_touch_owner(actor, owner_id):
        raise PermissionDenied()
    if message_type not in MESSAGE_TYPES:
        raise ValidationFailed({"message_type": "Jenis pesan tidak dikenal."})
    clean = [_bulk_item(i) for i in items]
    if any(not i.content.strip() for i in clean):
        raise ValidationFailed({"content": "Isi pesan tidak boleh kosong."})
    if any(not i.phone for i in clean):
        raise ValidationFailed({"phone": "Nomor WhatsApp wajib diisi."})
    now = now or clock.now()
    config = config or load_rate_config()
    rng = rng or random.Random()

    def work(u: UnitOfWork) -> int:
        s = u.session
        no_wa = _not_on_whatsapp(s, {i.phone for i in clean})
        to_send = [i for i in clean if i.phone not in no_wa]
        _log_skipped(s, [{
            "owner_id": owner_id, "customer_id": i.customer_id, "invoice_id": i.invoice_id,
            "message_type": message_type, "phone": i.phone, "content": i.content,
            "error_message": NOT_ON_WHATSAPP_REASON, "idempotency_key": i.idempotency_key,
            "sent_by": created_by or actor.user_id, "sent_at": now}
            for i in clean if i.phone in no_wa])
        if not to_send:
            return 0
        session_id = wa_sessions.session_ids_by_owner(s, [owner_id])[owner_id]
        last = s.execute(sa.select(sa.func.max(Q.c.scheduled_at)).where(
            Q.c.session_id == session_id, Q.c.status == "pending")).scalar()
        start = _start_time(max(now, last) if last else now, config)
        times = wa_throttle.stagger(start, len(to_send), config, rng)
        rows = [_queue_row(session_id=session_id, owner_id=owner_id,
                           customer_id=i.customer_id, invoice_id=i.invoice_id,
                           message_type=message_type, phone=i.phone, content=i.content,
                           scheduled_at=at, key=i.idempotency_key,
                           max_retries=config.max_retries, now=now,
                           created_by=created_by or actor.user_id)
                for i, at in zip(to_send, times, strict=True)]
        n = len(_insert_rows(s, rows))
        u.audit("wa.queue.enqueue_bulk", "wa_message_queue", None, owner_id=owner_id,
                message_type=message_type, requested=len(clean), queued=n,
                not_on_whatsapp=len(clean) - len(to_send))
        return n

    if uow is not None:
        return work(uow)
    with unit_of_work(actor) as own:
        return work(own)


def cancel_for_invoice(session: Session, invoice_id: uuid.UUID,
                       reason: str = PAID_REASON) -> int:
    """Cancel an invoice's pending reminders, in the caller's transaction (payment path).

    Returns:
        How many queued reminders were cancelled.
    """
    now = clock.now()
    cancelled = session.execute(sa.update(Q).where(
        Q.c.invoice_id == invoice_id, Q.c.status == "pending",
        Q.c.message_type == "reminder").values(
        status="cancelled", error_message=reason, updated_at=now)
        .returning(*_QUEUE_LOG_COLUMNS)).all()
    _log_skipped(session, [_skip_values(r, reason, now) for r in cancelled])
    return len(cancelled)


# Queue columns a skipped log row copies.
_QUEUE_LOG_COLUMNS = (Q.c.id, Q.c.session_id, Q.c.owner_id, Q.c.customer_id,
                      Q.c.invoice_id, Q.c.message_type, Q.c.phone, Q.c.content,
                      Q.c.idempotency_key, Q.c.created_by)


def _skip_values(row, reason: str, at: datetime) -> dict[str, Any]:
    """A skipped log row's values from a queue row (or a claim-time message row)."""
    return {"session_id": row.session_id, "owner_id": row.owner_id,
            "customer_id": row.customer_id, "invoice_id": row.invoice_id,
            "queue_id": row.id, "message_type": row.message_type, "phone": row.phone,
            "content": row.content, "error_message": reason,
            "idempotency_key": row.idempotency_key, "sent_by": row.created_by, "sent_at": at}


# --- the worker ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A message moved to ``sending`` by one worker, to be sent outside any transaction."""

    queue_id: uuid.UUID
    session_id: uuid.UUID
    owner_id: uuid.UUID
    customer_id: uuid.UUID | None
    invoice_id: uuid.UUID | None
    message_type: str
    phone: str
    content: str
    idempotency_key: str
    retry_count: int
    max_retries: int
    created_by: uuid.UUID | None
    claimed_at: datetime
    delay_s: float  # the spacing drawn at claim, counted from the end of the send
    # The session's pacing before this claim counted it: given back when the message
    # never reached WhatsApp (not connected, not on WhatsApp, refused as invalid).
    before: PacingState | None = None


def _state(row) -> PacingState:
    return PacingState(next_send_at=row.next_send_at, batch_count=row.batch_count,
                       hour_started_at=row.hour_started_at, hour_count=row.hour_count,
                       day_date=row.day_date, day_count=row.day_count,
                       paused=row.queue_paused_at is not None)


def _ready_sessions(exclude: bool):
    """The next session to serve: may send now, has a due message, none in flight.

    The longest-waiting session (``next_send_at``) comes first. Sessions are sorted
    first (a few hundred rows, cheap) and the two queue checks run session by session
    in that order until one passes (``OFFSET 0`` keeps PostgreSQL from flattening the
    subquery and checking every session before sorting). Parameters: ``now``, and
    ``exclude`` (sessions already tried) when asked for.
    """
    now = sa.bindparam("now", type_=S.c.next_send_at.type)
    candidates = (sa.select(S.c.id, S.c.user_id, S.c.next_send_at).where(
        S.c.status == WaSessionStatus.CONNECTED, S.c.queue_paused_at.is_(None),
        sa.or_(S.c.next_send_at.is_(None), S.c.next_send_at <= now))
        .order_by(S.c.next_send_at.asc().nulls_first(), S.c.id).offset(0))
    if exclude:
        candidates = candidates.where(S.c.id.not_in(sa.bindparam("exclude", expanding=True)))
    cand = candidates.subquery("ready")
    due = sa.exists().where(Q.c.session_id == cand.c.id, Q.c.status == "pending",
                            Q.c.scheduled_at <= now)
    in_flight = sa.exists().where(Q.c.session_id == cand.c.id, Q.c.owner_id == cand.c.user_id,
                                  Q.c.status == "sending")
    return sa.select(cand.c.id).where(due, ~in_flight).limit(1), cand


def _first_due_stmt():
    """The session's next message: highest priority first, then earliest scheduled.

    Parameters: ``session_id``, ``now``. The top priority comes from a max over the claim
    index, then that priority's earliest message straight from the same index, so
    nothing that is due gets sorted.
    """
    due = (Q.c.session_id == sa.bindparam("session_id", type_=Q.c.session_id.type),
           Q.c.status == "pending",
           Q.c.scheduled_at <= sa.bindparam("now", type_=Q.c.scheduled_at.type))
    top = sa.select(sa.func.max(Q.c.priority)).where(*due).scalar_subquery()
    return (sa.select(Q.c.id, Q.c.session_id, Q.c.owner_id, Q.c.customer_id,
                      Q.c.invoice_id, Q.c.message_type, Q.c.phone, Q.c.content,
                      Q.c.idempotency_key, Q.c.retry_count, Q.c.max_retries,
                      Q.c.created_by, Q.c.reminder_offset, Q.c.created_at,
                      Invoice.paid_amount, Invoice.total_amount, Invoice.due_date,
                      Customer.status.label("customer_status"))
            .select_from(Q.outerjoin(Invoice.__table__, Invoice.id == Q.c.invoice_id)
                         .outerjoin(Customer.__table__, Customer.id == Q.c.customer_id))
            .where(*due, Q.c.priority == top)
            .order_by(Q.c.scheduled_at).limit(1))


# Built once: the claim runs several times a second, and building these selects costs
# as much as running them.
_READY, _READY_CAND = _ready_sessions(False)
_READY_EXCLUDING, _READY_EXCLUDING_CAND = _ready_sessions(True)
_READY_PG = _READY.with_for_update(of=_READY_CAND, skip_locked=True)
_READY_EXCLUDING_PG = _READY_EXCLUDING.with_for_update(of=_READY_EXCLUDING_CAND,
                                                       skip_locked=True)
_FIRST_DUE = _first_due_stmt()
_FIRST_DUE_PG = _FIRST_DUE.with_for_update(of=Q, skip_locked=True)


def _lock_ready_session(s: Session, now: datetime,
                        exclude: set[uuid.UUID]) -> uuid.UUID | None:
    params: dict[str, Any] = {"now": now}
    if exclude:
        params["exclude"] = list(exclude)
    if _is_pg(s):
        # Rows are locked as the ordered scan reaches them; a session another worker
        # holds is skipped, not waited for.
        return s.execute(_READY_EXCLUDING_PG if exclude else _READY_PG, params).scalar()
    session_id = s.execute(_READY_EXCLUDING if exclude else _READY, params).scalar()
    if session_id is None:
        return None
    # SQLite: this write takes the database's single write lock for the rest of the
    # transaction, so everything below runs as if alone (busy_timeout waits for it).
    s.execute(sa.update(S).where(S.c.id == session_id).values(updated_at=S.c.updated_at))
    return session_id


def _first_due(s: Session, session_id: uuid.UUID, now: datetime):
    stmt = _FIRST_DUE_PG if _is_pg(s) else _FIRST_DUE
    return s.execute(stmt, {"session_id": session_id, "now": now}).first()


def _expired_reason(msg, today: date) -> str | None:
    """Why a reminder's text no longer fits ``today`` (Jakarta), or ``None``.

    A reminder is written for one day: H-1 says "besok", H+3 counts "3 hari". It goes
    out on that day or not at all (a mitra reconnecting days later, a day cap spilling
    into the next day), and one about an upcoming due date never goes out once that
    date has come.
    """
    if msg.reminder_offset is not None and msg.due_date is not None:
        meant = msg.due_date + timedelta(days=msg.reminder_offset)
    else:  # a reminder queued by hand (bulk send): written on the day it was queued
        meant = msg.created_at.astimezone(clock.JAKARTA).date()
    if msg.due_date is not None and meant < msg.due_date <= today:
        return EXPIRED_DUE_REASON
    if today > meant:
        return EXPIRED_DAY_REASON.format(day=long_date(meant))
    return None


def _cancel_reason(s: Session, msg, today: date) -> str | None:
    if msg.message_type != "reminder":
        return None
    if msg.invoice_id is None or msg.customer_id is None or msg.total_amount is None \
            or msg.customer_status is None:
        return DELETED_REASON
    if msg.paid_amount >= msg.total_amount:
        return PAID_REASON
    if msg.customer_status == CustomerStatus.ISOLATED:
        return ISOLATED_REASON
    if msg.customer_status == CustomerStatus.INACTIVE:
        return INACTIVE_REASON
    expired = _expired_reason(msg, today)
    if expired:
        return expired
    done = s.execute(sa.select(L.c.id).where(
        L.c.idempotency_key == msg.idempotency_key, L.c.status.in_(_LOG_DONE),
        sa.or_(L.c.queue_id.is_(None), L.c.queue_id != msg.id))).first()
    return ALREADY_REMINDED_REASON if done else None


def _claim_in_session(s: Session, session_id: uuid.UUID, now: datetime, config: RateConfig,
                      rng: random.Random, worker_id: str) -> Claim | None:
    # Fresh statements after the lock: they see whatever the previous holder committed.
    sess = s.execute(sa.select(S).where(S.c.id == session_id)).one()
    if sess.status != WaSessionStatus.CONNECTED or sess.queue_paused_at is not None:
        return None
    if s.execute(sa.select(Q.c.id).where(Q.c.session_id == session_id,
                                         Q.c.owner_id == sess.user_id,
                                         Q.c.status == "sending").limit(1)).first():
        return None
    state = _state(sess)
    allowed = wa_throttle.next_allowed(state, now, config)
    if allowed is None:
        return None
    if allowed > now:
        # A cap or quiet hours: park the session so the ready-query skips it till then.
        s.execute(sa.update(S).where(S.c.id == session_id).values(next_send_at=allowed))
        return None
    today = now.astimezone(clock.JAKARTA).date()
    for _ in range(MAX_CANCELS_PER_CLAIM):
        msg = _first_due(s, session_id, now)
        if msg is None:
            return None
        reason = _cancel_reason(s, msg, today)
        if reason:
            if s.execute(sa.update(Q).where(Q.c.id == msg.id, Q.c.status == "pending").values(
                    status="cancelled", error_message=reason, updated_at=now)).rowcount:
                _log_skipped(s, [_skip_values(msg, reason, now)])
            continue
        claimed = s.execute(sa.update(Q).where(Q.c.id == msg.id, Q.c.status == "pending")
                            .values(status="sending", claimed_at=now, claimed_by=worker_id,
                                    updated_at=now)).rowcount
        if not claimed:
            continue
        new = wa_throttle.after_send(state, now, config, rng)
        s.execute(sa.update(S).where(S.c.id == session_id).values(
            next_send_at=new.next_send_at, batch_count=new.batch_count,
            hour_started_at=new.hour_started_at, hour_count=new.hour_count,
            day_date=new.day_date, day_count=new.day_count))
        return Claim(queue_id=msg.id, session_id=session_id, owner_id=msg.owner_id,
                     customer_id=msg.customer_id, invoice_id=msg.invoice_id,
                     message_type=msg.message_type, phone=msg.phone, content=msg.content,
                     idempotency_key=msg.idempotency_key, retry_count=msg.retry_count,
                     max_retries=msg.max_retries, created_by=msg.created_by,
                     claimed_at=now,
                     delay_s=(new.next_send_at - now).total_seconds(), before=state)
    return None


def claim_next(worker_id: str, now: datetime, config: RateConfig,
               rng: random.Random, *, exclude: Iterable[uuid.UUID] = ()) -> Claim | None:
    """Atomically claim the next due message of some ready session.

    Each session tried is one bookkeeping unit of work: the claim, the session's
    pacing and the messages cancelled on the way (with their skip logs) are recorded
    in ``wa_message_queue`` and ``wa_message_logs``, not in the audit trail.

    Args:
        worker_id: Name of the claiming worker.
        now: Current time.
        config: The limits.
        rng: Random source for the spacing.
        exclude: Session ids not to claim from (the gateway could not confirm them).

    Returns:
        The claim, or ``None`` when no session may send a message now.
    """
    tried: set[uuid.UUID] = set(exclude)
    for _ in range(MAX_SESSION_TRIES):
        with unit_of_work(Actor.system(WORKER_ACTOR)).bookkeeping(
                "claim of a queued message; its outcome is kept in wa_message_queue") as uow:
            session_id = _lock_ready_session(uow.session, now, tried)
            if session_id is None:
                return None
            tried.add(session_id)
            claim = _claim_in_session(uow.session, session_id, now, config, rng, worker_id)
        if claim is not None:
            return claim
    return None


def _log_values(c: Claim, *, status: str, at: datetime, error: str | None = None,
                provider_id: str | None = None) -> dict[str, Any]:
    return {"id": uuid.uuid4(), "session_id": c.session_id, "owner_id": c.owner_id,
            "customer_id": c.customer_id, "invoice_id": c.invoice_id, "queue_id": c.queue_id,
            "message_type": c.message_type, "phone": c.phone, "content": c.content,
            "status": status, "error_message": error, "idempotency_key": c.idempotency_key,
            "provider_message_id": provider_id, "sent_by": c.created_by, "sent_at": at}


def _write_log(s: Session, values: dict[str, Any]) -> None:
    # One log row per key: a later outcome of the same message (a manual retry that
    # succeeds after a failure) updates it instead of adding a second row.
    stmt = insert_for(s)(L).values(**values)
    s.execute(stmt.on_conflict_do_update(index_elements=["idempotency_key"], set_={
        k: values[k] for k in ("status", "error_message", "provider_message_id", "sent_at",
                               "queue_id", "session_id")}))


def _mark_sent(s: Session, c: Claim, at: datetime, provider_id: str | None,
               guard) -> bool:
    done = s.execute(sa.update(Q).where(guard).values(
        status="sent", sent_at=at, provider_message_id=provider_id, error_message=None,
        updated_at=at)).rowcount
    if not done:
        return False
    _write_log(s, _log_values(c, status="sent", at=at, provider_id=provider_id))
    if c.message_type == "reminder" and c.invoice_id is not None:
        s.execute(sa.update(Invoice.__table__).where(Invoice.id == c.invoice_id)
                  .values(reminder_sent_at=at))
    return True


def _refund(s: Session, c: Claim) -> None:
    """Give the session back the counts its claim took (the message never went out)."""
    b = c.before
    if b is None:
        return
    s.execute(sa.update(S).where(S.c.id == c.session_id).values(
        batch_count=b.batch_count, hour_started_at=b.hour_started_at,
        hour_count=b.hour_count, day_date=b.day_date, day_count=b.day_count))


def _record(c: Claim, result: SendResult, finished: datetime, config: RateConfig,
            *, skipped: bool = False) -> str:
    """Write a send's outcome and the session's next send time; returns the new status.

    The outcome belongs to this claim only (same key, same claim time). A slow send
    that :func:`reconcile_stale` already marked ``uncertain`` is still settled by its
    late answer, so a message that did go out never stays "tidak pasti" (and is not
    resent); one put back to pending or resent under a new key is left alone.
    """
    guard = sa.and_(Q.c.id == c.queue_id, Q.c.status.in_(("sending", "uncertain")),
                    Q.c.claimed_at == c.claimed_at,
                    Q.c.idempotency_key == c.idempotency_key)
    delay = timedelta(seconds=c.delay_s)
    next_send = finished + delay
    with unit_of_work(Actor.system(WORKER_ACTOR)) as uow:
        uow.bookkeeping("send outcome, kept in wa_message_queue")
        s = uow.session
        lock = sa.select(Q.c.status).where(guard)
        was = s.execute(lock.with_for_update() if _is_pg(s) else lock).scalar()
        kind = None if result.ok else (result.error_kind or ErrorKind.TRANSIENT)
        # Quota and pacing count real attempts only: a message that never reached
        # WhatsApp gives its claim's counts back (and the spacing with them).
        if was == "sending" and (skipped or kind in NOT_ATTEMPTS):
            _refund(s, c)
            next_send = finished
        status = "sending"
        if skipped:
            status = "skipped"
            if s.execute(sa.update(Q).where(guard).values(
                    status="skipped", error_message=NOT_ON_WHATSAPP_REASON,
                    updated_at=finished)).rowcount:
                _log_skipped(s, [_log_values(c, status=SKIPPED, at=finished,
                                             error=NOT_ON_WHATSAPP_REASON)])
        elif result.ok:
            status = "sent"
            _mark_sent(s, c, finished, result.provider_message_id, guard)
        else:
            error = result.error or "Pengiriman gagal."
            status, next_send = _record_failure(uow, c, kind, error, finished, config,
                                                guard, next_send)
        s.execute(sa.update(S).where(S.c.id == c.session_id).values(next_send_at=next_send))
    if kind == ErrorKind.NOT_CONNECTED:
        _forget_verified(c.owner_id)  # ask the gateway again before the next claim
    return status


def _record_failure(uow: UnitOfWork, c: Claim, kind: ErrorKind, error: str,
                    finished: datetime, config: RateConfig, guard,
                    next_send: datetime) -> tuple[str, datetime]:
    s = uow.session
    back_to_pending = {"status": "pending", "claimed_at": None, "claimed_by": None,
                       "error_message": error, "updated_at": finished}
    if kind in (ErrorKind.TRANSIENT, ErrorKind.RATE_LIMITED):
        attempts = c.retry_count + 1
        if attempts >= c.max_retries:
            if s.execute(sa.update(Q).where(guard).values(
                    status="failed", retry_count=attempts, error_message=error,
                    updated_at=finished)).rowcount:
                _write_log(s, _log_values(c, status="failed", at=finished, error=error))
            return "failed", next_send
        s.execute(sa.update(Q).where(guard).values(
            **back_to_pending, retry_count=attempts,
            scheduled_at=finished + timedelta(seconds=float(config.retry_delay_s))))
        return "pending", next_send
    if kind == ErrorKind.NOT_ON_WHATSAPP:
        if s.execute(sa.update(Q).where(guard).values(
                status="skipped", error_message=error or NOT_ON_WHATSAPP_REASON,
                updated_at=finished)).rowcount:
            wa_numbers.remember(s, {c.phone: False})
            _log_skipped(s, [_log_values(c, status=SKIPPED, at=finished,
                                         error=error or NOT_ON_WHATSAPP_REASON)])
        return "skipped", next_send
    if kind in (ErrorKind.INVALID, ErrorKind.REENGAGEMENT):
        if s.execute(sa.update(Q).where(guard).values(
                status="failed", error_message=error, updated_at=finished)).rowcount:
            _write_log(s, _log_values(c, status="failed", at=finished, error=error))
        return "failed", next_send
    if kind == ErrorKind.RESTRICTED:
        s.execute(sa.update(Q).where(guard).values(**back_to_pending))
        wa_sessions.pause_for_restriction(uow, c.owner_id, error, at=finished,
                                          queue_id=c.queue_id)
        return "pending", next_send
    if kind == ErrorKind.NOT_CONNECTED:
        s.execute(sa.update(Q).where(guard).values(**back_to_pending))
        return "pending", finished + timedelta(seconds=NOT_CONNECTED_BACKOFF_S)
    # UNCERTAIN: it may have gone out. Stay in ``sending`` (the session sends nothing
    # else) until reconcile_stale asks the gateway by idempotency key.
    s.execute(sa.update(Q).where(guard).values(error_message=error, updated_at=finished))
    return "sending", next_send


def deliver(gateway: Gateway, claim: Claim, config: RateConfig, *,
            now: datetime | None = None) -> str:
    """Send a claimed message (outside any transaction) and record the outcome.

    Args:
        gateway: Who sends.
        claim: From :func:`claim_next`.
        config: The limits (retry delay).
        now: Fixed time of the outcome (tests); default the clock after the send.

    Returns:
        The message's new status.
    """
    on_whatsapp = wa_numbers.check_number(gateway, claim.owner_id, claim.phone)
    if on_whatsapp is False:
        return _record(claim, SendResult(ok=False), now or clock.now(), config, skipped=True)
    message = OutgoingMessage(owner_id=claim.owner_id, phone=claim.phone, text=claim.content,
                              idempotency_key=claim.idempotency_key,
                              message_type=claim.message_type, invoice_id=claim.invoice_id,
                              customer_id=claim.customer_id)
    try:
        result = gateway.send_text(message)
    except Exception:  # a gateway bug: it may or may not have gone out
        log.exception("gateway crashed sending queue message %s", claim.queue_id)
        result = SendResult.failed(ErrorKind.UNCERTAIN, SEND_CRASHED)
    return _record(claim, result, now or clock.now(), config)


_verified_lock = threading.Lock()
# owner id → monotonic time the gateway last confirmed its session (this process).
_verified: dict[uuid.UUID, float] = {}


def _forget_verified(owner_id: uuid.UUID) -> None:
    with _verified_lock:
        _verified.pop(owner_id, None)


def verify_sessions(gateway: Gateway, now: datetime) -> set[uuid.UUID]:
    """Ask the gateway about sessions the queue is about to claim from.

    ``wa_sessions`` may still say "connected" after the gateway crashed or restarted
    without that number (it never got to report the drop). Before the queue spends a
    claim on such a session, the gateway is asked (at most every
    :data:`VERIFY_EVERY_S` per owner): a session it does not hold is recorded as what
    the gateway says (disconnected …), so its messages stay pending and nothing is
    counted; a gateway that cannot be asked leaves the session alone this round.

    Returns:
        Session ids not to claim from in this round.
    """
    due = sa.exists().where(Q.c.session_id == S.c.id, Q.c.status == "pending",
                            Q.c.scheduled_at <= now)
    with new_session() as s:
        rows = s.execute(sa.select(S.c.id, S.c.user_id).where(
            S.c.status == WaSessionStatus.CONNECTED, S.c.queue_paused_at.is_(None),
            sa.or_(S.c.next_send_at.is_(None), S.c.next_send_at <= now), due)).all()
    skip: set[uuid.UUID] = set()
    for session_id, owner_id in rows:
        with _verified_lock:
            last = _verified.get(owner_id)
        if last is not None and time.monotonic() - last < VERIFY_EVERY_S:
            continue
        try:
            state = gateway.link_state(owner_id)
        except Exception as exc:  # the gateway is down: its sends would fail anyway
            log.warning("cannot confirm WhatsApp session of %s: %s", owner_id, exc)
            skip.add(session_id)
            continue
        if state.status == WaSessionStatus.CONNECTED:
            with _verified_lock:
                _verified[owner_id] = time.monotonic()
            continue
        skip.add(session_id)
        log.warning("session of %s is %s at the gateway, not connected", owner_id,
                    state.status)
        wa_sessions.record_event(owner_id, wa_sessions.SessionEvent(
            status=state.status, error=state.error or STALE_SESSION), source="queue")
    return skip


def run_once(gateway: Gateway, *, worker_id: str, now: datetime | None = None,
             max_messages: int = 50, config: RateConfig | None = None,
             rng: random.Random | None = None) -> int:
    """Claim and send what is due, one message at a time, across sessions.

    Args:
        gateway: Who sends.
        worker_id: Name of this worker (kept on claimed rows).
        now: Fixed current time (tests); default the clock at each claim.
        max_messages: Stop after this many messages.
        config: The limits (default: the stored ones).
        rng: Random source for the spacing.

    Returns:
        How many messages were handled (sent, failed, skipped or put back).
    """
    config = config or load_rate_config()
    rng = rng or random.Random()
    handled = 0
    unconfirmed = verify_sessions(gateway, now or clock.now())
    while handled < max_messages:
        claim = claim_next(worker_id, now or clock.now(), config, rng, exclude=unconfirmed)
        if claim is None:
            break
        deliver(gateway, claim, config, now=now)
        handled += 1
    return handled


def seconds_until_due(now: datetime | None = None) -> float | None:
    """Seconds until some connected, unpaused session might send (``None``: nothing queued).

    Lets the tick return early instead of idling when the next message is far off.
    """
    now = now or clock.now()
    with new_session() as s:
        row = s.execute(
            sa.select(sa.func.min(Q.c.scheduled_at), sa.func.min(S.c.next_send_at))
            .select_from(Q.join(S, S.c.id == Q.c.session_id))
            .where(Q.c.status == "pending", S.c.status == WaSessionStatus.CONNECTED,
                   S.c.queue_paused_at.is_(None))).first()
    if row is None or row[0] is None:
        return None
    earliest = max(row[0], row[1] or row[0])
    return max(0.0, (earliest - now).total_seconds())


def reconcile_stale(gateway: Gateway, *, older_than_s: float = 120,
                    now: datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Settle messages left in ``sending`` (a worker died mid-send), never resending blindly.

    Asks the gateway whether each message's idempotency key went out: SENT → sent (and
    logged), NOT_SENT → back to pending (no attempt counted), UNKNOWN → ``uncertain``
    with a note for the owner, who checks WhatsApp and retries by hand if needed.
    ``uncertain`` messages of the last :data:`RECHECK_FOR` are asked about again every
    :data:`RECHECK_EVERY_S`: one the gateway now knows went out becomes ``sent`` (a
    gateway whose HTTP caller timed out still finishes the send and records the key).

    Returns:
        How many became sent, pending and uncertain.
    """
    now = now or clock.now()
    cutoff = now - timedelta(seconds=older_than_s)
    counts = {"sent": 0, "pending": 0, "uncertain": 0}
    with new_session() as s:
        stale = s.execute(
            sa.select(Q.c.id, Q.c.session_id, Q.c.owner_id, Q.c.customer_id, Q.c.invoice_id,
                      Q.c.message_type, Q.c.phone, Q.c.content, Q.c.idempotency_key,
                      Q.c.retry_count, Q.c.max_retries, Q.c.created_by, Q.c.claimed_at)
            .where(Q.c.status == "sending",
                   sa.or_(Q.c.claimed_at.is_(None), Q.c.claimed_at < cutoff))
            .order_by(Q.c.claimed_at).limit(limit)).all()
    for row in stale:
        try:
            answer = gateway.lookup_sent(row.owner_id, row.idempotency_key)
        except Exception:
            log.exception("lookup of %s failed", row.idempotency_key)
            answer = SentLookup.UNKNOWN
        claim = Claim(queue_id=row.id, session_id=row.session_id, owner_id=row.owner_id,
                      customer_id=row.customer_id, invoice_id=row.invoice_id,
                      message_type=row.message_type, phone=row.phone, content=row.content,
                      idempotency_key=row.idempotency_key, retry_count=row.retry_count,
                      max_retries=row.max_retries, created_by=row.created_by,
                      claimed_at=row.claimed_at, delay_s=0)
        claimed = (Q.c.claimed_at.is_(None) if row.claimed_at is None
                   else Q.c.claimed_at == row.claimed_at)
        guard = sa.and_(Q.c.id == row.id, Q.c.status == "sending", claimed)
        with unit_of_work(Actor.system(WORKER_ACTOR)) as uow:
            uow.bookkeeping("settling a crashed send, kept in wa_message_queue")
            s = uow.session
            if answer == SentLookup.SENT:
                if _mark_sent(s, claim, now, None, guard):
                    counts["sent"] += 1
            elif answer == SentLookup.NOT_SENT:
                counts["pending"] += s.execute(sa.update(Q).where(guard).values(
                    status="pending", claimed_at=None, claimed_by=None,
                    updated_at=now)).rowcount
            elif s.execute(sa.update(Q).where(guard).values(
                    status="uncertain", error_message=UNCERTAIN_NOTE,
                    updated_at=now)).rowcount:
                # The message log shows it too, so the owner sees what to check.
                _write_log(s, _log_values(claim, status="uncertain", at=now,
                                          error=UNCERTAIN_NOTE))
                counts["uncertain"] += 1
                _mark_rechecked(row.id)
    counts["sent"] += _recheck_uncertain(gateway, now, limit)
    if stale:
        log.info("reconciled stale queue messages: %s", counts)
    return counts


_rechecked_lock = threading.Lock()
# queue id → monotonic time its uncertain outcome was last asked about (this process).
_rechecked: dict[uuid.UUID, float] = {}


def _mark_rechecked(queue_id: uuid.UUID) -> None:
    with _rechecked_lock:
        _rechecked[queue_id] = time.monotonic()


def _recheck_uncertain(gateway: Gateway, now: datetime, limit: int) -> int:
    """Settle ``uncertain`` messages the gateway has since seen go out; how many."""
    with new_session() as s:
        rows = s.execute(
            sa.select(Q.c.id, Q.c.session_id, Q.c.owner_id, Q.c.customer_id, Q.c.invoice_id,
                      Q.c.message_type, Q.c.phone, Q.c.content, Q.c.idempotency_key,
                      Q.c.retry_count, Q.c.max_retries, Q.c.created_by, Q.c.claimed_at)
            .where(Q.c.status == "uncertain", Q.c.updated_at > now - RECHECK_FOR)
            .order_by(Q.c.updated_at.desc()).limit(limit)).all()
    with _rechecked_lock:
        mono = time.monotonic()
        forget = RECHECK_FOR.total_seconds()
        for queue_id in [k for k, at in _rechecked.items() if mono - at > forget]:
            del _rechecked[queue_id]
        due = [r for r in rows
               if r.id not in _rechecked or mono - _rechecked[r.id] >= RECHECK_EVERY_S]
    settled = 0
    for row in due:
        _mark_rechecked(row.id)
        try:
            answer = gateway.lookup_sent(row.owner_id, row.idempotency_key)
        except Exception:
            log.exception("lookup of %s failed", row.idempotency_key)
            continue
        if answer != SentLookup.SENT:
            continue
        claim = Claim(queue_id=row.id, session_id=row.session_id, owner_id=row.owner_id,
                      customer_id=row.customer_id, invoice_id=row.invoice_id,
                      message_type=row.message_type, phone=row.phone, content=row.content,
                      idempotency_key=row.idempotency_key, retry_count=row.retry_count,
                      max_retries=row.max_retries, created_by=row.created_by,
                      claimed_at=row.claimed_at or now, delay_s=0)
        guard = sa.and_(Q.c.id == row.id, Q.c.status == "uncertain",
                        Q.c.idempotency_key == row.idempotency_key)
        with unit_of_work(Actor.system(WORKER_ACTOR)) as uow:
            uow.bookkeeping("an uncertain send settled by key, kept in wa_message_queue")
            settled += _mark_sent(uow.session, claim, now, None, guard)
    return settled


# --- what the page shows -------------------------------------------------------------------


def _owner_scope(actor: Actor, owner_id: uuid.UUID | None) -> uuid.UUID | None:
    """The owner filter of a read: a mitra always reads its own rows."""
    require_user(actor)
    if owner_id is not None and not can_touch_owner(actor, owner_id):
        raise PermissionDenied()
    if actor.is_mitra:
        return actor.user_id
    return owner_id


def queue_counts(actor: Actor, owner_id: uuid.UUID | None = None) -> dict[str, int]:
    """Queue rows per status (every status present, 0 when none).

    Args:
        actor: A mitra (own rows) or the superadmin (all, or ``owner_id``'s).
        owner_id: Narrow to one owner.

    Raises:
        PermissionDenied: a mitra naming another owner.
    """
    owner = _owner_scope(actor, owner_id)
    stmt = sa.select(Q.c.status, sa.func.count()).group_by(Q.c.status)
    if owner is not None:
        stmt = stmt.where(Q.c.owner_id == owner)
    with new_session() as s:
        found = dict(s.execute(stmt).all())
    return {status: int(found.get(status, 0)) for status in STATUSES}


@dataclass(frozen=True)
class QueueRow:
    """One queued message as the page lists it."""

    id: uuid.UUID
    owner_id: uuid.UUID
    customer_id: uuid.UUID | None
    customer_name: str | None
    phone: str
    message_type: str
    status: str
    scheduled_at: datetime
    sent_at: datetime | None
    retry_count: int
    max_retries: int
    error: str | None
    content: str
    # Failed, uncertain or stuck in sending: the owner may resend it (new key).
    can_resend: bool = False


# One page of the queue list.
QueuePage = Page[QueueRow]


def list_queue(actor: Actor, *, page: int = 1, status: str | None = None,
               owner_id: uuid.UUID | None = None, per_page: int | None = None) -> QueuePage:
    """A page of queued messages (20 per page), waiting ones soonest first.

    Args:
        actor: A mitra (own rows) or the superadmin (all, or ``owner_id``'s).
        page: 1-based page number.
        status: One of :data:`STATUSES`, or ``None`` for all.
        owner_id: Narrow to one owner.
        per_page: Rows a page (default 20, at most 100).

    Raises:
        PermissionDenied: a mitra naming another owner.
        ValidationFailed: an unknown status or a bad ``per_page``.
    """
    owner = _owner_scope(actor, owner_id)
    size = check_per_page(per_page, PAGE_SIZE)
    if status and status not in STATUSES:
        raise ValidationFailed({"status": "Status antrian tidak dikenal."})
    page = max(1, int(page or 1))
    where = []
    if owner is not None:
        where.append(Q.c.owner_id == owner)
    if status:
        where.append(Q.c.status == status)
    order = ([Q.c.scheduled_at, Q.c.id] if status in ("pending", "sending")
             else [sa.func.coalesce(Q.c.sent_at, Q.c.updated_at).desc(), Q.c.id])
    stmt = (sa.select(Q.c.id, Q.c.owner_id, Q.c.customer_id, Customer.name, Q.c.phone,
                      Q.c.message_type, Q.c.status, Q.c.scheduled_at, Q.c.sent_at,
                      Q.c.retry_count, Q.c.max_retries, Q.c.error_message, Q.c.content,
                      Q.c.claimed_at)
            .select_from(Q.outerjoin(Customer.__table__, Customer.id == Q.c.customer_id))
            .where(*where).order_by(*order)
            .offset((page - 1) * size).limit(size))
    with new_session() as s:
        total = s.execute(sa.select(sa.func.count()).select_from(Q).where(*where)).scalar()
        rows = s.execute(stmt).all()
    now = clock.now()
    items = [QueueRow(id=r[0], owner_id=r[1], customer_id=r[2], customer_name=r[3],
                      phone=r[4], message_type=r[5], status=r[6], scheduled_at=r[7],
                      sent_at=r[8], retry_count=r[9], max_retries=r[10], error=r[11],
                      content=r[12], can_resend=r[6] in ("failed", "uncertain")
                      or _is_stuck(r[6], r[13], now)) for r in rows]
    return QueuePage(items=items, total=int(total or 0), page=page, per_page=size)


def _visible_row(uow: UnitOfWork, queue_id: uuid.UUID) -> WaMessageQueue:
    stmt = scoped(sa.select(WaMessageQueue).where(WaMessageQueue.id == queue_id),
                  uow.actor, WaMessageQueue.owner_id)
    row = uow.session.execute(stmt).scalars().first()
    if row is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    return row


def resend_key(key: str, taken: Iterable[str] = ()) -> str:
    """The key of a deliberate resend: ``key#ulang-N``, one more than the last resend.

    The gateway remembers every key it began sending and refuses it forever once the
    outcome is unknown, so a resend the owner asks for is a new message with a new key.

    Args:
        key: The key of the attempt being resent (itself maybe a resend).
        taken: Keys already in use (never returned).
    """
    match = re.fullmatch(rf"(.*){re.escape(RESEND_MARK)}(\d+)", key)
    base, n = (match.group(1), int(match.group(2))) if match else (key, 0)
    used = set(taken)
    while True:
        n += 1
        candidate = f"{base}{RESEND_MARK}{n}"
        if candidate not in used:
            return candidate


def key_in_use(session: Session, key: str) -> bool:
    """Whether ``key`` is already a queue row's or a log row's idempotency key."""
    return bool(session.execute(sa.select(Q.c.id).where(Q.c.idempotency_key == key)).first()
                or session.execute(sa.select(L.c.id).where(L.c.idempotency_key == key))
                .first())


def free_resend_key(session: Session, key: str) -> str:
    """:func:`resend_key`, skipping keys already used (a resend of a resend …)."""
    taken: list[str] = []
    while True:
        candidate = resend_key(key, taken)
        if not key_in_use(session, candidate):
            return candidate
        taken.append(candidate)


def _is_stuck(status: str, claimed_at: datetime | None, now: datetime) -> bool:
    return status == "sending" and (
        claimed_at is None or claimed_at < now - timedelta(seconds=STUCK_AFTER_S))


def retry_message(actor: Actor, queue_id: uuid.UUID) -> str:
    """Resend a failed, uncertain or stuck message on purpose, as a new message.

    The message goes back to pending, due now, under a new idempotency key
    (:func:`resend_key`): the gateway refuses the old key for good once its outcome is
    unknown. The old attempt stays in the message log as it was (failed, or
    ``uncertain`` — the subscriber may already have it), the new attempt gets its own
    row when it goes out, and the audit row names the person who asked.

    Returns:
        The new idempotency key.

    Raises:
        NotFound: no such message in the actor's scope.
        Conflict: the message is not failed, uncertain or stuck in ``sending``.
    """
    require_user(actor)
    now = clock.now()
    with unit_of_work(actor) as uow:
        s = uow.session
        row = _visible_row(uow, queue_id)
        if row.status not in ("failed", "uncertain") and not _is_stuck(
                row.status, row.claimed_at, now):
            raise Conflict(RETRY_CONFLICT)
        old_key = row.idempotency_key
        new_key = free_resend_key(s, old_key)
        was = "uncertain" if row.status in ("uncertain", "sending") else "failed"
        note = row.error_message or (UNCERTAIN_NOTE if was == "uncertain" else "")
        note = " — ".join(filter(None, (note, RESENT_NOTE.format(
            name=actor.name or "pengguna"))))
        # History first: the old attempt keeps a log row of its own (the queue row moves
        # on to the new key). A row already saying sent / delivered stays as it is.
        stmt = insert_for(s)(L).values(
            id=uuid.uuid4(), session_id=row.session_id, owner_id=row.owner_id,
            customer_id=row.customer_id, invoice_id=row.invoice_id, queue_id=row.id,
            message_type=row.message_type, phone=row.phone, content=row.content,
            status=was, error_message=note, idempotency_key=old_key,
            provider_message_id=None, sent_by=row.created_by,
            sent_at=row.claimed_at or row.updated_at or now)
        s.execute(stmt.on_conflict_do_update(
            index_elements=["idempotency_key"],
            set_={"status": stmt.excluded.status, "error_message": stmt.excluded.error_message},
            where=L.c.status.in_(("pending", "sending", "uncertain", "failed"))))
        done = s.execute(sa.update(Q).where(
            Q.c.id == row.id, Q.c.status == row.status,
            Q.c.idempotency_key == old_key).values(
            status="pending", retry_count=0, scheduled_at=now, claimed_at=None,
            claimed_by=None, error_message=None, provider_message_id=None,
            idempotency_key=new_key, created_by=actor.user_id or row.created_by,
            updated_at=now)).rowcount
        if not done:  # settled by a worker this very moment
            raise Conflict(RETRY_CONFLICT)
        uow.audit("wa.queue.retry", "wa_message_queue", row.id, owner_id=row.owner_id,
                  status={"from": row.status, "to": "pending"}, phone=row.phone,
                  key={"from": old_key, "to": new_key}, may_duplicate=was == "uncertain")
    return new_key


def cancel_message(actor: Actor, queue_id: uuid.UUID) -> None:
    """Cancel a message that is still waiting, audited.

    Raises:
        NotFound: no such message in the actor's scope.
        Conflict: the message is no longer pending (being sent, sent, …).
    """
    require_user(actor)
    now = clock.now()
    with unit_of_work(actor) as uow:
        row = _visible_row(uow, queue_id)
        # Conditional: a worker may be claiming it this very moment.
        reason = CANCELLED_BY_USER.format(name=actor.name or "pengguna")
        done = uow.session.execute(sa.update(Q).where(
            Q.c.id == row.id, Q.c.status == "pending").values(
            status="cancelled", updated_at=now, error_message=reason)
            .returning(*_QUEUE_LOG_COLUMNS)).all()
        if not done:
            raise Conflict(CANCEL_CONFLICT)
        _log_skipped(uow.session, [_skip_values(r, reason, now) for r in done])
        uow.audit("wa.queue.cancel", "wa_message_queue", row.id, owner_id=row.owner_id,
                  status={"from": row.status, "to": "cancelled"}, phone=row.phone)


def resume_queue(actor: Actor, owner_id: uuid.UUID | None = None) -> bool:
    """Resume an owner's paused queue (own queue for a mitra), audited.

    Args:
        actor: The owner or the superadmin.
        owner_id: Whose queue (default: the actor's own).

    Returns:
        Whether it was paused (and is now resumed).

    Raises:
        PermissionDenied: a mitra naming another owner.
        ValidationFailed: a system caller without ``owner_id``.
    """
    require_user(actor)
    owner = owner_id or actor.user_id
    if owner is None:
        raise ValidationFailed({"owner_id": "Pilih pemilik antrian."})
    if not can_touch_owner(actor, owner):
        raise PermissionDenied()
    with unit_of_work(actor) as uow:
        row = uow.session.execute(sa.select(S.c.id, S.c.queue_pause_reason).where(
            S.c.user_id == owner)).first()
        if row is None:
            return False
        done = uow.session.execute(sa.update(S).where(
            S.c.id == row.id, S.c.queue_paused_at.is_not(None)).values(
            queue_paused_at=None, queue_pause_reason=None, updated_at=clock.now())).rowcount
        if done:
            uow.audit("wa.queue.resume", "wa_sessions", row.id, owner_id=owner,
                      reason=row.queue_pause_reason)
        return bool(done)


@dataclass(frozen=True)
class QueueOverview:
    """A queue's pacing as the page shows it: one owner's, or every owner's summed up.

    For one owner the fields are that session's. For the superadmin's "all owners"
    view ``owner_id`` is ``None``, counts are summed, ``paused`` means any queue is
    paused (``pause_reason`` names them), ``next_send_at`` is the soonest of the
    queues that are not paused, and ``sessions`` holds each owner's own overview.
    """

    owner_id: uuid.UUID | None
    business_name: str
    session_status: str
    paused: bool
    pause_reason: str | None
    next_send_at: datetime | None
    sent_today: int
    sent_this_hour: int
    max_per_day: int
    max_per_hour: int
    pending: int
    quiet_hours: str | None  # "21:00–06:00", or None
    sessions: list[QueueOverview] = field(default_factory=list)


def queue_overview(actor: Actor, owner_id: uuid.UUID | None = None) -> QueueOverview:
    """Pacing of a queue: paused?, why, next send, sent today / this hour against the caps.

    Args:
        actor: A mitra (their own queue) or the superadmin (every owner's, or
            ``owner_id``'s).
        owner_id: Narrow to one owner.

    Raises:
        PermissionDenied: a mitra naming another owner.
    """
    owner = _owner_scope(actor, owner_id)
    config = load_rate_config()
    now = clock.now()
    today = clock.today()
    window = wa_throttle.quiet_window(config)
    quiet = f"{window[0]:%H:%M}–{window[1]:%H:%M}" if window else None
    users = User.__table__
    stmt = (sa.select(users.c.id, users.c.business_name, S.c.status, S.c.queue_paused_at,
                      S.c.queue_pause_reason, S.c.next_send_at, S.c.day_date, S.c.day_count,
                      S.c.hour_started_at, S.c.hour_count)
            .select_from(users.outerjoin(S, S.c.user_id == users.c.id)))
    pending = sa.select(Q.c.owner_id, sa.func.count()).where(
        Q.c.status == "pending").group_by(Q.c.owner_id)
    if owner is not None:
        stmt = stmt.where(users.c.id == owner)
        pending = pending.where(Q.c.owner_id == owner)
    else:
        stmt = stmt.where(S.c.id.is_not(None))
    with new_session() as s:
        rows = s.execute(stmt.order_by(users.c.business_name)).all()
        waiting = dict(s.execute(pending).all())
    each = []
    for r in rows:
        hour_live = r.hour_started_at is not None and now < r.hour_started_at + wa_throttle.HOUR
        each.append(QueueOverview(
            owner_id=r.id, business_name=r.business_name,
            session_status=str(r.status or WaSessionStatus.DISCONNECTED),
            paused=r.queue_paused_at is not None, pause_reason=r.queue_pause_reason,
            next_send_at=r.next_send_at,
            sent_today=r.day_count if r.day_date == today else 0,
            sent_this_hour=r.hour_count if hour_live else 0,
            max_per_day=config.max_per_day, max_per_hour=config.max_per_hour,
            pending=int(waiting.get(r.id, 0)), quiet_hours=quiet))
    if owner is not None:
        if each:
            return each[0]
        return QueueOverview(owner_id=owner, business_name="",
                             session_status=str(WaSessionStatus.DISCONNECTED), paused=False,
                             pause_reason=None, next_send_at=None, sent_today=0,
                             sent_this_hour=0, max_per_day=config.max_per_day,
                             max_per_hour=config.max_per_hour, pending=0, quiet_hours=quiet)
    paused = [o for o in each if o.paused]
    upcoming = [o.next_send_at for o in each if not o.paused and o.next_send_at and o.pending]
    return QueueOverview(
        owner_id=None, business_name="Semua pemilik",
        session_status=f"{sum(o.session_status == 'connected' for o in each)} terhubung",
        paused=bool(paused),
        pause_reason=(f"{len(paused)} antrian dijeda: "
                      + ", ".join(o.business_name for o in paused)) if paused else None,
        next_send_at=min(upcoming) if upcoming else None,
        sent_today=sum(o.sent_today for o in each),
        sent_this_hour=sum(o.sent_this_hour for o in each),
        max_per_day=config.max_per_day, max_per_hour=config.max_per_hour,
        pending=sum(int(v) for v in waiting.values()), quiet_hours=quiet, sessions=each)


def tick(gateway: Gateway, *, worker_id: str, budget_s: float = 20.0,
         config: RateConfig | None = None) -> dict[str, int]:
    """One Celery tick: settle stale sends, then send what falls due within ``budget_s``.

    Sleeps at most one second at a time, and returns at once when nothing can fall
    due before the budget ends (beat starts another tick every few seconds).

    Returns:
        Messages handled and stale messages reconciled.
    """
    started = time.monotonic()
    reconciled = reconcile_stale(gateway)
    config = config or load_rate_config()
    handled = 0
    while time.monotonic() - started < budget_s:
        n = run_once(gateway, worker_id=worker_id, config=config, max_messages=20)
        handled += n
        if n:
            continue
        wait = seconds_until_due()
        left = budget_s - (time.monotonic() - started)
        if wait is None or wait >= left:
            break
        time.sleep(min(1.0, max(0.05, wait)))
    return {"handled": handled, **{f"reconciled_{k}": v for k, v in reconciled.items()}}


__all__ = [
    "BulkItem", "Claim", "EnqueueResult", "QueueOverview", "QueuePage", "QueueRow",
    "cancel_for_invoice", "cancel_message", "claim_next", "deliver", "enqueue_bulk",
    "enqueue_reminders", "list_queue", "queue_counts", "queue_overview", "reconcile_stale",
    "free_resend_key", "reminder_key", "resend_key", "resume_queue", "retry_message",
    "run_once", "seconds_until_due", "tick", "verify_sessions",
]
