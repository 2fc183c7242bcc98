"""Prepaid invoice generation: the daily H-1 run and the superadmin's manual run.

The rule (spec "Sistem Pra-Bayar" and "Scheduler"): a subscriber with billing day
``D`` owes, on day ``D`` of month ``M`` (the due date), the invoice for the service
month ``M + 1``. That invoice is created the day before the due date (H-1) by the
06:00 Asia/Jakarta job. Example: on 4 Feb 2026 the subscribers with ``D = 5`` get
the ``2026-03`` invoice due 5 Feb 2026; on 31 Jan 2026 those with ``D = 1`` get the
``2026-03`` invoice due 1 Feb 2026. Billing days run 1..28, so run dates whose next
day is the 29th, 30th or 31st bill nobody.

Who is billed for a cycle (the same rule for the scheduled and the manual run):

* status ``active`` only: ``isolated`` and ``inactive`` subscribers are skipped;
* registered on or before the H-1 date (``register_date < due_date``): a subscriber
  who joins after that gets the first invoice at the next H-1 instead.

An invoice snapshots the package price (``amount``) and the subscriber's discount
at generation time; later changes to either never touch issued invoices.

Runs are set-based (one ``INSERT … SELECT`` per period, whatever the number of
subscribers) and idempotent: ``ON CONFLICT (customer_id, period) DO NOTHING`` on the
unique index ``idx_invoices_customer_period`` makes a manual run racing the scheduled
run create each invoice once. Rows are inserted in subscriber order, so two racing
runs never deadlock. After committing a run that created many invoices, the table's
statistics are refreshed (PostgreSQL) so the planner knows the new period.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from fibernode import clock
from fibernode.db import new_session
from fibernode.formatting import month_year
from fibernode.models import (
    AwareDateTime,
    Customer,
    CustomerStatus,
    Invoice,
    Package,
    PaymentStatus,
    Setting,
    User,
)
from fibernode.models.types import new_id
from fibernode.services.context import Actor, require_superadmin
from fibernode.services.errors import ValidationFailed
from fibernode.services.uow import UnitOfWork, unit_of_work

# ``settings`` key holding the last run date (ISO) of the scheduled job.
LAST_RUN_KEY = "billing_last_run_date"
# A scheduled run catches up at most this many run dates (today included).
MAX_CATCH_UP_DAYS = 31
# Manual runs: how far from the current month the chosen period may be.
MAX_MONTHS_AHEAD = 2
MAX_MONTHS_BACK = 12
BILLING_DAYS = range(1, 29)

# Why a subscriber of a processed billing day got no invoice.
SKIP_ISOLATED = "isolated"
SKIP_INACTIVE = "inactive"
SKIP_REGISTERED_LATE = "registered_late"  # registered after the cycle's H-1 date
SKIP_REASONS = (SKIP_ISOLATED, SKIP_INACTIVE, SKIP_REGISTERED_LATE)

log = logging.getLogger(__name__)

# Attempts of a run whose insert met a subscriber deleted meanwhile (see below).
RUN_ATTEMPTS = 3
# A run creating at least this many invoices refreshes the table's statistics.
ANALYZE_AFTER_ROWS = 1_000

SCHEDULED_ACTOR = "celery.billing"
PERIOD_FORMAT_MESSAGE = "Periode harus berformat TTTT-BB, contoh 2026-03."
OWNER_MESSAGE = "Pemilik pelanggan tidak ditemukan."

_PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class Cycle(NamedTuple):
    """One billing cycle: subscribers with ``billing_day`` owe ``period`` on ``due_date``."""

    due_date: date
    period: str
    billing_day: int


@dataclass(frozen=True)
class BillingRunResult:
    """What a run did (or, for a preview, would do).

    Attributes:
        periods: The invoice periods processed (``YYYY-MM``), oldest first.
        run_dates: The H-1 dates a scheduled run processed (empty for manual runs).
        created: Invoices inserted by this run (a preview: that would be inserted).
        already_existed: Eligible subscribers whose invoice was there already.
        skipped: Subscribers of the processed billing days left out, by reason
            (every key of ``SKIP_REASONS``, zero included).
        owner_id: The one owner the run was limited to, or ``None`` for all.
        dry_run: True for :func:`preview_billing` (nothing was written).
    """

    periods: tuple[str, ...]
    run_dates: tuple[date, ...] = ()
    created: int = 0
    already_existed: int = 0
    skipped: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))
    owner_id: uuid.UUID | None = None
    dry_run: bool = False

    @property
    def eligible(self) -> int:
        """Subscribers that are (now) billed for the processed cycles."""
        return self.created + self.already_existed

    @property
    def skipped_total(self) -> int:
        """Subscribers of the processed billing days that were left out."""
        return sum(self.skipped.values())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (Celery results, audit rows)."""
        return {
            "periods": list(self.periods),
            "run_dates": [d.isoformat() for d in self.run_dates],
            "created": self.created,
            "already_existed": self.already_existed,
            "skipped": dict(self.skipped),
            "owner_id": str(self.owner_id) if self.owner_id else None,
            "dry_run": self.dry_run,
        }


