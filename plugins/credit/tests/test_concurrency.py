"""Several processes post invoices at once: together they would break the limit, so only as many
as fit may pass. The customer has two accounts in the limit's currency and each process posts to
one of them, so the core's per-account row lock does not serialise them: the credit guard's lock
on the profile row (PostgreSQL ``FOR UPDATE``) must. On SQLite writers are serialised anyway."""
from __future__ import annotations

import multiprocessing as mp
from decimal import Decimal

from crm_credit.testing import Book, post_invoice_worker
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.models import Transaction
from crmcore.schemas import AccountCreate


def test_concurrent_invoices_never_break_the_limit(ccrm: CRM, crm_url: str) -> None:
    book = Book(ccrm)
    a = book.customer("A")
    with ccrm.unit_of_work() as uow:
        accounts = [acc.id for acc in uow.accounts.list(a)] + [uow.accounts.open(a, AccountCreate(currency="EUR")).id]
    book.profile(a, limit=Decimal(1000))
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=post_invoice_worker, args=(crm_url, a, f"C{i}", "600", barrier, out, accounts[i]))
             for i in range(2)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=90) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert sorted(results.values()) == ["ok", "refused"], results
    with ccrm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(func.sum(Transaction.amount))) == Decimal("600.00")
