"""Settings (``[marketing]`` in crm.toml, ``CRM_MARKETING__*``) and the input schemas of the plugin."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from crmcore.schemas.fields import Line, Multiline, Ref, ShortText, Text, UTCDatetime
from crmcore.sdk import PluginSettings

CHANNELS = ("email", "sms", "phone", "mail", "event", "social", "ads")
STATUSES = ("draft", "scheduled", "running", "completed", "cancelled")
CONSENT_STATUSES = ("opt_in", "opt_out", "unsubscribed")
ATTRIBUTION_MODELS = ("last_touch", "first_touch", "linear")
DEFAULT_RESPONSE_TYPES = ("delivered", "opened", "clicked", "replied", "visited", "registered", "purchased",
                          "unsubscribed", "complained", "bounced")

# every text field is one of the core's text types (crmcore.schemas.fields): stripped, bounded,
# no control characters (NUL fails on PostgreSQL; escapes reach terminals and mail headers)
Name = ShortText
Channel = Literal["email", "sms", "phone", "mail", "event", "social", "ads"]
Amount = Annotated[Decimal, Field(gt=0, max_digits=16, decimal_places=2, allow_inf_nan=False)]


class MarketingSettings(PluginSettings):
    """The plugin's settings; every one has a default that works out of the box."""

    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "EUR"
    consent_required: list[Channel] = Field(default_factory=lambda: list[Channel](["email", "sms"]),
                                            description="channels that need an explicit opt-in before contact")
    response_types: list[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{0,19}$")]] = Field(
        default_factory=lambda: list(DEFAULT_RESPONSE_TYPES))
    conversion_types: list[str] = Field(default_factory=lambda: ["purchased", "registered"],
                                        description="response types that count as a conversion")
    attribution: Literal["last_touch", "first_touch", "linear"] = "last_touch"
    attribution_days: int = Field(30, ge=1, le=3650)
    significance: float = Field(0.05, gt=0, lt=0.5)
    outbox: Line = Field("outbox", min_length=1, max_length=1000)
    smtp_host: Line = Field("127.0.0.1", min_length=1, max_length=255)
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_sender: Line = Field("crm@localhost", min_length=1, max_length=254)
    smtp_starttls: bool = False
    smtp_user: Line | None = Field(None, max_length=254)
    smtp_password: Line | None = Field(None, max_length=1000)
    send_batch: int = Field(10, ge=1, le=1000)
    claim_timeout_minutes: float = Field(15, ge=0, le=10_080,
                                         description="a claim older than this is taken to be from a killed run (in doubt)")
    cost_per_contact: Decimal | None = Field(None, ge=0, max_digits=12, decimal_places=4, allow_inf_nan=False,
                                             description="cost of one delivered message of a campaign with no cost "
                                                         "recorded in `currency` (value_analysis's cost to serve)")

    @model_validator(mode="after")
    def _conversions_are_types(self) -> MarketingSettings:
        unknown = sorted(set(self.conversion_types) - set(self.response_types))
        if unknown:
            raise ValueError(f"conversion_types {unknown} are not in response_types")
        return self


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
    share: float = Field(gt=0, le=1, allow_inf_nan=False)
    subject: Text | None = None
    body: Multiline | None = Field(None, max_length=100_000)


class CampaignCreate(BaseModel):
    # variants are re-checked when passed as VariantIn objects (the CLI's model_copy skips checks)
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, revalidate_instances="always")

    name: Name
    channel: Channel
    segments: list[Name] = Field(min_length=1)
    objective: Multiline | None = Field(None, max_length=500)
    budget: Amount | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    starts_at: UTCDatetime | None = None
    ends_at: UTCDatetime | None = None
    control_share: float = Field(0.0, ge=0, lt=1, allow_inf_nan=False)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    subject: Line | None = Field(None, max_length=500)
    body: Multiline | None = Field(None, max_length=100_000)
    attribution_days: int | None = Field(None, ge=1, le=3650)
    variants: list[VariantIn] = Field(default_factory=list)
    # contact roles (buying centre) to address instead of the company, e.g. ["decider", "buyer"]
    to_roles: list[Annotated[str, StringConstraints(min_length=1, max_length=40)]] = Field(default_factory=list,
                                                                                            max_length=20)
    # a price offer (discount, sale, coupon): what is bought in response is bought on price
    price_offer: bool = False

    @field_validator("currency", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _check(self) -> CampaignCreate:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.variants:
            total = sum(v.share for v in self.variants)
            if abs(total - 1.0) > 1e-9:
                raise ValueError(f"variant shares must add up to 1, they add up to {total:g}")
            names = [v.name for v in self.variants]
            if len(set(names)) != len(names):
                raise ValueError("variant names must be different")
        if len(set(self.segments)) != len(self.segments):
            raise ValueError("a segment is named twice")
        return self


class CostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    amount: Amount
    reference: Ref
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    description: Multiline | None = Field(None, max_length=500)
    incurred_at: UTCDatetime | None = None


class ResponseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: Line = Field(min_length=1, max_length=20)
    at: UTCDatetime | None = None
    note: Multiline | None = Field(None, max_length=500)
    external_ref: Ref | None = None


class ConsentSet(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channel: Channel
    status: Literal["opt_in", "opt_out", "unsubscribed"]
    source: ShortText = "cli"
    at: UTCDatetime | None = None


def not_future(value: dt.datetime | None, now: dt.datetime) -> None:
    if value is not None and value > now + dt.timedelta(minutes=5):
        raise ValueError("lies in the future")