# --- calendar arithmetic (pure) ------------------------------------------------------------


def _shift_month(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def format_period(year: int, month: int) -> str:
    """``YYYY-MM`` of a year and month."""
    return f"{year:04d}-{month:02d}"


def periods_around(day: date, back: int, ahead: int) -> list[str]:
    """Periods from ``ahead`` months after ``day``'s month back to ``back`` months before."""
    return [format_period(*_shift_month(day.year, day.month, delta))
            for delta in range(ahead, -back - 1, -1)]


def parse_period(period: str) -> tuple[int, int]:
    """Year and month of a ``YYYY-MM`` period.

    Raises:
        ValidationFailed: the text is not a valid ``YYYY-MM`` period.
    """
    match = _PERIOD_RE.match(period.strip()) if isinstance(period, str) else None
    if match is None or int(match.group(1)) < 2000:
        raise ValidationFailed({"period": PERIOD_FORMAT_MESSAGE})
    return int(match.group(1)), int(match.group(2))


def period_after(due_date: date) -> str:
    """The service month billed on ``due_date``: the month after the due date's month."""
    return format_period(*_shift_month(due_date.year, due_date.month, 1))


def due_date_for(period: str, billing_day: int) -> date:
    """The due date of ``period`` for billing day ``billing_day``: that day of the month before.

    Raises:
        ValidationFailed: a malformed period.
        ValueError: a billing day outside 1..28.
    """
    if billing_day not in BILLING_DAYS:
        raise ValueError(f"billing day out of range: {billing_day}")
    year, month = _shift_month(*parse_period(period), -1)
    return date(year, month, billing_day)


def cycle_for_run_date(run_date: date) -> list[Cycle]:
    """The cycles whose invoices are created on ``run_date`` (H-1 of their due date).

    Returns:
        One cycle, or none when tomorrow is the 29th, 30th or 31st (no subscriber
        has those billing days).
    """
    due = run_date + timedelta(days=1)
    if due.day not in BILLING_DAYS:
        return []
    return [Cycle(due, period_after(due), due.day)]


def run_dates_to_process(last_run: date | None, today: date) -> list[date]:
    """The H-1 dates a scheduled run on ``today`` processes, oldest first.

    Every date after the last completed run through ``today``, at most
    ``MAX_CATCH_UP_DAYS`` of them. ``today`` is always included, so a second run
    on the same day picks up subscribers added since (creating nothing twice).
    The very first run (``last_run`` is ``None``) processes ``today`` only.
    """
    if last_run is None or last_run >= today:
        start = today
    else:
        start = max(last_run + timedelta(days=1),
                    today - timedelta(days=MAX_CATCH_UP_DAYS - 1))
    return [start + timedelta(days=i) for i in range((today - start).days + 1)]


def months_between(from_period: str, to_period: str) -> int:
    """How many months ``to_period`` lies after ``from_period`` (negative: before)."""
    fy, fm = parse_period(from_period)
    ty, tm = parse_period(to_period)
    return (ty * 12 + tm) - (fy * 12 + fm)


# --- SQL -----------------------------------------------------------------------------------


# Per new invoice on PostgreSQL: its id as 32 hex characters and its receipt token,
# 24 random bytes as 32 URL-safe base64 characters (``secrets.token_urlsafe(24)``).
_TEXT_WIDTH = 32
_TOKEN_BYTES = 24
# Set the version (7) and variant bits of a UUID's bytes 6 and 8.
_UUID_V7 = bytes((b & 0x0F) | 0x70 for b in range(256))
_UUID_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))


