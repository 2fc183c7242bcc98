"""Finance: revenue_months (ended months rolled up) and a covering recorded_at index.

``revenue_months`` holds each owner's ledger totals of every Jakarta month that has
ended (filled by the nightly job), so 12-month charts and yearly reports do not
sum a million payments on every page load.

The month's revenue (dashboard, finance pages, reports) sums ``payments.amount`` over a
``recorded_at`` range, for every owner or one; with both columns in the index that is an
index-only scan instead of a visit to every heap page of the month's payments (about ten
times faster on 100,000 subscribers). Same name and key, so nothing else changes; on
SQLite (no INCLUDE) the index stays as it was.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 21:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
import fibernode.models.types

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _postgresql() -> bool:
    return op.get_bind().dialect.name == 'postgresql'


def upgrade() -> None:
    op.create_table(
        'revenue_months',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('owner_id', sa.Uuid(), nullable=False),
        sa.Column('period', sa.String(length=7), nullable=False),
        sa.Column('received', sa.BigInteger(), nullable=False),
        sa.Column('reversed', sa.BigInteger(), nullable=False),
        sa.Column('computed_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('idx_revenue_months_owner_period', 'revenue_months',
                    ['owner_id', 'period'], unique=True)
    op.create_index('idx_revenue_months_period', 'revenue_months', ['period'], unique=False)
    if not _postgresql():
        return
    op.drop_index('idx_payments_recorded_at', table_name='payments')
    op.create_index('idx_payments_recorded_at', 'payments', ['recorded_at'], unique=False,
                    postgresql_include=['owner_id', 'amount'])


def downgrade() -> None:
    op.drop_index('idx_revenue_months_period', table_name='revenue_months')
    op.drop_index('idx_revenue_months_owner_period', table_name='revenue_months')
    op.drop_table('revenue_months')
    if not _postgresql():
        return
    op.drop_index('idx_payments_recorded_at', table_name='payments')
    op.create_index('idx_payments_recorded_at', 'payments', ['recorded_at'], unique=False)
