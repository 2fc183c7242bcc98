"""Invoices: the scoped list, payments against the ledger, reversals, locking, overdue."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import date, datetime, time, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import Payment, PaymentMethod, PaymentStatus, Setting
from fibernode.services import dashboard, invoices
from fibernode.services.context import Actor
from fibernode.services.errors import (
    AuthenticationRequired,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from tests.services.invoice_data import (
    customer,
    invoice,
    ledger_total,
    logs,
    make_invoice,
    payments,
)

TODAY = clock.today()


def days(n: int) -> date:
    return TODAY + timedelta(days=n)


def period_of(day: date) -> str:
    return clock.current_period(day)


# --- list ----------------------------------------------------------------------------------


@pytest.fixture
def three(world):
    """This month's invoices of Ahmad, Dewi (mitra1) and Rudi (superadmin)."""
    return {
        "ahmad": make_invoice("Ahmad Fauzi", due_date=days(2)),
        "dewi": make_invoice("Dewi Lestari", due_date=days(-3)),
        "rudi": make_invoice("Rudi Hartono", due_date=days(5)),
    }


def names(page: invoices.InvoicePage) -> list[str]:
    return [v.customer_name for v in page.items]


def test_mitra_lists_only_its_own_invoices(three, world):
    assert names(invoices.list_invoices(world.mitra_a)) == ["Ahmad Fauzi", "Dewi Lestari"]
    assert invoices.list_invoices(world.mitra_b).total == 0
    page = invoices.list_invoices(world.admin)
    # Newest due date first.
    assert names(page) == ["Rudi Hartono", "Ahmad Fauzi", "Dewi Lestari"]
    assert (page.total, page.page, page.per_page, page.pages) == (3, 1, 20, 1)


def test_mitra_cannot_filter_by_another_owner(three, world):
    with pytest.raises(PermissionDenied):
        invoices.list_invoices(world.mitra_b, owner_id=world.mitra_a.user_id)
    assert invoices.list_invoices(world.mitra_a, owner_id=world.mitra_a.user_id).total == 2
    assert names(invoices.list_invoices(world.admin, owner_id=world.mitra_a.user_id)) == [
        "Ahmad Fauzi", "Dewi Lestari"]


def test_anonymous_cannot_list(three, world):
    with pytest.raises(AuthenticationRequired):
        invoices.list_invoices(world.anonymous)


def test_view_fields(three, world):
    [v] = invoices.list_invoices(world.mitra_a, search="dewi").items
    inv = three["dewi"]
    assert (v.id, v.customer_id, v.owner_id) == (inv.id, inv.customer_id, world.mitra_a.user_id)
    assert (v.customer_phone, v.area, v.package_name, v.package_speed) == (
        "6289876543210", "WiFi Sukamaju", "Paket 20 Mbps", "20 Mbps")
    assert (v.amount, v.discount, v.total_amount, v.paid_amount, v.remaining) == (
        150_000, 10_000, 140_000, 0, 140_000)
    assert v.status == PaymentStatus.UNPAID and v.overdue is True
    assert (v.paid_at, v.paid_by_name, v.payment_method, v.version) == (None, "", None, 1)
    assert v.receipt_token == inv.receipt_token and v.period == clock.current_period()


def test_status_filters_including_overdue(three, world):
    admin = world.admin
    invoices.pay_invoice(admin, three["ahmad"].id, version=1, method="cash")
    invoices.pay_invoice(admin, three["rudi"].id, version=1, method="qris", amount=50_000)
    assert names(invoices.list_invoices(admin, status="paid")) == ["Ahmad Fauzi"]
    assert names(invoices.list_invoices(admin, status="partial")) == ["Rudi Hartono"]
    assert names(invoices.list_invoices(admin, status="unpaid")) == ["Dewi Lestari"]
    assert names(invoices.list_invoices(admin, status="overdue")) == ["Dewi Lestari"]
    # Paid in part and past due is overdue too; paid in full and past due is not.
    make_invoice("Rudi Hartono", "2020-01", due_date=days(-40))
    old_paid = make_invoice("Ahmad Fauzi", "2020-01", due_date=days(-40))
    invoices.pay_invoice(admin, old_paid.id, version=1, method="cash")
    assert names(invoices.list_invoices(admin, status="overdue")) == [
        "Dewi Lestari", "Rudi Hartono"]
    assert names(invoices.list_invoices(world.mitra_a, status="overdue")) == ["Dewi Lestari"]
    with pytest.raises(ValidationFailed) as err:
        invoices.list_invoices(admin, status="lunas")
    assert err.value.details == {"status": "Status tagihan tidak dikenal."}


