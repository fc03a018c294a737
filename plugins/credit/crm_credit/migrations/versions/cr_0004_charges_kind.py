"""credit: dunning charges become the core's ``charge`` entries, naming their invoice

The charges recorded in ``credit_charges`` were positive adjustments; the core's 0008 adds the
kind ``charge`` and ``applies_to_id``. Their kind changes (the same sign: no balance moves) and
each names its invoice. The downgrade turns them back into adjustments (their link goes with
the core's own downgrade).

Revision ID: cr_0004
Revises: cr_0003
"""
from alembic import op

revision = 'cr_0004'
down_revision = 'cr_0003'
branch_labels = None
depends_on = '0008_ledger_links'


def upgrade() -> None:
    op.execute("UPDATE transactions SET kind = 'charge', applies_to_id = (SELECT c.invoice_id FROM credit_charges c "
               "WHERE c.transaction_id = transactions.id) "
               "WHERE kind = 'adjustment' AND id IN (SELECT transaction_id FROM credit_charges)")


def downgrade() -> None:
    op.execute("UPDATE transactions SET kind = 'adjustment', applies_to_id = NULL "
               "WHERE kind = 'charge' AND id IN (SELECT transaction_id FROM credit_charges)")
