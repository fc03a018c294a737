"""sales_automation: leads, pipelines, opportunities, activities, quotas

Revision ID: sales_0001
Revises: (base of the sales_automation branch, labelled "sales" before 0.1.0; needs the core's 0001_core for customers, users, contacts, interactions)
Create Date: 2026-11-23 19:47:24.107685
"""
import sqlalchemy as sa
from alembic import op

import crmcore.db.types

revision = 'sales_0001'
down_revision = None
branch_labels = ('sales_automation',)
depends_on = '0001_core'


def upgrade() -> None:

    op.create_table('sales_models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('fitted_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('fitted_by', sa.String(length=64), nullable=False),
    sa.Column('n_samples', sa.Integer(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_models')),
    sa.UniqueConstraint('kind', name=op.f('uq_sales_models_kind'))
    )
    op.create_table('sales_pipelines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('created_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_pipelines')),
    sa.UniqueConstraint('name', name=op.f('uq_sales_pipelines_name'))
    )
    op.create_table('sales_quotas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', crmcore.db.types.Money(precision=18, scale=4), nullable=False),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_sales_quotas_amount_not_negative')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_sales_quotas_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_quotas')),
    sa.UniqueConstraint('owner_id', 'period', 'currency', name=op.f('uq_sales_quotas_owner_id_period_currency'))
    )
    op.create_table('sales_stages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pipeline_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('probability', sa.SmallInteger(), nullable=False),
    sa.Column('kind', sa.Enum('open', 'won', 'lost', name='sales_stage_kind', native_enum=False, create_constraint=True, length=8), nullable=False),
    sa.CheckConstraint('probability BETWEEN 0 AND 100', name=op.f('ck_sales_stages_probability_0_100')),
    sa.ForeignKeyConstraint(['pipeline_id'], ['sales_pipelines.id'], name=op.f('fk_sales_stages_pipeline_id_sales_pipelines'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_stages')),
    sa.UniqueConstraint('pipeline_id', 'name', name=op.f('uq_sales_stages_pipeline_id_name')),
    sa.UniqueConstraint('pipeline_id', 'position', name=op.f('uq_sales_stages_pipeline_id_position'))
    )
    op.create_table('sales_leads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('external_ref', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('company', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('source', sa.Enum('referral', 'advertising', 'event', 'web', 'cold_call', 'partner', 'existing_customer', 'other', name='sales_lead_source', native_enum=False, create_constraint=True, length=21), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('new', 'contacted', 'qualified', 'disqualified', 'converted', name='sales_lead_status', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('learned_score', sa.Float(), nullable=True),
    sa.Column('learned_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_sales_leads_customer_id_customers')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_sales_leads_owner_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_leads')),
    sa.UniqueConstraint('external_ref', name=op.f('uq_sales_leads_external_ref'))
    )
    with op.batch_alter_table('sales_leads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sales_leads_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sales_leads_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_sales_leads_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index('ix_sales_leads_status', ['status'], unique=False)

    op.create_table('sales_lead_assessments',
    sa.Column('lead_id', sa.Integer(), nullable=False),
    sa.Column('factor', sa.Enum('need', 'volume', 'power', 'credibility', 'authority', name='sales_factor', native_enum=False, create_constraint=True, length=15), nullable=False),
    sa.Column('points', sa.SmallInteger(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('assessed_by', sa.String(length=64), nullable=False),
    sa.Column('assessed_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('points BETWEEN 0 AND 5', name=op.f('ck_sales_lead_assessments_points_0_5')),
    sa.ForeignKeyConstraint(['lead_id'], ['sales_leads.id'], name=op.f('fk_sales_lead_assessments_lead_id_sales_leads'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('lead_id', 'factor', name=op.f('pk_sales_lead_assessments'))
    )
    op.create_table('sales_opportunities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('amount', crmcore.db.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('pipeline_id', sa.Integer(), nullable=False),
    sa.Column('stage_id', sa.Integer(), nullable=False),
    sa.Column('probability', sa.SmallInteger(), nullable=True),
    sa.Column('expected_close', sa.Date(), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('next_step', sa.String(length=200), nullable=True),
    sa.Column('status', sa.Enum('open', 'won', 'lost', name='sales_opportunity_status', native_enum=False, create_constraint=True, length=8), nullable=False),
    sa.Column('lost_reason', sa.String(length=500), nullable=True),
    sa.Column('closed_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lead_id', sa.Integer(), nullable=True),
    sa.Column('invoice_ref', sa.String(length=100), nullable=True),
    sa.Column('invoiced_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reached_position', sa.SmallInteger(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_sales_opportunities_amount_not_negative')),
    sa.CheckConstraint('probability IS NULL OR (probability BETWEEN 0 AND 100)', name=op.f('ck_sales_opportunities_probability_0_100')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_sales_opportunities_customer_id_customers')),
    sa.ForeignKeyConstraint(['lead_id'], ['sales_leads.id'], name=op.f('fk_sales_opportunities_lead_id_sales_leads'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_sales_opportunities_owner_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['pipeline_id'], ['sales_pipelines.id'], name=op.f('fk_sales_opportunities_pipeline_id_sales_pipelines')),
    sa.ForeignKeyConstraint(['stage_id'], ['sales_stages.id'], name=op.f('fk_sales_opportunities_stage_id_sales_stages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_opportunities'))
    )
    with op.batch_alter_table('sales_opportunities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sales_opportunities_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sales_opportunities_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sales_opportunities_stage_id'), ['stage_id'], unique=False)
        batch_op.create_index('ix_sales_opportunities_status_close', ['status', 'expected_close'], unique=False)

    op.create_table('sales_activities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('call', 'visit', 'email', 'meeting', 'demo', 'other', name='sales_activity_kind', native_enum=False, create_constraint=True, length=11), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('due_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lead_id', sa.Integer(), nullable=True),
    sa.Column('opportunity_id', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('done_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=200), nullable=True),
    sa.Column('interaction_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('lead_id IS NOT NULL OR opportunity_id IS NOT NULL OR customer_id IS NOT NULL', name=op.f('ck_sales_activities_has_subject')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_sales_activities_customer_id_customers')),
    sa.ForeignKeyConstraint(['interaction_id'], ['interactions.id'], name=op.f('fk_sales_activities_interaction_id_interactions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['lead_id'], ['sales_leads.id'], name=op.f('fk_sales_activities_lead_id_sales_leads'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['opportunity_id'], ['sales_opportunities.id'], name=op.f('fk_sales_activities_opportunity_id_sales_opportunities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_sales_activities_owner_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_activities'))
    )
    with op.batch_alter_table('sales_activities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sales_activities_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sales_activities_lead_id'), ['lead_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sales_activities_opportunity_id'), ['opportunity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sales_activities_owner_id'), ['owner_id'], unique=False)

    op.create_table('sales_conversions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('opportunity_id', sa.Integer(), nullable=True),
    sa.Column('matched_by', sa.String(length=16), nullable=False),
    sa.Column('converted_by', sa.String(length=64), nullable=False),
    sa.Column('converted_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_sales_conversions_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_sales_conversions_customer_id_customers')),
    sa.ForeignKeyConstraint(['lead_id'], ['sales_leads.id'], name=op.f('fk_sales_conversions_lead_id_sales_leads'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['opportunity_id'], ['sales_opportunities.id'], name=op.f('fk_sales_conversions_opportunity_id_sales_opportunities'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_conversions'))
    )
    with op.batch_alter_table('sales_conversions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sales_conversions_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sales_conversions_lead_id'), ['lead_id'], unique=False)

    op.create_table('sales_objections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opportunity_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('need', 'budget', 'authority', 'price', 'product', 'salesperson', 'timing', name='sales_objection_kind', native_enum=False, create_constraint=True, length=15), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('handling', sa.String(length=500), nullable=True),
    sa.Column('resolved', sa.Boolean(), nullable=False),
    sa.Column('raised_by', sa.String(length=64), nullable=False),
    sa.Column('raised_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['opportunity_id'], ['sales_opportunities.id'], name=op.f('fk_sales_objections_opportunity_id_sales_opportunities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_objections'))
    )
    with op.batch_alter_table('sales_objections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sales_objections_opportunity_id'), ['opportunity_id'], unique=False)

    op.create_table('sales_stage_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opportunity_id', sa.Integer(), nullable=False),
    sa.Column('from_stage_id', sa.Integer(), nullable=True),
    sa.Column('to_stage_id', sa.Integer(), nullable=False),
    sa.Column('changed_by', sa.String(length=64), nullable=False),
    sa.Column('changed_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['from_stage_id'], ['sales_stages.id'], name=op.f('fk_sales_stage_changes_from_stage_id_sales_stages')),
    sa.ForeignKeyConstraint(['opportunity_id'], ['sales_opportunities.id'], name=op.f('fk_sales_stage_changes_opportunity_id_sales_opportunities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['to_stage_id'], ['sales_stages.id'], name=op.f('fk_sales_stage_changes_to_stage_id_sales_stages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_stage_changes'))
    )
    with op.batch_alter_table('sales_stage_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sales_stage_changes_opportunity_id'), ['opportunity_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('sales_stage_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sales_stage_changes_opportunity_id'))

    op.drop_table('sales_stage_changes')
    with op.batch_alter_table('sales_objections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sales_objections_opportunity_id'))

    op.drop_table('sales_objections')
    with op.batch_alter_table('sales_conversions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sales_conversions_lead_id'))
        batch_op.drop_index(batch_op.f('ix_sales_conversions_customer_id'))

    op.drop_table('sales_conversions')
    with op.batch_alter_table('sales_activities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sales_activities_owner_id'))
        batch_op.drop_index(batch_op.f('ix_sales_activities_opportunity_id'))
        batch_op.drop_index(batch_op.f('ix_sales_activities_lead_id'))
        batch_op.drop_index(batch_op.f('ix_sales_activities_customer_id'))

    op.drop_table('sales_activities')
    with op.batch_alter_table('sales_opportunities', schema=None) as batch_op:
        batch_op.drop_index('ix_sales_opportunities_status_close')
        batch_op.drop_index(batch_op.f('ix_sales_opportunities_stage_id'))
        batch_op.drop_index(batch_op.f('ix_sales_opportunities_owner_id'))
        batch_op.drop_index(batch_op.f('ix_sales_opportunities_customer_id'))

    op.drop_table('sales_opportunities')
    op.drop_table('sales_lead_assessments')
    with op.batch_alter_table('sales_leads', schema=None) as batch_op:
        batch_op.drop_index('ix_sales_leads_status')
        batch_op.drop_index(batch_op.f('ix_sales_leads_owner_id'))
        batch_op.drop_index(batch_op.f('ix_sales_leads_email'))
        batch_op.drop_index(batch_op.f('ix_sales_leads_customer_id'))

    op.drop_table('sales_leads')
    op.drop_table('sales_stages')
    op.drop_table('sales_quotas')
    op.drop_table('sales_pipelines')
    op.drop_table('sales_models')