def _receipt_token() -> str:
    return secrets.token_urlsafe(_TOKEN_BYTES)


def _uuid_hex() -> str:
    return uuid.uuid4().hex


def _random_ids(rows: int, now: datetime) -> bytes:
    """``rows`` UUIDv7 ids of the run time, as 32 ASCII hex characters each.

    UUIDv7 (RFC 9562): the Unix time in milliseconds, then 74 random bits from the
    OS CSPRNG. A run's ids thus land together at the end of the primary key index
    instead of on random pages of it, which on a large invoices table is a good
    part of an insert's cost. They reveal only when the invoice was created, which
    the row says anyway; the receipt token stays fully random.
    """
    raw = bytearray(secrets.token_bytes(rows * 16))
    stamp = int(now.timestamp() * 1000).to_bytes(6, "big")
    # Strided slice assignments and bytes.translate: C speed, no Python loop per row.
    for i, byte in enumerate(stamp):
        raw[i::16] = bytes((byte,)) * rows
    raw[6::16] = raw[6::16].translate(_UUID_V7)
    raw[8::16] = raw[8::16].translate(_UUID_VARIANT)
    return raw.hex().encode("ascii")


def _random_tokens(rows: int) -> bytes:
    """``rows`` receipt tokens of 32 URL-safe characters (192 bits each), back to back.

    24 bytes encode to exactly 32 base64 characters, so encoding all the bytes at
    once gives each row's token at a fixed offset.
    """
    return base64.urlsafe_b64encode(secrets.token_bytes(rows * _TOKEN_BYTES))


def _url_safe_base64(raw: Any) -> Any:
    """SQL: ``raw`` (bytea) as unpadded URL-safe base64, like ``secrets.token_urlsafe``."""
    return sa.func.rtrim(sa.func.translate(sa.func.encode(raw, "base64"), "+/", "-_"), "=")


