"""credit: reason codes of every trained-scorecard score

Revision ID: cr_0002
Revises: cr_0001
Create Date: 2026-12-07 13:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'cr_0002'
down_revision = 'cr_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('credit_model_scores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reasons', sa.JSON(), nullable=False, server_default='[]'))
    with op.batch_alter_table('credit_model_scores', schema=None) as batch_op:
        batch_op.alter_column('reasons', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('credit_model_scores', schema=None) as batch_op:
        batch_op.drop_column('reasons')
