"""The credit tables (all named ``credit_*``).

- ``credit_profiles``: what people decide per customer (limit, terms, status, investigation);
  every change is kept in ``credit_profile_changes`` (who, when, before, after).
- ``credit_scores``: the latest rule-scorecard result per customer (recomputed, never edited).
- ``credit_models`` / ``credit_model_scores``: trained scorecards once applied, and their scores.
- ``credit_releases``: overrides of a hold or a refusal, for one document or a whole customer, with
  a reason and an expiry.
- ``credit_dunning_items`` / ``credit_dunning_events``: the dunning level of each overdue invoice
  and the log of every action taken.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from crmcore.db import Base, Money, UTCDateTime, utcnow

TABLE_PREFIX = "credit_"


class CreditProfile(Base):
    """A customer's credit file. ``limit_amount`` NULL means no limit is set (no limit check)."""

    __tablename__ = "credit_profiles"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    limit_amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    payment_terms_days: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="good")
    status_reason: Mapped[str | None] = mapped_column(String(500))
    hold_source: Mapped[str | None] = mapped_column(String(16))  # manual | dunning, while on hold
    last_review: Mapped[dt.date | None] = mapped_column(Date)
    # what the credit investigation gathered
    registry_id: Mapped[str | None] = mapped_column(String(64))
    registry_name: Mapped[str | None] = mapped_column(String(100))
    legal_form: Mapped[str | None] = mapped_column(String(64))
    founded_on: Mapped[dt.date | None] = mapped_column(Date)
    employees: Mapped[int | None] = mapped_column(Integer)
    financials_year: Mapped[int | None] = mapped_column(Integer)
    annual_revenue: Mapped[Decimal | None] = mapped_column(Money)
    equity: Mapped[Decimal | None] = mapped_column(Money)
    net_income: Mapped[Decimal | None] = mapped_column(Money)
    trade_references: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    investigation_notes: Mapped[str | None] = mapped_column(Text)
    investigated_on: Mapped[dt.date | None] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint("status IN ('good', 'watch', 'hold', 'blocked')", name="status_known"),
        CheckConstraint("limit_amount IS NULL OR limit_amount >= 0", name="limit_not_negative"),
    )


class CreditProfileChange(Base):
    """One change of a profile: the fields that changed, before and after."""

    __tablename__ = "credit_profile_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    before: Mapped[dict[str, Any]] = mapped_column(JSON)
    after: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(String(500))


class CreditScore(Base):
    """The latest rule-scorecard result of a customer, with the factor values behind it."""

    __tablename__ = "credit_scores"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    score: Mapped[int] = mapped_column(Integer)
    grade: Mapped[str] = mapped_column(String(8))
    currency: Mapped[str] = mapped_column(String(3))
    suggested_limit: Mapped[Decimal] = mapped_column(Money)
    reasons: Mapped[dict[str, Any]] = mapped_column(JSON)
    avg_days_to_pay: Mapped[float | None] = mapped_column(Float)
    days_beyond_terms: Mapped[float | None] = mapped_column(Float)
    overdue_share: Mapped[float | None] = mapped_column(Float)
    relationship_years: Mapped[float | None] = mapped_column(Float)
    volume_12m: Mapped[float | None] = mapped_column(Float)
    volume_trend: Mapped[float | None] = mapped_column(Float)
    writeoff_share: Mapped[float | None] = mapped_column(Float)
    complaints_12m: Mapped[float | None] = mapped_column(Float)
    scored_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CreditModel(Base):
    """A trained scorecard that was applied: the file it came from and its content hash."""

    __tablename__ = "credit_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    trained_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    features: Mapped[list[str]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    applied_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    applied_by: Mapped[str] = mapped_column(String(64))
    n_scored: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (UniqueConstraint("name", "version"),)


class CreditModelScore(Base):
    """A customer's points under an applied trained scorecard."""

    __tablename__ = "credit_model_scores"

    model_id: Mapped[int] = mapped_column(ForeignKey("credit_models.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True, index=True)
    score: Mapped[float] = mapped_column(Float)
    # the features that cost the most points against their best bin: [{"feature", "points_lost"}]
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    scored_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CreditRelease(Base):
    """An override: lets one document (``reference``) or every document of the customer
    (``reference`` NULL) through the credit check until ``expires_at``."""

    __tablename__ = "credit_releases"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    reference: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(500))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # a new hold ends a release early


class DunningItem(Base):
    """The dunning level an overdue invoice has reached; ``resolved_at`` once it is paid."""

    __tablename__ = "credit_dunning_items"

    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    last_action_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class DunningEvent(Base):
    """One dunning action on one invoice (the interaction logged for it is named)."""

    __tablename__ = "credit_dunning_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"))
    level: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    days_overdue: Mapped[int] = mapped_column(Integer)
    open_amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    fee: Mapped[Decimal] = mapped_column(Money)
    interest: Mapped[Decimal] = mapped_column(Money)
    interaction_id: Mapped[int | None] = mapped_column(ForeignKey("interactions.id", ondelete="SET NULL"))

    __table_args__ = (Index("ix_credit_dunning_events_customer_at", "customer_id", "at"),)


__all__ = ["TABLE_PREFIX", "CreditModel", "CreditModelScore", "CreditProfile", "CreditProfileChange", "CreditRelease",
           "CreditScore", "DunningEvent", "DunningItem"]
