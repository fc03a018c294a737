"""service: tickets, notes, mail messages, return visits, survey answers

Revision ID: service_0001
Revises: (base of the service branch; needs the core's 0001_core for customers, contacts, users)
"""
import sqlalchemy as sa
from alembic import op

import crmcore.db.types

revision = 'service_0001'
down_revision = None
branch_labels = ('service',)
depends_on = '0001_core'


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
