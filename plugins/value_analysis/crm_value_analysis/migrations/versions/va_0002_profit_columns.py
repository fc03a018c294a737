"""value_analysis: profit per customer (gross margin, cost to serve, profit), the loyalty index's added factors, churn reasons

Revision ID: va_0002
Revises: va_0001
Create Date: 2026-12-07 16:30:00
"""
import sqlalchemy as sa
from alembic import op

import crmcore.db.types

revision = 'va_0002'
down_revision = 'va_0001'
branch_labels = None
depends_on = None

_COLUMNS = ('gross_margin', 'cost_to_serve', 'profit', 'loyalty_share_of_wallet', 'loyalty_referrals',
            'loyalty_price_sensitivity', 'loyalty_voluntariness')


def upgrade() -> None:
    with op.batch_alter_table('value_analysis_customer_values') as batch:
        for name in _COLUMNS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))
    op.create_table('value_analysis_churn_reasons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('lost_on', sa.Date(), nullable=False),
    sa.Column('recorded_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_value_analysis_churn_reasons_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_value_analysis_churn_reasons'))
    )
    op.create_index(op.f('ix_value_analysis_churn_reasons_customer_id'), 'value_analysis_churn_reasons', ['customer_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_value_analysis_churn_reasons_customer_id'), table_name='value_analysis_churn_reasons')
    op.drop_table('value_analysis_churn_reasons')
    with op.batch_alter_table('value_analysis_customer_values') as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
