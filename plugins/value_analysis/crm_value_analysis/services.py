"""The plugin's service layer: the reports over the stored snapshots, targeting, the 360° view.

The run, the model fits and their validation live in their own modules and are re-exported here,
so ``crm_value_analysis.services`` stays the one import path of the plugin's API:

* :func:`run_analysis` (:mod:`run`) -- compute everything for every customer and store a dated snapshot.
* :func:`analyse_value` -- the RFM + pyramid + Pareto + dependency part alone (no writes).
* Reports over the latest snapshot: :func:`rfm_report`, :func:`pyramid_report`,
  :func:`pareto_report`, :func:`dependency_report`, :func:`churn_report`,
  :func:`loyalty_report`, :func:`clv_report`, :func:`customer_value`, :func:`list_runs`.
* Models (:mod:`validation`, :mod:`fitting`): :func:`fit_models`, :func:`validate_models`.
* :func:`select_customers` -- customer ids by tier, segment, CLV, churn risk... for targeting.

Amounts of money in the reports are :class:`~decimal.Decimal` (decimal strings in JSON).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Float, and_, case, func, select

from crm_value_analysis import analytics, plots, profit_reports
from crm_value_analysis.fitting import (  # noqa: F401  (re-exported: the plugin's API)
    DAYS_PER_MONTH,
    ModelFit,
    RFTInput,
    fit_rft,
    model_estimates,
    rft_input,
)
from crm_value_analysis.models import CustomerValue, ValueRun
from crm_value_analysis.money import money, money_fields
from crm_value_analysis.run import (  # noqa: F401  (re-exported)
    CORE_STAGE,
    INSERT_CHUNK,
    PARETO_POINTS,
    TOP_SHARES,
    RunOutcome,
    ValuePart,
    analyse_value,
    resolve_currency,
    run_analysis,
    settings_for,
    today,
)
from crm_value_analysis.schemas import CustomerValueRead, RunRead, ValueSettings
from crm_value_analysis.section import merge_customer_rows, profile_section
from crm_value_analysis.validation import fit_models, require_base_report, validate_models
from crmcore.errors import CRMError, InvalidInput
from crmcore.models import Customer
from crmcore.uow import UnitOfWork


class NoRunYet(CRMError):
    """Reports need a stored snapshot."""

    def __init__(self) -> None:
        super().__init__("no value analysis run yet; run `crm value run` first")


# =============================================================================================
# Reading snapshots
# =============================================================================================

def latest_run(uow: UnitOfWork) -> ValueRun:
    """The snapshot with the latest ``as_of`` date, or :class:`NoRunYet`."""
    run = uow.session.scalar(select(ValueRun).order_by(ValueRun.as_of.desc()).limit(1))
    if run is None:
        raise NoRunYet()
    return run


def report_run(uow: UnitOfWork) -> ValueRun:
    """The latest run, for a report over the whole customer base (tiers, segments, shares and
    totals are relative to every customer): a user who sees only their own customers
    (``[visibility]`` "own") needs ``value.report`` for it. Lists of customers inside a report
    are limited to the customers the user may see in any case."""
    require_base_report(uow)
    return latest_run(uow)


def list_runs(uow: UnitOfWork) -> list[RunRead]:
    """The stored runs, latest first: their counts and revenue are over every customer, so the
    same rule as :func:`report_run` (an "own" user needs ``value.report``)."""
    require_base_report(uow)
    return [RunRead.model_validate(r) for r in uow.session.scalars(select(ValueRun).order_by(ValueRun.as_of.desc()))]


def _run_header(run: ValueRun) -> dict[str, Any]:
    return RunRead.model_validate(run).model_dump()


def _clean(value: Any) -> Any:
    """JSON-safe numbers: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _summary_models(models: dict[str, Any] | None) -> dict[str, Any] | None:
    """The run's models with Gamma-Gamma's mean spend as money (runs before 0.3 stored a float)."""
    if not models or not models.get("gamma_gamma"):
        return models
    gg = models["gamma_gamma"]
    return {**models, "gamma_gamma": {**gg, "mean_spend": money(gg.get("mean_spend"))}}


