"""The posting guards: settlements within what is open, and every entry that raises what a
customer owes (an invoice, a positive adjustment) through the credit check.

``guard_entry`` serves ``crm account post`` (one entry, against the stored ledger);
``guard_batch`` serves the bulk path and keeps a running position per account (:class:`Position`),
so a batch's earlier rows count exactly as if they had been posted one by one before it: an
invoice opens what a later payment of the same file settles, a payment frees the limit for a
later invoice. A ledger export therefore re-imports.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from crm_credit import control, ledger, terms
from crm_credit.services import (
    CURRENT,
    SETTLEMENTS,
    _open_figures,
    check,
    evaluate,
    fmt,
    get_profile,
    lock_profiles,
    today,
    uninvoiced_won,
)
from crm_credit.settings import CreditSettings, settings
from crmcore.enums import BALANCE_SIGN, TransactionKind
from crmcore.schemas import TransactionCreate
from crmcore.uow import UnitOfWork


def effect(entry: TransactionCreate) -> Decimal:
    """The entry's effect on what the customer owes (the core's sign per kind)."""
    return entry.amount * BALANCE_SIGN[entry.kind]


def raises_owed(entry: TransactionCreate) -> bool:
    """An invoice, a positive adjustment: whatever makes the customer owe more."""
    return effect(entry) > 0


def credit_checked(entry: TransactionCreate, s: CreditSettings) -> bool:
    """Entries that go through the credit check when posted. Invoices unless the check point is
    the win (the won deal was checked); other debits (adjustments) always: no deal checked them."""
    if not raises_owed(entry):
        return False
    return entry.kind is not TransactionKind.INVOICE or s.check_point != "win"


def settlement_problem(entry_kind: TransactionKind, amount: Decimal, name: str | None, account_id: int,
                       items: ledger.OpenItems, s: CreditSettings, allocations: Sequence[Any] = ()) -> str | None:
    """Why a payment / credit note / write-off cannot be posted against the stored ledger, or None.

    A settlement naming an invoice (``applies_to``) may not exceed what is open on it; one naming
    none may not exceed the account's open receivable unless ``allow_overpayment`` is on. One
    settling several invoices (allocations) may allocate to each no more than is open on it, and
    as a whole follows the rule of an unnamed one.
    """
    sel = items.account == account_id
    if allocations:
        def open_of(ref: str) -> int | None:
            hit = np.flatnonzero(sel & (items.reference == ref))
            return int(items.open[hit].sum()) if hit.size else None

        return _alloc_problem(entry_kind, amount, allocations, open_of, int(items.open[sel].sum()), account_id, s)
    open_on = None
    if name is not None:
        hit = np.flatnonzero(sel & (items.reference == name))
        open_on = int(items.open[hit].sum()) if hit.size else None
    return _problem(entry_kind, amount, name, open_on, int(items.open[sel].sum()), account_id, s)


def _alloc_problem(kind: TransactionKind, amount: Decimal, allocations: Sequence[Any], open_of: Callable[[str], int | None],
                   open_total: int, account_id: int, s: CreditSettings) -> str | None:
    for al in allocations:
        open_on = open_of(al.reference)
        if open_on is None:
            return f"names invoice {al.reference}, which is not on account {account_id}"
        if al.amount is not None and ledger.cents(al.amount) > open_on:
            return (f"{fmt(al.amount)} allocated to invoice {al.reference} is larger than the "
                    f"{fmt(ledger.money(open_on))} still open on it")
    return _problem(kind, amount, None, None, open_total, account_id, s)


def _problem(kind: TransactionKind, amount: Decimal, name: str | None, open_on: int | None, open_total: int,
             account_id: int, s: CreditSettings) -> str | None:
    want = ledger.cents(amount)
    if name is not None:
        if open_on is None:
            return f"names invoice {name}, which is not on account {account_id}"
        if want > open_on:
            return (f"{kind.value} of {fmt(amount)} is larger than the {fmt(ledger.money(open_on))} still open "
                    f"on invoice {name}")
        return None
    if not s.allow_overpayment and want > open_total:
        return (f"{kind.value} of {fmt(amount)} is larger than the {fmt(ledger.money(max(open_total, 0)))} open "
                f"on account {account_id} (credit.allow_overpayment is off)")
    return None


def guard_entry(uow: UnitOfWork, account: Any, entry: TransactionCreate) -> None:
    """The posting guard of one entry (``crm_before_transaction_post``)."""
    from crmcore import Veto

    s = settings(uow)
    if entry.kind in SETTLEMENTS:
        lock_profiles(uow, [account.customer_id])  # two settlements of one invoice at once: the later sees the first
        items = ledger.open_items(uow.session, CURRENT, [account.customer_id])
        problem = settlement_problem(entry.kind, entry.amount, entry.applies_to, account.id, items, s, entry.allocations)
        if problem:
            raise Veto(problem)
        return
    if not credit_checked(entry, s) or terms.is_charge(uow, entry):
        return  # a dunning charge is the consequence of a debt, not new credit
    chk = check(uow, account.customer_id, entry.amount, account.currency, entry.reference)
    if not chk.ok:
        refusal = control.warn_pass(uow, s, get_profile(uow, account.customer_id), chk)
        if refusal:
            raise Veto(refusal)


class _Fenwick:
    """Prefix sums with point updates, both O(log n)."""

    def __init__(self, n: int) -> None:
        self.tree = [0] * (n + 1)

    def add(self, i: int, value: int) -> None:
        i += 1
        while i < len(self.tree):
            self.tree[i] += value
            i += i & -i

    def prefix(self, i: int) -> int:
        """Sum of positions 0..i."""
        i += 1
        total = 0
        while i > 0:
            total += self.tree[i]
            i -= i & -i
        return total


@dataclass
class _Account:
    """One account's debit items in the ledger's FIFO order (due day, issue day, then id; a batch's
    entries come after the stored ones of the same days), what is left of each after the credits
    naming it, and the pool of credits that settle them oldest first. Item k is open by
    clip(prefix(k) - pool, 0, left[k]), exactly as :func:`ledger.match` computes it."""

    left: list[int]
    tree: _Fenwick
    pool: int
    by_ref: dict[str, int] = field(default_factory=dict)  # invoice reference -> position
    stored_open: int = 0

    def open_on(self, k: int) -> int:
        return max(0, min(self.tree.prefix(k) - self.pool, self.left[k]))

    @property
    def open(self) -> int:
        return max(0, self.tree.prefix(len(self.left) - 1) - self.pool) if self.left else 0

    def add(self, k: int, cents: int) -> None:
        self.left[k] += cents
        self.tree.add(k, cents)


class Position:
    """The running open position of the accounts a batch touches: the stored ledger, then each
    accepted entry of the batch in file order, settled by the ledger's own rules (a credit naming
    an invoice settles it first, up to its amount; the rest joins the credits that settle the
    oldest items). Every check sees what :func:`guard_entry` would see had the earlier rows been
    posted one by one."""

    BATCH = 1 << 62  # batch entries sort after stored entries of the same days (their ids are larger)

    def __init__(self, items: ledger.OpenItems, entries: list[tuple[Any, TransactionCreate]], today: int) -> None:
        keys: dict[int, list[tuple[int, int, int, int, str | None]]] = {}  # (due, day, seq, left, ref)
        for acc, ref, due, day, txn, left in zip(
                items.account.tolist(), items.reference.tolist(), items.due.tolist(), items.issued.tolist(),
                items.txn.tolist(), items.remaining.tolist()):
            keys.setdefault(acc, []).append((due, day, txn, left, ref))
        self.slot: dict[int, int] = {}  # batch entry index -> its position on its account
        for i, (account, e) in enumerate(entries):
            if raises_owed(e):
                day = ledger.day_of(e.occurred_at.date()) if e.occurred_at else today
                due = ledger.day_of(e.due_date) if e.due_date else day + (
                    account.payment_terms_days if e.kind is TransactionKind.INVOICE else 0)
                ref = e.reference if e.kind in (TransactionKind.INVOICE, TransactionKind.CHARGE) else None
                keys.setdefault(account.id, []).append((due, day, self.BATCH + i, 0, ref))
        pools = dict(zip(items.pool_account.tolist(), items.pool_cents.tolist()))
        self.accounts: dict[int, _Account] = {}
        for acc, rows in keys.items():
            rows.sort(key=lambda r: r[:3])
            a = _Account(left=[r[3] for r in rows], tree=_Fenwick(len(rows)),
                         pool=pools.get(acc, 0))
            for k, r in enumerate(rows):
                a.tree.add(k, r[3])
                if r[2] >= self.BATCH:
                    self.slot[r[2] - self.BATCH] = k
                elif r[4] is not None:
                    a.by_ref[r[4]] = k
            a.stored_open = a.open
            self.accounts[acc] = a

    def account(self, account_id: int) -> _Account:
        if account_id not in self.accounts:
            self.accounts[account_id] = _Account(left=[], tree=_Fenwick(0), pool=0)
        return self.accounts[account_id]

    def problem(self, account_id: int, e: TransactionCreate, s: CreditSettings) -> str | None:
        a = self.account(account_id)
        if e.allocations:
            def open_of(ref: str) -> int | None:
                k = a.by_ref.get(ref)
                return None if k is None else a.open_on(k)

            return _alloc_problem(e.kind, e.amount, e.allocations, open_of, a.open, account_id, s)
        name = e.applies_to
        k = a.by_ref.get(name) if name is not None else None
        return _problem(e.kind, e.amount, name, None if k is None else a.open_on(k), a.open, account_id, s)

    def apply(self, index: int, account_id: int, e: TransactionCreate) -> None:
        """Entry ``index`` of the batch was accepted."""
        a = self.account(account_id)
        cents = ledger.cents(abs(effect(e)))
        if raises_owed(e):
            slot = self.slot[index]
            a.add(slot, cents)
            if e.kind in (TransactionKind.INVOICE, TransactionKind.CHARGE):
                a.by_ref[e.reference] = slot
            return
        if e.allocations:  # each allocation settles its invoice (an amount, or what is left in order), as the core
            explicit = sum(ledger.cents(al.amount) for al in e.allocations if al.amount is not None)
            free = cents - explicit
            for al in e.allocations:
                k = a.by_ref.get(al.reference)
                if k is None:
                    continue
                want = ledger.cents(al.amount) if al.amount is not None else max(0, min(free, a.left[k]))
                if al.amount is None:
                    free -= want
                used = min(a.left[k], want)
                a.add(k, -used)
                cents -= used
        else:
            name = e.applies_to
            k = a.by_ref.get(name) if name is not None else None
            if k is not None:  # a named credit settles its invoice up to what the other named ones left of it
                used = min(a.left[k], cents)
                a.add(k, -used)
                cents -= used
        a.pool += cents

    def change(self, account_ids: set[int]) -> Decimal:
        """What the batch changed the open receivable of these accounts by."""
        return ledger.money(sum(self.account(a).open - self.account(a).stored_open for a in account_ids))


def guard_batch(uow: UnitOfWork, entries: list[tuple[Any, TransactionCreate]]) -> dict[int, str] | None:
    """The bulk posting guard (``crm_before_transactions_batch``): the same rules as
    :func:`guard_entry`, each entry seeing the batch's accepted entries before it."""
    s = settings(uow)
    if not any(e.kind in SETTLEMENTS or credit_checked(e, s) for _, e in entries):
        return None
    customers = sorted({a.customer_id for a, _ in entries})
    checked = sorted({a.customer_id for a, e in entries if credit_checked(e, s) or e.kind in SETTLEMENTS})
    profiles = lock_profiles(uow, checked) if checked else {}
    items = ledger.open_items(uow.session, CURRENT, customers)
    figures = _open_figures(uow, customers, s.overdue_grace_days, items)
    pos = Position(items, entries, ledger.day_of(today()))
    touched: dict[tuple[int, str], set[int]] = {}
    won: dict[tuple[int, str], Decimal] = {}
    refused: dict[int, str] = {}
    for i, (account, e) in enumerate(entries):
        key = (account.customer_id, account.currency)
        if e.kind in SETTLEMENTS:
            problem = pos.problem(account.id, e, s)
            if problem:
                refused[i] = problem
                continue
        elif credit_checked(e, s):
            if key not in won:
                won[key] = uninvoiced_won(uow, account.customer_id, account.currency)
            pending = pos.change(touched.get(key, set()))
            chk = evaluate(uow, s, profiles.get(account.customer_id), account.customer_id, e.amount, account.currency,
                           figures, e.reference, pending, won[key])
            if not chk.ok:
                refusal = control.warn_pass(uow, s, profiles.get(account.customer_id), chk)
                if refusal:
                    refused[i] = refusal
                    continue
        pos.apply(i, account.id, e)
        touched.setdefault(key, set()).add(account.id)
    return refused or None


def guard_win(uow: UnitOfWork, opportunity: Any) -> None:
    """sales_automation's win guard: the won amount must fit the customer's credit."""
    from crmcore import Veto

    s = settings(uow)
    if s.check_point == "invoice":
        return
    amount = Decimal(opportunity.amount or 0)
    if amount <= 0:
        return
    chk = check(uow, int(opportunity.customer_id), amount, opportunity.currency, f"opportunity:{opportunity.id}")
    if not chk.ok:
        refusal = control.warn_pass(uow, s, get_profile(uow, int(opportunity.customer_id)), chk)
        if refusal:
            raise Veto(refusal)
