"""credit: early-payment discounts, charges as ledger entries, warn mode, reviews, downgrade alerts

Revision ID: cr_0003
Revises: cr_0002
Create Date: 2026-12-07 16:30:00
"""
import sqlalchemy as sa
from alembic import op

import crmcore.db.types

revision = 'cr_0003'
down_revision = 'cr_0002'
branch_labels = None
depends_on = None

M = crmcore.db.types.Money(precision=18, scale=4)
T = crmcore.db.types.UTCDateTime(timezone=True)


def _fk(table: str, col: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([col], [f'{target}.id'], name=op.f(f'fk_{table}_{col}_{target}'))


def upgrade() -> None:
    with op.batch_alter_table('credit_profiles', schema=None) as b:
        b.add_column(sa.Column('next_review', sa.Date(), nullable=True))
        b.add_column(sa.Column('credit_group', sa.String(length=64), nullable=True))
        b.add_column(sa.Column('discount_percent', sa.Numeric(precision=5, scale=2), nullable=True))
        b.add_column(sa.Column('discount_days', sa.Integer(), nullable=True))
        b.create_check_constraint(op.f('ck_credit_profiles_discount_complete'),
                                  '(discount_percent IS NULL) = (discount_days IS NULL)')
        b.create_check_constraint(op.f('ck_credit_profiles_discount_percent_range'),
                                  'discount_percent IS NULL OR (discount_percent > 0 AND discount_percent < 100)')
        b.create_check_constraint(op.f('ck_credit_profiles_discount_days_positive'),
                                  'discount_days IS NULL OR discount_days >= 1')
    op.create_table('credit_charges',
    sa.Column('transaction_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('amount', M, nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('cleared_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("kind IN ('fee', 'interest')", name=op.f('ck_credit_charges_charge_kind_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_credit_charges_charge_positive')),
    _fk('credit_charges', 'transaction_id', 'transactions'), _fk('credit_charges', 'invoice_id', 'transactions'),
    _fk('credit_charges', 'customer_id', 'customers'), _fk('credit_charges', 'cleared_by_id', 'transactions'),
    sa.PrimaryKeyConstraint('transaction_id', name=op.f('pk_credit_charges')),
    )
    op.create_index(op.f('ix_credit_charges_invoice_id'), 'credit_charges', ['invoice_id'], unique=False)
    op.create_index(op.f('ix_credit_charges_customer_id'), 'credit_charges', ['customer_id'], unique=False)
    op.create_table('credit_discounts',
    sa.Column('transaction_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('amount', M, nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('at', T, nullable=False),
    _fk('credit_discounts', 'transaction_id', 'transactions'), _fk('credit_discounts', 'invoice_id', 'transactions'),
    _fk('credit_discounts', 'payment_id', 'transactions'), _fk('credit_discounts', 'customer_id', 'customers'),
    sa.PrimaryKeyConstraint('transaction_id', name=op.f('pk_credit_discounts')),
    sa.UniqueConstraint('invoice_id', name=op.f('uq_credit_discounts_invoice_id')),
    )
    op.create_index(op.f('ix_credit_discounts_customer_id'), 'credit_discounts', ['customer_id'], unique=False)
    op.create_table('credit_warnings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=True),
    sa.Column('amount', M, nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('message', sa.String(length=1000), nullable=False),
    sa.Column('mode_source', sa.String(length=80), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('at', T, nullable=False),
    _fk('credit_warnings', 'customer_id', 'customers'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_warnings')),
    )
    op.create_index(op.f('ix_credit_warnings_customer_id'), 'credit_warnings', ['customer_id'], unique=False)
    op.create_table('credit_grade_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('old_grade', sa.String(length=8), nullable=False),
    sa.Column('new_grade', sa.String(length=8), nullable=False),
    sa.Column('old_score', sa.Integer(), nullable=False),
    sa.Column('new_score', sa.Integer(), nullable=False),
    sa.Column('steps', sa.Integer(), nullable=False),
    sa.Column('at', T, nullable=False),
    sa.Column('acknowledged', sa.Boolean(), nullable=False),
    _fk('credit_grade_changes', 'customer_id', 'customers'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_grade_changes')),
    )
    op.create_index(op.f('ix_credit_grade_changes_customer_id'), 'credit_grade_changes', ['customer_id'], unique=False)


def downgrade() -> None:
    for table in ('credit_grade_changes', 'credit_warnings', 'credit_discounts', 'credit_charges'):
        op.drop_table(table)
    with op.batch_alter_table('credit_profiles', schema=None) as b:
        b.drop_constraint(op.f('ck_credit_profiles_discount_days_positive'), type_='check')
        b.drop_constraint(op.f('ck_credit_profiles_discount_percent_range'), type_='check')
        b.drop_constraint(op.f('ck_credit_profiles_discount_complete'), type_='check')
        b.drop_column('discount_days')
        b.drop_column('discount_percent')
        b.drop_column('credit_group')
        b.drop_column('next_review')
