from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from crmcore.db.base import Base
from crmcore.db.types import Money, UTCDateTime
from crmcore.enums import AccountStatus, TransactionKind
from crmcore.models._columns import created_at, enum_column


class Account(Base):
    """The customer's ledger. ``balance`` is kept equal to the signed sum of its entries."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    payment_terms_days: Mapped[int] = mapped_column(Integer, default=30)
    status: Mapped[AccountStatus] = mapped_column(enum_column(AccountStatus, "account_status"), default=AccountStatus.OPEN)
    balance: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = created_at()

    __table_args__ = (
        # at most one default account per customer, even with two writers racing to open it
        Index("uq_accounts_one_default", "customer_id", unique=True,
              sqlite_where=text("is_default = 1"), postgresql_where=text("is_default")),
    )


class Transaction(Base):
    """An account entry. Amounts are positive; the kind gives the sign (an adjustment may be negative).

    ``reference`` is unique per account, so reposting the same document is a no-op.
    """

    __tablename__ = "transactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[TransactionKind] = mapped_column(enum_column(TransactionKind, "transaction_kind"))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(500))
    category: Mapped[str | None] = mapped_column(String(64))  # product line, for cross-buying analyses
    source: Mapped[str] = mapped_column(String(64), default="core")
    created_at: Mapped[dt.datetime] = created_at()

    __table_args__ = (
        UniqueConstraint("account_id", "reference"),
        Index("ix_transactions_account_occurred", "account_id", "occurred_at"),
        Index("ix_transactions_reference", "reference"),  # find a document by number; bulk idempotency
    )
