"""ledger links: a payment or credit note names the invoice it settles; charges; cost per entry

- ``transactions.applies_to_id`` (nullable, a foreign key to ``transactions.id``, indexed): the
  entry a payment, credit note or write-off settles, or the invoice a charge is charged on;
- ``transactions.cost`` (nullable money): the entry's cost of goods;
- the kind ``charge`` (dunning fees, interest) joins the CHECK constraint of ``transactions.kind``.

The upgrade backfills ``applies_to_id`` from the old convention, ``invoice:REF`` in the
description of a payment, credit note or write-off, where REF is an invoice (or a positive
adjustment: a dunning charge of the credit plugin, which its own migration turns into a charge)
of the same account, as credit's open-item matching read it. The downgrade writes the link back
into the description (``invoice:REF``, where it is not there yet) and turns charges into positive
adjustments (the same effect on the balance) before the columns and the kind go.

On SQLite the CHECK constraint changes only by copying the table: the tables pointing at
``transactions`` are set aside and put back (0007's ``_dependents``), so no ON DELETE action fires.

Revision ID: 0008_ledger_links
Revises: 0007_vocabularies
"""
import importlib.util
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import op

import crmcore.db.types

revision = '0008_ledger_links'
down_revision = '0007_vocabularies'
branch_labels = None
depends_on = None

OLD_KINDS = ('invoice', 'payment', 'credit_note', 'adjustment', 'write_off')
NEW_KINDS = (*OLD_KINDS, 'charge')
NAMED = re.compile(r"invoice:\s*([^\s,;]+)", re.IGNORECASE)  # the old convention, as credit's ledger read it
CHUNK = 2000


def _dependents(bind: sa.Connection, targets: tuple[str, ...]) -> list[str]:
    """0007's helper (tables referencing ``targets``, parents first), loaded from its file."""
    spec = importlib.util.spec_from_file_location("crm_core_0007", Path(__file__).with_name("0007_vocabularies.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod._dependents(bind, targets)


@contextmanager
def _keeping_dependents() -> Iterator[None]:
    """On SQLite, empty the tables pointing at ``transactions`` while it is copied, then put every row back."""
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        yield
        return
    tables = _dependents(bind, ('transactions',))
    bind.execute(sa.text('PRAGMA defer_foreign_keys = ON'))
    for t in tables:
        bind.execute(sa.text(f'CREATE TEMP TABLE "keep_{t}" AS SELECT * FROM "{t}"'))
    for t in reversed(tables):
        bind.execute(sa.text(f'DELETE FROM "{t}"'))
    yield
    for t in tables:
        bind.execute(sa.text(f'INSERT INTO "{t}" SELECT * FROM "keep_{t}"'))
        bind.execute(sa.text(f'DROP TABLE "keep_{t}"'))
    bind.execute(sa.text('PRAGMA defer_foreign_keys = OFF'))


def upgrade() -> None:
    with _keeping_dependents(), op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('applies_to_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('cost', crmcore.db.types.Money(precision=18, scale=4), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_transactions_applies_to_id_transactions'), 'transactions',
                                    ['applies_to_id'], ['id'])
        batch_op.create_index(batch_op.f('ix_transactions_applies_to_id'), ['applies_to_id'], unique=False)
        batch_op.drop_constraint(op.f('ck_transactions_transaction_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_transactions_transaction_kind'), sa.column('kind').in_(NEW_KINDS))
    _backfill(op.get_bind())


def _backfill(bind: sa.Connection) -> None:
    """``applies_to_id`` of the credits whose description names an invoice of their account."""
    rows = bind.execute(sa.text(
        "SELECT id, account_id, description FROM transactions WHERE kind IN ('payment', 'credit_note', 'write_off') "
        "AND lower(description) LIKE '%invoice:%'")).all()
    named: list[tuple[int, int, str]] = []
    for tid, account_id, description in rows:
        m = NAMED.search(description)
        if m:
            named.append((tid, account_id, m.group(1)))
    refs = sorted({r for _, _, r in named})
    targets: dict[tuple[int, str], int] = {}
    for i in range(0, len(refs), CHUNK):
        stmt = sa.text("SELECT id, account_id, reference FROM transactions WHERE reference IN :refs "
                       "AND (kind = 'invoice' OR (kind = 'adjustment' AND amount > 0))"
                       ).bindparams(sa.bindparam('refs', expanding=True))
        for tid, account_id, ref in bind.execute(stmt, {"refs": refs[i:i + CHUNK]}):
            targets[(account_id, ref)] = tid
    links = [{"i": tid, "t": targets[(acc, ref)]} for tid, acc, ref in named if (acc, ref) in targets]
    if links:
        bind.execute(sa.text("UPDATE transactions SET applies_to_id = :t WHERE id = :i"), links)


def _links_into_descriptions(bind: sa.Connection) -> None:
    """Before the column goes: ``invoice:REF`` in the description of each entry naming REF (if not there)."""
    rows = bind.execute(sa.text(
        "SELECT t.id, t.description, n.reference FROM transactions t JOIN transactions n ON n.id = t.applies_to_id "
        "WHERE t.kind IN ('payment', 'credit_note', 'write_off')")).all()
    out: list[dict[str, Any]] = []
    for tid, description, ref in rows:
        m = NAMED.search(description or "")
        if m and m.group(1) == ref:
            continue
        tag = f"invoice:{ref}"
        out.append({"i": tid, "d": (f"{tag} {description}" if description else tag)[:500]})
    if out:
        bind.execute(sa.text("UPDATE transactions SET description = :d WHERE id = :i"), out)


def downgrade() -> None:
    bind = op.get_bind()
    _links_into_descriptions(bind)
    op.execute("UPDATE transactions SET kind = 'adjustment' WHERE kind = 'charge'")  # the same sign: balances stay
    with _keeping_dependents(), op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transactions_applies_to_id'))
        batch_op.drop_constraint(batch_op.f('fk_transactions_applies_to_id_transactions'), type_='foreignkey')
        batch_op.drop_column('cost')
        batch_op.drop_column('applies_to_id')
        batch_op.drop_constraint(op.f('ck_transactions_transaction_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_transactions_transaction_kind'), sa.column('kind').in_(OLD_KINDS))
