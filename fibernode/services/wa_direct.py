"""Direct WhatsApp sends (no queue): receipts, isolir notices, manual and test messages.

A direct send is two steps. :func:`record_direct` writes a ``wa_message_logs`` row
(status ``pending``, a unique idempotency key) inside the caller's transaction and
registers an after-commit hook, so nothing is sent for a change that rolled back.
After the commit a small thread pool dispatches the row, so the user's request never
waits for WhatsApp:

1. claim it atomically (``pending`` → ``sending``; a second dispatcher gets nothing),
2. the owner's session must be connected, else ``failed`` "Sesi WhatsApp tidak
   terhubung" (the spec wants the attempt logged),
3. the number must be on WhatsApp (cached lookup, :mod:`wa_numbers`),
4. hand it to the gateway with the row's idempotency key, then ``sent`` (with the
   provider's id) or ``failed`` (with the reason). A restricted account (logged out,
   banned, WhatsApp's 463) also pauses the owner's queue.

:func:`sweep_pending` (a Celery beat task, every minute) finishes what a crashed
process left behind: ``pending`` rows are dispatched, stale ``sending`` rows are
settled by asking the gateway whether the key went out, never by sending blindly
(unknown → ``uncertain``). A message sent late is checked first: a receipt whose
payment was reversed, or an isolir notice for a subscriber no longer isolated, is
``skipped`` with the reason instead.

:func:`resend` is the owner's deliberate resend of a failed, uncertain or stuck
message: a new message under a new key (``#ulang-N``), the old row kept as it was.
"""

from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from fibernode import clock
from fibernode.db import insert_for, new_session
from fibernode.models import (
    Customer,
    CustomerStatus,
    Invoice,
    Package,
    Payment,
    User,
    WaMessageLog,
    WaSession,
)
from fibernode.services import receipts as receipts_service
from fibernode.services import wa_numbers, wa_queue, wa_templates
from fibernode.services.context import Actor, require_user
from fibernode.services.crypto import masked_stored_nik
from fibernode.services.errors import Conflict, NotFound
from fibernode.services.scoping import scoped
from fibernode.services.uow import UnitOfWork, unit_of_work
from fibernode.services.wa_sessions import pause_for_restriction
from fibernode.whatsapp.base import (
    ErrorKind,
    Gateway,
    OutgoingMessage,
    SendResult,
    SentLookup,
)

log = logging.getLogger(__name__)

NOT_CONNECTED = "Sesi WhatsApp tidak terhubung"
NOT_ON_WHATSAPP = "Nomor tidak terdaftar di WhatsApp"
SEND_CRASHED = "Terjadi kesalahan saat mengirim pesan."
UNCERTAIN = ("Status pengiriman tidak pasti: proses terhenti saat mengirim. "
             "Periksa di WhatsApp sebelum mengirim ulang.")
RECEIPT_REVERSED = "Nota tidak dikirim: pembayarannya sudah dibatalkan"
RECEIPT_UNPAID = "Nota tidak dikirim: tagihan ini tidak lagi tercatat dibayar"
NOT_ISOLATED = "Pemberitahuan isolir tidak dikirim: pelanggan sudah tidak diisolir"
GONE = "Tagihan atau pelanggan sudah dihapus"
NOT_FOUND_MESSAGE = "Pesan tidak ditemukan."
RESEND_CONFLICT = ("Hanya pesan yang gagal, tidak pasti, atau macet saat dikirim yang bisa "
                   "dikirim ulang.")
QUEUED_RESEND = "Pesan antrian dikirim ulang dari halaman antrian."
SKIPPED = "skipped"
# Which invoice column records a successful send of each message type.
SENT_COLUMNS = {"receipt": "receipt_sent_at", "reminder": "reminder_sent_at",
                "isolation": "isolir_sent_at"}

_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="wa-direct")
_futures_lock = threading.Lock()
_futures: set[Future] = set()
_logs = WaMessageLog.__table__


# --- recording -----------------------------------------------------------------------------


