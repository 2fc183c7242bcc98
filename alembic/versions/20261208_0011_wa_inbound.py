"""Messages subscribers send to an owner's WhatsApp Cloud API number.

The Cloud API webhook delivers them; each opens WhatsApp's 24-hour customer-service
window for that number (free text allowed inside it) and shows on the subscriber's
page as their reply. ``provider_message_id`` is unique so a repeated delivery of the
same webhook stores the message once.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-08 00:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import fibernode.models.types

revision: str = '0011'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'wa_inbound_messages',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('owner_id', sa.Uuid(), nullable=False),
        sa.Column('customer_id', sa.Uuid(), nullable=True),
        sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('provider_message_id', sqlmodel.sql.sqltypes.AutoString(length=150),
                  nullable=False),
        sa.Column('message_type', sqlmodel.sql.sqltypes.AutoString(length=30),
                  nullable=False),
        sa.Column('text', sa.Text(), nullable=True),
        sa.Column('received_at', fibernode.models.types.AwareDateTime(timezone=True),
                  nullable=False),
        sa.Column('created_at', fibernode.models.types.AwareDateTime(timezone=True),
                  nullable=False),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('provider_message_id'),
    )
    op.create_index('idx_wa_inbound_owner_phone', 'wa_inbound_messages',
                    ['owner_id', 'phone', 'received_at'], unique=False)
    op.create_index('idx_wa_inbound_customer', 'wa_inbound_messages', ['customer_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('idx_wa_inbound_customer', table_name='wa_inbound_messages')
    op.drop_index('idx_wa_inbound_owner_phone', table_name='wa_inbound_messages')
    op.drop_table('wa_inbound_messages')
