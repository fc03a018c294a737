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
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crmcore.db.types import BALANCE_LIMIT, utcnow
from crmcore.enums import BALANCE_SIGN, AccountStatus, TransactionKind
from crmcore.errors import Conflict, InvalidInput
from crmcore.limits import utc_bound
from crmcore.models import Account, Transaction
from crmcore.schemas import AccountCreate, TransactionCreate
from crmcore.schemas.account import DEFAULT_CURRENCY, check_amount
from crmcore.services._base import Service


def signed_amount():  # type: ignore[no-untyped-def]
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

    def open(self, customer_id: int, data: AccountCreate) -> Account:
        """Open an account. ``is_default`` makes it the default, demoting the current one (the
        caller asked for it); the first account of a customer becomes the default by itself."""
        self.uow.require("account.manage")
        customer = self.uow.customers.get(customer_id)
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
        q = select(Account).order_by(Account.id)
        if customer_id is not None:
            self.uow.customers.get(customer_id)
            q = q.where(Account.customer_id == customer_id)
        return list(self.session.scalars(q))

    def set_status(self, account_id: int, status: AccountStatus | str) -> Account:
        self.uow.require("account.manage")
        status = AccountStatus(status)
        account = self.get(account_id)
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
        customer = self.uow.customers.get(customer_id)
        if customer.archived:
            raise Conflict(f"customer {customer_id} is archived")
        if account_id is not None:
            account = self.get(account_id)
            if account.customer_id != customer_id:
                raise InvalidInput(f"account {account_id} does not belong to customer {customer_id}")
        existing = self.posted(customer_id, data.reference)
        if existing is not None:
            return self._same_or_conflict(existing, data), False
        if account_id is None:
            account = self.default_account(customer_id, data.currency)
        currency = data.currency or account.currency
        if currency != account.currency:
            raise InvalidInput(f"wrong currency {currency}: account {account.id} is kept in {account.currency}",
                               [("currency", f"account is in {account.currency}")])
        try:
            check_amount(data.amount, currency)
        except ValueError as e:
            raise InvalidInput(f"invalid input: {e}", [("amount", str(e))]) from None
        if account.status is AccountStatus.CLOSED:
            raise Conflict(f"account {account.id} is closed")
        if account.status is AccountStatus.ON_HOLD and data.kind is TransactionKind.INVOICE:
            raise Conflict(f"account {account.id} is on hold; invoices are refused until it is released")
        # the account's row lock orders posts to one account; the balance is checked before any write
        # (refreshed into the ORM object itself: a stale loaded balance equal to the new one would
        # make the ORM skip the UPDATE)
        self.session.refresh(account, ["balance"], with_for_update=True)
        new_balance = account.balance + effect(data.kind, data.amount)
        check_balance(account.id, account.currency, new_balance)
        self.uow.hooks.before_transaction_post(self.uow, account, data)
        entry = Transaction(account_id=account.id, customer_id=customer_id, kind=data.kind, amount=data.amount,
                            currency=currency, occurred_at=data.occurred_at or utcnow(), due_date=data.due_date,
                            reference=data.reference, description=data.description, category=data.category,
                            source=data.source)
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
        account.balance = new_balance
        self.session.flush()
        self.uow.audit.record("post", "transaction", entry.id, after={"account_id": account.id, **data.model_dump()})
        self.uow.hooks.transaction_posted(self.uow, entry)
        return entry, True

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
        account = self.get(account_id)
        opening = self._sum(account_id, since) if since is not None else Decimal("0.00")
        q = select(Transaction).where(Transaction.account_id == account_id).order_by(Transaction.occurred_at, Transaction.id)
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