def _random_columns(session: Session, rn: Any, rows: int,
                    now: datetime) -> tuple[Any, Any]:
    """SQL expressions for a fresh invoice id and receipt token, per row number ``rn``.

    The token must be unguessable (it opens the public receipt page), so it comes
    from a CSPRNG while the insert stays one set-based statement:

    * PostgreSQL: the ids (:func:`_random_ids`) and tokens (:func:`_random_tokens`,
      from ``secrets``) of all rows are made in Python in two bulk calls and sent
      as two ``bytea`` parameters; row ``rn`` takes its 32 characters of each with
      ``substr`` (constant time on ``bytea``). pgcrypto may be missing, and
      ``gen_random_uuid()`` (core since PostgreSQL 13, also CSPRNG-backed) costs
      microseconds a call on small servers, three calls a row: a large share of a
      100,000-row run. Rows beyond the prepared ones (subscribers that became
      eligible after the count) fall back to it, so the count never matters for
      correctness.
    * SQLite: Python functions registered on the connection (``secrets`` and
      ``uuid4``), called by SQLite once per row of the same single statement.

    Both give 32-character tokens of ``[A-Za-z0-9_-]``.
    """
    if session.get_bind().dialect.name != "postgresql":
        dbapi = session.connection().connection.dbapi_connection
        dbapi.create_function("fibernode_receipt_token", 0, _receipt_token)
        # SQLite keeps UUIDs as 32 hex characters (SQLAlchemy's non-native ``Uuid``).
        dbapi.create_function("fibernode_uuid_hex", 0, _uuid_hex)
        return sa.func.fibernode_uuid_hex(), sa.func.fibernode_receipt_token()
    ids = sa.literal(_random_ids(rows, now), sa.LargeBinary())
    tokens = sa.literal(_random_tokens(rows), sa.LargeBinary())
    start = sa.cast((rn - 1) * _TEXT_WIDTH + 1, sa.Integer())  # row_number() is a bigint

    def nth(block: Any) -> Any:
        # Past the block's end substr gives an empty value, which NULLIF makes NULL.
        return sa.func.nullif(
            sa.func.convert_from(sa.func.substr(block, start, _TEXT_WIDTH), "UTF8"), "")

    fallback_token = _url_safe_base64(sa.func.substr(
        sa.func.uuid_send(sa.func.gen_random_uuid())
        .op("||")(sa.func.uuid_send(sa.func.gen_random_uuid())), 1, _TOKEN_BYTES))
    return (sa.func.coalesce(sa.cast(nth(ids), sa.Uuid()), sa.func.gen_random_uuid()),
            sa.func.coalesce(nth(tokens), fallback_token))


def _due_expr(days: Mapping[int, date]) -> Any:
    """The due date of each subscriber row for a period, from its billing day."""
    if len(days) == 1:
        [due] = days.values()
        return sa.literal(due, sa.Date())
    return sa.case({day: sa.literal(due, sa.Date()) for day, due in days.items()},
                   value=Customer.billing_date)


def _scope(days: Mapping[int, date], owner_id: uuid.UUID | None) -> list[Any]:
    """The subscribers whose billing day is processed (optionally of one owner)."""
    conds: list[Any] = []
    if set(days) != set(BILLING_DAYS):
        conds.append(Customer.billing_date.in_(sorted(days)))
    if owner_id is not None:
        conds.append(Customer.owner_id == owner_id)
    return conds


def _eligible(due: Any) -> Any:
    return sa.and_(Customer.status == CustomerStatus.ACTIVE, Customer.register_date < due)


def _count(session: Session, period: str, days: Mapping[int, date],
           owner_id: uuid.UUID | None, *, with_existing: bool) -> dict[str, int]:
    """Eligible and skipped subscribers of one period's billing days, in one pass.

    With ``with_existing``, also how many eligible ones have the period's invoice.
    That is a LEFT JOIN (at most one invoice per subscriber and period), not a
    correlated EXISTS: right after a large run the statistics still think the new
    period is empty, and the planner may then probe the EXISTS through the period
    index and scan the whole period once per subscriber (minutes instead of
    milliseconds); a join it plans as one pass either way.
    """
    due = _due_expr(days)
    eligible = _eligible(due)
    columns = [
        sa.func.count().filter(eligible),
        sa.func.count().filter(Customer.status == CustomerStatus.ISOLATED),
        sa.func.count().filter(Customer.status == CustomerStatus.INACTIVE),
        sa.func.count().filter(Customer.status == CustomerStatus.ACTIVE,
                               Customer.register_date >= due),
    ]
    source: Any = Customer.__table__
    if with_existing:
        columns.append(sa.func.count(Invoice.id).filter(eligible))
        source = source.outerjoin(Invoice, sa.and_(Invoice.customer_id == Customer.id,
                                                   Invoice.period == period))
    row = session.execute(
        sa.select(*columns).select_from(source).where(*_scope(days, owner_id))
    ).one()
    counts = {"eligible": row[0], SKIP_ISOLATED: row[1], SKIP_INACTIVE: row[2],
              SKIP_REGISTERED_LATE: row[3]}
    if with_existing:
        counts["existing"] = row[4]
    return counts


