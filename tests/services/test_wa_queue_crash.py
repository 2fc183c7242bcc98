"""The queue when things die or stall mid-send, on real PostgreSQL.

WhatsApp itself is replaced by :class:`KeyedGateway`, which keeps the wa-gateway's own
promise with the real :class:`~fibernode.whatsapp.gateway.store.SentKeys` file: a key
is claimed before the message leaves, marked sent after, and a key whose outcome is
unknown is refused for good. Every message that "leaves" is appended to a wire file,
so a duplicate shows up however many processes sent it.

* A worker **process** is killed with SIGKILL at three points of a send (claim taken,
  nothing sent / the send begun, outcome unknown / sent, not yet recorded):
  :func:`wa_queue.reconcile_stale` settles each by key, nothing is lost or sent twice,
  and the unknown one is resent only when the owner asks, under a new key.
* :func:`wa_queue.reconcile_stale` **races a slow send** in another thread: it never
  resends, and the slow send's late answer is recorded once.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import ActivityLog, WaMessageLog, WaMessageQueue, WaSessionStatus
from fibernode.services import wa_numbers, wa_queue, wa_sessions
from fibernode.services.errors import Conflict
from fibernode.services.wa_queue import BulkItem
from fibernode.services.wa_throttle import RateConfig
from fibernode.whatsapp.base import (
    ErrorKind,
    Gateway,
    LinkState,
    OutgoingMessage,
    SendResult,
    SentLookup,
)
from fibernode.whatsapp.gateway.store import SENT, SentKeys

# No spacing, no quiet hours: these tests are about who records what, at any hour.
CONFIG = RateConfig(min_delay_s=0, max_delay_s=0, jitter_s=0, batch_cooldown_s=0,
                    quiet_start="", quiet_end="")
PHONE = "6281277700001"


class KeyedGateway(Gateway):
    """A gateway that sends each key at most once, like wa-gateway's ``SessionManager.send``.

    Args:
        root: Directory of the SentKeys file and the wire file (shared across processes).
        stall: ``None``, or where :meth:`send_text` waits on :attr:`release`:
            ``"before"`` (nothing claimed yet), ``"begun"`` (key claimed, nothing sent) or
            ``"sent"`` (on the wire and marked sent, not yet returned).
        status: What :meth:`link_state` reports.
    """

    name = "keyed"

    def __init__(self, root: Path, stall: str | None = None,
                 status: WaSessionStatus = WaSessionStatus.CONNECTED):
        self.root = Path(root)
        self.keys = SentKeys(self.root / "gateway.sqlite3")
        self.stall = stall
        self.status = status
        self.reached = threading.Event()
        self.release = threading.Event()

    def _wait(self, stage: str) -> None:
        if self.stall == stage:
            (self.root / f"reached-{stage}").touch()
            self.reached.set()
            self.release.wait(60)

    def send_text(self, message: OutgoingMessage) -> SendResult:
        self._wait("before")
        existing = self.keys.begin(message.owner_id, message.idempotency_key)
        if existing is not None:
            if existing.status == SENT:
                return SendResult(ok=True, provider_message_id=existing.message_id)
            return SendResult.failed(ErrorKind.UNCERTAIN, "Kunci ini pernah mulai dikirim.")
        self._wait("begun")
        message_id = f"3EB0{uuid.uuid4().hex[:12].upper()}"
        with open(self.root / "wire.txt", "a") as wire:
            wire.write(f"{message.idempotency_key}\n")
            wire.flush()
            os.fsync(wire.fileno())
        self.keys.mark_sent(message.owner_id, message.idempotency_key, message_id)
        self._wait("sent")
        return SendResult(ok=True, provider_message_id=message_id)

    def wire(self) -> list[str]:
        path = self.root / "wire.txt"
        return path.read_text().splitlines() if path.exists() else []

    def check_numbers(self, owner_id, phones):
        return dict.fromkeys(phones, True)

    def start_link(self, owner_id, *, method="qr", phone=None) -> LinkState:
        return self.link_state(owner_id)

    def link_state(self, owner_id) -> LinkState:
        return LinkState(status=self.status)

    def logout(self, owner_id) -> None:
        pass

    def lookup_sent(self, owner_id, idempotency_key) -> SentLookup:
        record = self.keys.get(owner_id, idempotency_key)
        if record is None:
            return SentLookup.NOT_SENT
        return SentLookup.SENT if record.status == SENT else SentLookup.UNKNOWN


def _doomed_worker(db_url: str, root: str, stall: str) -> None:
    """A queue worker in its own process that stalls mid-send until it is killed."""
    from fibernode import db as fn_db

    fn_db.set_engine(fn_db.create_engine_for(db_url))
    wa_queue.run_once(KeyedGateway(Path(root), stall=stall), worker_id="doomed",
                      config=CONFIG, max_messages=1)


def queue_row(key_prefix: str) -> WaMessageQueue:
    with new_session() as s:
        return s.exec(select(WaMessageQueue).where(
            WaMessageQueue.idempotency_key.startswith(key_prefix))).one()


def logs() -> dict[str, WaMessageLog]:
    with new_session() as s:
        return {r.idempotency_key: r for r in s.exec(select(WaMessageLog)).all()}


def one_message(world, key: str = "crash:0") -> uuid.UUID:
    owner = world.mitra_a.user_id
    with new_session() as s:  # the number is known: no lookup in the worker
        wa_numbers.remember(s, {PHONE: True})
        s.commit()
    assert wa_queue.enqueue_bulk(world.admin, owner_id=owner, items=[BulkItem(
        None, None, PHONE, "Tagihan Anda sudah kami terima.", key)],
        now=clock.now() - timedelta(minutes=1), config=CONFIG) == 1
    wa_sessions.record_event(owner, wa_sessions.SessionEvent(
        status=WaSessionStatus.CONNECTED, phone_number="6281100000000"), source="test")
    return owner


def wait_for_file(path: Path, proc, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.is_alive(), f"worker exited early ({proc.exitcode})"
        assert time.monotonic() < end, f"{path.name} not reached"
        time.sleep(0.05)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("stall", "settled"), [
    ("before", "pending"),   # claim taken, nothing sent: sent once by the next worker
    ("begun", "uncertain"),  # the gateway began the send: unknown, never resent blindly
    ("sent", "sent"),        # it went out, the worker died before recording it
])
def test_a_worker_killed_mid_send_loses_nothing_and_sends_nothing_twice(
        pg, pg_database, tmp_path, stall, settled):
    from tests.factories import World

    world = World.seeded()
    one_message(world)
    proc = multiprocessing.get_context("spawn").Process(
        target=_doomed_worker, args=(pg_database, str(tmp_path), stall))
    proc.start()
    try:
        wait_for_file(tmp_path / f"reached-{stall}", proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        assert proc.exitcode == -signal.SIGKILL
    finally:
        if proc.is_alive():
            proc.kill()
    assert queue_row("crash:0").status == "sending"  # the dead worker's claim

    gateway = KeyedGateway(tmp_path)
    later = clock.now() + timedelta(minutes=5)
    assert wa_queue.reconcile_stale(gateway, now=later)[settled] == 1
    wa_queue.run_once(gateway, worker_id="next", now=later, config=CONFIG)
    wa_queue.reconcile_stale(gateway, now=later + timedelta(minutes=5))
    wa_queue.run_once(gateway, worker_id="next", now=later + timedelta(minutes=5),
                      config=CONFIG)

    row = queue_row("crash:0")
    if settled == "uncertain":
        # Maybe delivered: nothing went out again, the owner sees "tidak pasti" …
        assert gateway.wire() == []
        assert (row.status, row.idempotency_key) == ("uncertain", "crash:0")
        assert logs()["crash:0"].status == "uncertain"
        # … and resends on purpose: a new key the gateway accepts, the old one kept.
        new_key = wa_queue.retry_message(world.mitra_a, row.id)
        assert new_key == "crash:0#ulang-1"
        wa_queue.run_once(gateway, worker_id="next", now=clock.now(), config=CONFIG)
        assert gateway.wire() == [new_key]
        assert queue_row("crash:0").status == "sent"
        entries = logs()
        assert entries["crash:0"].status == "uncertain"
        assert (entries[new_key].status, entries[new_key].sent_by) == (
            "sent", world.mitra_a.user_id)
        with new_session() as s:
            audit = s.exec(select(ActivityLog).where(
                ActivityLog.action == "wa.queue.retry")).one()
        assert audit.user_id == world.mitra_a.user_id
        return
    assert gateway.wire() == ["crash:0"]  # exactly once, whoever sent it
    assert row.status == "sent"
    (entry,) = logs().values()
    assert (entry.status, entry.idempotency_key) == ("sent", "crash:0")


def _slow_send(gateway: KeyedGateway, errors: list) -> threading.Thread:
    def work() -> None:
        try:
            wa_queue.run_once(gateway, worker_id="slow", config=CONFIG, max_messages=1)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    assert gateway.reached.wait(30), "the send never started"
    return thread


@pytest.mark.timeout(120)
def test_the_stale_sweep_racing_a_slow_send_neither_resends_nor_loses_its_answer(
        pg, tmp_path):
    from tests.factories import World

    world = World.seeded()
    one_message(world)
    gateway = KeyedGateway(tmp_path, stall="begun")  # WhatsApp is slow to answer
    errors: list = []
    thread = _slow_send(gateway, errors)
    # The sweep runs while the send is still waiting: the key is begun, so "unknown".
    sweep = KeyedGateway(tmp_path)
    later = clock.now() + timedelta(minutes=5)
    assert wa_queue.reconcile_stale(sweep, now=later)["uncertain"] == 1
    assert wa_queue.run_once(sweep, worker_id="other", now=later, config=CONFIG) == 0
    gateway.release.set()  # the slow send returns: it did go out
    thread.join(30)
    assert not errors, errors
    row = queue_row("crash:0")
    assert (row.status, row.error_message) == ("sent", None)
    (entry,) = logs().values()
    assert entry.status == "sent" and entry.provider_message_id == row.provider_message_id
    # Nothing left to settle or resend; a resend by hand is refused.
    wa_queue.reconcile_stale(sweep, now=later + timedelta(minutes=5))
    wa_queue.run_once(sweep, worker_id="other", now=later + timedelta(minutes=5),
                      config=CONFIG)
    assert gateway.wire() == ["crash:0"]
    with pytest.raises(Conflict):
        wa_queue.retry_message(world.mitra_a, row.id)
    assert len(logs()) == 1


@pytest.mark.timeout(120)
def test_the_stale_sweep_before_a_slow_send_reaches_the_gateway_sends_it_once(
        pg, tmp_path):
    from tests.factories import World

    world = World.seeded()
    one_message(world)
    gateway = KeyedGateway(tmp_path, stall="before")  # the request is still on its way
    errors: list = []
    thread = _slow_send(gateway, errors)
    sweep = KeyedGateway(tmp_path)
    later = clock.now() + timedelta(minutes=5)
    # The gateway never saw the key: back to pending, and another worker sends it.
    assert wa_queue.reconcile_stale(sweep, now=later)["pending"] == 1
    assert wa_queue.run_once(sweep, worker_id="other", now=later, config=CONFIG) == 1
    gateway.release.set()  # the slow request arrives late: the key is already sent
    thread.join(30)
    assert not errors, errors
    assert gateway.wire() == ["crash:0"]
    row = queue_row("crash:0")
    assert (row.status, row.claimed_by) == ("sent", "other")
    (entry,) = logs().values()
    assert entry.status == "sent"
    with new_session() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(WaMessageQueue)).scalar() == 1
