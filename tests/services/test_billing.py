"""Prepaid invoice generation: the H-1 calendar, eligibility, snapshots, catch-up, races."""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from fibernode.db import new_session
from fibernode.models import (
    ActivityLog,
    Customer,
    CustomerStatus,
    Invoice,
    Package,
    PaymentStatus,
    Setting,
)
from fibernode.services import billing, customers, packages
from fibernode.services.billing import Cycle
from fibernode.services.errors import PermissionDenied, ValidationFailed

pytestmark = pytest.mark.both_dialects(
    "billing's INSERT … SELECT of a month's invoices and its settings upsert are written "
    "per dialect")

LONG_AGO = date(2025, 1, 1)
# 4 Feb 2026 (H-1 of 5 Feb): the spec's example.
FEB_4 = date(2026, 2, 4)

dates = st.dates(min_value=date(2001, 1, 1), max_value=date(2199, 12, 31))
periods = st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(2001, 2199),
                    st.integers(1, 12))
billing_days = st.integers(1, 28)


# --- calendar arithmetic -------------------------------------------------------------------


@pytest.mark.parametrize(("run_date", "expected"), [
    (date(2026, 2, 4), [Cycle(date(2026, 2, 5), "2026-03", 5)]),
    # D=1: created on the last day of the previous month, period two months after it.
    (date(2026, 1, 31), [Cycle(date(2026, 2, 1), "2026-03", 1)]),
    (date(2025, 12, 31), [Cycle(date(2026, 1, 1), "2026-02", 1)]),
    # December due dates bill January of the next year.
    (date(2026, 12, 4), [Cycle(date(2026, 12, 5), "2027-01", 5)]),
    (date(2026, 12, 27), [Cycle(date(2026, 12, 28), "2027-01", 28)]),
    # February, non-leap: 28 is the last day, so the 28th run already bills D=1.
    (date(2027, 2, 27), [Cycle(date(2027, 2, 28), "2027-03", 28)]),
    (date(2027, 2, 28), [Cycle(date(2027, 3, 1), "2027-04", 1)]),
    # February, leap year: the 28th bills nobody (tomorrow is the 29th).
    (date(2028, 2, 27), [Cycle(date(2028, 2, 28), "2028-03", 28)]),
    (date(2028, 2, 28), []),
    (date(2028, 2, 29), [Cycle(date(2028, 3, 1), "2028-04", 1)]),
    # Tomorrow the 29th, 30th or 31st: no billing day.
    (date(2026, 1, 28), []),
    (date(2026, 1, 29), []),
    (date(2026, 1, 30), []),
    (date(2026, 4, 29), []),
    (date(2026, 4, 30), [Cycle(date(2026, 5, 1), "2026-06", 1)]),
])
def test_cycle_for_run_date_examples(run_date, expected):
    assert billing.cycle_for_run_date(run_date) == expected


@given(dates)
def test_cycle_is_h_minus_1_and_bills_the_month_after_the_due_month(run_date):
    cycles = billing.cycle_for_run_date(run_date)
    tomorrow = run_date + timedelta(days=1)
    if tomorrow.day > 28:
        assert cycles == []
        return
    [(due, period, day)] = cycles
    assert due == tomorrow and day == due.day
    year, month = map(int, period.split("-"))
    assert (year * 12 + month) - (due.year * 12 + due.month) == 1
    assert period == billing.period_after(due)


@given(dates)
def test_period_after_crosses_year_boundaries(due):
    period = billing.period_after(due)
    assert re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period)
    if due.month == 12:
        assert period == f"{due.year + 1:04d}-01"
    else:
        assert period == f"{due.year:04d}-{due.month + 1:02d}"


@given(periods, billing_days)
def test_due_date_round_trips_through_the_run_date(period, day):
    due = billing.due_date_for(period, day)
    assert due.day == day
    assert billing.period_after(due) == period
    # The scheduled run on H-1 produces exactly this cycle.
    assert billing.cycle_for_run_date(due - timedelta(days=1)) == [Cycle(due, period, day)]


