"""sales_automation: a lead is converted once (UNIQUE sales_conversions.lead_id)

Before this revision, conversions of one lead racing each other on PostgreSQL could record two
conversions (and create two customers). Such duplicates are resolved before the constraint is
added: the conversion the lead points at (``sales_leads.customer_id``), else the latest, is
kept; each one removed is written to the audit log (action ``dedupe``, with the removed row and
the kept id), so an admin can find the extra customer and merge it (`crm customer merge`).

Revision ID: sales_0002
Revises: sales_0001
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

import crmcore.db.types

revision = 'sales_0002'
down_revision = 'sales_0001'
branch_labels = None
depends_on = None

CONVERSIONS = sa.table("sales_conversions", sa.column("id", sa.Integer), sa.column("lead_id", sa.Integer),
                       sa.column("customer_id", sa.Integer), sa.column("matched_by", sa.String),
                       sa.column("converted_by", sa.String))
LEADS = sa.table("sales_leads", sa.column("id", sa.Integer), sa.column("customer_id", sa.Integer))
AUDIT = sa.table("audit_log", sa.column("at", crmcore.db.types.UTCDateTime), sa.column("actor", sa.String),
                 sa.column("action", sa.String), sa.column("entity", sa.String), sa.column("entity_id", sa.String),
                 sa.column("before", sa.JSON), sa.column("after", sa.JSON))


def _remove_duplicates() -> None:
    """Keep one conversion per lead (see the module docstring); audit every row removed."""
    conn = op.get_bind()
    dup_leads = sa.select(CONVERSIONS.c.lead_id).group_by(CONVERSIONS.c.lead_id).having(sa.func.count() > 1)
    rows = conn.execute(sa.select(CONVERSIONS.c.id, CONVERSIONS.c.lead_id, CONVERSIONS.c.customer_id,
                                  CONVERSIONS.c.matched_by, CONVERSIONS.c.converted_by, LEADS.c.customer_id)
                        .join(LEADS, LEADS.c.id == CONVERSIONS.c.lead_id)
                        .where(CONVERSIONS.c.lead_id.in_(dup_leads)).order_by(CONVERSIONS.c.lead_id, CONVERSIONS.c.id)).all()
    by_lead: dict[int, list[sa.Row]] = {}
    for r in rows:
        by_lead.setdefault(r[1], []).append(r)
    now = dt.datetime.now(dt.UTC)
    for lead_id, convs in by_lead.items():
        kept = next((r for r in reversed(convs) if r[2] == r[5]), convs[-1])
        for r in convs:
            if r is kept:
                continue
            conn.execute(sa.delete(CONVERSIONS).where(CONVERSIONS.c.id == r[0]))
            conn.execute(sa.insert(AUDIT).values(
                at=now, actor="migration sales_0002", action="dedupe", entity="sales.conversion", entity_id=str(r[0]),
                before={"lead_id": lead_id, "customer_id": r[2], "matched_by": r[3], "converted_by": r[4]},
                after={"kept": kept[0], "customer_id": kept[2]}))


def upgrade() -> None:
    _remove_duplicates()
    with op.batch_alter_table('sales_conversions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sales_conversions_lead_id'))
        batch_op.create_unique_constraint(batch_op.f('uq_sales_conversions_lead_id'), ['lead_id'])


def downgrade() -> None:
    with op.batch_alter_table('sales_conversions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_sales_conversions_lead_id'), type_='unique')
        batch_op.create_index(batch_op.f('ix_sales_conversions_lead_id'), ['lead_id'], unique=False)
