"""sales_automation: lead sources and won/lost reasons become configurable vocabularies

``sales_leads.source`` loses its CHECK constraint (the words allowed are those of crm.toml
``[vocabularies] lead_sources``, checked by the services); deals get a won or lost reason word
(``won_reason``, ``lost_reason_code``, from ``won_reasons`` / ``lost_reasons``) next to the free-text
lost reason, and leads the campaign they came from (``campaign_ref``) for the source reports.
Downgrade maps sources outside the old list to ``other`` before the constraint returns.

SQLite changes a CHECK constraint only by copying the table, and dropping the old ``sales_leads``
fires its ON DELETE actions (the connection enforces foreign keys, inside the migration's
transaction): the rows of its children are kept aside and put back (:func:`_keeping_children`).

Revision ID: sales_0003
Revises: sales_0002
"""
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = 'sales_0003'
down_revision = 'sales_0002'
branch_labels = None
depends_on = None

# tables whose rows point at a lead: CASCADE children (deleted with it) and SET NULL ones (unlinked)
CASCADE_CHILDREN = ('sales_lead_assessments', 'sales_conversions', 'sales_activities')
OLD_SOURCES = ('referral', 'advertising', 'event', 'web', 'cold_call', 'partner', 'existing_customer', 'other')


@contextmanager
def _keeping_children() -> Iterator[None]:
    """On SQLite, keep the rows that point at leads while ``sales_leads`` is copied and dropped."""
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        yield
        return
    for t in CASCADE_CHILDREN:
        bind.execute(sa.text(f'CREATE TEMP TABLE keep_{t} AS SELECT * FROM {t} WHERE lead_id IS NOT NULL'))
    bind.execute(sa.text('CREATE TEMP TABLE keep_links AS SELECT id, lead_id FROM sales_opportunities '
                         'WHERE lead_id IS NOT NULL'))
    yield
    for t in CASCADE_CHILDREN:
        bind.execute(sa.text(f'INSERT OR IGNORE INTO {t} SELECT * FROM keep_{t}'))  # the same primary keys
        bind.execute(sa.text(f'DROP TABLE keep_{t}'))
    bind.execute(sa.text('UPDATE sales_opportunities SET lead_id = (SELECT k.lead_id FROM keep_links AS k '
                         'WHERE k.id = sales_opportunities.id) WHERE id IN (SELECT id FROM keep_links)'))
    bind.execute(sa.text('DROP TABLE keep_links'))


def upgrade() -> None:
    with _keeping_children(), op.batch_alter_table('sales_leads', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_sales_leads_sales_lead_source'), type_='check')
        batch_op.alter_column('source', existing_type=sa.String(length=21), type_=sa.String(length=32),
                              existing_nullable=False)
        batch_op.add_column(sa.Column('campaign_ref', sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f('ix_sales_leads_campaign_ref'), ['campaign_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_sales_leads_source'), ['source'], unique=False)  # words in use, reports
    with op.batch_alter_table('sales_opportunities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lost_reason_code', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('won_reason', sa.String(length=32), nullable=True))


def downgrade() -> None:
    for name in ('won_reason', 'lost_reason_code'):  # natively (SQLite >= 3.35): no copy of the deals table
        op.execute(f'ALTER TABLE sales_opportunities DROP COLUMN {name}')
    leads = sa.table('sales_leads', sa.column('source', sa.String))
    op.execute(leads.update().where(leads.c.source.not_in(OLD_SOURCES)).values(source='other'))
    with _keeping_children(), op.batch_alter_table('sales_leads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sales_leads_source'))
        batch_op.drop_index(batch_op.f('ix_sales_leads_campaign_ref'))
        batch_op.drop_column('campaign_ref')
        batch_op.alter_column('source', existing_type=sa.String(length=32), type_=sa.String(length=21),
                              existing_nullable=False)
        batch_op.create_check_constraint(op.f('ck_sales_leads_sales_lead_source'),
                                         sa.column('source').in_(OLD_SOURCES))