def test_period_due_date_customer_and_search_filters(three, world):
    admin = world.admin
    make_invoice("Ahmad Fauzi", "2020-05", due_date=date(2020, 5, 5))
    assert names(invoices.list_invoices(admin, period="2020-05")) == ["Ahmad Fauzi"]
    assert invoices.list_invoices(admin, period=clock.current_period()).total == 3
    assert names(invoices.list_invoices(admin, due_date=days(5))) == ["Rudi Hartono"]
    ahmad = customer("Ahmad Fauzi")
    assert invoices.list_invoices(admin, customer_id=ahmad.id).total == 2
    assert names(invoices.list_invoices(admin, search="LESTARI")) == ["Dewi Lestari"]
    assert names(invoices.list_invoices(admin, search="0813-3344")) == ["Rudi Hartono"]
    assert invoices.list_invoices(admin, search="tidak ada").total == 0
    with pytest.raises(ValidationFailed):
        invoices.list_invoices(admin, period="2026-13")


def test_twenty_per_page(world):
    ahmad = customer("Ahmad Fauzi")
    for i in range(25):
        make_invoice(ahmad, f"{2000 + i}-01", due_date=date(2000 + i, 1, 5))
    first = invoices.list_invoices(world.mitra_a)
    second = invoices.list_invoices(world.mitra_a, page=2)
    assert (first.total, first.pages, len(first.items)) == (25, 2, 20)
    assert (second.total, len(second.items)) == (25, 5)
    assert first.items[0].period == "2024-01" and second.items[-1].period == "2000-01"
    past_end = invoices.list_invoices(world.mitra_a, page=9)
    assert (past_end.total, past_end.items) == (25, [])


def test_get_invoice_is_scoped(three, world):
    assert invoices.get_invoice(world.mitra_a, three["ahmad"].id).customer_name == "Ahmad Fauzi"
    assert invoices.get_invoice(world.admin, three["ahmad"].id).area == "WiFi Sukamaju"
    for actor, inv in ((world.mitra_b, three["ahmad"]), (world.mitra_a, three["rudi"])):
        with pytest.raises(NotFound) as err:
            invoices.get_invoice(actor, inv.id)
        assert err.value.message == "Tagihan tidak ditemukan."
    with pytest.raises(NotFound):
        invoices.get_invoice(world.admin, uuid.uuid4())


# --- pay -----------------------------------------------------------------------------------


def test_full_payment(three, world):
    inv = three["ahmad"]
    before = clock.now()
    view = invoices.pay_invoice(world.mitra_a, inv.id, version=1, method=PaymentMethod.CASH,
                                note="  dibayar di rumah ")
    assert view.status == PaymentStatus.PAID
    assert (view.paid_amount, view.remaining, view.version) == (100_000, 0, 2)
    assert (view.paid_by_name, view.payment_method, view.payment_note) == (
        "Budi Santoso", "cash", "dibayar di rumah")
    assert before <= view.paid_at <= clock.now()
    row = invoice(inv.id)
    assert (row.paid_amount, row.status, row.paid_by, row.version) == (
        100_000, PaymentStatus.PAID, world.mitra_a.user_id, 2)
    [p] = payments(inv.id)
    assert (p.amount, p.method, p.note, p.owner_id, p.recorded_by, p.reversed_at) == (
        100_000, PaymentMethod.CASH, "dibayar di rumah", world.mitra_a.user_id,
        world.mitra_a.user_id, None)
    [log] = logs("invoice.pay")
    assert log.user_id == world.mitra_a.user_id and log.resource_id == inv.id
    assert log.meta["amount"] == 100_000 and log.meta["method"] == "cash"
    assert log.meta["before"]["status"] == "unpaid" and log.meta["before"]["version"] == 1
    assert log.meta["after"]["status"] == "paid" and log.meta["after"]["paid_amount"] == 100_000
    assert log.meta["after"]["version"] == 2


