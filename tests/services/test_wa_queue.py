"""The anti-ban queue: enqueueing, the worker's claim/send/outcome, reconciliation, the page.

Runs on SQLite and PostgreSQL (``world``); the race of four workers runs on PostgreSQL.
WhatsApp itself is replaced by a recording gateway; everything else is real.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.clock import JAKARTA
from fibernode.db import new_session
from fibernode.models import (
    ActivityLog,
    Invoice,
    WaMessageLog,
    WaMessageQueue,
    WaNumber,
    WaSession,
    WaSessionStatus,
)
from fibernode.services import (
    customers,
    invoices,
    wa_direct,
    wa_numbers,
    wa_queue,
    wa_sessions,
    wa_throttle,
)
from fibernode.services.context import Actor
from fibernode.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fibernode.services.wa_queue import BulkItem
from fibernode.services.wa_throttle import RateConfig
from fibernode.whatsapp.base import (
    ErrorKind,
    Gateway,
    GatewayError,
    LinkState,
    OutgoingMessage,
    SendResult,
    SentLookup,
)
from tests.services.invoice_data import customer, make_invoice

pytestmark = pytest.mark.both_dialects(
    "enqueueing is a dialect bulk insert with ON CONFLICT, and the claim locks rows only "
    "on PostgreSQL")

TODAY = date(2026, 2, 4)
TOMORROW = TODAY + timedelta(days=1)
NOW = datetime(2026, 2, 4, 7, 0, tzinfo=JAKARTA).astimezone(UTC)  # 07:00 in Jakarta
SYSTEM = Actor.system("test.wa_queue")
# Fixed spacing (10 s, no jitter) so times in the tests are exact.
CONFIG = RateConfig(min_delay_s=10, max_delay_s=10, jitter_s=0)


class RecordingGateway(Gateway):
    """Records every send as (owner, idempotency key, monotonic time); thread-safe.

    ``outcome(message)`` may return a failed :class:`SendResult` to simulate WhatsApp.
    """

    name = "recording"

    def __init__(self, outcome=None, lookup: SentLookup = SentLookup.UNKNOWN,
                 not_on_whatsapp: frozenset[str] = frozenset()):
        self.outcome = outcome
        self.lookup = lookup
        self.not_on_whatsapp = not_on_whatsapp
        self.sent: list[tuple[uuid.UUID, str, float]] = []
        self.checked: list[str] = []
        self._lock = threading.Lock()

    def send_text(self, message: OutgoingMessage) -> SendResult:
        at = time.monotonic()
        with self._lock:
            self.sent.append((message.owner_id, message.idempotency_key, at))
        result = self.outcome(message) if self.outcome else None
        return result or SendResult(ok=True, provider_message_id=f"rec-{uuid.uuid4().hex[:8]}")

    def check_numbers(self, owner_id, phones):
        with self._lock:
            self.checked.extend(phones)
        return {p: p not in self.not_on_whatsapp for p in phones}

    def start_link(self, owner_id, *, method="qr", phone=None) -> LinkState:
        return self.link_state(owner_id)

    def link_state(self, owner_id) -> LinkState:
        return LinkState(status=WaSessionStatus.CONNECTED)

    def logout(self, owner_id) -> None:
        pass

    def lookup_sent(self, owner_id, idempotency_key) -> SentLookup:
        return self.lookup

    def keys(self) -> list[str]:
        return [k for _, k, _ in self.sent]


@pytest.fixture(autouse=True)
def _no_number_check_spacing(monkeypatch):
    # wa_numbers spaces real lookups 2 s apart per owner; the recording gateway needs none.
    monkeypatch.setattr(wa_numbers, "CHECK_SPACING_S", 0.0)


def connect(owner_id: uuid.UUID) -> None:
    wa_sessions.record_event(owner_id, wa_sessions.SessionEvent(
        status=WaSessionStatus.CONNECTED, phone_number="6281100000000"), source="test")


def queue_rows(**where) -> list[WaMessageQueue]:
    with new_session() as s:
        stmt = select(WaMessageQueue).order_by(WaMessageQueue.scheduled_at)
        for key, value in where.items():
            stmt = stmt.where(getattr(WaMessageQueue, key) == value)
        return list(s.exec(stmt).all())


def session_of(owner_id: uuid.UUID) -> WaSession:
    with new_session() as s:
        return s.exec(select(WaSession).where(WaSession.user_id == owner_id)).one()


def log_rows() -> list[WaMessageLog]:
    with new_session() as s:
        return list(s.exec(select(WaMessageLog).order_by(WaMessageLog.sent_at)).all())


def reminders_due_tomorrow(world) -> dict[str, Invoice]:
    """Open March invoices, due tomorrow, for the three seeded subscribers."""
    return {name: make_invoice(name, "2026-03", due_date=TOMORROW)
            for name in ("Ahmad Fauzi", "Dewi Lestari", "Rudi Hartono")}


def enqueue(**kw):
    kw.setdefault("now", NOW)
    kw.setdefault("config", CONFIG)
    kw.setdefault("rng", random.Random(1))
    return wa_queue.enqueue_reminders(SYSTEM, TODAY, **kw)


def run(gateway, now=NOW, **kw) -> int:
    kw.setdefault("config", CONFIG)
    return wa_queue.run_once(gateway, worker_id="test", now=now, rng=random.Random(2), **kw)


def bulk(world, owner_id, n: int, prefix: str = "b") -> int:
    items = [BulkItem(customer_id=None, invoice_id=None, phone=f"62812{i:08d}",
                      content=f"Pesan {i}", idempotency_key=f"{prefix}:{i}") for i in range(n)]
    return wa_queue.enqueue_bulk(world.admin, owner_id=owner_id, items=items, now=NOW,
                                 config=CONFIG, rng=random.Random(3))


# --- enqueueing ----------------------------------------------------------------------------


def test_enqueue_reminders_queues_h1_per_owner_staggered(world):
    inv = reminders_due_tomorrow(world)
    make_invoice("Rudi Hartono", "2026-04", due_date=TOMORROW + timedelta(days=28))
    result = enqueue()
    assert (result.enqueued, result.already_queued) == (3, 0)
    assert result.by_owner == {str(world.mitra_a.user_id): 2,
                               str(customer("Rudi Hartono").owner_id): 1}
    rows = queue_rows()
    assert {r.idempotency_key for r in rows} == {
        f"reminder:{i.id}:2026-02-04" for i in inv.values()}
    assert all(r.status == "pending" and r.message_type == "reminder"
               and r.reminder_offset == -1 and r.max_retries == 3 for r in rows)
    ahmad = next(r for r in rows if r.invoice_id == inv["Ahmad Fauzi"].id)
    assert "Ahmad Fauzi" in ahmad.content and "Maret 2026" in ahmad.content
    assert "besok" in ahmad.content  # the H-1 template
    assert ahmad.phone == "6281234567890"
    # Staggered per owner's session: each owner's first message 10 s after now.
    mitra_rows = sorted(r.scheduled_at for r in rows if r.owner_id == world.mitra_a.user_id)
    assert mitra_rows == [NOW + timedelta(seconds=10), NOW + timedelta(seconds=20)]
    admin_row = next(r for r in rows if r.owner_id != world.mitra_a.user_id)
    assert admin_row.scheduled_at == NOW + timedelta(seconds=10)
    assert len({r.session_id for r in rows}) == 2
    audit = [a for a in logs("wa.queue.enqueue_reminders")]
    assert audit[-1].meta["enqueued"] == 3 and audit[-1].meta["job"] == "test.wa_queue"


def logs(action: str) -> list[ActivityLog]:
    with new_session() as s:
        return list(s.exec(select(ActivityLog).where(ActivityLog.action == action)
                           .order_by(ActivityLog.created_at)).all())


def test_queued_reminders_greet_only_with_words_that_fit_any_hour(world):
    # Queued at 06:00 but sent whenever pacing allows: never "Selamat pagi" at 20:00.
    reminders_due_tomorrow(world)
    rows = []
    for seed in range(8):  # 24 picks: with the old greetings some would be "Selamat …"
        assert enqueue(rng=random.Random(seed)).enqueued == 3
        rows += queue_rows()
        with new_session() as s:
            s.execute(sa.delete(WaMessageQueue.__table__))
            s.commit()
    greetings = {r.content.splitlines()[2].split(" *")[0] for r in rows}
    assert greetings and greetings <= {"Halo", "Hai", "Assalamualaikum"}


def test_enqueue_twice_inserts_once(world):
    reminders_due_tomorrow(world)
    assert enqueue().enqueued == 3
    again = enqueue(rng=random.Random(9))
    assert (again.enqueued, again.already_queued) == (0, 3)
    assert len(queue_rows()) == 3


def test_enqueue_skips_paid_isolated_and_numbers_without_whatsapp(world):
    inv = reminders_due_tomorrow(world)
    invoices.pay_invoice(world.admin, inv["Dewi Lestari"].id, version=1, method="cash")
    customers.set_isolated(world.admin, customer("Rudi Hartono").id, True, "Belum bayar")
    wa_direct.wait_for_dispatch()
    with new_session() as s:
        wa_numbers.remember(s, {"6281234567890": False})  # Ahmad
        s.commit()
    result = enqueue()
    assert result.enqueued == 0
    assert result.not_on_whatsapp == 1
    assert queue_rows() == []


def test_enqueue_other_offsets_use_their_own_template_and_due_dates(world):
    make_invoice("Ahmad Fauzi", "2026-03", due_date=TODAY + timedelta(days=3))  # H-3
    late = make_invoice("Dewi Lestari", "2026-02", due_date=TODAY - timedelta(days=3))  # H+3
    make_invoice("Rudi Hartono", "2026-03", due_date=TOMORROW)  # H-1 not enabled below
    result = enqueue(offsets=[-3, 3])
    assert result.enqueued == 2
    rows = {r.reminder_offset: r for r in queue_rows()}
    assert set(rows) == {-3, 3}
    assert rows[3].invoice_id == late.id
    assert "3 hari" in rows[3].content  # hari_terlambat in the H+3 wording


def test_never_two_reminders_per_invoice_per_day(world):
    inv = make_invoice("Ahmad Fauzi", "2026-03", due_date=TOMORROW)
    # A manual "kirim ulang pengingat" already went out today with the same key.
    with new_session() as s:
        s.add(WaMessageLog(owner_id=inv.owner_id, customer_id=inv.customer_id,
                           invoice_id=inv.id, message_type="reminder", phone="6281234567890",
                           content="x", status="sent",
                           idempotency_key=wa_queue.reminder_key(inv.id, TODAY)))
        s.commit()
    result = enqueue()
    assert (result.enqueued, result.already_sent) == (0, 1)
    # Tomorrow is another day (H+0 is not a reminder day, so ask for H+1 the day after).
    later = wa_queue.enqueue_reminders(SYSTEM, TOMORROW + timedelta(days=1), now=NOW,
                                       config=CONFIG, offsets=[1])
    assert later.enqueued == 1


def test_enqueue_bulk_staggers_after_what_is_already_queued(world):
    owner = world.mitra_a.user_id
    assert bulk(world, owner, 3) == 3
    first = queue_rows()
    assert [r.scheduled_at for r in first] == [NOW + timedelta(seconds=s) for s in (10, 20, 30)]
    assert all(r.created_by == world.admin.user_id and r.message_type == "custom"
               for r in first)
    assert bulk(world, owner, 2, prefix="c") == 2
    later = [r.scheduled_at for r in queue_rows() if r.idempotency_key.startswith("c:")]
    assert later == [NOW + timedelta(seconds=s) for s in (40, 50)]
    assert bulk(world, owner, 3) == 0  # same keys again: nothing new


def test_enqueue_bulk_permissions_and_validation(world):
    item = BulkItem(customer_id=None, invoice_id=None, phone="6281200000001",
                    content="Halo", idempotency_key="k1")
    with pytest.raises(PermissionDenied):
        wa_queue.enqueue_bulk(world.mitra_b, owner_id=world.mitra_a.user_id, items=[item])
    with pytest.raises(ValidationFailed):
        wa_queue.enqueue_bulk(world.mitra_a, owner_id=world.mitra_a.user_id, items=[item],
                              message_type="spam")
    assert wa_queue.enqueue_bulk(world.mitra_a, owner_id=world.mitra_a.user_id,
                                 items=[item]) == 1


# --- the worker ----------------------------------------------------------------------------


def test_worker_sends_due_messages_paced_per_session(world):
    inv = reminders_due_tomorrow(world)
    enqueue()
    connect(world.mitra_a.user_id)
    gateway = RecordingGateway()
    assert run(gateway, now=NOW) == 0  # nothing is due yet
    t1 = NOW + timedelta(seconds=10)
    # Only mitra1 is connected: its first message goes, then its session waits 10 s.
    assert run(gateway, now=t1) == 1
    assert gateway.keys() == [f"reminder:{inv['Ahmad Fauzi'].id}:2026-02-04"]
    sess = session_of(world.mitra_a.user_id)
    assert sess.next_send_at == t1 + timedelta(seconds=10)
    assert (sess.batch_count, sess.hour_count, sess.day_count) == (1, 1, 1)
    assert run(gateway, now=t1 + timedelta(seconds=9)) == 0
    assert run(gateway, now=t1 + timedelta(seconds=10)) == 1
    sent = queue_rows(status="sent")
    assert len(sent) == 2 and all(r.provider_message_id for r in sent)
    entries = log_rows()
    assert [e.status for e in entries] == ["sent", "sent"]
    assert {e.queue_id for e in entries} == {r.id for r in sent}
    assert all(e.owner_id == world.mitra_a.user_id and e.session_id == sess.id
               and e.message_type == "reminder" for e in entries)
    with new_session() as s:
        reminded = s.get(Invoice, inv["Ahmad Fauzi"].id).reminder_sent_at
    assert reminded == t1
    # The superadmin's session is not connected: its reminder waits.
    assert len(queue_rows(status="pending")) == 1


def test_failed_send_retries_three_times_ten_minutes_apart(world):
    # A custom message: a reminder retried by hand months later would expire instead.
    bulk(world, world.mitra_a.user_id, 1)
    connect(world.mitra_a.user_id)
    gateway = RecordingGateway(outcome=lambda m: SendResult.failed(
        ErrorKind.TRANSIENT, "Jaringan bermasalah."))
    t0 = NOW + timedelta(minutes=1)
    assert run(gateway, now=t0) == 1
    (row,) = queue_rows()
    assert (row.status, row.retry_count) == ("pending", 1)
    assert row.scheduled_at == t0 + timedelta(minutes=10)
    assert row.error_message == "Jaringan bermasalah."
    assert run(gateway, now=t0 + timedelta(minutes=9)) == 0
    assert run(gateway, now=t0 + timedelta(minutes=10)) == 1
    assert run(gateway, now=t0 + timedelta(minutes=20)) == 1
    (row,) = queue_rows()
    assert (row.status, row.retry_count) == ("failed", 3)
    assert len(gateway.sent) == 3
    assert run(gateway, now=t0 + timedelta(hours=2)) == 0
    (entry,) = log_rows()
    assert (entry.status, entry.error_message) == ("failed", "Jaringan bermasalah.")
    # Resent by hand: pending again, due now, with fresh attempts under a new key; then
    # it goes out, and the failed attempt keeps its own log row.
    assert wa_queue.retry_message(world.mitra_a, row.id) == "b:0#ulang-1"
    (row,) = queue_rows()
    assert (row.status, row.retry_count, row.idempotency_key) == ("pending", 0, "b:0#ulang-1")
    gateway.outcome = None
    later = max(datetime.now(UTC), t0) + timedelta(hours=1)
    assert run(gateway, now=wa_throttle.quiet_end_after(later, CONFIG)) == 1
    by_key = {e.idempotency_key: e for e in log_rows()}
    assert by_key["b:0"].status == "failed"
    assert by_key["b:0"].error_message.startswith("Jaringan bermasalah. — dikirim ulang oleh")
    assert (by_key["b:0#ulang-1"].status, by_key["b:0#ulang-1"].sent_by) == (
        "sent", world.mitra_a.user_id)


def test_restricted_pauses_only_that_session(world):
    owner_a, owner_admin = world.mitra_a.user_id, customer("Rudi Hartono").owner_id
    bulk(world, owner_a, 3, prefix="a")
    bulk(world, owner_admin, 3, prefix="s")
    connect(owner_a)
    connect(owner_admin)
    gateway = RecordingGateway(outcome=lambda m: SendResult.failed(
        ErrorKind.RESTRICTED, "Akun dibatasi sementara (463)")
        if m.owner_id == owner_a else None)
    for step in range(1, 8):
        run(gateway, now=NOW + timedelta(seconds=10 * step))
    a_rows = queue_rows(owner_id=owner_a)
    assert [r.status for r in a_rows] == ["pending"] * 3
    assert all(r.retry_count == 0 for r in a_rows)  # not counted as an attempt
    assert [r.status for r in queue_rows(owner_id=owner_admin)] == ["sent"] * 3
    assert sum(1 for o, _, _ in gateway.sent if o == owner_a) == 1
    sess = session_of(owner_a)
    assert sess.queue_paused_at is not None
    assert sess.queue_pause_reason.startswith("Akun WhatsApp dibatasi")
    (alert,) = logs("wa.queue.paused")
    assert alert.resource_id == sess.id
    overview = wa_queue.queue_overview(world.mitra_a)
    assert overview.paused and "dibatasi" in overview.pause_reason
    everyone = wa_queue.queue_overview(world.admin)
    assert everyone.paused and "WiFi Sukamaju" in everyone.pause_reason
    # The owner resumes; the queue goes on.
    assert wa_queue.resume_queue(world.mitra_a) is True
    assert wa_queue.resume_queue(world.mitra_a) is False
    gateway.outcome = None
    for step in range(1, 6):
        run(gateway, now=NOW + timedelta(minutes=10, seconds=10 * step))
    assert [r.status for r in queue_rows(owner_id=owner_a)] == ["sent"] * 3
    assert len(logs("wa.queue.resume")) == 1


def test_quiet_hours_hold_messages_until_morning(world):
    night = datetime(2026, 2, 4, 22, 0, tzinfo=JAKARTA).astimezone(UTC)
    owner = world.mitra_a.user_id
    wa_queue.enqueue_bulk(world.admin, owner_id=owner, now=night, config=CONFIG, items=[
        BulkItem(None, None, "6281200000001", "Halo", "q1")])
    (row,) = queue_rows()
    # Queued during quiet hours: the staggering starts at their end.
    morning = datetime(2026, 2, 5, 6, 0, tzinfo=JAKARTA).astimezone(UTC)
    assert row.scheduled_at == morning + timedelta(seconds=10)
    connect(owner)
    # Even a message due at night waits: the session is parked until 06:00.
    with new_session() as s:
        s.execute(sa.update(WaMessageQueue).values(scheduled_at=night))
        s.commit()
    gateway = RecordingGateway()
    assert run(gateway, now=night + timedelta(minutes=5)) == 0
    assert session_of(owner).next_send_at == morning
    assert run(gateway, now=morning - timedelta(seconds=1)) == 0
    assert run(gateway, now=morning) == 1


def test_hourly_and_daily_caps_are_enforced_at_claim(world):
    owner = world.mitra_a.user_id
    bulk(world, owner, 6)
    connect(owner)
    capped = RateConfig(min_delay_s=10, max_delay_s=10, jitter_s=0, max_per_hour=2,
                        max_per_day=3)
    gateway = RecordingGateway()
    t = NOW + timedelta(minutes=5)
    assert run(gateway, now=t, config=capped) == 1
    assert run(gateway, now=t + timedelta(seconds=10), config=capped) == 1
    assert run(gateway, now=t + timedelta(minutes=30), config=capped) == 0  # hour is full
    assert session_of(owner).next_send_at == t + timedelta(hours=1)
    assert run(gateway, now=t + timedelta(hours=1), config=capped) == 1
    assert run(gateway, now=t + timedelta(hours=2), config=capped) == 0  # day is full
    next_day = datetime(2026, 2, 5, 6, 0, tzinfo=JAKARTA).astimezone(UTC)  # after quiet
    assert session_of(owner).next_send_at == next_day
    assert run(gateway, now=next_day, config=capped) == 1
    assert len(gateway.sent) == 4


def test_paid_invoice_reminder_is_cancelled_at_claim(world):
    inv = reminders_due_tomorrow(world)
    enqueue()
    connect(world.mitra_a.user_id)
    # Paid behind the queue's back (a direct update; the payment path is tested below).
    with new_session() as s:
        s.execute(sa.update(Invoice).where(Invoice.id == inv["Ahmad Fauzi"].id).values(
            paid_amount=Invoice.total_amount))
        s.commit()
    gateway = RecordingGateway()
    assert run(gateway, now=NOW + timedelta(seconds=20)) == 1
    (cancelled,) = queue_rows(status="cancelled")
    assert cancelled.invoice_id == inv["Ahmad Fauzi"].id
    assert cancelled.error_message == "Tagihan sudah dibayar"
    assert gateway.keys() == [f"reminder:{inv['Dewi Lestari'].id}:2026-02-04"]


def test_paying_cancels_queued_reminders(world):
    inv = reminders_due_tomorrow(world)
    enqueue()
    invoices.pay_invoice(world.mitra_a, inv["Dewi Lestari"].id, version=1, method="cash")
    wa_direct.wait_for_dispatch()
    (row,) = queue_rows(invoice_id=inv["Dewi Lestari"].id)
    assert row.status == "cancelled"
    with new_session() as s:
        assert wa_queue.cancel_for_invoice(s, inv["Ahmad Fauzi"].id) == 1
        s.commit()


def test_number_not_on_whatsapp_is_skipped_and_remembered(world):
    owner = world.mitra_a.user_id
    bulk(world, owner, 2)
    connect(owner)
    gateway = RecordingGateway(not_on_whatsapp=frozenset({"6281200000000"}))
    # The skipped one spends neither the spacing nor the quota: the next goes out at once.
    assert run(gateway, now=NOW + timedelta(minutes=1)) == 2
    first = queue_rows()[0]
    assert (first.status, first.error_message) == ("skipped", "Nomor tidak terdaftar di "
                                                              "WhatsApp")
    with new_session() as s:
        assert s.get(WaNumber, "6281200000000").on_whatsapp is False
    assert gateway.keys() == ["b:1"]  # the first was checked, never sent
    assert session_of(owner).day_count == 1
    # The gateway itself can say so too: skipped and cached.
    assert bulk(world, owner, 2, prefix="z") == 1  # z:0 is the number known without WA
    gateway.outcome = lambda m: SendResult.failed(ErrorKind.NOT_ON_WHATSAPP, "Tidak ada WA")
    assert run(gateway, now=NOW + timedelta(minutes=3)) == 1
    assert queue_rows(idempotency_key="z:1")[0].status == "skipped"
    with new_session() as s:
        assert s.get(WaNumber, "6281200000001").on_whatsapp is False


def test_invalid_fails_at_once_and_not_connected_goes_back(world):
    owner = world.mitra_a.user_id
    bulk(world, owner, 2)
    connect(owner)
    gateway = RecordingGateway(outcome=lambda m: SendResult.failed(
        ErrorKind.INVALID, "Nomor WhatsApp tidak valid."))
    assert run(gateway, now=NOW + timedelta(minutes=1), max_messages=1) == 1
    assert queue_rows(idempotency_key="b:0")[0].status == "failed"
    gateway.outcome = lambda m: SendResult.failed(ErrorKind.NOT_CONNECTED, "Tidak terhubung")
    assert run(gateway, now=NOW + timedelta(minutes=2)) == 1  # then it waits
    row = queue_rows(idempotency_key="b:1")[0]
    assert (row.status, row.retry_count, row.claimed_at) == ("pending", 0, None)
    assert session_of(owner).next_send_at >= NOW + timedelta(minutes=3)
    # Neither reached WhatsApp: nothing counted against the caps.
    assert (session_of(owner).day_count, session_of(owner).hour_count) == (0, 0)


@pytest.mark.parametrize(("answer", "status"), [
    (SentLookup.SENT, "sent"), (SentLookup.NOT_SENT, "pending"),
    (SentLookup.UNKNOWN, "uncertain")])
def test_reconcile_a_stale_sending_row(world, answer, status):
    owner = world.mitra_a.user_id
    bulk(world, owner, 2)
    connect(owner)
    # A worker claims and dies before sending or recording anything.
    claim = wa_queue.claim_next("dead-worker", NOW + timedelta(minutes=1), CONFIG,
                                random.Random(0))
    assert claim is not None
    gateway = RecordingGateway(lookup=answer)
    # The session sends nothing else while its message is in flight.
    assert run(gateway, now=NOW + timedelta(minutes=2)) == 0
    assert wa_queue.reconcile_stale(gateway, now=NOW + timedelta(minutes=1, seconds=60)) == {
        "sent": 0, "pending": 0, "uncertain": 0}  # not stale yet
    counts = wa_queue.reconcile_stale(gateway, now=NOW + timedelta(minutes=4))
    assert counts[status] == 1
    row = queue_rows(id=claim.queue_id)[0]
    assert row.status == status
    assert gateway.sent == []  # never resent blindly
    if status == "sent":
        (entry,) = log_rows()
        assert (entry.status, entry.queue_id) == ("sent", claim.queue_id)
    if status == "uncertain":
        assert row.error_message.startswith("Status pengiriman tidak pasti")
        wa_queue.retry_message(world.mitra_a, row.id)
        assert queue_rows(id=claim.queue_id)[0].status == "pending"
    if status == "pending":
        assert row.retry_count == 0 and row.claimed_at is None
        run(gateway, now=NOW + timedelta(minutes=5))
        assert gateway.keys() == [claim.idempotency_key]


def test_uncertain_send_stays_in_flight_until_reconciled(world):
    owner = world.mitra_a.user_id
    bulk(world, owner, 2)
    connect(owner)
    gateway = RecordingGateway(outcome=lambda m: SendResult.failed(
        ErrorKind.UNCERTAIN, "Waktu habis"))
    assert run(gateway, now=NOW + timedelta(minutes=1)) == 1
    assert queue_rows(idempotency_key="b:0")[0].status == "sending"
    assert run(gateway, now=NOW + timedelta(minutes=2)) == 0
    gateway.lookup = SentLookup.SENT
    wa_queue.reconcile_stale(gateway, now=NOW + timedelta(minutes=5))
    assert queue_rows(idempotency_key="b:0")[0].status == "sent"
    gateway.outcome = None
    assert run(gateway, now=NOW + timedelta(minutes=6)) == 1


# --- the page ------------------------------------------------------------------------------


def test_counts_list_cancel_are_scoped_to_the_owner(world):
    owner_a = world.mitra_a.user_id
    admin_owner = customer("Rudi Hartono").owner_id
    bulk(world, owner_a, 3, prefix="a")
    bulk(world, admin_owner, 25, prefix="s")
    assert wa_queue.queue_counts(world.mitra_a)["pending"] == 3
    assert wa_queue.queue_counts(world.mitra_b) == {s: 0 for s in wa_queue.STATUSES}
    assert wa_queue.queue_counts(world.admin)["pending"] == 28
    assert wa_queue.queue_counts(world.admin, owner_id=owner_a)["pending"] == 3
    with pytest.raises(PermissionDenied):
        wa_queue.queue_counts(world.mitra_b, owner_id=owner_a)
    page = wa_queue.list_queue(world.admin, status="pending")
    assert (page.total, page.pages, len(page.items)) == (28, 2, 20)
    assert len(wa_queue.list_queue(world.admin, page=2, status="pending").items) == 8
    mine = wa_queue.list_queue(world.mitra_a)
    assert mine.total == 3 and {r.owner_id for r in mine.items} == {owner_a}
    assert wa_queue.list_queue(world.mitra_b).total == 0
    with pytest.raises(ValidationFailed):
        wa_queue.list_queue(world.admin, status="lost")
    target = mine.items[0].id
    with pytest.raises(NotFound):
        wa_queue.cancel_message(world.mitra_b, target)
    with pytest.raises(NotFound):
        wa_queue.retry_message(world.mitra_b, target)
    with pytest.raises(Conflict):
        wa_queue.retry_message(world.mitra_a, target)  # pending, not failed
    wa_queue.cancel_message(world.mitra_a, target)
    assert queue_rows(id=target)[0].status == "cancelled"
    with pytest.raises(Conflict) as exc:
        wa_queue.cancel_message(world.mitra_a, target)
    assert "menunggu" in exc.value.message
    assert len(logs("wa.queue.cancel")) == 1
    with pytest.raises(PermissionDenied):
        wa_queue.resume_queue(world.mitra_b, owner_id=owner_a)


def test_overview_shows_pacing_against_the_caps(world):
    owner = world.mitra_a.user_id
    real_now = datetime.now(UTC)
    no_quiet = RateConfig(min_delay_s=10, max_delay_s=10, jitter_s=0, quiet_start="",
                          quiet_end="")
    wa_queue.enqueue_bulk(world.admin, owner_id=owner, config=no_quiet,
                          now=real_now - timedelta(minutes=5), items=[
                              BulkItem(None, None, f"6281200000{i:03d}", "Halo", f"o:{i}")
                              for i in range(3)])
    connect(owner)
    assert run(RecordingGateway(), now=real_now, config=no_quiet) == 1
    ov = wa_queue.queue_overview(world.mitra_a)
    assert (ov.owner_id, ov.business_name) == (owner, "WiFi Sukamaju")
    assert (ov.sent_today, ov.sent_this_hour, ov.pending) == (1, 1, 2)
    assert (ov.max_per_day, ov.max_per_hour, ov.paused) == (300, 50, False)
    assert ov.quiet_hours == "21:00–06:00" and ov.session_status == "connected"
    assert ov.next_send_at is not None
    empty = wa_queue.queue_overview(world.mitra_b)
    assert (empty.pending, empty.paused, empty.session_status) == (0, False, "disconnected")
    everyone = wa_queue.queue_overview(world.admin)
    assert everyone.owner_id is None and everyone.pending == 2
    assert [o.business_name for o in everyone.sessions] == ["WiFi Sukamaju"]


# --- the race ------------------------------------------------------------------------------

RACE_CONFIG = RateConfig(min_delay_s=0.01, max_delay_s=0.02, jitter_s=0.005,
                         max_per_hour=100_000, max_per_day=100_000, batch_size=1000,
                         batch_cooldown_s=0, quiet_start="", quiet_end="")


@pytest.mark.timeout(120)
def test_four_workers_send_2000_messages_exactly_once_with_spacing(pg):
    from tests.factories import World

    world = World.seeded()
    owners = [world.mitra_a.user_id, world.mitra_b.user_id,
              customer("Rudi Hartono").owner_id]
    now = datetime.now(UTC)
    total = 2000
    phones = {}
    for n, owner in enumerate(owners):
        count = total // 3 + (1 if n < total % 3 else 0)
        items = [BulkItem(None, None, f"628{n}{i:09d}", f"Pesan {i}", f"race:{n}:{i}")
                 for i in range(count)]
        phones.update({i.phone: True for i in items})
        assert wa_queue.enqueue_bulk(world.admin, owner_id=owner, items=items, now=now,
                                     config=RACE_CONFIG) == count
        connect(owner)
    with new_session() as s:  # numbers already checked: this test is about the claim
        wa_numbers.remember(s, phones)
        s.commit()
    gateway = RecordingGateway()
    errors: list[BaseException] = []

    def remaining() -> int:
        with new_session() as s:
            return s.execute(sa.select(sa.func.count()).select_from(WaMessageQueue).where(
                WaMessageQueue.status.in_(("pending", "sending")))).scalar()

    def worker(n: int) -> None:
        try:
            deadline = time.monotonic() + 100
            while time.monotonic() < deadline:
                if not wa_queue.run_once(gateway, worker_id=f"w{n}", config=RACE_CONFIG,
                                         max_messages=50):
                    if remaining() == 0:
                        return
                    time.sleep(0.002)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    keys = gateway.keys()
    assert len(keys) == total and len(set(keys)) == total  # every message exactly once
    with new_session() as s:
        statuses = dict(s.execute(sa.select(WaMessageQueue.status, sa.func.count())
                                  .group_by(WaMessageQueue.status)).all())
        logged = s.execute(sa.select(sa.func.count()).select_from(WaMessageLog)).scalar()
        workers = s.execute(sa.select(sa.func.count(sa.distinct(
            WaMessageQueue.claimed_by)))).scalar()
    assert statuses == {"sent": total} and logged == total
    assert workers >= 3  # the workers really took turns
    for owner in owners:
        times = sorted(at for o, _, at in gateway.sent if o == owner)
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert min(gaps) >= RACE_CONFIG.min_delay_s, (owner, min(gaps))


# --- the Celery tasks (called in-process; tests/workers runs real workers) -----------------


def test_billing_task_queues_reminders_and_the_tick_sends_them(world, monkeypatch):
    from fibernode.models import Customer
    from fibernode.services import wa_config
    from fibernode.whatsapp import set_gateway
    from workers import tasks

    with new_session() as s:
        s.execute(sa.update(Customer).values(register_date=date(2025, 1, 1)))
        s.commit()
    result = tasks.generate_invoices.run(today="2026-02-04")
    assert result["created"] == 1  # Ahmad (billing date 5), due tomorrow
    (row,) = queue_rows()
    assert row.message_type == "reminder" and "Ahmad Fauzi" in row.content
    assert tasks.wa_enqueue_reminders.run(today="2026-02-04")["already_queued"] == 1
    # Send it on its day (a reminder expires after it): no quiet hours, due already, the
    # owner's number connected.
    wa_config.update_wa_config(world.admin, {"quiet_start": "", "quiet_end": ""})
    monkeypatch.setattr(clock, "now", lambda: NOW + timedelta(hours=3))
    with new_session() as s:
        s.execute(sa.update(WaMessageQueue).values(
            scheduled_at=NOW + timedelta(hours=3) - timedelta(seconds=1)))
        s.commit()
    connect(row.owner_id)
    gateway = RecordingGateway()
    set_gateway(gateway)
    try:
        ticked = tasks.wa_queue_tick.run(budget_s=2)
    finally:
        set_gateway(None)
    assert ticked["handled"] == 1
    assert gateway.keys() == [row.idempotency_key]
    assert queue_rows()[0].status == "sent"


# --- nothing disappears silently; stale reminders expire (issue 17 #7, #8) ---------------


def skipped_logs() -> dict[str, WaMessageLog]:
    return {r.idempotency_key: r for r in log_rows() if r.status == "skipped"}


def test_every_message_not_sent_leaves_a_skipped_log_row_with_its_reason(world):
    inv = reminders_due_tomorrow(world)
    with new_session() as s:
        wa_numbers.remember(s, {"6281200000000": False})  # bulk b:0
        s.commit()
    with new_session() as s:  # Rudi's number: known without WhatsApp at enqueue
        rudi_phone = customer("Rudi Hartono").phone
        wa_numbers.remember(s, {rudi_phone: False})
        s.commit()
    enqueue()
    assert bulk(world, world.mitra_a.user_id, 2) == 1
    # Dewi pays (payment path cancels her reminder); Ahmad's is cancelled at claim time
    # after a payment behind the queue's back.
    invoices.pay_invoice(world.mitra_a, inv["Dewi Lestari"].id, version=1, method="cash")
    wa_direct.wait_for_dispatch()
    with new_session() as s:
        s.execute(sa.update(Invoice).where(Invoice.id == inv["Ahmad Fauzi"].id).values(
            paid_amount=Invoice.total_amount))
        s.commit()
    connect(world.mitra_a.user_id)
    run(RecordingGateway(), now=NOW + timedelta(hours=1))
    logged = skipped_logs()
    reason = {k: v.error_message for k, v in logged.items()}
    assert reason["b:0"] == "Nomor tidak terdaftar di WhatsApp"
    assert reason[wa_queue.reminder_key(inv["Rudi Hartono"].id, TODAY)] == \
        "Nomor tidak terdaftar di WhatsApp"
    assert reason[wa_queue.reminder_key(inv["Dewi Lestari"].id, TODAY)] == "Tagihan sudah dibayar"
    assert reason[wa_queue.reminder_key(inv["Ahmad Fauzi"].id, TODAY)] == "Tagihan sudah dibayar"
    ahmad = logged[wa_queue.reminder_key(inv["Ahmad Fauzi"].id, TODAY)]
    assert ahmad.invoice_id == inv["Ahmad Fauzi"].id and "Ahmad Fauzi" in ahmad.content
    assert ahmad.queue_id is not None and ahmad.owner_id == inv["Ahmad Fauzi"].owner_id


def test_skipped_at_send_and_cancelled_by_hand_are_logged(world):
    owner = world.mitra_a.user_id
    bulk(world, owner, 3)
    connect(owner)
    gateway = RecordingGateway(not_on_whatsapp=frozenset({"6281200000000"}))
    gateway.outcome = (lambda m: SendResult.failed(ErrorKind.NOT_ON_WHATSAPP, "Tidak ada WA")
                       if m.idempotency_key == "b:1" else None)
    (third,) = queue_rows(idempotency_key="b:2")
    wa_queue.cancel_message(world.mitra_a, third.id)
    run(gateway, now=NOW + timedelta(minutes=5))
    run(gateway, now=NOW + timedelta(minutes=6))
    reason = {k: v.error_message for k, v in skipped_logs().items()}
    assert reason["b:0"] == "Nomor tidak terdaftar di WhatsApp"  # the number check
    assert reason["b:1"] == "Tidak ada WA"  # the gateway's answer
    assert reason["b:2"].startswith("Dibatalkan oleh ")
    # The log page lists and names them.
    from fibernode.services import whatsapp
    page = whatsapp.list_logs(world.mitra_a, status="skipped")
    assert page.total == 3 and {i.status_label for i in page.items} == {"Dilewati"}


def test_a_reminder_is_never_sent_after_its_day_or_once_its_due_date_came(world):
    h1 = make_invoice("Ahmad Fauzi", "2026-03", due_date=TOMORROW)
    late = make_invoice("Dewi Lestari", "2026-02", due_date=TODAY - timedelta(days=3))
    assert enqueue(offsets=[-1, 3]).enqueued == 2
    # The mitra reconnects on the due date: "besok" is wrong now, "3 hari" too.
    connect(world.mitra_a.user_id)
    gateway = RecordingGateway()
    on_due_date = datetime(2026, 2, 5, 8, 0, tzinfo=JAKARTA).astimezone(UTC)
    assert run(gateway, now=on_due_date) == 0
    assert gateway.sent == []
    assert {r.status for r in queue_rows()} == {"cancelled"}
    reason = {k: v.error_message for k, v in skipped_logs().items()}
    assert reason[wa_queue.reminder_key(h1.id, TODAY)] == \
        "Pengingat kedaluwarsa: tanggal jatuh tempo sudah tiba"
    assert reason[wa_queue.reminder_key(late.id, TODAY)].startswith(
        "Pengingat kedaluwarsa: tidak terkirim pada hari ")


def test_a_reminder_still_goes_out_later_on_its_own_day(world):
    inv = make_invoice("Ahmad Fauzi", "2026-03", due_date=TOMORROW)
    enqueue()
    connect(world.mitra_a.user_id)
    gateway = RecordingGateway()
    evening = datetime(2026, 2, 4, 20, 0, tzinfo=JAKARTA).astimezone(UTC)
    assert run(gateway, now=evening) == 1
    assert gateway.keys() == [wa_queue.reminder_key(inv.id, TODAY)]
    assert "besok" in queue_rows()[0].content


def test_isolated_subscriber_reminder_is_skipped_at_claim_with_a_log_row(world):
    inv = make_invoice("Ahmad Fauzi", "2026-03", due_date=TOMORROW)
    enqueue()
    customers.set_isolated(world.admin, customer("Ahmad Fauzi").id, True, "Belum bayar")
    wa_direct.wait_for_dispatch()
    connect(world.mitra_a.user_id)
    gateway = RecordingGateway()
    run(gateway, now=NOW + timedelta(minutes=5))
    assert gateway.sent == []
    logged = skipped_logs()[wa_queue.reminder_key(inv.id, TODAY)]
    assert logged.error_message == "Pelanggan diisolir"


def test_failed_reminder_enqueue_is_retried(world, monkeypatch):
    from workers import tasks

    make_invoice("Ahmad Fauzi", "2026-03", due_date=TOMORROW)
    real = wa_queue.enqueue_reminders
    calls = []

    def flaky(actor, today=None, **kw):
        calls.append(today)
        if len(calls) < 3:
            raise sa.exc.OperationalError("SELECT 1", {}, Exception("database restarting"))
        return real(actor, today, now=NOW, config=CONFIG, **kw)

    monkeypatch.setattr(wa_queue, "enqueue_reminders", flaky)
    # An eager apply runs Celery's own retry path (countdowns are not waited for).
    outcome = tasks.wa_enqueue_reminders.apply(kwargs={"today": "2026-02-04"})
    assert outcome.successful(), outcome.traceback
    assert outcome.result["enqueued"] == 1
    assert calls == [TODAY] * 3
    assert tasks.wa_enqueue_reminders.max_retries >= 3  # bounded, not forever


def test_billing_hands_a_failed_reminder_enqueue_to_the_retrying_task(world, monkeypatch):
    from workers import tasks

    handed = []
    monkeypatch.setattr(wa_queue, "enqueue_reminders",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("down")))
    monkeypatch.setattr(tasks.wa_enqueue_reminders, "apply_async",
                        lambda *a, **k: handed.append(k))
    tasks.generate_invoices.run(today="2026-02-04")
    assert handed == [{"kwargs": {"today": "2026-02-04"},
                       "countdown": tasks.REMINDER_RETRY_BACKOFF_S}]


# --- quota: only real send attempts count (issue 17, item 6) ------------------------------


class FlakyGateway(RecordingGateway):
    """The gateway's view of the session, and sends refused as "not connected" by it."""

    def __init__(self, status: WaSessionStatus = WaSessionStatus.CONNECTED, **kw):
        super().__init__(**kw)
        self.status = status
        self.asked: list[uuid.UUID] = []

    def link_state(self, owner_id) -> LinkState:
        self.asked.append(owner_id)
        return LinkState(status=self.status)


