"""warranty claims

Revision ID: warranty_0001
Revises: (base of the warranty branch; needs the core's 0001_core for customers)
"""
import sqlalchemy as sa
from alembic import op

import crmcore.db.types

revision = 'warranty_0001'
down_revision = None
branch_labels = ('warranty',)
depends_on = '0001_core'


def upgrade() -> None:
    op.create_table(
        'warranty_claims',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('external_ref', sa.String(length=100), nullable=False),
        sa.Column('product', sa.String(length=200), nullable=False),
        sa.Column('sold_on', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('amount', crmcore.db.types.Money(), nullable=True),
        sa.Column('opened_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_warranty_claims_customer_id_customers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_warranty_claims')),
        sa.UniqueConstraint('external_ref', name=op.f('uq_warranty_claims_external_ref')),
    )
    with op.batch_alter_table('warranty_claims') as batch_op:
        batch_op.create_index(batch_op.f('ix_warranty_claims_customer_id'), ['customer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('warranty_claims') as batch_op:
        batch_op.drop_index(batch_op.f('ix_warranty_claims_customer_id'))
    op.drop_table('warranty_claims')