def record_direct(uow: UnitOfWork, *, owner_id: uuid.UUID, customer_id: uuid.UUID | None,
                  invoice_id: uuid.UUID | None, message_type: str, phone: str, content: str,
                  idempotency_key: str, sent_by: uuid.UUID | None) -> uuid.UUID | None:
    """Log a direct send in the caller's transaction and dispatch it after the commit.

    Args:
        uow: The caller's unit of work.
        owner_id: Whose number sends it (the subscriber's owner).
        customer_id: The recipient subscriber, if any.
        invoice_id: The invoice it is about, if any.
        message_type: ``receipt``, ``isolation``, ``reminder``, ``custom`` or ``test``.
        phone: Recipient (``62…``).
        content: The text.
        idempotency_key: Unique per message (``receipt:<payment id>``…); recording the
            same key twice does nothing the second time.
        sent_by: The user who caused it.

    Returns:
        The log row's id, or ``None`` when the key was already recorded.
    """
    session = uow.session
    # The owner's session row if there is one (an owner who never linked has none, and
    # the send then fails as "not connected"); read inside the insert: one round trip.
    session_id = (sa.select(WaSession.id).where(WaSession.user_id == owner_id)
                  .scalar_subquery())
    log_id = uuid.uuid4()
    stmt = insert_for(session)(_logs).values(
        id=log_id, session_id=session_id, owner_id=owner_id, customer_id=customer_id,
        invoice_id=invoice_id, message_type=message_type, phone=phone, content=content,
        status="pending", idempotency_key=idempotency_key, sent_by=sent_by,
        sent_at=clock.now(),
    ).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(_logs.c.id)
    if session.execute(stmt).first() is None:  # the key was already recorded
        return None
    uow.after_commit(lambda: submit(log_id))
    return log_id


def submit(log_id: uuid.UUID) -> Future:
    """Dispatch a recorded row on the background pool (returns at once)."""
    future = _executor.submit(_dispatch_logged, log_id)
    with _futures_lock:
        _futures.add(future)
    future.add_done_callback(_forget)
    return future


def _forget(future: Future) -> None:
    with _futures_lock:
        _futures.discard(future)


def wait_for_dispatch(timeout: float = 10.0) -> bool:
    """Wait until every submitted dispatch has finished (tests, shutdown).

    Returns:
        Whether all finished within ``timeout`` seconds.
    """
    with _futures_lock:
        pending = list(_futures)
    if not pending:
        return True
    _done, not_done = wait_futures(pending, timeout=timeout)
    return not not_done


def _dispatch_logged(log_id: uuid.UUID) -> None:
    try:
        dispatch(log_id)
    except Exception:
        log.exception("direct WhatsApp dispatch of %s failed", log_id)


# --- dispatch ------------------------------------------------------------------------------


def _claim(log_id: uuid.UUID) -> WaMessageLog | None:
    """``pending`` → ``sending`` for exactly one dispatcher; the row, or ``None``."""
    with unit_of_work(Actor.system("wa.direct")).bookkeeping(
            "claim of a send; its outcome is kept in wa_message_logs") as uow:
        claimed = uow.session.execute(sa.update(_logs).where(
            _logs.c.id == log_id, _logs.c.status == "pending").values(
            status="sending", sent_at=clock.now())).rowcount
        return uow.session.get(WaMessageLog, log_id) if claimed == 1 else None


def dispatch(log_id: uuid.UUID, gateway: Gateway | None = None) -> str | None:
    """Send one recorded direct message (runs on the pool, or in the sweep).

    Returns:
        The row's final status, or ``None`` when another dispatcher had it.
    """
    row = _claim(log_id)
    if row is None:
        return None
    if gateway is None:
        from fibernode.whatsapp import get_gateway

        gateway = get_gateway()
    with new_session() as s:
        outdated = no_longer_due(s, row)
        connected = wa_numbers.session_connected(s, row.owner_id)
    if outdated:
        return _skip(row, outdated)
    if not connected:
        return _finish(row, SendResult.failed(ErrorKind.NOT_CONNECTED, NOT_CONNECTED))
    if wa_numbers.check_number(gateway, row.owner_id, row.phone) is False:
        return _finish(row, SendResult.failed(ErrorKind.NOT_ON_WHATSAPP, NOT_ON_WHATSAPP))
    try:
        result = gateway.send_text(OutgoingMessage(
            owner_id=row.owner_id, phone=row.phone, text=row.content,
            idempotency_key=row.idempotency_key, message_type=row.message_type,
            invoice_id=row.invoice_id, customer_id=row.customer_id))
    except Exception:
        log.exception("gateway crashed sending %s", log_id)
        result = SendResult.failed(ErrorKind.TRANSIENT, SEND_CRASHED)
    if result.error_kind == ErrorKind.UNCERTAIN:
        # Maybe sent: leave it 'sending' for the sweep to ask the gateway about.
        return "sending"
    return _finish(row, result)


def _payment_id(key: str | None) -> uuid.UUID | None:
    """The payment a receipt key names (``receipt:<payment id>[#ulang-N]``), if any."""
    head, _, rest = (key or "").partition(":")
    if head != "receipt":
        return None
    try:
        return uuid.UUID(rest.split(wa_queue.RESEND_MARK)[0])
    except ValueError:
        return None


