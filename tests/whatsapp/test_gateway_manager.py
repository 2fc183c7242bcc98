"""The wa-gateway session manager with the neonize client replaced by the recording double."""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import timedelta

import pytest
from neonize.proto.Neonize_pb2 import IsOnWhatsAppResponse
from sqlmodel import select

from fibernode.db import get_engine, new_session
from fibernode.models import WaSession, WaSessionStatus
from fibernode.whatsapp.base import ErrorKind, GatewayError, SentLookup
from fibernode.whatsapp.gateway import events as gev
from fibernode.whatsapp.gateway.clients import (
    FakeBackend,
    FakeLinkClient,
    FakeWorld,
    NeonizeLinkClient,
    SendFailure,
)
from fibernode.whatsapp.gateway.locks import FileOwnerLocks, PgOwnerLocks
from fibernode.whatsapp.gateway.manager import LOCKED_ELSEWHERE, SessionManager, Timings

FAST = Timings(first_qr_ttl_s=0.3, qr_ttl_s=0.3, link_window_s=1.0, backoff_base_s=0.2,
               backoff_max_s=1.0, reconnect_grace_s=0.5, watchdog_interval_s=0.1,
               check_delay_s=0.05, start_wait_s=2.0)


def wait_for(cond, timeout: float = 10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def row(owner_id: uuid.UUID) -> WaSession:
    with new_session() as s:
        return s.exec(select(WaSession).where(WaSession.user_id == owner_id)).one()


@pytest.fixture
def make_manager(tmp_path):
    made: list[SessionManager] = []

    def make(locks=None, *, timings: Timings = FAST, backend: FakeBackend | None = None,
             **kw):
        backend = backend or FakeBackend()
        backend.world.first_qr_s = timings.first_qr_ttl_s
        backend.world.qr_interval_s = timings.qr_ttl_s
        backend.world.pair_reconnect_s = 0.1
        m = SessionManager(tmp_path / "wa", backend, locks or FileOwnerLocks(tmp_path / "wa"),
                           timings=timings, **kw)
        m.start_background(resume=False)
        made.append(m)
        return m

    yield make
    for m in made:
        m.shutdown()


def link_and_pair(m: SessionManager, owner_id: uuid.UUID, phone: str = "6281299990000") -> None:
    state = m.start(owner_id)
    assert state["qr_code"].startswith("2@")
    m.backend.client(owner_id).pair(phone)
    wait_for(lambda: m.sessions[owner_id].connected)


def test_qr_rotates_then_pairing_connects_and_sends_once_per_key(world, make_manager):
    owner = world.mitra_a.user_id
    m = make_manager(timings=Timings(**{**FAST.__dict__, "link_window_s": 5.0}))
    first = m.start(owner)["qr_code"]
    wait_for(lambda: row(owner).qr_code not in (None, first))  # rotated, stored
    assert row(owner).status == WaSessionStatus.CONNECTING and row(owner).link_method == "qr"
    m.backend.client(owner).pair("6281211112222")
    wait_for(lambda: row(owner).status == WaSessionStatus.CONNECTED)
    wait_for(lambda: m.sessions[owner].connected)
    r = row(owner)
    assert r.phone_number == "6281211112222" and r.qr_code is None and not r.link_expired

    sent = m.send(owner, "6281234567890", "Halo", "receipt:1")
    again = m.send(owner, "6281234567890", "Halo", "receipt:1")
    assert sent["ok"] and again["ok"] and again["message_id"] == sent["message_id"]
    assert again["duplicate"] is True
    assert len(m.backend.world.sent) == 1
    assert m.lookup_sent(owner, "receipt:1") == (SentLookup.SENT, sent["message_id"])
    assert m.lookup_sent(owner, "receipt:2") == (SentLookup.NOT_SENT, None)


def test_send_failures_are_classified_and_a_failed_key_can_be_retried(world, make_manager):
    owner = world.mitra_a.user_id
    m = make_manager()
    assert m.send(owner, "6281234567890", "x", "k1")["error_kind"] == "not_connected"
    link_and_pair(m, owner)
    m.backend.world.fail_next[str(owner)] = gev.ERR_SERVER_463
    failed = m.send(owner, "6281234567890", "x", "k1")
    assert failed["error_kind"] == "restricted"
    assert m.send(owner, "6281234567890", "x", "k1")["ok"]  # certain failure: retry allowed
    m.backend.world.fail_next[str(owner)] = gev.ERR_MESSAGE_TIMED_OUT
    assert m.send(owner, "6281234567890", "y", "k2")["error_kind"] == "uncertain"
    # Maybe sent: never resent blindly, and reported as unknown.
    assert m.send(owner, "6281234567890", "y", "k2")["error_kind"] == "uncertain"
    assert m.lookup_sent(owner, "k2")[0] == SentLookup.UNKNOWN


def test_number_checks_are_serialised_and_slow(world, make_manager):
    owner = world.mitra_a.user_id
    m = make_manager()
    with pytest.raises(GatewayError) as exc:
        m.check(owner, ["6281234567890"])
    assert exc.value.kind == ErrorKind.NOT_CONNECTED
    link_and_pair(m, owner)
    started = time.monotonic()
    result = m.check(owner, ["6281234567890", "6281200000000", "0812"])
    assert result == {"6281234567890": True, "6281200000000": False, "0812": False}
    assert time.monotonic() - started >= 2 * FAST.check_delay_s


def test_watchdog_expires_an_unscanned_qr_and_stops_the_client(world, make_manager):
    owner = world.mitra_a.user_id
    m = make_manager()
    m.start(owner)
    client = m.backend.client(owner)
    wait_for(lambda: row(owner).link_expired)
    r = row(owner)
    assert r.status == WaSessionStatus.DISCONNECTED and r.qr_code is None
    assert "habis" in r.last_error
    wait_for(lambda: owner not in m.sessions)
    assert "stop" in client.calls
    count = len([c for c in client.calls if c == "connect"])
    time.sleep(0.5)
    assert len([c for c in client.calls if c == "connect"]) == count  # no new QR round
    # A new request starts a fresh window.
    assert m.start(owner)["qr_code"]
    assert row(owner).link_expired is False


def test_pairing_code_method(world, make_manager):
    owner = world.mitra_a.user_id
    m = make_manager(timings=Timings(**{**FAST.__dict__, "link_window_s": 5.0}))
    with pytest.raises(GatewayError):
        m.start(owner, method="code", phone="0812")
    state = m.start(owner, method="code", phone="6281211112222")
    assert state["pairing_code"] and state["qr_code"] is None
    r = row(owner)
    assert r.link_method == "code" and r.pairing_code == state["pairing_code"]
    assert "pair_phone:6281211112222" in m.backend.client(owner).calls


def test_drop_reconnects_with_backoff_but_logout_and_ban_do_not(world, make_manager):
    owner = world.mitra_a.user_id
    m = make_manager()
    link_and_pair(m, owner)
    first = m.backend.client(owner)
    first.simulate("disconnected")
    wait_for(lambda: m.backend.client(owner) is not first and m.sessions[owner].connected)
    # Resumed from the stored credentials, without a new QR.
    wait_for(lambda: row(owner).status == WaSessionStatus.CONNECTED)
    assert m.sessions[owner].attempt == 0  # reset once connected again

    m.backend.client(owner).simulate("banned")
    wait_for(lambda: owner not in m.sessions)
    r = row(owner)
    assert r.status == WaSessionStatus.BANNED and r.banned_until is not None
    assert r.queue_paused_at is not None  # restriction pauses the owner's queue


def test_logged_out_event_stops_for_good(world, make_manager):
    owner = world.mitra_a.user_id
    m = make_manager()
    link_and_pair(m, owner)
    m.backend.client(owner).simulate("logged_out")
    wait_for(lambda: owner not in m.sessions)
    assert row(owner).status == WaSessionStatus.LOGGED_OUT
    assert not m.backend.has_credentials(m.db_path(owner))


def test_resume_on_start_and_logout(world, make_manager, tmp_path):
    owner = world.mitra_a.user_id
    backend = FakeBackend()
    m = make_manager(backend=backend)
    link_and_pair(m, owner)
    m.shutdown()
    assert row(owner).status == WaSessionStatus.DISCONNECTED
    m2 = make_manager(backend=backend)
    assert m2.resume_all() == [owner]
    wait_for(lambda: row(owner).status == WaSessionStatus.CONNECTED)
    m2.stop(owner, logout=True)
    assert "logout" in backend.client(owner).calls
    assert not backend.has_credentials(m2.db_path(owner))
    assert row(owner).status == WaSessionStatus.DISCONNECTED


def test_one_process_per_number_with_lock_files(world, make_manager, tmp_path):
    owner = world.mitra_a.user_id
    a = make_manager(FileOwnerLocks(tmp_path / "wa"))
    b = make_manager(FileOwnerLocks(tmp_path / "wa"))
    a.start(owner)
    with pytest.raises(GatewayError) as exc:
        b.start(owner)
    assert exc.value.message == LOCKED_ELSEWHERE
    a.stop(owner)
    wait_for(lambda: owner not in a.sessions)
    assert b.start(owner)["qr_code"]


def test_one_process_per_number_with_postgres_advisory_locks(pg, make_manager):
    from tests.factories import World

    world = World.seeded()
    owner = world.mitra_a.user_id
    a = make_manager(PgOwnerLocks(get_engine()))
    b = make_manager(PgOwnerLocks(get_engine()))
    a.start(owner)
    with pytest.raises(GatewayError):
        b.start(owner)
    other = world.mitra_b.user_id
    assert b.start(other)["qr_code"]  # other owners are free
    a.stop(owner)
    wait_for(lambda: owner not in a.sessions)
    assert b.start(owner)["qr_code"]


def test_the_double_answers_number_checks_only_with_a_leading_plus(world, make_manager):
    # Like whatsmeow: "62…" gets no answer at all, "+62…" an explicit one.
    owner = world.mitra_a.user_id
    m = make_manager()
    link_and_pair(m, owner)
    client = m.backend.client(owner)
    assert list(client.lookup_numbers("6281234567890")) == []
    [yes] = client.lookup_numbers("+6281234567890")
    [no] = client.lookup_numbers("+6281200000000")
    assert (yes.Query, yes.IsIn, no.IsIn) == ("+6281234567890", True, False)


def test_a_number_whatsapp_answers_nothing_for_is_left_out_never_false(world, make_manager):
    owner = world.mitra_a.user_id
    backend = FakeBackend()
    backend.world.silent_numbers.add("6281277778888")
    m = make_manager(backend=backend)
    link_and_pair(m, owner)
    result = m.check(owner, ["6281234567890", "6281277778888", "6281200000000"])
    assert result == {"6281234567890": True, "6281200000000": False}


class _NeonizeRecorder:
    """Stands in for neonize's ``NewClient`` to see what ``IsOnWhatsApp`` is asked."""

    def __init__(self, answers):
        self.answers, self.asked = answers, []

    def is_on_whatsapp(self, *numbers):
        self.asked.append(numbers)
        return self.answers


@pytest.mark.parametrize(("answers", "expected"), [
    ([], None),  # empty: unknown, never "not on WhatsApp"
    ([IsOnWhatsAppResponse(Query="+6281234567890", IsIn=False)], False),
    ([IsOnWhatsAppResponse(Query="+6281234567890", IsIn=True)], True),
])
def test_neonize_client_asks_with_a_plus_and_reads_an_empty_answer_as_unknown(answers,
                                                                             expected):
    client = NeonizeLinkClient.__new__(NeonizeLinkClient)  # no Go client needed
    client._client = _NeonizeRecorder(answers)
    assert client.is_on_whatsapp("6281234567890") is expected
    assert client._client.asked == [("+6281234567890",)]


def test_the_linked_device_is_named_fibernode_on_the_phone(tmp_path):
    from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps

    client = NeonizeLinkClient(uuid.uuid4(), tmp_path / "owner.sqlite3", lambda ev: None)
    props = client._client.device_props  # what neonize serialises into its connect call
    assert isinstance(props, DeviceProps)
    assert props.os == "FiberNode"
    assert props.platformType == DeviceProps.CHROME


def test_a_delivery_receipt_reaches_a_send_settled_by_key(world, make_manager):
    from neonize import events as nev

    from fibernode.models import WaMessageLog, WaMessageQueue
    from fibernode.services import wa_queue
    from tests.services.test_wa_queue import CONFIG, NOW, RecordingGateway

    owner = world.mitra_a.user_id
    m = make_manager()
    link_and_pair(m, owner)
    now = NOW  # inside sending hours
    wa_queue.enqueue_bulk(world.admin, owner_id=owner, items=[wa_queue.BulkItem(
        customer_id=None, invoice_id=None, phone="6281200000001", content="Halo",
        idempotency_key="b:settled")], now=now, config=CONFIG, rng=random.Random(3))
    claim = wa_queue.claim_next("dead-worker", now + timedelta(minutes=1), CONFIG,
                                random.Random(0))
    # The worker hands the message to the gateway, then dies before recording the id.
    sent = m.send(owner, claim.phone, claim.content, claim.idempotency_key)
    answer, _ = m.lookup_sent(owner, claim.idempotency_key)
    assert answer == SentLookup.SENT
    assert wa_queue.reconcile_stale(RecordingGateway(lookup=answer),
                                    now=now + timedelta(minutes=5))["sent"] == 1
    m.backend.client(owner).emit(nev.ReceiptEv(MessageIDs=[sent["message_id"]],
                                               Timestamp=int(time.time()),
                                               Type=nev.ReceiptEv.DELIVERED))
    with new_session() as s:
        log_row = s.exec(select(WaMessageLog).where(
            WaMessageLog.idempotency_key == "b:settled")).one()
        queued = s.exec(select(WaMessageQueue).where(
            WaMessageQueue.idempotency_key == "b:settled")).one()
    assert (log_row.status, log_row.provider_message_id) == ("delivered", sent["message_id"])
    assert log_row.delivered_at is not None
    assert queued.provider_message_id == sent["message_id"]


# -- the double behaves like whatsmeow ------------------------------------------------
def test_the_double_and_the_manager_keep_whatsmeows_qr_clock_by_default():
    world, timings = FakeWorld(), Timings()
    # qrchan.go: six refs, the first shown 60 s, the others 20 s each.
    assert (world.first_qr_s, world.qr_interval_s, world.qr_codes) == (60.0, 20.0, 6)
    assert (timings.first_qr_ttl_s, timings.qr_ttl_s) == (world.first_qr_s, world.qr_interval_s)
    assert timings.link_window_s == world.link_window_s == 160.0


def test_the_double_rotates_qr_codes_first_long_then_short_and_then_stops(tmp_path):
    world = FakeWorld(first_qr_s=0.8, qr_interval_s=0.25, qr_codes=3)
    seen: list[tuple[float, str]] = []
    client = FakeLinkClient(world, uuid.uuid4(), tmp_path / "o.sqlite3",
                            lambda ev: seen.append((time.monotonic(), ev.code)))
    thread = threading.Thread(target=client.connect, daemon=True)
    thread.start()
    time.sleep(0.8 + 2 * 0.25 + 0.6)
    assert len(seen) == 3 and len({code for _, code in seen}) == 3  # then no more
    first_gap, second_gap = seen[1][0] - seen[0][0], seen[2][0] - seen[1][0]
    assert 0.75 <= first_gap < 1.2 and 0.2 <= second_gap < 0.6
    assert thread.is_alive() and not client.connected  # neonize's connect() blocks on
    client.stop()
    thread.join(timeout=1)
    assert not thread.is_alive()


def test_the_first_qr_expires_after_the_long_ttl_and_later_ones_after_the_short(world,
                                                                              make_manager):
    owner = world.mitra_a.user_id
    m = make_manager(timings=Timings(**{**FAST.__dict__, "first_qr_ttl_s": 1.0,
                                        "qr_ttl_s": 0.3, "link_window_s": 5.0}))
    started = m.start(owner)
    s = m.sessions[owner]
    first_left = (s.expires_at - gev.clock.now()).total_seconds()
    assert 0.6 < first_left <= 1.0
    wait_for(lambda: s.qr_code != started["qr_code"])
    second_left = (s.expires_at - gev.clock.now()).total_seconds()
    assert 0 < second_left <= 0.3


def test_a_pairing_is_not_a_connection_until_the_reconnect_after_it(world, make_manager):
    owner = world.mitra_a.user_id
    m = make_manager(timings=Timings(**{**FAST.__dict__, "link_window_s": 5.0}))
    m.backend.world.pair_reconnect_s = 1.5
    m.start(owner)
    m.backend.client(owner).pair("6281211112222")
    wait_for(lambda: row(owner).phone_number == "6281211112222")
    r = row(owner)
    assert r.status == WaSessionStatus.CONNECTING and r.qr_code is None
    assert not m.sessions[owner].connected
    assert m.send(owner, "6281234567890", "x", "k")["error_kind"] == "not_connected"
    m.check_expired(gev.clock.now() + timedelta(seconds=60))
    assert owner in m.sessions  # paired: the link window no longer applies
    wait_for(lambda: m.sessions[owner].connected)
    wait_for(lambda: row(owner).status == WaSessionStatus.CONNECTED)
    assert m.send(owner, "6281234567890", "x", "k")["ok"]


def test_a_pairing_whose_reconnect_never_comes_is_restarted_from_the_credentials(
        world, make_manager):
    owner = world.mitra_a.user_id
    m = make_manager(timings=Timings(**{**FAST.__dict__, "link_window_s": 5.0}))
    m.backend.world.pair_reconnect_s = 3600  # whatsmeow's reconnect after 515 failed
    m.start(owner)
    paired_client = m.backend.client(owner)
    paired_client.pair("6281211112222")
    # After the grace period a new client connects with the stored credentials.
    wait_for(lambda: m.backend.client(owner) is not paired_client
             and m.sessions[owner].connected)
    assert "stop" in paired_client.calls and not paired_client.connected
    wait_for(lambda: row(owner).status == WaSessionStatus.CONNECTED)
    assert row(owner).phone_number == "6281211112222"


@pytest.mark.parametrize(("error", "kind", "went_out"), [
    (gev.ERR_SERVER_463, ErrorKind.RESTRICTED, False),
    (gev.ERR_DISCONNECTED_BEFORE_RESPONSE, ErrorKind.UNCERTAIN, True),
    (gev.ERR_MESSAGE_TIMED_OUT, ErrorKind.UNCERTAIN, True),
    (gev.ERR_IQ_TIMED_OUT, ErrorKind.TRANSIENT, False),
])
def test_whatsmeows_send_errors_through_the_manager(world, make_manager, error, kind,
                                                    went_out):
    owner = world.mitra_a.user_id
    m = make_manager()
    link_and_pair(m, owner)
    m.backend.world.fail_next[str(owner)] = error
    failed = m.send(owner, "6281234567890", "x", "k")
    assert failed["error_kind"] == str(kind) and error in failed["error"]
    assert len(m.backend.world.sent) == int(went_out)
    again = m.send(owner, "6281234567890", "x", "k")
    if kind == ErrorKind.UNCERTAIN:  # maybe delivered: never sent twice
        assert again["error_kind"] == "uncertain" and len(m.backend.world.sent) == 1
        assert m.lookup_sent(owner, "k")[0] == SentLookup.UNKNOWN
    else:  # refused before anything went out: the key is free again
        assert again["ok"] and len(m.backend.world.sent) == 1


def test_the_double_fails_like_whatsmeow_without_a_device_or_a_socket(tmp_path):
    world = FakeWorld()
    client = FakeLinkClient(world, uuid.uuid4(), tmp_path / "o.sqlite3", lambda ev: None)
    for call in (lambda: client.send_text("6281234567890", "x"),
                 lambda: client.lookup_numbers("+6281234567890")):
        with pytest.raises(SendFailure) as exc:
            call()
        assert gev.ERR_NOT_LOGGED_IN in exc.value.message
        assert exc.value.kind == ErrorKind.NOT_CONNECTED
    client.db_path.write_text('{"phone": "6281211112222"}')  # linked, socket down
    with pytest.raises(SendFailure) as exc:
        client.send_text("6281234567890", "x")
    assert gev.ERR_NOT_CONNECTED in exc.value.message
    assert exc.value.kind == ErrorKind.NOT_CONNECTED


def test_a_number_check_that_times_out_is_transient_not_an_answer(world, make_manager):
    owner = world.mitra_a.user_id
    m = make_manager()
    link_and_pair(m, owner)
    m.backend.world.fail_next[str(owner)] = gev.ERR_IQ_TIMED_OUT
    with pytest.raises(GatewayError) as exc:
        m.check(owner, ["6281234567890"])
    assert exc.value.kind == ErrorKind.TRANSIENT


def test_a_receipt_without_a_type_is_not_counted_as_delivered(world, make_manager):
    from neonize import events as nev

    owner = world.mitra_a.user_id
    updates = []
    m = make_manager(record_statuses=updates.extend)
    link_and_pair(m, owner)
    message_id = m.send(owner, "6281234567890", "x", "k")["message_id"]
    client = m.backend.client(owner)
    client.receipt([message_id])  # type unset: reads as DELIVERED in proto2
    assert updates == []
    client.receipt([message_id], nev.ReceiptEv.READ)
    assert [(u.provider_message_id, u.status, u.idempotency_key) for u in updates] == [
        (message_id, "read", "k")]


# -- two gateways, rolling deploys, lost lock connections (real PostgreSQL) ------------
TAKEOVER = Timings(**{**FAST.__dict__, "resume_retry_base_s": 0.2, "resume_retry_max_s": 0.5,
                      "lock_check_interval_s": 0.2})


def lock_holders(owner: uuid.UUID) -> list[int]:
    """Backend pids holding the owner's session lock (``pg_advisory_lock(5, hashtext)``)."""
    import sqlalchemy as sa

    with get_engine().connect() as conn:
        return list(conn.execute(sa.text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = 5 AND objsubid = 2"
            " AND objid = (hashtext(:k)::bigint & 4294967295)::text::oid"),
            {"k": str(owner)}).scalars())


