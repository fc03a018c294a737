"""Property: one import batch decides every row as posting the rows one by one would.

Hypothesis draws ledgers (invoices, payments and credit notes naming an invoice or none, a
missing one, positive and negative adjustments, explicit due dates out of order), a credit limit
and whether overpayment is allowed. Customer S gets the rows by `uow.accounts.post`, one at a
time, stored history first; customer B gets the same history posted, then the rows in one
`crm import transactions` batch. The accepted references, the balances and the open items
must be the same."""
from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import crm_credit.plugin as PLUGIN
from crm_credit import ledger, services
from crm_credit.testing import Book
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from crmcore import CRM, InvalidInput, Vetoed
from crmcore.bulk.importer import run_import
from crmcore.bulk.readers import SourceRow
from crmcore.models import Transaction

NOW = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
counter = itertools.count()

entry = st.tuples(
    st.sampled_from(["invoice", "invoice", "payment", "payment", "credit_note", "adjustment"]),
    st.integers(1, 300),
    st.integers(-1, 3),  # named invoice: -1 none, k: the k-th invoice drawn so far (or a missing one)
    st.integers(-40, 0),  # days ago (any order)
    st.one_of(st.none(), st.integers(-60, 30)),  # an explicit due date (invoices), days from now
    st.booleans(),  # a negative adjustment
)


def _rows(drawn: list[tuple], prefix: str) -> list[dict[str, Any]]:
    out, invoices = [], []
    for i, (kind, amount, named, ago, due, negative) in enumerate(drawn):
        ref = f"{prefix}{i}"
        row: dict[str, Any] = {"kind": kind, "amount": str(amount), "reference": ref,
                               "occurred_at": (NOW + dt.timedelta(days=ago, minutes=i)).isoformat()}
        if kind == "invoice":
            invoices.append(ref)
            if due is not None:
                row["due_date"] = (NOW.date() + dt.timedelta(days=due)).isoformat()
        elif kind == "adjustment":
            row["amount"] = str(-amount if negative else amount)
        elif named >= 0:
            row["applies_to"] = invoices[named] if named < len(invoices) else prefix + "NOPE"
        out.append(row)
    return out


def _post_one(crm: CRM, cid: int, row: dict[str, Any]) -> bool:
    from crmcore.schemas import TransactionCreate

    try:
        with crm.unit_of_work("test") as uow:
            uow.accounts.post(cid, TransactionCreate(**row))
        return True
    except (Vetoed, InvalidInput):  # a guard's refusal, or a named invoice that is not there
        return False


def _state(crm: CRM, cid: int, prefix: str) -> tuple[set[str], Decimal, list[tuple[str, Decimal]]]:
    with crm.unit_of_work(read_only=True) as uow:
        refs = {r[len(prefix):] for r in uow.session.scalars(select(Transaction.reference).where(Transaction.customer_id == cid))}
        balance = uow.accounts.list(cid)[0].balance
        items = ledger.open_items(uow.session, None, [cid])
        opens = sorted((str(r)[len(prefix):] if r else "-", ledger.money(o)) for r, o in zip(items.reference, items.open))
    return refs, balance, opens


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                                      HealthCheck.too_slow])
@given(history=st.lists(entry, max_size=5), batch=st.lists(entry, min_size=1, max_size=12),
       limit=st.one_of(st.none(), st.integers(100, 1500)), overpay=st.booleans())
def test_a_batch_decides_as_posting_one_by_one(make_crm: Any, history: list, batch: list, limit: int | None,
                                                overpay: bool) -> None:
    crm = make_crm(plugins=[PLUGIN], config={"credit": {"allow_overpayment": overpay, "overdue_grace_days": 3650}})
    book = Book(crm)
    n = next(counter)
    single, bulk = book.customer(f"S{n}"), book.customer(f"B{n}")
    if limit is not None:
        for cid in (single, bulk):
            book.profile(cid, limit=Decimal(limit))
    rows = _rows(history + batch, "")
    for cid, prefix in ((single, f"S{n}-"), (bulk, f"B{n}-")):
        for row in rows[:len(history)]:
            _post_one(crm, cid, {**row, "reference": prefix + row["reference"],
                                 **({"applies_to": f"{prefix}{row['applies_to']}"}
                                    if "applies_to" in row else {})})
    for row in rows[len(history):]:
        _post_one(crm, single, {**row, "reference": f"S{n}-" + row["reference"],
                                **({"applies_to": f"S{n}-{row['applies_to']}"}
                                   if "applies_to" in row else {})})
    source = [SourceRow(i + 2, {"customer_ref": f"B{n}", **row, "reference": f"B{n}-" + row["reference"],
                                **({"applies_to": f"B{n}-{row['applies_to']}"}
                                   if "applies_to" in row else {})})
              for i, row in enumerate(rows[len(history):])]
    result = run_import(crm, "transactions", source, actor="test", batch_size=1000)
    event(f"accepted {min(result.inserted, 9)}, rejected {min(result.rejected, 9)}")
    assert _state(crm, single, f"S{n}-") == _state(crm, bulk, f"B{n}-")
    with crm.unit_of_work(read_only=True) as uow:
        assert services.check(uow, bulk, Decimal(1), lock=False).exposure == \
            services.check(uow, single, Decimal(1), lock=False).exposure
