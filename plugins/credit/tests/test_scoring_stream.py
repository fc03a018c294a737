"""`crm credit score --all` streams by customer ranges: the result equals the whole-ledger path's."""
from __future__ import annotations

import json

import numpy as np
import pytest
from crm_credit import scoring, services
from crm_credit.models import CreditScore
from crm_credit.settings import CreditSettings
from crm_credit.testing import Book, ago
from sqlalchemy import select

from crmcore import CRM
from crmcore.schemas import InteractionCreate

COLUMNS = ("customer_id", "score", "grade", "currency", "suggested_limit", "reasons", *scoring.FACTORS)


def _generate(book: Book, crm: CRM, n: int, seed: int) -> list[int]:
    """Customers with random histories: invoices paid late or not, payments naming their
    invoice or not, write-offs, complaints, two currencies, some archived, some with nothing."""
    rng = np.random.default_rng(seed)
    ids = []
    for k in range(n):
        cid = book.customer(f"G{k}", currency="USD" if k % 7 == 3 else "EUR")
        ids.append(cid)
        named = rng.random() < 0.5  # a customer's payments all name their invoice, or none does (FIFO matching)
        for j in range(int(rng.integers(0, 5))):
            issued = int(rng.integers(5, 700))
            amount = f"{rng.integers(10, 5000)}.{rng.integers(0, 100):02d}"
            book.invoice(cid, amount, f"I{k}-{j}", days_ago=issued, due_days_ago=issued - 30)
            r = rng.random()
            if r < 0.6 and issued > 3:
                book.pay(cid, amount, f"P{k}-{j}", days_ago=int(rng.integers(0, issued)),
                         invoice=f"I{k}-{j}" if named else None)
            elif r < 0.7 and named:
                book.post(cid, "write_off", amount, f"W{k}-{j}", days_ago=max(0, issued - 100), applies_to=f"I{k}-{j}")
        if rng.random() < 0.3:
            with crm.unit_of_work() as uow:
                uow.interactions.log(cid, InteractionCreate(channel="phone", kind="complaint", subject="late",
                                                            occurred_at=ago(int(rng.integers(0, 500)))))
    with crm.unit_of_work() as uow:
        for cid in ids[5::11]:
            uow.customers.archive(cid)
    return ids


def _table(crm: CRM) -> list[tuple]:
    with crm.unit_of_work(read_only=True) as uow:
        rows = uow.session.execute(select(*[getattr(CreditScore, c) for c in COLUMNS]).order_by(CreditScore.customer_id)).all()
    return [tuple(json.dumps(v, sort_keys=True) if isinstance(v, dict) else v for v in r) for r in rows]


@pytest.mark.parametrize("block", [1, 4, 1000])
def test_score_all_by_ranges_equals_the_whole_ledger_path(book: Book, ccrm: CRM, block: int) -> None:
    _generate(book, ccrm, 40, seed=block)
    s = CreditSettings()
    today = services.today()
    with ccrm.unit_of_work() as uow:  # the previous path: every customer at once, then stored
        old = scoring.score(uow.session, s, today)
        n_old = scoring.store(uow.session, s, old, replace_all=True)
    before = _table(ccrm)
    with ccrm.unit_of_work() as uow:
        uow.session.execute(CreditScore.__table__.update().values(score=-1))  # the new path must rewrite everything
        n_new, grades = scoring.score_all(uow.session, s, today, block=block)
    after = _table(ccrm)
    assert n_new == n_old == len(before) > 30
    assert after == before
    assert grades == {g: old.grades.count(g) for g in set(old.grades)}
    with ccrm.unit_of_work(read_only=True) as uow:
        ranges = scoring.customer_ranges(uow.session, block)
    assert len(ranges) == -(-n_old // block) and all(lo <= hi for lo, hi in ranges)


def test_cli_score_all_uses_the_ranges_and_reports_grades(book: Book, ccrm: CRM, ccli, monkeypatch) -> None:
    _generate(book, ccrm, 12, seed=7)
    monkeypatch.setattr(scoring, "BLOCK", 5)
    calls = []
    real = scoring.score

    def spy(*a, **kw):
        calls.append(kw.get("id_range"))
        return real(*a, **kw)

    monkeypatch.setattr(scoring, "score", spy)
    r = ccli("credit", "score", "--all", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["scored"] == 11 and sum(out["grades"].values()) == 11  # one of the 12 is archived
    assert len(calls) == 3 and all(c is not None for c in calls)  # 11 customers in ranges of 5
