"""marketing: campaigns addressed to contacts by role, and their people targets

Revision ID: mk_0003
Revises: mk_0002
"""
import sqlalchemy as sa
from alembic import op

import crmcore.db.types

revision = 'mk_0003'
down_revision = 'mk_0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('marketing_campaigns') as batch:
        batch.add_column(sa.Column('to_roles', sa.String(length=200), nullable=True))
    op.create_table('marketing_contact_targets',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
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
    sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'],
                            name=op.f('fk_marketing_contact_targets_campaign_id_marketing_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_marketing_contact_targets_contact_id_contacts'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_marketing_contact_targets_customer_id_customers')),
    sa.ForeignKeyConstraint(['interaction_id'], ['interactions.id'],
                            name=op.f('fk_marketing_contact_targets_interaction_id_interactions')),
    sa.ForeignKeyConstraint(['variant_id'], ['marketing_variants.id'],
                            name=op.f('fk_marketing_contact_targets_variant_id_marketing_variants')),
    sa.PrimaryKeyConstraint('campaign_id', 'contact_id', name=op.f('pk_marketing_contact_targets'))
    )
    op.create_index('ix_marketing_contact_targets_status', 'marketing_contact_targets', ['campaign_id', 'status'])
    op.create_index(op.f('ix_marketing_contact_targets_customer_id'), 'marketing_contact_targets', ['customer_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_marketing_contact_targets_customer_id'), table_name='marketing_contact_targets')
    op.drop_index('ix_marketing_contact_targets_status', table_name='marketing_contact_targets')
    op.drop_table('marketing_contact_targets')
    with op.batch_alter_table('marketing_campaigns') as batch:
        batch.drop_column('to_roles')
