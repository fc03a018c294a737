"""Accounts (ledgers) and their entries.

Concurrency rules, the same on SQLite and PostgreSQL (see docs/admin-guide.md, "Guarantees"):

- a customer's default account is opened with ``INSERT … ON CONFLICT DO NOTHING`` against the
  partial unique index of default accounts: two writers opening it at once end with one account,
  and an account another writer just committed is never demoted;
- a document reference is posted once per customer: UNIQUE(customer_id, reference) in the
  database. A writer that loses the race gets the IntegrityError inside a SAVEPOINT, reads the
  winner's entry and returns it (same content) or refuses (different content);
- the balance is changed under the account's row lock (PostgreSQL ``FOR UPDATE``; SQLite's write
  lock), checked against ``BALANCE_LIMIT`` before anything is written.

An entry's dates lie within the posting horizon (:class:`PostingHorizon`): not before 1900, not
more than ``[ledger] max_future_days`` ahead, so no entry hides beyond every report's "as of".
"""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import ColumnElement, Insert, case, delete, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, subqueryload

from crmcore.db.types import BALANCE_LIMIT, utcnow
from crmcore.enums import BALANCE_SIGN, SETTLING_KINDS, AccountStatus, TransactionKind
from crmcore.errors import ConfigError, Conflict, InvalidInput, NotFound
from crmcore.limits import EARLIEST, utc_bound
from crmcore.models import Account, Allocation, Transaction
from crmcore.schemas import AccountCreate, TransactionCreate
from crmcore.schemas.account import DEFAULT_CURRENCY, check_amount
from crmcore.services._base import Service


def signed_amount() -> ColumnElement[Any]:
    """SQL expression of an entry's effect on the balance (what the customer owes)."""
    return case(
        *[(Transaction.kind == k.value, Transaction.amount * s) for k, s in BALANCE_SIGN.items() if s != 1],
        else_=Transaction.amount,
    )


def effect(kind: TransactionKind, amount: Decimal) -> Decimal:
    return amount * BALANCE_SIGN[kind]


def check_balance(account_id: int, currency: str, balance: Decimal) -> None:
    """Conflict when a balance would leave the documented range (``BALANCE_LIMIT``)."""
    if abs(balance) > BALANCE_LIMIT:
        raise Conflict(f"account {account_id} would reach a balance of {balance} {currency}, beyond the limit of "
                       f"±{BALANCE_LIMIT:,} {currency}; nothing was posted")


def balances_over_limit(session: Session, deltas: Mapping[int, Decimal]) -> dict[int, Decimal]:
    """For set-based posting (imports): {account id: the balance it would reach} for the accounts
    that ``deltas`` would take beyond ``BALANCE_LIMIT``. Locks the accounts' rows on PostgreSQL
    (in id order), so the balances cannot move before the caller's UPDATE."""
    out: dict[int, Decimal] = {}
    ids = sorted(deltas)
    for i in range(0, len(ids), 5000):
        q = select(Account.id, Account.balance).where(Account.id.in_(ids[i:i + 5000])).order_by(Account.id).with_for_update()
        for account_id, balance in session.execute(q):
            new = balance + deltas[account_id]
            if abs(new) > BALANCE_LIMIT:
                out[account_id] = new
    return out


class LedgerSettings(BaseModel):
    """``[ledger]`` in crm.toml; ``CRM_LEDGER_MAX_FUTURE_DAYS`` in the environment wins."""

    model_config = ConfigDict(extra="forbid")

    max_future_days: int = Field(default=366, ge=0, le=3660)


#: The longest payment terms an account can have (``AccountCreate.payment_terms_days``).
MAX_TERMS_DAYS = 365
HORIZON_ENV = "CRM_LEDGER_MAX_FUTURE_DAYS"


