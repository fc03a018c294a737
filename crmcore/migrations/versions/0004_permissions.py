"""permissions and settings (Plugin platform 2, part 2): no schema change

Permissions are enforced with what 0001_core already stores: ``users.roles`` and
``users.active``. Role -> permission sets are code (the core's and the plugins' declarations)
plus crm.toml ``[roles.*]``, and plugin settings come from crm.toml and the environment, so
nothing new is stored; the revision keeps the core chain's place for them.

Revision ID: 0004_permissions
Revises: 0003_platform
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import crmcore.db.types  # noqa: F401

revision = '0004_permissions'
down_revision = '0003_platform'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