def _customer_rows(uow: UnitOfWork, run: ValueRun, cols: Sequence[Any], *where: Any, order: Sequence[Any] = (),
                   limit: int | None = None) -> list[dict[str, Any]]:
    stmt = (select(CustomerValue.customer_id, Customer.name, *cols)
            .join(Customer, Customer.id == CustomerValue.customer_id)
            .where(CustomerValue.run_id == run.id, uow.visibility.customer_clause(Customer.owner_id), *where)
            .order_by(*order, CustomerValue.customer_id))
    if limit:
        stmt = stmt.limit(limit)
    return [money_fields({k: _clean(v) for k, v in r._mapping.items()}) for r in uow.session.execute(stmt)]


def _group(uow: UnitOfWork, run: ValueRun, key: Any, *, order: Sequence[str]) -> list[dict[str, Any]]:
    """Customers, revenue and means per value of ``key`` (a CustomerValue column), in ``order``."""
    cv = CustomerValue
    stmt = (select(key, func.count(), func.sum(cv.monetary), func.avg(cv.recency_days.cast(Float)),
                   func.avg(cv.frequency.cast(Float)), func.avg(cv.monetary), func.min(cv.monetary), func.max(cv.monetary),
                   func.sum(cv.profit))
            .where(cv.run_id == run.id).group_by(key))
    total_n = run.n_customers or 1
    total_rev = run.total_revenue
    total_profit = uow.session.scalar(select(func.sum(cv.profit)).where(cv.run_id == run.id))
    out = {}
    for k, cnt, rev, rec, freq, avg_m, min_m, max_m, prof in uow.session.execute(stmt):
        out[k] = {"customers": cnt, "customer_share": cnt / total_n, "revenue": money(rev),
                  "revenue_share": _clean(rev / total_rev) if total_rev > 0 else None, "profit": money(prof),
                  "profit_share": _clean(prof / total_profit) if prof is not None and total_profit else None,
                  "avg_recency_days": _clean(rec), "avg_frequency": _clean(freq), "avg_monetary": money(avg_m),
                  "min_monetary": money(min_m), "max_monetary": money(max_m)}
    names = [*[o for o in order if o in out], *sorted(k for k in out if k not in order)]
    return [{"name": k, **out[k]} for k in names]


def rfm_report(uow: UnitOfWork) -> dict[str, Any]:
    """Customers, revenue and mean R/F/M per RFM segment, plus segment changes since the last run."""
    run = report_run(uow)
    settings = ValueSettings.model_validate(run.settings)
    cv = CustomerValue
    changed = uow.session.scalar(select(func.count()).where(
        cv.run_id == run.id, cv.previous_segment.is_not(None), cv.previous_segment != cv.segment))
    return {"run": _run_header(run), "segments": _group(uow, run, cv.segment, order=settings.segment_names()),
            "changed_segment": changed, "window_days": settings.window_days}


def _tier_rank(order: Sequence[str], column: Any) -> Any:
    return case({t: i for i, t in enumerate(order)}, value=column, else_=len(order))


def pyramid_report(uow: UnitOfWork, limit: int = 20, plot: Path | None = None, by: str | None = None) -> dict[str, Any]:
    """Tier sizes, revenue and profit; upgrades and downgrades since the previous snapshot (largest value first).

    ``by``: "profit" or "revenue" (default: what the run ranked by); for the other basis the tiers
    are recomputed from the snapshot and the moves are not listed. ``plot``: also a PNG of each
    tier's share of customers and of revenue.
    """
    profit_reports.check_by(by)
    if plot is not None:
        plots.check_path(plot)
    run = report_run(uow)
    settings = ValueSettings.model_validate(run.settings)
    if profit_reports.wants_other_basis(uow, run, by):
        return _pyramid_other(uow, run, settings, str(by), plot)
    cv = CustomerValue
    order = settings.tier_order()
    now, before = _tier_rank(order, cv.tier), _tier_rank(order, cv.previous_tier)
    cols = (cv.previous_tier.label("from_tier"), cv.tier.label("to_tier"), cv.monetary)
    moved = and_(cv.previous_tier.is_not(None), cv.previous_tier != cv.tier)
    out: dict[str, Any] = {
        "run": _run_header(run),
        "by": profit_reports.run_basis(run),
        "cutoffs": settings.pyramid,
        "tiers": _group(uow, run, cv.tier, order=order),
        "moves": run.summary.get("moves"),
        "upgrades": _customer_rows(uow, run, cols, moved, now < before, order=[cv.monetary.desc()], limit=limit),
        "downgrades": _customer_rows(uow, run, cols, moved, now > before, order=[cv.monetary.desc()], limit=limit),
        "plot": None,
    }
    if plot is not None:
        out["plot"] = str(plots.plot_pyramid(out["tiers"], plot, title=f"Value pyramid, {run.as_of}"))
    return out


