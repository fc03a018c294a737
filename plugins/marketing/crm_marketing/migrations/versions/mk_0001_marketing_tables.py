"""marketing: segments, consent, campaigns, variants, costs, targets, responses

Revision ID: mk_0001
Revises: (base of the marketing branch; needs the core's 0001_core for customers and interactions)
"""
import sqlalchemy as sa
from alembic import op

import crmcore.db.types

revision = 'mk_0001'
down_revision = None
branch_labels = ('marketing',)
depends_on = '0001_core'


def upgrade() -> None:
    op.create_table('marketing_campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('objective', sa.String(length=500), nullable=True),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('budget', crmcore.db.types.Money(precision=18, scale=4), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('starts_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ends_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('control_share', sa.Float(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('attribution_days', sa.Integer(), nullable=False),
    sa.Column('launched_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_campaigns')),
    sa.UniqueConstraint('name', name=op.f('uq_marketing_campaigns_name'))
    )
    op.create_table('marketing_segments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('rule', sa.Text(), nullable=True),
    sa.Column('rule_json', sa.JSON(), nullable=True),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('frozen_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_segments')),
    sa.UniqueConstraint('name', name=op.f('uq_marketing_segments_name'))
    )
    op.create_table('marketing_campaign_segments',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('segment_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'], name=op.f('fk_marketing_campaign_segments_campaign_id_marketing_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['segment_id'], ['marketing_segments.id'], name=op.f('fk_marketing_campaign_segments_segment_id_marketing_segments')),
    sa.PrimaryKeyConstraint('campaign_id', 'segment_id', name=op.f('pk_marketing_campaign_segments'))
    )
    op.create_table('marketing_costs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=False),
    sa.Column('amount', crmcore.db.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('incurred_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'], name=op.f('fk_marketing_costs_campaign_id_marketing_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_costs')),
    sa.UniqueConstraint('campaign_id', 'reference', name=op.f('uq_marketing_costs_campaign_id_reference'))
    )
    op.create_index(op.f('ix_marketing_costs_campaign_id'), 'marketing_costs', ['campaign_id'], unique=False)
    op.create_table('marketing_variants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('share', sa.Float(), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'], name=op.f('fk_marketing_variants_campaign_id_marketing_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_variants')),
    sa.UniqueConstraint('campaign_id', 'name', name=op.f('uq_marketing_variants_campaign_id_name'))
    )
    op.create_index(op.f('ix_marketing_variants_campaign_id'), 'marketing_variants', ['campaign_id'], unique=False)
    op.create_table('marketing_consents',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_marketing_consents_customer_id_customers')),
    sa.PrimaryKeyConstraint('customer_id', 'channel', name=op.f('pk_marketing_consents'))
    )
    op.create_table('marketing_responses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('external_ref', sa.String(length=100), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'], name=op.f('fk_marketing_responses_campaign_id_marketing_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_marketing_responses_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_responses')),
    sa.UniqueConstraint('campaign_id', 'external_ref', name=op.f('uq_marketing_responses_campaign_id_external_ref'))
    )
    op.create_index('ix_marketing_responses_campaign_type', 'marketing_responses', ['campaign_id', 'type'], unique=False)
    op.create_index(op.f('ix_marketing_responses_customer_id'), 'marketing_responses', ['customer_id'], unique=False)
    op.create_table('marketing_segment_members',
    sa.Column('segment_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_marketing_segment_members_customer_id_customers')),
    sa.ForeignKeyConstraint(['segment_id'], ['marketing_segments.id'], name=op.f('fk_marketing_segment_members_segment_id_marketing_segments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('segment_id', 'customer_id', name=op.f('pk_marketing_segment_members'))
    )
    op.create_index(op.f('ix_marketing_segment_members_customer_id'), 'marketing_segment_members', ['customer_id'], unique=False)
    op.create_table('marketing_targets',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('grp', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=100), nullable=True),
    sa.Column('variant_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('address', sa.String(length=254), nullable=True),
    sa.Column('claimed_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('interaction_id', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'], name=op.f('fk_marketing_targets_campaign_id_marketing_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_marketing_targets_customer_id_customers')),
    sa.ForeignKeyConstraint(['interaction_id'], ['interactions.id'], name=op.f('fk_marketing_targets_interaction_id_interactions')),
    sa.ForeignKeyConstraint(['variant_id'], ['marketing_variants.id'], name=op.f('fk_marketing_targets_variant_id_marketing_variants')),
    sa.PrimaryKeyConstraint('campaign_id', 'customer_id', name=op.f('pk_marketing_targets'))
    )
    op.create_index(op.f('ix_marketing_targets_customer_id'), 'marketing_targets', ['customer_id'], unique=False)
    op.create_index('ix_marketing_targets_status', 'marketing_targets', ['campaign_id', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_marketing_targets_status', table_name='marketing_targets')
    op.drop_index(op.f('ix_marketing_targets_customer_id'), table_name='marketing_targets')
    op.drop_table('marketing_targets')
    op.drop_index(op.f('ix_marketing_segment_members_customer_id'), table_name='marketing_segment_members')
    op.drop_table('marketing_segment_members')
    op.drop_index(op.f('ix_marketing_responses_customer_id'), table_name='marketing_responses')
    op.drop_index('ix_marketing_responses_campaign_type', table_name='marketing_responses')
    op.drop_table('marketing_responses')
    op.drop_table('marketing_consents')
    op.drop_index(op.f('ix_marketing_variants_campaign_id'), table_name='marketing_variants')
    op.drop_table('marketing_variants')
    op.drop_index(op.f('ix_marketing_costs_campaign_id'), table_name='marketing_costs')
    op.drop_table('marketing_costs')
    op.drop_table('marketing_campaign_segments')
    op.drop_table('marketing_segments')
    op.drop_table('marketing_campaigns')
