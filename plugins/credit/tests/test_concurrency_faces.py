"""Concurrent postings by every face at once, in separate processes: `crm account post` of an
invoice and of a positive adjustment, `crm import transactions` of each, to two accounts of one
customer (so the core's per-account lock does not serialise them). Near the limit only one may
pass; on a held customer none. The credit guard's profile lock (PostgreSQL ``FOR UPDATE``) must
hold for the single and the batch path alike; every transaction is kept open a moment after its
check so the four really overlap."""
from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import crm_credit.plugin as PLUGIN
from crm_credit import services
from crm_credit.testing import Book
from sqlalchemy import func, select

from crmcore import CRM, hookimpl
from crmcore.models import Transaction
from crmcore.schemas import AccountCreate
from crmcore.testing_concurrency import run_cli_in_processes

TX = "customer_ref,kind,amount,currency,occurred_at,reference\n"


class SlowCommit:
    """Keeps each posting's transaction open after the guard ran, single or batch."""

    @hookimpl
    def crm_transaction_posted(self, uow: Any, transaction: Any) -> None:
        time.sleep(0.4)

    @hookimpl
    def crm_transactions_batch(self, uow: Any, transaction_ids: Any) -> None:
        time.sleep(0.4)


def _setup(ccrm: CRM, tmp_path: Any) -> tuple[int, list[list[str]]]:
    book = Book(ccrm)
    a = book.customer("A")
    with ccrm.unit_of_work() as uow:
        second = uow.accounts.open(a, AccountCreate(currency="EUR")).id
    for name, kind in (("inv.csv", "invoice"), ("adj.csv", "adjustment")):
        (tmp_path / name).write_text(f"{TX}A,{kind},600,EUR,2026-01-01,IMP-{kind}\n", encoding="utf-8")
    commands = [
        ["account", "post", "A", "invoice", "600", "--ref", "POST-INV", "--account", str(second)],
        ["account", "post", "A", "adjustment", "600", "--ref", "POST-ADJ", "--account", str(second)],
        ["import", "transactions", str(tmp_path / "inv.csv")],
        ["import", "transactions", str(tmp_path / "adj.csv")],
    ]
    return a, commands


def _debits(ccrm: CRM) -> list[str]:
    with ccrm.unit_of_work(read_only=True) as uow:
        return sorted(uow.session.scalars(select(Transaction.reference)))


def test_near_the_limit_only_one_posting_passes_whatever_the_face(ccrm: CRM, crm_url: str, tmp_path: Any) -> None:
    a, commands = _setup(ccrm, tmp_path)
    Book(ccrm).profile(a, limit=Decimal(1000))
    results = run_cli_in_processes(crm_url, commands, plugins=[PLUGIN, ("slow", SlowCommit())])
    codes = [r.code for r in results]
    assert sorted(codes) == [0, 1, 1, 1], [(r.argv, r.code, r.output) for r in results]
    refused = [r for r in results if r.code == 1]
    assert all("over the credit limit" in r.output and "Traceback" not in r.output for r in refused), \
        [r.output for r in refused]
    assert len(_debits(ccrm)) == 1
    with ccrm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(func.sum(Transaction.amount))) == Decimal("600.00")
        for acc in uow.accounts.list(a):
            stored, total = uow.accounts.verify_balance(acc.id)
            assert stored == total


def test_on_a_held_customer_no_face_posts_a_debit(ccrm: CRM, crm_url: str, tmp_path: Any) -> None:
    a, commands = _setup(ccrm, tmp_path)
    with ccrm.unit_of_work("test") as uow:
        services.hold(uow, a, "cheque bounced")
    results = run_cli_in_processes(crm_url, commands, plugins=[PLUGIN, ("slow", SlowCommit())])
    assert [r.code for r in results] == [1, 1, 1, 1], [(r.argv, r.code, r.output) for r in results]
    assert all("credit hold (cheque bounced)" in r.output for r in results), [r.output for r in results]
    assert _debits(ccrm) == []