def _pyramid_other(uow: UnitOfWork, run: ValueRun, settings: ValueSettings, by: str, plot: Path | None) -> dict[str, Any]:
    """The pyramid ranked by the basis the run did not use (recomputed from the snapshot)."""
    tiers = profit_reports.pyramid_groups(uow, run, settings, by)
    out = {"run": _run_header(run), "by": by, "cutoffs": settings.pyramid, "tiers": tiers, "moves": None,
           "upgrades": [], "downgrades": [], "plot": None,
           "note": f"tiers ranked by {by}, recomputed from the snapshot; moves are by {profit_reports.run_basis(run)}"}
    if plot is not None:
        out["plot"] = str(plots.plot_pyramid(tiers, plot, title=f"Value pyramid by {by}, {run.as_of}"))
    return out


def pareto_report(uow: UnitOfWork, plot: Path | None = None, by: str | None = None) -> dict[str, Any]:
    """Share of revenue (or profit, ``by``) of the top 1/5/10/20/50% of purchasers, the Gini, and optionally a PNG."""
    profit_reports.check_by(by)
    run = report_run(uow)
    basis = by or profit_reports.run_basis(run)
    pareto = (profit_reports.pareto_by(uow, run, basis, TOP_SHARES) if profit_reports.wants_other_basis(uow, run, by)
              else run.summary.get("pareto") or {})
    out = {"run": _run_header(run), "by": basis, "gini": pareto.get("gini"), "top_shares": pareto.get("top_shares"),
           "n_customers": pareto.get("n_customers", 0), "total_revenue": money(run.total_revenue),
           "total_profit": (run.summary.get("profit") or {}).get("total_profit"), "plot": None}
    if plot is not None:
        if not pareto:
            raise InvalidInput("the latest run has no purchasers to plot")
        curve = analytics.ParetoCurve(
            customer_share=np.linspace(0.0, 1.0, len(pareto["curve"])), value_share=np.asarray(pareto["curve"]),
            n_customers=pareto["n_customers"], total_value=run.total_revenue, gini=pareto["gini"])
        try:
            out["plot"] = str(analytics.plot_pareto(curve, plot, title=f"{basis.capitalize()} concentration, {run.as_of}"))
        except OSError as e:
            raise InvalidInput(f"cannot write the plot to {plot}: {e.strerror or e}") from None
    return out


def dependency_report(uow: UnitOfWork, by: str | None = None) -> dict[str, Any]:
    """Customers above the key / critical / mono-client share thresholds of revenue (or profit, ``by``)."""
    profit_reports.check_by(by)
    run = report_run(uow)
    settings = ValueSettings.model_validate(run.settings)
    cv = CustomerValue
    basis, total = by or profit_reports.run_basis(run), None
    if profit_reports.wants_other_basis(uow, run, by):
        flagged, total = profit_reports.dependency_by(uow, run, settings, basis)
    else:
        flagged = _customer_rows(uow, run, (cv.dependency.label("level"), cv.revenue_share.label("share"), cv.monetary,
                                            cv.profit), cv.dependency != "none", order=[cv.revenue_share.desc()])
    worst = max((analytics.DEPENDENCY_LEVELS.index(r["level"]) for r in flagged), default=0)
    return {"run": _run_header(run), "by": basis, "thresholds": settings.dependency.model_dump(),
            "total_revenue": money(run.total_revenue), "total": money(total) if total is not None else None,
            "level": analytics.DEPENDENCY_LEVELS[worst], "flagged": flagged}


