"""The marketing tables (all ``marketing_*``).

A campaign's audience is materialised at launch into ``marketing_targets``: one row per customer
with the group it fell in (contacted, control, suppressed) and its delivery state. That row is
what makes sending resumable and never twice: a send claims ``pending`` rows, and a row that is
``sent`` is never sent again. Responses and cost lines hang off the campaign; attribution and ROI
are computed from them and from the core's transactions when a report is asked for.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from crmcore.db import Base, Money, UTCDateTime, utcnow

TABLE_PREFIX = "marketing_"


class Segment(Base):
    """A saved rule over customers (``kind='rule'``) or a static list (``kind='static'``).

    A rule segment is evaluated by one SQL query each time; ``frozen_at`` set means its
    membership was snapshotted into ``marketing_segment_members`` and is read from there.
    """

    __tablename__ = "marketing_segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # rule | static
    rule: Mapped[str | None] = mapped_column(Text)  # the expression as the user wrote it
    rule_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the parsed rule
    description: Mapped[str | None] = mapped_column(String(500))
    frozen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))


class SegmentMember(Base):
    """Members of a static list or of a frozen rule segment."""

    __tablename__ = "marketing_segment_members"

    segment_id: Mapped[int] = mapped_column(ForeignKey("marketing_segments.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True, index=True)


class Consent(Base):
    """A customer's current consent for one channel; every change is in the core audit log."""

    __tablename__ = "marketing_consents"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # opt_in | opt_out | unsubscribed
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(100))


class ContactConsent(Base):
    """A person's (contact's) current consent for one channel; their withdrawal wins over the company's opt-in."""

    __tablename__ = "marketing_contact_consents"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # opt_in | opt_out | unsubscribed
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(100))


class Campaign(Base):
    __tablename__ = "marketing_campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    objective: Mapped[str | None] = mapped_column(String(500))
    channel: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12), default="draft")
    budget: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    control_share: Mapped[float] = mapped_column(Float, default=0.0)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    attribution_days: Mapped[int] = mapped_column(Integer, default=30)
    to_roles: Mapped[str | None] = mapped_column(String(200))  # "decider,buyer": addressed to these contacts
    # a price offer (discount, sale, coupon): purchases in response to it are bought on price
    price_offer: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    launched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))


class CampaignSegment(Base):
    __tablename__ = "marketing_campaign_segments"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("marketing_campaigns.id", ondelete="CASCADE"), primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("marketing_segments.id"), primary_key=True)


class Variant(Base):
    """An A/B variant: its share of the contacted group and its own subject and body."""

    __tablename__ = "marketing_variants"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("marketing_campaigns.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    share: Mapped[float] = mapped_column(Float)
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("campaign_id", "name"),)


class CostLine(Base):
    """Actual spend. ``reference`` is unique per campaign, so a cost is counted once."""

    __tablename__ = "marketing_costs"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("marketing_campaigns.id", ondelete="CASCADE"), index=True)
    reference: Mapped[str] = mapped_column(String(100))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str | None] = mapped_column(String(500))
    incurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("campaign_id", "reference"),)


class Target(Base):
    """One customer of a launched campaign: its group, variant and delivery state."""

    __tablename__ = "marketing_targets"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("marketing_campaigns.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True, index=True)
    grp: Mapped[str] = mapped_column(String(12))  # contact | control | suppressed
    reason: Mapped[str | None] = mapped_column(String(100))  # why suppressed
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("marketing_variants.id"))
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | sending | sent | failed | skipped
    address: Mapped[str | None] = mapped_column(String(254))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # when a sender took it (status sending)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    interaction_id: Mapped[int | None] = mapped_column(ForeignKey("interactions.id"))
    error: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index("ix_marketing_targets_status", "campaign_id", "status"),)


class ContactTarget(Base):
    """One person of a launched campaign addressed by role: their group, address and delivery state.

    The company's :class:`Target` row keeps the company's group (the holdout is drawn per company,
    the unit revenue is attributed to); the people of a contacted company are the delivery units.
    """

    __tablename__ = "marketing_contact_targets"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("marketing_campaigns.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    grp: Mapped[str] = mapped_column(String(12))  # contact | control | suppressed
    reason: Mapped[str | None] = mapped_column(String(100))
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("marketing_variants.id"))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    address: Mapped[str | None] = mapped_column(String(254))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    interaction_id: Mapped[int | None] = mapped_column(ForeignKey("interactions.id"))
    error: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index("ix_marketing_contact_targets_status", "campaign_id", "status"),)


class Response(Base):
    """A classified response of one customer to one campaign."""

    __tablename__ = "marketing_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("marketing_campaigns.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    type: Mapped[str] = mapped_column(String(20))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(20))  # cli | import | derived
    external_ref: Mapped[str] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        UniqueConstraint("campaign_id", "external_ref"),
        Index("ix_marketing_responses_campaign_type", "campaign_id", "type"),
    )


__all__ = ["TABLE_PREFIX", "Campaign", "CampaignSegment", "Consent", "ContactConsent", "ContactTarget", "CostLine", "Response", "Segment",
           "SegmentMember", "Target", "Variant"]
