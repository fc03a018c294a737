"""The ``[credit]`` settings: where the check happens, tolerances, the rule scorecard, grades, dunning.

Everything a credit manager tunes is here, validated once when the CRM opens (a bad value is a
``ConfigError`` naming the key). Defaults give a usable scorecard out of the box.
"""
from __future__ import annotations

from decimal import Decimal
from itertools import pairwise
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crmcore import PluginSettings

if TYPE_CHECKING:
    from crmcore.uow import UnitOfWork

PLUGIN_ID = "credit"
STATUSES = ("good", "watch", "hold", "blocked")
ACTIONS = ("reminder", "call", "final_notice", "hold", "collection")


class FactorBins(BaseModel):
    """One factor of the rule scorecard: ``bins`` are ``[upper, points]`` pairs in ascending
    order, a value gets the points of the first bin whose upper bound it does not exceed
    (``null`` = no bound, must be last); ``missing`` is given when the factor has no value."""

    model_config = ConfigDict(extra="forbid")

    bins: list[tuple[float | None, int]]
    missing: int = 0

    @field_validator("bins")
    @classmethod
    def _ascending(cls, bins: list[tuple[float | None, int]]) -> list[tuple[float | None, int]]:
        if not bins:
            raise ValueError("needs at least one bin")
        uppers = [u for u, _ in bins]
        if uppers[-1] is not None:
            raise ValueError("the last bin must be open-ended (upper = null)")
        finite = uppers[:-1]
        if any(u is None for u in finite) or any(b <= a for a, b in pairwise(finite)):  # type: ignore[operator]
            raise ValueError("bin upper bounds must be strictly ascending numbers")
        return bins

    @property
    def max_points(self) -> int:
        return max([p for _, p in self.bins] + [self.missing])


class Grade(BaseModel):
    """A grade of the scale: given from ``min_score`` up; the suggested limit is
    ``limit_months`` × the average monthly invoiced volume."""

    model_config = ConfigDict(extra="forbid")

    grade: str = Field(min_length=1, max_length=8)
    min_score: int
    limit_months: Decimal = Field(ge=0)


class DunningLevel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: int = Field(ge=1)
    days_overdue: int = Field(ge=1)
    action: Literal["reminder", "call", "final_notice", "hold", "collection"]
    fee: Decimal = Field(default=Decimal(0), ge=0)
    interest_percent: Decimal = Field(default=Decimal(0), ge=0, le=100, description="yearly rate on the overdue amount")
    hold: bool = False


def _bins(pairs: list[tuple[float | None, int]], missing: int) -> FactorBins:
    return FactorBins(bins=pairs, missing=missing)


#: the credit factors, by name (here, not in scoring: checking settings must not import NumPy)
FACTORS: tuple[str, ...] = ("avg_days_to_pay", "days_beyond_terms", "overdue_share", "relationship_years",
                            "volume_12m", "volume_trend", "writeoff_share", "complaints_12m")

DEFAULT_FACTORS: dict[str, FactorBins] = {
    "avg_days_to_pay": _bins([(15, 60), (30, 45), (45, 30), (60, 15), (None, 0)], 25),
    "days_beyond_terms": _bins([(0, 60), (5, 45), (15, 30), (30, 10), (None, 0)], 30),
    "overdue_share": _bins([(0, 60), (0.1, 45), (0.3, 25), (0.6, 10), (None, 0)], 60),
    "relationship_years": _bins([(1, 10), (2, 25), (5, 40), (None, 55)], 10),
    "volume_12m": _bins([(0, 10), (10_000, 25), (100_000, 40), (None, 50)], 10),
    "volume_trend": _bins([(-0.5, 0), (-0.1, 15), (0.1, 30), (None, 40)], 20),
    "writeoff_share": _bins([(0, 50), (0.02, 20), (None, 0)], 50),
    "complaints_12m": _bins([(0, 40), (2, 25), (5, 10), (None, 0)], 40),
}

DEFAULT_GRADES = [
    Grade(grade="AAA", min_score=380, limit_months=Decimal(3)),
    Grade(grade="AA", min_score=350, limit_months=Decimal("2.5")),
    Grade(grade="A", min_score=320, limit_months=Decimal(2)),
    Grade(grade="BBB", min_score=290, limit_months=Decimal("1.5")),
    Grade(grade="BB", min_score=260, limit_months=Decimal(1)),
    Grade(grade="B", min_score=230, limit_months=Decimal("0.75")),
    Grade(grade="C", min_score=190, limit_months=Decimal("0.5")),
    Grade(grade="D", min_score=0, limit_months=Decimal(0)),
]

