from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cache

from iso4217 import Currency
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from crmcore.db.types import MONEY_SCALE
from crmcore.enums import NAMING_KINDS, AccountStatus, TransactionKind
from crmcore.schemas.fields import CurrencyCode, Line, MoneyAmount, Multiline, Ref, UTCDatetime

DEFAULT_CURRENCY = "EUR"


@cache
def minor_units(currency: str) -> int:
    """Decimals of a currency by ISO 4217 (JPY 0, EUR 2, KWD 3, CLF 4), from the ``iso4217``
    package (pycountry has no minor units). Funds and metals without minor units (XAU, XDR)
    get the four decimals amounts are stored with."""
    try:
        exponent = Currency(currency).exponent
    except ValueError:
        return MONEY_SCALE
    return MONEY_SCALE if exponent is None else min(int(exponent), MONEY_SCALE)


def max_amount(currency: str) -> Decimal:
    """Amounts stay below 10^13 and within 15 significant digits (exact in SQLite's doubles):
    10^13 for JPY or EUR, 10^12 for KWD, 10^11 for CLF."""
    return Decimal(10) ** min(13, 15 - minor_units(currency))


def check_amount(amount: Decimal, currency: str) -> None:
    """ValueError unless ``amount`` fits ``currency``: no more decimals than it has, below the limit."""
    digits = minor_units(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-digits)):
        if digits == 0:
            raise ValueError(f"amount {amount} must be a whole number ({currency} has no decimal places)")
        raise ValueError(f"amount {amount} has more than {digits} decimal places ({currency} has {digits})")
    limit = max_amount(currency)
    if abs(amount) >= limit:
        raise ValueError(f"amount {amount} is too large (the limit for {currency} is {limit - Decimal(1).scaleb(-digits):,})")


def article_of(kind: TransactionKind) -> str:
    return f"{'an' if kind.value[0] in 'aeiou' else 'a'} {kind.value}"


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
    description: Multiline | None = Field(default=None, max_length=500)
    category: Line | None = Field(default=None, max_length=64, description="product line, e.g. 'kitchens'")
    source: Line = Field(default="core", max_length=64)
    applies_to: Ref | None = Field(default=None, description="reference of the invoice (or charge) this entry settles; "
                                   "a charge names the invoice it is charged on")
    cost: MoneyAmount | None = Field(default=None, description="cost of goods of the entry, not negative")

    @field_validator("amount")
    @classmethod
    def _sign(cls, amount: Decimal, info: ValidationInfo) -> Decimal:
        kind = info.data.get("kind")
        if kind is TransactionKind.ADJUSTMENT:
            if amount == 0:
                raise ValueError("an adjustment amount must not be zero")
        elif kind is not None and amount <= 0:
            raise ValueError(f"{article_of(kind)} amount must be positive, got {amount}")
        return amount

    @model_validator(mode="after")
    def _due_date(self) -> TransactionCreate:
        if self.due_date is not None and self.kind is not TransactionKind.INVOICE:
            raise ValueError("only invoices have a due date")
        if self.applies_to is not None and self.kind not in NAMING_KINDS:
            raise ValueError(f"applies_to: {article_of(self.kind)} settles nothing (only a payment, credit_note, "
                             "write_off or charge names an entry)")
        if self.cost is not None and self.cost < 0:
            raise ValueError(f"cost must not be negative, got {self.cost}")
        if self.currency is not None:  # else the account's currency decides, when it is posted
            check_amount(self.amount, self.currency)
            if self.cost is not None:
                try:
                    check_amount(self.cost, self.currency)
                except ValueError as e:
                    raise ValueError(f"cost: {e}") from None
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
    applies_to: str | None = None
    cost: Decimal | None = None
