"""Allocations under pressure.

- Property (hypothesis): invoices, then payments each allocating to some of them (an amount, or
  none: what is left in order). Customer S gets the payments one by one through the service,
  customer B the same rows in one import batch. Both must accept the same rows as an
  independent model of the rules, store the model's amounts, and never allocate more to an
  invoice than its amount nor more of a payment than its amount.
- Processes: payments allocating to one invoice at the same instant (CLI posts and an import)
  never allocate more than the invoice's amount; the losers get one line and exit 1.
"""
from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.bulk.importer import run_import
from crmcore.bulk.readers import SourceRow
from crmcore.errors import CRMError
from crmcore.models import Allocation, Transaction
from crmcore.schemas import CustomerCreate, TransactionCreate

AT = "2026-01-05T10:00:00+00:00"
counter = itertools.count()
invoices = st.lists(st.integers(1, 300), min_size=1, max_size=4)
# a payment: its amount and its allocations (invoice index, amount in cents or None)
payment = st.tuples(st.integers(1, 40000), st.lists(st.tuples(st.integers(0, 4), st.none() | st.integers(1, 30000)),
                                                     min_size=1, max_size=4))


def _model(invs: list[int], pays: list[tuple[int, list[tuple[int, int | None]]]]) -> list[dict[int, Decimal] | None]:
    """What the rules allow, written independently: None for a refused payment, else {invoice: amount}."""
    taken = [Decimal(0)] * len(invs)

    def open_(i: int) -> Decimal:
        return max(Decimal(invs[i]) - taken[i], Decimal(0))

    out: list[dict[int, Decimal] | None] = []
    for cents, allocs in pays:
        amount = Decimal(cents) / 100
        idx = [i for i, _ in allocs]
        if any(i >= len(invs) for i in idx) or len(set(idx)) != len(idx):
            out.append(None)  # an unknown invoice, or one named twice
            continue
        if len(allocs) == 1 and allocs[0][1] is None:  # the short form: no allocation, but it claims the invoice
            taken[idx[0]] += amount
            out.append(None)
            continue
        asked = {i: Decimal(c) / 100 for i, c in allocs if c is not None}
        free = amount - sum(asked.values(), Decimal(0))
        plan: dict[int, Decimal] | None = {}
        if free < 0 or any(a > open_(i) for i, a in asked.items()):
            plan = None
        else:
            for i, c in allocs:
                if c is not None:
                    plan[i] = asked[i]
                elif open_(i) <= 0 or free <= 0:
                    plan = None
                    break
                else:
                    plan[i] = min(free, open_(i))
                    free -= plan[i]
        if plan is not None:
            for i, a in plan.items():
                taken[i] += a
        out.append(plan)
    return out


def _value(allocs: list[tuple[int, int | None]], prefix: str) -> str:
    return ";".join(f"{prefix}I{i}" + ("" if c is None else f"={Decimal(c) / 100}") for i, c in allocs)


def _stored(crm: CRM, cid: int, prefix: str) -> dict[str, dict[int, Decimal]]:
    with crm.unit_of_work(read_only=True) as uow:
        out: dict[str, dict[int, Decimal]] = {}
        for e in uow.session.scalars(select(Transaction).where(Transaction.customer_id == cid)):
            if e.allocations:
                assert sum(a.amount for a in e.allocations) <= e.amount, e.reference
                out[e.reference[len(prefix):]] = {int(a.reference[len(prefix) + 1:]): a.amount for a in e.allocations}
            if e.kind.value == "invoice":
                taken = uow.session.scalar(select(func.sum(Allocation.amount)).where(Allocation.target_id == e.id)) or 0
                assert Decimal(taken) <= e.amount, e.reference
        return out


@settings(max_examples=40, deadline=None)
@given(invs=invoices, pays=st.lists(payment, min_size=1, max_size=6))
def test_allocations_follow_the_model_one_by_one_and_in_a_batch(make_crm: Any, invs: list[int],
                                                                pays: list[tuple[int, list[tuple[int, int | None]]]]) -> None:
    crm = make_crm()
    n = next(counter)
    with crm.unit_of_work() as uow:
        single, bulk = (uow.customers.create(CustomerCreate(name=f"{c}{n}", external_ref=f"{c}{n}")).id for c in "SB")
        for cid, prefix in ((single, f"S{n}-"), (bulk, f"B{n}-")):
            for i, amount in enumerate(invs):
                uow.accounts.post(cid, TransactionCreate(kind="invoice", amount=Decimal(amount), reference=f"{prefix}I{i}",
                                                         occurred_at=AT))
    for k, (cents, allocs) in enumerate(pays):
        try:
            with crm.unit_of_work() as uow:
                uow.accounts.post(single, TransactionCreate(kind="payment", amount=Decimal(cents) / 100, reference=f"S{n}-P{k}",
                                                            occurred_at=AT, applies_to=_value(allocs, f"S{n}-")))
        except (CRMError, ValueError):
            pass  # refused: one line, nothing written (the state below says so)
    rows = [SourceRow(k + 2, {"customer_ref": f"B{n}", "kind": "payment", "amount": str(Decimal(cents) / 100),
                              "occurred_at": AT, "reference": f"B{n}-P{k}", "applies_to": _value(allocs, f"B{n}-")})
            for k, (cents, allocs) in enumerate(pays)]
    run_import(crm, "transactions", rows, actor="test", batch_size=1000)
    expected = {f"P{k}": plan for k, plan in enumerate(_model(invs, pays)) if plan}
    assert _stored(crm, single, f"S{n}-") == expected
    assert _stored(crm, bulk, f"B{n}-") == expected


def test_payments_allocating_to_one_invoice_at_once_never_over_allocate(crm: CRM, crm_url: str, tmp_path) -> None:
    from crmcore.testing_concurrency import run_cli_in_processes

    with crm.unit_of_work() as uow:
        a = uow.customers.create(CustomerCreate(name="A", external_ref="A")).id
        uow.accounts.post(a, TransactionCreate(kind="invoice", amount=Decimal(100), reference="I1", occurred_at=AT))
        uow.accounts.post(a, TransactionCreate(kind="invoice", amount=Decimal(100), reference="I2", occurred_at=AT))
    path = tmp_path / "t.csv"
    path.write_text(f"customer_ref,kind,amount,occurred_at,reference,applies_to\nA,payment,80,{AT},IMP,I1=70;I2=10\n",
                    encoding="utf-8")
    commands = [*[["account", "post", "A", "payment", "80", "--ref", f"P{i}", "--applies-to", "I1=70",
                   "--applies-to", "I2"] for i in range(3)], ["import", "transactions", str(path)]]
    results = run_cli_in_processes(crm_url, commands)
    winners = [r for r in results if r.code == 0]
    assert len(winners) == 1, [(r.argv, r.code, r.stdout, r.stderr) for r in results]
    for r in results:
        if r.code != 0:
            assert r.code == 1 and "exceeds what is open on it (30.00)" in r.stdout + r.stderr, (r.argv, r.stdout, r.stderr)
    with crm.unit_of_work(read_only=True) as uow:
        per_invoice = dict(uow.session.execute(select(Transaction.reference, func.sum(Allocation.amount))
                                               .join(Allocation, Allocation.target_id == Transaction.id)
                                               .group_by(Transaction.reference)).all())
        assert Decimal(per_invoice["I1"]) == Decimal(70), per_invoice
        assert uow.session.scalar(select(func.count()).select_from(Transaction).where(Transaction.kind == "payment")) == 1
