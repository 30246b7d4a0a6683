"""school catalog resources, recommendations shown and their feedback

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.store.types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('catalog_resources',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('origin', sa.String(length=200), nullable=True),
    sa.Column('created_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_catalog_resources_updated_at'), 'catalog_resources', ['updated_at'], unique=False)
    op.create_table('recommendations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('resource_id', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('feedback', sa.SmallInteger(), nullable=True),
    sa.Column('feedback_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('shown_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_recommendations_person_at', 'recommendations', ['person_id', 'shown_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_recommendations_person_at', table_name='recommendations')
    op.drop_table('recommendations')
    op.drop_index(op.f('ix_catalog_resources_updated_at'), table_name='catalog_resources')
    op.drop_table('catalog_resources')
