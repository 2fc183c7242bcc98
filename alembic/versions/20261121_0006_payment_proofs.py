"""Payment proofs: photos of transfer slips linked to payments, and their processing log.

``payment_proofs`` holds one uploaded photo (original and processed file paths under
the uploads volume, size, checksum, quality scores, status); ``payment_proof_steps``
holds one row per processing step (outcome and duration), so failures are visible in
the UI. Statuses are text with CHECK constraints, so no new PostgreSQL enum types.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 23:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import fibernode.models.types

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'payment_proofs',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('owner_id', sa.Uuid(), nullable=False),
        sa.Column('payment_id', sa.Uuid(), nullable=False),
        sa.Column('invoice_id', sa.Uuid(), nullable=False),
        sa.Column('uploaded_by', sa.Uuid(), nullable=True),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('reject_reason', sa.Text(), nullable=True),
        sa.Column('original_filename', sqlmodel.sql.sqltypes.AutoString(length=255),
                  nullable=False),
        sa.Column('original_path', sqlmodel.sql.sqltypes.AutoString(length=500),
                  nullable=False),
        sa.Column('original_mime', sqlmodel.sql.sqltypes.AutoString(length=50),
                  nullable=False),
        sa.Column('original_size', sa.Integer(), nullable=False),
        sa.Column('original_sha256', sqlmodel.sql.sqltypes.AutoString(length=64),
                  nullable=False),
        sa.Column('width', sa.Integer(), nullable=True),
        sa.Column('height', sa.Integer(), nullable=True),
        sa.Column('processed_path', sqlmodel.sql.sqltypes.AutoString(length=500),
                  nullable=True),
        sa.Column('processed_width', sa.Integer(), nullable=True),
        sa.Column('processed_height', sa.Integer(), nullable=True),
        sa.Column('blur_score', sa.Float(), nullable=True),
        sa.Column('blank_score', sa.Float(), nullable=True),
        sa.Column('document_found', sa.Boolean(), nullable=True),
        sa.Column('skew_angle', sa.Float(), nullable=True),
        sa.Column('processed_at', fibernode.models.types.AwareDateTime(timezone=True),
                  nullable=True),
        sa.Column('created_at', fibernode.models.types.AwareDateTime(timezone=True),
                  nullable=False),
        sa.Column('updated_at', fibernode.models.types.AwareDateTime(timezone=True),
                  nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'ready', 'rejected', 'failed')",
            name='ck_payment_proofs_status'),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ondelete='RESTRICT'),
        sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['uploaded_by'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('idx_payment_proofs_owner_created', 'payment_proofs',
                    ['owner_id', 'created_at'], unique=False)
    op.create_index('idx_payment_proofs_payment', 'payment_proofs', ['payment_id'],
                    unique=False)
    op.create_index('idx_payment_proofs_invoice', 'payment_proofs', ['invoice_id'],
                    unique=False)
    op.create_table(
        'payment_proof_steps',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('proof_id', sa.Uuid(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('duration_ms', sa.Integer(), nullable=False),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.Column('created_at', fibernode.models.types.AwareDateTime(timezone=True),
                  nullable=False),
        sa.CheckConstraint("outcome IN ('ok', 'flagged', 'error')",
                           name='ck_payment_proof_steps_outcome'),
        sa.ForeignKeyConstraint(['proof_id'], ['payment_proofs.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('idx_payment_proof_steps_proof', 'payment_proof_steps',
                    ['proof_id', 'seq'], unique=False)


def downgrade() -> None:
    op.drop_index('idx_payment_proof_steps_proof', table_name='payment_proof_steps')
    op.drop_table('payment_proof_steps')
    op.drop_index('idx_payment_proofs_invoice', table_name='payment_proofs')
    op.drop_index('idx_payment_proofs_payment', table_name='payment_proofs')
    op.drop_index('idx_payment_proofs_owner_created', table_name='payment_proofs')
    op.drop_table('payment_proofs')
