"""Settings (crm.toml ``[sales_automation]``) and the validated inputs of the services.

Example crm.toml::

    [sales_automation]
    stale_days = 30              # an open deal with no activity for this many days is stale
    follow_up_days = 30          # an open lead or deal needs an action (or a planned one) this often
    invoice_on_win = false       # post the invoice to the customer's account when a deal is won
    default_currency = "EUR"

    [sales_automation.weights]   # weights of the five factors (any non-negative numbers)
    need = 25
    volume = 20
    power = 20
    credibility = 15
    authority = 20
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from crm_sales_automation.enums import ActivityKind, Factor, LeadSource, LeadStatus, ObjectionKind
from crmcore import PluginSettings
from crmcore.schemas.fields import (
    CountryCode,
    CurrencyCode,
    Email,
    Line,
    LongText,
    MoneyAmount,
    Multiline,
    Phone,
    Ref,
    Text,
    UTCDatetime,
)
from crmcore.sdk import MAX_ID

PLUGIN_ID = "sales_automation"
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)

DEFAULT_WEIGHTS: dict[str, float] = {"need": 25, "volume": 20, "power": 20, "credibility": 15, "authority": 20}
# every text field is one of the core's text types (crmcore.schemas.fields): no control characters
Note = Annotated[Multiline, StringConstraints(strip_whitespace=True, max_length=500)]
Reason = Annotated[Multiline, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
#: the naming rule of pipelines and stages (they are typed in commands and URLs: no spaces, no case)
NAME_RULE = "lowercase letters, digits and _, starting with a letter, at most 64 characters"


def _name(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", value):
        hint = re.sub(r"[^a-z0-9_]+", "_", value.lower()).strip("_")[:64]
        hint = f"; e.g. {hint!r}" if re.fullmatch(r"[a-z][a-z0-9_]*", hint) else ""
        raise ValueError(f"{value!r} is not a valid name ({NAME_RULE}{hint})")
    return value


Name = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_name)]
Username = Annotated[Line, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
#: a vocabulary word as typed; the services check it against crm.toml [vocabularies]
Word = Annotated[Line, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=32)]
Key = Annotated[Line, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class SalesSettings(PluginSettings):
    """The plugin's settings; see the module docstring for crm.toml."""

    stale_days: int = Field(default=30, ge=1, le=3650)
    follow_up_days: int = Field(default=30, ge=1, le=3650)  # an open lead or deal needs an action this often
    invoice_on_win: bool = False
    default_currency: CurrencyCode = "EUR"
    weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    @field_validator("weights")
    @classmethod
    def _weights(cls, w: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(w) - {f.value for f in Factor})
        if unknown:
            raise ValueError(f"unknown factor(s) {', '.join(unknown)} (factors: {', '.join(f.value for f in Factor)})")
        full = {f.value: float(w.get(f.value, DEFAULT_WEIGHTS[f.value])) for f in Factor}
        if any(v < 0 for v in full.values()):
            raise ValueError("weights must not be negative")
        if sum(full.values()) <= 0:
            raise ValueError("at least one weight must be positive")
        return full


# -- leads --------------------------------------------------------------------------------------

class LeadCreate(BaseModel):
    model_config = _STRICT

    name: Text
    company: Text | None = None
    email: Email | None = None
    phone: Phone | None = None
    country: CountryCode | None = None
    source: Word = LeadSource.OTHER.value  # a word of [vocabularies] lead_sources (checked by the service)
    campaign: Ref | None = None  # the campaign the lead responded to (its reference), for the source reports
    referred_by: int | None = Field(None, ge=1, le=MAX_ID, description="id of the customer who referred the lead")
    owner: Username | None = None
    notes: LongText | None = None
    external_ref: Ref | None = None

    @model_validator(mode="after")
    def _phone(self) -> LeadCreate:
        if self.phone:
            from crmcore.schemas.fields import normalise_phone

            object.__setattr__(self, "phone", normalise_phone(self.phone, self.country))
        return self