def no_longer_due(session: Session, row: WaMessageLog) -> str | None:
    """Why a receipt or isolir notice must not go out now, or ``None``.

    A direct send normally leaves seconds after the change it tells about; one left
    behind (a crash, the sweep catching up hours later, a resend) may tell something no
    longer true: a receipt of a reversed payment, of an invoice nothing is paid on any
    more, an isolir notice to a subscriber whose service was restored.
    """
    if row.message_type == "receipt" and row.invoice_id is not None:
        paid = session.exec(select(Invoice.paid_amount).where(
            Invoice.id == row.invoice_id)).first()
        if paid is None:
            return GONE
        payment_id = _payment_id(row.idempotency_key)
        if payment_id is not None:
            reversed_at = session.exec(select(Payment.reversed_at).where(
                Payment.id == payment_id)).first()
            if reversed_at is not None:
                return RECEIPT_REVERSED
        if paid <= 0:
            return RECEIPT_UNPAID
    if row.message_type == "isolation" and row.customer_id is not None:
        status = session.exec(select(Customer.status).where(
            Customer.id == row.customer_id)).first()
        if status is None:
            return GONE
        if status != CustomerStatus.ISOLATED:
            return NOT_ISOLATED
    return None


def _skip(row: WaMessageLog, reason: str) -> str:
    """Not sent on purpose: the row says ``skipped`` and why (never vanishes)."""
    with unit_of_work(Actor.system("wa.direct")) as uow:
        uow.bookkeeping("delivery outcome (skipped, with its reason), kept in wa_message_logs")
        uow.session.execute(sa.update(_logs).where(
            _logs.c.id == row.id, _logs.c.status == "sending").values(
            status=SKIPPED, error_message=reason, sent_at=clock.now()))
    return SKIPPED


def _finish(row: WaMessageLog, result: SendResult) -> str:
    """Store the outcome (and its consequences) in one system transaction."""
    now = clock.now()
    status = "sent" if result.ok else "failed"
    if result.error_kind == ErrorKind.UNCERTAIN:
        status = "uncertain"  # maybe delivered: the owner checks, and resends on purpose
    with unit_of_work(Actor.system("wa.direct")) as uow:
        uow.bookkeeping("delivery outcome, kept in wa_message_logs")
        s = uow.session
        # "uncertain" too: a slow send the sweep gave up on still reports what happened.
        s.execute(sa.update(_logs).where(_logs.c.id == row.id,
                                         _logs.c.status.in_(("sending", "uncertain")))
                  .values(status=status, provider_message_id=result.provider_message_id,
                          error_message=None if result.ok else result.error,
                          sent_at=now))
        if result.ok:
            column = SENT_COLUMNS.get(row.message_type)
            if column and row.invoice_id is not None:
                s.execute(sa.update(Invoice.__table__)
                          .where(Invoice.__table__.c.id == row.invoice_id)
                          .values({column: now}))
        elif result.error_kind == ErrorKind.NOT_ON_WHATSAPP:
            wa_numbers.remember(s, {row.phone: False})
        elif result.error_kind == ErrorKind.RESTRICTED:
            pause_for_restriction(uow, row.owner_id, result.error or "")
    return status


# --- sweep ---------------------------------------------------------------------------------


def sweep_pending(older_than_s: int = 60, *, stale_sending_s: int = 300,
                  gateway: Gateway | None = None) -> dict[str, int]:
    """Finish direct sends a crashed process left behind (system job, every minute).

    ``pending`` rows older than ``older_than_s`` are dispatched here (after
    :func:`no_longer_due`: what is no longer true is ``skipped``). ``sending`` rows
    older than ``stale_sending_s`` are settled by the gateway's record of the key:
    went out → ``sent``; did not → dispatched again; unknown → ``uncertain`` with a
    note, never resent blindly (the owner may :func:`resend` it).

    Returns:
        Counts: ``dispatched``, ``sent``, ``uncertain``.
    """
    if gateway is None:
        from fibernode.whatsapp import get_gateway

        gateway = get_gateway()
    now = clock.now()
    counts = {"dispatched": 0, "sent": 0, "uncertain": 0}
    with new_session() as s:
        pending = s.exec(select(WaMessageLog.id).where(
            WaMessageLog.status == "pending", WaMessageLog.queue_id.is_(None),
            WaMessageLog.sent_at < now - timedelta(seconds=older_than_s))
            .order_by(WaMessageLog.sent_at).limit(500)).all()
        stale = s.exec(select(WaMessageLog).where(
            WaMessageLog.status == "sending", WaMessageLog.queue_id.is_(None),
            WaMessageLog.sent_at < now - timedelta(seconds=stale_sending_s))
            .order_by(WaMessageLog.sent_at).limit(500)).all()
    for row in stale:
        try:
            answer = gateway.lookup_sent(row.owner_id, row.idempotency_key or "")
        except Exception:
            log.exception("lookup of %s failed", row.id)
            continue
        if answer == SentLookup.SENT:
            _finish(row, SendResult(ok=True))
            counts["sent"] += 1
        elif answer == SentLookup.NOT_SENT:
            with unit_of_work(Actor.system("wa.direct")).bookkeeping(
                    "a crashed send back to pending, kept in wa_message_logs") as uow:
                back = uow.session.execute(sa.update(_logs).where(
                    _logs.c.id == row.id, _logs.c.status == "sending",
                    _logs.c.sent_at == row.sent_at).values(status="pending")).rowcount
            if back:
                pending.append(row.id)
        else:
            _finish(row, SendResult.failed(ErrorKind.UNCERTAIN, UNCERTAIN))
            counts["uncertain"] += 1
    for log_id in pending:
        if dispatch(log_id, gateway) is not None:
            counts["dispatched"] += 1
    return counts


