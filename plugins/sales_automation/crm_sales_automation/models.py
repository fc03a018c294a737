"""The plugin's tables (all ``sales_*``), mapped on crmcore's Base.

Amounts are ``Money`` (Decimal), probabilities whole percents (0..100) so that a weighted value
``amount * probability / 100`` stays exact. Every stage change of an opportunity is a row of
``sales_stage_changes`` (the opportunity's first stage included), which is what the funnel,
cycle times and learned probabilities are computed from.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_sales_automation.enums import (
    ActivityKind,
    Factor,
    LeadSource,
    LeadStatus,
    ObjectionKind,
    OpportunityStatus,
    StageKind,
)
from crmcore.db import Base, Money, UTCDateTime, utcnow
from crmcore.sdk import enum_column

TABLE_PREFIX = "sales_"


class Pipeline(Base):
    """A selling process: an ordered list of stages (see :class:`Stage`)."""

    __tablename__ = "sales_pipelines"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Stage(Base):
    """One step of a pipeline. Exactly one ``won`` and one ``lost`` stage close a pipeline."""

    __tablename__ = "sales_stages"

    id: Mapped[int] = mapped_column(primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("sales_pipelines.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)
    probability: Mapped[int] = mapped_column(SmallInteger)
    kind: Mapped[StageKind] = mapped_column(enum_column(StageKind, "sales_stage_kind"), default=StageKind.OPEN)

    __table_args__ = (
        UniqueConstraint("pipeline_id", "name"),
        UniqueConstraint("pipeline_id", "position"),
        CheckConstraint("probability BETWEEN 0 AND 100", name="probability_0_100"),
    )


class Lead(Base):
    """A potential customer not yet qualified; becomes a customer (and a deal) on conversion."""

    __tablename__ = "sales_leads"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_ref: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    country: Mapped[str | None] = mapped_column(String(2))
    # a word of the lead_sources vocabulary (crm.toml [vocabularies]; the services check it)
    source: Mapped[str] = mapped_column(String(32), default=LeadSource.OTHER.value, index=True)
    campaign_ref: Mapped[str | None] = mapped_column(String(100), index=True)  # the campaign it responded to
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    status: Mapped[LeadStatus] = mapped_column(enum_column(LeadStatus, "sales_lead_status"), default=LeadStatus.NEW)
    notes: Mapped[str | None] = mapped_column(Text)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    # the customer who referred this lead (a mention/referral, value_analysis's A31 factor); kept
    # on the converted customer's :class:`Referral` at conversion
    referred_by_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    # the learned score (0..100) and when it was computed; the hand-set assessment is never touched by it
    learned_score: Mapped[float | None] = mapped_column(Float)
    learned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_sales_leads_status", "status"),)


class Assessment(Base):
    """One factor of a lead's five-factor assessment, scored 0..5 by a person."""

    __tablename__ = "sales_lead_assessments"

    lead_id: Mapped[int] = mapped_column(ForeignKey("sales_leads.id", ondelete="CASCADE"), primary_key=True)
    factor: Mapped[Factor] = mapped_column(enum_column(Factor, "sales_factor"), primary_key=True)
    points: Mapped[int] = mapped_column(SmallInteger)
    note: Mapped[str | None] = mapped_column(String(500))
    assessed_by: Mapped[str] = mapped_column(String(64))
    assessed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (CheckConstraint("points BETWEEN 0 AND 5", name="points_0_5"),)