@given(st.integers(2001, 2198), billing_days)
def test_every_billing_day_is_billed_once_a_month(year, day):
    start = date(year, 1, 1)
    run_dates = [start + timedelta(days=i) for i in range((date(year + 1, 1, 1) - start).days)]
    cycles = [c for d in run_dates for c in billing.cycle_for_run_date(d)
              if c.billing_day == day]
    # Twelve cycles a year, one per due month, covering twelve consecutive periods.
    assert len(cycles) == 12
    assert [c.period for c in cycles] == [billing.period_after(c.due_date) for c in cycles]
    assert len({c.period for c in cycles}) == 12


@given(st.one_of(st.none(), dates), dates)
def test_run_dates_to_process(last_run, today):
    got = billing.run_dates_to_process(last_run, today)
    assert got[-1] == today
    assert all(b - a == timedelta(days=1) for a, b in zip(got, got[1:], strict=False))
    assert 1 <= len(got) <= billing.MAX_CATCH_UP_DAYS
    if last_run is None or last_run >= today:
        assert got == [today]
    elif (today - last_run).days <= billing.MAX_CATCH_UP_DAYS:
        assert got[0] == last_run + timedelta(days=1)
    else:
        assert len(got) == billing.MAX_CATCH_UP_DAYS


@pytest.mark.parametrize("bad", ["2026-3", "2026-13", "2026-00", "26-03", "2026/03", "",
                                 "maret", "2026-03-01", "1999-12"])
def test_parse_period_rejects_bad_text(bad):
    with pytest.raises(ValidationFailed) as exc:
        billing.parse_period(bad)
    assert exc.value.details == {"period": billing.PERIOD_FORMAT_MESSAGE}


def test_due_date_for_examples():
    assert billing.due_date_for("2026-03", 5) == date(2026, 2, 5)
    assert billing.due_date_for("2026-01", 28) == date(2025, 12, 28)
    assert billing.due_date_for("2028-03", 28) == date(2028, 2, 28)
    with pytest.raises(ValueError):
        billing.due_date_for("2026-03", 29)


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def w(world):
    """The seeded world with every subscriber registered long ago."""
    with new_session() as s:
        s.exec(sa.update(Customer).values(register_date=LONG_AGO))
        s.commit()
    return world


def pkg(name: str = "Paket 10 Mbps") -> Package:
    with new_session() as s:
        return s.exec(select(Package).where(Package.name == name)).one()


_phones = iter(range(10_000_000, 99_999_999))


def add(world, *, day: int, registered: date = LONG_AGO, owner=None,
        package: str = "Paket 10 Mbps", discount: int = 0, name: str | None = None):
    phone = f"0812{next(_phones)}"
    return customers.create_customer(
        world.admin, name=name or f"Pelanggan {phone}", phone=phone,
        package_id=pkg(package).id, billing_date=day, discount=discount,
        owner_id=owner, register_date=registered)


def by_name(name: str) -> Customer:
    with new_session() as s:
        return s.exec(select(Customer).where(Customer.name == name)).one()


def invoices(**where) -> list[Invoice]:
    with new_session() as s:
        q = select(Invoice).order_by(Invoice.period, Invoice.due_date, Invoice.customer_id)
        for key, value in where.items():
            q = q.where(getattr(Invoice, key) == value)
        return list(s.exec(q).all())


def invoice_of(customer_id, period: str) -> Invoice | None:
    found = invoices(customer_id=customer_id, period=period)
    return found[0] if found else None


def logs(action: str) -> list[ActivityLog]:
    with new_session() as s:
        return list(s.exec(select(ActivityLog).where(ActivityLog.action == action)
                           .order_by(ActivityLog.created_at)).all())


def last_run_setting() -> str | None:
    with new_session() as s:
        return s.exec(select(Setting.value).where(Setting.key == billing.LAST_RUN_KEY)).first()


def no_skips(**counts) -> dict[str, int]:
    return {**dict.fromkeys(billing.SKIP_REASONS, 0), **counts}


# --- the scheduled run ---------------------------------------------------------------------