def unprofitable_report(uow: UnitOfWork, limit: int = 20) -> dict[str, Any]:
    """Customers who cost more than they bring (profit < 0 in the latest run), worst first, and
    which costs were counted."""
    run = report_run(uow)
    profit_reports.require_profit(uow, run)
    return {"run": _run_header(run), "profit": run.summary.get("profit"), **profit_reports.unprofitable(uow, run, limit)}


def churn_report(uow: UnitOfWork, limit: int = 20) -> dict[str, Any]:
    """Churn risk: how it was decided (the purchase model's P(alive), or the gap rule when the model
    failed or disagreed, and why), counts, where it and the lifecycle stage differ, the at-risk
    customers by value."""
    run = report_run(uow)
    cv = CustomerValue
    n_model, avg_p = uow.session.execute(select(func.count(cv.p_alive), func.avg(cv.p_alive)).where(cv.run_id == run.id)).one()
    at_risk = uow.session.scalar(select(func.count()).where(cv.run_id == run.id, cv.churn_risk.is_(True)))
    cols = (cv.p_alive, cv.lifecycle, cv.recency_days, cv.monetary, cv.clv_probabilistic)
    churn = run.summary.get("churn", {})
    return {
        "run": _run_header(run),
        "threshold": churn.get("threshold"),
        "method": churn.get("method", "model"),
        "reason": churn.get("reason"),
        "gap_factor": churn.get("gap_factor"),
        "lifecycle_disagreement": churn.get("lifecycle_disagreement"),
        "notes": churn.get("notes", []),
        "model": (run.summary.get("models") or {}).get("purchase"),
        "models": _summary_models(run.summary.get("models")),
        "with_model": n_model, "avg_p_alive": _clean(avg_p), "at_risk": at_risk,
        "lifecycle": run.summary.get("lifecycle"),
        "customers": _customer_rows(uow, run, cols, cv.churn_risk.is_(True), order=[cv.monetary.desc()], limit=limit),
        "warnings": run.summary.get("warnings", []),
    }


LOYALTY_COLUMNS = tuple(f"loyalty_{k}" for k in analytics.LOYALTY_COMPONENTS)


def loyalty_contributions(row: Mapping[str, Any], weights: Mapping[str, float]) -> dict[str, float | None]:
    """Points each component adds to a customer's index (weights renormalised over available parts)."""
    parts = {k: row.get(f"loyalty_{k}") for k in analytics.LOYALTY_COMPONENTS}
    total = sum(weights.get(k, 0.0) for k, p in parts.items() if p is not None)
    return {k: (None if p is None or total <= 0 else 100.0 * weights.get(k, 0.0) * p / total) for k, p in parts.items()}


def loyalty_report(uow: UnitOfWork, limit: int = 20) -> dict[str, Any]:
    """Distribution of the loyalty index and the most loyal customers with their index's parts."""
    run = report_run(uow)
    settings = ValueSettings.model_validate(run.settings)
    cv = CustomerValue
    bucket = case((cv.loyalty < 20, 0), (cv.loyalty < 40, 1), (cv.loyalty < 60, 2), (cv.loyalty < 80, 3), else_=4)
    counts: dict[int, int] = dict(uow.session.execute(select(bucket, func.count()).where(cv.run_id == run.id, cv.loyalty.is_not(None))
                                      .group_by(bucket)).all())
    histogram = {f"{20 * i}-{20 * (i + 1)}": int(counts.get(i, 0)) for i in range(5)}
    n, mean = uow.session.execute(select(func.count(cv.loyalty), func.avg(cv.loyalty)).where(cv.run_id == run.id)).one()
    cols = (cv.loyalty, cv.loyalty_coverage, *(getattr(cv, c) for c in LOYALTY_COLUMNS))
    top = _customer_rows(uow, run, cols, cv.loyalty.is_not(None), order=[cv.loyalty.desc()], limit=limit)
    for r in top:
        r["contributions"] = loyalty_contributions(r, settings.loyalty_weights)
    return {"run": _run_header(run), "weights": settings.loyalty_weights, "factors": run.summary.get("loyalty"),
            "customers_with_index": n,
            "mean": _clean(mean), "histogram": histogram, "top": top}


