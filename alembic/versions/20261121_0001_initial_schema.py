"""Initial schema: the spec's eleven tables, the payments ledger and web sessions.

Revision ID: 0001
Revises:
Create Date: 2026-11-21 14:38:40.726442
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql
import fibernode.models.types

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENUM_TYPES = ("payment_method", "payment_status", "wa_session_status", "customer_status",
              "user_role")


def upgrade() -> None:
    op.create_table('login_attempts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('ip_address', sqlmodel.sql.sqltypes.AutoString(length=45), nullable=False),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.Column('user_agent', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('created_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.create_index('idx_login_attempts_ip_created', ['ip_address', 'created_at'], unique=False)
        batch_op.create_index('idx_login_attempts_username_created', ['username', 'created_at'], unique=False)

    op.create_table('packages',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('speed', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('price', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('settings',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('updated_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_table('users',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('role', sa.Enum('superadmin', 'mitra', name='user_role'), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('business_name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('bank_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('bank_account', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
    sa.Column('bank_holder', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('last_login_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True),
    sa.Column('created_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('business_name'),
    sa.UniqueConstraint('username')
    )
    op.create_table('activity_logs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('resource', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('resource_id', sa.Uuid(), nullable=True),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('ip_address', sqlmodel.sql.sqltypes.AutoString(length=45), nullable=True),
    sa.Column('created_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('activity_logs', schema=None) as batch_op:
        batch_op.create_index('idx_activity_logs_created', ['created_at'], unique=False)
        batch_op.create_index('idx_activity_logs_resource', ['resource', 'resource_id'], unique=False)
        batch_op.create_index('idx_activity_logs_user', ['user_id'], unique=False)

    op.create_table('customers',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('package_id', sa.Uuid(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('nik', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('billing_date', sa.Integer(), nullable=False),
    sa.Column('discount', sa.Integer(), nullable=False),
    sa.Column('total_bill', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('active', 'isolated', 'inactive', name='customer_status'), nullable=False),
    sa.Column('register_date', sa.Date(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('created_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('billing_date BETWEEN 1 AND 28', name='ck_customers_billing_date'),
    sa.CheckConstraint('discount >= 0', name='ck_customers_discount'),
    sa.CheckConstraint('total_bill >= 0', name='ck_customers_total_bill'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index('idx_customers_billing_date', ['billing_date'], unique=False)
        batch_op.create_index('idx_customers_owner', ['owner_id'], unique=False)
        batch_op.create_index('idx_customers_phone', ['phone'], unique=False)
        batch_op.create_index('idx_customers_status', ['status'], unique=False)

    op.create_table('refresh_tokens',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('token', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('family_id', sa.Uuid(), nullable=False),
    sa.Column('user_agent', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('ip_address', sqlmodel.sql.sqltypes.AutoString(length=45), nullable=False),
    sa.Column('expires_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True),
    sa.Column('created_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token')
    )
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.create_index('idx_refresh_tokens_expires', ['expires_at'], unique=False)
        batch_op.create_index('idx_refresh_tokens_user_id', ['user_id'], unique=False)

    op.create_table('user_sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_agent', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('ip_address', sqlmodel.sql.sqltypes.AutoString(length=45), nullable=False),
    sa.Column('remember', sa.Boolean(), nullable=False),
    sa.Column('created_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.create_index('idx_user_sessions_expires', ['expires_at'], unique=False)
        batch_op.create_index('idx_user_sessions_user', ['user_id'], unique=False)

    op.create_table('wa_sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.Enum('disconnected', 'connecting', 'connected', 'logged_out', 'banned', 'outdated', name='wa_session_status'), nullable=False),
    sa.Column('phone_number', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('last_connected_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True),
    sa.Column('created_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id')
    )
    op.create_table('invoices',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('discount', sa.Integer(), nullable=False),
    sa.Column('total_amount', sa.Integer(), nullable=False),
    sa.Column('paid_amount', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('unpaid', 'paid', 'partial', name='payment_status'), nullable=False),
    sa.Column('paid_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True),
    sa.Column('paid_by', sa.Uuid(), nullable=True),
    sa.Column('payment_method', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
    sa.Column('payment_note', sa.Text(), nullable=True),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('receipt_url', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('receipt_token', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('reminder_sent_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True),
    sa.Column('receipt_sent_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True),
    sa.Column('isolir_sent_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('paid_amount >= 0', name='ck_invoices_paid_amount'),
    sa.CheckConstraint('total_amount >= 0', name='ck_invoices_total_amount'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['paid_by'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('receipt_token')
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index('idx_invoices_customer', ['customer_id'], unique=False)
        batch_op.create_index('idx_invoices_customer_period', ['customer_id', 'period'], unique=True)
        batch_op.create_index('idx_invoices_due_date', ['due_date'], unique=False)
        batch_op.create_index('idx_invoices_owner', ['owner_id'], unique=False)
        batch_op.create_index('idx_invoices_period', ['period'], unique=False)
        batch_op.create_index('idx_invoices_status', ['status'], unique=False)

    op.create_table('payments',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('invoice_id', sa.Uuid(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('method', sa.Enum('cash', 'transfer', 'qris', name='payment_method'), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('recorded_by', sa.Uuid(), nullable=False),
    sa.Column('recorded_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('reversed_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True),
    sa.Column('reversed_by', sa.Uuid(), nullable=True),
    sa.Column('reversal_reason', sa.Text(), nullable=True),
    sa.CheckConstraint('amount > 0', name='ck_payments_amount'),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['recorded_by'], ['users.id'], ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['reversed_by'], ['users.id'], ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index('idx_payments_invoice', ['invoice_id'], unique=False)
        batch_op.create_index('idx_payments_owner_recorded', ['owner_id', 'recorded_at'], unique=False)
        batch_op.create_index('idx_payments_recorded_at', ['recorded_at'], unique=False)

    op.create_table('wa_message_logs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=True),
    sa.Column('customer_id', sa.Uuid(), nullable=True),
    sa.Column('invoice_id', sa.Uuid(), nullable=True),
    sa.Column('message_type', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('sent_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['session_id'], ['wa_sessions.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('wa_message_logs', schema=None) as batch_op:
        batch_op.create_index('idx_wa_logs_customer', ['customer_id'], unique=False)
        batch_op.create_index('idx_wa_logs_session', ['session_id'], unique=False)
        batch_op.create_index('idx_wa_logs_type', ['message_type'], unique=False)

    op.create_table('wa_message_queue',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=True),
    sa.Column('invoice_id', sa.Uuid(), nullable=True),
    sa.Column('message_type', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('retry_count', sa.Integer(), nullable=False),
    sa.Column('max_retries', sa.Integer(), nullable=False),
    sa.Column('scheduled_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('created_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['session_id'], ['wa_sessions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('wa_message_queue', schema=None) as batch_op:
        batch_op.create_index('idx_wa_queue_session', ['session_id'], unique=False)
        batch_op.create_index('idx_wa_queue_status_scheduled', ['status', 'scheduled_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('wa_message_queue', schema=None) as batch_op:
        batch_op.drop_index('idx_wa_queue_status_scheduled')
        batch_op.drop_index('idx_wa_queue_session')

    op.drop_table('wa_message_queue')
    with op.batch_alter_table('wa_message_logs', schema=None) as batch_op:
        batch_op.drop_index('idx_wa_logs_type')
        batch_op.drop_index('idx_wa_logs_session')
        batch_op.drop_index('idx_wa_logs_customer')

    op.drop_table('wa_message_logs')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('idx_payments_recorded_at')
        batch_op.drop_index('idx_payments_owner_recorded')
        batch_op.drop_index('idx_payments_invoice')

    op.drop_table('payments')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index('idx_invoices_status')
        batch_op.drop_index('idx_invoices_period')
        batch_op.drop_index('idx_invoices_owner')
        batch_op.drop_index('idx_invoices_due_date')
        batch_op.drop_index('idx_invoices_customer_period')
        batch_op.drop_index('idx_invoices_customer')

    op.drop_table('invoices')
    op.drop_table('wa_sessions')
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.drop_index('idx_user_sessions_user')
        batch_op.drop_index('idx_user_sessions_expires')

    op.drop_table('user_sessions')
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.drop_index('idx_refresh_tokens_user_id')
        batch_op.drop_index('idx_refresh_tokens_expires')

    op.drop_table('refresh_tokens')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index('idx_customers_status')
        batch_op.drop_index('idx_customers_phone')
        batch_op.drop_index('idx_customers_owner')
        batch_op.drop_index('idx_customers_billing_date')

    op.drop_table('customers')
    with op.batch_alter_table('activity_logs', schema=None) as batch_op:
        batch_op.drop_index('idx_activity_logs_user')
        batch_op.drop_index('idx_activity_logs_resource')
        batch_op.drop_index('idx_activity_logs_created')

    op.drop_table('activity_logs')
    op.drop_table('users')
    op.drop_table('settings')
    op.drop_table('packages')
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.drop_index('idx_login_attempts_username_created')
        batch_op.drop_index('idx_login_attempts_ip_created')

    op.drop_table('login_attempts')
    # PostgreSQL keeps enum types after their tables are gone; SQLite has none.
    bind = op.get_bind()
    for enum_name in ENUM_TYPES:
        sa.Enum(name=enum_name).drop(bind, checkfirst=True)
