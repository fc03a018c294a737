"""value_analysis: a run keeps one digest per snapshot row and its model fit

Re-running a date that is stored already rewrites only the snapshot rows whose values changed;
the digests (customer ids and one 64-bit digest per row, as bytes) say which. NULL means
unknown: the next re-run of that date rewrites every row, as before. ``model_cache`` keeps the
run's fit with the key of its inputs, so a re-run on the same data does not fit again.

Revision ID: va_0004
Revises: va_0003
Create Date: 2026-12-07 23:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'va_0004'
down_revision = 'va_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('value_analysis_runs') as batch:
        batch.add_column(sa.Column('row_digests', sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column('model_cache', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('value_analysis_runs') as batch:
        batch.drop_column('model_cache')
        batch.drop_column('row_digests')