def clv_report(uow: UnitOfWork, limit: int = 20, by: str = "probabilistic", plot: Path | None = None) -> dict[str, Any]:
    """Both CLVs: totals, means, the settings and models behind them, the top customers; optional PNG
    of the distribution of the ``by`` CLV. When the run has no probabilistic CLV (its purchase model
    failed or was not trusted), the top customers are listed by the deterministic one and ``note``
    says so, instead of an empty list."""
    if by not in ("probabilistic", "deterministic"):
        raise InvalidInput(f"invalid input: by: must be 'probabilistic' or 'deterministic', got {by!r}")
    if plot is not None:
        plots.check_path(plot)
    run = report_run(uow)
    settings = ValueSettings.model_validate(run.settings)
    cv = CustomerValue
    col = cv.clv_probabilistic if by == "probabilistic" else cv.clv_deterministic
    row = uow.session.execute(select(func.count(cv.clv_deterministic), func.sum(cv.clv_deterministic),
                                     func.avg(cv.clv_deterministic), func.count(cv.clv_probabilistic),
                                     func.sum(cv.clv_probabilistic), func.avg(cv.clv_probabilistic))
                              .where(cv.run_id == run.id)).one()
    cols = (cv.clv_probabilistic, cv.clv_deterministic, cv.expected_purchases, cv.p_alive, cv.tier)
    note = None
    if by == "probabilistic" and not row[3] and row[0]:
        by, col = "deterministic", cv.clv_deterministic
        note = "no probabilistic CLV in this run (see the warnings): customers listed by deterministic CLV"
    out = {
        "run": _run_header(run),
        "settings": money_fields({k: getattr(settings, k) for k in (
            "margin", "discount_rate", "horizon_months", "retention", "acquisition_cost", "time_unit", "model")}),
        "models": _summary_models(run.summary.get("models")),
        "deterministic": {"customers": row[0], "total": money(row[1]), "mean": money(row[2])},
        "probabilistic": {"customers": row[3], "total": money(row[4]), "mean": money(row[5]),
                          "basis": (run.summary.get("clv") or {}).get("probabilistic_basis")},
        "by": by,
        "note": note,
        "top": _customer_rows(uow, run, cols, col.is_not(None), order=[col.desc()], limit=limit),
        "warnings": run.summary.get("warnings", []),
        "plot": None,
    }
    if plot is not None:
        values = np.array(uow.session.scalars(select(col).where(cv.run_id == run.id, col.is_not(None))).all(), dtype=np.float64)
        if values.size == 0:
            raise InvalidInput(f"the latest run has no {by} CLV to plot")
        out["plot"] = str(plots.plot_clv(values, plot, title=f"{by.capitalize()} CLV, {run.as_of}", label=f"{by} CLV"))
    return out


def customer_value(uow: UnitOfWork, customer_id: int) -> dict[str, Any]:
    """A customer's row of the latest snapshot, the loyalty parts, and its history over all runs."""
    customer = uow.customers.visible(customer_id)
    run = latest_run(uow)
    settings = ValueSettings.model_validate(run.settings)
    row = uow.session.get(CustomerValue, (run.id, customer.id))
    history = [
        {"as_of": a.isoformat(), "tier": t, "segment": s, "monetary": money(m), "clv_probabilistic": money(c),
         "lifecycle": lc}
        for a, t, s, m, c, lc in uow.session.execute(
            select(ValueRun.as_of, CustomerValue.tier, CustomerValue.segment, CustomerValue.monetary,
                   CustomerValue.clv_probabilistic, CustomerValue.lifecycle)
            .join(ValueRun, ValueRun.id == CustomerValue.run_id)
            .where(CustomerValue.customer_id == customer.id).order_by(ValueRun.as_of))
    ]
    values = None if row is None else {k: _clean(v) for k, v in CustomerValueRead.model_validate(row).model_dump().items()}
    return {
        "customer": {"id": customer.id, "name": customer.name, "external_ref": customer.external_ref,
                     "lifecycle_stage": customer.lifecycle_stage.value},
        "run": _run_header(run),
        "values": values,
        "loyalty_contributions": None if values is None else loyalty_contributions(values, settings.loyalty_weights),
        "history": history,
    }


