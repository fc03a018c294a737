"""Reports ranked by profit or by revenue (``--by``), and the unprofitable customers.

A run ranks its stored tiers, Pareto curve and dependency levels by its basis (the summary's
``value_basis``); asking a report for the other basis recomputes them in NumPy from the
snapshot's ``monetary`` and ``profit`` columns (one query of the run's rows), with the same
functions the run uses -- so ``--by`` never needs another run.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import func, select

from crm_value_analysis import analytics, reads
from crm_value_analysis.models import CustomerValue, ValueRun
from crm_value_analysis.money import money, money_fields
from crm_value_analysis.profit import BASES
from crm_value_analysis.schemas import INACTIVE_TIER, ValueSettings
from crmcore.errors import InvalidInput
from crmcore.models import Customer
from crmcore.uow import UnitOfWork


def check_by(by: str | None) -> str | None:
    """``by`` is None (the run's basis), "profit" or "revenue" (InvalidInput otherwise)."""
    if by is not None and by not in BASES:
        raise InvalidInput(f"invalid input: by: must be 'profit' or 'revenue', got {by!r}", [("by", "unknown basis")])
    return by


def run_basis(run: ValueRun) -> str:
    """What the run ranked by (runs before profit existed ranked by revenue)."""
    return str((run.summary or {}).get("value_basis", "revenue"))


def wants_other_basis(uow: UnitOfWork, run: ValueRun, by: str | None) -> bool:
    """True when the report must be recomputed for a basis the run did not rank by."""
    if check_by(by) is None or by == run_basis(run):
        return False
    if by == "profit":
        require_profit(uow, run)
    return True


def require_profit(uow: UnitOfWork, run: ValueRun) -> None:
    """Runs stored before profit existed have none: say so instead of ranking everyone at 0."""
    if uow.session.scalar(select(func.count(CustomerValue.profit)).where(CustomerValue.run_id == run.id)) == 0:
        raise InvalidInput("the latest run has no profit per customer (it predates profit); run `crm value run` again")


def _arrays(uow: UnitOfWork, run: ValueRun) -> dict[str, np.ndarray]:
    """The run's ids, revenue, profit and window frequency, one array each (sorted by id)."""
    cv = CustomerValue
    stmt = (select(cv.customer_id, cv.monetary, func.coalesce(cv.profit, 0.0), cv.frequency)
            .where(cv.run_id == run.id).order_by(cv.customer_id))
    m = reads._fetch_array(uow.session, stmt, 4)
    return {"ids": m[:, 0].astype(np.int64), "revenue": m[:, 1], "profit": m[:, 2], "buyers": m[:, 3] > 0}


def _tiers(a: dict[str, np.ndarray], settings: ValueSettings, by: str) -> np.ndarray:
    tiers = np.full(a["ids"].size, INACTIVE_TIER, dtype=f"<U{max(len(t) for t in settings.tier_order())}")
    if a["buyers"].any():
        tiers[a["buyers"]] = analytics.pyramid_tiers(a[by][a["buyers"]], cutoffs=list(settings.pyramid.items()))
    return tiers


def _share(part: float, total: float) -> float | None:
    return part / total if total > 0 else None


def pyramid_groups(uow: UnitOfWork, run: ValueRun, settings: ValueSettings, by: str) -> list[dict[str, Any]]:
    """Customers, revenue and profit per tier when the tiers are ranked by ``by``."""
    a = _arrays(uow, run)
    tiers = _tiers(a, settings, by)
    n = max(a["ids"].size, 1)
    total_rev, total_profit = float(a["revenue"].sum()), float(a["profit"].sum())
    out = []
    for name in settings.tier_order():
        mask = tiers == name
        rev, prof = float(a["revenue"][mask].sum()), float(a["profit"][mask].sum())
        out.append({"name": name, "customers": int(mask.sum()), "customer_share": float(mask.sum()) / n,
                    "revenue": money(rev), "revenue_share": _share(rev, total_rev),
                    "profit": money(prof), "profit_share": _share(prof, total_profit)})
    return out


def pareto_by(uow: UnitOfWork, run: ValueRun, by: str, shares: tuple[float, ...]) -> dict[str, Any]:
    """Gini and the top shares of the purchasers' revenue or profit (a loss counts as 0)."""
    a = _arrays(uow, run)
    values = a[by][a["buyers"]]
    if values.size == 0:
        return {"gini": None, "top_shares": None, "n_customers": 0, "curve": []}
    curve = analytics.pareto_curve(values, points=100)
    return {"gini": curve.gini, "top_shares": {f"{f:.0%}": curve.share_at(f) for f in shares},
            "n_customers": curve.n_customers, "curve": [round(float(v), 6) for v in curve.value_share],
            "total": money(curve.total_value)}


def dependency_by(uow: UnitOfWork, run: ValueRun, settings: ValueSettings, by: str) -> tuple[list[dict[str, Any]], float]:
    """Customers above the dependency thresholds of ``by`` (visible ones listed), and the total."""
    a = _arrays(uow, run)
    dep = settings.dependency
    levels = analytics.dependency_levels(a[by], key=dep.key, critical=dep.critical, mono=dep.mono)
    flagged = np.flatnonzero(levels.levels != "none")
    if flagged.size == 0:
        return [], levels.total
    visible = dict(uow.session.execute(
        select(Customer.id, Customer.name).where(Customer.id.in_(a["ids"][flagged].tolist()),
                                                 uow.visibility.customer_clause(Customer.owner_id))).all())
    rows = [money_fields({"customer_id": int(a["ids"][i]), "name": visible[int(a["ids"][i])], "level": str(levels.levels[i]),
                          "share": float(levels.share[i]), "monetary": a["revenue"][i], "profit": a["profit"][i]})
            for i in flagged if int(a["ids"][i]) in visible]
    return sorted(rows, key=lambda r: -r["share"]), levels.total


def unprofitable(uow: UnitOfWork, run: ValueRun, limit: int) -> dict[str, Any]:
    """Customers whose profit is below zero: how many, the loss, and the worst ``limit`` (visible) ones."""
    cv = CustomerValue
    n, loss, rev = uow.session.execute(select(func.count(), func.sum(cv.profit), func.sum(cv.monetary))
                                       .where(cv.run_id == run.id, cv.profit < 0)).one()
    cols = (cv.monetary, cv.gross_margin, cv.cost_to_serve, cv.profit, cv.tier)
    stmt = (select(cv.customer_id, Customer.name, *cols).join(Customer, Customer.id == cv.customer_id)
            .where(cv.run_id == run.id, cv.profit < 0, uow.visibility.customer_clause(Customer.owner_id))
            .order_by(cv.profit, cv.customer_id).limit(limit))
    customers = [money_fields(dict(r._mapping)) for r in uow.session.execute(stmt)]
    return {"customers_unprofitable": int(n), "total_loss": money(-(loss or 0.0)), "their_revenue": money(rev or 0.0),
            "customers": customers}


__all__ = ["check_by", "dependency_by", "pareto_by", "pyramid_groups", "require_profit", "run_basis", "unprofitable",
           "wants_other_basis"]
