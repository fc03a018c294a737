"""Settings (the ``[value_analysis]`` table of crm.toml, overridable per command) and read schemas.

Settings are validated once, up front, by the same functions the analyses use (the analytics
module raises ValueError for every bad threshold), so a typo in crm.toml fails with one clear
line before anything is read or written -- never as a NaN in a report.

Example crm.toml::

    [value_analysis]
    time_unit = "weeks"          # auto (default) | days | weeks | months, for the model fits
    margin = 0.25                # share of revenue that is margin, 0..1
    value_by = "auto"            # auto | profit | revenue: what the pyramid, Pareto and dependency rank by
    discount_rate = 0.08         # annual, >= 0
    horizon_months = 24
    retention = 0.75             # annual, for the deterministic CLV
    acquisition_cost = 50
    churn_threshold = 0.3        # P(alive) below this flags churn risk
    window_days = 730            # RFM / pyramid / Pareto look at the last 2 years only

    [value_analysis.pyramid]     # best tier first; shares sum to 1
    vip = 0.01
    key = 0.04
    normal = 0.15
    small = 0.80

    [value_analysis.category_margins]   # margin per product category (others: margin)
    hardware = 0.12
    services = 0.55

    [[value_analysis.segments]]  # optional: replaces the default RFM segment rules
    name = "champions"
    r = [4, 5]
    fm = [4, 5]
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from crm_value_analysis import analytics
from crm_value_analysis.money import Money
from crmcore.enums import TransactionKind
from crmcore.errors import InvalidInput, validation_errors
from crmcore.schemas.fields import CurrencyCode
from crmcore.sdk import PluginSettings, load_plugin_settings

CONFIG_TABLE = "value_analysis"
#: Tier of customers without purchases in the analysis window (always the last, worst tier).
INACTIVE_TIER = "inactive"

_STRICT = ConfigDict(extra="forbid", frozen=True)


class DependencySettings(BaseModel):
    """Revenue-share thresholds of key-account dependency (strictly above = flagged)."""

    model_config = _STRICT

    key: float = 0.10
    critical: float = 0.20
    mono: float = 0.50

    @model_validator(mode="after")
    def _check(self) -> DependencySettings:
        analytics.dependency_levels([], key=self.key, critical=self.critical, mono=self.mono)
        return self


class LifecycleSettings(BaseModel):
    """Rules of :func:`analytics.lifecycle_stages`; ``update_core`` writes the core stage."""

    model_config = _STRICT

    formation_after_days: float = 90.0
    stability_after_days: float = 365.0
    churn_after_days: float = 365.0
    decline_trend: float = -0.2
    growth_trend: float = 0.1
    gap_factor: float = 2.5
    min_gap_days: float = 30.0
    p_alive_threshold: float = 0.2
    update_core: bool = True

    @model_validator(mode="after")
    def _check(self) -> LifecycleSettings:
        analytics.lifecycle_stages([], [], [], [], **self.rule_kwargs())
        return self

    def rule_kwargs(self) -> dict[str, float]:
        return self.model_dump(exclude={"update_core"})


class ValueSettings(PluginSettings):
    """Everything an analysis run depends on; stored with each run so reports can explain it.

    Registered with the core (``crm_register_settings``): crm.toml ``[value_analysis]`` and
    ``CRM_VALUE_ANALYSIS__<KEY>`` environment variables, validated when the CRM opens.
    """

    model_config = SettingsConfigDict(extra="forbid", frozen=True)  # merged with PluginSettings' own

    revenue_kinds: list[TransactionKind] = Field(default_factory=lambda: [TransactionKind.INVOICE])
    netting_kinds: list[TransactionKind] = Field(default_factory=lambda: [TransactionKind.CREDIT_NOTE])
    currency: CurrencyCode | None = Field(default=None, description="only transactions in this currency")
    window_days: int | None = Field(default=None, ge=1, le=36_500, description="RFM/pyramid/Pareto window; None = all history")
    trend_days: int = Field(default=365, ge=7, le=36_500, description="length of the two windows compared for trends")
    time_unit: Literal["auto", "days", "weeks", "months"] = Field(
        default="auto", description="time unit of the model fits; auto: from the median gap between purchases")
    model: Literal["auto", "bg_nbd", "mbg_nbd", "pareto_nbd"] = Field(
        default="auto", description="purchase model of churn/CLV; auto: the best converged fit of BG/NBD and MBG/NBD")
    margin: float = Field(default=0.30, ge=0.0, le=1.0, description="share of revenue kept after the cost of goods")
    category_margins: dict[str, float] = Field(
        default_factory=dict, description="margin per product category (Transaction.category); others use margin")
    value_by: Literal["auto", "profit", "revenue"] = Field(
        default="auto", description="rank pyramid/Pareto/dependency by; auto: profit once any cost is configured")
    discount_rate: float = Field(default=0.10, ge=0.0, le=100.0, description="annual (100 = 10,000 %)")
    horizon_months: int = Field(default=36, ge=1, le=600)
    retention: float | None = Field(default=None, ge=0.0, le=1.0, description=(
        "annual, deterministic CLV; None: the observed retention once there are two years of history, else 0.80"))
    acquisition_cost: float = Field(default=0.0, ge=0.0, le=1e12)
    churn_threshold: float = Field(default=0.30, ge=0.0, le=1.0)
    churn_gap_factor: float = Field(default=2.0, ge=1.0, le=100.0,
                                    description="gap rule: silent longer than this x the usual gap -> churn risk")
    min_fit_customers: int = Field(default=20, ge=1, description="runs fit BG/NBD + Gamma-Gamma from this many buyers")
    pyramid: dict[str, float] = Field(default_factory=lambda: dict(analytics.DEFAULT_PYRAMID_CUTOFFS))
    segments: list[dict[str, Any]] | None = None
    loyalty_weights: dict[str, float] = Field(default_factory=lambda: dict(analytics.DEFAULT_LOYALTY_WEIGHTS))
    churn_reasons: list[str] = Field(
        default_factory=lambda: ["natural", "competitive", "malicious", "negligent"],
        description="why a customer may be lost (malicious: left owing money; credit write-offs record it)")
    wallet_field: str = Field(default="wallet", min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                              description="custom field holding the customer's wallet (potential annual spend)")
    dependency: DependencySettings = Field(default_factory=DependencySettings)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)

    @field_validator("discount_rate", "margin", "retention", "acquisition_cost", "churn_threshold", "churn_gap_factor")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @field_validator("category_margins")
    @classmethod
    def _margins(cls, v: dict[str, float]) -> dict[str, float]:
        for name, m in v.items():
            if isinstance(m, bool) or not isinstance(m, (int, float)) or not (math.isfinite(m) and 0.0 <= m <= 1.0):
                raise ValueError(f"margin of category {name!r} must be a number in 0..1, got {m!r}")
        return {k: float(m) for k, m in v.items()}

    @field_validator("churn_reasons")
    @classmethod
    def _reasons(cls, v: list[str]) -> list[str]:
        v = [r.strip().lower() for r in v]
        bad = [r for r in v if not r or len(r) > 32 or not r.replace("_", "").isalnum()]
        if bad or not v:
            raise ValueError(f"churn reasons must be 1-32 letters, digits or _, at least one; got {bad or v}")
        return list(dict.fromkeys(v))

    @field_validator("revenue_kinds")
    @classmethod
    def _some_revenue(cls, v: list[TransactionKind]) -> list[TransactionKind]:
        if not v:
            raise ValueError("at least one transaction kind must count as revenue")
        return list(dict.fromkeys(v))

    @field_validator("pyramid")
    @classmethod
    def _pyramid(cls, v: dict[str, float]) -> dict[str, float]:
        if INACTIVE_TIER in v:
            raise ValueError(f"tier name {INACTIVE_TIER!r} is reserved for customers without purchases")
        analytics.tier_sizes(0, list(v.items()))
        return v

    @field_validator("segments")
    @classmethod
    def _segments(cls, v: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if v is not None:
            analytics.parse_segment_rules({"rules": v})
        return v

    @field_validator("loyalty_weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(analytics.LOYALTY_COMPONENTS))
        if unknown:
            raise ValueError(f"unknown loyalty components {unknown}; known: {list(analytics.LOYALTY_COMPONENTS)}")
        merged = {**analytics.DEFAULT_LOYALTY_WEIGHTS, **v}
        for name, w in merged.items():
            if not (math.isfinite(w) and w >= 0):
                raise ValueError(f"weight of {name!r} must be a finite number >= 0")
        if not any(w > 0 for w in merged.values()):
            raise ValueError("at least one loyalty weight must be > 0")
        return merged

    @model_validator(mode="after")
    def _disjoint_kinds(self) -> ValueSettings:
        both = sorted(k.value for k in set(self.revenue_kinds) & set(self.netting_kinds))
        if both:
            raise ValueError(f"transaction kinds {both} cannot both count as revenue and net it out")
        return self

    # -- derived values ------------------------------------------------------------------
    def segment_rules(self) -> list[analytics.SegmentRule]:
        return list(analytics.DEFAULT_SEGMENT_RULES) if self.segments is None else analytics.parse_segment_rules(
            {"rules": self.segments})

    def tier_order(self) -> tuple[str, ...]:
        """Tiers best first, then the inactive tier."""
        return (*self.pyramid, INACTIVE_TIER)

    def segment_names(self) -> tuple[str, ...]:
        return (*(r.name for r in self.segment_rules()), analytics.UNCLASSIFIED, analytics.NO_PURCHASES)

    @property
    def unit_days(self) -> float:
        """Length of the model time unit in days ("auto" must be resolved from the data first)."""
        if self.time_unit == "auto":
            raise ValueError("time_unit 'auto' is chosen from the data; resolve it before fitting")
        return {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12.0}[self.time_unit]

    @property
    def monthly_discount_rate(self) -> float:
        return (1.0 + self.discount_rate) ** (1.0 / 12.0) - 1.0


def _errors(e: ValidationError) -> list[tuple[str, str]]:
    return validation_errors(e, default="settings")


def load_settings(config: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None = None) -> ValueSettings:
    """Settings from crm.toml's ``[value_analysis]`` table and the environment (through the
    core's :func:`crmcore.settings.load_plugin_settings`), then command-line overrides.

    A bad crm.toml or environment value raises :class:`ConfigError` (exit code 2); a bad
    override raises :class:`InvalidInput` naming the option. ``None`` overrides are ignored.
    """
    base, _sources = load_plugin_settings(CONFIG_TABLE, ValueSettings, config)
    return apply_overrides(base, overrides)


def apply_overrides(base: ValueSettings, overrides: Mapping[str, Any] | None) -> ValueSettings:
    """``base`` with command-line overrides applied (validated again as a whole)."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if not given:
        return base
    try:
        return ValueSettings.model_validate({**base.model_dump(), **given})
    except ValidationError as e:
        errors = _errors(e)
        raise InvalidInput("invalid input: " + "; ".join(f"{f}: {m}" for f, m in errors), errors) from None


