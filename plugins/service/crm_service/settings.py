"""The ``[service]`` settings: categories, calendars, SLA policies, teams, escalation, visits, surveys.

Validated once when the CRM opens, so a wrong calendar (unknown zone, bad hours, unknown
holiday country), an SLA for an unknown priority or a team on an unknown calendar is one
``ConfigError`` line before any command runs.
"""
from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crmcore.businesstime import Calendar
from crmcore.sdk import PluginSettings

if TYPE_CHECKING:
    from crmcore.uow import UnitOfWork

PLUGIN_ID = "service"
PRIORITIES = ("low", "normal", "high", "urgent")
ESCALATE_TO: tuple[Literal["manager", "priority"], ...] = ("manager", "priority")
DEFAULT_CATEGORIES = ["product quality", "delivery", "billing", "staff attitude", "other"]


class CalendarSpec(BaseModel):
    """``[service.calendars.NAME]``: a business calendar (see :class:`crmcore.businesstime.Calendar`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    hours: dict[str, str] = Field(default_factory=lambda: dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), "09:00-17:00"))
    holidays: str | None = None
    extra_days_off: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _valid(self) -> CalendarSpec:
        self.calendar().check()  # a ValueError here is a one-line ConfigError at open
        return self

    def calendar(self) -> Calendar:
        return _calendar(self.timezone, tuple(sorted(self.hours.items())), self.holidays, self.extra_days_off)


@cache
def _calendar(timezone: str, hours: tuple[tuple[str, str], ...], holidays: str | None,
              extra_days_off: tuple[str, ...]) -> Calendar:
    """One Calendar (with its day cache) per distinct specification, shared by every settings object."""
    return Calendar(timezone, dict(hours), holidays, extra_days_off)


class SlaPolicy(BaseModel):
    """``[service.sla.PRIORITY]``: targets in business hours on the team's calendar."""

    model_config = ConfigDict(extra="forbid")

    first_response_hours: float = Field(gt=0, le=10_000)
    resolution_hours: float = Field(gt=0, le=100_000)


class SlaOverride(SlaPolicy):
    """``[[service.sla_overrides]]``: targets for a category and/or a customer tier (value_analysis's
    pyramid: vip, key, normal, small), optionally only for one priority. The most specific match
    wins (ties: the first listed); no match: the priority's policy."""

    category: str | None = None
    tier: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,29}$")
    priority: str | None = None

    def matches(self, priority: str, category: str, tier: str | None) -> bool:
        return ((self.category is None or self.category == category) and (self.tier is None or self.tier == tier)
                and (self.priority is None or self.priority == priority))

    def label(self) -> str:
        return ", ".join(f"{k} {v}" for k in ("category", "tier", "priority") if (v := getattr(self, k)) is not None)


class Team(BaseModel):
    """``[service.teams.NAME]``: members (usernames), manager, assignment rule, calendar, cost rate."""

    model_config = ConfigDict(extra="forbid")

    members: list[str] = Field(default_factory=list)
    manager: str | None = None
    assignment: Literal["manual", "round_robin", "least_loaded"] = "manual"
    calendar: str = "default"
    hourly_rate: float = Field(default=0, ge=0, description="cost to serve: handling hours x this rate")


DEFAULT_SLA = {
    "urgent": SlaPolicy(first_response_hours=1, resolution_hours=4),
    "high": SlaPolicy(first_response_hours=4, resolution_hours=16),
    "normal": SlaPolicy(first_response_hours=8, resolution_hours=40),
    "low": SlaPolicy(first_response_hours=16, resolution_hours=80),
}