def test_partial_payments_add_up(three, world):
    inv = three["dewi"]  # 140,000
    v = invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="transfer",
                             amount=40_000)
    assert (v.status, v.paid_amount, v.remaining, v.version) == (
        PaymentStatus.PARTIAL, 40_000, 100_000, 2)
    assert v.paid_at is None and v.overdue is True
    with pytest.raises(ValidationFailed) as err:
        invoices.pay_invoice(world.mitra_a, inv.id, version=2, method="cash", amount=100_001)
    assert err.value.details == {"amount": "Jumlah bayar melebihi sisa tagihan (Rp 100.000)."}
    v = invoices.pay_invoice(world.admin, inv.id, version=2, method="qris")
    assert (v.status, v.paid_amount, v.remaining, v.version) == (PaymentStatus.PAID,
                                                                 140_000, 0, 3)
    assert v.paid_at is not None and v.overdue is False
    assert (v.paid_by_name, v.payment_method) == ("Super Admin", "qris")
    assert [p.amount for p in payments(inv.id)] == [40_000, 100_000]
    assert ledger_total(inv.id) == invoice(inv.id).paid_amount == 140_000


@pytest.mark.parametrize(("amount", "message"), [
    (0, "Jumlah bayar minimal Rp 1."),
    (-5, "Jumlah bayar minimal Rp 1."),
    (True, "Jumlah bayar harus berupa angka bulat."),
    ("1000", "Jumlah bayar harus berupa angka bulat."),
])
def test_bad_amounts(three, world, amount, message):
    with pytest.raises(ValidationFailed) as err:
        invoices.pay_invoice(world.admin, three["ahmad"].id, version=1, method="cash",
                             amount=amount)
    assert err.value.details == {"amount": message}
    assert payments(three["ahmad"].id) == []


def test_bad_method_and_note(three, world):
    with pytest.raises(ValidationFailed) as err:
        invoices.pay_invoice(world.admin, three["ahmad"].id, version=1, method="cek")
    assert err.value.details == {"method": "Metode pembayaran tidak dikenal."}
    with pytest.raises(ValidationFailed):
        invoices.pay_invoice(world.admin, three["ahmad"].id, version=1, method="cash",
                             note="x" * 1001)


def test_stale_version_is_a_conflict_and_changes_nothing(three, world):
    inv = three["ahmad"]
    invoices.pay_invoice(world.admin, inv.id, version=1, method="cash", amount=10_000)
    audit_before = len(logs("invoice.pay"))
    with pytest.raises(Conflict) as err:
        invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash")
    assert err.value.message == "Data sudah diubah oleh user lain, silakan refresh."
    row = invoice(inv.id)
    assert (row.paid_amount, row.version, row.status) == (10_000, 2, PaymentStatus.PARTIAL)
    assert len(payments(inv.id)) == 1
    assert len(logs("invoice.pay")) == audit_before


def test_guarded_update_refuses_a_version_changed_after_reading(three, world, monkeypatch):
    """The UPDATE itself checks the version: a change between the read and the write loses."""
    inv = three["ahmad"]
    real = invoices._load_for_change

    def concurrent_change(session, actor, invoice_id, version):
        loaded = real(session, actor, invoice_id, version)
        with new_session() as other:
            other.execute(sa.update(invoices._invoices)
                          .where(invoices._invoices.c.id == invoice_id)
                          .values(version=invoices._invoices.c.version + 1))
            other.commit()
        return loaded

    monkeypatch.setattr(invoices, "_load_for_change", concurrent_change)
    with pytest.raises(Conflict):
        invoices.pay_invoice(world.admin, inv.id, version=1, method="cash")
    assert payments(inv.id) == [] and invoice(inv.id).paid_amount == 0
    assert logs("invoice.pay") == []