# --- deliberate resend ---------------------------------------------------------------------


def can_resend(status: str, sent_at: Any, now: Any = None) -> bool:
    """Whether the owner may resend a logged message (failed, uncertain or stuck)."""
    if status in ("failed", "uncertain"):
        return True
    now = now or clock.now()
    return status == "sending" and (
        sent_at is None or sent_at < now - timedelta(seconds=wa_queue.STUCK_AFTER_S))


def resend(actor: Actor, log_id: uuid.UUID) -> uuid.UUID:
    """Resend a failed, uncertain or stuck direct message on purpose, as a new message.

    The gateway refuses a key whose outcome it does not know, for good, so the resend
    is a new log row under ``key#ulang-N`` (sent by ``actor``), dispatched after the
    commit and checked like any late send (:func:`no_longer_due`). The old row stays:
    ``failed``, or ``uncertain`` (a stuck ``sending`` becomes that) with a note that it
    was resent; the subscriber may receive the message twice, and the audit row says
    who chose that.

    Returns:
        The new log row's id.

    Raises:
        NotFound: no such message in the actor's scope.
        Conflict: a queued message (resent from the queue), or one that is not failed,
            uncertain or stuck.
    """
    require_user(actor)
    now = clock.now()
    with unit_of_work(actor) as uow:
        s = uow.session
        row = s.exec(scoped(select(WaMessageLog).where(WaMessageLog.id == log_id), actor,
                            WaMessageLog.owner_id)).first()
        if row is None:
            raise NotFound(NOT_FOUND_MESSAGE)
        if row.queue_id is not None:
            raise Conflict(QUEUED_RESEND)
        if not can_resend(row.status, row.sent_at, now=now):
            raise Conflict(RESEND_CONFLICT)
        before = row.status
        old_key = row.idempotency_key or f"direct:{row.id}"
        new_key = wa_queue.free_resend_key(s, old_key)
        note = row.error_message or (UNCERTAIN if before != "failed" else "")
        note = " — ".join(filter(None, (note, wa_queue.RESENT_NOTE.format(
            name=actor.name or "pengguna"))))
        done = s.execute(sa.update(_logs).where(
            _logs.c.id == row.id, _logs.c.status == before).values(
            status="failed" if before == "failed" else "uncertain",
            error_message=note)).rowcount
        if not done:  # settled by the sweep this very moment
            raise Conflict(RESEND_CONFLICT)
        new_id = record_direct(uow, owner_id=row.owner_id, customer_id=row.customer_id,
                               invoice_id=row.invoice_id, message_type=row.message_type,
                               phone=row.phone, content=row.content, idempotency_key=new_key,
                               sent_by=actor.user_id)
        uow.audit("wa.direct.resend", "wa_message_logs", row.id, owner_id=row.owner_id,
                  status={"from": before, "to": "failed" if before == "failed"
                          else "uncertain"},
                  error_message={"from": row.error_message, "to": note},
                  key={"from": old_key, "to": new_key}, new_log_id=str(new_id),
                  phone=row.phone, may_duplicate=before != "failed")
    return new_id


# --- the messages --------------------------------------------------------------------------