class ServiceSettings(PluginSettings):
    """``[service]`` in crm.toml, ``CRM_SERVICE__<KEY>`` in the environment."""

    categories: list[str] = Field(default_factory=lambda: list(DEFAULT_CATEGORIES), min_length=1)
    calendars: dict[str, CalendarSpec] = Field(default_factory=lambda: {"default": CalendarSpec()})
    sla: dict[str, SlaPolicy] = Field(default_factory=lambda: dict(DEFAULT_SLA))
    teams: dict[str, Team] = Field(default_factory=lambda: {"support": Team()})
    default_team: str = "support"
    reopen_days: int = Field(default=14, ge=0, le=3650)
    escalate_to: list[Literal["manager", "priority"]] = Field(default_factory=lambda: list(ESCALATE_TO))
    visit_after_days: int = Field(default=3, ge=0, le=365, description="business days after resolution")
    nps_period: Literal["month", "quarter", "year"] = "quarter"
    mail_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    mail_max_parts: int = Field(default=200, ge=1)
    mail_max_references: int = Field(default=100, ge=1)
    compensation_currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    sla_overrides: list[SlaOverride] = Field(default_factory=list)
    visit_after_won_deal: bool = Field(default=True, description="a return visit after each won deal (sales_automation)")
    visit_after_invoice_amount: Decimal | None = Field(default=None, gt=0, description="a return visit after an invoice "
                                                       "of at least this amount (any currency); unset: none")
    mail_rate_per_hour: int = Field(default=30, ge=1, le=100_000, description="mails accepted per sender and hour")
    survey_via_marketing: bool = Field(default=True, description="send the CSAT survey on resolution through "
                                       "marketing's channel adapters when marketing is enabled (consent checked)")
    survey_channel: Literal["email", "sms"] = "email"
    survey_adapter: str = Field(default="file", min_length=1, max_length=40)

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[str]) -> list[str]:
        out = [c.strip().lower() for c in v]
        if any(not c or len(c) > 60 for c in out) or len(set(out)) != len(out):
            raise ValueError("categories must be distinct, non-empty names of at most 60 characters")
        return out

    @model_validator(mode="after")
    def _references(self) -> ServiceSettings:
        unknown = sorted(set(self.sla) - set(PRIORITIES))
        if unknown:
            raise ValueError(f"sla: unknown priority {', '.join(unknown)} (priorities: {', '.join(PRIORITIES)})")
        missing = [p for p in PRIORITIES if p not in self.sla]
        for p in missing:
            self.sla[p] = DEFAULT_SLA[p]
        if "default" not in self.calendars:
            self.calendars["default"] = CalendarSpec()
        for name, team in self.teams.items():
            if team.calendar not in self.calendars:
                raise ValueError(f"teams.{name}: unknown calendar {team.calendar!r} (calendars: {', '.join(self.calendars)})")
            if team.assignment != "manual" and not team.members:
                raise ValueError(f"teams.{name}: {team.assignment} assignment needs members")
        for i, o in enumerate(self.sla_overrides):
            if o.category is None and o.tier is None:
                raise ValueError(f"sla_overrides[{i}]: give a category and/or a tier (priorities are [service.sla.*])")
            if o.category is not None and o.category.strip().lower() not in self.categories:
                raise ValueError(f"sla_overrides[{i}]: unknown category {o.category!r} (categories: {', '.join(self.categories)})")
            if o.priority is not None and o.priority not in PRIORITIES:
                raise ValueError(f"sla_overrides[{i}]: unknown priority {o.priority!r} (priorities: {', '.join(PRIORITIES)})")
            o.category = None if o.category is None else o.category.strip().lower()
        if self.default_team not in self.teams:
            raise ValueError(f"default_team {self.default_team!r} is not one of the teams ({', '.join(self.teams)})")
        return self

    def tiers(self) -> set[str]:
        """The customer tiers some override names (a tier lookup is needed only then)."""
        return {o.tier for o in self.sla_overrides if o.tier}

    def policy_for(self, priority: str, category: str, tier: str | None = None) -> tuple[SlaPolicy, str]:
        """(policy, rule label): the most specific matching override, else the priority's policy."""
        best: tuple[int, SlaOverride] | None = None
        for o in self.sla_overrides:
            if o.matches(priority, category, tier):
                rank = sum(x is not None for x in (o.category, o.tier, o.priority))
                if best is None or rank > best[0]:
                    best = (rank, o)
        return (best[1], best[1].label()) if best else (self.sla[priority], f"priority {priority}")

    def calendar_for(self, team: str | None) -> Calendar:
        t = self.teams.get(team or self.default_team)
        return self.calendars[t.calendar if t else "default"].calendar()


def settings(uow: UnitOfWork) -> ServiceSettings:
    """The CRM's validated service settings (defaults when the plugin is used without registration)."""
    s = uow.crm.settings(PLUGIN_ID)
    return s if isinstance(s, ServiceSettings) else ServiceSettings()
