"""service: a parallel-safe aggregate collecting integers into an array on PostgreSQL
(``service_int_agg``), for the report's exact percentiles

``string_agg`` and ``array_agg`` have no combine function before PostgreSQL 16, so a statement
using them runs in one process while a plain GROUP BY runs in parallel workers. This aggregate is
``array_append`` with ``array_cat`` as its combine function (an ``int4[]`` state needs no
serialisation), marked PARALLEL SAFE: the report's one pass over the tickets runs in parallel
like the baseline. Nothing on SQLite (the report uses ``group_concat`` there).

Revision ID: service_0005
Revises: service_0004
"""
from alembic import op

revision = 'service_0005'
down_revision = 'service_0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE OR REPLACE AGGREGATE service_int_agg (integer) (SFUNC = array_append, STYPE = integer[], "
                   "COMBINEFUNC = array_cat, INITCOND = '{}', PARALLEL = SAFE)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP AGGREGATE IF EXISTS service_int_agg (integer)")