# =============================================================================================
# Targeting (for the marketing plugin), the 360° view and merges
# =============================================================================================

def select_customers(
    uow: UnitOfWork,
    *,
    tiers: Iterable[str] | None = None,
    segments: Iterable[str] | None = None,
    lifecycle: Iterable[str] | None = None,
    dependency: Iterable[str] | None = None,
    min_clv: float | None = None,
    clv: str = "probabilistic",
    max_p_alive: float | None = None,
    churn_risk: bool | None = None,
    min_loyalty: float | None = None,
) -> list[int]:
    """Ids of the (non-archived) customers of the latest snapshot that match every given filter.

    ``tiers``/``segments``/``lifecycle``/``dependency`` accept any of the listed values;
    ``min_clv`` applies to the ``clv`` kind ("probabilistic" or "deterministic"); customers
    whose value is unknown (NULL) never match a numeric filter. One query, sorted by id.

    >>> ids = select_customers(uow, tiers=["vip", "key"], max_p_alive=0.5)  # valuable, slipping away
    """
    run = latest_run(uow)
    settings = ValueSettings.model_validate(run.settings)
    cv = CustomerValue
    where: list[Any] = [cv.run_id == run.id, Customer.archived.is_(False)]
    known = {
        "tiers": (tiers, cv.tier, settings.tier_order()),
        "segments": (segments, cv.segment, settings.segment_names()),
        "lifecycle": (lifecycle, cv.lifecycle, analytics.LIFECYCLE_STAGES),
        "dependency": (dependency, cv.dependency, analytics.DEPENDENCY_LEVELS),
    }
    for name, (values, column, allowed) in known.items():
        if values is None:
            continue
        wanted = [values] if isinstance(values, str) else list(values)
        bad = [v for v in wanted if v not in allowed]
        if bad:
            raise InvalidInput(f"invalid input: {name}: unknown {bad}; known: {', '.join(allowed)}", [(name, "unknown value")])
        where.append(column.in_(wanted))
    if clv not in ("probabilistic", "deterministic"):
        raise InvalidInput(f"invalid input: clv: must be 'probabilistic' or 'deterministic', got {clv!r}")
    if min_clv is not None:
        where.append((cv.clv_probabilistic if clv == "probabilistic" else cv.clv_deterministic) >= float(min_clv))
    if max_p_alive is not None:
        where.append(cv.p_alive <= float(max_p_alive))
    if churn_risk is not None:
        where.append(cv.churn_risk.is_(bool(churn_risk)))
    if min_loyalty is not None:
        where.append(cv.loyalty >= float(min_loyalty))
    stmt = (select(cv.customer_id).join(Customer, Customer.id == cv.customer_id).where(*where)
            .order_by(cv.customer_id))
    return list(uow.session.scalars(stmt))


__all__ = [
    "CORE_STAGE",
    "ModelFit",
    "NoRunYet",
    "RFTInput",
    "RunOutcome",
    "ValuePart",
    "analyse_value",
    "churn_report",
    "clv_report",
    "customer_value",
    "dependency_report",
    "fit_models",
    "fit_rft",
    "latest_run",
    "list_runs",
    "loyalty_report",
    "merge_customer_rows",
    "model_estimates",
    "pareto_report",
    "profile_section",
    "pyramid_report",
    "rfm_report",
    "rft_input",
    "run_analysis",
    "select_customers",
    "settings_for",
    "unprofitable_report",
    "validate_models",
]