DEFAULT_DUNNING = [
    DunningLevel(level=1, days_overdue=1, action="reminder"),
    DunningLevel(level=2, days_overdue=15, action="call"),
    DunningLevel(level=3, days_overdue=30, action="final_notice", fee=Decimal(40), interest_percent=Decimal(8)),
    DunningLevel(level=4, days_overdue=60, action="hold", fee=Decimal(40), interest_percent=Decimal(8), hold=True),
]


class CreditSettings(PluginSettings):
    """``[credit]`` in crm.toml, ``CRM_CREDIT__<KEY>`` in the environment."""

    check_point: Literal["win", "invoice", "both"] = "invoice"
    overshoot_percent: Decimal = Field(default=Decimal(0), ge=0, le=100)
    overdue_grace_days: int = Field(default=30, ge=0, le=3650)
    require_profile: bool = Field(default=False, description="refuse invoices of customers without a credit profile")
    allow_overpayment: bool = Field(default=False, description="accept payments larger than what is open (a credit balance)")
    default_currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    lookback_days: int = Field(default=365, ge=30, le=3650)
    factors: dict[str, FactorBins] = Field(default_factory=lambda: dict(DEFAULT_FACTORS))
    grades: list[Grade] = Field(default_factory=lambda: list(DEFAULT_GRADES))
    dunning_levels: list[DunningLevel] = Field(default_factory=lambda: list(DEFAULT_DUNNING))
    # dunning fees and interest are posted as ledger entries (the core's kind "charge") on the customer's account
    post_charges: bool = Field(default=True, description="post dunning fees and interest as ledger entries")
    clear_charges_with_invoice: bool = Field(
        default=False, description="a payment that clears an invoice also clears its fees and interest (credit note)")
    # control: block (refuse) or warn (pass, recorded) per credit group, else per grade, else the default
    mode: Literal["block", "warn"] = "block"
    mode_by_group: dict[str, Literal["block", "warn"]] = Field(default_factory=dict)
    mode_by_grade: dict[str, Literal["block", "warn"]] = Field(default_factory=dict)
    review_interval_days: int = Field(default=365, ge=1, le=3650, description="next review = last review + this")
    # value_analysis's profit: what late payment costs to finance (0: no such cost is reported)
    financing_rate_percent: Decimal = Field(
        default=Decimal(0), ge=0, le=100, description="yearly rate of the financing cost of late payment (value_analysis's profit)")

    @field_validator("factors")
    @classmethod
    def _known_factors(cls, factors: dict[str, FactorBins]) -> dict[str, FactorBins]:
        unknown = sorted(set(factors) - set(FACTORS))
        if unknown:
            raise ValueError(f"unknown factor(s) {', '.join(unknown)} (factors: {', '.join(FACTORS)})")
        if not factors:
            raise ValueError("the scorecard needs at least one factor")
        return factors

    @model_validator(mode="after")
    def _scales(self) -> CreditSettings:
        g = self.grades
        if not g:
            raise ValueError("grades: the scale needs at least one grade")
        if any(b.min_score >= a.min_score for a, b in pairwise(g)):
            raise ValueError("grades: min_score must strictly decrease from the best grade to the worst")
        if len({x.grade for x in g}) != len(g):
            raise ValueError("grades: grade names must be unique")
        d = self.dunning_levels
        if [x.level for x in d] != list(range(1, len(d) + 1)):
            raise ValueError("dunning_levels: levels must be numbered 1, 2, 3, ... in order")
        if any(b.days_overdue <= a.days_overdue for a, b in pairwise(d)):
            raise ValueError("dunning_levels: days_overdue must increase with the level")
        unknown = sorted(set(self.mode_by_grade) - {x.grade for x in g})
        if unknown:
            raise ValueError(f"mode_by_grade: unknown grade(s) {', '.join(unknown)} (grades: {', '.join(x.grade for x in g)})")
        return self

    def grade_for(self, score: int) -> Grade:
        for g in self.grades:
            if score >= g.min_score:
                return g
        return self.grades[-1]


def settings(uow: UnitOfWork) -> CreditSettings:
    """The CRM's validated credit settings (defaults when the plugin is used without registration)."""
    s = uow.crm.settings(PLUGIN_ID)
    return s if isinstance(s, CreditSettings) else CreditSettings()