def test_not_connected_sends_do_not_spend_the_daily_cap(world):
    owner = world.mitra_a.user_id
    bulk(world, owner, 5)
    connect(owner)
    config = RateConfig(min_delay_s=10, max_delay_s=10, jitter_s=0, max_per_day=3)
    gateway = FlakyGateway(outcome=lambda m: SendResult.failed(
        ErrorKind.NOT_CONNECTED, "Hubungkan WhatsApp terlebih dahulu."))
    at = NOW + timedelta(minutes=1)
    for _ in range(5):  # the gateway keeps saying "not connected" (a flapping link)
        assert run(gateway, now=at, config=config) == 1
        at += timedelta(minutes=2)
    assert gateway.keys() == ["b:0"] * 5
    assert session_of(owner).day_count == 0
    assert {r.status for r in queue_rows()} == {"pending"}
    # Once it really sends, the whole cap is still there.
    gateway.outcome = None
    sent = 0
    for _ in range(6):
        sent += run(gateway, now=at, config=config)
        at += timedelta(minutes=1)
    assert sent == 3 and session_of(owner).day_count == 3
    assert [r.status for r in queue_rows()].count("sent") == 3


def test_a_session_still_marked_connected_after_a_gateway_crash_is_rechecked_first(world):
    owner = world.mitra_a.user_id
    bulk(world, owner, 3)
    connect(owner)  # the gateway died without reporting the drop; then came back without it
    gateway = FlakyGateway(status=WaSessionStatus.DISCONNECTED,
                           outcome=lambda m: SendResult.failed(
                               ErrorKind.NOT_CONNECTED, "Hubungkan WhatsApp terlebih dahulu."))
    assert run(gateway, now=NOW + timedelta(minutes=1)) == 0
    assert gateway.asked == [owner] and gateway.sent == []  # asked, nothing claimed
    session = session_of(owner)
    assert (session.status, session.day_count, session.hour_count) == ("disconnected", 0, 0)
    assert session.last_error == wa_queue.STALE_SESSION
    assert {(r.status, r.retry_count) for r in queue_rows()} == {("pending", 0)}
    # The gateway resumes the number and reports it: sending starts, cap intact.
    gateway.status, gateway.outcome = WaSessionStatus.CONNECTED, None
    connect(owner)
    assert run(gateway, now=NOW + timedelta(minutes=2)) == 1
    assert session_of(owner).day_count == 1


