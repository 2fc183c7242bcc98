"""Background file jobs (receipt bundles, later exports); indexes for invoice lists and figures.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 18:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import fibernode.models.types

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENUM_TYPES = ("file_job_status",)
# The invoice list is ordered by due date within its usual scopes (a period, an owner);
# the included columns (PostgreSQL) let its count skip the table. Invoices not fully paid
# are indexed apart (a partial index): overdue and due-soon lookups across owners read
# that instead of every invoice ever issued.
OPEN_PREDICATE = "paid_amount < total_amount"
# Reversed payments are rare; the month's reversed total reads this partial index.
REVERSED_PREDICATE = "reversed_at IS NOT NULL"
# PostgreSQL only, and invisible to autogenerate: the planner otherwise takes period,
# status and "not fully paid" as independent, while the current period is nearly all
# unpaid, and then misjudges e.g. "this month's unpaid invoices of one mitra" (it
# expects a handful and reads a whole period's index instead of the mitra's).
STATISTICS_SQL = ("CREATE STATISTICS IF NOT EXISTS stx_invoices_period_status (mcv) "
                  "ON period, status, (paid_amount < total_amount) FROM invoices")


def upgrade() -> None:
    op.create_table('file_jobs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('status', sa.Enum('pending', 'running', 'done', 'failed', name='file_job_status'), nullable=False),
    sa.Column('progress_done', sa.Integer(), nullable=False),
    sa.Column('progress_total', sa.Integer(), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('path', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('params', sa.JSON(), nullable=True),
    sa.Column('created_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('file_jobs', schema=None) as batch_op:
        batch_op.create_index('idx_file_jobs_created_by', ['created_by'], unique=False)
        batch_op.create_index('idx_file_jobs_expires', ['expires_at'], unique=False)

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index('idx_invoices_period_due', ['period', 'due_date'], unique=False,
                              postgresql_include=['status', 'paid_amount', 'total_amount'])
        batch_op.create_index('idx_invoices_owner_due', ['owner_id', 'due_date'], unique=False,
                              postgresql_include=['period', 'status', 'paid_amount',
                                                  'total_amount'])
        batch_op.create_index('idx_invoices_open_due', ['due_date'], unique=False,
                              postgresql_include=['owner_id', 'paid_amount', 'total_amount'],
                              postgresql_where=sa.text(OPEN_PREDICATE),
                              sqlite_where=sa.text(OPEN_PREDICATE))

    if op.get_bind().dialect.name == "postgresql":
        op.execute(STATISTICS_SQL)

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index('idx_payments_reversed', ['reversed_at'], unique=False,
                              postgresql_include=['owner_id', 'amount'],
                              postgresql_where=sa.text(REVERSED_PREDICATE),
                              sqlite_where=sa.text(REVERSED_PREDICATE))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS stx_invoices_period_status")
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('idx_payments_reversed')

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index('idx_invoices_open_due')
        batch_op.drop_index('idx_invoices_owner_due')
        batch_op.drop_index('idx_invoices_period_due')

    with op.batch_alter_table('file_jobs', schema=None) as batch_op:
        batch_op.drop_index('idx_file_jobs_expires')
        batch_op.drop_index('idx_file_jobs_created_by')

    op.drop_table('file_jobs')
    # PostgreSQL keeps enum types after their tables are gone; SQLite has none.
    bind = op.get_bind()
    for enum_name in ENUM_TYPES:
        sa.Enum(name=enum_name).drop(bind, checkfirst=True)
