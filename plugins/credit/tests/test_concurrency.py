"""Several processes post invoices at once: together they would break the limit, so only as many
as fit may pass (PostgreSQL: the guard locks the profile row; SQLite: writers are serialised)."""
from __future__ import annotations

import multiprocessing as mp
from decimal import Decimal

import crm_credit.plugin as PLUGIN
from crm_credit.testing import Book
from sqlalchemy import func, select

from crmcore import CRM, Vetoed
from crmcore.enums import TransactionKind
from crmcore.models import Transaction
from crmcore.schemas import TransactionCreate


def _post(url: str, cid: int, ref: str, barrier: "mp.synchronize.Barrier", out: "mp.Queue") -> None:  # type: ignore[name-defined]
    crm = CRM.open(url, plugins=[PLUGIN], entry_points=False, config={})
    try:
        barrier.wait(timeout=30)
        with crm.unit_of_work(f"w{ref}") as uow:
            uow.accounts.post(cid, TransactionCreate(kind=TransactionKind.INVOICE, amount=Decimal("400"), reference=ref))
        out.put((ref, "ok"))
    except Vetoed as e:
        out.put((ref, "refused" if "over the credit limit" in str(e) else f"other: {e}"))
    except Exception as e:  # noqa: BLE001 - reported to the test
        out.put((ref, f"error: {type(e).__name__}: {e}"))
    finally:
        crm.close()


def test_concurrent_invoices_never_break_the_limit(ccrm: CRM, crm_url: str) -> None:
    book = Book(ccrm)
    a = book.customer("A")
    book.profile(a, limit=Decimal("1000"))
    n = 4
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_post, args=(crm_url, a, f"C{i}", barrier, out)) for i in range(n)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert sorted(results.values()) == ["ok", "ok", "refused", "refused"], results
    with ccrm.unit_of_work(read_only=True) as uow:
        total = uow.session.scalar(select(func.sum(Transaction.amount)))
    assert total == Decimal("800.00")