def _insert(session: Session, period: str, days: Mapping[int, date],
            owner_id: uuid.UUID | None, now: datetime, expected: int) -> int:
    """Create the period's missing invoices in one ``INSERT … SELECT``; returns how many.

    ``expected`` is how many rows the select will roughly yield (random bytes are
    drawn for that many; any more fall back to the database's generator).
    """
    due = _due_expr(days)
    # A discount above the price cannot happen through the services (package price
    # changes refuse it); capping it keeps a hand-edited row from failing the whole
    # run on ck_invoices_total_amount.
    discount = sa.case((Customer.discount > Package.price, Package.price),
                       else_=Customer.discount)
    missing = ~sa.select(1).where(Invoice.customer_id == Customer.id,
                                  Invoice.period == period).exists()
    # The same row order in every run: two runs racing on PostgreSQL then wait for
    # each other's uncommitted keys in one direction only (no deadlock).
    candidates = (
        sa.select(Customer.id.label("customer_id"), Customer.owner_id.label("owner_id"),
                  Package.price.label("amount"), discount.label("discount"),
                  due.label("due_date"),
                  sa.func.row_number().over(order_by=Customer.id).label("rn"))
        .select_from(Customer)
        .join(Package, Package.id == Customer.package_id)
        # Skipping invoices that exist already spares a re-run drawing random values
        # and probing the unique index; ON CONFLICT still settles a concurrent run.
        .where(_eligible(due), missing, *_scope(days, owner_id))
        .subquery("candidates")
    )
    c = candidates.c
    invoice_id, token = _random_columns(session, c.rn, expected, now)
    stamp = sa.literal(now, AwareDateTime())
    rows = sa.select(
        invoice_id, c.customer_id, c.owner_id, sa.literal(period, sa.String()), c.amount,
        c.discount, c.amount - c.discount, sa.literal(0, sa.Integer()),
        sa.cast(sa.literal(PaymentStatus.UNPAID.value), Invoice.__table__.c.status.type),
        c.due_date, token, sa.literal(1, sa.Integer()), stamp, stamp,
    )
    # SQLite would read an ON CONFLICT right after a bare FROM as part of it: keep a WHERE.
    rows = rows.where(sa.true()).order_by(c.customer_id)
    table = Invoice.__table__
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).from_select(
        ["id", "customer_id", "owner_id", "period", "amount", "discount", "total_amount",
         "paid_amount", "status", "due_date", "receipt_token", "version", "created_at",
         "updated_at"],
        rows,
    ).on_conflict_do_nothing(index_elements=["customer_id", "period"])
    # SQLAlchemy reports an INSERT's row count only when asked to keep it.
    return session.execute(stmt.execution_options(preserve_rowcount=True)).rowcount


def _by_period(cycles: Iterable[Cycle]) -> dict[str, dict[int, date]]:
    grouped: dict[str, dict[int, date]] = defaultdict(dict)
    for cycle in sorted(cycles):
        grouped[cycle.period][cycle.billing_day] = cycle.due_date
    return dict(grouped)


def _process(session: Session, cycles: Sequence[Cycle], owner_id: uuid.UUID | None, *,
             write: bool, run_dates: Sequence[date] = ()) -> BillingRunResult:
    """Count, and unless previewing insert, the invoices of ``cycles``."""
    now = clock.now()
    created = existed = 0
    skipped = dict.fromkeys(SKIP_REASONS, 0)
    grouped = _by_period(cycles)
    for period, days in grouped.items():
        counts = _count(session, period, days, owner_id, with_existing=not write)
        for reason in SKIP_REASONS:
            skipped[reason] += counts[reason]
        if write:
            inserted = _insert(session, period, days, owner_id, now, counts["eligible"])
            created += inserted
            # Counted in an earlier statement: a subscriber activated in between
            # must not make this negative.
            existed += max(0, counts["eligible"] - inserted)
        else:
            created += counts["eligible"] - counts["existing"]
            existed += counts["existing"]
    return BillingRunResult(periods=tuple(grouped), run_dates=tuple(run_dates),
                            created=created, already_existed=existed, skipped=skipped,
                            owner_id=owner_id, dry_run=not write)