#: Dates the commands accept: wide enough for any business history, far from date overflow.
DATE_RANGE = (dt.date(1900, 1, 1), dt.date(2999, 12, 31))


def parse_date(name: str, value: str | dt.date | None) -> dt.date | None:
    """An ISO date from the command line, or InvalidInput naming the option."""
    if value is None or isinstance(value, dt.date):
        return value
    try:
        date = dt.date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"invalid input: {name}: {value!r} is not a date (YYYY-MM-DD)", [(name, "not a date")]) from None
    if not DATE_RANGE[0] <= date <= DATE_RANGE[1]:  # day arithmetic near year 1 or 9999 overflows
        raise InvalidInput(f"invalid input: {name}: {date} is outside {DATE_RANGE[0]}..{DATE_RANGE[1]}",
                           [(name, "out of range")])
    return date


# -- read schemas -------------------------------------------------------------------------

class RunRead(BaseModel):
    """A stored run, without its per-customer rows."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    as_of: dt.date
    created_at: dt.datetime
    created_by: str
    n_customers: int
    n_purchasers: int
    total_revenue: Money


class CustomerValueRead(BaseModel):
    """One customer's row of a run (see :class:`crm_value_analysis.models.CustomerValue`)."""

    model_config = ConfigDict(from_attributes=True)

    customer_id: int
    recency_days: int | None
    frequency: int
    monetary: Money
    r_score: int
    f_score: int
    m_score: int
    segment: str
    previous_segment: str | None
    tier: str
    previous_tier: str | None
    revenue_share: float
    dependency: str
    gross_margin: Money | None = None
    cost_to_serve: Money | None = None
    profit: Money | None = None
    first_purchase_days: int | None
    purchase_days: int
    spend_trend: float | None
    frequency_trend: float | None
    categories: int | None
    satisfaction: float | None
    lifecycle: str
    p_alive: float | None
    churn_risk: bool | None
    expected_purchases: float | None
    clv_deterministic: Money | None
    clv_probabilistic: Money | None
    loyalty: float | None
    loyalty_coverage: float | None
    loyalty_duration: float | None
    loyalty_frequency: float | None
    loyalty_frequency_trend: float | None
    loyalty_spend: float | None
    loyalty_cross_buying: float | None
    loyalty_satisfaction: float | None
    loyalty_share_of_wallet: float | None = None
    loyalty_referrals: float | None = None
    loyalty_price_sensitivity: float | None = None
    loyalty_voluntariness: float | None = None


__all__ = [
    "CONFIG_TABLE", "INACTIVE_TIER", "CustomerValueRead", "DependencySettings", "LifecycleSettings", "RunRead",
    "ValueSettings", "load_settings", "parse_date",
]
