"""Invoices (tagihan): the list, payments against the ledger, reversals and overdue figures.

Money moves only through :func:`pay_invoice` and :func:`unpay_invoice`. Each
writes the ``payments`` ledger (a reversal marks rows, never deletes them) and
keeps ``invoices.paid_amount`` equal to the sum of the non-reversed payments, in
the same transaction. Both use the spec's optimistic locking: the caller passes
the ``version`` it displayed, and the update is ``… WHERE id = :id AND version =
:version``; when another user changed the invoice meanwhile nothing is written
and :class:`Conflict` asks to refresh.

Every payment records its WhatsApp receipt (:mod:`wa_direct`) in the same
transaction; it is sent from the owner's number after the commit.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.formatting import rupiah
from fibernode.models import (
    Customer,
    Invoice,
    Package,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Setting,
    User,
)
from fibernode.services import wa_direct, wa_queue
from fibernode.services.context import Actor, require_superadmin, require_user
from fibernode.services.customers import name_or_phone_matches
from fibernode.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fibernode.services.paging import Page, check_per_page
from fibernode.services.scoping import check_owner_filter, scoped
from fibernode.services.uow import unit_of_work
from fibernode.services.validation import PERIOD_RE, clean, too_long

log = logging.getLogger(__name__)

PAGE_SIZE = 20
NOT_FOUND_MESSAGE = "Tagihan tidak ditemukan."
STALE_MESSAGE = "Data sudah diubah oleh user lain, silakan refresh."
ALREADY_PAID_MESSAGE = "Tagihan ini sudah lunas; tidak ada sisa yang perlu dibayar."
NOTHING_TO_REVERSE_MESSAGE = "Tagihan ini belum dibayar; tidak ada pembayaran yang dibatalkan."
STATUS_FILTERS = ("unpaid", "partial", "paid", "overdue")
OVERDUE_DIGEST_KEY = "overdue_digest"

_invoices = Invoice.__table__
_payer = aliased(User, name="payer")
_owner = aliased(User, name="owner")


# --- views ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceView:
    """An invoice as the list, the detail and the pay dialog show it.

    ``remaining`` is what is still to pay; ``overdue`` means the due date (Jakarta)
    has passed and it is not fully paid. ``version`` must be passed back to
    :func:`pay_invoice` / :func:`unpay_invoice`.
    """

    id: uuid.UUID
    customer_id: uuid.UUID
    customer_name: str
    customer_phone: str
    owner_id: uuid.UUID
    area: str  # the owner's business name
    package_name: str
    package_speed: str
    period: str
    due_date: date
    amount: int
    discount: int
    total_amount: int
    paid_amount: int
    remaining: int
    status: PaymentStatus
    overdue: bool
    paid_at: datetime | None
    paid_by_name: str  # "" when nobody recorded a payment
    payment_method: str | None
    payment_note: str | None
    version: int
    receipt_token: str | None
    created_at: datetime


# One page of an invoice list.
InvoicePage = Page[InvoiceView]


@dataclass(frozen=True)
class PaymentView:
    """One ledger row of an invoice; reversed rows keep who reversed them and why."""

    id: uuid.UUID
    amount: int
    method: PaymentMethod
    note: str | None
    recorded_by_name: str
    recorded_at: datetime
    reversed_at: datetime | None
    reversed_by_name: str | None
    reversal_reason: str | None


@dataclass(frozen=True)
class OverdueSummary:
    """Overdue invoices of one owner: how many and how much is still unpaid."""

    owner_id: uuid.UUID
    business_name: str
    count: int
    amount: int


# --- queries -------------------------------------------------------------------------------


def _view_columns():
    return (Invoice, Customer.name, Customer.phone, _owner.business_name, Package.name,
            Package.speed, _payer.name)


def _base(actor: Actor):
    """Invoices the actor may see, with what the views need."""
    return scoped(
        select(*_view_columns())
        .join(Customer, Customer.id == Invoice.customer_id)
        .join(Package, Package.id == Customer.package_id)
        .join(_owner, _owner.id == Invoice.owner_id)
        .outerjoin(_payer, _payer.id == Invoice.paid_by),
        actor, Invoice.owner_id,
    )


def _open():
    """SQL: not fully paid (the predicate of the partial index idx_invoices_open_due)."""
    return Invoice.paid_amount < Invoice.total_amount


def _overdue(today: date):
    return sa.and_(Invoice.due_date < today, _open())


def _to_view(row: Any, today: date) -> InvoiceView:
    inv, name, phone, area, pkg_name, pkg_speed, payer = row
    remaining = max(0, inv.total_amount - inv.paid_amount)
    return InvoiceView(
        id=inv.id, customer_id=inv.customer_id, customer_name=name, customer_phone=phone,
        owner_id=inv.owner_id, area=area, package_name=pkg_name, package_speed=pkg_speed,
        period=inv.period, due_date=inv.due_date, amount=inv.amount, discount=inv.discount,
        total_amount=inv.total_amount, paid_amount=inv.paid_amount, remaining=remaining,
        status=inv.status, overdue=remaining > 0 and inv.due_date < today,
        paid_at=inv.paid_at, paid_by_name=payer or "", payment_method=inv.payment_method,
        payment_note=inv.payment_note, version=inv.version, receipt_token=inv.receipt_token,
        created_at=inv.created_at,
    )


def _period_problem(period: str | None) -> str | None:
    if period is not None and not PERIOD_RE.match(period):
        return "Periode harus berformat TTTT-BB (contoh: 2026-03)."
    return None


def _fetch(session, actor: Actor, invoice_id: uuid.UUID) -> InvoiceView:
    row = session.exec(_base(actor).where(Invoice.id == invoice_id)).first()
    if row is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    return _to_view(row, clock.today())


def list_invoices(actor: Actor, *, page: int = 1, period: str | None = None,
                  status: str | None = None, due_date: date | None = None,
                  owner_id: uuid.UUID | None = None, customer_id: uuid.UUID | None = None,
                  search: str = "", due_from: date | None = None, due_to: date | None = None,
                  per_page: int | None = None) -> InvoicePage:
    """A page of the actor's invoices (20 per page), filtered in SQL.

    Ordered by due date (newest first), then customer name.

    Args:
        actor: Any logged-in user; a mitra sees only its own subscribers' invoices.
        page: 1-based page number.
        period: Only this ``YYYY-MM`` period.
        status: ``unpaid``, ``partial``, ``paid`` or ``overdue`` (due date passed,
            not fully paid).
        due_date: Only invoices due that day.
        owner_id: Only this owner (a mitra may name only itself).
        customer_id: Only this subscriber's invoices.
        search: Part of the customer's name (case-insensitive) or phone digits.
        due_from: Only invoices due on or after this day.
        due_to: Only invoices due on or before this day.
        per_page: Rows a page (default 20, at most 100).

    Raises:
        PermissionDenied: a mitra filters by another owner.
        ValidationFailed: unknown status, malformed period, ``due_to`` before
            ``due_from`` or a bad ``per_page``.
    """
    require_user(actor)
    check_owner_filter(actor, owner_id)
    size = check_per_page(per_page, PAGE_SIZE)
    if due_from is not None and due_to is not None and due_to < due_from:
        raise ValidationFailed({"due_to": "Tanggal akhir tidak boleh sebelum tanggal awal."})
    status = clean(status) or None
    if status is not None and status not in STATUS_FILTERS:
        raise ValidationFailed({"status": "Status tagihan tidak dikenal."})
    period = clean(period) or None
    if (p := _period_problem(period)):
        raise ValidationFailed({"period": p})
    today = clock.today()
    conds: list[Any] = []
    if period is not None:
        conds.append(Invoice.period == period)
    if status == "overdue":
        conds.append(_overdue(today))
    elif status == "paid":
        conds.append(Invoice.status == PaymentStatus.PAID)
    elif status is not None:
        # Unpaid and partly paid invoices are open: saying so lets the planner use the
        # small partial indexes of open invoices.
        conds += [Invoice.status == PaymentStatus(status), _open()]
    if due_date is not None:
        conds.append(Invoice.due_date == due_date)
    if due_from is not None:
        conds.append(Invoice.due_date >= due_from)
    if due_to is not None:
        conds.append(Invoice.due_date <= due_to)
    if owner_id is not None:
        conds.append(Invoice.owner_id == owner_id)
    if customer_id is not None:
        conds.append(Invoice.customer_id == customer_id)
    term = name_or_phone_matches(search)
    if term is not None:
        conds.append(term)
    page = max(1, int(page or 1))
    # First the page's ids, from invoices and customers only (the order needs the
    # name); then those 20 rows with everything the view shows.
    ids_q = scoped(select(Invoice.id).join(Customer, Customer.id == Invoice.customer_id)
                   .where(*conds), actor, Invoice.owner_id)
    due = Invoice.due_date
    if term is not None or customer_id is not None or due_date is not None:
        # Few matches: gather them all (through the name/phone search index, the
        # customer or the day) and sort; an expression the due-date indexes cannot
        # serve keeps the planner from walking those indexes in order instead.
        due = sa.func.coalesce(Invoice.due_date, Invoice.due_date)
    ids_q = ids_q.order_by(due.desc(), sa.func.lower(Customer.name), Invoice.id)
    count_q = select(sa.func.count()).select_from(Invoice).where(*conds)
    if term is not None:  # only the search needs the customers in the count
        count_q = count_q.join(Customer, Customer.id == Invoice.customer_id)
    count_q = scoped(count_q, actor, Invoice.owner_id)
    with new_session() as s:
        if s.get_bind().dialect.name == "postgresql":
            # A page query: parallel workers only add start-up cost, and steer the planner
            # to scanning every subscriber instead of using the search index.
            s.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))
            one_owner = owner_id is not None or not (actor.is_superadmin or actor.is_system)
            if term is not None and one_owner:
                # One owner's invoices are few: look their customers up one by one rather
                # than testing the search on every subscriber (which a broad term, like a
                # phone prefix, makes the planner prefer).
                s.execute(sa.text("SET LOCAL enable_hashjoin = off"))
        ids = list(s.exec(ids_q.offset((page - 1) * size).limit(size)).all())
        short_first_page = page == 1 and len(ids) < size  # then it holds them all
        total = len(ids) if short_first_page else s.exec(count_q).one()
        rows = s.exec(_base(actor).where(Invoice.id.in_(ids))).all() if ids else []
    by_id = {row[0].id: row for row in rows}
    # (An invoice deleted between the two statements is simply left out.)
    items = [_to_view(by_id[i], today) for i in ids if i in by_id]
    return InvoicePage(items, int(total), page, size)


def get_invoice(actor: Actor, invoice_id: uuid.UUID) -> InvoiceView:
    """One invoice in the actor's scope.

    Raises:
        NotFound: no such invoice, or another tenant's.
    """
    require_user(actor)
    with new_session() as s:
        return _fetch(s, actor, invoice_id)


def list_payments(actor: Actor, invoice_id: uuid.UUID) -> list[PaymentView]:
    """The ledger of one invoice, oldest first, reversed rows included.

    Raises:
        NotFound: no such invoice in the actor's scope.
    """
    require_user(actor)
    recorder, reverser = aliased(User, name="recorder"), aliased(User, name="reverser")
    with new_session() as s:
        visible = s.exec(scoped(select(Invoice.id).where(Invoice.id == invoice_id),
                                actor, Invoice.owner_id)).first()
        if visible is None:
            raise NotFound(NOT_FOUND_MESSAGE)
        rows = s.exec(
            select(Payment, recorder.name, reverser.name)
            .join(recorder, recorder.id == Payment.recorded_by)
            .outerjoin(reverser, reverser.id == Payment.reversed_by)
            .where(Payment.invoice_id == invoice_id)
            .order_by(Payment.recorded_at, Payment.id)
        ).all()
    return [PaymentView(p.id, p.amount, p.method, p.note, rec, p.recorded_at, p.reversed_at,
                        rev, p.reversal_reason) for p, rec, rev in rows]


# --- payments ------------------------------------------------------------------------------


def _require_person(actor: Actor) -> None:
    """Money is recorded by a logged-in user (the ledger names who), never by a job."""
    require_user(actor)
    if not actor.is_authenticated:
        raise PermissionDenied("Pembayaran hanya dapat dicatat oleh pengguna yang login.")


def _method(value: PaymentMethod | str) -> PaymentMethod:
    try:
        return PaymentMethod(value)
    except ValueError as exc:
        raise ValidationFailed({"method": "Metode pembayaran tidak dikenal."}) from exc


def _derive_status(paid: int, total: int) -> PaymentStatus:
    if paid >= total:
        return PaymentStatus.PAID
    return PaymentStatus.PARTIAL if paid > 0 else PaymentStatus.UNPAID


def _load_for_change(session, actor: Actor, invoice_id: uuid.UUID, version: int):
    """The invoice (if the actor may touch it) and its ledger total, at ``version``.

    One statement reads both, so they come from the same snapshot: read apart, a
    payment committed in between could pair the old version with the new total.
    """
    ledger = (select(sa.func.coalesce(sa.func.sum(Payment.amount), 0))
              .where(Payment.invoice_id == Invoice.id, Payment.reversed_at.is_(None))
              .scalar_subquery())
    row = session.exec(scoped(select(Invoice, ledger).where(Invoice.id == invoice_id),
                              actor, Invoice.owner_id)).first()
    if row is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    inv, paid = row
    if inv.version != version:
        raise Conflict(STALE_MESSAGE)
    return inv, int(paid)


def _guarded_update(session, invoice_id: uuid.UUID, version: int, **values: Any) -> None:
    """``UPDATE invoices SET … WHERE id = :id AND version = :version`` (optimistic lock)."""
    changed = session.execute(
        sa.update(_invoices)
        .where(_invoices.c.id == invoice_id, _invoices.c.version == version)
        .values(version=_invoices.c.version + 1, updated_at=clock.now(), **values)
    ).rowcount
    if changed != 1:
        raise Conflict(STALE_MESSAGE)


def _snapshot(inv_values: dict[str, Any]) -> dict[str, Any]:
    keys = ("paid_amount", "status", "paid_at", "paid_by", "payment_method", "version")
    return {k: inv_values[k] for k in keys}


def pay_invoice(actor: Actor, invoice_id: uuid.UUID, *, version: int,
                method: PaymentMethod | str, amount: int | None = None,
                note: str = "") -> InvoiceView:
    """Record a payment (full or partial) against an invoice.

    Writes one ``payments`` row and sets the invoice's ``paid_amount`` to the
    ledger total; the status follows (``paid`` once the total is covered,
    ``partial`` while something is paid). ``paid_at`` is the server time of the
    payment that completes the invoice. The WhatsApp receipt is recorded with the
    payment and sent after the commit; a fully paid invoice's queued reminders are
    cancelled.

    Args:
        actor: Superadmin, or the mitra owning the invoice.
        invoice_id: The invoice.
        version: The ``version`` the user saw (optimistic lock).
        method: ``cash``, ``transfer`` or ``qris``.
        amount: Rupiah received, 1 up to the remaining amount; ``None`` pays it all.
        note: Optional note (e.g. transfer reference).

    Raises:
        NotFound: no such invoice in the actor's scope.
        Conflict: the invoice changed since ``version``, or is already fully paid.
        ValidationFailed: bad method, amount or note.
    """
    _require_person(actor)
    method = _method(method)
    note = clean(note)
    if (p := too_long(note, "Catatan", 1000)):
        raise ValidationFailed({"note": p})
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
        raise ValidationFailed({"amount": "Jumlah bayar harus berupa angka bulat."})
    if amount is not None and amount < 1:
        raise ValidationFailed({"amount": "Jumlah bayar minimal Rp 1."})
    with unit_of_work(actor) as uow:
        s = uow.session
        inv, paid = _load_for_change(s, actor, invoice_id, version)
        remaining = inv.total_amount - paid
        if remaining <= 0:
            raise Conflict(ALREADY_PAID_MESSAGE)
        if amount is None:
            amount = remaining
        elif amount > remaining:
            raise ValidationFailed({"amount": "Jumlah bayar melebihi sisa tagihan "
                                              f"({rupiah(remaining)})."})
        now = clock.now()
        new_paid = paid + amount
        before = _snapshot(inv.model_dump())
        after = {
            "paid_amount": new_paid,
            "status": _derive_status(new_paid, inv.total_amount),
            "paid_at": now if new_paid >= inv.total_amount else inv.paid_at,
            "paid_by": actor.user_id,
            "payment_method": method.value,
            "payment_note": note or None,
        }
        _guarded_update(s, invoice_id, version, **after)
        payment = Payment(invoice_id=invoice_id, owner_id=inv.owner_id, amount=amount,
                          method=method, note=note or None, recorded_by=actor.user_id,
                          recorded_at=now)
        s.add(payment)
        after["version"] = version + 1
        uow.audit("invoice.pay", "invoices", invoice_id, amount=amount, method=method,
                  before=before, after=_snapshot(after))
        s.flush()
        s.expire_all()
        view = _fetch(s, actor, invoice_id)
        # The receipt goes out from the owner's number once this commits (never if it
        # rolls back); a fully paid invoice leaves the reminder queue.
        wa_direct.record_receipt(uow, invoice_id, key=f"receipt:{payment.id}",
                                 recorded_by=actor.name or None)
        if view.remaining <= 0:
            wa_queue.cancel_for_invoice(s, invoice_id)
    return view


def unpay_invoice(actor: Actor, invoice_id: uuid.UUID, *, version: int,
                  reason: str) -> InvoiceView:
    """Reverse every payment of an invoice (it becomes unpaid again).

    The ledger rows are marked reversed (who, when, why), never deleted.

    Args:
        actor: Superadmin, or the mitra owning the invoice.
        invoice_id: The invoice.
        version: The ``version`` the user saw (optimistic lock).
        reason: Why (required).

    Raises:
        NotFound: no such invoice in the actor's scope.
        Conflict: the invoice changed since ``version``, or has no payment to reverse.
        ValidationFailed: no reason.
    """
    _require_person(actor)
    reason = clean(reason)
    if not reason:
        raise ValidationFailed({"reason": "Alasan pembatalan pembayaran wajib diisi."})
    if (p := too_long(reason, "Alasan", 500)):
        raise ValidationFailed({"reason": p})
    with unit_of_work(actor) as uow:
        s = uow.session
        inv, paid = _load_for_change(s, actor, invoice_id, version)
        if paid <= 0 and inv.paid_amount <= 0:
            raise Conflict(NOTHING_TO_REVERSE_MESSAGE)
        now = clock.now()
        before = _snapshot(inv.model_dump())
        after = {"paid_amount": 0, "status": PaymentStatus.UNPAID, "paid_at": None,
                 "paid_by": None, "payment_method": None, "payment_note": None}
        _guarded_update(s, invoice_id, version, **after)
        reversed_count = s.execute(
            sa.update(Payment.__table__)
            .where(Payment.__table__.c.invoice_id == invoice_id,
                   Payment.__table__.c.reversed_at.is_(None))
            .values(reversed_at=now, reversed_by=actor.user_id, reversal_reason=reason)
        ).rowcount
        after["version"] = version + 1
        uow.audit("invoice.unpay", "invoices", invoice_id, reason=reason,
                  reversed_payments=reversed_count, reversed_amount=paid,
                  before=before, after=_snapshot(after))
        s.expire_all()
        return _fetch(s, actor, invoice_id)


# --- overdue -------------------------------------------------------------------------------


def overdue_by_owner(actor: Actor, today: date | None = None) -> list[OverdueSummary]:
    """Overdue invoices per owner (count and unpaid amount), largest amount first.

    Args:
        actor: Superadmin sees every owner, a mitra only itself.
        today: The reference day (default: today in Jakarta).
    """
    require_user(actor)
    today = today or clock.today()
    q = scoped(
        select(Invoice.owner_id, User.business_name, sa.func.count(),
               sa.func.sum(Invoice.total_amount - Invoice.paid_amount))
        .join(User, User.id == Invoice.owner_id)
        .where(_overdue(today))
        .group_by(Invoice.owner_id, User.business_name),
        actor, Invoice.owner_id,
    )
    with new_session() as s:
        rows = s.exec(q).all()
    out = [OverdueSummary(owner_id, name, int(count), int(amount or 0))
           for owner_id, name, count, amount in rows]
    return sorted(out, key=lambda o: (-o.amount, o.business_name))


def refresh_overdue_digest(actor: Actor, today: date | None = None) -> dict[str, Any]:
    """Store today's :func:`overdue_by_owner` in setting ``overdue_digest`` (daily job).

    The value is JSON: ``{"date": "YYYY-MM-DD", "generated_at": ISO time, "owners":
    [{"owner_id", "business_name", "count", "amount"}, …]}``; the dashboard reads it
    with :func:`fibernode.services.dashboard.overdue_digest`.

    Returns:
        The stored document.
    """
    require_superadmin(actor)
    today = today or clock.today()
    owners = overdue_by_owner(Actor.system("overdue_digest"), today)
    doc = {
        "date": today.isoformat(),
        "generated_at": clock.now().isoformat(),
        "owners": [{**asdict(o), "owner_id": str(o.owner_id)} for o in owners],
    }
    value = json.dumps(doc, ensure_ascii=False)
    with unit_of_work(actor) as uow:
        s = uow.session
        row = s.exec(select(Setting).where(Setting.key == OVERDUE_DIGEST_KEY)).first()
        if row is None:
            s.add(Setting(key=OVERDUE_DIGEST_KEY, value=value))
        else:
            row.value = value
            row.updated_at = clock.now()
        uow.audit("invoice.overdue_digest", "settings", None, date=doc["date"],
                  owners=len(owners), count=sum(o.count for o in owners),
                  amount=sum(o.amount for o in owners))
    return doc


def visible_invoices(actor: Actor):
    """The scoped select of invoices with customer, package, owner and payer columns.

    Rows turn into views with :func:`to_views`; the dashboard builds its
    "due soon" list on it. Not a use case: it reads nothing by itself.
    """
    return _base(actor)


def open_invoices():
    """SQL condition: the invoice is not fully paid."""
    return _open()


def to_views(rows, today: date | None = None) -> list[InvoiceView]:
    """Rows of :func:`visible_invoices` as views (``overdue`` relative to ``today``)."""
    today = today or clock.today()
    return [_to_view(r, today) for r in rows]