def _refresh_statistics() -> None:
    """Re-analyse ``period`` and ``due_date`` of ``invoices`` after a run that added many.

    Autoanalyze waits until a tenth of the table has changed, which a month of new
    invoices on a year of history never is; until then the planner takes the new
    period (and due dates past the old maximum) for empty and may pick plans that
    are fine for a handful of rows and ruinous for a hundred thousand (see
    :func:`_count`). Only the two columns whose values moved are re-analysed.
    """
    with unit_of_work(Actor.system(SCHEDULED_ACTOR)).bookkeeping(
            "planner statistics after a billing run, no data") as uow:
        uow.session.execute(sa.text("ANALYZE invoices (period, due_date)"))


def _after_large_run(uow: UnitOfWork, result: BillingRunResult) -> None:
    if (result.created >= ANALYZE_AFTER_ROWS
            and uow.session.get_bind().dialect.name == "postgresql"):
        uow.after_commit(_refresh_statistics)


def _cycles_for_period(period: str) -> list[Cycle]:
    return [Cycle(due_date_for(period, day), period, day) for day in BILLING_DAYS]


def _check_manual(session: Session, period: str, owner_id: uuid.UUID | None,
                  today: date) -> str:
    """Validate a manual run's period and owner; returns the normalised period."""
    period = format_period(*parse_period(period))
    current = clock.current_period(today)
    ahead = months_between(current, period)
    if ahead > MAX_MONTHS_AHEAD:
        latest = format_period(*_shift_month(*parse_period(current), MAX_MONTHS_AHEAD))
        raise ValidationFailed({"period": (
            f"Periode terlalu jauh ke depan. Paling lambat {month_year(latest)}.")})
    if ahead < -MAX_MONTHS_BACK:
        earliest = format_period(*_shift_month(*parse_period(current), -MAX_MONTHS_BACK))
        raise ValidationFailed({"period": (
            f"Periode terlalu lama. Paling awal {month_year(earliest)}.")})
    if owner_id is not None and (
            not isinstance(owner_id, uuid.UUID) or session.get(User, owner_id) is None):
        raise ValidationFailed({"owner_id": OWNER_MESSAGE})
    return period


def _retry_on_deleted_subscriber(run: Callable[[], BillingRunResult]) -> BillingRunResult:
    """Run ``run`` again when a subscriber it selected was deleted before its insert.

    The ``INSERT … SELECT`` reads the subscribers as of its start; one deleted by a
    concurrent transaction in the meantime fails the whole statement on the foreign
    key. A fresh attempt no longer sees it (everything else was rolled back).
    """
    attempt = 1
    while True:
        try:
            return run()
        except sa.exc.IntegrityError as exc:
            if attempt >= RUN_ATTEMPTS or getattr(exc.orig, "sqlstate", None) != "23503":
                raise
            log.warning("billing run attempt %d met a deleted subscriber; retrying", attempt)
            attempt += 1


# --- use cases -----------------------------------------------------------------------------