def ledger_settings(config: Mapping[str, Any] | None) -> LedgerSettings:
    """The validated ``[ledger]`` settings, or one ConfigError line."""
    table = (config or {}).get("ledger", {})
    if not isinstance(table, Mapping):
        raise ConfigError("crm.toml [ledger]: must be a table")
    values = dict(table)
    if os.environ.get(HORIZON_ENV, "").strip():
        values["max_future_days"] = os.environ[HORIZON_ENV].strip()
    try:
        return LedgerSettings.model_validate(values)
    except ValidationError as e:
        err = e.errors()[0]
        where = HORIZON_ENV if HORIZON_ENV in os.environ and err["loc"][:1] == ("max_future_days",) else "crm.toml [ledger]"
        raise ConfigError(f"{where}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


@dataclass(frozen=True)
class PostingHorizon:
    """The dates an entry may carry: occurred from 1900-01-01 to ``max_future_days`` after now;
    a due date up to the longest payment terms after that. Beyond it an entry would escape
    every report's "as of" (and the credit exposure), or be a typo (9999 for 2025)."""

    now: dt.datetime
    max_future_days: int

    @classmethod
    def of(cls, uow: Any) -> PostingHorizon:
        return cls(utcnow(), ledger_settings(uow.crm.config).max_future_days)

    @property
    def latest(self) -> dt.datetime:
        return self.now + dt.timedelta(days=self.max_future_days)

    def problem(self, occurred_at: dt.datetime | None, due_date: dt.date | None) -> tuple[str, str] | None:
        """(field, reason) of the first date outside the horizon, or None."""
        latest = self.latest
        setting = f"{self.max_future_days} days ahead (the posting horizon: [ledger] max_future_days)"
        if occurred_at is not None:
            when = occurred_at if occurred_at.tzinfo else occurred_at.replace(tzinfo=dt.UTC)
            if when < EARLIEST:
                return "occurred_at", f"{when.date()} is before {EARLIEST.date()}, the earliest date a ledger entry can have"
            if when > latest:
                return "occurred_at", f"{when.date()} is more than {setting}; the latest date now is {latest.date()}"
        if due_date is not None:
            if due_date < EARLIEST.date():
                return "due_date", f"{due_date} is before {EARLIEST.date()}, the earliest date a ledger entry can have"
            last_due = latest.date() + dt.timedelta(days=MAX_TERMS_DAYS)
            if due_date > last_due:
                return "due_date", (f"{due_date} is more than {MAX_TERMS_DAYS} days of payment terms after the posting "
                                    f"horizon ({setting}); the latest due date now is {last_due}")
        return None

    def check(self, occurred_at: dt.datetime | None, due_date: dt.date | None) -> None:
        found = self.problem(occurred_at, due_date)
        if found is not None:
            raise InvalidInput(f"invalid input: {found[0]}: {found[1]}; nothing was posted", [found])


def emergency_disabled_plugins(uow: Any) -> list[str]:
    """Plugins enabled in the database but kept out by ``CRM_DISABLE_PLUGINS`` (the emergency
    switch): a posting made meanwhile skipped their guards, and its audit entry says so."""
    return sorted(pid for pid, info in uow.crm.unavailable.items() if info.blocked)


def posting_audit(uow: Any, after: dict[str, Any]) -> dict[str, Any]:
    """``after`` plus ``emergency_disabled_plugins`` while the emergency switch is on."""
    blocked = emergency_disabled_plugins(uow)
    return {**after, "emergency_disabled_plugins": blocked} if blocked else after


def keep_used_accounts(uow: Any, opened: Mapping[int, tuple[int, str]]) -> None:
    """Accounts a bulk import opened for its rows ({id: (customer id, currency)}): those that got
    no entry are deleted again (an import whose rows were all rejected opens nothing), the others
    are audited as ``AccountService.open`` audits an account."""
    if not opened:
        return
    ids = sorted(opened)
    used: set[int] = set()
    for i in range(0, len(ids), 5000):
        used.update(uow.session.scalars(select(Transaction.account_id).where(
            Transaction.account_id.in_(ids[i:i + 5000])).distinct()))
    unused = [a for a in ids if a not in used]
    for i in range(0, len(unused), 5000):
        uow.session.execute(delete(Account).where(Account.id.in_(unused[i:i + 5000])))
    from crmcore.services.audit import insert_entries

    insert_entries(uow.session.connection(), uow.actor, [
        {"action": "create", "entity": "account", "entity_id": a,
         "after": {"customer_id": opened[a][0], "currency": opened[a][1], "payment_terms_days": 30, "is_default": True,
                   "source": "import"}} for a in ids if a in used])


def settle_problem(customer_id: int, account_id: int, ref: str, target: tuple[int, TransactionKind] | None,
                   allowed: set[TransactionKind]) -> str | None:
    """Why an entry of ``account_id`` cannot name ``ref`` (its (account, kind) or None), or None."""
    names = " or ".join(sorted(k.value for k in allowed))
    if target is None:
        return f"customer {customer_id} has no {names} {ref!r}"
    if target[1] not in allowed:
        return f"{ref!r} is {'an' if target[1].value[0] in 'aeiou' else 'a'} {target[1].value}, not {'an' if names[0] in 'aeiou' else 'a'} {names}"
    if target[0] != account_id:
        return f"{ref!r} is on account {target[0]}, not on account {account_id} (an entry settles entries of its own account)"
    return None


def allowed_targets(kind: TransactionKind) -> set[TransactionKind]:
    """What an entry of ``kind`` may name: a credit settles an invoice or a charge; a charge names an invoice."""
    return {TransactionKind.INVOICE, TransactionKind.CHARGE} if kind in SETTLING_KINDS else {TransactionKind.INVOICE}


def allocatable(session: Session, targets: list[tuple[int, Decimal]]) -> dict[int, Decimal]:
    """{target id: what may still be allocated to it}: its amount less the allocations of other
    entries and the credits naming it alone (``applies_to_id``), never below zero."""
    ids = sorted({i for i, _ in targets})
    taken: dict[int, Decimal] = {i: Decimal(0) for i in ids}
    for i in range(0, len(ids), 5000):
        chunk = ids[i:i + 5000]
        for tid, amount in session.execute(select(Allocation.target_id, Allocation.amount).where(Allocation.target_id.in_(chunk))):
            taken[tid] += amount
        for named, amount in session.execute(select(Transaction.applies_to_id, Transaction.amount).where(
                Transaction.applies_to_id.in_(chunk), Transaction.kind.in_([k.value for k in SETTLING_KINDS]))):
            if named is not None:
                taken[named] += amount
    return {i: max(amount - taken[i], Decimal(0)) for i, amount in targets}


def split_allocations(kind: str, amount: Decimal, wanted: list[tuple[str, Decimal | None, Decimal]]) -> list[tuple[str, Decimal]]:
    """The amount settled on each named invoice: ``wanted`` is (reference, amount asked or None,
    open amount). An amount asked beyond the invoice's open amount, or beyond what the entry
    has, is a ValueError (one line); an invoice given no amount takes what is left of the entry,
    up to its open amount, in order, and must get something."""
    left = amount - sum((a for _, a, _ in wanted if a is not None), Decimal(0))
    if left < 0:
        raise ValueError(f"the amounts allocated ({amount - left}) exceed the {kind} amount ({amount})")
    out = []
    for ref, asked, open_ in wanted:
        if asked is not None:
            if asked > open_:
                raise ValueError(f"{asked} allocated to {ref!r} exceeds what is open on it ({open_})")
            out.append((ref, asked))
            continue
        if open_ <= 0:
            raise ValueError(f"{ref!r} has nothing open to settle")
        if left <= 0:
            raise ValueError(f"nothing of the {kind} is left for {ref!r} (the invoices before it take it all)")
        take = min(left, open_)
        left -= take
        out.append((ref, take))
    return out


@dataclass
class StatementLine:
    entry: Transaction
    effect: Decimal
    running_balance: Decimal


@dataclass
class Statement:
    account: Account
    opening_balance: Decimal
    lines: list[StatementLine]
    closing_balance: Decimal


class AccountService(Service):
    def get(self, account_id: int) -> Account:
        return self._get(Account, account_id, "account")

    def _visible_account(self, account_id: int) -> Account:
        """The account to change: not found when its customer is not the actor's to see."""
        account = self.get(account_id)
        if not self.uow.visibility.can_see(self.uow.customers.get(account.customer_id)):
            raise NotFound("account", account_id)
        return account

    def visible(self, account_id: int) -> Account:
        """The account for a read (``customer.read``): not found, like a missing one, when the
        actor may not see its customer."""
        self.uow.require("customer.read")
        account = self.get(account_id)
        if not self.uow.visibility.can_see(self.uow.customers.get(account.customer_id)):
            raise NotFound("account", account_id)
        return account

    def open(self, customer_id: int, data: AccountCreate) -> Account:
        """Open an account. ``is_default`` makes it the default, demoting the current one (the
        caller asked for it); the first account of a customer becomes the default by itself."""
        self.uow.require("account.manage")
        customer = self.uow.visibility.check(self.uow.customers.get(customer_id))
        if customer.archived:
            raise Conflict(f"customer {customer_id} is archived")
        if not data.is_default:
            opened = self._insert_default(customer_id, data)
            if opened is not None:
                return opened
        account = Account(customer_id=customer_id, currency=data.currency, payment_terms_days=data.payment_terms_days,
                          is_default=data.is_default, balance=Decimal("0.00"))
        try:
            with self.session.begin_nested():
                if data.is_default:
                    current = self.session.scalar(select(Account).where(
                        Account.customer_id == customer_id, Account.is_default).with_for_update())
                    if current is not None:
                        current.is_default = False
                        self.session.flush()
                self.session.add(account)
                self.session.flush()
        except IntegrityError:
            raise Conflict(f"another default account of customer {customer_id} was opened at the same time; "
                           "try again") from None
        self.uow.audit.record("create", "account", account.id, after={"customer_id": customer_id, **data.model_dump()})
        return account

    def _insert_default(self, customer_id: int, data: AccountCreate) -> Account | None:
        """Open the customer's default account unless one exists (race-free); the new account or None."""
        dialect = self.session.get_bind().dialect.name
        values = {"customer_id": customer_id, "currency": data.currency, "payment_terms_days": data.payment_terms_days,
                  "status": AccountStatus.OPEN, "balance": Decimal("0.00"), "is_default": True, "created_at": utcnow()}
        stmt: Insert
        if dialect == "postgresql":
            stmt = pg_insert(Account).values(**values).on_conflict_do_nothing(
                index_elements=["customer_id"], index_where=text("is_default"))
        elif dialect == "sqlite":
            stmt = sqlite_insert(Account).values(**values).on_conflict_do_nothing(
                index_elements=["customer_id"], index_where=text("is_default = 1"))
        else:  # pragma: no cover - only the two engines are supported
            stmt = insert(Account).values(**values)
        new_id = self.session.execute(stmt.returning(Account.id)).scalar()
        if new_id is None:
            return None
        account = self.get(new_id)
        self.uow.audit.record("create", "account", new_id, after={"customer_id": customer_id, **data.model_dump(),
                                                                   "is_default": True})
        return account

    def default_account(self, customer_id: int, currency: str | None = None) -> Account:
        """The customer's default account, opened on first posting (never a second one)."""
        account = self.session.scalar(select(Account).where(Account.customer_id == customer_id, Account.is_default))
        if account is None:
            account = self._insert_default(customer_id, AccountCreate(currency=currency or DEFAULT_CURRENCY))
            if account is None:  # another writer opened it a moment ago: use theirs
                account = self.session.scalar(select(Account).where(Account.customer_id == customer_id,
                                                                    Account.is_default))
            assert account is not None
        return account

    def list(self, customer_id: int | None = None) -> list[Account]:
        """The accounts of one customer or of every customer the actor may see (``customer.read``)."""
        q = select(Account).order_by(Account.id)
        if customer_id is not None:
            self.uow.customers.visible(customer_id)
            q = q.where(Account.customer_id == customer_id)
        else:
            self.uow.require("customer.read")
            q = q.where(self.uow.visibility.customer_filter(Account.customer_id))
        return list(self.session.scalars(q))

    def set_status(self, account_id: int, status: AccountStatus | str) -> Account:
        self.uow.require("account.manage")
        status = AccountStatus(status)
        account = self._visible_account(account_id)
        if account.status is status:
            return account
        if status is AccountStatus.CLOSED and account.balance != 0:
            raise Conflict(f"account {account_id} has a balance of {account.balance} {account.currency}; settle it before closing")
        before = account.status
        account.status = status
        self.session.flush()
        self.uow.audit.record("status", "account", account_id, before={"status": before}, after={"status": status})
        return account

    def posted(self, customer_id: int, reference: str) -> Transaction | None:
        """The customer's entry with this document reference, on any of their accounts."""
        return self.session.scalar(select(Transaction).where(Transaction.customer_id == customer_id,
                                                             Transaction.reference == reference))

    @staticmethod
    def _same_or_conflict(existing: Transaction, data: TransactionCreate) -> Transaction:
        if existing.kind != data.kind or existing.amount != data.amount:
            raise Conflict(
                f"reference {data.reference!r} is already posted on account {existing.account_id} as "
                f"{existing.kind.value} {existing.amount}; a correction needs a new reference"
            )
        return existing

    def post(self, customer_id: int, data: TransactionCreate, account_id: int | None = None) -> tuple[Transaction, bool]:
        """Post an entry; returns (entry, created). The same reference with the same kind and
        amount again is a no-op (also when two writers post it at once); different content is refused."""
        self.uow.require("account.post")
        customer = self.uow.visibility.check(self.uow.customers.get(customer_id))
        if customer.archived:
            raise Conflict(f"customer {customer_id} is archived")
        if account_id is not None:
            account = self.get(account_id)
            if account.customer_id != customer_id:
                raise InvalidInput(f"account {account_id} does not belong to customer {customer_id}")
        existing = self.posted(customer_id, data.reference)
        if existing is not None:
            return self._same_or_conflict(existing, data), False
        now = utcnow()
        PostingHorizon(now, ledger_settings(self.uow.crm.config).max_future_days).check(data.occurred_at, data.due_date)
        if account_id is None:
            account = self.default_account(customer_id, data.currency)
        currency = self._checked_currency(account, data)
        target = self._settled(customer_id, account.id, data)
        if account.status is AccountStatus.CLOSED:
            raise Conflict(f"account {account.id} is closed")
        if account.status is AccountStatus.ON_HOLD and effect(data.kind, data.amount) > 0:
            raise Conflict(f"account {account.id} is on hold; entries that raise what the customer owes "
                           f"({data.kind.value} {data.amount}) are refused until it is released")
        # the account's row lock orders posts to one account; the balance is checked before any write
        # (refreshed into the ORM object itself: a stale loaded balance equal to the new one would
        # make the ORM skip the UPDATE)
        self.session.refresh(account, ["balance"], with_for_update=True)
        new_balance = account.balance + effect(data.kind, data.amount)
        check_balance(account.id, account.currency, new_balance)
        plan = self._allocate(customer_id, account.id, data)  # under the lock: no two payments over-allocate
        self.uow.hooks.before_transaction_post(self.uow, account, data)
        entry = Transaction(account_id=account.id, customer_id=customer_id, kind=data.kind, amount=data.amount,
                            currency=currency, occurred_at=data.occurred_at or now, due_date=data.due_date,
                            reference=data.reference, description=data.description, category=data.category,
                            source=data.source, applies_to_id=None if target is None else target.id, cost=data.cost)
        if entry.kind is TransactionKind.INVOICE and entry.due_date is None:
            try:
                entry.due_date = entry.occurred_at.date() + dt.timedelta(days=account.payment_terms_days)
            except OverflowError:
                raise InvalidInput(f"invalid input: due date of {entry.occurred_at.date()} plus "
                                   f"{account.payment_terms_days} days is after year 9999", [("occurred_at", "too late")]) from None
        try:
            with self.session.begin_nested():
                self.session.add(entry)
                self.session.flush()
        except IntegrityError:
            # another writer posted this reference for the customer since we looked: theirs stands
            existing = self.posted(customer_id, data.reference)
            if existing is None:
                raise
            return self._same_or_conflict(existing, data), False
        self.session.add_all([Allocation(entry_id=entry.id, target_id=t.id, amount=amt) for t, amt in plan])
        account.balance = new_balance
        self.session.flush()
        # what was stored (the account's currency, the posting time, the computed due date), not what was asked
        stored = {"account_id": account.id, "kind": entry.kind, "amount": entry.amount, "currency": entry.currency,
                  "occurred_at": entry.occurred_at, "due_date": entry.due_date, "reference": entry.reference,
                  "description": entry.description, "category": entry.category, "source": entry.source,
                  "applies_to": data.applies_to, "cost": entry.cost,
                  **({"allocations": [{"applies_to": t.reference, "amount": amt} for t, amt in plan]} if plan else {})}
        self.uow.audit.record("post", "transaction", entry.id, after=posting_audit(self.uow, stored))
        self.uow.hooks.transaction_posted(self.uow, entry)
        return entry, True

    @staticmethod
    def _checked_currency(account: Account, data: TransactionCreate) -> str:
        """The entry's currency (the account's), its amounts checked against its decimals."""
        currency = data.currency or account.currency
        if currency != account.currency:
            raise InvalidInput(f"wrong currency {currency}: account {account.id} is kept in {account.currency}",
                               [("currency", f"account is in {account.currency}")])
        values = [("amount", data.amount), ("cost", data.cost)] + [("applies_to", a.amount) for a in data.allocations]
        for name, value in values:
            try:
                if value is not None:
                    check_amount(value, currency)
            except ValueError as e:
                raise InvalidInput(f"invalid input: {name}: {e}; nothing was posted", [(name, str(e))]) from None
        return currency

    def _allocate(self, customer_id: int, account_id: int, data: TransactionCreate) -> Sequence[tuple[Transaction, Decimal]]:
        """(target, amount) of each invoice ``data.allocations`` names, or one InvalidInput line.
        Called under the account's lock: the open amounts read cannot change before the insert."""
        if not data.allocations:
            return []
        refs = [a.reference for a in data.allocations]
        found = {t.reference: t for t in self.session.scalars(select(Transaction).where(
            Transaction.customer_id == customer_id, Transaction.reference.in_(refs)))}
        targets: dict[str, Transaction] = {}
        for ref in refs:
            t = found.get(ref)
            problem = settle_problem(customer_id, account_id, ref, None if t is None else (t.account_id, t.kind),
                                     allowed_targets(data.kind))
            if problem or t is None:
                raise InvalidInput(f"invalid input: applies_to: {problem}; nothing was posted", [("applies_to", str(problem))])
            targets[ref] = t
        opens = allocatable(self.session, [(t.id, t.amount) for t in targets.values()])
        try:
            amounts = split_allocations(data.kind.value, data.amount, [(a.reference, a.amount, opens[targets[a.reference].id])
                                                                        for a in data.allocations])
        except ValueError as e:
            raise InvalidInput(f"invalid input: applies_to: {e}; nothing was posted", [("applies_to", str(e))]) from None
        return [(targets[ref], amt) for ref, amt in amounts]

    def _settled(self, customer_id: int, account_id: int, data: TransactionCreate) -> Transaction | None:
        """The entry ``data.applies_to`` names: an invoice (or, for a credit, a charge) of the same
        customer on the same account; else one InvalidInput line (an unknown reference and another
        customer's invoice read the same: nothing about other customers leaks)."""
        if data.applies_to is None:
            return None
        ref = data.applies_to
        target = self.posted(customer_id, ref)
        problem = settle_problem(customer_id, account_id, ref, None if target is None else (target.account_id, target.kind),
                                 allowed_targets(data.kind))
        if problem:
            raise InvalidInput(f"invalid input: applies_to: {problem}; nothing was posted", [("applies_to", problem)])
        return target

    def _sum(self, account_id: int, before: dt.datetime | None = None) -> Decimal:
        """Signed sum of an account's entries, in Decimal: SQL sums over SQLite's doubles are not
        exact beyond 15 digits, and this is the figure a balance is checked against."""
        q = select(Transaction.kind, Transaction.amount).where(Transaction.account_id == account_id)
        if before is not None:
            q = q.where(Transaction.occurred_at < before)
        total = Decimal("0.00")
        for kind, amount in self.session.execute(q.execution_options(yield_per=5000)):
            total += effect(kind, amount)
        return total

    def statement(self, account_id: int, since: dt.datetime | None = None, until: dt.datetime | None = None) -> Statement:
        since, until = utc_bound(since, "since"), utc_bound(until, "until")  # year 1 at +01:00 has no UTC form
        account = self.visible(account_id)
        opening = self._sum(account_id, since) if since is not None else Decimal("0.00")
        # subqueryload: one query per relationship at any size (selectinload batches by 500 rows)
        q = (select(Transaction).where(Transaction.account_id == account_id).order_by(Transaction.occurred_at, Transaction.id)
             .options(subqueryload(Transaction.applies_to_entry), subqueryload(Transaction.allocations)))
        if since is not None:
            q = q.where(Transaction.occurred_at >= since)
        if until is not None:
            q = q.where(Transaction.occurred_at < until)
        running = opening
        lines = []
        for e in self.session.scalars(q):
            eff = effect(e.kind, e.amount)
            running += eff
            lines.append(StatementLine(e, eff, running))
        return Statement(account, opening, lines, running)

    def verify_balance(self, account_id: int) -> tuple[Decimal, Decimal]:
        """(stored balance, sum of entries), both exact: equal unless the ledger was tampered with."""
        account = self.get(account_id)
        return account.balance, self._sum(account_id)
