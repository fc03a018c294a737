"""Input schemas of the service plugin: the same models for the CLI, the HTTP API and imports."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from crm_service.models import Priority, TicketKind
from crmcore.enums import Channel
from crmcore.sdk import LongText, Ref, ShortText, Text, UTCDatetime


class TicketOpen(BaseModel):
    """A new ticket; ``category`` is checked against the ``[service] categories`` vocabulary."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    subject: Text
    description: LongText | None = None
    kind: TicketKind = TicketKind.INQUIRY
    category: ShortText = "other"
    priority: Priority = Priority.NORMAL
    channel: Channel = Channel.OTHER
    team: ShortText | None = None
    assignee: ShortText | None = Field(default=None, description="username; else the team's assignment rule")
    contact_id: int | None = Field(default=None, ge=1)
    opened_at: UTCDatetime | None = None
    external_ref: Ref | None = None


class ComplaintStep(BaseModel):
    """Complaint handling recorded on a ticket: facts, solution, acceptance, apology, compensation."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    facts: LongText | None = None
    solution: LongText | None = None
    accepted: bool | None = None
    apology: LongText | None = None
    compensation: Decimal | None = Field(default=None, gt=0, max_digits=18, decimal_places=2, allow_inf_nan=False)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")


class VisitDone(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    outcome: LongText = Field(min_length=1)
    satisfaction: int = Field(ge=1, le=5)
    problem: bool = False
    done_at: UTCDatetime | None = None


class SurveyIn(BaseModel):
    """One answer: exactly one of ``nps`` (0-10) or ``csat`` (1-5)."""

    model_config = ConfigDict(extra="forbid")

    nps: int | None = Field(default=None, ge=0, le=10)
    csat: int | None = Field(default=None, ge=1, le=5)
    ticket_id: int | None = Field(default=None, ge=1)
    answered_at: UTCDatetime | None = None
    source: ShortText = "cli"

    def kind_score(self) -> tuple[str, int]:
        if (self.nps is None) == (self.csat is None):
            raise ValueError("give exactly one of nps or csat")
        return ("nps", self.nps) if self.nps is not None else ("csat", self.csat)  # type: ignore[return-value]


def at_or_now(value: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    return value if value is not None else now
