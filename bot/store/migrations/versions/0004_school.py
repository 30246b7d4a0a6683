"""classes, enrollments, family links, access codes, audit, safety alerts; outbox kinds

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 15:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.store.types


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_label', sa.String(length=64), nullable=True),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.String(length=200), nullable=True),
    sa.Column('at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['people.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['subject_id'], ['people.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_audit_log_actor_id'), 'audit_log', ['actor_id'], unique=False)
    op.create_index('ix_audit_log_at', 'audit_log', ['at'], unique=False)
    op.create_index(op.f('ix_audit_log_subject_id'), 'audit_log', ['subject_id'], unique=False)
    op.create_table('classes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('teacher_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('archived_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['teacher_id'], ['people.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_classes_teacher_id'), 'classes', ['teacher_id'], unique=False)
    op.create_table('family_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('family_id', sa.Integer(), nullable=False),
    sa.Column('learner_id', sa.Integer(), nullable=False),
    sa.Column('consented_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['family_id'], ['people.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['learner_id'], ['people.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('family_id', 'learner_id', name='uq_family_link')
    )
    op.create_index(op.f('ix_family_links_family_id'), 'family_links', ['family_id'], unique=False)
    op.create_index(op.f('ix_family_links_learner_id'), 'family_links', ['learner_id'], unique=False)
    op.create_table('safety_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('learner_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('opened_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.Integer(), nullable=True),
    sa.Column('notified_count', sa.Integer(), nullable=False),
    sa.Column('last_notified_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['acknowledged_by'], ['people.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['learner_id'], ['people.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_safety_alerts_learner_id'), 'safety_alerts', ['learner_id'], unique=False)
    op.create_index('ix_safety_alerts_open', 'safety_alerts', ['acknowledged_at', 'last_notified_at'], unique=False)
    op.create_table('access_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('class_id', sa.Integer(), nullable=True),
    sa.Column('learner_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('single_use', sa.Boolean(), nullable=False),
    sa.Column('expires_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('used_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('used_by', sa.Integer(), nullable=True),
    sa.Column('revoked_at', bot.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['class_id'], ['classes.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by'], ['people.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['learner_id'], ['people.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['used_by'], ['people.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code_hash')
    )
    op.create_table('code_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identity_id', sa.Integer(), nullable=False),
    sa.Column('at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['identity_id'], ['channel_identities.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_code_attempts_identity_at', 'code_attempts', ['identity_id', 'at'], unique=False)
    op.create_table('enrollments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('class_id', sa.Integer(), nullable=False),
    sa.Column('learner_id', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['class_id'], ['classes.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['learner_id'], ['people.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('class_id', 'learner_id', name='uq_enrollment')
    )
    op.create_index(op.f('ix_enrollments_learner_id'), 'enrollments', ['learner_id'], unique=False)
    # SQLite cannot add a foreign key in place: batch mode copies the table.
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('person_id', sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column('kind', sa.String(length=12), nullable=False, server_default='reply')
        )
        batch.create_index(batch.f('ix_outbox_person_id'), ['person_id'], unique=False)
        batch.create_foreign_key(
            'fk_outbox_person_id', 'people', ['person_id'], ['id'], ondelete='CASCADE'
        )
    with op.batch_alter_table('outbox') as batch:
        batch.alter_column('kind', server_default=None, existing_type=sa.String(length=12))
    with op.batch_alter_table('people') as batch:
        batch.add_column(sa.Column('quiet_start', sa.String(length=5), nullable=True))
        batch.add_column(sa.Column('quiet_end', sa.String(length=5), nullable=True))
        batch.add_column(sa.Column('digest_weekday', sa.SmallInteger(), nullable=True))
        batch.add_column(sa.Column('digest_time', sa.String(length=5), nullable=True))
        batch.add_column(sa.Column('nudge_frequency', sa.String(length=10), nullable=True))
        batch.add_column(
            sa.Column('stopped_at', bot.store.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('people') as batch:
        for column in (
            'stopped_at', 'nudge_frequency', 'digest_time', 'digest_weekday', 'quiet_end',
            'quiet_start',
        ):
            batch.drop_column(column)
    with op.batch_alter_table('outbox') as batch:
        batch.drop_constraint('fk_outbox_person_id', type_='foreignkey')
        batch.drop_index(batch.f('ix_outbox_person_id'))
        batch.drop_column('kind')
        batch.drop_column('person_id')
    for table in (
        'enrollments', 'code_attempts', 'access_codes', 'safety_alerts', 'family_links',
        'classes', 'audit_log',
    ):
        op.drop_table(table)