def receipt_text(session: Session, invoice_id: uuid.UUID, *,
                 recorded_by: str | None) -> tuple[Invoice, Customer, str]:
    """The receipt message of an invoice as it stands in ``session``.

    Returns:
        ``(invoice, customer, text)``.
    """
    inv, cust, pkg, owner = session.exec(
        select(Invoice, Customer, Package, User)
        .join(Customer, Customer.id == Invoice.customer_id)
        .join(Package, Package.id == Customer.package_id)
        .join(User, User.id == Invoice.owner_id)
        .where(Invoice.id == invoice_id)).one()
    url = receipts_service.receipt_url(inv.receipt_token) if inv.receipt_token else ""
    template, toggles = wa_templates.receipt_settings(session)
    values = wa_templates.receipt_values(
        customer_name=cust.name, period=inv.period, total_paid=inv.paid_amount,
        business_name=owner.business_name, receipt_url=url, recorded_by=recorded_by,
        paid_at=inv.paid_at or clock.now(), nik_masked=masked_stored_nik(cust.nik),
        package_name=pkg.name, package_speed=pkg.speed, discount=inv.discount,
        method=inv.payment_method, toggles=toggles)
    return inv, cust, wa_templates.render(template, values)


def record_receipt(uow: UnitOfWork, invoice_id: uuid.UUID, *, key: str,
                   recorded_by: str | None) -> uuid.UUID | None:
    """Record the receipt of an invoice (after its payment, same transaction).

    Args:
        uow: The paying transaction.
        invoice_id: The invoice just paid.
        key: Idempotency key (``receipt:<payment id>``, ``receipt-resend:<uuid>``).
        recorded_by: Name shown as "dikonfirmasi oleh".
    """
    inv, cust, text = receipt_text(uow.session, invoice_id, recorded_by=recorded_by)
    return record_direct(uow, owner_id=inv.owner_id, customer_id=cust.id, invoice_id=inv.id,
                         message_type="receipt", phone=cust.phone, content=text,
                         idempotency_key=key, sent_by=uow.actor.user_id)


def isolation_text(session: Session, customer: Customer) -> str:
    """The isolir notice for a subscriber, with its owner's bank details."""
    owner = session.get(User, customer.owner_id)
    values = wa_templates.isolation_values(
        customer_name=customer.name, business_name=owner.business_name,
        bank_name=owner.bank_name, bank_account=owner.bank_account,
        bank_holder=owner.bank_holder)
    return wa_templates.render(wa_templates.load_templates()["isolation"], values)


def latest_open_invoice(session: Session, customer_id: uuid.UUID) -> uuid.UUID | None:
    """The subscriber's newest invoice that is not fully paid (what an isolir is about)."""
    return session.exec(select(Invoice.id).where(
        Invoice.customer_id == customer_id, Invoice.paid_amount < Invoice.total_amount)
        .order_by(Invoice.due_date.desc()).limit(1)).first()


def record_isolation(uow: UnitOfWork, customer: Customer) -> uuid.UUID | None:
    """Record the isolir notice of a subscriber just isolated (same transaction)."""
    text = isolation_text(uow.session, customer)
    stamp = clock.now().strftime("%Y%m%dT%H%M%S%f")
    return record_direct(uow, owner_id=customer.owner_id, customer_id=customer.id,
                         invoice_id=latest_open_invoice(uow.session, customer.id),
                         message_type="isolation", phone=customer.phone, content=text,
                         idempotency_key=f"isolation:{customer.id}:{stamp}",
                         sent_by=uow.actor.user_id)


def reminder_row(session: Session, invoice_id: uuid.UUID,
                 today: Any = None) -> dict[str, Any]:
    """What :func:`wa_templates.reminder_values` needs about one invoice."""
    inv, cust, pkg, owner = session.exec(
        select(Invoice, Customer, Package, User)
        .join(Customer, Customer.id == Invoice.customer_id)
        .join(Package, Package.id == Customer.package_id)
        .join(User, User.id == Invoice.owner_id)
        .where(Invoice.id == invoice_id)).one()
    return reminder_row_of(inv, cust, pkg, owner, today)


def reminder_row_of(inv: Invoice, cust: Customer, pkg: Package, owner: User,
                    today: Any = None) -> dict[str, Any]:
    """:func:`reminder_row` from rows already loaded (bulk sends load them together)."""
    return {"invoice": inv, "customer": cust, "customer_name": cust.name,
            "package_name": pkg.name, "package_speed": pkg.speed, "period": inv.period,
            "total_amount": max(0, inv.total_amount - inv.paid_amount),
            "discount": inv.discount, "due_date": inv.due_date, "bank_name": owner.bank_name,
            "bank_account": owner.bank_account, "bank_holder": owner.bank_holder,
            "business_name": owner.business_name, "today": today or clock.today()}
