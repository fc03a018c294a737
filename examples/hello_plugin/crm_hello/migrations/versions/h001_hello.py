"""hello greetings

Revision ID: h001_hello
Revises: (base of the hello branch; needs the core's 0001_core for customers)
Create Date: 2026-11-23 13:15:35.937133
"""
from alembic import op
import sqlalchemy as sa
import crmcore.db.types


revision = 'h001_hello'
down_revision = None
branch_labels = ('hello',)
depends_on = '0001_core'


def upgrade() -> None:
    op.create_table('hello_greetings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.String(length=250), nullable=False),
    sa.Column('created_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_hello_greetings_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hello_greetings'))
    )
    with op.batch_alter_table('hello_greetings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hello_greetings_customer_id'), ['customer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('hello_greetings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hello_greetings_customer_id'))
    op.drop_table('hello_greetings')
