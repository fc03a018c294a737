"""plugin platform 2: merge journal, plugin registry (owned by Plugin platform 2, part 1)

Revision ID: 0003_platform
Revises: 0002_reliability
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import crmcore.db.types  # noqa: F401


revision = '0003_platform'
down_revision = '0002_reliability'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
