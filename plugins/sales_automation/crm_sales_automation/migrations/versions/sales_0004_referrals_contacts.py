"""sales_automation: "referred by" on leads and customers; the contact person on activities

``sales_leads.referred_by_id`` names the customer who referred a lead, ``sales_referrals`` the
customer who referred a customer (one per customer; the lead it was carried over from at
conversion), and ``sales_activities.contact_id`` the person of the customer an activity is with.

On SQLite both tables are copied, up and down: a column added by ``ALTER TABLE`` would carry its
foreign key inline, which reflection cannot read back (the schema check would see it differ),
and SQLite cannot drop a column that has a foreign key. Copying ``sales_leads`` fires the ON
DELETE actions of the tables pointing at it, so their rows are set aside and put back with
sales_0003's helper.

Revision ID: sales_0004
Revises: sales_0003
"""
import importlib.util
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import sqlalchemy as sa
from alembic import op

import crmcore.db.types

revision = 'sales_0004'
down_revision = 'sales_0003'
branch_labels = None
depends_on = None

#: (table, column, referenced table) of the two columns this revision adds
COLUMNS = (('sales_leads', 'referred_by_id', 'customers'), ('sales_activities', 'contact_id', 'contacts'))


def _add_reference(table: str, column: str, target: str) -> None:
    fk = sa.ForeignKey(f'{target}.id', name=op.f(f'fk_{table}_{column}_{target}'), ondelete='SET NULL')
    with _keeping_children() if table == 'sales_leads' else nullcontext(), \
            op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.add_column(sa.Column(column, sa.Integer(), fk, nullable=True))
        batch_op.create_index(batch_op.f(f'ix_{table}_{column}'), [column], unique=False)


def upgrade() -> None:
    for table, column, target in COLUMNS:
        _add_reference(table, column, target)
    op.create_table('sales_referrals',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('referrer_id', sa.Integer(), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=True),
    sa.Column('referred_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=64), nullable=False),
    sa.CheckConstraint('referrer_id <> customer_id', name=op.f('ck_sales_referrals_not_self')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_sales_referrals_customer_id_customers'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lead_id'], ['sales_leads.id'], name=op.f('fk_sales_referrals_lead_id_sales_leads'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['referrer_id'], ['customers.id'], name=op.f('fk_sales_referrals_referrer_id_customers'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_sales_referrals'))
    )
    op.create_index(op.f('ix_sales_referrals_referrer_id'), 'sales_referrals', ['referrer_id'], unique=False)


def _keeping_children() -> AbstractContextManager[None]:
    """sales_0003's context manager (the rows pointing at leads set aside on SQLite)."""
    path = Path(__file__).with_name('sales_0003_vocabularies.py')
    spec = importlib.util.spec_from_file_location('crm_sales_migration_0003', path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._keeping_children()  # type: ignore[no-any-return,unused-ignore]


def downgrade() -> None:
    op.drop_index(op.f('ix_sales_referrals_referrer_id'), table_name='sales_referrals')
    op.drop_table('sales_referrals')
    for table, column, target in reversed(COLUMNS):
        op.drop_index(op.f(f'ix_{table}_{column}'), table_name=table)
        if op.get_bind().dialect.name != 'sqlite':
            op.drop_constraint(op.f(f'fk_{table}_{column}_{target}'), table, type_='foreignkey')
            op.drop_column(table, column)
            continue
        with _keeping_children() if table == 'sales_leads' else nullcontext(), \
                op.batch_alter_table(table, schema=None, recreate='always') as batch_op:
            batch_op.drop_column(column)