def test_paying_a_paid_invoice_is_a_conflict(three, world):
    invoices.pay_invoice(world.admin, three["ahmad"].id, version=1, method="cash")
    with pytest.raises(Conflict) as err:
        invoices.pay_invoice(world.admin, three["ahmad"].id, version=2, method="cash")
    assert err.value.message == "Tagihan ini sudah lunas; tidak ada sisa yang perlu dibayar."


def test_who_may_pay(three, world):
    with pytest.raises(NotFound):
        invoices.pay_invoice(world.mitra_b, three["ahmad"].id, version=1, method="cash")
    with pytest.raises(NotFound):  # the superadmin's own subscriber
        invoices.pay_invoice(world.mitra_a, three["rudi"].id, version=1, method="cash")
    with pytest.raises(AuthenticationRequired):
        invoices.pay_invoice(world.anonymous, three["ahmad"].id, version=1, method="cash")
    with pytest.raises(PermissionDenied):
        invoices.pay_invoice(Actor.system("job"), three["ahmad"].id, version=1,
                             method="cash")
    assert payments(three["ahmad"].id) == []
    invoices.pay_invoice(world.admin, three["ahmad"].id, version=1, method="cash")


# --- unpay ---------------------------------------------------------------------------------


def test_unpay_reverses_every_payment(three, world):
    inv = three["dewi"]
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash", amount=40_000)
    invoices.pay_invoice(world.admin, inv.id, version=2, method="transfer")
    view = invoices.unpay_invoice(world.mitra_a, inv.id, version=3,
                                  reason=" Salah catat pelanggan ")
    assert (view.status, view.paid_amount, view.remaining, view.version) == (
        PaymentStatus.UNPAID, 0, 140_000, 4)
    assert (view.paid_at, view.paid_by_name, view.payment_method) == (None, "", None)
    rows = payments(inv.id)
    assert len(rows) == 2  # kept, marked
    assert all(p.reversed_at is not None and p.reversed_by == world.mitra_a.user_id
               and p.reversal_reason == "Salah catat pelanggan" for p in rows)
    row = invoice(inv.id)
    assert (row.paid_amount, row.paid_by, row.paid_at, row.status) == (
        0, None, None, PaymentStatus.UNPAID)
    [log] = logs("invoice.unpay")
    assert log.meta["reason"] == "Salah catat pelanggan"
    assert log.meta["reversed_payments"] == 2 and log.meta["reversed_amount"] == 140_000
    assert log.meta["before"]["status"] == "paid" and log.meta["after"]["status"] == "unpaid"
    # Paying again counts only the new payment.
    view = invoices.pay_invoice(world.mitra_a, inv.id, version=4, method="cash",
                                amount=20_000)
    assert (view.paid_amount, view.status) == (20_000, PaymentStatus.PARTIAL)
    assert ledger_total(inv.id) == 20_000
    history = invoices.list_payments(world.mitra_a, inv.id)
    assert [(p.amount, p.reversed_at is not None) for p in history] == [
        (40_000, True), (100_000, True), (20_000, False)]
    assert history[0].recorded_by_name == "Budi Santoso"
    assert history[1].recorded_by_name == "Super Admin"
    assert history[0].reversed_by_name == "Budi Santoso"
    assert history[2].reversed_by_name is None and history[2].reversal_reason is None


