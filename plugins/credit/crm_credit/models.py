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
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
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
    next_review: Mapped[dt.date | None] = mapped_column(Date)  # when the file is to be reviewed again
    credit_group: Mapped[str | None] = mapped_column(String(64))  # the group whose control mode applies
    # early-payment discount terms: discount_percent % off when paid within discount_days of the invoice
    discount_percent: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    discount_days: Mapped[int | None] = mapped_column(Integer)
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
        CheckConstraint("(discount_percent IS NULL) = (discount_days IS NULL)", name="discount_complete"),
        CheckConstraint("discount_percent IS NULL OR (discount_percent > 0 AND discount_percent < 100)",
                        name="discount_percent_range"),
        CheckConstraint("discount_days IS NULL OR discount_days >= 1", name="discount_days_positive"),
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


class CreditCharge(Base):
    """A dunning fee or interest posted as a ledger entry (``transaction_id``) on an overdue
    invoice (``invoice_id``); ``cleared_by_id`` is the credit note that cleared it with the invoice."""

    __tablename__ = "credit_charges"

    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"), primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # fee | interest
    level: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    cleared_by_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))

    __table_args__ = (CheckConstraint("kind IN ('fee', 'interest')", name="charge_kind_known"),
                      CheckConstraint("amount > 0", name="charge_positive"))


class CreditDiscount(Base):
    """An early-payment discount granted: the credit note (``transaction_id``) posted on the
    invoice because the payment (``payment_id``) arrived within the window. One per invoice."""

    __tablename__ = "credit_discounts"

    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"), primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"), unique=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    percent: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CreditWarning(Base):
    """A document that broke a credit rule and passed because the customer's control mode is
    ``warn``: the rule, the figures, who passed it."""

    __tablename__ = "credit_warnings"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    reference: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    message: Mapped[str] = mapped_column(String(1000))
    mode_source: Mapped[str] = mapped_column(String(80))  # why warn applies: group:NAME | grade:G | default
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CreditGradeChange(Base):
    """A grade that fell by one grade or more between two scoring runs (the downgrade alert)."""

    __tablename__ = "credit_grade_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    old_grade: Mapped[str] = mapped_column(String(8))
    new_grade: Mapped[str] = mapped_column(String(8))
    old_score: Mapped[int] = mapped_column(Integer)
    new_score: Mapped[int] = mapped_column(Integer)
    steps: Mapped[int] = mapped_column(Integer)  # grades fallen
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged: Mapped[bool] = mapped_column(Boolean, default=False)


__all__ = ["TABLE_PREFIX", "CreditCharge", "CreditDiscount", "CreditGradeChange", "CreditModel", "CreditModelScore",
           "CreditProfile", "CreditProfileChange", "CreditRelease", "CreditScore", "CreditWarning", "DunningEvent",
           "DunningItem"]
