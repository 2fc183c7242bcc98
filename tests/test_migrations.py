"""The alembic migrations: fresh upgrade, no drift from the models, clean downgrade,
and the constraints the schema promises, on PostgreSQL and SQLite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.command import downgrade, upgrade
from alembic.migration import MigrationContext
from sqlmodel import SQLModel, select

import fibernode.models  # noqa: F401  (registers every table)
from fibernode import clock
from fibernode.cli import alembic_config
from fibernode.db import create_engine_for, new_session
from fibernode.models import (
    ActivityLog,
    Customer,
    Invoice,
    Package,
    Payment,
    PaymentMethod,
    User,
    UserRole,
    UserSession,
    include_in_autogenerate,
)
from fibernode.services import auth, users
from fibernode.services.context import Actor
from fibernode.services.seed import seed
from tests.conftest import create_pg_database, drop_pg_database
from tests.factories import MITRA_PASSWORD

TABLES = {
    "users", "packages", "customers", "invoices", "payments", "wa_sessions",
    "wa_message_logs", "settings", "refresh_tokens", "activity_logs", "wa_message_queue",
    "login_attempts", "user_sessions", "import_jobs", "import_rows", "file_jobs",
    "wa_numbers", "wa_outbox", "revenue_months", "payment_proofs", "payment_proof_steps",
    "recovery_codes", "trusted_devices", "wa_inbound_messages",
}
FK_VIOLATION = "(?i)foreign key"
ENUM_TYPES = {"user_role", "payment_status", "customer_status", "wa_session_status",
              "payment_method", "import_status", "import_row_outcome", "file_job_status"}
HEAD = "0011"
TABLES_0004 = {"wa_numbers", "wa_outbox"}
TABLES_0005 = {"revenue_months"}
TABLES_0006 = {"payment_proofs", "payment_proof_steps"}
TABLES_0007 = {"recovery_codes"}
TABLES_0008 = {"trusted_devices"}
TABLES_0011 = {"wa_inbound_messages"}


def alembic(engine: sa.Engine, action: str, revision: str) -> None:
    """Run ``alembic upgrade|downgrade revision`` on ``engine``."""
    run = {"upgrade": upgrade, "downgrade": downgrade}[action]
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        cfg.attributes["configure_logger"] = False
        run(cfg, revision)


def tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def drift(engine: sa.Engine) -> list:
    """What autogenerate would change to make the database match the models."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True, "include_object": include_in_autogenerate})
        return compare_metadata(context, SQLModel.metadata)


