"""service: return visits after won deals and invoices (reason, source), the SLA rule of a ticket,
indexes for the report histograms

Revision ID: service_0002
Revises: service_0001
"""
import sqlalchemy as sa
from alembic import op

revision = 'service_0002'
down_revision = 'service_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('service_visits', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sa.String(length=20), nullable=False, server_default='ticket'))
        batch_op.add_column(sa.Column('source', sa.String(length=120), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_service_visits_source'), ['source'])
    with op.batch_alter_table('service_tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sla_rule', sa.String(length=120), nullable=True))
        batch_op.create_index('ix_service_tickets_frt_minutes', ['first_response_minutes'], unique=False)
        batch_op.create_index('ix_service_tickets_res_minutes', ['resolution_minutes'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('service_tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_service_tickets_res_minutes')
        batch_op.drop_index('ix_service_tickets_frt_minutes')
        batch_op.drop_column('sla_rule')
    with op.batch_alter_table('service_visits', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_service_visits_source'), type_='unique')
        batch_op.drop_column('source')
        batch_op.drop_column('reason')
