"""plugin platform 2: merge journal, plugin registry (owned by Plugin platform 2, part 1)

Revision ID: 0003_platform
Revises: 0002_reliability
"""
import sqlalchemy as sa
from alembic import op

import crmcore.db.types

revision = '0003_platform'
down_revision = '0002_reliability'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('merge_journal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('merged_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('plugins', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['customers.id'], name=op.f('fk_merge_journal_source_id_customers')),
    sa.ForeignKeyConstraint(['target_id'], ['customers.id'], name=op.f('fk_merge_journal_target_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merge_journal'))
    )
    with op.batch_alter_table('merge_journal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_merge_journal_source_id'), ['source_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_merge_journal_target_id'), ['target_id'], unique=False)

    op.create_table('plugin_registry',
    sa.Column('plugin_id', sa.String(length=64), nullable=False),
    sa.Column('branches', sa.JSON(), nullable=False),
    sa.Column('merge_mark', sa.Integer(), nullable=False),
    sa.Column('updated_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('plugin_id', name=op.f('pk_plugin_registry'))
    )


def downgrade() -> None:
    op.drop_table('plugin_registry')
    with op.batch_alter_table('merge_journal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_merge_journal_target_id'))
        batch_op.drop_index(batch_op.f('ix_merge_journal_source_id'))
    op.drop_table('merge_journal')
