"""service: drop the first-response / resolution minutes indexes (the report is one aggregate
pass over the tickets now, no index-ordered histograms; they only cost writes)

Revision ID: service_0003
Revises: service_0002
"""
from alembic import op

revision = 'service_0003'
down_revision = 'service_0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('service_tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_service_tickets_res_minutes')
        batch_op.drop_index('ix_service_tickets_frt_minutes')


def downgrade() -> None:
    with op.batch_alter_table('service_tickets', schema=None) as batch_op:
        batch_op.create_index('ix_service_tickets_frt_minutes', ['first_response_minutes'], unique=False)
        batch_op.create_index('ix_service_tickets_res_minutes', ['resolution_minutes'], unique=False)
