from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from iso4217 import Currency
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from crmcore.db.types import MONEY_SCALE
from crmcore.enums import NAMING_KINDS, SETTLING_KINDS, AccountStatus, TransactionKind
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


#: The most invoices one entry may settle (a remittance advice of a large customer; one line each).
MAX_ALLOCATIONS = 500


class AllocationIn(BaseModel):
    """One invoice (or charge) an entry settles; ``amount`` None: as much as the entry still has
    and the invoice still needs, in the order given."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reference: Ref
    amount: MoneyAmount | None = None

    @field_validator("amount")
    @classmethod
    def _positive(cls, amount: Decimal | None) -> Decimal | None:
        if amount is not None and amount <= 0:
            raise ValueError(f"an allocated amount must be positive, got {amount}")
        return amount


def _allocation_item(item: Any) -> Any:
    """``"REF"`` or ``"REF=AMOUNT"`` (split at the last ``=`` when a number follows it) as a dict."""
    if not isinstance(item, str):
        return item
    ref, sep, amount = item.rpartition("=")
    if sep and ref.strip():
        try:
            Decimal(amount.strip())
        except InvalidOperation:
            return {"reference": item}
        return {"reference": ref, "amount": amount.strip()}
    return {"reference": item}


def parse_applies_to(value: Any) -> tuple[str | None, list[Any]]:
    """(single reference, allocations) of an ``applies_to`` value: None; one reference (the short
    form, stored as ``applies_to_id``); ``"REF1;REF2"`` or ``"REF1=100.00;REF2=50.00"`` (the
    import column); or a list of such strings or of ``{"reference", "amount"}`` objects (the API,
    a repeated ``--applies-to``)."""
    if value is None:
        return None, []
    if isinstance(value, str):
        parts = [p for p in (x.strip() for x in value.split(";")) if p]
        if not parts:
            return None, []
        value = parts
    if not isinstance(value, list | tuple):
        raise ValueError("applies_to: a reference, 'REF1;REF2', 'REF=AMOUNT', or a list of them")  # noqa: TRY004
    items = [_allocation_item(x) for x in value]
    if not items:
        return None, []
    if len(items) == 1 and isinstance(items[0], dict) and set(items[0]) == {"reference"}:
        return items[0]["reference"], []
    return None, items


class TransactionCreate(BaseModel):
    """An entry to post. Amounts are positive; only an adjustment may be negative.

    ``applies_to`` names what a payment, credit note or write-off settles: one reference (kept as
    ``applies_to``, settled up to its amount, the rest settling the oldest items), or several,
    each with an amount or none (``allocations``: amounts checked against the entry and each
    invoice's open amount when posted)."""

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
    allocations: list[AllocationIn] = Field(default_factory=list, max_length=MAX_ALLOCATIONS,
                                            description="the invoices (or charges) this entry settles, each with "
                                            "the amount settled there (none: as much as is left, in order)")

    @model_validator(mode="before")
    @classmethod
    def _split_applies_to(cls, data: Any) -> Any:
        """``applies_to`` naming several invoices (or one with an amount) becomes ``allocations``."""
        if not isinstance(data, dict) or "applies_to" not in data:
            return data
        raw = data["applies_to"]
        if isinstance(raw, str) and ";" not in raw and "=" not in raw:
            return data  # the short form, as before
        single, items = parse_applies_to(raw)
        out = {**data, "applies_to": single}
        if items:
            if data.get("allocations"):
                raise ValueError("applies_to: give the invoices in applies_to or in allocations, not in both")
            out["allocations"] = items
        return out

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
        self._check_allocations()
        if self.currency is not None:  # else the account's currency decides, when it is posted
            check_amount(self.amount, self.currency)
            if self.cost is not None:
                try:
                    check_amount(self.cost, self.currency)
                except ValueError as e:
                    raise ValueError(f"cost: {e}") from None
        return self


    def _check_allocations(self) -> None:
        if not self.allocations:
            return
        if self.kind not in SETTLING_KINDS:
            raise ValueError(f"applies_to: {article_of(self.kind)} names at most one entry, without an amount "
                             "(only a payment, credit_note or write_off settles several)")
        seen: set[str] = set()
        total = Decimal(0)
        for a in self.allocations:
            if a.reference in seen:
                raise ValueError(f"applies_to: {a.reference!r} is named twice")
            seen.add(a.reference)
            total += a.amount or 0
            if self.currency is not None and a.amount is not None:
                try:
                    check_amount(a.amount, self.currency)
                except ValueError as e:
                    raise ValueError(f"applies_to: {a.reference}: {e}") from None
        if total > self.amount:
            raise ValueError(f"applies_to: the amounts allocated ({total}) exceed the {self.kind.value} amount ({self.amount})")


class AllocationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    reference: str
    amount: Decimal


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
    allocations: list[AllocationRead] = []