def test_a_second_gateway_takes_the_number_over_when_the_first_shuts_down(pg, make_manager):
    from fastapi.testclient import TestClient

    from fibernode.whatsapp.gateway.server import create_app
    from tests.factories import World

    owner = World.seeded().mitra_a.user_id
    first = make_manager(PgOwnerLocks(get_engine()), timings=TAKEOVER)
    link_and_pair(first, owner)
    [holder] = lock_holders(owner)
    # The second gateway (a rolling deploy's new instance) on the same sessions dir / DB.
    second = make_manager(PgOwnerLocks(get_engine()), timings=TAKEOVER)
    assert second.resume_all() == []  # refused: the first holds the number
    assert second.pending_resumes() == [owner] and owner not in second.sessions
    time.sleep(1.0)  # retried meanwhile, still refused, never two clients
    assert owner not in second.sessions and lock_holders(owner) == [holder]
    health = TestClient(create_app(second, token="t", manage_lifecycle=False))
    assert health.get("/health").json()["waiting_for_lock"] == 1  # operators can see it
    first.shutdown()
    wait_for(lambda: owner in second.sessions and second.sessions[owner].connected, 5)
    assert second.pending_resumes() == []
    assert health.get("/health").json()["waiting_for_lock"] == 0
    wait_for(lambda: row(owner).status == WaSessionStatus.CONNECTED)
    assert len(lock_holders(owner)) == 1  # (the pool may hand the same backend over)
    assert first.locks.held() == [] and second.locks.held() == [owner]