class Conversion(Base):
    """History: which lead became (or was matched to) which customer, how, by whom.

    A lead is converted once: ``lead_id`` is unique (migration sales_0002), so even a writer
    that skipped the lead's row lock cannot record a second conversion.
    """

    __tablename__ = "sales_conversions"

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("sales_leads.id", ondelete="CASCADE"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("sales_opportunities.id", ondelete="SET NULL"))
    matched_by: Mapped[str] = mapped_column(String(16))  # new | email | phone | chosen
    converted_by: Mapped[str] = mapped_column(String(64))
    converted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Opportunity(Base):
    """A deal. ``probability`` NULL means the stage's default; ``version`` guards concurrent writers."""

    __tablename__ = "sales_opportunities"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("sales_pipelines.id"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("sales_stages.id"), index=True)
    probability: Mapped[int | None] = mapped_column(SmallInteger)
    expected_close: Mapped[dt.date | None] = mapped_column(Date)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    next_step: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[OpportunityStatus] = mapped_column(
        enum_column(OpportunityStatus, "sales_opportunity_status"), default=OpportunityStatus.OPEN)
    lost_reason: Mapped[str | None] = mapped_column(String(500))
    lost_reason_code: Mapped[str | None] = mapped_column(String(32))  # a word of lost_reasons
    won_reason: Mapped[str | None] = mapped_column(String(32))  # a word of won_reasons
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("sales_leads.id", ondelete="SET NULL"))
    invoice_ref: Mapped[str | None] = mapped_column(String(100))
    invoiced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # position of the furthest open/won stage the deal reached (kept on every move: the funnel
    # is then one GROUP BY over this table instead of a pass over the stage history)
    reached_position: Mapped[int] = mapped_column(SmallInteger, default=1)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - read once by SQLAlchemy, never mutated

    @property
    def owner(self) -> str | None:
        """The owner's username (what the published hooks expose), or None."""
        from sqlalchemy import select
        from sqlalchemy.orm import object_session

        from crmcore.models import User

        session = object_session(self)
        if self.owner_id is None or session is None:
            return None
        return session.scalar(select(User.username).where(User.id == self.owner_id))

    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("probability IS NULL OR (probability BETWEEN 0 AND 100)", name="probability_0_100"),
        Index("ix_sales_opportunities_status_close", "status", "expected_close"),
    )


class StageChange(Base):
    """Who moved which deal from which stage to which, and when (``from_stage_id`` NULL = created)."""

    __tablename__ = "sales_stage_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("sales_opportunities.id", ondelete="CASCADE"), index=True)
    from_stage_id: Mapped[int | None] = mapped_column(ForeignKey("sales_stages.id"))
    to_stage_id: Mapped[int] = mapped_column(ForeignKey("sales_stages.id"))
    changed_by: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Objection(Base):
    """An objection raised during a deal, how it was handled and whether it was resolved."""

    __tablename__ = "sales_objections"

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("sales_opportunities.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ObjectionKind] = mapped_column(enum_column(ObjectionKind, "sales_objection_kind"))
    description: Mapped[str] = mapped_column(String(500))
    handling: Mapped[str | None] = mapped_column(String(500))
    # a word of objection_methods (crm.toml [vocabularies]; the services check it); indexed for the
    # report and for the check that a word in use is not removed from crm.toml
    method: Mapped[str | None] = mapped_column(String(32), index=True)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    raised_by: Mapped[str] = mapped_column(String(64))
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Activity(Base):
    """A task on a lead, an opportunity or a customer; completing it logs a core interaction."""

    __tablename__ = "sales_activities"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ActivityKind] = mapped_column(enum_column(ActivityKind, "sales_activity_kind"))
    subject: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("sales_leads.id", ondelete="CASCADE"), index=True)
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("sales_opportunities.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(200))
    interaction_id: Mapped[int | None] = mapped_column(ForeignKey("interactions.id", ondelete="SET NULL"))
    # the person of the customer it is with (one of the customer's contacts; removing them keeps the activity)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("lead_id IS NOT NULL OR opportunity_id IS NOT NULL OR customer_id IS NOT NULL",
                        name="has_subject"),
    )


class Referral(Base):
    """Who referred a customer: one referrer per customer (``customer_id`` is the key).

    ``lead_id`` is the lead it was carried over from at conversion (that lead's own
    ``referred_by_id``), so a referral that went lead -> customer is counted once. A customer
    never refers itself (CHECK), also not after a merge.
    """

    __tablename__ = "sales_referrals"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    referrer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("sales_leads.id", ondelete="SET NULL"))
    referred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (CheckConstraint("referrer_id <> customer_id", name="not_self"),)


class Quota(Base):
    """A rep's sales target for one month, in one currency."""

    __tablename__ = "sales_quotas"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    period: Mapped[dt.date] = mapped_column(Date)  # first day of the month
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Money)

    __table_args__ = (
        UniqueConstraint("owner_id", "period", "currency"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )


class LearnedModel(Base):
    """A fitted model (its parameters as JSON), so scores stay explainable after fitting."""

    __tablename__ = "sales_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), unique=True)  # "lead_nb"
    fitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    fitted_by: Mapped[str] = mapped_column(String(64))
    n_samples: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)


__all__ = [
    "TABLE_PREFIX",
    "Activity",
    "Assessment",
    "Conversion",
    "Lead",
    "LearnedModel",
    "Objection",
    "Opportunity",
    "Pipeline",
    "Quota",
    "Referral",
    "Stage",
    "StageChange",
]
