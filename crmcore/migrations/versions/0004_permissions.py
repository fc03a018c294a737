"""permissions and settings (owned by Plugin platform 2, part 2)

Revision ID: 0004_permissions
Revises: 0003_platform
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import crmcore.db.types  # noqa: F401


revision = '0004_permissions'
down_revision = '0003_platform'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
