"""contact roles and interaction kinds become configurable vocabularies

``contacts.role`` and ``interactions.kind`` lose their CHECK constraints and widen to 32
characters: the words allowed are those of crm.toml ``[vocabularies] contact_roles`` /
``interaction_kinds``, checked by the services; both are indexed, so the words in use are read
when the CRM opens in milliseconds (a loose index scan). The downgrade maps words outside the old
lists to ``other`` (kinds) and to no role (roles) before the constraints return.

SQLite changes a CHECK constraint only by copying the table, and dropping the old table fires the
ON DELETE actions of every table pointing at it (plugin tables too: marketing consents CASCADE,
sales conversions SET NULL, service tickets NO ACTION), inside the migration's transaction with
foreign keys enforced. :func:`_keeping_dependents` sets those tables aside and puts them back.

Revision ID: 0007_vocabularies
Revises: 0006_console
"""
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = '0007_vocabularies'
down_revision = '0006_console'
branch_labels = None
depends_on = None

TABLES = ('contacts', 'interactions')
OLD_ROLES = ('initiator', 'user', 'influencer', 'decider', 'gatekeeper')
OLD_KINDS = ('inquiry', 'complaint', 'feedback', 'follow_up', 'sale', 'support', 'marketing', 'other')


def _dependents(bind: sa.Connection, targets: tuple[str, ...]) -> list[str]:
    """Tables referencing ``targets`` directly or through one another, parents before children."""
    insp = sa.inspect(bind)
    parents = {t: {fk['referred_table'] for fk in insp.get_foreign_keys(t)} - {t} for t in insp.get_table_names()}
    found: list[str] = []
    todo = list(targets)
    while todo:
        cur = todo.pop(0)
        for t in sorted(parents):
            if cur in parents[t] and t not in found and t not in targets:
                found.append(t)
                todo.append(t)
    ordered: list[str] = []  # parents first; a cycle (none today) keeps discovery order
    while len(ordered) < len(found):
        ready = [t for t in found if t not in ordered and not (parents[t] & set(found)) - set(ordered)]
        ordered.extend(ready or [t for t in found if t not in ordered][:1])
    return ordered


@contextmanager
def _keeping_dependents() -> Iterator[None]:
    """On SQLite, empty the tables pointing at ``TABLES`` (children first, so no ON DELETE action
    fires and no reference blocks the drop) while those are copied, then put every row back."""
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        yield
        return
    tables = _dependents(bind, TABLES)
    bind.execute(sa.text('PRAGMA defer_foreign_keys = ON'))  # until commit: a cycle restored in any order
    for t in tables:
        bind.execute(sa.text(f'CREATE TEMP TABLE "keep_{t}" AS SELECT * FROM "{t}"'))
    for t in reversed(tables):
        bind.execute(sa.text(f'DELETE FROM "{t}"'))
    yield
    for t in tables:
        bind.execute(sa.text(f'INSERT INTO "{t}" SELECT * FROM "keep_{t}"'))  # the same primary keys
        bind.execute(sa.text(f'DROP TABLE "keep_{t}"'))
    bind.execute(sa.text('PRAGMA defer_foreign_keys = OFF'))  # checks what is left at once, as before


def upgrade() -> None:
    with _keeping_dependents():
        with op.batch_alter_table('contacts', schema=None) as batch_op:
            batch_op.drop_constraint(op.f('ck_contacts_contact_role'), type_='check')
            batch_op.alter_column('role', existing_type=sa.String(length=14), type_=sa.String(length=32),
                                  existing_nullable=True)
            batch_op.create_index(batch_op.f('ix_contacts_role'), ['role'], unique=False)  # words in use, at open
        with op.batch_alter_table('interactions', schema=None) as batch_op:
            batch_op.drop_constraint(op.f('ck_interactions_interaction_kind'), type_='check')
            batch_op.alter_column('kind', existing_type=sa.String(length=13), type_=sa.String(length=32),
                                  existing_nullable=False)
            batch_op.create_index(batch_op.f('ix_interactions_kind'), ['kind'], unique=False)


def downgrade() -> None:
    contacts = sa.table('contacts', sa.column('role', sa.String))
    op.execute(contacts.update().where(contacts.c.role.not_in(OLD_ROLES)).values(role=None))
    interactions = sa.table('interactions', sa.column('kind', sa.String))
    op.execute(interactions.update().where(interactions.c.kind.not_in(OLD_KINDS)).values(kind='other'))
    with _keeping_dependents():
        with op.batch_alter_table('contacts', schema=None) as batch_op:
            batch_op.drop_index(batch_op.f('ix_contacts_role'))
            batch_op.alter_column('role', existing_type=sa.String(length=32), type_=sa.String(length=14),
                                  existing_nullable=True)
            batch_op.create_check_constraint(op.f('ck_contacts_contact_role'), sa.column('role').in_(OLD_ROLES))
        with op.batch_alter_table('interactions', schema=None) as batch_op:
            batch_op.drop_index(batch_op.f('ix_interactions_kind'))
            batch_op.alter_column('kind', existing_type=sa.String(length=32), type_=sa.String(length=13),
                                  existing_nullable=False)
            batch_op.create_check_constraint(op.f('ck_interactions_interaction_kind'),
                                             sa.column('kind').in_(OLD_KINDS))
