"""Direct WhatsApp sends: receipts on payment, isolir notices, outcomes and the sweep."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import (
    ActivityLog,
    Invoice,
    User,
    WaMessageLog,
    WaMessageQueue,
    WaOutbox,
    WaSession,
    WaSessionStatus,
)
from fibernode.services import customers, invoices, receipts, wa_direct, wa_numbers
from fibernode.services.context import Actor
from fibernode.services.errors import Conflict, NotFound
from fibernode.services.uow import unit_of_work
from fibernode.services.wa_sessions import SessionEvent, ensure_session, record_event
from fibernode.whatsapp import set_gateway
from fibernode.whatsapp.base import ErrorKind, SendResult, SentLookup
from fibernode.whatsapp.outbox import OutboxGateway
from tests.services.invoice_data import customer, invoice, make_invoice, set_bank


class Recording(OutboxGateway):
    """The outbox, with a scripted send result and lookup answer."""

    def __init__(self, result: SendResult | None = None,
                 lookup: SentLookup = SentLookup.UNKNOWN, on_wa: bool = True):
        self.result, self.lookup, self.on_wa = result, lookup, on_wa
        self.sent: list = []

    def send_text(self, message):
        self.sent.append(message)
        return self.result if self.result is not None else super().send_text(message)

    def check_numbers(self, owner_id, phones):
        return dict.fromkeys(phones, self.on_wa)

    def lookup_sent(self, owner_id, idempotency_key):
        return self.lookup


# SQLite too: the message log rows are written by an insert_for upsert.
pytestmark = [pytest.mark.usefixtures("outbox_whatsapp"),
              pytest.mark.both_dialects("the message log rows are written by an insert_for "
                                        "upsert")]


def connect(owner_id):
    record_event(owner_id, SessionEvent(status=WaSessionStatus.CONNECTED,
                                        phone_number="6281111111111"))


def outbox() -> list[WaOutbox]:
    with new_session() as s:
        return list(s.exec(select(WaOutbox).order_by(WaOutbox.created_at)).all())


def message_logs(**where) -> list[WaMessageLog]:
    with new_session() as s:
        q = select(WaMessageLog).order_by(WaMessageLog.sent_at)
        for k, v in where.items():
            q = q.where(getattr(WaMessageLog, k) == v)
        return list(s.exec(q).all())


def settle():
    assert wa_direct.wait_for_dispatch(10)


def test_paying_sends_exactly_one_receipt_with_text_and_link(world):
    connect(world.mitra_a.user_id)
    set_bank(world.mitra_a.user_id, "BCA", "111", "Budi")
    inv = make_invoice("Ahmad Fauzi")
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="transfer")
    settle()
    sent = outbox()
    assert len(sent) == 1
    body = sent[0].content
    assert sent[0].owner_id == world.mitra_a.user_id
    assert sent[0].phone == customer("Ahmad Fauzi").phone
    assert f"dikonfirmasi oleh *{world.mitra_a.name}*" in body
    assert f"🧾 Lihat nota lengkap: {receipts.receipt_url(inv.receipt_token)}" in body
    assert "• Nama: Ahmad Fauzi" in body and "• Metode: Transfer Bank" in body
    assert "*Ahmad Fauzi*," in body.splitlines()[2]
    [row] = message_logs(message_type="receipt")
    assert row.status == "sent" and row.provider_message_id == f"outbox-{sent[0].id}"
    assert row.invoice_id == inv.id and row.sent_by == world.mitra_a.user_id
    assert invoice(inv.id).receipt_sent_at is not None


def test_a_failed_payment_records_and_sends_nothing(world):
    connect(world.mitra_a.user_id)
    inv = make_invoice("Ahmad Fauzi")
    with pytest.raises(Conflict):
        invoices.pay_invoice(world.mitra_a, inv.id, version=7, method="cash")
    settle()
    assert outbox() == [] and message_logs() == []


def test_receipt_of_a_superadmin_payment_goes_from_the_owners_number(world):
    connect(world.mitra_a.user_id)
    connect(world.admin.user_id)
    inv = make_invoice("Ahmad Fauzi")
    invoices.pay_invoice(world.admin, inv.id, version=1, method="cash")
    settle()
    [sent] = outbox()
    assert sent.owner_id == world.mitra_a.user_id
    assert f"dikonfirmasi oleh *{world.admin.name}*" in sent.content


def test_not_connected_is_logged_as_failed(world):
    inv = make_invoice("Ahmad Fauzi")
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash")
    settle()
    [row] = message_logs()
    assert row.status == "failed" and row.error_message == "Sesi WhatsApp tidak terhubung"
    assert outbox() == []
    assert invoice(inv.id).receipt_sent_at is None


def test_partial_payments_each_get_a_receipt(world):
    connect(world.mitra_a.user_id)
    inv = make_invoice("Ahmad Fauzi", amount=100_000, discount=0)
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash", amount=40_000)
    invoices.pay_invoice(world.mitra_a, inv.id, version=2, method="cash")
    settle()
    texts = [o.content for o in outbox()]  # two dispatch threads: either order
    assert len(texts) == 2
    assert sum("Total Bayar: *Rp 40.000*" in t for t in texts) == 1
    assert sum("Total Bayar: *Rp 100.000*" in t for t in texts) == 1


def test_full_payment_cancels_queued_reminders(world):
    inv = make_invoice("Ahmad Fauzi")
    with new_session() as s:
        sid = ensure_session(s, world.mitra_a.user_id).id
        s.add(WaMessageQueue(session_id=sid, owner_id=world.mitra_a.user_id,
                             invoice_id=inv.id, customer_id=inv.customer_id,
                             message_type="reminder", phone="6281234567890", content="x",
                             scheduled_at=clock.now() + timedelta(hours=1),
                             idempotency_key=f"reminder:{inv.id}:x"))
        s.commit()
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash")
    with new_session() as s:
        assert s.exec(select(WaMessageQueue.status)).one() == "cancelled"


def test_isolating_sends_the_isolir_notice_with_owner_bank(world):
    connect(world.mitra_a.user_id)
    set_bank(world.mitra_a.user_id, "Bank BRI", "0099887766", "Budi Santoso")
    inv = make_invoice("Ahmad Fauzi", due_date=clock.today() - timedelta(days=10))
    cust = customer("Ahmad Fauzi")
    customers.set_isolated(world.admin, cust.id, True, "Belum bayar")
    settle()
    [sent] = outbox()
    assert sent.owner_id == world.mitra_a.user_id
    assert sent.content.startswith("⚠️ *Pemberitahuan Isolir*")
    assert "Bank: Bank BRI\nNo. Rek: 0099887766\nA/N: Budi Santoso" in sent.content
    [row] = message_logs(message_type="isolation")
    assert row.status == "sent" and row.invoice_id == inv.id
    assert invoice(inv.id).isolir_sent_at is not None
    # Restoring sends nothing.
    customers.set_isolated(world.admin, cust.id, False)
    settle()
    assert len(outbox()) == 1


def test_number_not_on_whatsapp_fails_and_is_remembered(world):
    connect(world.mitra_a.user_id)
    gw = Recording(on_wa=False)
    set_gateway(gw)
    inv = make_invoice("Ahmad Fauzi")
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash")
    settle()
    [row] = message_logs()
    assert row.status == "failed" and row.error_message == "Nomor tidak terdaftar di WhatsApp"
    assert gw.sent == []
    with new_session() as s:
        assert wa_numbers.known(s, [row.phone]) == {row.phone: False}


def test_restricted_account_fails_and_pauses_the_queue(world):
    connect(world.mitra_a.user_id)
    set_gateway(Recording(SendResult.failed(ErrorKind.RESTRICTED,
                                            "Akun dibatasi sementara (463).")))
    inv = make_invoice("Ahmad Fauzi")
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash")
    settle()
    [row] = message_logs()
    assert row.status == "failed" and row.error_message == "Akun dibatasi sementara (463)."
    with new_session() as s:
        ws = s.exec(select(WaSession).where(WaSession.user_id == world.mitra_a.user_id)).one()
    assert ws.queue_paused_at is not None and "463" in ws.queue_pause_reason


def test_uncertain_send_stays_sending_for_the_sweep(world):
    connect(world.mitra_a.user_id)
    set_gateway(Recording(SendResult.failed(ErrorKind.UNCERTAIN, "timeout")))
    inv = make_invoice("Ahmad Fauzi")
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash")
    settle()
    [row] = message_logs()
    assert row.status == "sending"


def _record(owner_id, status="pending", age_s=600, key=None):
    with unit_of_work(Actor.system("test")) as uow:
        uow.bookkeeping("test data")
        log_id = uuid.uuid4()
        uow.session.add(WaMessageLog(
            id=log_id, session_id=ensure_session(uow.session, owner_id).id, owner_id=owner_id,
            message_type="custom", phone="6281234567890", content="Halo", status=status,
            idempotency_key=key or f"manual:{log_id}",
            sent_at=clock.now() - timedelta(seconds=age_s)))
    return log_id


def _status(log_id):
    with new_session() as s:
        return s.get(WaMessageLog, log_id).status, s.get(WaMessageLog, log_id).error_message


def test_sweep_dispatches_rows_left_pending(world):
    connect(world.mitra_a.user_id)
    old = _record(world.mitra_a.user_id)
    fresh = _record(world.mitra_a.user_id, age_s=5)
    counts = wa_direct.sweep_pending(60)
    assert counts["dispatched"] == 1
    assert _status(old)[0] == "sent" and _status(fresh)[0] == "pending"
    assert len(outbox()) == 1


@pytest.mark.parametrize(("lookup", "status"), [
    (SentLookup.SENT, "sent"), (SentLookup.NOT_SENT, "sent"),
    (SentLookup.UNKNOWN, "uncertain")])
def test_sweep_settles_stale_sending_rows_by_lookup(world, lookup, status):
    connect(world.mitra_a.user_id)
    gw = Recording(lookup=lookup)
    log_id = _record(world.mitra_a.user_id, status="sending", age_s=900)
    wa_direct.sweep_pending(60, gateway=gw)
    got, error = _status(log_id)
    assert got == status
    assert len(gw.sent) == (1 if lookup == SentLookup.NOT_SENT else 0)
    if lookup == SentLookup.UNKNOWN:
        assert error.startswith("Status pengiriman tidak pasti")


def test_recording_the_same_key_twice_is_a_no_op(world):
    with unit_of_work(Actor.system("test")) as uow:
        uow.bookkeeping("test data")
        owner = uow.session.exec(select(User.id).where(User.username == "mitra1")).one()
        args = dict(owner_id=owner, customer_id=None, invoice_id=None, message_type="custom",
                    phone="6281234567890", content="Halo", idempotency_key="manual:same",
                    sent_by=None)
        first = wa_direct.record_direct(uow, **args)
        second = wa_direct.record_direct(uow, **args)
    assert first is not None and second is None
    settle()
    with new_session() as s:
        assert s.exec(select(sa.func.count()).select_from(WaMessageLog)).one() == 1


def test_receipt_sent_at_not_touched_for_other_invoices(world):
    connect(world.mitra_a.user_id)
    a = make_invoice("Ahmad Fauzi")
    b = make_invoice("Dewi Lestari")
    invoices.pay_invoice(world.mitra_a, a.id, version=1, method="cash")
    settle()
    with new_session() as s:
        assert s.get(Invoice, b.id).receipt_sent_at is None


# --- late sends are checked again; deliberate resends (issue 17, item 4) ------------------


def _age(log_id, seconds=600):
    with new_session() as s:
        s.execute(sa.update(WaMessageLog).where(WaMessageLog.id == log_id).values(
            sent_at=clock.now() - timedelta(seconds=seconds)))
        s.commit()


@pytest.fixture
def crash_after_commit(monkeypatch):
    """The process dies after recording a direct send, before dispatching it."""
    monkeypatch.setattr(wa_direct, "submit", lambda log_id: None)


def test_the_late_sweep_skips_a_receipt_whose_payment_was_reversed(world, crash_after_commit):
    connect(world.mitra_a.user_id)
    inv = make_invoice("Ahmad Fauzi")
    view = invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash")
    invoices.unpay_invoice(world.mitra_a, inv.id, version=view.version, reason="Salah catat")
    (row,) = message_logs(message_type="receipt")
    _age(row.id)
    gw = Recording()
    wa_direct.sweep_pending(60, gateway=gw)
    assert gw.sent == []
    assert _status(row.id) == ("skipped", wa_direct.RECEIPT_REVERSED)
    from fibernode.services import whatsapp

    (shown,) = whatsapp.list_logs(world.mitra_a, status="skipped").items
    assert (shown.status_label, shown.error_message) == ("Dilewati", wa_direct.RECEIPT_REVERSED)


def test_the_late_sweep_skips_an_isolir_notice_once_service_is_restored(
        world, crash_after_commit):
    connect(world.mitra_a.user_id)
    make_invoice("Ahmad Fauzi")
    cust = customer("Ahmad Fauzi")
    customers.set_isolated(world.admin, cust.id, True, "Belum bayar")
    customers.set_isolated(world.admin, cust.id, False)
    (row,) = message_logs(message_type="isolation")
    _age(row.id)
    gw = Recording()
    wa_direct.sweep_pending(60, gateway=gw)
    assert gw.sent == []
    assert _status(row.id) == ("skipped", wa_direct.NOT_ISOLATED)


def test_the_late_sweep_still_sends_what_is_still_true(world, crash_after_commit):
    connect(world.mitra_a.user_id)
    inv = make_invoice("Ahmad Fauzi")
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash")
    (row,) = message_logs(message_type="receipt")
    _age(row.id)
    gw = Recording()
    wa_direct.sweep_pending(60, gateway=gw)
    assert [m.idempotency_key for m in gw.sent] == [row.idempotency_key]
    assert _status(row.id)[0] == "sent"


def test_an_uncertain_receipt_is_resent_on_purpose_under_a_new_key(world):
    connect(world.mitra_a.user_id)
    set_gateway(Recording(SendResult.failed(ErrorKind.UNCERTAIN, "timed out")))
    inv = make_invoice("Ahmad Fauzi")
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash")
    settle()
    (row,) = message_logs(message_type="receipt")
    _age(row.id)
    wa_direct.sweep_pending(60, gateway=Recording(lookup=SentLookup.UNKNOWN))
    assert _status(row.id)[0] == "uncertain"
    gw = Recording()
    set_gateway(gw)
    new_id = wa_direct.resend(world.mitra_a, row.id)
    settle()
    old, new = _status(row.id), _status(new_id)
    assert old[0] == "uncertain" and "dikirim ulang oleh" in old[1]
    assert new == ("sent", None)
    with new_session() as s:
        again = s.get(WaMessageLog, new_id)
        audit = s.exec(select(ActivityLog).where(ActivityLog.action == "wa.direct.resend")).one()
    assert again.idempotency_key == f"{row.idempotency_key}#ulang-1"
    assert again.sent_by == world.mitra_a.user_id and again.content == row.content
    assert [m.idempotency_key for m in gw.sent] == [again.idempotency_key]
    assert audit.user_id == world.mitra_a.user_id
    assert audit.meta["key"] == {"from": row.idempotency_key, "to": again.idempotency_key}
    # Sent now: nothing more to resend; another owner cannot touch it.
    with pytest.raises(Conflict):
        wa_direct.resend(world.mitra_a, new_id)
    with pytest.raises(NotFound):
        wa_direct.resend(world.mitra_b, row.id)


def test_a_stuck_direct_send_can_be_resent_but_not_a_fresh_one(world):
    connect(world.mitra_a.user_id)
    fresh = _record(world.mitra_a.user_id, status="sending", age_s=30)
    stuck = _record(world.mitra_a.user_id, status="sending", age_s=3600, key="manual:stuck")
    with pytest.raises(Conflict):
        wa_direct.resend(world.mitra_a, fresh)
    new_id = wa_direct.resend(world.mitra_a, stuck)
    settle()
    assert _status(stuck)[0] == "uncertain"
    assert _status(new_id)[0] == "sent"
    assert [o.idempotency_key for o in outbox()] == ["manual:stuck#ulang-1"]


def test_the_sweep_racing_a_slow_direct_send_keeps_its_late_answer(world):
    import threading

    connect(world.mitra_a.user_id)
    log_id = _record(world.mitra_a.user_id, age_s=600, key="manual:slow")
    started, release = threading.Event(), threading.Event()

    class Slow(Recording):
        def send_text(self, message):
            started.set()
            release.wait(30)
            return super().send_text(message)

    slow = Slow()
    worker = threading.Thread(target=wa_direct.dispatch, args=(log_id, slow))
    worker.start()
    assert started.wait(30)
    _age(log_id, 900)  # long enough for the sweep to call it stale
    wa_direct.sweep_pending(60, gateway=Recording(lookup=SentLookup.UNKNOWN))
    assert _status(log_id)[0] == "uncertain"
    release.set()
    worker.join(30)
    assert _status(log_id) == ("sent", None)  # it did go out: never left "tidak pasti"
    assert [m.idempotency_key for m in slow.sent] == ["manual:slow"]
