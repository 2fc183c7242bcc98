"""Auth hardening: two-step login (TOTP) columns, recovery codes, refresh-token reasons.

``users`` gains the encrypted TOTP secret, when two-step login was enabled and the
last accepted time step (replay protection). ``recovery_codes`` holds one-time codes
as hashes. ``refresh_tokens`` records why a token was revoked (rotation, reuse
detection, logout, password change) and is indexed by family, which every API
request checks.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 23:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
import fibernode.models.types

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('totp_secret', sa.String(length=500), nullable=True))
        batch.add_column(sa.Column('totp_enabled_at',
                                   fibernode.models.types.AwareDateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('refresh_tokens') as batch:
        batch.add_column(sa.Column('revoked_reason', sa.String(length=50), nullable=True))
    op.create_index('idx_refresh_tokens_family', 'refresh_tokens', ['family_id'], unique=False)
    op.create_table(
        'recovery_codes',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('used_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True),
        sa.Column('created_at', fibernode.models.types.AwareDateTime(timezone=True),
                  nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('code_hash'),
    )
    op.create_index('idx_recovery_codes_user', 'recovery_codes', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index('idx_recovery_codes_user', table_name='recovery_codes')
    op.drop_table('recovery_codes')
    op.drop_index('idx_refresh_tokens_family', table_name='refresh_tokens')
    with op.batch_alter_table('refresh_tokens') as batch:
        batch.drop_column('revoked_reason')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('totp_last_step')
        batch.drop_column('totp_enabled_at')
        batch.drop_column('totp_secret')
