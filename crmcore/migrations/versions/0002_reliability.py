"""ledger: reference unique per customer, exact money, Unicode search (owned by the Reliability work)

- transactions.customer_id (the account's customer, filled from accounts), UNIQUE(customer_id,
  reference) instead of UNIQUE(account_id, reference), and a composite foreign key
  (account_id, customer_id) -> accounts(id, customer_id) ON UPDATE CASCADE so it stays right
  through merges;
- amounts with four decimals (every ISO 4217 currency); balances exact: NUMERIC(20, 4) on
  PostgreSQL, integer 1/10,000 units on SQLite;
- customers.search_name, the case-folded name that search compares on both engines.

Revision ID: 0002_reliability
Revises: 0001_core
"""
import sqlalchemy as sa
from alembic import op

from crmcore.errors import DatabaseError
from crmcore.models.customer import SEARCH_WIDTH, fold

revision = '0002_reliability'
down_revision = '0001_core'
branch_labels = None
depends_on = None

SCALE = 10_000  # SQLite balances: integer 1/10,000 units (crmcore.db.types.Balance)


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _fill_search_names() -> None:
    conn = op.get_bind()
    customers = sa.table("customers", sa.column("id", sa.Integer), sa.column("name", sa.String),
                         sa.column("search_name", sa.String))
    last = 0
    while True:  # in pages, so a big table is not held in memory
        rows = conn.execute(sa.select(customers.c.id, customers.c.name).where(customers.c.id > last)
                            .order_by(customers.c.id).limit(5000)).all()
        if not rows:
            return
        conn.execute(customers.update().where(customers.c.id == sa.bindparam("_id"))
                     .values(search_name=sa.bindparam("_s")), [{"_id": i, "_s": fold(n)} for i, n in rows])
        last = rows[-1][0]


def _refuse_duplicate_references() -> None:
    dup = op.get_bind().execute(sa.text(
        "SELECT a.customer_id, t.reference, count(*) FROM transactions t JOIN accounts a ON a.id = t.account_id "
        "GROUP BY a.customer_id, t.reference HAVING count(*) > 1 ORDER BY 1, 2 LIMIT 5")).all()
    if dup:
        listed = "; ".join(f"customer {c}: reference {r!r} {n} times" for c, r, n in dup)
        raise DatabaseError(f"migration 0002_reliability cannot make document references unique per customer: {listed}. "
                            "Nothing was changed; give the later entries new references, then run `crm db upgrade` again.")


def upgrade() -> None:
    # SQLite: the referenced tables (customers, accounts) are changed in place, never rebuilt: a
    # rebuild drops a table that other rows reference, which SQLite refuses inside a transaction
    sqlite = _sqlite()
    _refuse_duplicate_references()

    op.add_column('customers', sa.Column('search_name', sa.String(length=SEARCH_WIDTH), server_default='', nullable=False))
    _fill_search_names()
    op.create_index('ix_customers_search_name', 'customers', ['search_name'], unique=False)

    if sqlite:  # integers of 1/10,000 units in the same NUMERIC column (crmcore.db.types.Balance)
        op.execute(f"UPDATE accounts SET balance = CAST(ROUND(balance * {SCALE}) AS INTEGER)")
    else:
        op.alter_column('accounts', 'balance', existing_type=sa.Numeric(18, 2), type_=sa.Numeric(20, 4),
                        existing_nullable=False)
    op.create_index('uq_accounts_id_customer_id', 'accounts', ['id', 'customer_id'], unique=True)

    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_id', sa.Integer(), nullable=True))
    op.execute("UPDATE transactions SET customer_id = (SELECT a.customer_id FROM accounts a WHERE a.id = transactions.account_id)")
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.alter_column('customer_id', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('amount', existing_type=sa.Numeric(18, 2), type_=sa.Numeric(18, 4), existing_nullable=False)
        batch_op.drop_constraint('uq_transactions_account_id_reference', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_transactions_customer_id_reference'), ['customer_id', 'reference'])
        batch_op.create_foreign_key('fk_transactions_account_customer', 'accounts', ['account_id', 'customer_id'],
                                    ['id', 'customer_id'], onupdate='CASCADE')


def downgrade() -> None:
    sqlite = _sqlite()
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.drop_constraint('fk_transactions_account_customer', type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_transactions_customer_id_reference'), type_='unique')
        batch_op.create_unique_constraint('uq_transactions_account_id_reference', ['account_id', 'reference'])
        batch_op.alter_column('amount', existing_type=sa.Numeric(18, 4), type_=sa.Numeric(18, 2), existing_nullable=False)
        batch_op.drop_column('customer_id')

    op.drop_index('uq_accounts_id_customer_id', table_name='accounts')
    if sqlite:
        op.execute(f"UPDATE accounts SET balance = balance / {SCALE}.0")
    else:
        op.alter_column('accounts', 'balance', existing_type=sa.Numeric(20, 4), type_=sa.Numeric(18, 2),
                        existing_nullable=False)

    op.drop_index('ix_customers_search_name', table_name='customers')
    if sqlite:  # in place (SQLite >= 3.35), not by a rebuild of the referenced table
        op.execute("ALTER TABLE customers DROP COLUMN search_name")
    else:
        op.drop_column('customers', 'search_name')
