from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from crmcore.enums import Channel, Direction
from crmcore.schemas.fields import Line, LongText, Ref, Text, UTCDatetime, Word


class InteractionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channel: Channel
    direction: Direction = Direction.INBOUND
    kind: Word = "other"  # a word of [vocabularies] interaction_kinds (checked by the service)
    subject: Text
    notes: LongText | None = None
    occurred_at: UTCDatetime | None = None
    handled_by: Line | None = Field(default=None, max_length=64, description="username")
    outcome: Text | None = None
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    source: Annotated[Line, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] = "core"
    source_ref: Ref | None = None
    external_ref: Ref | None = None


class InteractionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    channel: Channel
    direction: Direction
    kind: str
    subject: str
    notes: str | None
    occurred_at: dt.datetime
    handled_by_id: int | None
    contact_id: int | None = None
    outcome: str | None
    satisfaction: int | None
    source: str
    source_ref: str | None
    external_ref: str | None
