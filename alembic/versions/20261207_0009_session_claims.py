"""Web sessions are handed to the browser through a one-time claim.

The login form runs over the websocket, which cannot set an HttpOnly cookie.
A login therefore opens its session *unclaimed*: ``claim_hash`` holds the hash
of a one-time code the page exchanges over plain HTTP (``POST
/api/session/claim``) for the cookie, within ``claim_expires_at``. The token
itself is only ever sent in that response's ``Set-Cookie`` header.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 21:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
import fibernode.models.types

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('user_sessions') as batch:
        batch.add_column(sa.Column('claim_hash', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('claim_expires_at',
                                   fibernode.models.types.AwareDateTime(timezone=True),
                                   nullable=True))
        batch.create_unique_constraint('uq_user_sessions_claim_hash', ['claim_hash'])


def downgrade() -> None:
    with op.batch_alter_table('user_sessions') as batch:
        batch.drop_constraint('uq_user_sessions_claim_hash', type_='unique')
        batch.drop_column('claim_expires_at')
        batch.drop_column('claim_hash')
