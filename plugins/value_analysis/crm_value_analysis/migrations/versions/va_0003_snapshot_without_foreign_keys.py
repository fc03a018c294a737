"""value_analysis: the snapshot rows carry no foreign keys

A snapshot is derived data written 100k rows at a time; on PostgreSQL the two per-row foreign-key
checks cost about as much as the COPY itself. The run writes the rows of a run it has just
created, for the customer ids it has just read; replacing a run deletes its rows first; merges
re-point them through ``crm_merge_customers``. So the constraints checked nothing the code does
not already guarantee.

Revision ID: va_0003
Revises: va_0002
Create Date: 2026-12-07 19:45:00
"""
from alembic import op

revision = 'va_0003'
down_revision = 'va_0002'
branch_labels = None
depends_on = None

_TABLE = 'value_analysis_customer_values'
_FK_CUSTOMER = 'fk_value_analysis_customer_values_customer_id_customers'
_FK_RUN = 'fk_value_analysis_customer_values_run_id_value_analysis_runs'


def upgrade() -> None:
    with op.batch_alter_table(_TABLE) as batch:
        batch.drop_constraint(_FK_CUSTOMER, type_='foreignkey')
        batch.drop_constraint(_FK_RUN, type_='foreignkey')


def downgrade() -> None:
    # rows of customers or runs that no longer exist would make the constraints fail: drop them first
    op.execute(f"DELETE FROM {_TABLE} WHERE customer_id NOT IN (SELECT id FROM customers) "
               f"OR run_id NOT IN (SELECT id FROM value_analysis_runs)")
    with op.batch_alter_table(_TABLE) as batch:
        batch.create_foreign_key(_FK_RUN, 'value_analysis_runs', ['run_id'], ['id'], ondelete='CASCADE')
        batch.create_foreign_key(_FK_CUSTOMER, 'customers', ['customer_id'], ['id'])