def test_unpay_rules(three, world):
    inv = three["ahmad"]
    with pytest.raises(ValidationFailed) as err:
        invoices.unpay_invoice(world.admin, inv.id, version=1, reason="  ")
    assert err.value.details == {"reason": "Alasan pembatalan pembayaran wajib diisi."}
    with pytest.raises(Conflict) as err:
        invoices.unpay_invoice(world.admin, inv.id, version=1, reason="salah")
    assert "belum dibayar" in err.value.message
    invoices.pay_invoice(world.admin, inv.id, version=1, method="cash")
    with pytest.raises(Conflict) as err:
        invoices.unpay_invoice(world.admin, inv.id, version=1, reason="salah")
    assert err.value.message == invoices.STALE_MESSAGE
    with pytest.raises(NotFound):
        invoices.unpay_invoice(world.mitra_b, inv.id, version=2, reason="salah")
    assert invoice(inv.id).status == PaymentStatus.PAID
    assert logs("invoice.unpay") == []


def test_list_payments_is_scoped(three, world):
    invoices.pay_invoice(world.admin, three["rudi"].id, version=1, method="cash")
    assert len(invoices.list_payments(world.admin, three["rudi"].id)) == 1
    with pytest.raises(NotFound):
        invoices.list_payments(world.mitra_a, three["rudi"].id)


# --- race (PostgreSQL, real concurrency) ---------------------------------------------------


def test_two_concurrent_payments_with_the_same_version(pg):
    from tests.factories import World

    world = World.seeded()
    inv = make_invoice("Ahmad Fauzi")
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def pay(actor):
        barrier.wait()
        try:
            outcomes.append(invoices.pay_invoice(actor, inv.id, version=1, method="cash"))
        except Conflict as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=pay, args=(a,)) for a in (world.admin, world.mitra_a)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(outcomes) == 2
    conflicts = [o for o in outcomes if isinstance(o, Conflict)]
    views = [o for o in outcomes if isinstance(o, invoices.InvoiceView)]
    assert len(conflicts) == 1 and len(views) == 1
    assert conflicts[0].message == "Data sudah diubah oleh user lain, silakan refresh."
    assert len(payments(inv.id)) == 1
    row = invoice(inv.id)
    assert (row.paid_amount, row.version, row.status) == (100_000, 2, PaymentStatus.PAID)
    assert len(logs("invoice.pay")) == 1


def test_concurrent_partial_payments_never_exceed_the_total(pg):
    """Many cashiers at once, each with the version they saw: the ledger stays consistent."""
    from tests.factories import World

    world = World.seeded()
    inv = make_invoice("Dewi Lestari")  # 140,000
    barrier = threading.Barrier(6)
    results: list[str] = []

    def pay(actor):
        barrier.wait()
        try:
            invoices.pay_invoice(actor, inv.id, version=1, method="cash", amount=100_000)
            results.append("ok")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=pay, args=(world.admin if i % 2 else world.mitra_a,))
               for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == ["conflict"] * 5 + ["ok"]
    assert ledger_total(inv.id) == invoice(inv.id).paid_amount == 100_000


# --- overdue -------------------------------------------------------------------------------


@pytest.fixture
def overdue(world):
    """Overdue: Dewi 140k (mitra1), Ahmad 100k (mitra1, 40k paid), Rudi 250k (admin)."""
    dewi = make_invoice("Dewi Lestari", "2026-01", due_date=days(-10))
    ahmad = make_invoice("Ahmad Fauzi", "2026-01", due_date=days(-1))
    invoices.pay_invoice(world.admin, ahmad.id, version=1, method="cash", amount=40_000)
    make_invoice("Rudi Hartono", "2026-01", due_date=days(-30))
    make_invoice("Rudi Hartono", "2026-02", due_date=TODAY)  # due today: not overdue yet
    paid = make_invoice("Ahmad Fauzi", "2025-12", due_date=days(-60))
    invoices.pay_invoice(world.admin, paid.id, version=1, method="cash")
    return {"dewi": dewi, "ahmad": ahmad}


