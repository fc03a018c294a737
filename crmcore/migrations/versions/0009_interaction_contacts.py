"""the contact person on an interaction

``interactions.contact_id`` names the person of the customer spoken with. Nullable (most
touchpoints have none) and ON DELETE SET NULL: removing a contact keeps the customer's timeline,
only without the person. Indexed, so that deleting a contact and "this person's interactions" do
not scan every interaction.

On SQLite both ways copy ``interactions`` (batch mode: a named foreign key cannot be added or
dropped in place), and dropping the old copy would fire the ON DELETE actions of the plugin tables
pointing at it; so those tables are set aside and put back by 0007's helper, as 0007 does.

Revision ID: 0009_interaction_contacts
Revises: 0008_ledger_links
"""
import importlib.util
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0009_interaction_contacts'
down_revision = '0008_ledger_links'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with _keeping_dependents(), op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contact_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_interactions_contact_id_contacts'), 'contacts',
                                    ['contact_id'], ['id'], ondelete='SET NULL')
        batch_op.create_index(batch_op.f('ix_interactions_contact_id'), ['contact_id'], unique=False)


def _keeping_dependents() -> Any:
    """0007's context manager (the tables pointing at ``interactions`` set aside on SQLite)."""
    path = Path(__file__).with_name('0007_vocabularies.py')
    spec = importlib.util.spec_from_file_location('crm_migration_0007', path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._keeping_dependents()


def downgrade() -> None:
    with _keeping_dependents(), op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_interactions_contact_id'))
        batch_op.drop_constraint(batch_op.f('fk_interactions_contact_id_contacts'), type_='foreignkey')
        batch_op.drop_column('contact_id')
