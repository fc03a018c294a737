"""Validated input of the credit commands and services (one readable error per bad value)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
