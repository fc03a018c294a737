"""credit: profiles and their history, scores, models, releases, dunning

Revision ID: cr_0001
Revises: (base of the credit branch; needs the core's 0001_core for customers, transactions, interactions)
Create Date: 2026-11-23 19:51:01.871504
"""
import sqlalchemy as sa
from alembic import op

import crmcore.db.types

revision = 'cr_0001'
down_revision = None
branch_labels = ('credit',)
depends_on = '0001_core'


def upgrade() -> None:
    op.create_table('credit_models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('trained_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('features', sa.JSON(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('applied_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('applied_by', sa.String(length=64), nullable=False),
    sa.Column('n_scored', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_models')),
    sa.UniqueConstraint('name', 'version', name=op.f('uq_credit_models_name_version')),
    sa.UniqueConstraint('sha256', name=op.f('uq_credit_models_sha256'))
    )
    op.create_table('credit_model_scores',
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('scored_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_credit_model_scores_customer_id_customers')),
    sa.ForeignKeyConstraint(['model_id'], ['credit_models.id'], name=op.f('fk_credit_model_scores_model_id_credit_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('model_id', 'customer_id', name=op.f('pk_credit_model_scores'))
    )
    with op.batch_alter_table('credit_model_scores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_model_scores_customer_id'), ['customer_id'], unique=False)

    op.create_table('credit_profile_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('before', sa.JSON(), nullable=False),
    sa.Column('after', sa.JSON(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_credit_profile_changes_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_profile_changes'))
    )
    with op.batch_alter_table('credit_profile_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_profile_changes_customer_id'), ['customer_id'], unique=False)

    op.create_table('credit_profiles',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('limit_amount', crmcore.db.types.Money(precision=18, scale=4), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('payment_terms_days', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_reason', sa.String(length=500), nullable=True),
    sa.Column('hold_source', sa.String(length=16), nullable=True),
    sa.Column('last_review', sa.Date(), nullable=True),
    sa.Column('registry_id', sa.String(length=64), nullable=True),
    sa.Column('registry_name', sa.String(length=100), nullable=True),
    sa.Column('legal_form', sa.String(length=64), nullable=True),
    sa.Column('founded_on', sa.Date(), nullable=True),
    sa.Column('employees', sa.Integer(), nullable=True),
    sa.Column('financials_year', sa.Integer(), nullable=True),
    sa.Column('annual_revenue', crmcore.db.types.Money(precision=18, scale=4), nullable=True),
    sa.Column('equity', crmcore.db.types.Money(precision=18, scale=4), nullable=True),
    sa.Column('net_income', crmcore.db.types.Money(precision=18, scale=4), nullable=True),
    sa.Column('trade_references', sa.JSON(), nullable=False),
    sa.Column('investigation_notes', sa.Text(), nullable=True),
    sa.Column('investigated_on', sa.Date(), nullable=True),
    sa.Column('updated_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.CheckConstraint("status IN ('good', 'watch', 'hold', 'blocked')", name=op.f('ck_credit_profiles_status_known')),
    sa.CheckConstraint('limit_amount IS NULL OR limit_amount >= 0', name=op.f('ck_credit_profiles_limit_not_negative')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_credit_profiles_customer_id_customers')),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_credit_profiles'))
    )
    op.create_table('credit_releases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('expires_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('ended_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_credit_releases_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_releases'))
    )
    with op.batch_alter_table('credit_releases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_releases_customer_id'), ['customer_id'], unique=False)

    op.create_table('credit_scores',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('grade', sa.String(length=8), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('suggested_limit', crmcore.db.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('avg_days_to_pay', sa.Float(), nullable=True),
    sa.Column('days_beyond_terms', sa.Float(), nullable=True),
    sa.Column('overdue_share', sa.Float(), nullable=True),
    sa.Column('relationship_years', sa.Float(), nullable=True),
    sa.Column('volume_12m', sa.Float(), nullable=True),
    sa.Column('volume_trend', sa.Float(), nullable=True),
    sa.Column('writeoff_share', sa.Float(), nullable=True),
    sa.Column('complaints_12m', sa.Float(), nullable=True),
    sa.Column('scored_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_credit_scores_customer_id_customers')),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_credit_scores'))
    )
    op.create_table('credit_dunning_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('transaction_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('days_overdue', sa.Integer(), nullable=False),
    sa.Column('open_amount', crmcore.db.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('fee', crmcore.db.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('interest', crmcore.db.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('interaction_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_credit_dunning_events_customer_id_customers')),
    sa.ForeignKeyConstraint(['interaction_id'], ['interactions.id'], name=op.f('fk_credit_dunning_events_interaction_id_interactions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'], name=op.f('fk_credit_dunning_events_transaction_id_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_dunning_events'))
    )
    with op.batch_alter_table('credit_dunning_events', schema=None) as batch_op:
        batch_op.create_index('ix_credit_dunning_events_customer_at', ['customer_id', 'at'], unique=False)

    op.create_table('credit_dunning_items',
    sa.Column('transaction_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('last_action_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_credit_dunning_items_customer_id_customers')),
    sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'], name=op.f('fk_credit_dunning_items_transaction_id_transactions')),
    sa.PrimaryKeyConstraint('transaction_id', name=op.f('pk_credit_dunning_items'))
    )
    with op.batch_alter_table('credit_dunning_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_dunning_items_customer_id'), ['customer_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('credit_dunning_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_dunning_items_customer_id'))

    op.drop_table('credit_dunning_items')
    with op.batch_alter_table('credit_dunning_events', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_dunning_events_customer_at')

    op.drop_table('credit_dunning_events')
    op.drop_table('credit_scores')
    with op.batch_alter_table('credit_releases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_releases_customer_id'))

    op.drop_table('credit_releases')
    op.drop_table('credit_profiles')
    with op.batch_alter_table('credit_profile_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_profile_changes_customer_id'))

    op.drop_table('credit_profile_changes')
    with op.batch_alter_table('credit_model_scores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_model_scores_customer_id'))

    op.drop_table('credit_model_scores')
    op.drop_table('credit_models')
