"""Reads of the latest value run for the web console: the R x F grid and the customers of one
tier, page by page. Same rules as the reports: base-wide counts need ``value.report`` for an
"own" user (:func:`services.report_run`); customer lists show only customers the user may see.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from crm_value_analysis import services
from crm_value_analysis.models import CustomerValue
from crm_value_analysis.schemas import ValueSettings
from crmcore.errors import InvalidInput
from crmcore.models import Customer
from crmcore.uow import UnitOfWork


def rfm_grid(uow: UnitOfWork) -> dict[str, Any]:
    """Customers and revenue per (recency score, frequency score) of the latest run: one GROUP BY."""
    run = services.report_run(uow)
    cv = CustomerValue
    rows = uow.session.execute(select(cv.r_score, cv.f_score, func.count(), func.sum(cv.monetary))
                               .where(cv.run_id == run.id).group_by(cv.r_score, cv.f_score)).all()
    cells = {(int(r), int(f)): {"customers": int(n), "revenue": float(m or 0)} for r, f, n, m in rows}
    top = max([5, *(k for rf in cells for k in rf)])
    return {"as_of": run.as_of, "scores": list(range(1, top + 1)), "cells": cells,
            "max": max([c["customers"] for c in cells.values()] or [0])}


def tier_customers(uow: UnitOfWork, tier: str, *, after: int = 0, limit: int = 50) -> dict[str, Any]:
    """The visible customers of ``tier`` in the latest run, by customer id from ``after`` (keyset)."""
    run = services.latest_run(uow)
    uow.require("customer.read")
    order = ValueSettings.model_validate(run.settings).tier_order()
    if tier not in order:
        raise InvalidInput(f"invalid input: tier: unknown {tier!r}; known: {', '.join(order)}", [("tier", "unknown tier")])
    cv = CustomerValue
    stmt = (select(cv.customer_id, Customer.name, cv.monetary, cv.frequency, cv.recency_days, cv.segment,
                   cv.clv_probabilistic)
            .join(Customer, Customer.id == cv.customer_id)
            .where(cv.run_id == run.id, cv.tier == tier, cv.customer_id > after,
                   uow.visibility.customer_clause(Customer.owner_id))
            .order_by(cv.customer_id).limit(limit + 1))
    rows = [dict(r._mapping) for r in uow.session.execute(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    return {"as_of": run.as_of, "tier": tier, "tiers": list(order), "customers": rows,
            "next_after": rows[-1]["customer_id"] if more else None}


def pareto_curve(uow: UnitOfWork, points: int = 51) -> list[tuple[float, float]]:
    """The stored Lorenz-style curve of the latest run, (share of customers, share of revenue),
    thinned to ``points`` for drawing (an empty list when nobody purchased)."""
    curve = ((services.report_run(uow).summary or {}).get("pareto") or {}).get("curve") or []
    if len(curve) < 2:
        return []
    n = len(curve) - 1
    picks = sorted({round(i * n / (points - 1)) for i in range(points)})
    return [(i / n, float(curve[i])) for i in picks]
