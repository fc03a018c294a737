"""Hostile property of ``applies_to``: hypothesis draws entries naming earlier entries of the
same customer or of another one, unknown references, payments, themselves; customer S gets them
by ``uow.accounts.post`` one at a time, customer B the same rows in one import batch. The
accepted references and their links must be the same, and every stored link must point at an
invoice or charge of the same customer and account (a charge at an invoice)."""
from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import aliased

from crmcore import CRM
from crmcore.bulk.importer import run_import
from crmcore.bulk.readers import SourceRow
from crmcore.errors import CRMError
from crmcore.models import Transaction
from crmcore.schemas import CustomerCreate, TransactionCreate

AT = "2026-01-05T10:00:00+00:00"
counter = itertools.count()
KINDS = ["invoice", "invoice", "payment", "credit_note", "write_off", "charge", "adjustment"]
# what an entry names: -1 nothing, -2 an unknown reference, -3 the other customer's first invoice,
# -4 itself, k >= 0 the k-th entry drawn before it (of any kind)
entry = st.tuples(st.sampled_from(KINDS), st.integers(1, 500), st.integers(-4, 6))


def _rows(drawn: list[tuple[str, int, int]], prefix: str, other: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, (kind, amount, named) in enumerate(drawn):
        row: dict[str, Any] = {"kind": kind, "amount": str(amount), "reference": f"{prefix}{i}", "occurred_at": AT}
        if named == -2:
            row["applies_to"] = f"{prefix}NOPE"
        elif named == -3:
            row["applies_to"] = other
        elif named == -4:
            row["applies_to"] = row["reference"]
        elif 0 <= named < i:
            row["applies_to"] = f"{prefix}{named}"
        out.append(row)
    return out


def _state(crm: CRM, cid: int, prefix: str) -> dict[str, str | None]:
    with crm.unit_of_work(read_only=True) as uow:
        n = aliased(Transaction)
        rows = uow.session.execute(select(Transaction.reference, n.reference, n.customer_id, n.account_id, n.kind,
                                          Transaction.account_id, Transaction.kind)
                                   .outerjoin(n, n.id == Transaction.applies_to_id).where(Transaction.customer_id == cid)).all()
    for ref, target, t_cust, t_acc, t_kind, acc, kind in rows:
        if target is not None:  # a stored link is always one the rules allow
            assert t_cust == cid and t_acc == acc, (ref, target)
            assert t_kind.value in (("invoice",) if kind.value == "charge" else ("invoice", "charge")), (ref, target)
    return {ref[len(prefix):]: None if target is None else target[len(prefix):] for ref, target, *_ in rows}


@settings(max_examples=30, deadline=None)
@given(drawn=st.lists(entry, min_size=1, max_size=14))
def test_a_batch_links_as_posting_one_by_one(make_crm: Any, drawn: list[tuple[str, int, int]]) -> None:
    crm = make_crm()
    n = next(counter)
    with crm.unit_of_work() as uow:
        single, bulk, other = (uow.customers.create(CustomerCreate(name=f"{c}{n}", external_ref=f"{c}{n}")).id
                               for c in "SBO")
        uow.accounts.post(other, TransactionCreate(kind="invoice", amount=Decimal(5), reference=f"O{n}-INV", occurred_at=AT))
    for row in _rows(drawn, f"S{n}-", f"O{n}-INV"):
        try:
            with crm.unit_of_work() as uow:
                uow.accounts.post(single, TransactionCreate(**row))
        except (CRMError, ValueError):
            pass  # refused: one line, nothing written (checked by the state below)
    source = [SourceRow(i + 2, {"customer_ref": f"B{n}", **row}) for i, row in enumerate(_rows(drawn, f"B{n}-", f"O{n}-INV"))]
    run_import(crm, "transactions", source, actor="test", batch_size=1000)
    assert _state(crm, single, f"S{n}-") == _state(crm, bulk, f"B{n}-")
