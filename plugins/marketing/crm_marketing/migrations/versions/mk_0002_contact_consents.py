"""marketing: consent per contact (person) and channel

Revision ID: mk_0002
Revises: mk_0001
"""
import sqlalchemy as sa
from alembic import op

import crmcore.db.types

revision = 'mk_0002'
down_revision = 'mk_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('marketing_contact_consents',
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_marketing_contact_consents_contact_id_contacts'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('contact_id', 'channel', name=op.f('pk_marketing_contact_consents'))
    )


def downgrade() -> None:
    op.drop_table('marketing_contact_consents')
