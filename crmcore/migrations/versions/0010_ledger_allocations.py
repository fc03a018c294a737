"""ledger allocations: a payment, credit note or write-off settling several invoices

``transaction_allocations`` (entry id, target id, amount): one row per invoice (or charge) an
entry settles, with the amount it settles there. Both ids are entries of ``transactions`` (the
same account: the posting service and the importer check it). ``applies_to_id`` stays: one
entry named without an amount, the short form that 0008 introduced.

A new table only: nothing is copied, on either engine. The downgrade writes the first allocated
target of each entry that has no ``applies_to_id`` back into ``applies_to_id`` (the closest the
old schema can say) before the table goes.

Revision ID: 0010_ledger_allocations
Revises: 0009_interaction_contacts
"""
import sqlalchemy as sa
from alembic import op

import crmcore.db.types

revision = '0010_ledger_allocations'
down_revision = '0009_interaction_contacts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'transaction_allocations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('entry_id', sa.Integer(), nullable=False),
        sa.Column('target_id', sa.Integer(), nullable=False),
        sa.Column('amount', crmcore.db.types.Money(precision=18, scale=4), nullable=False),
        sa.ForeignKeyConstraint(['entry_id'], ['transactions.id'],
                                name=op.f('fk_transaction_allocations_entry_id_transactions')),
        sa.ForeignKeyConstraint(['target_id'], ['transactions.id'],
                                name=op.f('fk_transaction_allocations_target_id_transactions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_transaction_allocations')),
        sa.UniqueConstraint('entry_id', 'target_id', name=op.f('uq_transaction_allocations_entry_id_target_id')),
    )
    with op.batch_alter_table('transaction_allocations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transaction_allocations_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_transaction_allocations_target_id'), ['target_id'], unique=False)


def downgrade() -> None:
    op.execute(
        "UPDATE transactions SET applies_to_id = (SELECT a.target_id FROM transaction_allocations a "
        "WHERE a.entry_id = transactions.id ORDER BY a.id LIMIT 1) "
        "WHERE applies_to_id IS NULL AND id IN (SELECT entry_id FROM transaction_allocations)")
    with op.batch_alter_table('transaction_allocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transaction_allocations_target_id'))
        batch_op.drop_index(batch_op.f('ix_transaction_allocations_entry_id'))
    op.drop_table('transaction_allocations')
