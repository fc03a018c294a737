from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from crmcore.enums import AccountStatus, TransactionKind
from crmcore.schemas.fields import CurrencyCode, MoneyAmount, Ref, UTCDatetime

DEFAULT_CURRENCY = "EUR"


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: CurrencyCode = DEFAULT_CURRENCY
    payment_terms_days: int = Field(default=30, ge=0, le=365)
    is_default: bool = False


class AccountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    currency: str
    payment_terms_days: int
    status: AccountStatus
    balance: Decimal
    is_default: bool


class TransactionCreate(BaseModel):
    """An entry to post. Amounts are positive; only an adjustment may be negative."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: TransactionKind
    amount: MoneyAmount
    currency: CurrencyCode | None = None
    occurred_at: UTCDatetime | None = None
    due_date: dt.date | None = None
    reference: Ref
    description: str | None = Field(default=None, max_length=500)
    category: str | None = Field(default=None, max_length=64, description="product line, e.g. 'kitchens'")
    source: str = Field(default="core", max_length=64)

    @field_validator("amount")
    @classmethod
    def _sign(cls, amount: Decimal, info: ValidationInfo) -> Decimal:
        kind = info.data.get("kind")
        if kind is TransactionKind.ADJUSTMENT:
            if amount == 0:
                raise ValueError("an adjustment amount must not be zero")
        elif kind is not None and amount <= 0:
            article = "an" if kind.value[0] in "aeiou" else "a"
            raise ValueError(f"{article} {kind.value} amount must be positive, got {amount}")
        return amount

    @model_validator(mode="after")
    def _due_date(self) -> "TransactionCreate":
        if self.due_date is not None and self.kind is not TransactionKind.INVOICE:
            raise ValueError("only invoices have a due date")
        return self


class TransactionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    account_id: int
    kind: TransactionKind
    amount: Decimal
    currency: str
    occurred_at: dt.datetime
    due_date: dt.date | None
    reference: str
    description: str | None
    category: str | None
    source: str
