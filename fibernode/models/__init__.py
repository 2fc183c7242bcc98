"""SQLModel tables: the spec's eleven tables, the ledger, sessions, imports and file jobs.

Money is an integer number of Rupiah. Every timestamp is timezone-aware.
Schema changes go through alembic only; ``SQLModel.metadata`` is what the
migrations are checked against.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from fibernode.models.types import (
    AwareDateTime,
    enum_column,
    fk,
    new_id,
    ts_column,
    utcnow,
)

__all__ = [
    "ActivityLog",
    "AwareDateTime",
    "Customer",
    "CustomerStatus",
    "FileJob",
    "FileJobStatus",
    "ImportJob",
    "ImportRow",
    "ImportRowOutcome",
    "ImportStatus",
    "Invoice",
    "LoginAttempt",
    "Package",
    "Payment",
    "PaymentMethod",
    "PaymentProof",
    "PaymentProofStatus",
    "PaymentProofStep",
    "PaymentStatus",
    "RecoveryCode",
    "RefreshToken",
    "RevenueMonth",
    "Setting",
    "TrustedDevice",
    "User",
    "UserRole",
    "UserSession",
    "WaInboundMessage",
    "WaMessageLog",
    "WaMessageQueue",
    "WaNumber",
    "WaOutbox",
    "WaSession",
    "WaSessionStatus",
    "include_in_autogenerate",
    "utcnow",
]

# Made by migration 0002 on PostgreSQL only, where pg_trgm can be installed, so not part
# of the models: autogenerate ignores them instead of proposing to drop or add them.
POSTGRES_ONLY_INDEXES = frozenset({"idx_customers_search_trgm"})


def include_in_autogenerate(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic ``include_object`` hook: skip :data:`POSTGRES_ONLY_INDEXES`."""
    return not (type_ == "index" and name in POSTGRES_ONLY_INDEXES)


class UserRole(enum.StrEnum):
    """Who a login belongs to."""

    SUPERADMIN = "superadmin"
    MITRA = "mitra"


class PaymentStatus(enum.StrEnum):
    """An invoice's payment state, derived from the payments ledger."""

    UNPAID = "unpaid"
    PAID = "paid"
    PARTIAL = "partial"


class CustomerStatus(enum.StrEnum):
    """A subscriber's service state."""

    ACTIVE = "active"
    ISOLATED = "isolated"
    INACTIVE = "inactive"


class WaSessionStatus(enum.StrEnum):
    """State of an owner's WhatsApp link, mirroring gateway events."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    LOGGED_OUT = "logged_out"
    BANNED = "banned"
    OUTDATED = "outdated"


class PaymentMethod(enum.StrEnum):
    """How a payment was received."""

    CASH = "cash"
    TRANSFER = "transfer"
    QRIS = "qris"


class PaymentProofStatus(enum.StrEnum):
    """Where a payment-proof photo stands (stored as text with a CHECK, no enum type)."""

    PENDING = "pending"
    PROCESSING = "processing"
    READY = "ready"
    REJECTED = "rejected"  # blurry or nearly blank: the user is asked to retake it
    FAILED = "failed"  # an error while processing (the step log says where)


class ImportStatus(enum.StrEnum):
    """Where a CSV subscriber import stands."""

    VALIDATING = "validating"
    PREVIEWED = "previewed"
    IMPORTING = "importing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class FileJobStatus(enum.StrEnum):
    """Where a background file build (receipt bundle, export) stands."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportRowOutcome(enum.StrEnum):
    """What became of one data row of an import file."""

    VALID = "valid"
    INVALID = "invalid"
    IMPORTED = "imported"
    SKIPPED = "skipped"  # valid at preview, a duplicate by the time it was confirmed


def _created() -> Any:
    return Field(default_factory=utcnow, sa_column=ts_column(nullable=False, default=utcnow))


def _updated() -> Any:
    return Field(
        default_factory=utcnow,
        sa_column=ts_column(nullable=False, default=utcnow, onupdate=utcnow),
    )


