"""The posting guards: settlements within what is open, and every entry that raises what a
customer owes (an invoice, a positive adjustment) through the credit check.

``guard_entry`` serves ``crm account post`` (one entry, against the stored ledger);
``guard_batch`` serves the bulk path and keeps a running position per account (:class:`Position`),
so a batch's earlier rows count exactly as if they had been posted one by one before it: an
invoice opens what a later payment of the same file settles, a payment frees the limit for a
later invoice. A ledger export therefore re-imports.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from crm_credit import ledger
from crm_credit.services import (
    CURRENT,
    SETTLEMENTS,
    _open_figures,
    check,
    evaluate,
    fmt,
    lock_profiles,
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


def settlement_problem(entry_kind: TransactionKind, amount: Decimal, description: str | None, account_id: int,
                       items: ledger.OpenItems, s: CreditSettings) -> str | None:
    """Why a payment / credit note / write-off cannot be posted against the stored ledger, or None.

    A settlement naming an invoice may not exceed what is open on it; one naming none may not
    exceed the account's open receivable unless ``allow_overpayment`` is on.
    """
    sel = items.account == account_id
    name = ledger.named_invoice(description)
    open_on = None
    if name is not None:
        hit = np.flatnonzero(sel & (items.reference == name))
        open_on = int(items.open[hit].sum()) if hit.size else None
    return _problem(entry_kind, amount, name, open_on, int(items.open[sel].sum()), account_id, s)


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
        items = ledger.open_items(uow.session, CURRENT, [account.customer_id])
        problem = settlement_problem(entry.kind, entry.amount, entry.description, account.id, items, s)
        if problem:
            raise Veto(problem)
        return
    if not credit_checked(entry, s):
        return
    chk = check(uow, account.customer_id, entry.amount, account.currency, entry.reference)
    if not chk.ok:
        raise Veto(chk.message())


@dataclass
class _Account:
    """One account's open debit items in FIFO order (as :func:`ledger.match` settles them)."""

    items: list[list[Any]] = field(default_factory=list)  # [reference or None, open cents]
    by_ref: dict[str, list[Any]] = field(default_factory=dict)
    unapplied: int = 0
    stored_open: int = 0
    open: int = 0  # kept up to date (a batch of thousands of rows for one customer stays linear)
    first_open: int = 0  # items before this one are settled (they never reopen)

    def settle(self, item: list[Any], cents: int) -> int:
        """Settle up to ``cents`` of ``item``; what is left of ``cents``."""
        used = min(item[1], cents)
        item[1] -= used
        self.open -= used
        return cents - used


class Position:
    """The running open position of the accounts a batch touches: the stored open items, then
    each accepted entry of the batch applied in file order with the ledger's own rules (a named
    credit settles its invoice first, the rest settles the oldest items, leftovers are unapplied
    credit that settles the next debit)."""

    def __init__(self, items: ledger.OpenItems) -> None:
        self.accounts: dict[int, _Account] = {}
        for acc, ref, opn, amount in zip(items.account.tolist(), items.reference.tolist(), items.open.tolist(),
                                         items.amount.tolist()):
            a = self.accounts.setdefault(acc, _Account())
            item = [ref, opn]
            a.items.append(item)
            a.stored_open += opn
            a.open += opn
            if ref is not None:
                a.by_ref[ref] = item
        for acc, left in zip(items.unapplied_account.tolist(), items.unapplied_cents.tolist()):
            self.accounts.setdefault(acc, _Account()).unapplied += left

    def account(self, account_id: int) -> _Account:
        return self.accounts.setdefault(account_id, _Account())

    def problem(self, account_id: int, e: TransactionCreate, s: CreditSettings) -> str | None:
        a = self.account(account_id)
        name = ledger.named_invoice(e.description)
        named = a.by_ref.get(name) if name is not None else None
        return _problem(e.kind, e.amount, name, None if named is None else named[1], a.open, account_id, s)

    def apply(self, account_id: int, e: TransactionCreate) -> None:
        a = self.account(account_id)
        cents = ledger.cents(abs(effect(e)))
        if raises_owed(e):
            used = min(a.unapplied, cents)
            a.unapplied -= used
            item = [e.reference if e.kind is TransactionKind.INVOICE else None, cents - used]
            a.items.append(item)
            a.open += item[1]
            if item[0] is not None:
                a.by_ref[item[0]] = item
            return
        name = ledger.named_invoice(e.description)
        target = a.by_ref.get(name) if name is not None else None
        if target is not None:
            cents = a.settle(target, cents)
        while cents and a.first_open < len(a.items):
            cents = a.settle(a.items[a.first_open], cents)
            if a.items[a.first_open][1] == 0:
                a.first_open += 1
        a.unapplied += cents

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
    checked = sorted({a.customer_id for a, e in entries if credit_checked(e, s)})
    profiles = lock_profiles(uow, checked) if checked else {}
    items = ledger.open_items(uow.session, CURRENT, customers)
    figures = _open_figures(uow, customers, s.overdue_grace_days, items)
    pos = Position(items)
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
                refused[i] = chk.message()
                continue
        pos.apply(account.id, e)
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
        raise Veto(chk.message())
