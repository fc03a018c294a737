"""Validated input of the credit commands and services (one readable error per bad value)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crmcore.schemas.fields import CurrencyCode, LongText, MoneyAmount, Ref, ShortText, Text


class TradeReference(BaseModel):
    """A reference the credit investigation asked about the customer (another supplier, a bank)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Text
    contact: Text | None = None
    years_known: int | None = Field(default=None, ge=0, le=200)
    rating: Literal["good", "fair", "poor"] | None = None
    note: Text | None = None


class ProfileUpdate(BaseModel):
    """Fields of ``crm credit profile set``; only the given ones change. The status here is
    good, watch or blocked: holds go through ``crm credit hold`` / ``release``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    limit: MoneyAmount | None = None
    clear_limit: bool = False
    currency: CurrencyCode | None = None
    payment_terms_days: int | None = Field(default=None, ge=0, le=365)
    status: Literal["good", "watch", "blocked"] | None = None
    reason: Text | None = None
    last_review: dt.date | None = None
    registry_id: ShortText | None = None
    registry_name: ShortText | None = None
    legal_form: ShortText | None = None
    founded_on: dt.date | None = None
    employees: int | None = Field(default=None, ge=0, le=10**9)
    financials_year: int | None = Field(default=None, ge=1900, le=2200)
    annual_revenue: MoneyAmount | None = None
    equity: MoneyAmount | None = None
    net_income: MoneyAmount | None = None
    trade_references: list[TradeReference] | None = None
    investigation_notes: LongText | None = None
    investigated_on: dt.date | None = None
    next_review: dt.date | None = None
    credit_group: ShortText | None = None
    # early-payment discount: "2% within 10 days" (net = payment_terms_days)
    discount_percent: Decimal | None = Field(default=None, max_digits=5, decimal_places=2, allow_inf_nan=False)
    discount_days: int | None = Field(default=None, le=365)
    clear_discount: bool = False

    @field_validator("discount_percent")
    @classmethod
    def _percent(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and not Decimal(0) < v < Decimal(100):
            raise ValueError(f"a discount is a percentage above 0 and below 100, got {v}")
        return v

    @field_validator("discount_days")
    @classmethod
    def _window(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"the discount window ends {v} day(s) after the invoice date, which is already past "
                             "when the invoice is issued; give 1 day or more")
        return v

    @model_validator(mode="after")
    def _discount_pair(self) -> ProfileUpdate:
        given = (self.discount_percent is not None, self.discount_days is not None)
        if self.clear_discount and any(given):
            raise ValueError("give either the discount terms or no discount, not both")
        if given[0] != given[1]:
            raise ValueError("an early-payment discount needs both the percentage and the days (e.g. 2 within 10)")
        return self

    @field_validator("limit")
    @classmethod
    def _not_negative(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and v < 0:
            raise ValueError(f"a credit limit cannot be negative, got {v}")
        return v

    @field_validator("annual_revenue")
    @classmethod
    def _revenue(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and v < 0:
            raise ValueError("annual revenue cannot be negative")
        return v


class HoldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: Text


class ReleaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: Text
    reference: Ref | None = None
    days: int = Field(default=7, ge=1, le=365, description="the release expires after this many days")


class WriteOffRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    invoice: Ref
    amount: MoneyAmount | None = None
    reason: Text

    @field_validator("amount")
    @classmethod
    def _positive(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and v <= 0:
            raise ValueError(f"a write-off amount must be positive, got {v}")
        return v
