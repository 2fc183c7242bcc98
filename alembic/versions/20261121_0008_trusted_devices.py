"""Trusted devices: the OWASP device cookie against username lockout abuse.

``trusted_devices`` holds one row per browser or API client that logged in
successfully; its signed token lets the owner log in while the username is locked
for unknown devices. ``login_attempts.device_id`` names the trusted device a try came
from (NULL for unknown devices), so each device has its own failure limit.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 09:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import fibernode.models.types

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'trusted_devices',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('user_agent', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('ip_address', sqlmodel.sql.sqltypes.AutoString(length=45), nullable=False),
        sa.Column('created_at', fibernode.models.types.AwareDateTime(timezone=True),
                  nullable=False),
        sa.Column('last_used_at', fibernode.models.types.AwareDateTime(timezone=True),
                  nullable=False),
        sa.Column('expires_at', fibernode.models.types.AwareDateTime(timezone=True),
                  nullable=False),
        sa.Column('revoked_at', fibernode.models.types.AwareDateTime(timezone=True),
                  nullable=True),
        sa.Column('revoked_reason', sqlmodel.sql.sqltypes.AutoString(length=50),
                  nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('idx_trusted_devices_user', 'trusted_devices', ['user_id'], unique=False)
    with op.batch_alter_table('login_attempts') as batch:
        batch.add_column(sa.Column('device_id', sa.Uuid(), nullable=True))
    op.create_index('idx_login_attempts_device_created', 'login_attempts',
                    ['device_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('idx_login_attempts_device_created', table_name='login_attempts')
    with op.batch_alter_table('login_attempts') as batch:
        batch.drop_column('device_id')
    op.drop_index('idx_trusted_devices_user', table_name='trusted_devices')
    op.drop_table('trusted_devices')
