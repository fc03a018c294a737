"""marketing: a campaign can be a price offer (discount, sale, coupon)

``marketing_campaigns.price_offer`` says whether buying in response to the campaign is buying
on price: value_analysis's price-sensitivity factor (A32) counts the spend attributed to such
campaigns. A plain ``ADD COLUMN`` with a server default on both engines (no table copy);
the downgrade drops it natively (SQLite >= 3.35).

Revision ID: mk_0004
Revises: mk_0003
"""
import sqlalchemy as sa
from alembic import op

revision = 'mk_0004'
down_revision = 'mk_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('marketing_campaigns', sa.Column('price_offer', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.execute('ALTER TABLE marketing_campaigns DROP COLUMN price_offer')
