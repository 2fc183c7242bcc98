"""WhatsApp use cases: manual and bulk sends, resends, logs, alerts, scoping."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import WaMessageLog, WaMessageQueue, WaOutbox, WaSessionStatus
from fibernode.services import invoices, ratelimit, wa_direct, wa_numbers, wa_queue, whatsapp
from fibernode.services.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    RateLimited,
    ValidationFailed,
)
from fibernode.services.wa_sessions import SessionEvent, ensure_session, record_event
from fibernode.whatsapp import set_gateway
from fibernode.whatsapp.outbox import OutboxGateway
from tests.services.invoice_data import customer, logs, make_invoice

pytestmark = pytest.mark.both_dialects(
    "session rows are created by an insert_for upsert (wa_sessions.ensure_session)")


@pytest.fixture(autouse=True)
def _gateway(monkeypatch):
    monkeypatch.setattr(wa_numbers, "CHECK_SPACING_S", 0)
    set_gateway(OutboxGateway())
    yield
    assert wa_direct.wait_for_dispatch(10)
    set_gateway(None)


def connect(owner_id, status=WaSessionStatus.CONNECTED, **extra):
    record_event(owner_id, SessionEvent(status=status, **extra))


def outbox():
    assert wa_direct.wait_for_dispatch(10)
    with new_session() as s:
        return list(s.exec(select(WaOutbox).order_by(WaOutbox.created_at)).all())


def test_resend_reminder_once_per_day(world):
    connect(world.mitra_a.user_id)
    inv = make_invoice("Ahmad Fauzi", due_date=clock.today() + timedelta(days=1))
    whatsapp.resend_reminder(world.mitra_a, inv.id)
    [sent] = outbox()
    assert "akan jatuh tempo besok" in sent.content
    assert sent.idempotency_key == f"reminder:{inv.id}:{clock.today().isoformat()}"
    with pytest.raises(Conflict) as exc:
        whatsapp.resend_reminder(world.admin, inv.id)
    assert exc.value.message == "Pengingat untuk tagihan ini sudah terkirim hari ini."
    assert len(logs("wa.resend_reminder")) == 1


def test_resend_reminder_refused_when_paid_or_not_connected(world):
    inv = make_invoice("Ahmad Fauzi")
    with pytest.raises(Conflict) as exc:
        whatsapp.resend_reminder(world.mitra_a, inv.id)
    assert exc.value.message == "Hubungkan WhatsApp terlebih dahulu."
    connect(world.mitra_a.user_id)
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash")
    with pytest.raises(Conflict):
        whatsapp.resend_reminder(world.mitra_a, inv.id)
    with pytest.raises(NotFound):
        whatsapp.resend_reminder(world.mitra_b, inv.id)


def test_resend_receipt_only_for_paid_invoices(world):
    connect(world.mitra_a.user_id)
    inv = make_invoice("Ahmad Fauzi")
    with pytest.raises(Conflict):
        whatsapp.resend_receipt(world.mitra_a, inv.id)
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash")
    whatsapp.resend_receipt(world.admin, inv.id)
    sent = outbox()
    assert len(sent) == 2
    # "dikonfirmasi oleh" stays the person who recorded the payment.
    assert all(f"dikonfirmasi oleh *{world.mitra_a.name}*" in m.content for m in sent)


def test_overdue_reminder_counts_days(world):
    connect(world.mitra_a.user_id)
    inv = make_invoice("Ahmad Fauzi", due_date=clock.today() - timedelta(days=4))
    whatsapp.resend_reminder(world.mitra_a, inv.id)
    [sent] = outbox()
    assert "sudah lewat jatuh tempo *4 hari*" in sent.content


def test_compose_and_send_manual(world):
    cust = customer("Ahmad Fauzi")
    make_invoice(cust, due_date=clock.today() + timedelta(days=1))
    text = whatsapp.compose(world.mitra_a, cust.id, "reminder")
    assert text.startswith("🔔 *Pengingat Tagihan WiFi*") and "{" not in text
    with pytest.raises(Conflict) as exc:
        whatsapp.send_manual(world.mitra_a, cust.id, "reminder")
    assert exc.value.message == "Hubungkan WhatsApp terlebih dahulu."
    connect(world.mitra_a.user_id)
    whatsapp.send_manual(world.mitra_a, cust.id, "reminder", text=text + "\nTambahan")
    [sent] = outbox()
    assert sent.content.endswith("Tambahan")
    with pytest.raises(ValidationFailed):
        whatsapp.send_manual(world.mitra_a, cust.id, "custom", text="  ")
    with pytest.raises(ValidationFailed):
        whatsapp.send_manual(world.mitra_a, cust.id, "custom", text="x" * 2001)
    with pytest.raises(NotFound):
        whatsapp.compose(world.mitra_b, cust.id, "isolation")
    with pytest.raises(ValidationFailed):
        whatsapp.compose(world.mitra_a, customer("Dewi Lestari").id, "receipt")


def test_bulk_preview_and_send_split_per_owner(world):
    connect(world.mitra_a.user_id)
    make_invoice("Ahmad Fauzi", due_date=clock.today())
    make_invoice("Dewi Lestari", due_date=clock.today() - timedelta(days=2))
    make_invoice("Rudi Hartono", due_date=clock.today())
    preview = whatsapp.preview_bulk(world.admin, filter="unpaid", template="reminder")
    assert preview.count == 2 and preview.owners == 1
    assert [s.name for s in preview.skipped] == ["Rudi Hartono"]
    assert preview.skipped[0].reason == "WhatsApp FiberNode Pusat belum terhubung."
    due_today = whatsapp.preview_bulk(world.admin, filter="due_today", template="custom",
                                      text="Halo {nama_pelanggan}")
    assert due_today.count == 1 and due_today.sample == "Halo Ahmad Fauzi"
    connect(world.admin.user_id)
    queued = whatsapp.send_bulk(world.admin, filter="unpaid", template="reminder")
    assert queued == 3
    with new_session() as s:
        rows = s.exec(select(WaMessageQueue.owner_id, WaMessageQueue.message_type,
                             WaMessageQueue.customer_id)).all()
    owners = {c: o for o, _t, c in rows}
    assert owners[customer("Rudi Hartono").id] == world.admin.user_id
    assert owners[customer("Ahmad Fauzi").id] == world.mitra_a.user_id
    assert {t for _o, t, _c in rows} == {"custom"}
    assert len(logs("wa.send_bulk")) == 1


def test_bulk_send_is_all_or_nothing_across_owners(world, monkeypatch):
    connect(world.mitra_a.user_id)
    connect(world.admin.user_id)
    make_invoice("Ahmad Fauzi")
    make_invoice("Rudi Hartono")
    real = wa_queue.enqueue_bulk
    calls = []

    def second_owner_fails(*args, **kwargs):
        calls.append(kwargs["owner_id"])
        if len(calls) == 2:
            raise RuntimeError("database hilang")
        return real(*args, **kwargs)

    monkeypatch.setattr(wa_queue, "enqueue_bulk", second_owner_fails)
    with pytest.raises(RuntimeError):
        whatsapp.send_bulk(world.admin, filter="unpaid", template="reminder")
    assert len(calls) == 2
    with new_session() as s:
        assert s.exec(select(WaMessageQueue)).all() == []  # the first owner's rows too
    assert logs("wa.send_bulk") == [] and logs("wa.queue.enqueue_bulk") == []


def test_bulk_sends_have_a_per_user_quota(world, real_rate_limits):
    connect(world.mitra_a.user_id)
    make_invoice("Ahmad Fauzi")
    for _ in range(ratelimit.BULK_SENDS_PER_5_MIN):
        whatsapp.send_bulk(world.mitra_a, filter="unpaid", template="custom", text="Halo")
    with pytest.raises(RateLimited) as refused:
        whatsapp.send_bulk(world.mitra_a, filter="unpaid", template="custom", text="Halo")
    assert refused.value.message == "Terlalu banyak permintaan. Coba lagi sebentar lagi."
    assert 0 < refused.value.retry_after <= 300
    assert len(logs("wa.send_bulk")) == ratelimit.BULK_SENDS_PER_5_MIN
    # Another user's quota is their own.
    connect(world.admin.user_id)
    make_invoice("Rudi Hartono")
    assert whatsapp.send_bulk(world.admin, customer_ids=[customer("Rudi Hartono").id],
                              template="custom", text="Halo") == 1


def test_mitra_bulk_sees_only_its_subscribers(world):
    connect(world.mitra_b.user_id)
    make_invoice("Ahmad Fauzi")
    with pytest.raises(Conflict):
        whatsapp.send_bulk(world.mitra_b, customer_ids=[customer("Ahmad Fauzi").id],
                           template="custom", text="Halo")
    preview = whatsapp.preview_bulk(world.mitra_b, filter="unpaid", template="reminder")
    assert preview.count == 0 and preview.skipped == []
    with pytest.raises(ValidationFailed):
        whatsapp.preview_bulk(world.mitra_b, filter="semua", template="reminder")


def _log(owner_id, status, *, minutes_ago=1, message_type="custom"):
    with new_session() as s:
        sid = ensure_session(s, owner_id).id
        s.add(WaMessageLog(session_id=sid, owner_id=owner_id, message_type=message_type,
                           phone="6281234567890", content="x", status=status,
                           idempotency_key=f"t:{uuid.uuid4()}",
                           sent_at=clock.now() - timedelta(minutes=minutes_ago)))
        s.commit()


def test_logs_are_scoped_paged_and_filtered(world):
    for _ in range(22):
        _log(world.mitra_a.user_id, "sent")
    _log(world.mitra_a.user_id, "failed", message_type="receipt")
    _log(world.mitra_b.user_id, "sent")
    page = whatsapp.list_logs(world.mitra_a)
    assert page.total == 23 and len(page.items) == 20 and page.pages == 2
    assert len(whatsapp.list_logs(world.mitra_a, page=2).items) == 3
    assert whatsapp.list_logs(world.mitra_a, status="failed").total == 1
    assert whatsapp.list_logs(world.mitra_a, message_type="receipt").total == 1
    assert whatsapp.list_logs(world.mitra_b).total == 1
    assert whatsapp.list_logs(world.admin).total == 24
    assert whatsapp.list_logs(world.admin, date_from=clock.today(),
                              date_to=clock.today()).total == 24
    with pytest.raises(PermissionDenied):
        whatsapp.list_logs(world.mitra_b, owner_id=world.mitra_a.user_id)
    with pytest.raises(ValidationFailed):
        whatsapp.list_logs(world.mitra_a, status="hilang")


def test_failure_spike_and_notifications(world):
    for _ in range(5):
        _log(world.mitra_a.user_id, "failed")
    for _ in range(5):
        _log(world.mitra_a.user_id, "sent")
    _log(world.mitra_a.user_id, "failed", minutes_ago=120)
    warning = whatsapp.failure_spike(world.mitra_a)
    assert warning and "(5 dari 10)" in warning
    assert whatsapp.failure_spike(world.mitra_b) is None
    connect(world.mitra_a.user_id, WaSessionStatus.BANNED,
            banned_until=clock.now() + timedelta(hours=2))
    titles = [n.title for n in whatsapp.notifications(world.mitra_a)]
    assert titles[0] == "WhatsApp diblokir sementara"
    assert "Antrian pesan dijeda" in titles and "Banyak pesan gagal" in titles
    admin_titles = [n.title for n in whatsapp.notifications(world.admin)]
    assert "WhatsApp belum terhubung" in admin_titles
    assert "WiFi Sukamaju: WhatsApp diblokir sementara" in admin_titles
    assert "WiFi Sukamaju: Banyak pesan gagal" in admin_titles
    assert all("WiFi Sukamaju" not in n.title for n in whatsapp.notifications(world.mitra_b))


def test_link_status_and_logout(world):
    view = whatsapp.get_status(world.mitra_a)
    assert view.status == "disconnected" and not view.connected
    with pytest.raises(ValidationFailed):
        whatsapp.start_link(world.mitra_a, "code", "12345")
    view = whatsapp.start_link(world.mitra_a, "qr")
    assert view.connected and view.mode == "outbox"
    with pytest.raises(Conflict):
        whatsapp.start_link(world.mitra_a)
    view = whatsapp.logout(world.mitra_a)
    assert view.status == "disconnected"
    assert whatsapp.refresh_link(world.mitra_a).status == "disconnected"
    assert len(logs("wa.link.start")) == 1 and len(logs("wa.logout")) == 1
    assert whatsapp.get_status(world.admin, owner_id=world.mitra_a.user_id).owner_id == \
        world.mitra_a.user_id


@pytest.mark.parametrize(("status", "mode", "label"), [
    ("sent", "outbox", "Dicatat (mode uji — tidak dikirim)"),
    ("sent", "neonize", "Terkirim"),
    ("sent", "cloud", "Terkirim"),
    ("failed", "outbox", "Gagal"),
    ("delivered", "neonize", "Diterima"),
])
def test_a_recorded_outbox_message_is_never_labelled_sent(status, mode, label):
    assert whatsapp.status_label(status, mode) == label


@pytest.mark.parametrize("mode", ["outbox", "neonize", "cloud"])
def test_the_bell_says_nothing_reaches_subscribers_only_in_outbox_mode(world, monkeypatch,
                                                                       mode):
    from fibernode.config import reset_settings

    monkeypatch.setenv("WA_MODE", mode)
    reset_settings()
    try:
        for actor in (world.admin, world.mitra_a):
            notices = whatsapp.notifications(actor)
            outbox = [n for n in notices if n.kind == "mode"]
            if mode == "outbox":
                assert [n.title for n in outbox] == [whatsapp.OUTBOX_NOTICE_TITLE]
                assert "tidak sampai ke pelanggan" in outbox[0].message
                assert outbox[0].owner_id == actor.user_id
            else:
                assert outbox == []
    finally:
        reset_settings()