def run_billing(actor: Actor, *, period: str, owner_id: uuid.UUID | None = None,
                today: date | None = None) -> BillingRunResult:
    """Create the invoices of ``period`` now (superadmin's manual trigger).

    Every eligible subscriber (active, registered before the due date) of all owners,
    or of ``owner_id`` only, gets the ``period`` invoice due on its billing day of the
    month before ``period``. Invoices that exist already are left as they are, so
    repeating the run, or racing the scheduled run, creates each invoice once.

    Args:
        actor: The superadmin.
        period: ``YYYY-MM``, from 12 months back to 2 months ahead of the current month.
        owner_id: Only this owner's subscribers.
        today: The current date for the period range (default: today in Jakarta).

    Returns:
        Created, already existing and skipped counts.

    Raises:
        PermissionDenied: the actor is not a superadmin.
        ValidationFailed: bad period format or range, unknown owner.
    """
    require_superadmin(actor)
    today = today or clock.today()

    def run() -> BillingRunResult:
        with unit_of_work(actor) as uow:
            checked = _check_manual(uow.session, period, owner_id, today)
            result = _process(uow.session, _cycles_for_period(checked), owner_id, write=True)
            uow.audit("billing.run", "invoices", None, period=checked, owner_id=owner_id,
                      created=result.created, already_existed=result.already_existed,
                      skipped=dict(result.skipped))
            _after_large_run(uow, result)
            return result

    return _retry_on_deleted_subscriber(run)


def preview_billing(actor: Actor, *, period: str, owner_id: uuid.UUID | None = None,
                    today: date | None = None) -> BillingRunResult:
    """What :func:`run_billing` would do, without writing (for the confirm dialog).

    Args:
        actor: The superadmin.
        period: ``YYYY-MM``, from 12 months back to 2 months ahead of the current month.
        owner_id: Only this owner's subscribers.
        today: The current date for the period range (default: today in Jakarta).

    Returns:
        The counts, with ``dry_run`` set; ``created`` is what would be created.

    Raises:
        PermissionDenied: the actor is not a superadmin.
        ValidationFailed: bad period format or range, unknown owner.
    """
    require_superadmin(actor)
    today = today or clock.today()
    with new_session() as s:
        period = _check_manual(s, period, owner_id, today)
        return _process(s, _cycles_for_period(period), owner_id, write=False)


def _lock_last_run(session: Session) -> date | None:
    """The last completed scheduled run date, with its settings row locked.

    The row is created (empty) if missing and then locked, so two scheduled runs
    serialise here and the second one sees what the first committed.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(Setting.__table__)
        .values(id=new_id(), key=LAST_RUN_KEY, value=None, updated_at=clock.now())
        .on_conflict_do_nothing(index_elements=["key"])
    )
    value = session.execute(
        sa.select(Setting.value).where(Setting.key == LAST_RUN_KEY).with_for_update()
    ).scalar_one()
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:  # a hand-edited value: behave as on the first run
        return None


def scheduled_run(today: date | None = None) -> BillingRunResult:
    """The daily 06:00 job: create the invoices of every H-1 date not yet processed.

    Processes each date from the day after the last completed run through
    ``today`` (at most ``MAX_CATCH_UP_DAYS``; the first run ever: ``today`` only),
    so a server that was down catches up the billing dates it missed. Each date
    bills its cycle as if the run had happened that day (same eligibility rule).
    The last run date is stored in ``settings`` in the same transaction.

    Args:
        today: The run date (default: today in Jakarta).

    Returns:
        Counts over every processed date.
    """
    actor = Actor.system(SCHEDULED_ACTOR)
    today = today or clock.today()

    def run() -> BillingRunResult:
        with unit_of_work(actor) as uow:
            last = _lock_last_run(uow.session)
            dates = run_dates_to_process(last, today)
            cycles = [cycle for day in dates for cycle in cycle_for_run_date(day)]
            result = _process(uow.session, cycles, None, write=True, run_dates=dates)
            stored = today if last is None else max(last, today)
            uow.session.execute(
                sa.update(Setting).where(Setting.key == LAST_RUN_KEY)
                .values(value=stored.isoformat(), updated_at=clock.now())
            )
            uow.audit("billing.scheduled_run", "invoices", None,
                      run_dates=[d.isoformat() for d in dates],
                      periods=list(result.periods), created=result.created,
                      already_existed=result.already_existed, skipped=dict(result.skipped))
            _after_large_run(uow, result)
            return result

    return _retry_on_deleted_subscriber(run)
