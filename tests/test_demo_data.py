"""The demo's data reads like a real business's on any day: the generated ledger is paid except
for the recent invoices and a handful of bad payers (so dunning finds a few holds, not hundreds),
and the sales demo is anchored on a fixed date (``--as-of``), so ``make demo`` prints the same."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import crm_sales_automation.plugin as SALES
from crm_sales_automation.models import Activity, Opportunity
from sqlalchemy import select

from crmcore.bulk import generate

END = generate.EPOCH + dt.timedelta(days=generate.SPAN_DAYS)


def ledger(n_tx: int, n_customers: int, seed: int) -> tuple[list[dict[str, Any]], dict[tuple[str, str], Any], dict[Any, Decimal]]:
    rows = list(generate.transaction_rows(n_tx, n_customers, seed))
    issued: dict[tuple[str, str], dt.datetime] = {}
    open_: dict[tuple[str, str], Decimal] = {}
    for r in rows:
        at = dt.datetime.fromisoformat(r["occurred_at"])
        if r["kind"] == "invoice":
            key = (r["customer_ref"], r["reference"])
            issued[key], open_[key] = at, Decimal(r["amount"])
        else:
            key = (r["customer_ref"], r["applies_to"])
            assert issued[key] <= at <= END, r  # after its invoice, never after the data's end
            open_[key] -= Decimal(r["amount"])
            assert open_[key] >= 0, r
    return rows, issued, open_


def test_the_demo_ledger_is_paid_but_for_the_recent_invoices_and_a_few_bad_payers() -> None:
    rows, issued, open_ = ledger(40_000, 2_000, 42)  # what `make demo` generates
    assert len(rows) == 40_000 and len({r["reference"] for r in rows}) == 40_000
    old = [k for k, at in issued.items() if at < END - dt.timedelta(days=90)]
    unpaid_old = [k for k in old if open_[k] > 0]
    assert len(unpaid_old) <= 0.01 * len(old)  # bad debt: at most 1 % of the older invoices
    assert 1 <= len({c for c, _ in unpaid_old}) <= 2_000 // generate.BAD_PAYER_EVERY  # a handful of customers
    recent = [k for k, at in issued.items() if at >= END - dt.timedelta(days=30)]
    assert 0.2 < sum(open_[k] > 0 for k in recent) / len(recent) < 0.95  # the recent ones partly open
    assert sum(v == 0 for v in open_.values()) > 0.9 * len(open_)


def test_the_generator_is_seeded_and_small_runs_keep_their_shape() -> None:
    assert list(generate.transaction_rows(500, 7, seed=3)) == list(generate.transaction_rows(500, 7, seed=3))
    assert list(generate.transaction_rows(500, 7, seed=3)) != list(generate.transaction_rows(500, 7, seed=4))
    for n_tx, n_customers, chunk in ((1, 1, 100_000), (7, 3, 100_000), (1_000, 5, 300)):
        rows = list(generate.transaction_rows(n_tx, n_customers, seed=1, chunk=chunk))
        assert len(rows) == n_tx and rows[0]["kind"] == "invoice"
    ledger(1_000, 5, 1)  # the settlement checks, on several chunks' worth


def test_the_sales_demo_is_anchored_on_its_as_of_date(cli: Any, make_crm: Any) -> None:
    crm = make_crm(plugins=[SALES])

    def ok(*args: str) -> str:
        res = cli(*args)
        assert res.exit_code == 0, res.output
        return str(res.output)

    for i in range(3):
        ok("customer", "add", f"Customer {i}")
    assert ok("sales", "demo", "--deals", "15", "--leads", "3", "--seed", "1", "--as-of", "2025-01-15")
    with crm.unit_of_work(read_only=True) as uow:
        deals = [(o.created_at, o.expected_close, o.closed_at) for o in uow.session.scalars(select(Opportunity))]
        due = [a.due_at for a in uow.session.scalars(select(Activity).where(Activity.due_at.is_not(None)))]
    assert len(deals) == 15
    as_of = dt.date(2025, 1, 15)
    for created, close, closed in deals:
        assert as_of - dt.timedelta(days=366) <= created.date() < as_of
        assert close < as_of + dt.timedelta(days=150)
        assert closed is None or closed.date() <= as_of
    assert due and all(abs((d.date() - as_of).days) <= 21 for d in due)
    res = cli("sales", "demo", "--deals", "1", "--as-of", "15.01.2025")
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert "not a date" in res.output
    with crm.unit_of_work(read_only=True) as uow:
        assert len(uow.session.scalars(select(Opportunity)).all()) == 15  # nothing written
