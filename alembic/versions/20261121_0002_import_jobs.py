"""CSV subscriber imports (jobs and rows) and PostgreSQL indexes for the customer search.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 16:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import fibernode.models.types

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENUM_TYPES = ("import_row_outcome", "import_status")

# PostgreSQL only, and left out of the models (see fibernode.models.POSTGRES_ONLY_INDEXES):
# a trigram index for the customer search "name or phone contains …". pg_trgm may be
# unavailable (a managed server without contrib, no privilege): the search then still
# works, only slower, so that failure is reported and skipped, never fatal.
SEARCH_INDEX_SQL = """
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX IF NOT EXISTS idx_customers_search_trgm ON customers
        USING gin (lower(name) gin_trgm_ops, phone gin_trgm_ops);
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'customer search without a trigram index (pg_trgm: %)', SQLERRM;
END $$;
"""


def upgrade() -> None:
    op.create_table('import_jobs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('delimiter', sqlmodel.sql.sqltypes.AutoString(length=1), nullable=False),
    sa.Column('status', sa.Enum('validating', 'previewed', 'importing', 'done', 'failed', 'cancelled', name='import_status'), nullable=False),
    sa.Column('total_rows', sa.Integer(), nullable=False),
    sa.Column('valid_rows', sa.Integer(), nullable=False),
    sa.Column('invalid_rows', sa.Integer(), nullable=False),
    sa.Column('imported_rows', sa.Integer(), nullable=False),
    sa.Column('skipped_rows', sa.Integer(), nullable=False),
    sa.Column('progress_done', sa.Integer(), nullable=False),
    sa.Column('progress_total', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('pending_rows', sa.JSON(), nullable=True),
    sa.Column('created_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', fibernode.models.types.AwareDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.create_index('idx_import_jobs_created', ['created_at'], unique=False)

    op.create_table('import_rows',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('job_id', sa.Uuid(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('raw', sa.JSON(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=True),
    sa.Column('problems', sa.JSON(), nullable=True),
    sa.Column('outcome', sa.Enum('valid', 'invalid', 'imported', 'skipped', name='import_row_outcome'), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['import_jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('import_rows', schema=None) as batch_op:
        batch_op.create_index('idx_import_rows_job_line', ['job_id', 'line_no'], unique=True)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(SEARCH_INDEX_SQL)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # pg_trgm stays: other objects may use it, and it may have been there before.
        op.execute("DROP INDEX IF EXISTS idx_customers_search_trgm")
    with op.batch_alter_table('import_rows', schema=None) as batch_op:
        batch_op.drop_index('idx_import_rows_job_line')

    op.drop_table('import_rows')
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.drop_index('idx_import_jobs_created')

    op.drop_table('import_jobs')
    # PostgreSQL keeps enum types after their tables are gone; SQLite has none.
    bind = op.get_bind()
    for enum_name in ENUM_TYPES:
        sa.Enum(name=enum_name).drop(bind, checkfirst=True)