def test_overdue_by_owner(overdue, world):
    rows = invoices.overdue_by_owner(world.admin)
    assert [(o.business_name, o.count, o.amount) for o in rows] == [
        ("FiberNode Pusat", 1, 250_000), ("WiFi Sukamaju", 2, 200_000)]
    assert rows[1].owner_id == world.mitra_a.user_id
    assert [(o.business_name, o.count) for o in invoices.overdue_by_owner(world.mitra_a)] == [
        ("WiFi Sukamaju", 2)]
    assert invoices.overdue_by_owner(world.mitra_b) == []
    # Tomorrow Rudi's February invoice is overdue too.
    tomorrow = invoices.overdue_by_owner(world.admin, today=days(1))
    assert (tomorrow[0].count, tomorrow[0].amount) == (2, 500_000)
    with pytest.raises(AuthenticationRequired):
        invoices.overdue_by_owner(world.anonymous)


def test_overdue_digest_is_stored_and_read_scoped(overdue, world):
    doc = invoices.refresh_overdue_digest(Actor.system("celery.overdue_digest"))
    assert doc["date"] == TODAY.isoformat()
    with new_session() as s:
        stored = json.loads(s.exec(select(Setting.value).where(
            Setting.key == "overdue_digest")).one())
    assert stored == doc
    assert [(o["business_name"], o["count"], o["amount"]) for o in stored["owners"]] == [
        ("FiberNode Pusat", 1, 250_000), ("WiFi Sukamaju", 2, 200_000)]
    digest = dashboard.overdue_digest(world.admin)
    assert (digest.date, digest.count, digest.amount) == (TODAY, 3, 450_000)
    mine = dashboard.overdue_digest(world.mitra_a)
    assert [(o.business_name, o.count, o.amount) for o in mine.owners] == [
        ("WiFi Sukamaju", 2, 200_000)]
    assert dashboard.overdue_digest(world.mitra_b).owners == []
    # A second run replaces the value.
    invoices.pay_invoice(world.admin, overdue["dewi"].id, version=1, method="cash")
    invoices.refresh_overdue_digest(world.admin)
    assert dashboard.overdue_digest(world.admin).count == 2
    assert len(logs("invoice.overdue_digest")) == 2
    with pytest.raises(PermissionDenied):
        invoices.refresh_overdue_digest(world.mitra_a)


def test_the_daily_task_stores_the_digest(overdue, world):
    from workers import tasks

    doc = tasks.overdue_digest()  # what beat runs at 06:15, called in-process
    assert doc["date"] == TODAY.isoformat() and len(doc["owners"]) == 2
    assert dashboard.overdue_digest(world.admin).amount == 450_000
    [log] = logs("invoice.overdue_digest")
    assert log.user_id is None and log.meta["job"] == "celery.overdue_digest"


def test_overdue_digest_before_the_first_run(world):
    assert dashboard.overdue_digest(world.admin) is None


# --- dashboard -----------------------------------------------------------------------------


def test_dashboard_figures_come_from_invoices_and_the_ledger(world):
    period = clock.current_period()
    ahmad = make_invoice("Ahmad Fauzi", period, due_date=TODAY)
    dewi = make_invoice("Dewi Lestari", period, due_date=TODAY)
    make_invoice("Rudi Hartono", period, due_date=TODAY)
    invoices.pay_invoice(world.mitra_a, ahmad.id, version=1, method="cash")
    invoices.pay_invoice(world.mitra_a, dewi.id, version=1, method="cash", amount=40_000)
    # A payment reversed this month counts neither as paid nor as revenue.
    rudi_old = make_invoice("Rudi Hartono", "2020-01", due_date=date(2020, 1, 15))
    invoices.pay_invoice(world.admin, rudi_old.id, version=1, method="cash")
    invoices.unpay_invoice(world.admin, rudi_old.id, version=2, reason="salah")

    stats = dashboard.dashboard_stats(world.mitra_a)
    assert (stats.invoice_count, stats.billed, stats.paid, stats.unpaid) == (
        2, 240_000, 140_000, 100_000)
    assert (stats.paid_count, stats.unpaid_count, stats.collected_percent) == (1, 1, 58.3)
    assert stats.revenue == 140_000
    everyone = dashboard.dashboard_stats(world.admin)
    assert (everyone.billed, everyone.paid, everyone.revenue) == (490_000, 140_000, 140_000)
    # Rudi's 2020 invoice is overdue again after the reversal.
    assert (everyone.overdue_count, everyone.overdue_amount) == (1, 250_000)
    assert dashboard.dashboard_stats(world.mitra_b).revenue == 0