def test_a_lost_lock_connection_stops_the_client_and_takes_the_lock_again(pg, make_manager):
    import sqlalchemy as sa

    from tests.factories import World

    owner = World.seeded().mitra_a.user_id
    m = make_manager(PgOwnerLocks(get_engine()), timings=TAKEOVER)
    link_and_pair(m, owner)
    old_client = m.backend.client(owner)
    [holder] = lock_holders(owner)
    with get_engine().connect() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": holder}).scalar()
    wait_for(lambda: "stop" in old_client.calls, 5)  # the number is not run unlocked
    wait_for(lambda: m.backend.client(owner) is not old_client
             and owner in m.sessions and m.sessions[owner].connected, 5)
    [new_holder] = lock_holders(owner)
    assert new_holder != holder
    wait_for(lambda: row(owner).status == WaSessionStatus.CONNECTED)


def test_a_lost_lock_another_gateway_took_is_left_to_it(pg, make_manager):
    import sqlalchemy as sa

    from tests.factories import World

    owner = World.seeded().mitra_a.user_id
    a = make_manager(PgOwnerLocks(get_engine()), timings=TAKEOVER)
    link_and_pair(a, owner)
    b = make_manager(PgOwnerLocks(get_engine()), timings=TAKEOVER)
    assert b.resume_all() == []
    old_client = a.backend.client(owner)
    [holder] = lock_holders(owner)
    with get_engine().connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": holder})
    wait_for(lambda: "stop" in old_client.calls, 5)
    # Exactly one gateway ends up running the number, whichever got the lock first.
    wait_for(lambda: sum(owner in g.sessions and g.sessions[owner].connected
                         for g in (a, b)) == 1, 5)
    time.sleep(1.0)
    running = [g for g in (a, b) if owner in g.sessions and not g.sessions[owner].stop.is_set()]
    assert len(running) == 1 and len(lock_holders(owner)) == 1
    loser = b if running[0] is a else a
    assert loser.pending_resumes() == [owner]  # still waiting, in case the winner goes