def test_a_gateway_that_cannot_be_asked_leaves_the_session_alone_and_sends_nothing(world):
    owner = world.mitra_a.user_id
    bulk(world, owner, 1)
    connect(owner)

    class Down(FlakyGateway):
        def link_state(self, owner_id):
            raise GatewayError(ErrorKind.NOT_CONNECTED, "Layanan WhatsApp gateway tidak berjalan.")

    gateway = Down()
    assert run(gateway, now=NOW + timedelta(minutes=1)) == 0
    assert gateway.sent == []
    assert (session_of(owner).status, session_of(owner).day_count) == ("connected", 0)


# --- deliberate resend (issue 17, item 4) --------------------------------------------------


def test_a_message_stuck_in_sending_can_be_resent_on_purpose_with_a_new_key(world):
    owner = world.mitra_a.user_id
    bulk(world, owner, 1)
    connect(owner)
    claim = wa_queue.claim_next("stuck", clock.now() - timedelta(minutes=30), CONFIG,
                                random.Random(0))
    assert claim is not None
    with new_session() as s:  # a worker hung right after its claim, 30 minutes ago
        s.execute(sa.update(WaMessageQueue).where(WaMessageQueue.id == claim.queue_id)
                  .values(claimed_at=clock.now() - timedelta(minutes=30)))
        s.commit()
    assert wa_queue.retry_message(world.mitra_a, claim.queue_id) == "b:0#ulang-1"
    row = queue_rows(id=claim.queue_id)[0]
    assert (row.status, row.idempotency_key, row.claimed_at) == ("pending", "b:0#ulang-1",
                                                                  None)
    (old,) = [e for e in log_rows() if e.idempotency_key == "b:0"]
    assert old.status == "uncertain" and "dikirim ulang oleh" in old.error_message
    (audit,) = logs("wa.queue.retry")
    assert audit.user_id == world.mitra_a.user_id
    assert audit.meta["key"] == {"from": "b:0", "to": "b:0#ulang-1"}
    # A resend of the resend counts on; a message just claimed is not "stuck".
    with new_session() as s:
        s.execute(sa.update(WaMessageQueue).where(WaMessageQueue.id == claim.queue_id)
                  .values(status="uncertain"))
        s.commit()
    assert wa_queue.retry_message(world.admin, claim.queue_id) == "b:0#ulang-2"
    with new_session() as s:
        s.execute(sa.update(WaMessageQueue).where(WaMessageQueue.id == claim.queue_id)
                  .values(status="sending", claimed_at=clock.now()))
        s.commit()
    with pytest.raises(Conflict):
        wa_queue.retry_message(world.mitra_a, claim.queue_id)


