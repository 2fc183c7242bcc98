"""WhatsApp: session link and pacing state, idempotent queue and log rows, number cache, outbox.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 18:46:07.583715
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import fibernode.models.types

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SESSION_COLUMNS = ('queue_pause_reason', 'queue_paused_at', 'day_count', 'day_date',
                   'hour_count', 'hour_started_at', 'batch_count', 'next_send_at',
                   'cloud_token', 'cloud_phone_id', 'status_changed_at', 'last_error',
                   'banned_until', 'link_expired', 'link_expires_at', 'pairing_code',
                   'qr_code', 'link_method')


def upgrade() -> None:
    op.create_table('wa_numbers',
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('on_whatsapp', sa.Boolean(), nullable=False),
    sa.Column('checked_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('phone')
    )
    op.create_table('wa_outbox',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('jid', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=150), nullable=False),
    sa.Column('created_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key')
    )
    with op.batch_alter_table('wa_outbox', schema=None) as batch_op:
        batch_op.create_index('idx_wa_outbox_owner_created', ['owner_id', 'created_at'], unique=False)

    with op.batch_alter_table('wa_message_logs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('queue_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=150), nullable=True))
        batch_op.add_column(sa.Column('provider_message_id', sqlmodel.sql.sqltypes.AutoString(length=150), nullable=True))
        batch_op.add_column(sa.Column('sent_by', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('delivered_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('read_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True))
        batch_op.create_index('idx_wa_logs_invoice', ['invoice_id'], unique=False)
        batch_op.create_index('idx_wa_logs_owner_sent', ['owner_id', 'sent_at'], unique=False)
        batch_op.create_index('idx_wa_logs_provider_id', ['provider_message_id'], unique=False)
        batch_op.create_unique_constraint('uq_wa_logs_idempotency_key', ['idempotency_key'])
        batch_op.create_foreign_key('fk_wa_logs_owner', 'users', ['owner_id'], ['id'],
                                    ondelete='CASCADE')
        batch_op.create_foreign_key('fk_wa_logs_sent_by', 'users', ['sent_by'], ['id'],
                                    ondelete='SET NULL')

    with op.batch_alter_table('wa_message_queue', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=150), nullable=True))
        batch_op.add_column(sa.Column('reminder_offset', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('claimed_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch_op.add_column(sa.Column('provider_message_id', sqlmodel.sql.sqltypes.AutoString(length=150), nullable=True))
        batch_op.add_column(sa.Column('created_by', sa.Uuid(), nullable=True))
    # Rows queued before this revision get their owner from the session and a key of their own.
    op.execute("UPDATE wa_message_queue SET owner_id = (SELECT user_id FROM wa_sessions "
               "WHERE wa_sessions.id = wa_message_queue.session_id)")
    op.execute("UPDATE wa_message_queue SET idempotency_key = 'legacy:' || CAST(id AS VARCHAR)")
    with op.batch_alter_table('wa_message_queue', schema=None) as batch_op:
        batch_op.alter_column('owner_id', existing_type=sa.Uuid(), nullable=False)
        batch_op.alter_column('idempotency_key',
                              existing_type=sqlmodel.sql.sqltypes.AutoString(length=150),
                              nullable=False)
        batch_op.create_index('idx_wa_queue_claim', ['session_id', 'priority', 'scheduled_at'], unique=False, postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
        batch_op.create_index('idx_wa_queue_invoice', ['invoice_id'], unique=False)
        batch_op.create_index('idx_wa_queue_owner_status', ['owner_id', 'status'], unique=False)
        batch_op.create_unique_constraint('uq_wa_queue_idempotency_key', ['idempotency_key'])
        batch_op.create_foreign_key('fk_wa_queue_owner', 'users', ['owner_id'], ['id'],
                                    ondelete='CASCADE')
        batch_op.create_foreign_key('fk_wa_queue_created_by', 'users', ['created_by'], ['id'],
                                    ondelete='SET NULL')

    # Plain ALTER TABLE … ADD COLUMN: a batch rebuild of wa_sessions would drop the table
    # while queue rows still point at it (SQLite enforces the foreign key on the drop).
    op.add_column('wa_sessions', sa.Column('link_method', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
    op.add_column('wa_sessions', sa.Column('qr_code', sa.Text(), nullable=True))
    op.add_column('wa_sessions', sa.Column('pairing_code', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
    op.add_column('wa_sessions', sa.Column('link_expires_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True))
    op.add_column('wa_sessions', sa.Column('link_expired', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('wa_sessions', sa.Column('banned_until', fibernode.models.types.AwareDateTime(timezone=True), nullable=True))
    op.add_column('wa_sessions', sa.Column('last_error', sa.Text(), nullable=True))
    op.add_column('wa_sessions', sa.Column('status_changed_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True))
    op.add_column('wa_sessions', sa.Column('cloud_phone_id', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True))
    op.add_column('wa_sessions', sa.Column('cloud_token', sa.Text(), nullable=True))
    op.add_column('wa_sessions', sa.Column('next_send_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True))
    op.add_column('wa_sessions', sa.Column('batch_count', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('wa_sessions', sa.Column('hour_started_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True))
    op.add_column('wa_sessions', sa.Column('hour_count', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('wa_sessions', sa.Column('day_date', sa.Date(), nullable=True))
    op.add_column('wa_sessions', sa.Column('day_count', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('wa_sessions', sa.Column('queue_paused_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True))
    op.add_column('wa_sessions', sa.Column('queue_pause_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+), for the same reason as above.
    for column in SESSION_COLUMNS:
        op.drop_column('wa_sessions', column)

    with op.batch_alter_table('wa_message_queue', schema=None) as batch_op:
        batch_op.drop_constraint('fk_wa_queue_created_by', type_='foreignkey')
        batch_op.drop_constraint('fk_wa_queue_owner', type_='foreignkey')
        batch_op.drop_constraint('uq_wa_queue_idempotency_key', type_='unique')
        batch_op.drop_index('idx_wa_queue_owner_status')
        batch_op.drop_index('idx_wa_queue_invoice')
        batch_op.drop_index('idx_wa_queue_claim', postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
        batch_op.drop_column('created_by')
        batch_op.drop_column('provider_message_id')
        batch_op.drop_column('claimed_by')
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('reminder_offset')
        batch_op.drop_column('idempotency_key')
        batch_op.drop_column('owner_id')

    with op.batch_alter_table('wa_message_logs', schema=None) as batch_op:
        batch_op.drop_constraint('fk_wa_logs_sent_by', type_='foreignkey')
        batch_op.drop_constraint('fk_wa_logs_owner', type_='foreignkey')
        batch_op.drop_constraint('uq_wa_logs_idempotency_key', type_='unique')
        batch_op.drop_index('idx_wa_logs_provider_id')
        batch_op.drop_index('idx_wa_logs_owner_sent')
        batch_op.drop_index('idx_wa_logs_invoice')
        batch_op.drop_column('read_at')
        batch_op.drop_column('delivered_at')
        batch_op.drop_column('sent_by')
        batch_op.drop_column('provider_message_id')
        batch_op.drop_column('idempotency_key')
        batch_op.drop_column('queue_id')
        batch_op.drop_column('owner_id')

    with op.batch_alter_table('wa_outbox', schema=None) as batch_op:
        batch_op.drop_index('idx_wa_outbox_owner_created')

    op.drop_table('wa_outbox')
    op.drop_table('wa_numbers')
