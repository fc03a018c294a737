"""sales_automation: how an objection was handled, as a word of the ``objection_methods`` vocabulary

``sales_objections.method`` (nullable; rows stored before keep NULL, reported as "unspecified"),
indexed for the objections report and for crm.toml's check that a word in use is not removed.
Added and dropped natively on both engines (SQLite >= 3.35 drops a column without a foreign key
or an index on it in place: the index goes first), so no table is copied.

Revision ID: sales_0005
Revises: sales_0004
"""
import sqlalchemy as sa
from alembic import op

revision = 'sales_0005'
down_revision = 'sales_0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('sales_objections', sa.Column('method', sa.String(length=32), nullable=True))
    op.create_index(op.f('ix_sales_objections_method'), 'sales_objections', ['method'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_sales_objections_method'), table_name='sales_objections')
    op.execute('ALTER TABLE sales_objections DROP COLUMN method')
