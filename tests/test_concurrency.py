"""N processes run the same write command at once, on SQLite and PostgreSQL; the ledger and the
counts must come out exactly as if they had run one after the other.

Workers are forked (multiprocessing "fork"): each is a real process with its own connection, and
starts in milliseconds because the code is already imported. A barrier releases them together.
Each runs the `crm` command in-process and reports (exit code, output).
"""
from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

import crmcore.cli.accounts
import crmcore.cli.customers
import crmcore.cli.interactions  # noqa: F401
from crmcore import CRM
from crmcore.cli import build_cli
from crmcore.models import Account, AuditEntry, Customer, Interaction, Transaction

N = 6

_barrier: Any = None


def _init(barrier: Any) -> None:
    global _barrier
    _barrier = barrier


def _run(argv: list[str]) -> tuple[int, str]:
    """Run `crm ARGV` in this (forked) process; (exit code, stdout + stderr)."""
    out = io.StringIO()
    _barrier.wait(timeout=60)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            build_cli().main(args=argv, prog_name="crm")
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, out.getvalue()


def run_parallel(url: str, commands: list[list[str]]) -> list[tuple[int, str]]:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(len(commands))
    with ctx.Pool(len(commands), initializer=_init, initargs=(barrier,)) as pool:
        return pool.map(_run, [["--database", url, "--user", f"w{i}", *c] for i, c in enumerate(commands)])


def clean(results: list[tuple[int, str]], allowed: tuple[int, ...] = (0,)) -> None:
    """Every process ended with an allowed code and never with an internal error or a traceback."""
    for code, text in results:
        assert code in allowed, text
        assert "Traceback" not in text and "internal error" not in text and "closed transaction" not in text, text


def ledger(crm: CRM) -> dict[str, Any]:
    """Per customer: accounts, entries per reference, and each account's balance vs its entries."""
    with crm.unit_of_work(read_only=True) as uow:
        s = uow.session
        out: dict[str, Any] = {"accounts": {}, "refs": {}}
        for a in s.scalars(select(Account)):
            stored, summed = uow.accounts.verify_balance(a.id)
            assert stored == summed, f"account {a.id}: balance {stored} != entries {summed}"
            out["accounts"].setdefault(a.customer_id, []).append((a.id, stored, a.is_default))
        for cid, ref, n in s.execute(select(Transaction.customer_id, Transaction.reference, func.count())
                                     .group_by(Transaction.customer_id, Transaction.reference)):
            out["refs"][(cid, ref)] = n
        return out


@pytest.fixture
def crm_db(crm: CRM, crm_url: str) -> tuple[CRM, str]:
    with crm.unit_of_work("setup") as uow:
        from crmcore.schemas import CustomerCreate

        for ref in ("C", "D"):
            uow.customers.create(CustomerCreate(name=f"Customer {ref}", external_ref=ref))
    return crm, crm_url


def test_same_reference_for_a_customer_without_account_is_posted_once(crm_db):
    crm, url = crm_db
    results = run_parallel(url, [["account", "post", "C", "invoice", "100", "--ref", "INV-X"]] * N)
    clean(results)
    assert sum("posted: invoice" in t for _, t in results) == 1
    assert sum("already posted (no change)" in t for _, t in results) == N - 1
    led = ledger(crm)
    cid = 1
    assert [(b, d) for _, b, d in led["accounts"][cid]] == [(Decimal("100.00"), True)]  # one account, 100 owed
    assert led["refs"] == {(cid, "INV-X"): 1}


def test_different_references_all_posted_to_one_new_account(crm_db):
    crm, url = crm_db
    results = run_parallel(url, [["account", "post", "D", "invoice", "10.01", "--ref", f"INV-{i}"] for i in range(N)])
    clean(results)
    led = ledger(crm)
    assert [(b, d) for _, b, d in led["accounts"][2]] == [(Decimal("10.01") * N, True)]
    assert led["refs"] == {(2, f"INV-{i}"): 1 for i in range(N)}


def test_same_reference_with_different_amounts_one_wins_the_rest_are_refused(crm_db):
    crm, url = crm_db
    results = run_parallel(url, [["account", "post", "C", "invoice", str(100 + i), "--ref", "INV-Y"] for i in range(N)])
    clean(results, (0, 1))
    assert sum(code == 0 for code, _ in results) == 1
    assert all("a correction needs a new reference" in t for code, t in results if code == 1)
    led = ledger(crm)
    assert led["refs"] == {(1, "INV-Y"): 1}
    (_, balance, _), = led["accounts"][1]
    winner = next(t for code, t in results if code == 0)
    assert f"invoice {balance} EUR" in winner


@pytest.mark.parametrize("with_version", [False, True])
def test_parallel_updates_succeed_or_are_told_cleanly(crm_db, with_version):
    crm, url = crm_db
    extra = ["--version", "1"] if with_version else []
    results = run_parallel(url, [["customer", "update", "C", "--region", f"R{i}", *extra] for i in range(N)])
    clean(results, (0, 1))
    won = [i for i, (code, _) in enumerate(results) if code == 0]
    for code, text in results:
        if code == 1:
            assert "was changed by someone else" in text, text
    with crm.unit_of_work(read_only=True) as uow:
        c = uow.session.get(Customer, 1)
        version, region = c.version, c.region
        updates = uow.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.entity == "customer", AuditEntry.entity_id == "1", AuditEntry.action == "update"))
    if with_version:
        assert len(won) == 1  # exactly one writer had the current version
    else:
        assert len(won) == N  # without --version, updates queue on the row lock and all apply
    assert version == 1 + len(won) == 1 + updates
    assert region in {f"R{i}" for i in won}


def test_parallel_interaction_log_with_one_reference_is_idempotent(crm_db):
    crm, url = crm_db
    cmd = ["interaction", "log", "C", "--channel", "phone", "--subject", "Call", "--ref", "IREF-1",
           "--at", "2024-05-01T10:00:00"]
    results = run_parallel(url, [cmd] * N)
    clean(results)
    assert sum("already logged (no change)" in t for _, t in results) == N - 1
    with crm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Interaction)) == 1
        assert uow.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.entity == "interaction")) == 1


def test_parallel_interaction_log_with_different_content_one_wins(crm_db):
    crm, url = crm_db
    results = run_parallel(url, [["interaction", "log", "C", "--channel", "phone", "--subject", f"Call {i}",
                                  "--ref", "IREF-2"] for i in range(N)])
    clean(results, (0, 1))
    assert sum(code == 0 for code, _ in results) == 1
    assert all("already logged" in t and "different subject" in t for code, t in results if code == 1)
    with crm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Interaction)) == 1


def test_posts_and_updates_mixed(crm_db):
    """Writers of different kinds on one customer at once: every one ends cleanly, ledger exact."""
    crm, url = crm_db
    cmds = []
    for i in range(N):
        cmds.append(["account", "post", "C", "payment" if i % 3 == 2 else "invoice", "33.33", "--ref", f"M-{i}"])
        cmds.append(["customer", "update", "C", "--industry", f"I{i}"])
    results = run_parallel(url, cmds)
    clean(results)
    led = ledger(crm)
    assert len(led["refs"]) == N
    (_, balance, _), = led["accounts"][1]
    payments = sum(1 for i in range(N) if i % 3 == 2)
    assert balance == Decimal("33.33") * (N - 2 * payments)