def test_resend_keys_count_on_from_the_last_resend():
    assert wa_queue.resend_key("reminder:x:2026-02-04") == "reminder:x:2026-02-04#ulang-1"
    assert wa_queue.resend_key("k#ulang-1") == "k#ulang-2"
    assert wa_queue.resend_key("k#ulang-9", taken={"k#ulang-10"}) == "k#ulang-11"


def test_a_resent_reminder_is_not_queued_again_by_a_rerun_of_the_daily_job(world):
    inv = make_invoice("Ahmad Fauzi", "2026-03", due_date=TOMORROW)
    assert enqueue().enqueued == 1
    connect(world.mitra_a.user_id)
    gateway = RecordingGateway(outcome=lambda m: SendResult.failed(
        ErrorKind.INVALID, "Nomor WhatsApp tidak valid."))
    run(gateway, now=NOW + timedelta(minutes=5))
    (row,) = queue_rows()
    assert row.status == "failed"
    wa_queue.retry_message(world.mitra_a, row.id)
    assert enqueue().enqueued == 0  # the reminder lives on under its resend key
    assert [r.idempotency_key for r in queue_rows()] == [
        wa_queue.reminder_key(inv.id, TODAY) + "#ulang-1"]


def test_an_uncertain_message_the_gateway_later_saw_go_out_is_settled_as_sent(
        world, monkeypatch):
    monkeypatch.setattr(wa_queue, "RECHECK_EVERY_S", 0.0)
    owner = world.mitra_a.user_id
    bulk(world, owner, 1)
    connect(owner)
    # The HTTP call to the gateway timed out; the gateway itself was still sending.
    gateway = RecordingGateway(outcome=lambda m: SendResult.failed(
        ErrorKind.UNCERTAIN, "Layanan WhatsApp gateway tidak menjawab."))
    run(gateway, now=NOW + timedelta(minutes=1))
    assert wa_queue.reconcile_stale(gateway, now=NOW + timedelta(minutes=4))["uncertain"] == 1
    assert queue_rows()[0].status == "uncertain"
    gateway.lookup = SentLookup.SENT  # it finished and recorded the key
    assert wa_queue.reconcile_stale(gateway, now=NOW + timedelta(minutes=20))["sent"] == 1
    (row,) = queue_rows()
    assert row.status == "sent"
    (entry,) = log_rows()
    assert (entry.status, entry.idempotency_key) == ("sent", "b:0")
    assert gateway.keys() == ["b:0"]  # settled by key, never resent
    # Days later nobody asks any more.
    gateway.lookup = SentLookup.UNKNOWN
    assert wa_queue.reconcile_stale(gateway, now=NOW + timedelta(days=3)) == {
        "sent": 0, "pending": 0, "uncertain": 0}