def test_revenue_is_by_month_of_recording_with_reversals_in_their_month(world):
    inv = make_invoice("Ahmad Fauzi", "2026-01", due_date=date(2026, 1, 5))
    invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="cash")
    last_month = (TODAY.replace(day=1) - timedelta(days=1)).replace(day=15)
    with new_session() as s:  # the payment was recorded last month
        p = s.exec(select(Payment)).one()
        p.recorded_at = datetime.combine(last_month, time(10), clock.JAKARTA)
        s.commit()
    assert dashboard.dashboard_stats(world.mitra_a).revenue == 0
    assert dashboard.dashboard_stats(world.mitra_a, on=last_month).revenue == 100_000
    invoices.unpay_invoice(world.mitra_a, inv.id, version=2, reason="batal")
    # Reversed this month: this month's revenue goes down, last month's stays.
    assert dashboard.dashboard_stats(world.mitra_a).revenue == -100_000
    assert dashboard.dashboard_stats(world.mitra_a, on=last_month).revenue == 100_000
    assert dashboard.dashboard_stats(world.mitra_b, on=last_month).revenue == 0


def test_dashboard_overdue_figures(overdue, world):
    stats = dashboard.dashboard_stats(world.mitra_a)
    assert (stats.overdue_count, stats.overdue_amount) == (2, 200_000)
    stats = dashboard.dashboard_stats(world.admin)
    assert (stats.overdue_count, stats.overdue_amount) == (3, 450_000)
    stats = dashboard.dashboard_stats(world.admin, owner_id=world.mitra_b.user_id)
    assert (stats.overdue_count, stats.overdue_amount) == (0, 0)


def test_due_soon(world):
    make_invoice("Ahmad Fauzi", "2026-01", due_date=TODAY)
    make_invoice("Dewi Lestari", "2026-01", due_date=days(1))
    make_invoice("Rudi Hartono", "2026-01", due_date=days(1))
    make_invoice("Ahmad Fauzi", "2026-02", due_date=days(2))  # later
    make_invoice("Dewi Lestari", "2025-12", due_date=days(-1))  # already overdue
    paid = make_invoice("Rudi Hartono", "2026-02", due_date=TODAY)
    invoices.pay_invoice(world.admin, paid.id, version=1, method="cash")
    soon = dashboard.due_soon(world.admin)
    assert [(v.customer_name, v.due_date) for v in soon] == [
        ("Ahmad Fauzi", TODAY), ("Dewi Lestari", days(1)), ("Rudi Hartono", days(1))]
    assert not any(v.overdue for v in soon)
    assert [v.customer_name for v in dashboard.due_soon(world.mitra_a)] == [
        "Ahmad Fauzi", "Dewi Lestari"]
    assert [v.customer_name for v in dashboard.due_soon(
        world.admin, owner_id=world.mitra_a.user_id)] == ["Ahmad Fauzi", "Dewi Lestari"]
    assert dashboard.due_soon(world.mitra_b) == []
    assert [v.customer_name for v in dashboard.due_soon(world.admin, today=days(-1))] == [
        "Dewi Lestari", "Ahmad Fauzi"]
    assert len(dashboard.due_soon(world.admin, limit=1)) == 1
    with pytest.raises(PermissionDenied):
        dashboard.due_soon(world.mitra_b, owner_id=world.mitra_a.user_id)
    with pytest.raises(AuthenticationRequired):
        dashboard.due_soon(world.anonymous)
