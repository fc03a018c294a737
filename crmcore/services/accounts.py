from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, func, select

from crmcore.db.types import utcnow
from crmcore.enums import BALANCE_SIGN, AccountStatus, TransactionKind
from crmcore.errors import Conflict, InvalidInput
from crmcore.models import Account, Transaction
from crmcore.schemas import AccountCreate, TransactionCreate
from crmcore.schemas.account import DEFAULT_CURRENCY
from crmcore.services._base import Service


def signed_amount():  # type: ignore[no-untyped-def]
    """SQL expression of an entry's effect on the balance (what the customer owes)."""
    return case(
        *[(Transaction.kind == k.value, Transaction.amount * s) for k, s in BALANCE_SIGN.items() if s != 1],
        else_=Transaction.amount,
    )


def effect(kind: TransactionKind, amount: Decimal) -> Decimal:
    return amount * BALANCE_SIGN[kind]


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
        customer = self.uow.customers.get(customer_id)
        if customer.archived:
            raise Conflict(f"customer {customer_id} is archived")
        has_default = self.session.scalar(select(Account.id).where(Account.customer_id == customer_id, Account.is_default))
        account = Account(customer_id=customer_id, currency=data.currency, payment_terms_days=data.payment_terms_days,
                          is_default=data.is_default or has_default is None, balance=Decimal("0.00"))
        if account.is_default and has_default is not None:
            self.session.get(Account, has_default).is_default = False  # type: ignore[union-attr]
        self.session.add(account)
        self.session.flush()
        self.uow.audit.record("create", "account", account.id, after={"customer_id": customer_id, **data.model_dump()})
        return account

    def default_account(self, customer_id: int, currency: str | None = None) -> Account:
        """The customer's default account, opened on first posting."""
        account = self.session.scalar(select(Account).where(Account.customer_id == customer_id, Account.is_default))
        if account is None:
            account = self.open(customer_id, AccountCreate(currency=currency or DEFAULT_CURRENCY, is_default=True))
        return account

    def list(self, customer_id: int | None = None) -> list[Account]:
        q = select(Account).order_by(Account.id)
        if customer_id is not None:
            self.uow.customers.get(customer_id)
            q = q.where(Account.customer_id == customer_id)
        return list(self.session.scalars(q))

    def set_status(self, account_id: int, status: AccountStatus | str) -> Account:
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

    def post(self, customer_id: int, data: TransactionCreate, account_id: int | None = None) -> tuple[Transaction, bool]:
        """Post an entry; returns (entry, created). The same reference again is a no-op."""
        customer = self.uow.customers.get(customer_id)
        if customer.archived:
            raise Conflict(f"customer {customer_id} is archived")
        if account_id is None:
            account = self.default_account(customer_id, data.currency)
        else:
            account = self.get(account_id)
            if account.customer_id != customer_id:
                raise InvalidInput(f"account {account_id} does not belong to customer {customer_id}")
        currency = data.currency or account.currency
        if currency != account.currency:
            raise InvalidInput(f"wrong currency {currency}: account {account.id} is kept in {account.currency}",
                               [("currency", f"account is in {account.currency}")])
        existing = self.session.scalar(
            select(Transaction).where(Transaction.account_id == account.id, Transaction.reference == data.reference)
        )
        if existing is not None:
            if existing.kind != data.kind or existing.amount != data.amount:
                raise Conflict(
                    f"reference {data.reference!r} is already posted on account {account.id} as "
                    f"{existing.kind.value} {existing.amount}; a correction needs a new reference"
                )
            return existing, False
        if account.status is AccountStatus.CLOSED:
            raise Conflict(f"account {account.id} is closed")
        if account.status is AccountStatus.ON_HOLD and data.kind is TransactionKind.INVOICE:
            raise Conflict(f"account {account.id} is on hold; invoices are refused until it is released")
        self.uow.hooks.before_transaction_post(self.uow, account, data)
        entry = Transaction(account_id=account.id, kind=data.kind, amount=data.amount, currency=currency,
                            occurred_at=data.occurred_at or utcnow(), due_date=data.due_date, reference=data.reference,
                            description=data.description, category=data.category, source=data.source)
        if entry.kind is TransactionKind.INVOICE and entry.due_date is None:
            entry.due_date = entry.occurred_at.date() + dt.timedelta(days=account.payment_terms_days)
        self.session.add(entry)
        account.balance = Account.balance + effect(data.kind, data.amount)  # atomic in SQL
        self.session.flush()
        self.session.refresh(account, ["balance"])
        self.uow.audit.record("post", "transaction", entry.id, after={"account_id": account.id, **data.model_dump()})
        self.uow.hooks.transaction_posted(self.uow, entry)
        return entry, True

    def statement(self, account_id: int, since: dt.datetime | None = None, until: dt.datetime | None = None) -> Statement:
        account = self.get(account_id)
        opening = Decimal("0.00")
        if since is not None:
            opening = self.session.scalar(
                select(func.coalesce(func.sum(signed_amount()), 0)).where(
                    Transaction.account_id == account_id, Transaction.occurred_at < since)
            ) or Decimal("0.00")
            opening = Decimal(opening).quantize(Decimal("0.01"))
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
        """(stored balance, sum of entries): equal unless the ledger was tampered with."""
        account = self.get(account_id)
        total = self.session.scalar(
            select(func.coalesce(func.sum(signed_amount()), 0)).where(Transaction.account_id == account_id))
        return account.balance, Decimal(total).quantize(Decimal("0.01"))
