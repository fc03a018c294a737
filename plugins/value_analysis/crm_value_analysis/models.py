"""The plugin's two tables: one row per analysis run, one row per customer and run.

A run is a dated snapshot (one per ``as_of`` date; running the same date again replaces it),
so reports read stored numbers instead of recomputing, and tier moves and trends compare a
snapshot with the one before it. Every figure is derived from the core's transactions and can
be recomputed at any time, which is why merges may simply drop duplicate rows.

Analytics values are floats on purpose: they are estimates (scores, probabilities, CLV), not
ledger amounts, and floats keep the 100k-row snapshot inserts and reads cheap.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Integer, LargeBinary, SmallInteger, String
from sqlalchemy.orm import Mapped, deferred, mapped_column

from crmcore.db import Base, UTCDateTime, utcnow

TABLE_PREFIX = "value_analysis_"


class ValueRun(Base):
    """One analysis run: its date, the settings used and the base-wide results (JSON)."""

    __tablename__ = "value_analysis_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    n_customers: Mapped[int] = mapped_column(Integer)
    n_purchasers: Mapped[int] = mapped_column(Integer)
    total_revenue: Mapped[float] = mapped_column(Float)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    # one 64-bit digest per snapshot row, so re-running the date rewrites only the rows that changed
    # (see snapshot_store; NULL: unknown, the next re-run of the date rewrites every row). Loaded on use only.
    row_digests: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))
    # the run's model fit with the key of its inputs, reused by a re-run of the date on the same data (fit_cache)
    model_cache: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))


class CustomerValue(Base):
    """One customer in one run. Columns are grouped by analysis; NULL means 'not available'
    (no purchases, or a model that could not be fitted on this data)."""

    __tablename__ = "value_analysis_customer_values"

    # no foreign keys (va_0003): derived rows written 100k at a time, whose run and customer ids the
    # run itself has just created / read; replacing a run deletes its rows, merges re-point them
    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
    # RFM over the analysis window (frequency = purchase transactions, monetary = net revenue)
    recency_days: Mapped[int | None] = mapped_column(Integer)
    frequency: Mapped[int] = mapped_column(Integer)
    monetary: Mapped[float] = mapped_column(Float)
    r_score: Mapped[int] = mapped_column(SmallInteger)
    f_score: Mapped[int] = mapped_column(SmallInteger)
    m_score: Mapped[int] = mapped_column(SmallInteger)
    segment: Mapped[str] = mapped_column(String(40))
    previous_segment: Mapped[str | None] = mapped_column(String(40))
    # value pyramid, concentration, dependency
    tier: Mapped[str] = mapped_column(String(40))
    previous_tier: Mapped[str | None] = mapped_column(String(40))
    revenue_share: Mapped[float] = mapped_column(Float)
    dependency: Mapped[str] = mapped_column(String(16))
    # profit over the analysis window: gross margin (revenue x the category's margin) - cost to serve
    gross_margin: Mapped[float | None] = mapped_column(Float)
    cost_to_serve: Mapped[float | None] = mapped_column(Float)
    profit: Mapped[float | None] = mapped_column(Float)
    # purchase history (all history up to as_of; purchase days = distinct days with a purchase)
    first_purchase_days: Mapped[int | None] = mapped_column(Integer)
    purchase_days: Mapped[int] = mapped_column(Integer)
    spend_trend: Mapped[float | None] = mapped_column(Float)
    frequency_trend: Mapped[float | None] = mapped_column(Float)
    categories: Mapped[int | None] = mapped_column(Integer)
    satisfaction: Mapped[float | None] = mapped_column(Float)
    lifecycle: Mapped[str] = mapped_column(String(16))
    # churn (BG/NBD) and lifetime value
    p_alive: Mapped[float | None] = mapped_column(Float)
    churn_risk: Mapped[bool | None] = mapped_column(Boolean)
    expected_purchases: Mapped[float | None] = mapped_column(Float)
    clv_deterministic: Mapped[float | None] = mapped_column(Float)
    clv_probabilistic: Mapped[float | None] = mapped_column(Float)
    # loyalty index 0..100 and its parts (percentile 0..1 per component, NULL = no data)
    loyalty: Mapped[float | None] = mapped_column(Float)
    loyalty_coverage: Mapped[float | None] = mapped_column(Float)
    loyalty_duration: Mapped[float | None] = mapped_column(Float)
    loyalty_frequency: Mapped[float | None] = mapped_column(Float)
    loyalty_frequency_trend: Mapped[float | None] = mapped_column(Float)
    loyalty_spend: Mapped[float | None] = mapped_column(Float)
    loyalty_cross_buying: Mapped[float | None] = mapped_column(Float)
    loyalty_satisfaction: Mapped[float | None] = mapped_column(Float)
    loyalty_share_of_wallet: Mapped[float | None] = mapped_column(Float)
    loyalty_referrals: Mapped[float | None] = mapped_column(Float)
    loyalty_price_sensitivity: Mapped[float | None] = mapped_column(Float)
    loyalty_voluntariness: Mapped[float | None] = mapped_column(Float)


class ChurnReason(Base):
    """Why a customer was lost, as recorded (by a user, or by another plugin such as credit's write-off)."""

    __tablename__ = "value_analysis_churn_reasons"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(64))
    lost_on: Mapped[dt.date] = mapped_column(Date)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(64))


__all__ = ["TABLE_PREFIX", "ChurnReason", "CustomerValue", "ValueRun"]