class User(SQLModel, table=True):
    """A superadmin or mitra login; ``business_name`` is the subscribers' area."""

    __tablename__ = "users"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    username: str = Field(max_length=100, unique=True, nullable=False)
    password_hash: str = Field(max_length=255, nullable=False)
    name: str = Field(max_length=255, nullable=False)
    role: UserRole = Field(sa_column=enum_column(UserRole, "user_role", nullable=False))
    phone: str | None = Field(default=None, max_length=20)
    business_name: str = Field(max_length=255, unique=True, nullable=False)
    bank_name: str | None = Field(default=None, max_length=100)
    bank_account: str | None = Field(default=None, max_length=50)
    bank_holder: str | None = Field(default=None, max_length=255)
    is_active: bool = Field(default=True, nullable=False)
    last_login_at: datetime | None = Field(default=None, sa_column=ts_column())
    # Two-step login (superadmin): the TOTP secret encrypted; enabled once confirmed;
    # the last accepted time step, so a code cannot be used twice.
    totp_secret: str | None = Field(default=None, max_length=500)
    totp_enabled_at: datetime | None = Field(default=None, sa_column=ts_column())
    totp_last_step: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger()))
    created_at: datetime = _created()
    updated_at: datetime = _updated()


class RecoveryCode(SQLModel, table=True):
    """A one-time recovery code for two-step login, stored as a hash."""

    __tablename__ = "recovery_codes"
    __table_args__ = (sa.Index("idx_recovery_codes_user", "user_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = Field(sa_column=fk("users.id", "CASCADE", nullable=False))
    code_hash: str = Field(max_length=64, unique=True, nullable=False)
    used_at: datetime | None = Field(default=None, sa_column=ts_column())
    created_at: datetime = _created()


class Package(SQLModel, table=True):
    """A global internet package; ``is_active`` false hides it from pick lists."""

    __tablename__ = "packages"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=255, nullable=False)
    speed: str = Field(max_length=50, nullable=False)
    price: int = Field(nullable=False)
    description: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    is_active: bool = Field(default=True, nullable=False)
    created_at: datetime = _created()
    updated_at: datetime = _updated()


class Customer(SQLModel, table=True):
    """A subscriber (pelanggan), owned by a mitra or by the superadmin."""

    __tablename__ = "customers"
    __table_args__ = (
        sa.CheckConstraint("billing_date BETWEEN 1 AND 28", name="ck_customers_billing_date"),
        sa.CheckConstraint("discount >= 0", name="ck_customers_discount"),
        sa.CheckConstraint("total_bill >= 0", name="ck_customers_total_bill"),
        sa.Index("idx_customers_owner", "owner_id"),
        sa.Index("idx_customers_phone", "phone"),
        sa.Index("idx_customers_billing_date", "billing_date"),
        sa.Index("idx_customers_status", "status"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    owner_id: uuid.UUID = Field(sa_column=fk("users.id", "RESTRICT", nullable=False))
    package_id: uuid.UUID = Field(sa_column=fk("packages.id", "RESTRICT", nullable=False))
    name: str = Field(max_length=255, nullable=False)
    phone: str = Field(max_length=20, nullable=False)
    # Ciphertext (AES-GCM) of the 16-digit NIK, hence wider than the plain value.
    nik: str | None = Field(default=None, max_length=255)
    address: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    billing_date: int = Field(nullable=False)
    discount: int = Field(default=0, nullable=False)
    total_bill: int = Field(nullable=False)
    status: CustomerStatus = Field(
        default=CustomerStatus.ACTIVE,
        sa_column=enum_column(CustomerStatus, "customer_status", nullable=False,
                              default=CustomerStatus.ACTIVE),
    )
    register_date: date = Field(nullable=False)
    notes: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    created_at: datetime = _created()
    updated_at: datetime = _updated()


class Invoice(SQLModel, table=True):
    """A prepaid monthly invoice: ``period`` is the coming service month (YYYY-MM)."""

    __tablename__ = "invoices"
    __table_args__ = (
        sa.CheckConstraint("total_amount >= 0", name="ck_invoices_total_amount"),
        sa.CheckConstraint("paid_amount >= 0", name="ck_invoices_paid_amount"),
        sa.Index("idx_invoices_customer", "customer_id"),
        sa.Index("idx_invoices_owner", "owner_id"),
        sa.Index("idx_invoices_period", "period"),
        sa.Index("idx_invoices_status", "status"),
        sa.Index("idx_invoices_due_date", "due_date"),
        sa.Index("idx_invoices_customer_period", "customer_id", "period", unique=True),
        # The invoice list's order (due date, newest first) within its usual scopes, so a
        # page reads one due date's rows instead of sorting a whole period; the included
        # columns let the page's count (period or owner, with a status) skip the table.
        sa.Index("idx_invoices_period_due", "period", "due_date",
                 postgresql_include=["status", "paid_amount", "total_amount"]),
        sa.Index("idx_invoices_owner_due", "owner_id", "due_date",
                 postgresql_include=["period", "status", "paid_amount", "total_amount"]),
        # Open (not fully paid) invoices only, for overdue and due-soon lookups across
        # owners: small, instead of every invoice ever issued (and enough for the
        # overdue sums by itself).
        sa.Index("idx_invoices_open_due", "due_date",
                 postgresql_include=["owner_id", "paid_amount", "total_amount"],
                 postgresql_where=sa.text("paid_amount < total_amount"),
                 sqlite_where=sa.text("paid_amount < total_amount")),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    customer_id: uuid.UUID = Field(sa_column=fk("customers.id", "CASCADE", nullable=False))
    owner_id: uuid.UUID = Field(sa_column=fk("users.id", "RESTRICT", nullable=False))
    period: str = Field(max_length=7, nullable=False)
    amount: int = Field(nullable=False)
    discount: int = Field(default=0, nullable=False)
    total_amount: int = Field(nullable=False)
    # Sum of the non-reversed payments, kept in step with the ledger in the
    # same transaction so lists and reports need no join.
    paid_amount: int = Field(default=0, nullable=False)
    status: PaymentStatus = Field(
        default=PaymentStatus.UNPAID,
        sa_column=enum_column(PaymentStatus, "payment_status", nullable=False,
                              default=PaymentStatus.UNPAID),
    )
    paid_at: datetime | None = Field(default=None, sa_column=ts_column())
    paid_by: uuid.UUID | None = Field(default=None, sa_column=fk("users.id", None, nullable=True))
    payment_method: str | None = Field(default=None, max_length=50)
    payment_note: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    due_date: date = Field(nullable=False)
    receipt_url: str | None = Field(default=None, max_length=500)
    receipt_token: str | None = Field(default=None, max_length=100, unique=True)
    reminder_sent_at: datetime | None = Field(default=None, sa_column=ts_column())
    receipt_sent_at: datetime | None = Field(default=None, sa_column=ts_column())
    isolir_sent_at: datetime | None = Field(default=None, sa_column=ts_column())
    version: int = Field(default=1, nullable=False)
    created_at: datetime = _created()
    updated_at: datetime = _updated()


class Payment(SQLModel, table=True):
    """One receipt of money against an invoice; reversals are marked, never deleted."""

    __tablename__ = "payments"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="ck_payments_amount"),
        sa.Index("idx_payments_invoice", "invoice_id"),
        sa.Index("idx_payments_owner_recorded", "owner_id", "recorded_at"),
        # Covering (migration 0005): a month's revenue is an index-only scan.
        sa.Index("idx_payments_recorded_at", "recorded_at",
                 postgresql_include=["owner_id", "amount"]),
        # Reversals are rare: the month's reversed total (dashboard revenue) reads this.
        sa.Index("idx_payments_reversed", "reversed_at",
                 postgresql_include=["owner_id", "amount"],
                 postgresql_where=sa.text("reversed_at IS NOT NULL"),
                 sqlite_where=sa.text("reversed_at IS NOT NULL")),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    invoice_id: uuid.UUID = Field(sa_column=fk("invoices.id", "CASCADE", nullable=False))
    owner_id: uuid.UUID = Field(sa_column=fk("users.id", "RESTRICT", nullable=False))
    amount: int = Field(nullable=False)
    method: PaymentMethod = Field(
        sa_column=enum_column(PaymentMethod, "payment_method", nullable=False)
    )
    note: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    recorded_by: uuid.UUID = Field(sa_column=fk("users.id", "RESTRICT", nullable=False))
    recorded_at: datetime = _created()
    reversed_at: datetime | None = Field(default=None, sa_column=ts_column())
    reversed_by: uuid.UUID | None = Field(
        default=None, sa_column=fk("users.id", "RESTRICT", nullable=True)
    )
    reversal_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))


class WaSession(SQLModel, table=True):
    """One owner's WhatsApp link: status from gateway events, plus the queue's pacing.

    The auth store itself lives on disk, one per owner, in the gateway's volume.
    """

    __tablename__ = "wa_sessions"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = Field(sa_column=fk("users.id", "CASCADE", nullable=False, unique=True))
    status: WaSessionStatus = Field(
        default=WaSessionStatus.DISCONNECTED,
        sa_column=enum_column(WaSessionStatus, "wa_session_status", nullable=False,
                              default=WaSessionStatus.DISCONNECTED),
    )
    phone_number: str | None = Field(default=None, max_length=20)
    last_connected_at: datetime | None = Field(default=None, sa_column=ts_column())
    # Linking: the QR payload or pairing code currently offered, and when it lapses.
    link_method: str | None = Field(default=None, max_length=10)
    qr_code: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    pairing_code: str | None = Field(default=None, max_length=20)
    link_expires_at: datetime | None = Field(default=None, sa_column=ts_column())
    link_expired: bool = Field(default=False, nullable=False)
    banned_until: datetime | None = Field(default=None, sa_column=ts_column())
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    status_changed_at: datetime | None = Field(default=None, sa_column=ts_column())
    # Official Cloud API credentials of this owner (token encrypted like the NIK).
    cloud_phone_id: str | None = Field(default=None, max_length=50)
    cloud_token: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    # Queue pacing (see services.wa_throttle): one message in flight per session,
    # the next send not before ``next_send_at``, and the batch / hour / day counters.
    next_send_at: datetime | None = Field(default=None, sa_column=ts_column())
    batch_count: int = Field(default=0, nullable=False)
    hour_started_at: datetime | None = Field(default=None, sa_column=ts_column())
    hour_count: int = Field(default=0, nullable=False)
    day_date: date | None = Field(default=None)
    day_count: int = Field(default=0, nullable=False)
    queue_paused_at: datetime | None = Field(default=None, sa_column=ts_column())
    queue_pause_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    created_at: datetime = _created()
    updated_at: datetime = _updated()


class WaMessageLog(SQLModel, table=True):
    """Every WhatsApp message sent or attempted (direct sends and queue outcomes)."""

    __tablename__ = "wa_message_logs"
    __table_args__ = (
        sa.Index("idx_wa_logs_session", "session_id"),
        sa.Index("idx_wa_logs_customer", "customer_id"),
        sa.Index("idx_wa_logs_type", "message_type"),
        sa.Index("idx_wa_logs_owner_sent", "owner_id", "sent_at"),
        sa.Index("idx_wa_logs_invoice", "invoice_id"),
        sa.Index("idx_wa_logs_provider_id", "provider_message_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    session_id: uuid.UUID | None = Field(
        default=None, sa_column=fk("wa_sessions.id", "SET NULL", nullable=True)
    )
    # The owner whose number sends (and who may read the row); kept even without a session.
    owner_id: uuid.UUID | None = Field(
        default=None, sa_column=fk("users.id", "CASCADE", nullable=True)
    )
    customer_id: uuid.UUID | None = Field(
        default=None, sa_column=fk("customers.id", "SET NULL", nullable=True)
    )
    invoice_id: uuid.UUID | None = Field(
        default=None, sa_column=fk("invoices.id", "SET NULL", nullable=True)
    )
    queue_id: uuid.UUID | None = Field(default=None, nullable=True)
    message_type: str = Field(max_length=50, nullable=False)
    phone: str = Field(max_length=20, nullable=False)
    content: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    status: str = Field(max_length=20, nullable=False)
    error_message: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    # A direct send's key (e.g. one receipt per payment) makes a repeat a no-op.
    idempotency_key: str | None = Field(default=None, max_length=150, unique=True)
    provider_message_id: str | None = Field(default=None, max_length=150)
    sent_by: uuid.UUID | None = Field(
        default=None, sa_column=fk("users.id", "SET NULL", nullable=True)
    )
    delivered_at: datetime | None = Field(default=None, sa_column=ts_column())
    read_at: datetime | None = Field(default=None, sa_column=ts_column())
    sent_at: datetime = _created()


class WaNumber(SQLModel, table=True):
    """Whether a phone number is on WhatsApp, as last checked (a cache per number)."""

    __tablename__ = "wa_numbers"

    phone: str = Field(max_length=20, primary_key=True)
    on_whatsapp: bool = Field(nullable=False)
    checked_at: datetime = Field(sa_column=ts_column(nullable=False))


class WaOutbox(SQLModel, table=True):
    """Messages recorded by the outbox gateway (development): what would have been sent."""

    __tablename__ = "wa_outbox"
    __table_args__ = (sa.Index("idx_wa_outbox_owner_created", "owner_id", "created_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    owner_id: uuid.UUID = Field(sa_column=fk("users.id", "CASCADE", nullable=False))
    phone: str = Field(max_length=20, nullable=False)
    jid: str = Field(max_length=60, nullable=False)
    content: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    idempotency_key: str = Field(max_length=150, unique=True, nullable=False)
    created_at: datetime = _created()


class Setting(SQLModel, table=True):
    """A key/value site setting (branding, receipt toggles, app version)."""

    __tablename__ = "settings"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    key: str = Field(max_length=100, unique=True, nullable=False)
    value: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    updated_at: datetime = _updated()


class RefreshToken(SQLModel, table=True):
    """An API refresh token, stored hashed; ``family_id`` links its rotations."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        sa.Index("idx_refresh_tokens_user_id", "user_id"),
        sa.Index("idx_refresh_tokens_expires", "expires_at"),
        sa.Index("idx_refresh_tokens_family", "family_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = Field(sa_column=fk("users.id", "CASCADE", nullable=False))
    token: str = Field(max_length=500, unique=True, nullable=False)
    family_id: uuid.UUID = Field(default_factory=new_id, nullable=False)
    user_agent: str = Field(max_length=500, nullable=False)
    ip_address: str = Field(max_length=45, nullable=False)
    expires_at: datetime = Field(sa_column=ts_column(nullable=False))
    last_used_at: datetime | None = Field(default=None, sa_column=ts_column())
    revoked_at: datetime | None = Field(default=None, sa_column=ts_column())
    # rotated | reuse_detected | logout | password_changed | deactivated | ...
    revoked_reason: str | None = Field(default=None, max_length=50)
    created_at: datetime = _created()


class UserSession(SQLModel, table=True):
    """A browser login, stored server-side so revocation reaches every tab at once."""

    __tablename__ = "user_sessions"
    __table_args__ = (
        sa.Index("idx_user_sessions_user", "user_id"),
        sa.Index("idx_user_sessions_expires", "expires_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = Field(sa_column=fk("users.id", "CASCADE", nullable=False))
    token_hash: str = Field(max_length=64, unique=True, nullable=False)
    user_agent: str = Field(default="", max_length=500, nullable=False)
    ip_address: str = Field(default="", max_length=45, nullable=False)
    remember: bool = Field(default=False, nullable=False)
    created_at: datetime = _created()
    last_seen_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(nullable=False))
    expires_at: datetime = Field(sa_column=ts_column(nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=ts_column())
    revoked_reason: str | None = Field(default=None, max_length=50)
    # A fresh login waits here until the page claims its HttpOnly cookie over HTTP
    # (fibernode/services/web_login.py): the hash of a one-time code, and its deadline.
    claim_hash: str | None = Field(default=None, max_length=64, unique=True)
    claim_expires_at: datetime | None = Field(default=None, sa_column=ts_column())


class ActivityLog(SQLModel, table=True):
    """The audit trail: one row per mutation, written in the mutation's transaction."""

    __tablename__ = "activity_logs"
    __table_args__ = (
        sa.Index("idx_activity_logs_created", "created_at"),
        sa.Index("idx_activity_logs_user", "user_id"),
        sa.Index("idx_activity_logs_resource", "resource", "resource_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID | None = Field(
        default=None, sa_column=fk("users.id", "SET NULL", nullable=True)
    )
    action: str = Field(max_length=100, nullable=False)
    resource: str | None = Field(default=None, max_length=100)
    resource_id: uuid.UUID | None = Field(default=None)
    # "metadata" is reserved on declarative classes, so the attribute is "meta".
    meta: dict | None = Field(
        default=None,
        sa_column=sa.Column(
            "metadata", sa.JSON().with_variant(JSONB(), "postgresql")
        ),
    )
    ip_address: str | None = Field(default=None, max_length=45)
    created_at: datetime = _created()


class WaMessageQueue(SQLModel, table=True):
    """Queued WhatsApp messages (reminders and bulk sends only), sent paced per session."""

    __tablename__ = "wa_message_queue"
    __table_args__ = (
        sa.Index("idx_wa_queue_status_scheduled", "status", "scheduled_at"),
        sa.Index("idx_wa_queue_session", "session_id"),
        sa.Index("idx_wa_queue_owner_status", "owner_id", "status"),
        # The claim: a session's next due pending message, read from a small partial index.
        sa.Index("idx_wa_queue_claim", "session_id", "priority", "scheduled_at",
                 postgresql_where=sa.text("status = 'pending'"),
                 sqlite_where=sa.text("status = 'pending'")),
        sa.Index("idx_wa_queue_invoice", "invoice_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    session_id: uuid.UUID = Field(sa_column=fk("wa_sessions.id", None, nullable=False))
    owner_id: uuid.UUID = Field(sa_column=fk("users.id", "CASCADE", nullable=False))
    customer_id: uuid.UUID | None = Field(
        default=None, sa_column=fk("customers.id", "SET NULL", nullable=True)
    )
    invoice_id: uuid.UUID | None = Field(
        default=None, sa_column=fk("invoices.id", "SET NULL", nullable=True)
    )
    message_type: str = Field(default="reminder", max_length=50, nullable=False)
    phone: str = Field(max_length=20, nullable=False)
    content: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    priority: int = Field(default=0, nullable=False)
    status: str = Field(default="pending", max_length=20, nullable=False)
    retry_count: int = Field(default=0, nullable=False)
    max_retries: int = Field(default=3, nullable=False)
    scheduled_at: datetime = Field(sa_column=ts_column(nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=ts_column())
    error_message: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    # One key per message (e.g. ``reminder:<invoice>:<date>``): enqueueing twice is a no-op
    # and the gateway can tell whether a message it was handed has already gone out.
    idempotency_key: str = Field(max_length=150, unique=True, nullable=False)
    reminder_offset: int | None = Field(default=None)
    claimed_at: datetime | None = Field(default=None, sa_column=ts_column())
    claimed_by: str | None = Field(default=None, max_length=100)
    provider_message_id: str | None = Field(default=None, max_length=150)
    created_by: uuid.UUID | None = Field(
        default=None, sa_column=fk("users.id", "SET NULL", nullable=True)
    )
    created_at: datetime = _created()
    updated_at: datetime = _updated()


class WaInboundMessage(SQLModel, table=True):
    """A message a subscriber sent to an owner's Cloud API number (from the webhook).

    It opens WhatsApp's 24-hour customer-service window for that number, inside which
    free text may be sent; the subscriber's page shows it as their reply.
    """

    __tablename__ = "wa_inbound_messages"
    __table_args__ = (
        sa.Index("idx_wa_inbound_owner_phone", "owner_id", "phone", "received_at"),
        sa.Index("idx_wa_inbound_customer", "customer_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    owner_id: uuid.UUID = Field(sa_column=fk("users.id", "CASCADE", nullable=False))
    customer_id: uuid.UUID | None = Field(
        default=None, sa_column=fk("customers.id", "SET NULL", nullable=True)
    )
    phone: str = Field(max_length=20, nullable=False)
    # WhatsApp's message id (``wamid…``): a repeated webhook delivery is stored once.
    provider_message_id: str = Field(max_length=150, unique=True, nullable=False)
    message_type: str = Field(max_length=30, nullable=False)
    text: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    received_at: datetime = Field(sa_column=ts_column(nullable=False))
    created_at: datetime = _created()


class LoginAttempt(SQLModel, table=True):
    """One login try, kept for lockout decisions (by username, by IP and by device)."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        sa.Index("idx_login_attempts_username_created", "username", "created_at"),
        sa.Index("idx_login_attempts_ip_created", "ip_address", "created_at"),
        sa.Index("idx_login_attempts_device_created", "device_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    username: str = Field(max_length=100, nullable=False)
    ip_address: str = Field(max_length=45, nullable=False)
    success: bool = Field(nullable=False)
    user_agent: str | None = Field(default=None, max_length=500)
    # The trusted device (valid device cookie) the try came from; NULL for an unknown
    # device. No foreign key: attempts outlive the devices' rows (maintenance).
    device_id: uuid.UUID | None = Field(default=None, nullable=True)
    created_at: datetime = _created()


class TrustedDevice(SQLModel, table=True):
    """A browser or API client that logged in successfully (OWASP "device cookie").

    Its signed token lets the owner keep logging in while the username is locked
    for unknown devices; it has its own failure limit instead.
    """

    __tablename__ = "trusted_devices"
    __table_args__ = (sa.Index("idx_trusted_devices_user", "user_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = Field(sa_column=fk("users.id", "CASCADE", nullable=False))
    user_agent: str = Field(default="", max_length=500, nullable=False)
    ip_address: str = Field(default="", max_length=45, nullable=False)
    created_at: datetime = _created()
    last_used_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(nullable=False))
    expires_at: datetime = Field(sa_column=ts_column(nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=ts_column())
    # password_changed | password_reset | deactivated | limit
    revoked_reason: str | None = Field(default=None, max_length=50)


class ImportJob(SQLModel, table=True):
    """One uploaded subscriber CSV, from preview to result (superadmin only)."""

    __tablename__ = "import_jobs"
    __table_args__ = (
        sa.Index("idx_import_jobs_created", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    created_by: uuid.UUID | None = Field(
        default=None, sa_column=fk("users.id", "SET NULL", nullable=True)
    )
    filename: str = Field(max_length=255, nullable=False)
    # The file's separator, reused for the error report so Excel splits it the same way.
    delimiter: str = Field(default=",", max_length=1, nullable=False)
    status: ImportStatus = Field(
        sa_column=enum_column(ImportStatus, "import_status", nullable=False)
    )
    total_rows: int = Field(default=0, nullable=False)
    valid_rows: int = Field(default=0, nullable=False)
    invalid_rows: int = Field(default=0, nullable=False)
    imported_rows: int = Field(default=0, nullable=False)
    skipped_rows: int = Field(default=0, nullable=False)
    progress_done: int = Field(default=0, nullable=False)
    progress_total: int = Field(default=0, nullable=False)
    error: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    # ``[line_no, raw]`` of a large file until the worker has validated it into
    # ``import_rows`` (raw as in ImportRow.raw: the NIK cell encrypted).
    pending_rows: list | None = Field(default=None, sa_column=sa.Column(sa.JSON()))
    created_at: datetime = _created()
    updated_at: datetime = _updated()
    finished_at: datetime | None = Field(default=None, sa_column=ts_column())


class ImportRow(SQLModel, table=True):
    """One data row of an import file with its validation outcome.

    ``raw`` keeps the cells as written (the NIK cell encrypted), for the preview
    and the error report; ``data`` holds the normalised values ready to insert.
    """

    __tablename__ = "import_rows"
    __table_args__ = (
        sa.Index("idx_import_rows_job_line", "job_id", "line_no", unique=True),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    job_id: uuid.UUID = Field(sa_column=fk("import_jobs.id", "CASCADE", nullable=False))
    line_no: int = Field(nullable=False)
    raw: dict = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    data: dict | None = Field(default=None, sa_column=sa.Column(sa.JSON()))
    problems: list | None = Field(default=None, sa_column=sa.Column(sa.JSON()))
    outcome: ImportRowOutcome = Field(
        sa_column=enum_column(ImportRowOutcome, "import_row_outcome", nullable=False)
    )


class FileJob(SQLModel, table=True):
    """A file built in the background (a month's receipts, later exports).

    ``path`` is relative to the data directory's ``files/`` folder; the file and
    the row are deleted by the daily cleanup once ``expires_at`` has passed.
    """

    __tablename__ = "file_jobs"
    __table_args__ = (
        sa.Index("idx_file_jobs_created_by", "created_by"),
        sa.Index("idx_file_jobs_expires", "expires_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    created_by: uuid.UUID | None = Field(
        default=None, sa_column=fk("users.id", "SET NULL", nullable=True)
    )
    kind: str = Field(max_length=50, nullable=False)
    status: FileJobStatus = Field(
        default=FileJobStatus.PENDING,
        sa_column=enum_column(FileJobStatus, "file_job_status", nullable=False,
                              default=FileJobStatus.PENDING),
    )
    progress_done: int = Field(default=0, nullable=False)
    progress_total: int = Field(default=0, nullable=False)
    filename: str = Field(max_length=255, nullable=False)
    path: str | None = Field(default=None, max_length=500)
    error: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    params: dict | None = Field(default=None, sa_column=sa.Column(sa.JSON()))
    created_at: datetime = _created()
    updated_at: datetime = _updated()
    expires_at: datetime = Field(sa_column=ts_column(nullable=False))


class RevenueMonth(SQLModel, table=True):
    """Cash-basis ledger totals of one owner in one Jakarta month that has ended.

    Payments are recorded and reversed "now", so a month's ledger figures never
    change once it is over (unless payments are deleted with their subscriber, which
    lowers the watermark, see ``finance.forget_closed_months``). The nightly job rolls
    the ended months up once, so charts and reports over many months read a few
    hundred rows instead of every payment. Months after the watermark (setting
    ``revenue_closed_through``) are always read from the ledger itself.
    """

    __tablename__ = "revenue_months"
    __table_args__ = (
        sa.Index("idx_revenue_months_owner_period", "owner_id", "period", unique=True),
        sa.Index("idx_revenue_months_period", "period"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    owner_id: uuid.UUID = Field(sa_column=fk("users.id", "CASCADE", nullable=False))
    period: str = Field(max_length=7, nullable=False)
    received: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    reversed: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    computed_at: datetime = _created()


class PaymentProof(SQLModel, table=True):
    """A photo of a transfer slip (bukti transfer) attached to a payment.

    Paths are relative to the uploads directory. The original is kept as uploaded;
    a worker writes the processed JPEG (document found, perspective and skew
    corrected, contrast improved, reduced) and the quality scores. A rejected proof
    leaves the payment as it is: the proof is evidence, not the payment itself.
    """

    __tablename__ = "payment_proofs"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'ready', 'rejected', 'failed')",
            name="ck_payment_proofs_status"),
        sa.Index("idx_payment_proofs_owner_created", "owner_id", "created_at"),
        sa.Index("idx_payment_proofs_payment", "payment_id"),
        sa.Index("idx_payment_proofs_invoice", "invoice_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    owner_id: uuid.UUID = Field(sa_column=fk("users.id", "RESTRICT", nullable=False))
    payment_id: uuid.UUID = Field(sa_column=fk("payments.id", "CASCADE", nullable=False))
    invoice_id: uuid.UUID = Field(sa_column=fk("invoices.id", "CASCADE", nullable=False))
    uploaded_by: uuid.UUID | None = Field(
        default=None, sa_column=fk("users.id", "SET NULL", nullable=True)
    )
    status: str = Field(default=PaymentProofStatus.PENDING.value, max_length=20,
                        nullable=False)
    reject_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    original_filename: str = Field(max_length=255, nullable=False)
    original_path: str = Field(max_length=500, nullable=False)
    original_mime: str = Field(max_length=50, nullable=False)
    original_size: int = Field(nullable=False)
    original_sha256: str = Field(max_length=64, nullable=False)
    width: int | None = Field(default=None)
    height: int | None = Field(default=None)
    processed_path: str | None = Field(default=None, max_length=500)
    processed_width: int | None = Field(default=None)
    processed_height: int | None = Field(default=None)
    blur_score: float | None = Field(default=None)
    blank_score: float | None = Field(default=None)
    document_found: bool | None = Field(default=None)
    skew_angle: float | None = Field(default=None)
    processed_at: datetime | None = Field(default=None, sa_column=ts_column())
    created_at: datetime = _created()
    updated_at: datetime = _updated()


class PaymentProofStep(SQLModel, table=True):
    """One step of processing a proof photo: its outcome and how long it took."""

    __tablename__ = "payment_proof_steps"
    __table_args__ = (
        sa.CheckConstraint("outcome IN ('ok', 'flagged', 'error')",
                           name="ck_payment_proof_steps_outcome"),
        sa.Index("idx_payment_proof_steps_proof", "proof_id", "seq"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    proof_id: uuid.UUID = Field(sa_column=fk("payment_proofs.id", "CASCADE", nullable=False))
    seq: int = Field(nullable=False)
    step: str = Field(max_length=30, nullable=False)
    outcome: str = Field(max_length=10, nullable=False)
    duration_ms: int = Field(nullable=False)
    detail: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    created_at: datetime = _created()
