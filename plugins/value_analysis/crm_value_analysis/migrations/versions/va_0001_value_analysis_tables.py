"""value_analysis: the runs and per-customer snapshot tables

Revision ID: va_0001
Revises: (base of the value_analysis branch; needs the core's 0001_core for customers)
Create Date: 2026-11-23 13:09:02.836808
"""
import sqlalchemy as sa
from alembic import op

import crmcore.db.types

revision = 'va_0001'
down_revision = None
branch_labels = ('value_analysis',)
depends_on = '0001_core'


def upgrade() -> None:
    op.create_table('value_analysis_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('created_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('n_customers', sa.Integer(), nullable=False),
    sa.Column('n_purchasers', sa.Integer(), nullable=False),
    sa.Column('total_revenue', sa.Float(), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_value_analysis_runs')),
    sa.UniqueConstraint('as_of', name=op.f('uq_value_analysis_runs_as_of'))
    )
    op.create_table('value_analysis_customer_values',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('recency_days', sa.Integer(), nullable=True),
    sa.Column('frequency', sa.Integer(), nullable=False),
    sa.Column('monetary', sa.Float(), nullable=False),
    sa.Column('r_score', sa.SmallInteger(), nullable=False),
    sa.Column('f_score', sa.SmallInteger(), nullable=False),
    sa.Column('m_score', sa.SmallInteger(), nullable=False),
    sa.Column('segment', sa.String(length=40), nullable=False),
    sa.Column('previous_segment', sa.String(length=40), nullable=True),
    sa.Column('tier', sa.String(length=40), nullable=False),
    sa.Column('previous_tier', sa.String(length=40), nullable=True),
    sa.Column('revenue_share', sa.Float(), nullable=False),
    sa.Column('dependency', sa.String(length=16), nullable=False),
    sa.Column('first_purchase_days', sa.Integer(), nullable=True),
    sa.Column('purchase_days', sa.Integer(), nullable=False),
    sa.Column('spend_trend', sa.Float(), nullable=True),
    sa.Column('frequency_trend', sa.Float(), nullable=True),
    sa.Column('categories', sa.Integer(), nullable=True),
    sa.Column('satisfaction', sa.Float(), nullable=True),
    sa.Column('lifecycle', sa.String(length=16), nullable=False),
    sa.Column('p_alive', sa.Float(), nullable=True),
    sa.Column('churn_risk', sa.Boolean(), nullable=True),
    sa.Column('expected_purchases', sa.Float(), nullable=True),
    sa.Column('clv_deterministic', sa.Float(), nullable=True),
    sa.Column('clv_probabilistic', sa.Float(), nullable=True),
    sa.Column('loyalty', sa.Float(), nullable=True),
    sa.Column('loyalty_coverage', sa.Float(), nullable=True),
    sa.Column('loyalty_duration', sa.Float(), nullable=True),
    sa.Column('loyalty_frequency', sa.Float(), nullable=True),
    sa.Column('loyalty_frequency_trend', sa.Float(), nullable=True),
    sa.Column('loyalty_spend', sa.Float(), nullable=True),
    sa.Column('loyalty_cross_buying', sa.Float(), nullable=True),
    sa.Column('loyalty_satisfaction', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_value_analysis_customer_values_customer_id_customers')),
    sa.ForeignKeyConstraint(['run_id'], ['value_analysis_runs.id'], name=op.f('fk_value_analysis_customer_values_run_id_value_analysis_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'customer_id', name=op.f('pk_value_analysis_customer_values'))
    )
    with op.batch_alter_table('value_analysis_customer_values', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_value_analysis_customer_values_customer_id'), ['customer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('value_analysis_customer_values', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_value_analysis_customer_values_customer_id'))

    op.drop_table('value_analysis_customer_values')
    op.drop_table('value_analysis_runs')