def pg_enum_types(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(
            sa.text("SELECT typname FROM pg_type WHERE typname = ANY(:names)"),
            {"names": list(ENUM_TYPES)},
        ).scalars())


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request, tmp_path) -> Iterator[sa.Engine]:
    """An engine on a brand-new, never migrated database."""
    if request.param == "sqlite":
        engine = create_engine_for(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield engine
        engine.dispose()
        return
    name, url = create_pg_database("fibernode_migration")
    engine = create_engine_for(url)
    try:
        yield engine
    finally:
        engine.dispose()
        drop_pg_database(name)


def test_upgrade_head_creates_every_table(fresh):
    assert tables(fresh) == set()
    alembic(fresh, "upgrade", "head")
    assert tables(fresh) == TABLES | {"alembic_version"}
    with fresh.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() \
            == HEAD
    if fresh.dialect.name == "postgresql":
        assert pg_enum_types(fresh) == ENUM_TYPES


def test_models_and_migrations_do_not_drift(fresh):
    alembic(fresh, "upgrade", "head")
    assert drift(fresh) == []
    # The comparison really reads the database: against no models, every table would go.
    with fresh.connect() as conn:
        context = MigrationContext.configure(conn)
        removed = {diff[1].name for diff in compare_metadata(context, sa.MetaData())
                   if diff[0] == "remove_table"}
    assert removed == TABLES


def test_downgrade_to_base_removes_everything(fresh):
    alembic(fresh, "upgrade", "head")
    alembic(fresh, "downgrade", "base")

    # Alembic keeps its (now empty) bookkeeping table.
    assert tables(fresh) == {"alembic_version"}
    with fresh.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 0
    if fresh.dialect.name == "postgresql":
        assert pg_enum_types(fresh) == set()

    # And the round trip works: nothing left behind blocks a new upgrade.
    alembic(fresh, "upgrade", "head")
    assert tables(fresh) == TABLES | {"alembic_version"}
    assert drift(fresh) == []


def customer_indexes(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            sql = "SELECT indexname FROM pg_indexes WHERE tablename = 'customers'"
        else:
            sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'customers'"
        return set(conn.execute(sa.text(sql)).scalars())


def test_import_tables_and_search_indexes_downgrade_to_0001_and_back(fresh):
    alembic(fresh, "upgrade", "head")
    search = {"idx_customers_search_trgm"}
    if fresh.dialect.name == "postgresql":
        assert customer_indexes(fresh) >= search
    else:
        assert not customer_indexes(fresh) & search
    alembic(fresh, "downgrade", "0001")
    later = ({"import_jobs", "import_rows", "file_jobs"} | TABLES_0004 | TABLES_0005
             | TABLES_0006 | TABLES_0007 | TABLES_0008 | TABLES_0011)
    assert tables(fresh) == TABLES - later | {"alembic_version"}
    assert not customer_indexes(fresh) & search
    if fresh.dialect.name == "postgresql":
        assert pg_enum_types(fresh) == ENUM_TYPES - {"import_status", "import_row_outcome",
                                                     "file_job_status"}
    alembic(fresh, "upgrade", "head")
    assert tables(fresh) == TABLES | {"alembic_version"}
    assert drift(fresh) == []


INDEXES_0003 = {"idx_invoices_period_due", "idx_invoices_owner_due", "idx_invoices_open_due",
                "idx_payments_reversed"}


def indexes_0003(engine: sa.Engine) -> set[str]:
    inspector = sa.inspect(engine)
    names = {ix["name"] for table in ("invoices", "payments")
             for ix in inspector.get_indexes(table)}
    return names & INDEXES_0003


def test_file_jobs_and_invoice_indexes_downgrade_to_0002_and_back(fresh):
    alembic(fresh, "upgrade", "head")
    assert indexes_0003(fresh) == INDEXES_0003
    alembic(fresh, "downgrade", "0002")
    assert tables(fresh) == (TABLES - {"file_jobs"} - TABLES_0004 - TABLES_0005 - TABLES_0006
                            - TABLES_0007 - TABLES_0008 - TABLES_0011 | {"alembic_version"})
    assert indexes_0003(fresh) == set()
    if fresh.dialect.name == "postgresql":
        assert pg_enum_types(fresh) == ENUM_TYPES - {"file_job_status"}
    alembic(fresh, "upgrade", "head")
    assert tables(fresh) == TABLES | {"alembic_version"}
    assert drift(fresh) == []


def pg_statistics(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT stxname FROM pg_statistic_ext")).scalars())


def test_invoice_statistics_on_postgresql(fresh):
    if fresh.dialect.name != "postgresql":
        pytest.skip("extended statistics are PostgreSQL's")
    alembic(fresh, "upgrade", "head")
    assert "stx_invoices_period_status" in pg_statistics(fresh)
    alembic(fresh, "downgrade", "0002")
    assert "stx_invoices_period_status" not in pg_statistics(fresh)


def test_open_invoice_index_is_partial(fresh):
    alembic(fresh, "upgrade", "head")
    with fresh.connect() as conn:
        if fresh.dialect.name == "postgresql":
            sql = "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_invoices_open_due'"
        else:
            sql = "SELECT sql FROM sqlite_master WHERE name = 'idx_invoices_open_due'"
        definition = conn.execute(sa.text(sql)).scalar()
    assert "paid_amount < total_amount" in definition.replace("(", "").replace(")", "")


def payments_recorded_index(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_payments_recorded_at'"
        )).scalar()


def test_payments_recorded_index_covers_the_revenue_sums(fresh):
    """0005 adds owner_id and amount to idx_payments_recorded_at (PostgreSQL; SQLite keeps
    the plain index) and goes down and up cleanly."""
    alembic(fresh, "upgrade", "head")
    names = {ix["name"] for ix in sa.inspect(fresh).get_indexes("payments")}
    assert "idx_payments_recorded_at" in names
    if fresh.dialect.name == "postgresql":
        assert "INCLUDE (owner_id, amount)" in payments_recorded_index(fresh)
    alembic(fresh, "downgrade", "0004")
    if fresh.dialect.name == "postgresql":
        assert "INCLUDE" not in payments_recorded_index(fresh)
    alembic(fresh, "upgrade", "head")
    assert drift(fresh) == []


# --- constraints on the migrated schema --------------------------------------------------


@pytest.fixture
def seeded(db):
    """The demo data, seeded through the service."""
    seed(Actor.system("seed"), demo=True)
    return db


def one(model, **where):
    with new_session() as s:
        q = select(model)
        for column, value in where.items():
            q = q.where(getattr(model, column) == value)
        return s.exec(q).one()


def invoice_for(customer: Customer, period: str) -> Invoice:
    return Invoice(customer_id=customer.id, owner_id=customer.owner_id, period=period,
                   amount=customer.total_bill, total_amount=customer.total_bill,
                   due_date=clock.today())


def add(*rows) -> None:
    with new_session() as s:
        s.add_all(rows)
        s.commit()


def execute(stmt) -> None:
    with new_session() as s:
        s.exec(stmt)
        s.commit()


def test_one_invoice_per_customer_and_period(seeded):
    ahmad = one(Customer, name="Ahmad Fauzi")
    add(invoice_for(ahmad, "2026-01"))
    add(invoice_for(ahmad, "2026-02"))
    with pytest.raises(sa.exc.IntegrityError, match="period"):
        add(invoice_for(ahmad, "2026-01"))
    # Another customer may have the same period.
    add(invoice_for(one(Customer, name="Dewi Lestari"), "2026-01"))


def test_business_name_is_unique(seeded):
    with pytest.raises(sa.exc.IntegrityError, match="business_name"):
        add(User(username="mitra9", password_hash="x", name="Sembilan", role=UserRole.MITRA,
                 business_name="WiFi Sukamaju"))


def test_username_is_unique(seeded):
    with pytest.raises(sa.exc.IntegrityError, match="username"):
        add(User(username="mitra1", password_hash="x", name="Kembar", role=UserRole.MITRA,
                 business_name="Net Kembar"))


def test_deleting_a_package_in_use_is_refused(seeded):
    with pytest.raises(sa.exc.IntegrityError, match=FK_VIOLATION):
        execute(sa.delete(Package).where(Package.name == "Paket 10 Mbps"))
    assert one(Package, name="Paket 10 Mbps")
    # An unused package can go.
    execute(sa.delete(Package).where(Package.name == "Paket 30 Mbps"))
    with new_session() as s:
        assert s.exec(select(Package).where(Package.name == "Paket 30 Mbps")).first() is None


def test_deleting_an_owner_of_subscribers_is_refused(seeded):
    with pytest.raises(sa.exc.IntegrityError, match=FK_VIOLATION):
        execute(sa.delete(User).where(User.username == "mitra1"))


def test_deleting_a_customer_cascades_to_invoices_and_payments(seeded):
    ahmad, dewi = one(Customer, name="Ahmad Fauzi"), one(Customer, name="Dewi Lestari")
    paid = invoice_for(ahmad, "2026-01")
    add(paid, invoice_for(ahmad, "2026-02"), invoice_for(dewi, "2026-01"))
    add(Payment(invoice_id=paid.id, owner_id=ahmad.owner_id, amount=100_000,
                method=PaymentMethod.CASH, recorded_by=ahmad.owner_id))

    execute(sa.delete(Customer).where(Customer.id == ahmad.id))

    with new_session() as s:
        assert [i.customer_id for i in s.exec(select(Invoice)).all()] == [dewi.id]
        assert s.exec(select(Payment)).all() == []


def test_deleting_a_user_keeps_their_audit_rows_without_the_user(seeded):
    mitra2 = auth.login(Actor.anonymous("10.9.0.1"), "mitra2", MITRA_PASSWORD).actor
    users.update_profile(mitra2, name="Siti R.")
    log_ids = [log.id for log in _logs_of(mitra2.user_id)]
    assert len(log_ids) == 2  # auth.login and user.profile_update

    execute(sa.delete(User).where(User.id == mitra2.user_id))

    with new_session() as s:
        rows = [s.get(ActivityLog, i) for i in log_ids]
        assert all(row is not None and row.user_id is None for row in rows)
        # Their web sessions go with them (CASCADE).
        assert s.exec(select(UserSession).where(
            UserSession.user_id == mitra2.user_id)).all() == []


def _logs_of(user_id: uuid.UUID) -> list[ActivityLog]:
    with new_session() as s:
        return list(s.exec(select(ActivityLog).where(ActivityLog.user_id == user_id)).all())


def test_check_constraints(seeded):
    ahmad = one(Customer, name="Ahmad Fauzi")
    bad = invoice_for(ahmad, "2026-03")
    bad.paid_amount = -1
    with pytest.raises(sa.exc.IntegrityError, match="ck_invoices_paid_amount"):
        add(bad)
    with pytest.raises(sa.exc.IntegrityError, match="ck_customers_billing_date"):
        execute(sa.update(Customer).where(Customer.id == ahmad.id).values(billing_date=29))


def test_whatsapp_revision_keeps_queued_rows_and_downgrades(fresh):
    """A row queued before 0004 gets its owner and a key; 0004 goes down and up cleanly."""
    alembic(fresh, "upgrade", "0003")
    with fresh.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO users (id, username, password_hash, name, role, business_name, "
            "is_active, created_at, updated_at) VALUES (:id, 'm', 'x', 'M', 'mitra', 'M', "
            "true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"id": USER_ID})
        conn.execute(sa.text(
            "INSERT INTO wa_sessions (id, user_id, status, created_at, updated_at) "
            "VALUES (:id, :user, 'disconnected', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
            {"id": SESSION_ID, "user": USER_ID})
        conn.execute(sa.text(
            "INSERT INTO wa_message_queue (id, session_id, message_type, phone, content, "
            "priority, status, retry_count, max_retries, scheduled_at, created_at, updated_at) "
            "VALUES (:id, :session, 'reminder', '6281234567890', 'x', 0, 'pending', 0, 3, "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
            {"id": QUEUE_ID, "session": SESSION_ID})
    alembic(fresh, "upgrade", "head")
    with fresh.connect() as conn:
        owner, key = conn.execute(sa.text(
            "SELECT owner_id, idempotency_key FROM wa_message_queue")).one()
    assert str(owner).replace("-", "") == USER_ID.replace("-", "")
    assert key.startswith("legacy:")
    alembic(fresh, "downgrade", "0003")
    assert tables(fresh) == (TABLES - TABLES_0004 - TABLES_0005 - TABLES_0006 - TABLES_0007
                            - TABLES_0008 - TABLES_0011 | {"alembic_version"})
    alembic(fresh, "upgrade", "head")
    assert drift(fresh) == []


USER_ID = "11111111-1111-4111-8111-111111111111"
SESSION_ID = "22222222-2222-4222-8222-222222222222"
QUEUE_ID = "33333333-3333-4333-8333-333333333333"


def test_payment_proof_tables_downgrade_to_0005_and_back(fresh):
    """0006 adds the proof photos and their processing log, and goes down and up cleanly."""
    alembic(fresh, "upgrade", "head")
    proof_indexes = {ix["name"] for ix in sa.inspect(fresh).get_indexes("payment_proofs")}
    assert {"idx_payment_proofs_owner_created", "idx_payment_proofs_payment",
            "idx_payment_proofs_invoice"} <= proof_indexes
    alembic(fresh, "downgrade", "0005")
    assert tables(fresh) == (TABLES - TABLES_0006 - TABLES_0007 - TABLES_0008 - TABLES_0011
                             | {"alembic_version"})
    alembic(fresh, "upgrade", "head")
    assert drift(fresh) == []


def test_two_factor_and_token_reason_columns_downgrade_to_0006_and_back(fresh):
    """0007 adds two-step login columns, recovery codes and refresh-token reasons."""
    alembic(fresh, "upgrade", "head")
    inspector = sa.inspect(fresh)
    assert {"totp_secret", "totp_enabled_at", "totp_last_step"} <= {
        c["name"] for c in inspector.get_columns("users")}
    assert "revoked_reason" in {c["name"] for c in inspector.get_columns("refresh_tokens")}
    assert "idx_refresh_tokens_family" in {
        ix["name"] for ix in inspector.get_indexes("refresh_tokens")}
    alembic(fresh, "downgrade", "0006")
    assert tables(fresh) == TABLES - TABLES_0007 - TABLES_0008 - TABLES_0011 | {"alembic_version"}
    assert "totp_secret" not in {c["name"] for c in sa.inspect(fresh).get_columns("users")}
    alembic(fresh, "upgrade", "head")
    assert drift(fresh) == []


def test_session_claim_columns_downgrade_to_0008_and_back(fresh):
    """0009 adds the one-time claim of a web login (the HttpOnly cookie hand-off)."""
    alembic(fresh, "upgrade", "head")
    columns = {c["name"] for c in sa.inspect(fresh).get_columns("user_sessions")}
    assert {"claim_hash", "claim_expires_at"} <= columns
    alembic(fresh, "downgrade", "0008")
    columns = {c["name"] for c in sa.inspect(fresh).get_columns("user_sessions")}
    assert not {"claim_hash", "claim_expires_at"} & columns
    alembic(fresh, "upgrade", "head")
    assert drift(fresh) == []


def test_wa_inbound_messages_downgrade_to_0009_and_back(fresh):
    """0011 adds the subscribers' inbound WhatsApp messages (Cloud API webhook)."""
    alembic(fresh, "upgrade", "head")
    assert "idx_wa_inbound_owner_phone" in {
        ix["name"] for ix in sa.inspect(fresh).get_indexes("wa_inbound_messages")}
    alembic(fresh, "downgrade", "0009")
    assert tables(fresh) == TABLES - TABLES_0011 | {"alembic_version"}
    alembic(fresh, "upgrade", "head")
    assert drift(fresh) == []


def test_trusted_devices_downgrade_to_0007_and_back(fresh):
    """0008 adds trusted devices and the device of each login attempt, and goes back."""
    alembic(fresh, "upgrade", "head")
    inspector = sa.inspect(fresh)
    assert "device_id" in {c["name"] for c in inspector.get_columns("login_attempts")}
    assert "idx_login_attempts_device_created" in {
        ix["name"] for ix in inspector.get_indexes("login_attempts")}
    assert "idx_trusted_devices_user" in {
        ix["name"] for ix in inspector.get_indexes("trusted_devices")}
    alembic(fresh, "downgrade", "0007")
    assert tables(fresh) == TABLES - TABLES_0008 - TABLES_0011 | {"alembic_version"}
    assert "device_id" not in {
        c["name"] for c in sa.inspect(fresh).get_columns("login_attempts")}
    alembic(fresh, "upgrade", "head")
    assert drift(fresh) == []