class LeadUpdate(BaseModel):
    model_config = _STRICT

    status: LeadStatus | None = None
    owner: Username | None = None
    notes: LongText | None = None
    referred_by: int | None = Field(None, ge=1, le=MAX_ID, description="id of the customer who referred the lead")


class FactorScore(BaseModel):
    model_config = _STRICT

    factor: Factor
    points: int = Field(ge=0, le=5)
    note: Note | None = None


# -- pipelines and opportunities -------------------------------------------------------------------

class StageSpec(BaseModel):
    model_config = _STRICT

    name: Name
    label: Text | None = None
    probability: int = Field(ge=0, le=100)


class PipelineCreate(BaseModel):
    model_config = _STRICT

    name: Name
    stages: list[StageSpec] = Field(min_length=1)

    @field_validator("stages")
    @classmethod
    def _distinct(cls, stages: list[StageSpec]) -> list[StageSpec]:
        names = [s.name for s in stages]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"stage names repeated: {', '.join(dup)}")
        if {"won", "lost"} & set(names):
            raise ValueError("won and lost are added to every pipeline; do not list them")
        return stages


class OpportunityCreate(BaseModel):
    model_config = _STRICT

    title: Text
    amount: MoneyAmount
    currency: CurrencyCode | None = None
    pipeline: Key | None = None
    stage: Key | None = None
    probability: int | None = Field(default=None, ge=0, le=100)
    expected_close: dt.date | None = None
    owner: Username | None = None
    next_step: Text | None = None

    @field_validator("amount")
    @classmethod
    def _not_negative(cls, amount: Decimal) -> Decimal:
        if amount < 0:
            raise ValueError(f"an opportunity amount must not be negative, got {amount}")
        return amount


class OpportunityUpdate(BaseModel):
    model_config = _STRICT

    title: Text | None = None
    amount: MoneyAmount | None = None
    probability: int | None = Field(default=None, ge=0, le=100)
    expected_close: dt.date | None = None
    next_step: Text | None = None
    owner: Username | None = None

    @field_validator("amount")
    @classmethod
    def _not_negative(cls, amount: Decimal | None) -> Decimal | None:
        if amount is not None and amount < 0:
            raise ValueError(f"an opportunity amount must not be negative, got {amount}")
        return amount


class ObjectionCreate(BaseModel):
    model_config = _STRICT

    kind: ObjectionKind
    description: Reason
    handling: Note | None = None
    method: Word | None = None  # how it was handled: a word of [vocabularies] objection_methods (checked by the service)
    resolved: bool = False


class ActivityCreate(BaseModel):
    model_config = _STRICT

    kind: ActivityKind
    subject: Text
    due_at: UTCDatetime | None = None
    notes: LongText | None = None
    owner: Username | None = None
    contact_id: int | None = Field(None, ge=1, le=MAX_ID,
                                   description="the person it is with: a contact of the activity's customer")


class QuotaSet(BaseModel):
    model_config = _STRICT

    owner: Username
    period: dt.date
    amount: MoneyAmount
    currency: CurrencyCode

    @field_validator("amount")
    @classmethod
    def _not_negative(cls, amount: Decimal) -> Decimal:
        if amount < 0:
            raise ValueError(f"a quota must not be negative, got {amount}")
        return amount

    @field_validator("period", mode="before")
    @classmethod
    def _month(cls, value: Any) -> Any:
        """``2025-03`` or any date in the month -> the first day of that month."""
        if isinstance(value, str):
            s = value.strip()
            try:
                d = dt.date.fromisoformat(s + "-01" if len(s) == 7 else s)
            except ValueError:
                raise ValueError(f"not a month: {value!r} (use YYYY-MM)") from None
            return d.replace(day=1)
        if isinstance(value, dt.date):
            return value.replace(day=1)
        return value
