"""Who may call which use case: the permission matrix and tenant scoping."""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

import fibernode.services
from fibernode.db import new_session
from fibernode.models import ActivityLog, Customer, Package, User, UserSession
from fibernode.services import (
    activity,
    api_tokens,
    auth,
    backup,
    billing,
    branding,
    customers,
    dashboard,
    devices,
    exports,
    filejobs,
    finance,
    finance_files,
    history,
    imports,
    invoices,
    maintenance,
    packages,
    payment_proofs,
    receipts,
    revenue_months,
    seed,
    settings,
    two_factor,
    users,
    wa_cloud,
    wa_config,
    wa_direct,
    wa_queue,
    wa_templates,
    web_login,
    whatsapp,
)
from fibernode.services.context import Actor
from fibernode.services.errors import (
    AuthenticationRequired,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from tests.conftest import recorded_jobs
from tests.factories import ADMIN_PASSWORD, MITRA_PASSWORD

OK = "allowed"
ACTORS = ("superadmin", "owning_mitra", "other_mitra", "anonymous")

# Functions that take an actor first but are the machinery use cases are built from
# (guards and the transaction), not use cases themselves.
NOT_USE_CASES = {
    "context.require_user",
    "context.require_superadmin",
    "scoping.can_touch_owner",
    "scoping.check_owner_filter",
    "uow.unit_of_work",
    "ratelimit.require_quota",  # a guard inside use cases (imports, bulk sends)
    "ratelimit.count_user_request",  # a guard in front of every API call and app event
    "customers.filtered_query",  # builds the select behind list_customers and the export
    "invoices.visible_invoices",  # the scoped select behind list_invoices and due_soon
}


def pick(world, key: str) -> Actor:
    return {
        "superadmin": world.admin,
        "owning_mitra": world.mitra_a,
        "other_mitra": world.mitra_b,
        "anonymous": world.anonymous,
    }[key]


def password_of(actor: Actor) -> str:
    return ADMIN_PASSWORD if actor.is_superadmin else MITRA_PASSWORD


def mitra1_session_id(world):
    """A live session of the owning mitra (opened by the fixture's login)."""
    with new_session() as s:
        return s.exec(select(UserSession.id).where(
            UserSession.user_id == world.mitra_a.user_id)).first()


def logout_mitra1(world, actor: Actor) -> None:
    token = auth.login(Actor.anonymous("10.9.9.9", "pytest"), "mitra1", MITRA_PASSWORD).token
    auth.logout(actor, token)
    assert auth.resolve_session(token) is None


def mitra1_customer_id(world):
    """A subscriber owned by the owning mitra."""
    with new_session() as s:
        return s.exec(select(Customer.id).where(Customer.owner_id == world.mitra_a.user_id)
                      .order_by(Customer.name)).first()


def package_id(name: str):
    with new_session() as s:
        return s.exec(select(Package.id).where(Package.name == name)).one()


def mitra2_id():
    with new_session() as s:
        return s.exec(select(User.id).where(User.username == "mitra2")).one()


def unused_mitra_id():
    """A mitra nobody has used yet, inserted directly so that making it writes no audit
    row (the matrix checks that a refused call leaves the audit trail as it was)."""
    from fibernode.models import UserRole

    with new_session() as s:
        user = User(username="mitra-baru", password_hash="-", name="Mitra Baru",
                    role=UserRole.MITRA, business_name="Net Baru")
        s.add(user)
        s.commit()
        return user.id


def new_customer(a: Actor, **extra):
    return customers.create_customer(a, name="Pelanggan Baru", phone="081211112222",
                                     package_id=package_id("Paket 10 Mbps"), billing_date=7,
                                     **extra)


@dataclass(frozen=True)
class Case:
    """One row of the matrix: a use case call and the outcome for each actor."""

    use_case: str  # "module.function"
    call: Callable[[Any, Actor], object]
    superadmin: Any
    owning_mitra: Any
    other_mitra: Any
    anonymous: Any
    variant: str = ""

    @property
    def id(self) -> str:
        return self.use_case + (f":{self.variant}" if self.variant else "")


def everyone(use_case, call, variant=""):
    return Case(use_case, call, OK, OK, OK, OK, variant)


def logged_in(use_case, call, variant=""):
    return Case(use_case, call, OK, OK, OK, AuthenticationRequired, variant)


def superadmin_only(use_case, call, variant=""):
    return Case(use_case, call, OK, PermissionDenied, PermissionDenied,
                AuthenticationRequired, variant)


FIN_RANGE = (date(2026, 1, 1), date(2026, 12, 31))  # finance rows: a recap range
FIN_DAY = date(2026, 11, 5)

MATRIX = [
    everyone("auth.login",
             lambda w, a: auth.login(a, "mitra1", MITRA_PASSWORD)),
    # The session token is the credential: whoever holds it may end that session.
    everyone("auth.logout", logout_mitra1),
    everyone("auth.logout_hash", lambda w, a: auth.logout_hash(
        a, auth.hash_token(auth.login(Actor.anonymous("10.9.9.9", "pytest"), "mitra1",
                                      MITRA_PASSWORD).token))),
    # The web login: credentials, then whoever holds the one-time code gets the cookie.
    everyone("web_login.begin", lambda w, a: web_login.begin(a, "mitra1", MITRA_PASSWORD)),
    everyone("web_login.claim", lambda w, a: web_login.claim(a, web_login.begin(
        Actor.anonymous("10.9.9.9", "pytest"), "mitra1", MITRA_PASSWORD).code)),
    everyone("web_login.logout", lambda w, a: web_login.logout(
        a, auth.hash_token(auth.login(Actor.anonymous("10.9.9.9", "pytest"), "mitra1",
                                      MITRA_PASSWORD).token))),
    everyone("auth.authenticate",
             lambda w, a: auth.authenticate(
                 a, "mitra1", MITRA_PASSWORD,
                 # Issuing a credential is what audits a login (auth.login / api.login).
                 lambda uow, user, actor, now, device_token: uow.audit("test.login")
                 and user.id)),
    everyone("api_tokens.login",
             lambda w, a: api_tokens.login(a, "mitra1", MITRA_PASSWORD)),
    # The refresh token is the credential, whoever presents it.
    everyone("api_tokens.refresh",
             lambda w, a: api_tokens.refresh(a, api_tokens.login(
                 Actor.anonymous("10.9.9.8", "pytest"), "mitra1", MITRA_PASSWORD).refresh_token)),
    logged_in("api_tokens.logout", lambda w, a: api_tokens.logout(a)),
    superadmin_only("two_factor.status", lambda w, a: two_factor.status(a)),
    superadmin_only("two_factor.begin_enrolment", lambda w, a: two_factor.begin_enrolment(a)),
    # Allowed for the superadmin, who then needs an enrolment / a code first.
    Case("two_factor.confirm_enrolment", lambda w, a: two_factor.confirm_enrolment(a, "123456"),
         ValidationFailed, PermissionDenied, PermissionDenied, AuthenticationRequired),
    Case("two_factor.regenerate_recovery_codes",
         lambda w, a: two_factor.regenerate_recovery_codes(a, "123456"),
         ValidationFailed, PermissionDenied, PermissionDenied, AuthenticationRequired),
    Case("two_factor.disable", lambda w, a: two_factor.disable(a, "x", "123456"),
         ValidationFailed, PermissionDenied, PermissionDenied, AuthenticationRequired),
    # Lockouts of one's own account only (the bell): any logged-in user.
    logged_in("devices.recent_lockouts", lambda w, a: devices.recent_lockouts(a)),
    logged_in("auth.list_my_sessions",
              lambda w, a: auth.list_my_sessions(a)),
    Case("auth.revoke_my_session",
         lambda w, a: auth.revoke_my_session(a, mitra1_session_id(w)),
         superadmin=NotFound, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="session-of-mitra1"),
    logged_in("auth.change_password",
              lambda w, a: auth.change_password(a, password_of(a), "GantiBaru2024",
                                                "GantiBaru2024")),
    logged_in("users.get_profile", lambda w, a: users.get_profile(a)),
    logged_in("users.update_profile",
              lambda w, a: users.update_profile(a, name="Nama Baru", phone="081234567890")),
    superadmin_only("users.create_mitra",
                    lambda w, a: users.create_mitra(a, username="mitra3",
                                                    password="Mitra3Baru!",
                                                    name="Mitra Tiga",
                                                    business_name="Net Tiga")),
    superadmin_only("users.set_user_active",
                    lambda w, a: users.set_user_active(a, w.user_id("mitra2"), False),
                    variant="deactivate-mitra2"),
    logged_in("users.list_owners", lambda w, a: users.list_owners(a)),
    superadmin_only("users.list_mitra", lambda w, a: users.list_mitra(a, search="net")),
    superadmin_only("users.get_mitra", lambda w, a: users.get_mitra(a, mitra2_id())),
    superadmin_only("users.update_mitra",
                    lambda w, a: users.update_mitra(a, mitra2_id(), name="Siti R.",
                                                    business_name="Net Mekarjaya Baru",
                                                    username="mitra2b")),
    superadmin_only("users.reset_mitra_password",
                    lambda w, a: users.reset_mitra_password(a, mitra2_id(), "Lupa2Baru!")),
    superadmin_only("users.delete_mitra",
                    lambda w, a: users.delete_mitra(a, unused_mitra_id()),
                    variant="unused-mitra"),
    superadmin_only("exports.export_customers",
                    lambda w, a: exports.export_customers(a, "csv", io.BytesIO())),
    superadmin_only("exports.export_customers",
                    lambda w, a: exports.export_customers(a, "xlsx", io.BytesIO(),
                                                          owner_id=w.mitra_a.user_id),
                    variant="xlsx-owner=mitra1"),
    everyone("settings.get_branding", lambda w, a: settings.get_branding(a)),
    superadmin_only("settings.ensure_defaults", lambda w, a: settings.ensure_defaults(a)),
    superadmin_only("settings.update_settings",
                    lambda w, a: settings.update_settings(a, {"receipt_show_area": False})),
    superadmin_only("settings.record_app_version",
                    lambda w, a: settings.record_app_version(a, "9.9.9")),
    superadmin_only("branding.upload_logo",
                    lambda w, a: in_tmp_uploads(lambda: branding.upload_logo(
                        a, small_logo_png(), "logo.png"))),
    superadmin_only("branding.reset_logo", lambda w, a: branding.reset_logo(a, "logo")),
    superadmin_only("branding.prune_unreferenced",
                    lambda w, a: in_tmp_uploads(lambda: branding.prune_unreferenced(a))),
    logged_in("dashboard.dashboard_stats", lambda w, a: dashboard.dashboard_stats(a)),
    Case("dashboard.dashboard_stats",
         lambda w, a: dashboard.dashboard_stats(a, owner_id=w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    superadmin_only("activity.list_activity", lambda w, a: activity.list_activity(a)),
    superadmin_only("activity.list_activity",
                    lambda w, a: activity.list_activity(a, system_only=True),
                    variant="system_only"),
    superadmin_only("activity.filter_options", lambda w, a: activity.filter_options(a)),
    superadmin_only("maintenance.cleanup", lambda w, a: maintenance.cleanup(a)),
    superadmin_only("backup.run_backup", lambda w, a: run_backup_in_tmp(a)),
    superadmin_only("backup.list_backups",
                    lambda w, a: backup.list_backups(a, backup_dir=Path(tempfile.gettempdir()))),
    # The superadmin gets past the permission check to the missing file.
    Case("backup.restore_backup",
         lambda w, a: backup.restore_backup(a, "/nonexistent/fibernode-20000101-000000.dump",
                                            "sqlite:////nonexistent/restore.db"),
         superadmin=NotFound, owning_mitra=PermissionDenied, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="missing-file"),
    superadmin_only("revenue_months.close_months", lambda w, a: revenue_months.close_months(a)),
    superadmin_only("seed.seed", lambda w, a: seed.seed(a, demo=True)),
    logged_in("packages.list_packages", lambda w, a: packages.list_packages(a)),
    logged_in("packages.list_packages",
              lambda w, a: packages.list_packages(a, include_inactive=True),
              variant="include_inactive"),
    logged_in("packages.get_package",
              lambda w, a: packages.get_package(a, package_id("Paket 10 Mbps"))),
    superadmin_only("packages.create_package",
                    lambda w, a: packages.create_package(a, "Paket 200 Mbps", "200 Mbps",
                                                         500_000)),
    superadmin_only("packages.update_package",
                    lambda w, a: packages.update_package(a, package_id("Paket 10 Mbps"),
                                                         price=110_000)),
    superadmin_only("packages.set_package_active",
                    lambda w, a: packages.set_package_active(a, package_id("Paket 30 Mbps"),
                                                             False)),
    superadmin_only("packages.delete_package",
                    lambda w, a: packages.delete_package(a, package_id("Paket 100 Mbps")),
                    variant="unused-package"),
    logged_in("customers.create_customer", lambda w, a: new_customer(a)),
    Case("customers.create_customer",
         lambda w, a: new_customer(a, owner_id=w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    Case("customers.get_customer",
         lambda w, a: customers.get_customer(a, mitra1_customer_id(w)),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="customer-of-mitra1"),
    logged_in("customers.list_customers", lambda w, a: customers.list_customers(a)),
    Case("customers.list_customers",
         lambda w, a: customers.list_customers(a, owner_id=w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    Case("customers.update_customer",
         lambda w, a: customers.update_customer(a, mitra1_customer_id(w),
                                                phone="081299998888", discount=5_000),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="phone+discount-of-mitra1"),
    Case("customers.update_customer",
         lambda w, a: customers.update_customer(a, mitra1_customer_id(w), name="Nama Lain"),
         superadmin=OK, owning_mitra=PermissionDenied, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="name-of-mitra1"),
    Case("history.customer_history",
         lambda w, a: history.customer_history(a, mitra1_customer_id(w)),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired),
    superadmin_only("customers.delete_customer",
                    lambda w, a: customers.delete_customer(a, mitra1_customer_id(w))),
    superadmin_only("customers.set_isolated",
                    lambda w, a: customers.set_isolated(a, mitra1_customer_id(w), True,
                                                        "Belum bayar 2 bulan")),
    superadmin_only("customers.set_inactive",
                    lambda w, a: customers.set_inactive(a, mitra1_customer_id(w), True)),
    superadmin_only("customers.move_customers",
                    lambda w, a: customers.move_customers(a, [mitra1_customer_id(w)],
                                                          mitra2_id())),
    superadmin_only("imports.upload_import",
                    lambda w, a: imports.upload_import(a, "pelanggan.csv", IMPORT_CSV)),
    superadmin_only("imports.list_imports", lambda w, a: imports.list_imports(a)),
    superadmin_only("imports.get_import",
                    lambda w, a: imports.get_import(a, previewed_import_id(w))),
    Case("imports.get_import", lambda w, a: imports.get_import(a, unknown_id()),
         superadmin=NotFound, owning_mitra=PermissionDenied, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="unknown-import"),
    superadmin_only("imports.confirm_import",
                    lambda w, a: imports.confirm_import(a, previewed_import_id(w))),
    superadmin_only("imports.cancel_import",
                    lambda w, a: imports.cancel_import(a, previewed_import_id(w))),
    superadmin_only("imports.error_report_csv",
                    lambda w, a: imports.error_report_csv(a, previewed_import_id(w))),
    logged_in("invoices.list_invoices", lambda w, a: invoices.list_invoices(a)),
    Case("invoices.list_invoices",
         lambda w, a: invoices.list_invoices(a, owner_id=w.mitra_a.user_id, status="overdue"),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    Case("invoices.get_invoice",
         lambda w, a: invoices.get_invoice(a, mitra1_invoice_id(w)),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="invoice-of-mitra1"),
    Case("invoices.list_payments",
         lambda w, a: invoices.list_payments(a, mitra1_invoice_id(w, paid=True)),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="invoice-of-mitra1"),
    Case("invoices.pay_invoice",
         lambda w, a: invoices.pay_invoice(a, mitra1_invoice_id(w), version=1, method="cash"),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="invoice-of-mitra1"),
    Case("invoices.unpay_invoice",
         lambda w, a: invoices.unpay_invoice(a, mitra1_invoice_id(w, paid=True), version=1,
                                             reason="Salah catat"),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="paid-invoice-of-mitra1"),
    logged_in("invoices.overdue_by_owner", lambda w, a: invoices.overdue_by_owner(a)),
    superadmin_only("invoices.refresh_overdue_digest",
                    lambda w, a: invoices.refresh_overdue_digest(a)),
    logged_in("dashboard.due_soon", lambda w, a: dashboard.due_soon(a)),
    Case("dashboard.due_soon",
         lambda w, a: dashboard.due_soon(a, owner_id=w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("dashboard.overdue_digest", lambda w, a: dashboard.overdue_digest(a)),
    logged_in("finance.headline", lambda w, a: finance.headline(a)),
    Case("finance.headline",
         lambda w, a: finance.headline(a, owner_id=w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("finance.period_totals", lambda w, a: finance.period_totals(a, "2026-11")),
    Case("finance.period_totals",
         lambda w, a: finance.period_totals(a, "2026-11", w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("finance.revenue", lambda w, a: finance.revenue(a, "2026-11")),
    Case("finance.revenue",
         lambda w, a: finance.revenue(a, "2026-11", w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("dashboard.overview", lambda w, a: dashboard.overview(a)),
    Case("dashboard.overview", lambda w, a: dashboard.overview(a, w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("finance.overview", lambda w, a: finance.overview(a)),
    Case("finance.overview", lambda w, a: finance.overview(a, w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("finance.recap_records", lambda w, a: list(finance.recap_records(a, *FIN_RANGE))),
    Case("finance.recap_records",
         lambda w, a: list(finance.recap_records(a, *FIN_RANGE, w.mitra_a.user_id)),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("finance.series", lambda w, a: finance.series(a)),
    Case("finance.series",
         lambda w, a: finance.series(a, w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("finance.year_summary", lambda w, a: finance.year_summary(a, 2026)),
    Case("finance.year_summary",
         lambda w, a: finance.year_summary(a, 2026, w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("finance.month_detail", lambda w, a: finance.month_detail(a, "2026-11")),
    Case("finance.month_detail",
         lambda w, a: finance.month_detail(a, "2026-11", w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("finance.by_date", lambda w, a: finance.by_date(a, FIN_DAY)),
    Case("finance.by_date",
         lambda w, a: finance.by_date(a, FIN_DAY, w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    superadmin_only("finance.by_mitra", lambda w, a: finance.by_mitra(a, "2026-11")),
    logged_in("finance.mitra_performance", lambda w, a: finance.mitra_performance(a, "2026-11")),
    Case("finance.mitra_performance",
         lambda w, a: finance.mitra_performance(a, "2026-11", w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("finance.package_popularity", lambda w, a: finance.package_popularity(a, "2026-11")),
    Case("finance.package_popularity",
         lambda w, a: finance.package_popularity(a, "2026-11", w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("finance.aging", lambda w, a: finance.aging(a)),
    Case("finance.aging",
         lambda w, a: finance.aging(a, owner_id=w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("finance.recap_totals", lambda w, a: finance.recap_totals(a, *FIN_RANGE)),
    Case("finance.recap_totals",
         lambda w, a: finance.recap_totals(a, *FIN_RANGE, w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("finance.recap_rows", lambda w, a: list(finance.recap_rows(a, *FIN_RANGE))),
    Case("finance.recap_rows",
         lambda w, a: list(finance.recap_rows(a, *FIN_RANGE, w.mitra_a.user_id)),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    Case("finance.settlement",
         lambda w, a: finance.settlement(a, w.mitra_a.user_id, "2026-11"),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    Case("receipts.start_receipt_bundle", lambda w, a: start_bundle_of_mitra1(w, a),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner=mitra1"),
    Case("payment_proofs.attach_proof", lambda w, a: with_proof_of_mitra1(w, a, "attach"),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="invoice-of-mitra1"),
    Case("payment_proofs.list_proofs", lambda w, a: with_proof_of_mitra1(w, a, "list"),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="invoice-of-mitra1"),
    Case("payment_proofs.get_proof", lambda w, a: with_proof_of_mitra1(w, a, "get"),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="proof-of-mitra1"),
    Case("payment_proofs.proof_file", lambda w, a: with_proof_of_mitra1(w, a, "file"),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="proof-of-mitra1"),
    Case("payment_proofs.delete_proof", lambda w, a: with_proof_of_mitra1(w, a, "delete"),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="proof-of-mitra1"),
    superadmin_only("payment_proofs.prune_orphan_files",
                    lambda w, a: payment_proofs.prune_orphan_files(a)),
    logged_in("finance_files.write_recap",
              lambda w, a: finance_files.write_recap(a, io.BytesIO(), start=FIN_RANGE[0],
                                                     end=FIN_RANGE[1], fmt="csv")),
    Case("finance_files.write_recap",
         lambda w, a: finance_files.write_recap(a, io.BytesIO(), start=FIN_RANGE[0],
                                                end=FIN_RANGE[1], fmt="xlsx",
                                                owner_id=w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("finance_files.write_report",
              lambda w, a: finance_files.write_report(a, io.BytesIO(), report="monthly_sales",
                                                      fmt="xlsx", year=2026)),
    Case("finance_files.write_report",
         lambda w, a: finance_files.write_report(a, io.BytesIO(), report="aging", fmt="pdf",
                                                 owner_id=w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="aging-owner_id=mitra1"),
    Case("finance_files.write_settlement",
         lambda w, a: finance_files.write_settlement(a, io.BytesIO(),
                                                     owner_id=w.mitra_a.user_id,
                                                     period="2026-11"),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("finance_files.start_recap",
              lambda w, a: finance_file_job(lambda: finance_files.start_recap(
                  a, start=FIN_RANGE[0], end=FIN_RANGE[1], fmt="xlsx"))),
    Case("finance_files.start_recap",
         lambda w, a: finance_file_job(lambda: finance_files.start_recap(
             a, start=FIN_RANGE[0], end=FIN_RANGE[1], fmt="csv", owner_id=w.mitra_a.user_id)),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("finance_files.start_report",
              lambda w, a: finance_file_job(lambda: finance_files.start_report(
                  a, report="package_popularity", fmt="pdf", period="2026-11"))),
    Case("finance_files.start_report",
         lambda w, a: finance_file_job(lambda: finance_files.start_report(
             a, report="mitra_performance", fmt="xlsx", period="2026-11",
             owner_id=w.mitra_a.user_id)),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    Case("finance_files.start_settlement",
         lambda w, a: finance_file_job(lambda: finance_files.start_settlement(
             a, owner_id=w.mitra_a.user_id, period="2026-11")),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    Case("filejobs.get_file_job",
         lambda w, a: filejobs.get_file_job(a, mitra1_file_job_id(w)),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="job-of-mitra1"),
    Case("filejobs.file_job_path", lambda w, a: finished_file_of_mitra1(w, a),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="job-of-mitra1"),
    superadmin_only("wa_config.get_wa_config", lambda w, a: wa_config.get_wa_config(a)),
    superadmin_only("wa_config.update_wa_config",
                    lambda w, a: wa_config.update_wa_config(a, {"max_per_day": 250})),
    superadmin_only("wa_queue.enqueue_reminders",
                    lambda w, a: wa_queue.enqueue_reminders(a)),
    Case("wa_queue.enqueue_bulk",
         lambda w, a: wa_queue.enqueue_bulk(a, owner_id=w.mitra_a.user_id, items=[
             wa_queue.BulkItem(None, None, "6281200000001", "Halo", "perm:bulk")]),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner=mitra1"),
    logged_in("wa_queue.queue_counts", lambda w, a: wa_queue.queue_counts(a)),
    Case("wa_queue.queue_counts",
         lambda w, a: wa_queue.queue_counts(a, owner_id=w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("wa_queue.list_queue", lambda w, a: wa_queue.list_queue(a, status="pending")),
    Case("wa_queue.list_queue",
         lambda w, a: wa_queue.list_queue(a, owner_id=w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("wa_queue.queue_overview", lambda w, a: wa_queue.queue_overview(a)),
    Case("wa_queue.queue_overview",
         lambda w, a: wa_queue.queue_overview(a, owner_id=w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    Case("wa_queue.retry_message",
         lambda w, a: wa_queue.retry_message(a, mitra1_queue_id(w, "failed")),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="failed-of-mitra1"),
    Case("wa_direct.resend",
         lambda w, a: wa_direct.resend(a, mitra1_log_id(w, "failed")),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="failed-of-mitra1"),
    Case("whatsapp.resend_message",
         lambda w, a: whatsapp.resend_message(a, mitra1_log_id(w, "uncertain")),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="uncertain-of-mitra1"),
    Case("wa_queue.cancel_message",
         lambda w, a: wa_queue.cancel_message(a, mitra1_queue_id(w, "pending")),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="pending-of-mitra1"),
    logged_in("wa_queue.resume_queue", lambda w, a: wa_queue.resume_queue(a)),
    Case("wa_queue.resume_queue",
         lambda w, a: wa_queue.resume_queue(a, owner_id=w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    superadmin_only("billing.run_billing",
                    lambda w, a: billing.run_billing(a, period=next_period())),
    superadmin_only("billing.preview_billing",
                    lambda w, a: billing.preview_billing(a, period=next_period())),
    superadmin_only("wa_templates.list_templates", lambda w, a: wa_templates.list_templates(a)),
    superadmin_only("wa_templates.update_template",
                    lambda w, a: wa_templates.update_template(
                        a, "isolation", "Halo {nama_pelanggan}, layanan diisolir.")),
    superadmin_only("wa_templates.reset_template",
                    lambda w, a: wa_templates.reset_template(a, "receipt")),
    logged_in("whatsapp.get_status", lambda w, a: whatsapp.get_status(a)),
    Case("whatsapp.get_status",
         lambda w, a: whatsapp.get_status(a, owner_id=w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("whatsapp.start_link", lambda w, a: whatsapp.start_link(a)),
    logged_in("whatsapp.refresh_link", lambda w, a: whatsapp.refresh_link(a)),
    logged_in("whatsapp.logout", lambda w, a: whatsapp.logout(a)),
    Case("whatsapp.logout", lambda w, a: whatsapp.logout(a, owner_id=w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("whatsapp.send_test",
              lambda w, a: (wa_connect_all(), whatsapp.send_test(a, "081234567890"))),
    logged_in("whatsapp.check_number",
              lambda w, a: (wa_connect_all(), whatsapp.check_number(a, "081234567890"))),
    Case("whatsapp.compose",
         lambda w, a: whatsapp.compose(a, mitra1_customer_id(w), "isolation"),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="customer-of-mitra1"),
    Case("whatsapp.send_manual",
         lambda w, a: (wa_connect_all(),
                       whatsapp.send_manual(a, mitra1_customer_id(w), "custom", "Halo!")),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="customer-of-mitra1"),
    logged_in("whatsapp.preview_bulk",
              lambda w, a: whatsapp.preview_bulk(a, filter="unpaid", template="custom",
                                                 text="Halo {nama_pelanggan}")),
    Case("whatsapp.send_bulk",
         lambda w, a: (wa_connect_all(),
                       whatsapp.send_bulk(a, customer_ids=[mitra1_customer_id(w)],
                                          template="custom", text="Halo {nama_pelanggan}")),
         superadmin=OK, owning_mitra=OK, other_mitra=Conflict,
         anonymous=AuthenticationRequired, variant="customer-of-mitra1"),
    Case("whatsapp.resend_receipt",
         lambda w, a: (wa_connect_all(),
                       whatsapp.resend_receipt(a, mitra1_invoice_id(w, paid=True))),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="invoice-of-mitra1"),
    Case("whatsapp.resend_reminder",
         lambda w, a: (wa_connect_all(), whatsapp.resend_reminder(a, mitra1_invoice_id(w))),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired, variant="invoice-of-mitra1"),
    logged_in("whatsapp.list_logs", lambda w, a: whatsapp.list_logs(a)),
    # Cloud API: only the superadmin manages numbers and templates (the Graph API
    # check is answered here, the real call is tested in tests/whatsapp/test_cloud.py).
    superadmin_only("wa_cloud.set_credentials", lambda w, a: wa_cloud.set_credentials(
        a, w.mitra_a.user_id, "106540352242922", "EAAG-permission-matrix-token-0000",
        verify=lambda _p, _t: wa_cloud.VerifiedNumber("+62 811-0000-0001"))),
    superadmin_only("wa_cloud.list_credentials", lambda w, a: wa_cloud.list_credentials(a)),
    superadmin_only("wa_cloud.list_template_settings",
                    lambda w, a: wa_cloud.list_template_settings(a)),
    superadmin_only("wa_cloud.update_template_settings",
                    lambda w, a: wa_cloud.update_template_settings(a, {}, "id")),
    Case("wa_cloud.customer_replies",
         lambda w, a: wa_cloud.customer_replies(a, mitra1_customer_id(w)),
         superadmin=OK, owning_mitra=OK, other_mitra=NotFound,
         anonymous=AuthenticationRequired),
    Case("whatsapp.list_logs",
         lambda w, a: whatsapp.list_logs(a, owner_id=w.mitra_a.user_id),
         superadmin=OK, owning_mitra=OK, other_mitra=PermissionDenied,
         anonymous=AuthenticationRequired, variant="owner_id=mitra1"),
    logged_in("whatsapp.failure_spike", lambda w, a: whatsapp.failure_spike(a)),
    logged_in("whatsapp.notifications", lambda w, a: whatsapp.notifications(a)),
]


def wa_connect_all():
    """Every owner's WhatsApp session connected, written directly (no audit row)."""
    from fibernode.models import WaSession, WaSessionStatus

    with new_session() as s:
        for user_id in s.exec(select(User.id)).all():
            if s.exec(select(WaSession).where(WaSession.user_id == user_id)).first() is None:
                s.add(WaSession(user_id=user_id, status=WaSessionStatus.CONNECTED))
        s.commit()

IMPORT_CSV = (b"nama,telepon,diskon,tanggal,area,paket_nama,paket_tarif,total_bayar,nik,"
              b"tanggal_register\nImpor Baru,081277776666,0,5,WiFi Sukamaju,Paket 10 Mbps,"
              b"100000,100000,,2025-01-15\n")


def previewed_import_id(world):
    """A previewed one-row import for mitra1, inserted directly so that making it writes
    no audit row (the matrix checks that a refused call leaves the audit trail as it was)."""
    from fibernode.models import ImportJob, ImportRow, ImportRowOutcome, ImportStatus

    pkg = package_id("Paket 10 Mbps")
    with new_session() as s:
        job = ImportJob(created_by=world.admin.user_id, filename="pelanggan.csv",
                        status=ImportStatus.PREVIEWED, total_rows=1, valid_rows=1,
                        progress_done=1, progress_total=1)
        s.add(job)
        s.flush()
        s.add(ImportRow(job_id=job.id, line_no=2, raw={"nama": "Impor Baru"},
                        outcome=ImportRowOutcome.VALID, data={
                            "owner_id": str(world.mitra_a.user_id), "package_id": str(pkg),
                            "name": "Impor Baru", "phone": "6281277776666", "nik": None,
                            "billing_date": 5, "discount": 0, "total_bill": 100_000,
                            "price": 100_000, "register_date": "2025-01-15"}))
        s.commit()
        return job.id


def mitra1_invoice_id(world, *, paid: bool = False):
    """An invoice of mitra1's subscriber (paid in full in cash when ``paid``), inserted
    directly so that making it writes no audit row."""
    import secrets
    from datetime import date

    from fibernode import clock
    from fibernode.models import Invoice, Payment, PaymentMethod, PaymentStatus

    with new_session() as s:
        cust = s.get(Customer, mitra1_customer_id(world))
        inv = Invoice(customer_id=cust.id, owner_id=cust.owner_id, period="2026-03",
                      amount=cust.total_bill + cust.discount, discount=cust.discount,
                      total_amount=cust.total_bill, due_date=date(2026, 3, cust.billing_date),
                      receipt_token=secrets.token_urlsafe(24))
        if paid:
            inv.paid_amount, inv.status = cust.total_bill, PaymentStatus.PAID
            inv.paid_at, inv.paid_by, inv.payment_method = clock.now(), cust.owner_id, "cash"
        s.add(inv)
        s.flush()
        if paid:
            s.add(Payment(invoice_id=inv.id, owner_id=cust.owner_id, amount=cust.total_bill,
                          method=PaymentMethod.CASH, recorded_by=cust.owner_id))
        s.commit()
        return inv.id


def mitra1_queue_id(world, status: str):
    """A queued message of mitra1 in ``status``, inserted directly (no audit row)."""
    import uuid

    from fibernode import clock
    from fibernode.models import WaMessageQueue
    from fibernode.services.wa_sessions import ensure_session

    with new_session() as s:
        session_id = ensure_session(s, world.mitra_a.user_id).id
        row = WaMessageQueue(session_id=session_id, owner_id=world.mitra_a.user_id,
                             message_type="custom", phone="6281200000009", content="Halo",
                             status=status, scheduled_at=clock.now(),
                             idempotency_key=f"perm:{uuid.uuid4()}")
        s.add(row)
        s.commit()
        return row.id


def mitra1_log_id(world, status: str):
    """A direct message of mitra1 in the log in ``status``, inserted directly (no audit)."""
    import uuid

    from fibernode import clock
    from fibernode.models import WaMessageLog

    with new_session() as s:
        row = WaMessageLog(owner_id=world.mitra_a.user_id, message_type="custom",
                           phone="6281200000009", content="Halo", status=status,
                           idempotency_key=f"perm:{uuid.uuid4()}", sent_at=clock.now())
        s.add(row)
        s.commit()
        return row.id


def start_bundle_of_mitra1(world, actor: Actor):
    """Ask for mitra1's March receipts, without sending anything to a Celery broker."""
    mitra1_invoice_id(world, paid=True)
    with recorded_jobs():
        return receipts.start_receipt_bundle(actor, owner_id=world.mitra_a.user_id,
                                             period="2026-03")


def finance_file_job(start):
    """Ask for a finance file job without sending anything to a Celery broker."""
    with recorded_jobs():
        return start()


def mitra1_file_job_id(world, *, path: str | None = None):
    """A file job created by mitra1 (done when ``path`` is given), inserted directly."""
    from datetime import timedelta

    from fibernode import clock
    from fibernode.models import FileJob, FileJobStatus

    with new_session() as s:
        job = FileJob(created_by=world.mitra_a.user_id, kind="receipt_bundle",
                      filename="nota.pdf", path=path,
                      status=FileJobStatus.DONE if path else FileJobStatus.PENDING,
                      expires_at=clock.now() + timedelta(hours=1))
        s.add(job)
        s.commit()
        return job.id


def finished_file_of_mitra1(world, actor: Actor):
    """The download path of a finished job of mitra1, its file in a temporary data dir."""
    import os
    import tempfile
    from unittest import mock

    from fibernode.config import reset_settings

    with tempfile.TemporaryDirectory() as tmp, \
            mock.patch.dict(os.environ, {"FIBERNODE_DATA_DIR": tmp}):
        reset_settings()
        try:
            job_id = mitra1_file_job_id(world, path="receipts/nota.pdf")
            (filejobs.files_root() / "receipts").mkdir(parents=True)
            (filejobs.files_root() / "receipts" / "nota.pdf").write_bytes(b"%PDF-1.4")
            return filejobs.file_job_path(actor, job_id)
        finally:
            reset_settings()


def in_tmp_uploads(call):
    """Run ``call`` with a throw-away uploads volume (the logo pipeline writes files)."""
    import os
    import tempfile
    from unittest import mock

    from fibernode.config import reset_settings

    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, {"UPLOADS_DIR": tmp}):
        reset_settings()
        try:
            return call()
        finally:
            reset_settings()


def small_logo_png() -> bytes:
    """A 64 × 64 PNG logo."""
    import cv2
    import numpy as np

    img = np.zeros((64, 64, 4), np.uint8)
    cv2.circle(img, (32, 32), 24, (40, 40, 220, 255), -1)
    return cv2.imencode(".png", img)[1].tobytes()


def with_proof_of_mitra1(world, actor: Actor, action: str):
    """A proof photo use case on mitra1's paid invoice, with a proof (its original file
    in a temporary uploads directory) inserted directly, so that making it writes no
    audit row; nothing goes to a Celery broker."""
    import os
    import tempfile
    from unittest import mock

    from fibernode.config import reset_settings
    from fibernode.models import Payment, PaymentProof
    from tests.services import proof_image_data as gen

    slip = gen.encode(gen.screenshot())
    with tempfile.TemporaryDirectory() as tmp, \
            mock.patch.dict(os.environ, {"UPLOADS_DIR": tmp}), recorded_jobs():
        reset_settings()
        try:
            invoice_id = mitra1_invoice_id(world, paid=True)
            relative = f"proofs/{world.mitra_a.user_id}/2026-03/p-orig.jpg"
            (Path(tmp) / relative).parent.mkdir(parents=True)
            (Path(tmp) / relative).write_bytes(slip)
            with new_session() as s:
                payment = s.exec(select(Payment).where(Payment.invoice_id == invoice_id)).one()
                proof = PaymentProof(owner_id=world.mitra_a.user_id, payment_id=payment.id,
                                     invoice_id=invoice_id, original_filename="slip.jpg",
                                     original_path=relative, original_mime="image/jpeg",
                                     original_size=len(slip), original_sha256="0" * 64)
                s.add(proof)
                s.commit()
                proof_id = proof.id
            return {
                "attach": lambda: payment_proofs.attach_proof(actor, invoice_id, slip, "a.jpg"),
                "list": lambda: payment_proofs.list_proofs(actor, invoice_id),
                "get": lambda: payment_proofs.get_proof(actor, proof_id),
                "file": lambda: payment_proofs.proof_file(actor, proof_id, "original"),
                "delete": lambda: payment_proofs.delete_proof(actor, proof_id),
            }[action]()
        finally:
            reset_settings()


def run_backup_in_tmp(actor: Actor):
    """A real backup of the test database into a throwaway directory."""
    from fibernode.db import get_engine

    with tempfile.TemporaryDirectory() as tmp:
        return backup.run_backup(actor, backup_dir=Path(tmp), database_url=get_engine().url
                                 .render_as_string(hide_password=False))


def unknown_id():
    import uuid

    return uuid.uuid4()


def next_period() -> str:
    """Next month's invoice period, the usual manual billing run."""
    from fibernode import clock

    return billing.period_after(clock.today())


def audit_count() -> int:
    with new_session() as s:
        return s.exec(select(sa.func.count()).select_from(ActivityLog)).one()


@pytest.mark.parametrize(
    ("case", "actor_key"),
    [pytest.param(case, key, id=f"{case.id}-{key}") for case in MATRIX for key in ACTORS],
)
def test_permission_matrix(world, case: Case, actor_key: str):
    expected = getattr(case, actor_key)
    actor = pick(world, actor_key)
    if expected == OK:
        case.call(world, actor)
        return
    before = audit_count()
    with pytest.raises(expected) as exc:
        case.call(world, actor)
    # Exactly that class, not a subclass standing in for it, with a user-facing message.
    assert type(exc.value) is expected
    assert exc.value.message
    # A refused call leaves no trace in the audit trail (it changed nothing).
    assert audit_count() == before


def discovered_use_cases() -> set[str]:
    """Every public module-level function in fibernode.services whose first parameter
    is ``actor``."""
    found = set()
    for info in pkgutil.iter_modules(fibernode.services.__path__):
        module = importlib.import_module(f"fibernode.services.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or fn.__module__ != module.__name__:
                continue
            params = list(inspect.signature(fn).parameters)
            if params and params[0] == "actor":
                found.add(f"{info.name}.{name}")
    return found


def test_matrix_covers_every_use_case():
    discovered = discovered_use_cases()
    covered = {case.use_case for case in MATRIX}
    missing = discovered - covered - NOT_USE_CASES
    assert not missing, f"use cases without a permission-matrix row: {sorted(missing)}"
    stale = (covered | NOT_USE_CASES) - discovered
    assert not stale, f"matrix rows for functions that no longer exist: {sorted(stale)}"


def test_matrix_ids_are_unique():
    ids = [case.id for case in MATRIX]
    assert len(ids) == len(set(ids))


# --- scoping -----------------------------------------------------------------------------


def test_dashboard_counts_only_the_actors_own_subscribers(world):
    assert dashboard.dashboard_stats(world.mitra_a).active_customers == 2
    assert dashboard.dashboard_stats(world.mitra_b).active_customers == 0
    assert dashboard.dashboard_stats(world.admin).active_customers == 3
    assert dashboard.dashboard_stats(
        world.admin, owner_id=world.mitra_a.user_id).active_customers == 2
    assert dashboard.dashboard_stats(
        world.admin, owner_id=world.mitra_b.user_id).active_customers == 0
    # A mitra naming itself is the same as not filtering.
    assert dashboard.dashboard_stats(
        world.mitra_a, owner_id=world.mitra_a.user_id).active_customers == 2


def test_list_owners_for_a_mitra_is_only_itself(world):
    assert [o.id for o in users.list_owners(world.mitra_a)] == [world.mitra_a.user_id]
    assert [o.business_name for o in users.list_owners(world.mitra_b)] == ["Net Mekarjaya"]
    assert sorted(o.business_name for o in users.list_owners(world.admin)) == [
        "FiberNode Pusat", "Net Mekarjaya", "WiFi Sukamaju"]


def test_list_owners_hides_inactive_owners(world):
    users.set_user_active(world.admin, world.user_id("mitra2"), False)
    assert "Net Mekarjaya" not in {o.business_name for o in users.list_owners(world.admin)}


def test_system_actor_sees_everything(world):
    assert dashboard.dashboard_stats(Actor.system("report")).active_customers == 3
    assert len(users.list_owners(Actor.system("report"))) == 3
