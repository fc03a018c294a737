"""Concurrent payments of one invoice with early-payment discount terms, in separate processes:
together they pay the discounted amount within the window, so exactly one discount credit note
is posted (the later payment's unit waits on the profile lock and sees the first), never none
and never two; the same for an overpayment race (the second payment is refused)."""
from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import crm_credit.plugin as PLUGIN
from crm_credit import ledger
from crm_credit.models import CreditDiscount
from crm_credit.testing import Book
from sqlalchemy import select

from crmcore import CRM, hookimpl
from crmcore.models import Transaction
from crmcore.testing_concurrency import run_cli_in_processes


class SlowCommit:
    @hookimpl
    def crm_transaction_posted(self, uow: Any, transaction: Any) -> None:
        time.sleep(0.4)


def _setup(ccrm: CRM) -> tuple[int, int]:
    book = Book(ccrm)
    a = book.customer("A", terms=30)
    book.profile(a, discount_percent=Decimal(2), discount_days=10)
    return a, book.invoice(a, "1000.00", "INV-1", days_ago=3)


def test_two_payments_at_once_earn_exactly_one_discount(ccrm: CRM, crm_url: str) -> None:
    a, inv = _setup(ccrm)
    commands = [["account", "post", "A", "payment", "490", "--ref", f"P-{i}", "--applies-to", "INV-1"]
                for i in range(2)]
    results = run_cli_in_processes(crm_url, commands, plugins=[PLUGIN, ("slow", SlowCommit())])
    assert [r.code for r in results] == [0, 0], [(r.argv, r.code, r.output) for r in results]
    with ccrm.unit_of_work(read_only=True) as uow:
        discounts = list(uow.session.execute(select(CreditDiscount.invoice_id, CreditDiscount.amount)).all())
        assert discounts == [(inv, Decimal("20.00"))]
        refs = sorted(uow.session.scalars(select(Transaction.reference)))
        assert refs == [f"DISC-{inv}", "INV-1", "P-0", "P-1"]
        assert int(ledger.open_items(uow.session, None, [a]).open.sum()) == 0


def test_two_full_payments_at_once_only_one_passes(ccrm: CRM, crm_url: str) -> None:
    _setup(ccrm)
    commands = [["account", "post", "A", "payment", "1000", "--ref", f"P-{i}", "--applies-to", "INV-1"]
                for i in range(2)]
    results = run_cli_in_processes(crm_url, commands, plugins=[PLUGIN, ("slow", SlowCommit())])
    assert sorted(r.code for r in results) == [0, 1], [(r.argv, r.code, r.output) for r in results]
    assert "still open on invoice INV-1" in next(r.output for r in results if r.code == 1)
    with ccrm.unit_of_work(read_only=True) as uow:
        assert len(list(uow.session.scalars(select(Transaction.id).where(Transaction.kind == "payment")))) == 1
