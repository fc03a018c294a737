from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crmcore.db.base import Base
from crmcore.db.types import UTCDateTime
from crmcore.enums import Channel, Direction
from crmcore.models._columns import created_at, enum_column


class Interaction(Base):
    """One touchpoint; together they are the customer's timeline (the 360° view)."""

    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel, "channel"))
    direction: Mapped[Direction] = mapped_column(enum_column(Direction, "direction"))
    # a word of [vocabularies] interaction_kinds, checked by the service; indexed so the words in use
    # are read at open in milliseconds (a loose index scan), not by scanning every interaction
    kind: Mapped[str] = mapped_column(String(32), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # the person of the customer spoken with; removing the contact keeps the touchpoint, without a person
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    outcome: Mapped[str | None] = mapped_column(String(200))
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(64), default="core")
    source_ref: Mapped[str | None] = mapped_column(String(100))
    external_ref: Mapped[str | None] = mapped_column(String(100), unique=True)
    created_at: Mapped[dt.datetime] = created_at()

    __table_args__ = (
        CheckConstraint("satisfaction IS NULL OR (satisfaction BETWEEN 1 AND 5)", name="satisfaction_1_5"),
        Index("ix_interactions_customer_occurred", "customer_id", "occurred_at"),
    )
