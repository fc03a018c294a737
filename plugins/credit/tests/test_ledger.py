"""Open-item matching, ageing and DSO on hand-made ledgers (no database): the arithmetic users rely on."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
from crm_credit.ledger import ageing, day_of, dso, ledger_from_rows, match, money
from hypothesis import given, settings
from hypothesis import strategies as st

D0 = day_of(dt.date(2026, 1, 1))


def row(cust: int, acc: int, tid: int, kind: str, cents: int, day: int, due: int | None = None, ref: str | None = None,
        applies: int | None = None, cur: str = "EUR") -> tuple:
    """A ledger row as the query returns it; ``applies`` is the id of the entry a credit settles."""
    return (cust, acc, tid, kind, cents * 100, D0 + day, None if due is None else D0 + due, ref or f"R{tid}", applies, cur)


def test_named_payment_settles_its_invoice_and_the_rest_goes_oldest_first() -> None:
    m = match(ledger_from_rows([
        row(1, 10, 1, "invoice", 10000, 0, 30, "I1"),
        row(1, 10, 2, "invoice", 5000, 10, 40, "I2"),
        row(1, 10, 3, "payment", 5000, 20, applies=2),
        row(1, 10, 4, "payment", 3000, 25),
    ]))
    assert m.open.tolist() == [700000, 0]
    assert m.paid_day.tolist() == [-1, D0 + 20]


def test_payment_beyond_the_named_invoice_pays_the_oldest_open_one() -> None:
    m = match(ledger_from_rows([
        row(4, 40, 1, "invoice", 1000, 0, 30, "K1"),
        row(4, 40, 2, "invoice", 1000, 5, 35, "K2"),
        row(4, 40, 3, "payment", 1500, 10, applies=2),
    ]))
    assert m.open.tolist() == [50000, 0]


def test_overpayment_is_unapplied_credit_and_currencies_stay_apart() -> None:
    m = match(ledger_from_rows([
        row(1, 10, 1, "invoice", 2000, 0, 30, cur="USD"),
        row(1, 10, 2, "payment", 2500, 5, cur="USD"),
        row(1, 11, 3, "invoice", 700, 0, 30, cur="EUR"),
    ]))
    _, totals = ageing(m, dt.date(2026, 3, 1))
    by_cur = {t.currency: t for t in totals}
    assert by_cur["USD"].open == 0 and by_cur["USD"].unapplied == Decimal("5.00")
    assert by_cur["EUR"].open == Decimal("7.00") and by_cur["EUR"].buckets["1-30"] == Decimal("7.00")


def test_adjustments_credit_notes_and_write_offs() -> None:
    m = match(ledger_from_rows([
        row(1, 10, 1, "invoice", 10000, 0, 30, "I1"),
        row(1, 10, 2, "adjustment", 500, 1),  # a debit item, due at once
        row(1, 10, 3, "credit_note", 2000, 2, applies=1),
        row(1, 10, 4, "write_off", 1000, 3, applies=1),
        row(1, 10, 5, "adjustment", -500, 4),
    ]))
    assert int(m.open.sum()) == (10000 + 500 - 2000 - 1000 - 500) * 100
    assert m.is_invoice.tolist() == [False, True]  # the adjustment is due first (day 1 < day 30)


def test_ageing_buckets_by_days_past_due() -> None:
    as_of = dt.date(2026, 6, 1)
    t = day_of(as_of) - D0
    m = match(ledger_from_rows([row(1, 10, i, "invoice", 100 * i, 0, t - pd) for i, pd in
                                enumerate([-5, 0, 1, 30, 31, 60, 61, 90, 91, 400], start=1)]))
    rows, totals = ageing(m, as_of)
    b = rows[0].buckets
    assert b["current"] == Decimal("3.00")  # 100 + 200 cents
    assert b["1-30"] == Decimal("7.00") and b["31-60"] == Decimal("11.00")
    assert b["61-90"] == Decimal("15.00") and b["over_90"] == Decimal("19.00")
    assert sum(b.values()) == rows[0].open == totals[0].open


def test_dso_and_days_to_pay() -> None:
    m = match(ledger_from_rows([
        row(1, 10, 1, "invoice", 10000, 0, 30, "I1"),
        row(1, 10, 2, "payment", 10000, 20),
        row(1, 10, 3, "invoice", 5000, 50, 80, "I2"),
        row(2, 20, 4, "invoice", 3000, 80, 110, "J1"),
    ]))
    rows, totals = dso(m, dt.date(2026, 1, 1), dt.date(2026, 3, 31))
    r1 = next(r for r in rows if r.customer_id == 1)
    assert r1.receivables == Decimal("50.00") and r1.credit_sales == Decimal("150.00")
    assert r1.dso == round(50 / 150 * 90, 1) and r1.avg_days_to_pay == 20.0 and r1.paid_invoices == 1
    assert totals[0].receivables == Decimal("80.00") and totals[0].credit_sales == Decimal("180.00")


def test_a_credit_settles_only_an_entry_of_its_own_account_and_a_charge_is_a_debit() -> None:
    m = match(ledger_from_rows([
        row(1, 10, 1, "invoice", 1000, 0, 30, "I1"),
        row(1, 10, 2, "invoice", 1000, 5, 35, "I2"),
        row(1, 10, 3, "charge", 100, 40, ref="FEE-2"),  # due at once: after both invoices
        row(1, 11, 4, "invoice", 1000, 0, 30, "X1"),
        row(1, 10, 5, "payment", 100, 41, applies=3),  # settles the charge, not the oldest invoice
        row(1, 10, 6, "payment", 1000, 42, applies=4),  # another account's invoice: the oldest of its own
    ]))
    got = dict(zip(m.txn.tolist(), m.open.tolist()))
    assert got == {1: 0, 2: 100000, 3: 0, 4: 100000}


entries = st.lists(st.tuples(st.integers(1, 3), st.sampled_from(["invoice", "payment", "credit_note", "adjustment"]),
                             st.integers(1, 50_000), st.integers(0, 200), st.booleans()), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(entries)
def test_open_items_always_reconcile_with_the_balance(es: list) -> None:
    """Per account: open items = max(0, debits - credits), unapplied = max(0, credits - debits),
    0 <= open <= amount, and the ageing buckets sum to the open receivable."""
    rows = []
    for i, (acc, kind, cents, day, named) in enumerate(es, start=1):
        if kind == "adjustment" and named:
            cents = -cents
        applies = max(1, i - 1) if named and kind in ("payment", "credit_note") else None
        rows.append((acc, acc, i, kind, cents, D0 + day, D0 + day + 30 if kind == "invoice" else None, f"R{i}", applies, "EUR"))
    m = match(ledger_from_rows(rows))
    assert (m.open >= 0).all() and (m.open <= m.amount).all()
    for acc in {r[1] for r in rows}:
        debit = sum(r[4] for r in rows if r[1] == acc and (r[3] == "invoice" or (r[3] == "adjustment" and r[4] > 0)))
        credit = sum(abs(r[4]) for r in rows if r[1] == acc) - debit
        assert int(m.open[m.account == acc].sum()) == max(0, debit - credit)
        assert int(m.unapplied_cents[m.unapplied_account == acc].sum()) == max(0, credit - debit)
    per, totals = ageing(m, dt.date(2026, 5, 1))
    for r in per + totals:
        assert sum(r.buckets.values()) == r.open
    assert sum((t.open for t in totals), Decimal(0)) == money(int(m.open.sum()))  # no rows when all is settled
    paid = m.paid_day >= 0
    assert (m.open[paid] == 0).all() and np.all(m.open[~paid] > 0)