def test_h_minus_1_creates_next_months_invoice(w):
    ahmad = by_name("Ahmad Fauzi")  # mitra1, D=5, Paket 10 Mbps
    result = billing.scheduled_run(today=FEB_4)
    assert (result.created, result.already_existed, result.skipped) == (1, 0, no_skips())
    assert result.periods == ("2026-03",) and result.run_dates == (FEB_4,)
    assert result.owner_id is None and not result.dry_run
    [inv] = invoices()
    assert inv.customer_id == ahmad.id and inv.owner_id == ahmad.owner_id
    assert (inv.period, inv.due_date) == ("2026-03", date(2026, 2, 5))
    assert (inv.amount, inv.discount, inv.total_amount, inv.paid_amount) == (
        100_000, 0, 100_000, 0)
    assert (inv.status, inv.version) == (PaymentStatus.UNPAID, 1)
    assert isinstance(inv.id, uuid.UUID)
    assert inv.paid_at is None and inv.paid_by is None and inv.receipt_url is None
    assert inv.created_at.tzinfo is not None
    assert abs(inv.created_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert last_run_setting() == "2026-02-04"
    [log] = logs("billing.scheduled_run")
    assert log.user_id is None
    assert log.meta == {"job": "celery.billing", "run_dates": ["2026-02-04"],
                        "periods": ["2026-03"], "created": 1, "already_existed": 0,
                        "skipped": no_skips()}


def test_discount_is_snapshotted(w):
    dewi = by_name("Dewi Lestari")  # D=10, Paket 20 Mbps (150.000) with 10.000 off
    billing.scheduled_run(today=date(2026, 2, 9))
    inv = invoice_of(dewi.id, "2026-03")
    assert (inv.amount, inv.discount, inv.total_amount, inv.due_date) == (
        150_000, 10_000, 140_000, date(2026, 2, 10))


def test_receipt_tokens_are_long_random_and_url_safe(w):
    for i in range(30):
        add(w, day=5, name=f"Token {i}")
    billing.scheduled_run(today=FEB_4)
    tokens = [inv.receipt_token for inv in invoices()]
    assert len(tokens) == 31 and len(set(tokens)) == 31
    for token in tokens:
        # secrets.token_urlsafe(24)'s shape: 192 random bits, safe in a URL as is.
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", token)
    ids = [inv.id for inv in invoices()]
    assert len(set(ids)) == 31
    # UUIDv7 from the random block on PostgreSQL, uuid4 from Python on SQLite.
    assert all(i.version in (4, 7) and i.variant == uuid.RFC_4122 for i in ids)


def test_prepared_ids_are_uuid7_of_the_run_time_and_tokens_url_safe():
    now = datetime(2026, 2, 3, 23, 0, 0, 123_000, tzinfo=UTC)
    hexes = billing._random_ids(1_000, now).decode()
    assert len(hexes) == 1_000 * 32
    ids = [uuid.UUID(hexes[i:i + 32]) for i in range(0, len(hexes), 32)]
    assert len(set(ids)) == 1_000
    for i in ids:
        assert i.version == 7 and i.variant == uuid.RFC_4122
        assert int.from_bytes(i.bytes[:6], "big") == int(now.timestamp() * 1000)
    tokens = billing._random_tokens(1_000).decode()
    assert len(tokens) == 1_000 * 32
    chunks = {tokens[i:i + 32] for i in range(0, len(tokens), 32)}
    assert len(chunks) == 1_000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", t) for t in chunks)


def test_rows_beyond_the_prepared_ones_fall_back_to_the_database(pg, monkeypatch):
    """Subscribers that became eligible after the count still get an id and a token."""
    from tests.factories import World

    world = World.seeded()
    bulk_subscribers([world.mitra_a.user_id], 40)
    ids, tokens = billing._random_ids, billing._random_tokens
    monkeypatch.setattr(billing, "_random_ids", lambda rows, now: ids(rows // 2, now))
    monkeypatch.setattr(billing, "_random_tokens", lambda rows: tokens(rows // 2))
    result = billing.run_billing(world.admin, period="2026-03", today=FEB_4)
    assert result.created == 40
    rows = invoices()
    assert len({i.receipt_token for i in rows}) == len({i.id for i in rows}) == 40
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", i.receipt_token) for i in rows)
    # Half prepared (UUIDv7), half from gen_random_uuid() (v4).
    assert sorted(i.id.version for i in rows) == [4] * 20 + [7] * 20


def test_rerun_creates_nothing_twice(w):
    assert billing.scheduled_run(today=FEB_4).created == 1
    again = billing.scheduled_run(today=FEB_4)
    assert (again.created, again.already_existed) == (0, 1)
    assert len(invoices()) == 1
    assert len(logs("billing.scheduled_run")) == 2


def test_isolated_and_inactive_are_skipped(w):
    iso = add(w, day=5, name="Isolir")
    off = add(w, day=5, name="Nonaktif")
    add(w, day=6, name="Hari lain")  # another billing day: not counted at all
    customers.set_isolated(w.admin, iso, True, "Menunggak")
    customers.set_inactive(w.admin, off, True)
    result = billing.scheduled_run(today=FEB_4)
    assert (result.created, result.skipped) == (1, no_skips(isolated=1, inactive=1))
    assert result.skipped_total == 2 and result.eligible == 1
    assert [i.customer_id for i in invoices()] == [by_name("Ahmad Fauzi").id]
    # Restored before the next cycle: billed again from then on.
    customers.set_isolated(w.admin, iso, False)
    nxt = billing.scheduled_run(today=date(2026, 3, 4))
    assert nxt.skipped == no_skips(inactive=1)
    assert invoice_of(iso, "2026-04") is not None
    assert invoice_of(off, "2026-04") is None


def test_registration_rule(w):
    """Registered on or before H-1: billed this cycle; later: from the next H-1 on."""
    on_h1 = add(w, day=5, registered=FEB_4, name="Daftar H-1")
    on_due = add(w, day=5, registered=date(2026, 2, 5), name="Daftar jatuh tempo")
    after = add(w, day=5, registered=date(2026, 2, 10), name="Daftar setelah")
    result = billing.scheduled_run(today=FEB_4)
    assert (result.created, result.skipped) == (2, no_skips(registered_late=2))
    assert invoice_of(on_h1, "2026-03") is not None
    assert invoice_of(on_due, "2026-03") is None and invoice_of(after, "2026-03") is None
    # Their first invoice comes at the next H-1 (4 March: period April, due 5 March).
    nxt = billing.scheduled_run(today=date(2026, 3, 4))
    # (Catching up 5 Feb .. 4 Mar also bills Dewi and Rudi, D=10 and 15, for March.)
    assert nxt.created == 2 + 4 and nxt.skipped == no_skips()
    for cid in (on_due, after):
        inv = invoice_of(cid, "2026-04")
        assert inv.due_date == date(2026, 3, 5)


def test_billing_day_1_on_new_years_eve(w):
    jan1 = add(w, day=1, name="Tanggal satu")
    result = billing.scheduled_run(today=date(2025, 12, 31))
    assert result.created == 1 and result.periods == ("2026-02",)
    inv = invoice_of(jan1, "2026-02")
    assert inv.due_date == date(2026, 1, 1)


def test_december_due_bills_january_of_next_year(w):
    billing.scheduled_run(today=date(2026, 12, 4))
    inv = invoice_of(by_name("Ahmad Fauzi").id, "2027-01")
    assert inv.due_date == date(2026, 12, 5)


@pytest.mark.parametrize(("year", "leap"), [(2027, False), (2028, True)])
def test_billing_day_28_in_february(w, year, leap):
    d28 = add(w, day=28, name="Dua delapan")
    d1 = add(w, day=1, name="Satu")
    # Day by day through the end of February, as beat would run it.
    last_of_feb = date(year, 2, 29 if leap else 28)
    day = date(year, 2, 26)
    created = {}
    while day <= last_of_feb:
        created[day] = billing.scheduled_run(today=day).created
        day += timedelta(days=1)
    assert invoice_of(d28, f"{year}-03").due_date == date(year, 2, 28)
    assert invoice_of(d1, f"{year}-04").due_date == date(year, 3, 1)
    assert created[date(year, 2, 27)] == 1  # D=28
    assert created[last_of_feb] == 1  # D=1, on the last day of February
    if leap:
        assert created[date(year, 2, 28)] == 0  # tomorrow is the 29th
    assert len(invoices()) == 2


def test_missed_days_are_caught_up(w):
    d6 = add(w, day=6, name="Enam")
    d7 = add(w, day=7, name="Tujuh")
    d8 = add(w, day=8, name="Delapan")
    d3 = add(w, day=3, name="Tiga")
    # The first run ever processes only its own date (D=5), not the past (D=3).
    first = billing.scheduled_run(today=FEB_4)
    assert first.run_dates == (FEB_4,) and first.created == 1
    assert invoice_of(d3, "2026-03") is None
    # Down on 5 and 6 Feb: the run on the 7th bills D=6, 7 and 8.
    caught = billing.scheduled_run(today=date(2026, 2, 7))
    assert caught.run_dates == (date(2026, 2, 5), date(2026, 2, 6), date(2026, 2, 7))
    assert caught.created == 3 and caught.periods == ("2026-03",)
    for cid, day in ((d6, 6), (d7, 7), (d8, 8)):
        assert invoice_of(cid, "2026-03").due_date == date(2026, 2, day)
    assert last_run_setting() == "2026-02-07"


def test_catch_up_is_capped_and_spans_periods(w):
    billing.scheduled_run(today=date(2026, 1, 2))
    d20 = add(w, day=20, name="Dua puluh")
    # Back after three months: only the last 31 run dates (31 Mar .. 30 Apr).
    result = billing.scheduled_run(today=date(2026, 4, 30))
    assert result.run_dates[0] == date(2026, 3, 31)
    assert len(result.run_dates) == billing.MAX_CATCH_UP_DAYS
    # 31 Mar bills D=1 (period May); 1..29 Apr bill D=2..28 (period May); 30 Apr bills
    # D=1 of May (period June).
    assert result.periods == ("2026-05", "2026-06")
    assert invoice_of(d20, "2026-05").due_date == date(2026, 4, 20)
    assert invoice_of(d20, "2026-04") is None  # older than the cap: left to a manual run
    assert result.created == 4  # Ahmad (5), Dewi (10), Rudi (15), d20


def test_clock_going_back_does_not_rewind_the_last_run(w):
    billing.scheduled_run(today=date(2026, 2, 10))
    result = billing.scheduled_run(today=FEB_4)
    assert result.run_dates == (FEB_4,)
    assert last_run_setting() == "2026-02-10"


def test_package_price_change_does_not_touch_issued_invoices(w):
    ahmad = by_name("Ahmad Fauzi")
    billing.scheduled_run(today=FEB_4)
    packages.update_package(w.admin, pkg().id, price=120_000)
    customers.update_customer(w.admin, ahmad.id, discount=5_000)
    issued = invoice_of(ahmad.id, "2026-03")
    assert (issued.amount, issued.discount, issued.total_amount) == (100_000, 0, 100_000)
    billing.scheduled_run(today=date(2026, 3, 4))
    nxt = invoice_of(ahmad.id, "2026-04")
    assert (nxt.amount, nxt.discount, nxt.total_amount) == (120_000, 5_000, 115_000)


def test_owner_is_the_subscribers_owner_at_generation(w):
    ahmad = by_name("Ahmad Fauzi")
    billing.scheduled_run(today=FEB_4)
    customers.move_customers(w.admin, [ahmad.id], w.mitra_b.user_id)
    billing.scheduled_run(today=date(2026, 3, 4))
    assert invoice_of(ahmad.id, "2026-03").owner_id == w.mitra_a.user_id
    assert invoice_of(ahmad.id, "2026-04").owner_id == w.mitra_b.user_id


# --- the manual run ------------------------------------------------------------------------


def test_manual_run_bills_every_owner_for_the_period(w):
    iso = add(w, day=20, name="Isolir")
    customers.set_isolated(w.admin, iso, True, "Menunggak")
    late = add(w, day=3, registered=date(2026, 2, 10), name="Baru")
    result = billing.run_billing(w.admin, period="2026-03", today=date(2026, 2, 12))
    assert (result.created, result.already_existed) == (3, 0)
    assert result.skipped == no_skips(isolated=1, registered_late=1)
    assert result.periods == ("2026-03",) and result.run_dates == ()
    due = {inv.customer_id: inv.due_date for inv in invoices(period="2026-03")}
    assert due == {by_name("Ahmad Fauzi").id: date(2026, 2, 5),
                   by_name("Dewi Lestari").id: date(2026, 2, 10),
                   by_name("Rudi Hartono").id: date(2026, 2, 15)}
    assert invoice_of(late, "2026-03") is None
    [log] = logs("billing.run")
    assert log.user_id == w.admin.user_id and log.resource == "invoices"
    assert log.meta == {"period": "2026-03", "owner_id": None, "created": 3,
                        "already_existed": 0,
                        "skipped": no_skips(isolated=1, registered_late=1)}


def test_manual_run_for_one_owner_and_then_all(w):
    mine = billing.run_billing(w.admin, period="2026-03", owner_id=w.mitra_a.user_id,
                               today=FEB_4)
    assert mine.created == 2 and mine.owner_id == w.mitra_a.user_id
    assert {i.owner_id for i in invoices()} == {w.mitra_a.user_id}
    # The scheduled run and a run for everyone then create only what is missing.
    assert billing.scheduled_run(today=FEB_4).already_existed == 1
    everyone = billing.run_billing(w.admin, period="2026-03", today=FEB_4)
    assert (everyone.created, everyone.already_existed) == (1, 2)
    assert len(invoices()) == 3


def test_preview_counts_without_writing(w):
    add(w, day=7, registered=date(2026, 3, 1), name="Baru")
    billing.run_billing(w.admin, period="2026-03", owner_id=w.mitra_a.user_id, today=FEB_4)
    before = len(logs("billing.run"))
    preview = billing.preview_billing(w.admin, period="2026-03", today=FEB_4)
    assert preview.dry_run
    assert (preview.created, preview.already_existed) == (1, 2)
    assert preview.skipped == no_skips(registered_late=1)
    assert len(invoices()) == 2 and len(logs("billing.run")) == before
    real = billing.run_billing(w.admin, period="2026-03", today=FEB_4)
    assert (real.created, real.already_existed, real.skipped) == (
        preview.created, preview.already_existed, preview.skipped)


@pytest.mark.parametrize(("period", "message"), [
    ("2026-3", billing.PERIOD_FORMAT_MESSAGE),
    ("Maret", billing.PERIOD_FORMAT_MESSAGE),
    ("2026-05", "Periode terlalu jauh ke depan. Paling lambat April 2026."),
    ("2025-01", "Periode terlalu lama. Paling awal Februari 2025."),
])
def test_manual_run_validation(w, period, message):
    for fn in (billing.run_billing, billing.preview_billing):
        with pytest.raises(ValidationFailed) as exc:
            fn(w.admin, period=period, today=FEB_4)
        assert exc.value.details == {"period": message}
    assert invoices() == [] and logs("billing.run") == []


def test_manual_run_range_edges_are_allowed(w):
    assert billing.run_billing(w.admin, period="2026-04", today=FEB_4).created == 3
    assert billing.run_billing(w.admin, period="2025-02", today=FEB_4).created == 3
    # Leading and trailing blanks are forgiven.
    assert billing.run_billing(w.admin, period=" 2026-03 ", today=FEB_4).periods == (
        "2026-03",)


def test_manual_run_unknown_owner(w):
    with pytest.raises(ValidationFailed) as exc:
        billing.run_billing(w.admin, period="2026-03", owner_id=uuid.uuid4(), today=FEB_4)
    assert exc.value.details == {"owner_id": billing.OWNER_MESSAGE}


def test_mitra_may_not_run_billing(w):
    for fn in (billing.run_billing, billing.preview_billing):
        with pytest.raises(PermissionDenied):
            fn(w.mitra_a, period="2026-03", owner_id=w.mitra_a.user_id, today=FEB_4)
    assert invoices() == []


def test_result_as_dict_is_json_ready(w):
    result = billing.scheduled_run(today=FEB_4)
    assert result.as_dict() == {"periods": ["2026-03"], "run_dates": ["2026-02-04"],
                                "created": 1, "already_existed": 0, "skipped": no_skips(),
                                "owner_id": None, "dry_run": False}


# --- PostgreSQL: scale and races -----------------------------------------------------------


def bulk_subscribers(owner_ids, n: int, *, day_of=lambda i: 5,
                     status_of=lambda i: CustomerStatus.ACTIVE) -> None:
    """``n`` subscribers inserted in one statement (building them one by one through the
    service would take most of the test's time)."""
    p = pkg()
    now = datetime.now(UTC)
    rows = [{"id": uuid.uuid4(), "owner_id": owner_ids[i % len(owner_ids)],
             "package_id": p.id, "name": f"Massal {i}", "phone": f"62857{i:08d}",
             "billing_date": day_of(i), "discount": 0, "total_bill": p.price,
             "status": status_of(i), "register_date": LONG_AGO, "created_at": now,
             "updated_at": now} for i in range(n)]
    with new_session() as s:
        s.execute(sa.insert(Customer.__table__), rows)
        s.commit()


def run_together(*calls, engine: sa.Engine | None = None, while_waiting=None,
                 waiting_query: str = "INSERT INTO invoices%"):
    """Run ``calls`` in threads started at once.

    With ``engine`` (PostgreSQL), wait until every call is blocked on a lock in a
    statement like ``waiting_query``, then release them: by default the invoices
    table is share-locked until then, so the inserts really overlap instead of
    merely starting together; ``while_waiting`` replaces that lock with whatever
    the caller holds (it is called to let the calls go on).
    """
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # reported to the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    blocker = engine.connect() if engine is not None else None
    try:
        if blocker is not None and while_waiting is None:
            blocker.execute(sa.text("LOCK TABLE invoices IN SHARE MODE"))
        for t in threads:
            t.start()
        if blocker is not None:
            deadline = time.monotonic() + 30
            while blocked(blocker, waiting_query) < len(calls):
                assert time.monotonic() < deadline, "the calls never blocked"
                time.sleep(0.02)
            if while_waiting is not None:
                while_waiting()
    finally:
        if blocker is not None:
            blocker.rollback()
            blocker.close()
    for t in threads:
        t.join(timeout=120)
    return results


def blocked(conn, query_like: str) -> int:
    """Sessions of this database waiting for a lock in a statement like ``query_like``."""
    # The activity view is a per-transaction snapshot: refresh it on every poll.
    conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
    return conn.execute(sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query LIKE :q"), {"q": query_like}).scalar_one()


def duplicate_count() -> int:
    with new_session() as s:
        return s.exec(sa.text(
            "SELECT count(*) FROM (SELECT customer_id, period FROM invoices "
            "GROUP BY customer_id, period HAVING count(*) > 1) d")).one()[0]


def test_manual_run_racing_the_scheduled_run_creates_each_invoice_once(pg):
    from tests.factories import World

    world = World.seeded()
    with new_session() as s:
        s.exec(sa.update(Customer).values(register_date=LONG_AGO))
        s.commit()
    owners = [world.mitra_a.user_id, world.mitra_b.user_id, world.admin.user_id]
    bulk_subscribers(owners, 3_000, day_of=lambda i: 5 if i % 3 else i % 28 + 1,
                     status_of=lambda i: CustomerStatus.ISOLATED if i % 17 == 0
                     else CustomerStatus.ACTIVE)
    with new_session() as s:
        active = s.exec(select(Customer.billing_date).where(
            Customer.status == CustomerStatus.ACTIVE)).all()
    eligible_all = len(active)
    eligible_day5 = sum(1 for day in active if day == 5)

    for round_no in range(3):
        with new_session() as s:
            s.exec(sa.delete(Invoice))
            s.exec(sa.delete(Setting).where(Setting.key == billing.LAST_RUN_KEY))
            s.commit()
        scheduled, manual = run_together(
            lambda: billing.scheduled_run(today=FEB_4),
            lambda: billing.run_billing(world.admin, period="2026-03", today=FEB_4),
            engine=pg,
        )
        assert not isinstance(scheduled, Exception), scheduled
        assert not isinstance(manual, Exception), manual
        assert duplicate_count() == 0
        assert len(invoices()) == eligible_all, f"round {round_no}"
        # Between them every eligible subscriber got exactly one invoice ...
        assert scheduled.created + manual.created == eligible_all
        # ... and each run accounts for all of its own eligible subscribers.
        assert scheduled.eligible == eligible_day5
        assert manual.eligible == eligible_all
        assert manual.skipped[billing.SKIP_ISOLATED] == 3_000 - sum(
            1 for i in range(3_000) if i % 17)


def test_two_scheduled_runs_at_once_bill_once_and_agree_on_the_last_run(pg):
    from tests.factories import World

    world = World.seeded()
    bulk_subscribers([world.mitra_a.user_id], 1_000, day_of=lambda i: i % 28 + 1)
    billing.scheduled_run(today=date(2026, 2, 1))
    a, b = run_together(lambda: billing.scheduled_run(today=date(2026, 2, 20)),
                        lambda: billing.scheduled_run(today=date(2026, 2, 20)))
    assert not isinstance(a, Exception) and not isinstance(b, Exception), (a, b)
    # The first one caught up 2..20 Feb (D=3..21); the second saw that and redid only
    # the 20th, finding it done.
    first, second = sorted((a, b), key=lambda r: -len(r.run_dates))
    assert len(first.run_dates) == 19 and second.run_dates == (date(2026, 2, 20),)
    assert second.created == 0
    assert duplicate_count() == 0
    assert last_run_setting() == "2026-02-20"


def test_a_large_monthly_run_on_postgresql(pg):
    from tests.factories import World

    world = World.seeded()
    with new_session() as s:
        s.exec(sa.update(Customer).values(register_date=LONG_AGO))
        s.commit()
    owners = [world.mitra_a.user_id, world.mitra_b.user_id]
    bulk_subscribers(owners, 10_000, day_of=lambda i: i % 28 + 1)
    result = billing.run_billing(world.admin, period="2026-03", today=FEB_4)
    assert result.created == 10_003
    with new_session() as s:
        totals = s.exec(sa.text(
            "SELECT count(*), count(DISTINCT receipt_token), sum(total_amount), "
            "count(*) FILTER (WHERE extract(day FROM due_date) = c.billing_date) "
            "FROM invoices i JOIN customers c ON c.id = i.customer_id")).one()
    assert totals[0] == totals[1] == totals[3] == 10_003
    assert totals[2] == 10_000 * 100_000 + 100_000 + 140_000 + 250_000
    again = billing.run_billing(world.admin, period="2026-03", today=FEB_4)
    assert (again.created, again.already_existed) == (0, 10_003)
    # The run refreshed the planner's statistics once committed: the new period is
    # not taken for empty (autoanalyze would wait for a tenth of the table to change).
    with new_session() as s:
        [[plan]] = s.exec(sa.text(
            "EXPLAIN (FORMAT JSON) SELECT 1 FROM invoices WHERE period = '2026-03'")).all()
    assert plan[0]["Plan"]["Plan Rows"] > 5_000


def test_a_subscriber_deleted_during_the_insert_makes_the_run_retry(pg):
    """The insert read the subscriber, its deletion commits before the foreign key
    check: the statement fails, the run starts over and bills everyone else."""
    from tests.factories import World

    world = World.seeded()
    with new_session() as s:
        s.exec(sa.update(Customer).values(register_date=LONG_AGO))
        s.commit()
    bulk_subscribers([world.mitra_a.user_id], 200)
    doomed = by_name("Massal 7").id
    deleter = pg.connect()
    try:
        # Deleted but not committed: the billing insert still selects it, then its
        # foreign key check waits for this transaction.
        deleter.execute(sa.delete(Customer).where(Customer.id == doomed))
        [result] = run_together(
            lambda: billing.run_billing(world.admin, period="2026-03", today=FEB_4),
            while_waiting=deleter.commit, engine=pg, waiting_query="INSERT INTO invoices%")
    finally:
        deleter.close()
    assert not isinstance(result, Exception), result
    assert result.created == 203 - 1
    assert invoice_of(doomed, "2026-03") is None
    assert len(logs("billing.run")) == 1  # the failed attempt left nothing behind


def test_other_integrity_errors_are_not_retried(w, monkeypatch):
    calls = []

    class Unique(Exception):
        sqlstate = "23505"

    def failing(*args, **kwargs):
        calls.append(1)
        raise sa.exc.IntegrityError("INSERT", {}, Unique())

    monkeypatch.setattr(billing, "_insert", failing)
    with pytest.raises(sa.exc.IntegrityError):
        billing.run_billing(w.admin, period="2026-03", today=FEB_4)
    assert len(calls) == 1
