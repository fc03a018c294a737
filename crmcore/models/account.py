from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Boolean, Date, ForeignKey, ForeignKeyConstraint, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crmcore.db.base import Base
from crmcore.db.types import Balance, Money, UTCDateTime
from crmcore.enums import AccountStatus, TransactionKind
from crmcore.models._columns import created_at, enum_column


class Account(Base):
    """The customer's ledger. ``balance`` is kept equal to the signed sum of its entries, exactly
    (``Balance``), within ``crmcore.db.types.BALANCE_LIMIT``."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    payment_terms_days: Mapped[int] = mapped_column(Integer, default=30)
    status: Mapped[AccountStatus] = mapped_column(enum_column(AccountStatus, "account_status"), default=AccountStatus.OPEN)
    balance: Mapped[Decimal] = mapped_column(Balance, default=Decimal("0.00"))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = created_at()

    __table_args__ = (
        # at most one default account per customer, even with two writers racing to open it
        Index("uq_accounts_one_default", "customer_id", unique=True,
              sqlite_where=text("is_default = 1"), postgresql_where=text("is_default")),
        # the target of transactions' (account_id, customer_id) foreign key (an index: SQLite can
        # add one to an existing table without rebuilding it)
        Index("uq_accounts_id_customer_id", "id", "customer_id", unique=True),
    )


class Transaction(Base):
    """An account entry. Amounts are positive; the kind gives the sign (an adjustment may be negative).

    ``reference`` is unique per customer (a database constraint), so a document is posted once
    whatever the concurrency and whichever account: reposting it is a no-op. ``customer_id`` is
    the account's customer, kept equal to it by a composite foreign key that follows a merge
    (ON UPDATE CASCADE).

    ``applies_to_id`` is the entry a payment, credit note or write-off settles (an invoice or a
    charge), or the invoice a charge is charged on: always an entry of the same account (the
    posting service and the importer check it; the foreign key keeps it pointing at a real entry,
    and ids never change, so a merge cannot break it). ``cost`` is the cost of goods of the entry
    (profit analyses), in the entry's currency.
    """

    __tablename__ = "transactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    customer_id: Mapped[int] = mapped_column(Integer)
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
    applies_to_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"), index=True)
    cost: Mapped[Decimal | None] = mapped_column(Money)

    #: the entry named by ``applies_to_id`` (read-only: posting sets the id)
    applies_to_entry: Mapped[Transaction | None] = relationship(remote_side=[id], viewonly=True, lazy="select")
    #: the entries this one settles with an amount each (a payment settling several invoices; read-only)
    allocations: Mapped[list[Allocation]] = relationship(
        "Allocation", primaryjoin="Transaction.id == Allocation.entry_id", order_by="Allocation.id",
        viewonly=True, lazy="select")

    @property
    def applies_to(self) -> str | None:
        """The reference of the entry this one settles (what the API and the exports show)."""
        target = self.applies_to_entry
        return None if target is None else target.reference

    __table_args__ = (
        UniqueConstraint("customer_id", "reference"),
        ForeignKeyConstraint(["account_id", "customer_id"], ["accounts.id", "accounts.customer_id"],
                             name="fk_transactions_account_customer", onupdate="CASCADE"),
        Index("ix_transactions_account_occurred", "account_id", "occurred_at"),
        Index("ix_transactions_reference", "reference"),  # find a document by number; bulk idempotency
    )


class Allocation(Base):
    """One part of a payment, credit note or write-off (``entry_id``) settling one invoice or charge
    (``target_id``) of the same account, with the amount it settles there.

    A payment settling several invoices has one row per invoice. The posting service and the
    importer keep the amounts honest under the account's lock: their sum never exceeds the entry's
    amount, and what is allocated to a target never exceeds that target's amount minus what other
    entries already settle there. ``applies_to_id`` (one entry, no amount) stays the short form
    for one invoice. Ledger entries are never deleted, so neither are allocations.
    """

    __tablename__ = "transaction_allocations"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)

    #: the settled entry (for its reference)
    target: Mapped[Transaction] = relationship(foreign_keys=[target_id], viewonly=True, lazy="joined")

    @property
    def reference(self) -> str:
        return self.target.reference

    __table_args__ = (UniqueConstraint("entry_id", "target_id"),)
