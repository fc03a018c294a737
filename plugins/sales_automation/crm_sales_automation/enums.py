"""Closed vocabularies of the sales plugin (stored as strings with CHECK constraints)."""
from __future__ import annotations

from enum import StrEnum


class LeadSource(StrEnum):
    REFERRAL = "referral"
    ADVERTISING = "advertising"
    EVENT = "event"
    WEB = "web"
    COLD_CALL = "cold_call"
    PARTNER = "partner"
    EXISTING_CUSTOMER = "existing_customer"
    OTHER = "other"


class LeadStatus(StrEnum):
    NEW = "new"
    CONTACTED = "contacted"
    QUALIFIED = "qualified"
    DISQUALIFIED = "disqualified"
    CONVERTED = "converted"


class Factor(StrEnum):
    """The five classic factors of a sales lead, in the order they are shown."""

    NEED = "need"
    VOLUME = "volume"            # purchase volume
    POWER = "power"              # purchasing power
    CREDIBILITY = "credibility"  # ability and will to pay
    AUTHORITY = "authority"      # decision authority


FACTOR_LABELS: dict[Factor, str] = {
    Factor.NEED: "need",
    Factor.VOLUME: "purchase volume",
    Factor.POWER: "purchasing power",
    Factor.CREDIBILITY: "credibility (ability and will to pay)",
    Factor.AUTHORITY: "decision authority",
}


class StageKind(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class OpportunityStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class ObjectionKind(StrEnum):
    NEED = "need"
    BUDGET = "budget"
    AUTHORITY = "authority"
    PRICE = "price"
    PRODUCT = "product"
    SALESPERSON = "salesperson"
    TIMING = "timing"


class ActivityKind(StrEnum):
    CALL = "call"
    VISIT = "visit"
    EMAIL = "email"
    MEETING = "meeting"
    DEMO = "demo"
    OTHER = "other"


#: The core interaction channel a completed activity is logged with.
ACTIVITY_CHANNEL: dict[ActivityKind, str] = {
    ActivityKind.CALL: "phone",
    ActivityKind.VISIT: "visit",
    ActivityKind.EMAIL: "email",
    ActivityKind.MEETING: "meeting",
    ActivityKind.DEMO: "meeting",
    ActivityKind.OTHER: "other",
}
