"""people.preferred_channel: where proactive messages go (/here)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 17:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('people') as batch:
        batch.add_column(sa.Column('preferred_channel', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('people') as batch:
        batch.drop_column('preferred_channel')
