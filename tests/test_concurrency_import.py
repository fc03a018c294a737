"""Several `crm import` processes at once, on the same file and on overlapping files: every row
ends up exactly once, no process fails, and every balance equals the sum of its entries."""
from __future__ import annotations

import os
import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from crmcore import CRM
from crmcore.models import Account, Customer, Transaction

SIGN = {"invoice": 1, "payment": -1}


def customers_csv(path: Path, lo: int, hi: int) -> Path:
    path.write_text("external_ref,name\n" + "".join(f"C{i:03},Customer {i}\n" for i in range(lo, hi)), encoding="utf-8")
    return path


def tx_row(i: int) -> tuple[str, str, Decimal, str]:
    rnd = random.Random(i)  # the same reference is the same entry in every file
    kind = "invoice" if rnd.random() < 0.7 else "payment"
    return f"C{rnd.randrange(60):03}", kind, Decimal(rnd.randrange(100, 100000)) / 100, f"T{i:05}"


def tx_csv(path: Path, lo: int, hi: int) -> Path:
    lines = ["customer_ref,kind,amount,currency,occurred_at,reference"]
    lines += [f"{c},{k},{a},EUR,2024-01-01,{r}" for c, k, a, r in map(tx_row, range(lo, hi))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_all(crm_url: str, jobs: list[list[str]]) -> list[subprocess.CompletedProcess]:
    env = {**os.environ, "CRM_DISABLE_PLUGINS": ""}
    cmd = [sys.executable, "-c", "from crmcore.cli import main; main()", "--database", crm_url]
    procs = [subprocess.Popen([*cmd, *job], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for job in jobs]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=180)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def test_parallel_imports_of_the_same_and_overlapping_files(crm_url, tmp_path):
    f = customers_csv(tmp_path / "f.csv", 0, 40)
    g = customers_csv(tmp_path / "g.csv", 20, 60)
    results = run_all(crm_url, [["import", "customers", str(f), "--batch-size", "7", "--report", str(tmp_path / f"c{i}.err")]
                                for i in range(2)]
                      + [["import", "customers", str(g), "--batch-size", "7", "--report", str(tmp_path / "c2.err")]])
    for r in results:
        assert r.returncode == 0, r.stderr
    a = tx_csv(tmp_path / "a.csv", 0, 600)
    b = tx_csv(tmp_path / "b.csv", 300, 900)
    jobs = [["import", "transactions", str(path), "--batch-size", "50", "--report", str(tmp_path / f"t{i}.err")]
            for i, path in enumerate([a, a, b, b])]
    results = run_all(crm_url, jobs)
    for r in results:
        assert r.returncode == 0, r.stderr
    # every row was inserted by exactly one process; the others found it unchanged
    inserted = [int(r.stdout.split(" inserted")[0].rsplit(" ", 1)[1]) for r in results]
    assert sum(inserted) == 900, [r.stdout for r in results]

    crm = CRM.open(crm_url, entry_points=False, config={})
    try:
        with crm.unit_of_work(read_only=True) as uow:
            s = uow.session
            assert s.scalar(select(func.count()).select_from(Customer)) == 60
            assert s.scalar(select(func.count(func.distinct(Customer.external_ref)))) == 60
            assert s.scalar(select(func.count()).select_from(Transaction)) == 900
            assert s.scalar(select(func.count(func.distinct(Transaction.reference)))) == 900
            assert s.scalar(select(func.count()).select_from(Account)) == len({tx_row(i)[0] for i in range(900)})
            entries = s.execute(select(Customer.external_ref, Transaction.kind, Transaction.amount)
                                .join(Account, Account.id == Transaction.account_id)
                                .join(Customer, Customer.id == Account.customer_id)).all()
            balances = dict(s.execute(select(Customer.external_ref, Account.balance)
                                      .join(Account, Account.customer_id == Customer.id)).all())
    finally:
        crm.close()
    sums: dict[str, Decimal] = {}
    for ref, kind, amount in entries:
        sums[ref] = sums.get(ref, Decimal(0)) + SIGN[kind.value] * amount
    assert balances == sums  # each ledger balances to its entries
    expected: dict[str, Decimal] = {}
    for c, k, amount, _ in map(tx_row, range(900)):
        expected[c] = expected.get(c, Decimal(0)) + SIGN[k] * amount
    assert balances == expected  # and to the files: nothing lost, nothing twice
