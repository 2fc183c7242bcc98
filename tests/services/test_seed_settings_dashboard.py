"""Seeding, site settings, dashboard figures, housekeeping and the activity log."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from fibernode import __version__, clock
from fibernode.config import reset_settings
from fibernode.db import new_session
from fibernode.models import (
    ActivityLog,
    Customer,
    CustomerStatus,
    Invoice,
    LoginAttempt,
    Package,
    PaymentStatus,
    Setting,
    User,
    UserRole,
    UserSession,
)
from fibernode.services import activity, auth, dashboard, maintenance, settings
from fibernode.services.context import Actor
from fibernode.services.errors import ValidationFailed
from fibernode.services.seed import seed
from tests.factories import MITRA_PASSWORD

SEEDER = Actor.system("seed")


def count(model) -> int:
    with new_session() as s:
        return s.exec(select(sa.func.count()).select_from(model)).one()


def all_rows(model) -> list:
    with new_session() as s:
        return list(s.exec(select(model)).all())


def audit_rows(action: str) -> list[ActivityLog]:
    with new_session() as s:
        return list(s.exec(select(ActivityLog).where(ActivityLog.action == action)).all())


def put_setting(key: str, value: str | None) -> None:
    with new_session() as s:
        row = s.exec(select(Setting).where(Setting.key == key)).first()
        if row is None:
            s.add(Setting(key=key, value=value))
        else:
            row.value = value
        s.commit()


# --- seed --------------------------------------------------------------------------------


@pytest.fixture
def admin_env(db, monkeypatch):
    """A superadmin configured through ADMIN_* (settings are re-read around the test)."""
    monkeypatch.setenv("ADMIN_USERNAME", "BosBesar")
    monkeypatch.setenv("ADMIN_PASSWORD", "RahasiaBos2024")
    monkeypatch.setenv("ADMIN_NAME", "Bos Besar")
    monkeypatch.setenv("ADMIN_BUSINESS_NAME", "Pusat Data Nusantara")
    reset_settings()
    yield
    monkeypatch.undo()
    reset_settings()


def test_seed_creates_exactly_the_spec_data(admin_env):
    report = seed(SEEDER, demo=True)

    [admin] = [u for u in all_rows(User) if u.role == UserRole.SUPERADMIN]
    assert (admin.username, admin.name, admin.business_name) == (
        "bosbesar", "Bos Besar", "Pusat Data Nusantara")
    assert auth.login(Actor.anonymous("10.8.0.1"), "bosbesar", "RahasiaBos2024").token

    assert {(p.name, p.speed, p.price) for p in all_rows(Package)} == {
        ("Paket 10 Mbps", "10 Mbps", 100_000),
        ("Paket 20 Mbps", "20 Mbps", 150_000),
        ("Paket 30 Mbps", "30 Mbps", 200_000),
        ("Paket 50 Mbps", "50 Mbps", 250_000),
        ("Paket 100 Mbps", "100 Mbps", 350_000),
    }

    mitra = {u.username: u for u in all_rows(User) if u.role == UserRole.MITRA}
    assert {(u.username, u.name, u.business_name) for u in mitra.values()} == {
        ("mitra1", "Budi Santoso", "WiFi Sukamaju"),
        ("mitra2", "Siti Rahayu", "Net Mekarjaya"),
    }
    assert count(User) == 3
    assert auth.login(Actor.anonymous("10.8.0.1"), "mitra2", MITRA_PASSWORD).token

    packages = {p.id: p.name for p in all_rows(Package)}
    owners = {admin.id: "superadmin", **{u.id: name for name, u in mitra.items()}}
    customers = {
        c.name: (c.phone, owners[c.owner_id], c.billing_date, packages[c.package_id],
                 c.discount, c.total_bill, c.status)
        for c in all_rows(Customer)
    }
    active = CustomerStatus.ACTIVE
    assert customers == {
        "Ahmad Fauzi": ("6281234567890", "mitra1", 5, "Paket 10 Mbps", 0, 100_000, active),
        "Dewi Lestari": ("6289876543210", "mitra1", 10, "Paket 20 Mbps", 10_000,
                         140_000, active),
        "Rudi Hartono": ("6281333444555", "superadmin", 15, "Paket 50 Mbps", 0,
                         250_000, active),
    }

    assert {s.key for s in all_rows(Setting)} == set(settings.DEFAULTS)
    assert "superadmin bosbesar" in report.created
    assert "pelanggan Dewi Lestari" in report.created
    # Every created row is audited, by the seeding job.
    assert len(audit_rows("user.create")) == 3
    assert len(audit_rows("package.create")) == 5
    assert len(audit_rows("customer.create")) == 3
    assert all(r.meta["job"] == "seed" for r in audit_rows("customer.create"))


def test_seeding_twice_creates_nothing_new(db):
    seed(SEEDER, demo=True)
    counts = {m: count(m) for m in (User, Package, Customer, Setting, ActivityLog)}

    again = seed(SEEDER, demo=True)

    assert again.created == []
    assert str(again) == "tidak ada yang baru"
    assert {m: count(m) for m in counts} == counts


def test_seed_without_demo_creates_only_the_superadmin_and_settings(db):
    report = seed(SEEDER, demo=False)

    [admin] = all_rows(User)
    assert (admin.username, admin.role, admin.business_name) == (
        "superadmin", UserRole.SUPERADMIN, "FiberNode Pusat")
    assert count(Package) == count(Customer) == 0
    assert count(Setting) == len(settings.DEFAULTS)
    assert report.created[0] == "superadmin superadmin"
    # Demo data can still be added later, next to the same superadmin.
    seed(SEEDER, demo=True)
    assert count(User) == 3 and count(Customer) == 3


def test_seed_keeps_an_existing_superadmin(db):
    seed(SEEDER, demo=False)
    with new_session() as s:
        admin = s.exec(select(User)).one()
        admin.name = "Diganti"
        s.commit()
    seed(SEEDER, demo=False)
    [admin] = all_rows(User)
    assert admin.name == "Diganti"


# --- settings ----------------------------------------------------------------------------


def test_record_app_version_writes_and_audits_only_on_change(world):
    assert settings.get_values(["app_version"]) == {"app_version": __version__}

    assert settings.record_app_version(world.admin, __version__) is False
    assert audit_rows("settings.app_version") == []

    assert settings.record_app_version(world.admin, "2.0.0") is True
    assert settings.record_app_version(world.admin, "2.0.0") is False
    assert settings.get_values(["app_version"]) == {"app_version": "2.0.0"}
    [log] = audit_rows("settings.app_version")
    assert log.meta == {"changes": {"app_version": {"from": __version__, "to": "2.0.0"}}}
    assert log.user_id == world.admin.user_id


def test_record_app_version_on_an_empty_database(db):
    assert settings.record_app_version(Actor.system("startup"), "1.2.3") is True
    [log] = audit_rows("settings.app_version")
    assert log.meta == {"changes": {"app_version": {"from": None, "to": "1.2.3"}},
                        "job": "startup"}
    assert settings.get_branding(Actor.anonymous()).app_version == "1.2.3"


def test_ensure_defaults_adds_only_missing_keys(db):
    put_setting("app_name", "WiFi Desa")
    added = settings.ensure_defaults(Actor.system())
    assert "app_name" not in added
    assert set(added) == set(settings.DEFAULTS) - {"app_name"}
    assert settings.get_values(["app_name"]) == {"app_name": "WiFi Desa"}
    assert settings.ensure_defaults(Actor.system()) == []
    assert len(audit_rows("settings.seed")) == 1


def test_branding_falls_back_to_defaults(db):
    branding = settings.get_branding(Actor.anonymous())
    assert branding.app_name == "FiberNode Internet"
    assert branding.logo_url == "/logo.svg"
    assert branding.splash_logo_url == "/logo.svg"
    assert branding.splash_bg_color == "#3B82F6"
    assert branding.meta_description == "Sistem manajemen tagihan langganan WiFi"
    assert branding.app_version == __version__


def test_branding_uses_stored_values_and_ignores_blank_ones(db):
    put_setting("app_name", "")
    put_setting("splash_bg_color", None)
    put_setting("logo_url", "/uploads/logo-desa.png")
    branding = settings.get_branding(Actor.anonymous())
    assert branding.app_name == "FiberNode Internet"
    assert branding.splash_bg_color == "#3B82F6"
    assert branding.logo_url == "/uploads/logo-desa.png"
    # The splash screen shows the site logo until a splash logo is set.
    assert branding.splash_logo_url == "/uploads/logo-desa.png"
    put_setting("splash_logo_url", "/uploads/splash.png")
    assert settings.get_branding(Actor.anonymous()).splash_logo_url == "/uploads/splash.png"


# --- dashboard ---------------------------------------------------------------------------


def add_invoice(customer: Customer, period: str, paid: int) -> None:
    """Insert an invoice directly (billing is another module's job)."""
    total = customer.total_bill
    status = (PaymentStatus.PAID if paid >= total
              else PaymentStatus.PARTIAL if paid else PaymentStatus.UNPAID)
    with new_session() as s:
        s.add(Invoice(customer_id=customer.id, owner_id=customer.owner_id, period=period,
                      amount=total + customer.discount, discount=customer.discount,
                      total_amount=total, paid_amount=paid, status=status,
                      due_date=clock.today()))
        s.commit()


def previous_period() -> str:
    first = date.fromisoformat(clock.current_period() + "-01")
    return clock.current_period(first - timedelta(days=1))


@pytest.fixture
def billed(world):
    """This period: Ahmad paid in full, Dewi paid part, Rudi (superadmin) nothing."""
    customers = {c.name: c for c in all_rows(Customer)}
    period = clock.current_period()
    add_invoice(customers["Ahmad Fauzi"], period, paid=100_000)
    add_invoice(customers["Dewi Lestari"], period, paid=40_000)
    add_invoice(customers["Rudi Hartono"], period, paid=0)
    # Last month's invoice must not count.
    add_invoice(customers["Dewi Lestari"], previous_period(), paid=0)
    return world


def figures(stats: dashboard.DashboardStats) -> tuple:
    return (stats.invoice_count, stats.billed, stats.paid, stats.unpaid, stats.paid_count,
            stats.unpaid_count, stats.collected_percent)


def test_dashboard_for_a_mitra_covers_only_their_invoices(billed):
    stats = dashboard.dashboard_stats(billed.mitra_a)
    assert stats.period == clock.current_period()
    assert figures(stats) == (2, 240_000, 140_000, 100_000, 1, 1, 58.3)
    assert stats.active_customers == 2 and stats.isolated_customers == 0


def test_dashboard_for_a_mitra_without_invoices(billed):
    assert figures(dashboard.dashboard_stats(billed.mitra_b)) == (0, 0, 0, 0, 0, 0, 0.0)


def test_dashboard_for_the_superadmin_covers_everyone(billed):
    assert figures(dashboard.dashboard_stats(billed.admin)) == (
        3, 490_000, 140_000, 350_000, 1, 2, 28.6)
    assert figures(dashboard.dashboard_stats(billed.admin, owner_id=billed.mitra_a.user_id)) \
        == figures(dashboard.dashboard_stats(billed.mitra_a))


def test_dashboard_for_another_period(billed):
    first = date.fromisoformat(clock.current_period() + "-01")
    stats = dashboard.dashboard_stats(billed.mitra_a, on=first - timedelta(days=1))
    assert stats.period == previous_period()
    assert figures(stats) == (1, 140_000, 0, 140_000, 0, 1, 0.0)


def test_dashboard_counts_isolated_subscribers(billed):
    with new_session() as s:
        dewi = s.exec(select(Customer).where(Customer.name == "Dewi Lestari")).one()
        dewi.status = CustomerStatus.ISOLATED
        s.commit()
    stats = dashboard.dashboard_stats(billed.mitra_a)
    assert (stats.active_customers, stats.isolated_customers) == (1, 1)
    assert dashboard.dashboard_stats(billed.admin).isolated_customers == 1


def test_fully_paid_period_is_100_percent(billed):
    with new_session() as s:
        for inv in s.exec(select(Invoice)).all():
            inv.paid_amount = inv.total_amount
            inv.status = PaymentStatus.PAID
        s.commit()
    stats = dashboard.dashboard_stats(billed.admin)
    assert (stats.unpaid, stats.unpaid_count, stats.collected_percent) == (0, 0, 100.0)


# --- maintenance -------------------------------------------------------------------------


def test_cleanup_removes_old_attempts_and_dead_sessions(world):
    now = clock.now()
    user_id = world.mitra_b.user_id
    with new_session() as s:
        for days in (31, 45, 29):
            s.add(LoginAttempt(username="lama", ip_address="10.8.1.1", success=False,
                               created_at=now - timedelta(days=days)))

        def session(tag, **times):
            s.add(UserSession(user_id=user_id, token_hash=auth.hash_token(tag), **times))

        session("expired-long-ago", expires_at=now - timedelta(days=8))
        session("revoked-long-ago", expires_at=now + timedelta(days=20),
                revoked_at=now - timedelta(days=8))
        session("expired-recently", expires_at=now - timedelta(days=6))
        session("revoked-recently", expires_at=now + timedelta(days=20),
                revoked_at=now - timedelta(days=1))
        session("live", expires_at=now + timedelta(hours=3))
        s.commit()
    attempts_before, sessions_before = count(LoginAttempt), count(UserSession)

    result = maintenance.cleanup(Actor.system("cleanup"))

    assert (result.login_attempts, result.sessions) == (2, 2)
    assert count(LoginAttempt) == attempts_before - 2
    assert count(UserSession) == sessions_before - 2
    remaining = {s.token_hash for s in all_rows(UserSession)}
    assert auth.hash_token("expired-recently") in remaining
    assert auth.hash_token("live") in remaining
    assert auth.hash_token("revoked-long-ago") not in remaining
    [log] = audit_rows("maintenance.cleanup")
    assert log.meta == {"login_attempts": 2, "sessions": 2, "import_jobs": 0, "files": 0,
                        "tmp_files": 0, "partial_backups": 0, "branding_files": 0, "proof_files": 0,
                        "devices": 0, "job": "cleanup"}

    again = maintenance.cleanup(Actor.system("cleanup"))
    assert (again.login_attempts, again.sessions) == (0, 0)
    assert len(audit_rows("maintenance.cleanup")) == 2


# --- activity log ------------------------------------------------------------------------


@pytest.fixture
def logged(world):
    """30 ``test.*`` audit rows a minute apart, the newest last, by mitra1 and system."""
    base = clock.now() - timedelta(hours=2)
    with new_session() as s:
        for i in range(30):
            s.add(ActivityLog(user_id=world.mitra_a.user_id if i % 3 == 0 else None,
                              action=f"test.{'even' if i % 2 == 0 else 'odd'}",
                              resource="things", meta={"i": i}, ip_address="10.8.2.1",
                              created_at=base + timedelta(minutes=i)))
        s.commit()
    return world


def test_activity_pages_20_newest_first(logged):
    page1 = activity.list_activity(logged.admin, action_prefix="test.")
    assert (page1.total, page1.page, page1.pages) == (30, 1, 2)
    assert [r.meta["i"] for r in page1.rows] == list(range(29, 9, -1))

    page2 = activity.list_activity(logged.admin, action_prefix="test.", page=2)
    assert [r.meta["i"] for r in page2.rows] == list(range(9, -1, -1))
    assert activity.list_activity(logged.admin, action_prefix="test.", page=3).rows == []
    assert activity.list_activity(logged.admin, action_prefix="test.", page=0).page == 1


def test_activity_newest_row_is_first_overall(logged):
    newest = activity.list_activity(logged.admin).rows[0]
    # The fixture rows are two hours old; the seed and login rows are newer.
    assert newest.action == "auth.login"
    assert newest.username == "mitra2"


def test_activity_filters(logged):
    even = activity.list_activity(logged.admin, action_prefix=" test.even ")
    assert even.total == 15
    assert {r.action for r in even.rows} == {"test.even"}

    mine = activity.list_activity(logged.admin, username="MITRA1")
    assert {r.username for r in mine.rows} == {"mitra1"}
    # 10 fixture rows plus the fixture's login of mitra1.
    assert mine.total == 11

    both = activity.list_activity(logged.admin, action_prefix="test.", username="mitra1")
    assert both.total == 10

    system_rows = [r for r in activity.list_activity(logged.admin, action_prefix="test.").rows
                   if r.meta["i"] % 3]
    assert {r.username for r in system_rows} == {"sistem"}
    assert activity.list_activity(logged.admin, username="nobody").total == 0
    assert activity.list_activity(logged.admin, username="nobody").pages == 1


def test_update_settings_validates_and_audits(world):
    changes = settings.update_settings(world.admin, {"receipt_show_nik": True,
                                                     "receipt_footer_text": "  Salam  "})
    assert changes == {"receipt_show_nik": {"from": "false", "to": "true"},
                       "receipt_footer_text": {"from": "Terima kasih atas pembayaran Anda.",
                                               "to": "Salam"}}
    assert settings.get_values(["receipt_show_nik"]) == {"receipt_show_nik": "true"}
    assert settings.update_settings(world.admin, {"receipt_show_nik": "true"}) == {}
    [log] = audit_rows("settings.update")
    assert log.meta["changes"]["receipt_show_nik"]["to"] == "true"
    with pytest.raises(ValidationFailed) as err:
        settings.update_settings(world.admin, {"app_version": "9", "nope": "x",
                                               "receipt_show_area": "kadang"})
    assert set(err.value.details) == {"app_version", "nope", "receipt_show_area"}
