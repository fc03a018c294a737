"""``crm value run``: every analysis for every customer, in one pass, stored as a dated snapshot.

Everything works on whole arrays: :mod:`loaders` reads the base in one aggregate pass,
:mod:`analytics`, :mod:`estimates` (models, churn, CLV) compute in NumPy, and the snapshot is
written with ``COPY`` (PostgreSQL) or one ``executemany`` (SQLite). The run takes the caller's
unit of work, so it is one transaction: if anything fails, no partial snapshot and no lifecycle
change is left behind. (Split from :mod:`services`, which re-exports these names.)
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import String, case, func, select, type_coerce, update
from sqlalchemy.orm import Session

from crm_value_analysis import analytics, clv_models, estimates, loaders, snapshot_store
from crm_value_analysis.churn import lifecycle_check
from crm_value_analysis.loyalty_inputs import factor_report, loyalty_inputs
from crm_value_analysis.models import CustomerValue, ValueRun
from crm_value_analysis.money import money
from crm_value_analysis.profit import ProfitPart, choose_basis, profit_part
from crm_value_analysis.schemas import (
    CONFIG_TABLE,
    DATE_RANGE,
    INACTIVE_TIER,
    RunRead,
    ValueSettings,
    apply_overrides,
    load_settings,
)
from crmcore.db.types import utcnow
from crmcore.enums import LifecycleStage
from crmcore.errors import InvalidInput
from crmcore.models import Account, Customer
from crmcore.uow import UnitOfWork

FloatArray = NDArray[np.float64]
PARETO_POINTS = 100
TOP_SHARES = (0.01, 0.05, 0.10, 0.20, 0.50)
INSERT_CHUNK = snapshot_store.INSERT_CHUNK  # (re-exported by services)

#: Lifecycle stage of the analysis -> the core's customer stage (customers without purchases keep theirs).
CORE_STAGE: dict[str, LifecycleStage] = {
    "exploration": LifecycleStage.ACTIVE,
    "formation": LifecycleStage.ACTIVE,
    "stability": LifecycleStage.ACTIVE,
    "decline": LifecycleStage.AT_RISK,
    "churned": LifecycleStage.CHURNED,
}



def settings_for(uow: UnitOfWork, overrides: Mapping[str, Any] | None = None) -> ValueSettings:
    """The settings of this CRM (crm.toml ``[value_analysis]`` and the environment, validated when
    the CRM opened) with ``overrides`` applied."""
    loaded = uow.crm.plugin_settings.loaded.get(CONFIG_TABLE)
    base = loaded.values if loaded is not None else load_settings(uow.crm.config)
    return apply_overrides(base, overrides)  # type: ignore[arg-type]


def today() -> dt.date:
    return utcnow().date()


# =============================================================================================
# RFM, pyramid, Pareto, dependency: the "value" part, over the analysis window
# =============================================================================================

@dataclass(frozen=True)
class ValuePart:
    """Value analyses of the whole base, aligned with ``ids``."""

    ids: NDArray[np.int64]
    aggregates: loaders.ValueAggregates
    recency_days: FloatArray
    scores: analytics.RFMScores
    segments: NDArray[np.str_]
    tiers: NDArray[np.str_]
    pareto: analytics.ParetoCurve | None
    dependency: analytics.DependencyLevels
    basis: str = "revenue"

    @property
    def purchasers(self) -> NDArray[np.bool_]:
        return self.aggregates.frequency > 0

    @property
    def n_purchasers(self) -> int:
        return int(self.purchasers.sum())


def analyse_value(session: Session, ids: NDArray[np.int64], settings: ValueSettings, as_of: dt.date,
                  aggregates: loaders.ValueAggregates | None = None, profit: FloatArray | None = None) -> ValuePart:
    """RFM scores and segments, value-pyramid tiers, the Pareto curve and key-account dependency.

    One GROUP BY over the window's transactions, then NumPy. Tiers and the Pareto curve are
    computed among customers with purchases in the window (a dormant base would otherwise
    dilute "the top 1%"); customers without purchases get the tier ``inactive``.
    Dependency shares are of the whole base's net revenue -- or, given ``profit`` (per customer),
    tiers, Pareto and dependency rank by profit instead (Pareto counts a loss as 0).
    """
    agg = aggregates if aggregates is not None else loaders.value_aggregates(
        session, ids, settings, loaders.Period.up_to(as_of, settings.window_days))
    recency = loaders.day_of(as_of) - agg.last_day
    scores = analytics.rfm_scores(recency, agg.frequency, agg.monetary)
    segments = analytics.rfm_segments(scores.r, scores.f, scores.m, settings.segment_rules())
    buyers = agg.frequency > 0
    ranked = agg.monetary if profit is None else profit
    tiers = np.full(ids.size, INACTIVE_TIER, dtype=f"<U{max(len(t) for t in settings.tier_order())}")
    pareto = None
    if buyers.any():
        tiers[buyers] = analytics.pyramid_tiers(ranked[buyers], cutoffs=list(settings.pyramid.items()))
        pareto = analytics.pareto_curve(ranked[buyers], points=PARETO_POINTS)
    dep = settings.dependency
    dependency = analytics.dependency_levels(ranked, key=dep.key, critical=dep.critical, mono=dep.mono)
    return ValuePart(ids=ids, aggregates=agg, recency_days=recency, scores=scores, segments=segments, tiers=tiers,
                     pareto=pareto, dependency=dependency, basis="revenue" if profit is None else "profit")


@dataclass(frozen=True)
class RunOutcome:
    run: RunRead
    summary: dict[str, Any]
    lifecycle_updated: int


def _shares(curve: analytics.ParetoCurve | None) -> dict[str, float] | None:
    if curve is None:
        return None
    return {f"{f:.0%}": curve.share_at(f) for f in TOP_SHARES}


def _counts(labels: NDArray[Any], order: Iterable[str]) -> dict[str, int]:
    names, counts = np.unique(labels, return_counts=True)
    found = dict(zip(names.tolist(), counts.tolist()))
    out = {k: int(found.pop(k, 0)) for k in order}
    out.update({k: int(v) for k, v in found.items()})
    return out


def _previous_run(session: Session, as_of: dt.date) -> ValueRun | None:
    return session.scalar(select(ValueRun).where(ValueRun.as_of < as_of).order_by(ValueRun.as_of.desc()).limit(1))


def _run_rows(session: Session, run_id: int) -> tuple[NDArray[np.int64], NDArray[np.str_], NDArray[np.str_]]:
    rows = loaders.fetch_rows(session, select(CustomerValue.customer_id, CustomerValue.tier, CustomerValue.segment)
                              .where(CustomerValue.run_id == run_id).order_by(CustomerValue.customer_id))
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return ids, np.array([r[1] for r in rows], dtype=np.str_), np.array([r[2] for r in rows], dtype=np.str_)


def _update_lifecycle(uow: UnitOfWork, run_id: int) -> int:
    """The core's lifecycle stage from this snapshot: ONE ``UPDATE customers ... FROM`` the stored rows.

    Only customers with purchases whose stage changes are touched (version bumped), like the
    core's ``set_lifecycle_stages``: one audit entry and one ``crm_customers_batch`` event.
    """
    uow.require("customer.write")
    cv = CustomerValue
    new_stage = type_coerce(case({k: v.value for k, v in CORE_STAGE.items()}, value=cv.lifecycle), String)
    stmt = (update(Customer)
            .where(cv.run_id == run_id, cv.customer_id == Customer.id, cv.lifecycle.in_(list(CORE_STAGE)),
                   Customer.archived.is_(False), type_coerce(Customer.lifecycle_stage, String) != new_stage)
            .values(lifecycle_stage=new_stage, version=Customer.version + 1, updated_at=utcnow())
            .returning(Customer.id, Customer.lifecycle_stage))
    changed = uow.session.execute(stmt, execution_options={"synchronize_session": False}).all()
    if changed:
        uow.session.expire_all()
        by_stage: dict[str, int] = {}
        for _, stage in changed:
            key = getattr(stage, "value", stage)
            by_stage[key] = by_stage.get(key, 0) + 1
        uow.audit.record("lifecycle", "customer", None, after={"customers": len(changed), "by_stage": by_stage})
        uow.hooks.customers_batch(uow, [], sorted(int(c) for c, _ in changed))
    return len(changed)


def resolve_currency(session: Session, settings: ValueSettings) -> tuple[ValueSettings, str | None]:
    """Never add currencies together: the configured currency, the only one in use, or the majority.

    With accounts in several currencies and none chosen (``--currency`` / ``currency`` in
    crm.toml), the analysis keeps the currency most accounts are kept in and says so (the
    returned warning names what was left out). Transactions always carry their account's currency.
    """
    if settings.currency:
        return settings, None
    rows = session.execute(select(Account.currency, func.count()).group_by(Account.currency)
                           .order_by(func.count().desc(), Account.currency)).all()
    if len(rows) <= 1:
        return settings, None
    major = rows[0][0]
    others = ", ".join(f"{c} ({k:,} accounts)" for c, k in rows[1:])
    warning = (f"accounts are kept in several currencies; analysed {major} only ({rows[0][1]:,} accounts), "
               f"left out {others}; choose one with --currency")
    return settings.model_copy(update={"currency": major}), warning


# =============================================================================================
# The run, step by step
# =============================================================================================

class _Clock:
    """Seconds per step of the run (reported in the summary's ``timings``)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self._t, 4)
        self._t = now


@dataclass
class _History:
    """The lifecycle, loyalty and deterministic-CLV columns of the run, aligned with the ids."""

    first_ago: FloatArray
    spend_trend: FloatArray
    freq_trend: FloatArray
    lifecycle: NDArray[np.str_]
    loyalty: FloatArray
    coverage: FloatArray
    loyalty_parts: dict[str, FloatArray]
    clv_det: FloatArray


def _history_part(hist: loaders.PurchaseHistory, categories: FloatArray, satisfaction: FloatArray,
                  p_alive: FloatArray, settings: ValueSettings, margin_rate: FloatArray | None = None,
                  monthly_cost: FloatArray | float = 0.0, extra: dict[str, FloatArray] | None = None) -> _History:
    """Lifecycle stages, the loyalty index and the deterministic CLV from the purchase history
    (CLV: the customer's own margin rate and cost to serve per month when given)."""
    n = hist.ids.size
    buyers = hist.has_purchase
    cut, w = hist.cut_day, settings.trend_days
    first_ago = np.where(buyers, cut - hist.first_day, np.nan)
    last_ago = np.where(buyers, cut - hist.last_day, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        spend_trend = np.where(buyers & (hist.net_prev > 0), (hist.net_last - hist.net_prev) / hist.net_prev, np.nan)
        both = hist.days_last + hist.days_prev
        freq_trend = np.where(buyers & (hist.first_day <= cut - w) & (both > 0),
                              (hist.days_last - hist.days_prev) / both, np.nan)
        years = np.maximum(first_ago + 1.0, 365.0) / 365.0
    lifecycle = analytics.lifecycle_stages(first_ago, last_ago, hist.purchase_days, spend_trend, p_alive=p_alive,
                                           **settings.lifecycle.rule_kwargs())
    parts = {k: np.full(n, np.nan) for k in analytics.LOYALTY_COMPONENTS}
    loyalty, coverage = np.full(n, np.nan), np.full(n, np.nan)
    clv_det = np.full(n, np.nan)
    if buyers.any():
        components = {"duration": first_ago[buyers], "frequency": (hist.purchase_days / years)[buyers],
                      "frequency_trend": freq_trend[buyers], "spend": (hist.net / years)[buyers],
                      "cross_buying": categories[buyers], "satisfaction": satisfaction[buyers],
                      **{k: v[buyers] for k, v in (extra or {}).items()}}
        li = analytics.loyalty_index(components, settings.loyalty_weights)
        loyalty[buyers], coverage[buyers] = li.index, li.coverage
        for j, name in enumerate(li.components):
            parts[name][buyers] = li.parts[:, j]
        # deterministic CLV: the run-rate of the last trend window, as monthly margin
        rate = settings.margin if margin_rate is None else margin_rate
        monthly_margin = np.maximum(hist.net_last, 0.0) * (365.25 / w) / 12.0 * rate
        cost = np.broadcast_to(np.asarray(monthly_cost, dtype=np.float64), (n,))
        clv_det[buyers] = clv_models.deterministic_clv(
            monthly_margin[buyers], cost[buyers], retention=(settings.retention if settings.retention is not None else ASSUMED_RETENTION) ** (1.0 / 12.0),
            discount_rate=settings.monthly_discount_rate, horizon=settings.horizon_months,
            acquisition_cost=settings.acquisition_cost)
    return _History(first_ago, spend_trend, freq_trend, lifecycle, loyalty, coverage, parts, clv_det)


def _moved(ids: NDArray[np.int64], moved_ids: NDArray[Any], revenue: FloatArray, profit: FloatArray) -> dict[str, str]:
    """Revenue and profit (this run's) of the customers that moved, as decimal strings."""
    pos, found = loaders._align(ids, np.asarray(moved_ids, dtype=np.int64))
    at = pos[found]
    return {"revenue": _money_text(float(revenue[at].sum())) or "0.00", "profit": _money_text(float(profit[at].sum())) or "0.00"}


def _migration(tm: analytics.TierMoves, ids: NDArray[np.int64], value: ValuePart, pp: ProfitPart) -> dict[str, Any]:
    """Net upward migration: (up - down) / customers in both snapshots, with the revenue and profit that moved."""
    both = tm.up.size + tm.down.size + tm.unchanged
    rev = value.aggregates.monetary
    return {"net_upward_rate": (tm.up.size - tm.down.size) / both if both else None,
            "up": _moved(ids, tm.up, rev, pp.profit), "down": _moved(ids, tm.down, rev, pp.profit)}


def _compare_previous(session: Session, ids: NDArray[np.int64], value: ValuePart, settings: ValueSettings,
                      as_of: dt.date, pp: ProfitPart) -> tuple[NDArray[Any], NDArray[Any], dict[str, Any] | None]:
    """Each customer's tier and segment in the previous snapshot, and the tier moves since."""
    n = ids.size
    prev_tier = np.full(n, None, dtype=object)
    prev_segment = np.full(n, None, dtype=object)
    previous = _previous_run(session, as_of)
    if previous is None:
        return prev_tier, prev_segment, None
    p_ids, p_tiers, p_segments = _run_rows(session, previous.id)
    pos, found = loaders._align(ids, p_ids) if p_ids.size else (np.zeros(0, np.int64), np.zeros(0, bool))
    prev_tier[pos[found]] = p_tiers[found]
    prev_segment[pos[found]] = p_segments[found]
    order = tuple(dict.fromkeys([*settings.tier_order(), *np.unique(p_tiers).tolist()]))
    tm = analytics.tier_moves(p_ids, p_tiers, ids, value.tiers, order)
    moves = {"previous_as_of": previous.as_of.isoformat(), "up": int(tm.up.size), "down": int(tm.down.size),
             "new": int(tm.new.size), "gone": int(tm.gone.size), "unchanged": tm.unchanged,
             "transitions": {a: {b: int(tm.transitions[i, j]) for j, b in enumerate(tm.order)
                                 if tm.transitions[i, j]} for i, a in enumerate(tm.order)},
             "migration": _migration(tm, ids, value, pp)}
    return prev_tier, prev_segment, moves


def _summary(as_of: dt.date, settings: ValueSettings, value: ValuePart, hp: _History, est: estimates.Estimates,
             moves: dict[str, Any] | None, warnings: list[str], pp: ProfitPart) -> dict[str, Any]:
    """The base-wide results stored with the run (JSON; amounts as decimal strings)."""
    churn = est.churn_summary(settings.churn_threshold)
    counts, notes = lifecycle_check(hp.lifecycle, est.decision.at_risk, settings.lifecycle.churn_after_days,
                                    settings.churn_gap_factor, est.decision.method)
    churn["lifecycle_disagreement"] = counts
    churn["notes"] = notes
    prob = est.clv_probabilistic
    return {
        "as_of": as_of.isoformat(),
        "window_days": settings.window_days,
        "value_basis": value.basis,
        "profit": pp.summary(value.basis),
        "pareto": None if value.pareto is None else {"basis": value.basis,
            "gini": value.pareto.gini, "top_shares": _shares(value.pareto), "n_customers": value.pareto.n_customers,
            "curve": [round(float(v), 6) for v in value.pareto.value_share]},
        "tiers": _counts(value.tiers, settings.tier_order()),
        "segments": _counts(value.segments, settings.segment_names()),
        "dependency": _counts(value.dependency.levels, analytics.DEPENDENCY_LEVELS),
        "lifecycle": _counts(hp.lifecycle, analytics.LIFECYCLE_STAGES),
        "loyalty": factor_report(settings.loyalty_weights, hp.loyalty_parts, np.isfinite(hp.loyalty)),
        "moves": moves,
        "models": _json_money(est.models_summary()),
        "churn": churn,
        "clv": {"deterministic_total": _money_text(np.nansum(hp.clv_det)),
                "probabilistic_total": _money_text(np.nansum(prob)) if np.isfinite(prob).any() else None,
                "probabilistic_basis": ("gamma_gamma" if est.fit.gamma_gamma is not None
                                        else "own_average_spend" if np.isfinite(prob).any() else None)},
        "warnings": [*warnings, *est.fit.warnings],
        "currency": settings.currency,
    }


def _money_text(value: Any) -> str | None:
    m = money(value)
    return None if m is None else str(m)


def _json_money(models: dict[str, Any]) -> dict[str, Any]:
    gg = models.get("gamma_gamma")
    if gg and gg.get("mean_spend") is not None:
        models["gamma_gamma"] = {**gg, "mean_spend": _money_text(gg["mean_spend"])}
    return models


def _columns(run_id: int, ids: NDArray[np.int64], value: ValuePart, hist: loaders.PurchaseHistory,
             categories: FloatArray, satisfaction: FloatArray, hp: _History, est: estimates.Estimates,
             prev_tier: NDArray[Any], prev_segment: NDArray[Any], pp: ProfitPart) -> dict[str, NDArray[Any]]:
    """The snapshot's columns, one array each."""
    agg = value.aggregates
    return {
        "run_id": np.full(ids.size, run_id, dtype=np.int64),
        "customer_id": ids,
        "recency_days": value.recency_days,
        "frequency": agg.frequency,
        "monetary": agg.monetary,
        "r_score": value.scores.r, "f_score": value.scores.f, "m_score": value.scores.m,
        "segment": value.segments, "previous_segment": prev_segment,
        "tier": value.tiers, "previous_tier": prev_tier,
        "revenue_share": value.dependency.share, "dependency": value.dependency.levels,
        "gross_margin": pp.gross_margin, "cost_to_serve": pp.cost_to_serve, "profit": pp.profit,
        "first_purchase_days": hp.first_ago,
        "purchase_days": hist.purchase_days,
        "spend_trend": hp.spend_trend, "frequency_trend": hp.freq_trend,
        "categories": categories,
        "satisfaction": satisfaction,
        "lifecycle": hp.lifecycle,
        "p_alive": est.p_alive,
        "churn_risk": est.decision.at_risk,
        "expected_purchases": est.expected_purchases,
        "clv_deterministic": hp.clv_det, "clv_probabilistic": est.clv_probabilistic,
        "loyalty": hp.loyalty, "loyalty_coverage": hp.coverage,
        **{f"loyalty_{k}": v for k, v in hp.loyalty_parts.items()},
    }


def _read(uow: UnitOfWork, settings: ValueSettings, as_of: dt.date) -> tuple[Any, ...]:
    """Ids, settings (currency resolved), the one-pass statistics, satisfaction and the value part."""
    session = uow.session
    ids = loaders.customer_ids(session)
    if ids.size == 0:
        raise InvalidInput("no customers to analyse")
    settings, currency_warning = resolve_currency(session, settings)
    stats = loaders.customer_stats(session, ids, settings, as_of)
    satisfaction = loaders.satisfaction_means(session, ids, as_of)
    return ids, settings, currency_warning, stats, satisfaction


def _clv_rates(hist: loaders.PurchaseHistory, agg: loaders.ValueAggregates, pp: ProfitPart,
               settings: ValueSettings) -> tuple[FloatArray, FloatArray]:
    """Each customer's margin rate (gross margin / revenue in the window; the setting when no
    revenue) and cost to serve per month (over the window, or the customer's own history)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(agg.monetary > 0, pp.gross_margin / agg.monetary, settings.margin)
    days = np.full(hist.ids.size, float(settings.window_days or 0))
    if not settings.window_days:
        days = np.where(hist.has_purchase, hist.cut_day - hist.first_day + 1.0, 1.0)
    months = np.maximum(days, 30.4375) / 30.4375
    return np.clip(rate, 0.0, 1.0), pp.cost_to_serve / months


#: Annual retention of the deterministic CLV until there is history to observe it.
ASSUMED_RETENTION = 0.80


def _resolve_retention(settings: ValueSettings, hist: loaders.PurchaseHistory) -> tuple[ValueSettings, dict[str, Any]]:
    """The retention of the deterministic CLV: the setting when given, else the observed one --
    of the customers who bought in the previous trend window, the share who bought in the last
    one, per year (``crm value retention`` has it per cohort) --, else :data:`ASSUMED_RETENTION`.
    From the run's one-pass statistics: no extra scan of the entries."""
    if settings.retention is not None:
        return settings, {"rate": settings.retention, "source": "setting"}
    before = hist.has_purchase & (hist.days_prev > 0)
    if not before.any():
        return settings.model_copy(update={"retention": ASSUMED_RETENTION}), {"rate": ASSUMED_RETENTION, "source": "assumed"}
    kept = float((before & (hist.days_last > 0)).sum()) / float(before.sum())
    rate = kept ** (365.0 / settings.trend_days)
    return settings.model_copy(update={"retention": rate}), {"rate": rate, "source": "observed",
                                                              "customers": int(before.sum())}


def _loyalty_extra(uow: UnitOfWork, hist: loaders.PurchaseHistory, settings: ValueSettings, as_of: dt.date,
                   satisfaction: FloatArray) -> dict[str, FloatArray]:
    """Share of wallet, referrals, price sensitivity, voluntariness and survey satisfaction (see :mod:`loyalty_inputs`)."""
    years = np.maximum(hist.cut_day - hist.first_day + 1.0, 365.0) / 365.0
    spend_per_year = np.where(hist.has_purchase, hist.net / years, np.nan)
    return loyalty_inputs(uow, hist.ids, settings, loaders.Period.up_to(as_of, settings.window_days), spend_per_year,
                          satisfaction)


def _check_purchasers(session: Session, value: ValuePart, settings: ValueSettings, as_of: dt.date) -> None:
    if value.n_purchasers:
        return
    span = loaders.purchase_span(session, settings)
    if span is None:
        raise InvalidInput("no purchases to analyse: post invoices first")
    window = f"the {settings.window_days}-day window ending {as_of}" if settings.window_days else f"or before {as_of}"
    raise InvalidInput(f"no purchases on {window} (purchases run from {span[0]} to {span[1]}); choose another --as-of")


def _run_row(uow: UnitOfWork, as_of: dt.date, ids: NDArray[np.int64], value: ValuePart, settings: ValueSettings,
             summary: dict[str, Any]) -> tuple[ValueRun, bool]:
    """The run's row: the stored one of this date, updated (its snapshot is replaced), or a new one."""
    session = uow.session
    fields = {"created_at": utcnow(), "created_by": uow.actor[:64], "n_customers": int(ids.size),
              "n_purchasers": value.n_purchasers, "total_revenue": float(value.aggregates.monetary.sum()),
              "settings": settings.model_dump(mode="json"), "summary": summary}
    run = session.scalar(select(ValueRun).where(ValueRun.as_of == as_of))
    replacing = run is not None
    if run is None:
        run = ValueRun(as_of=as_of, **fields)
        session.add(run)
    else:
        for key, val in fields.items():
            setattr(run, key, val)
    session.flush()
    return run, replacing


def run_analysis(uow: UnitOfWork, *, as_of: dt.date | None = None, settings: ValueSettings | None = None) -> RunOutcome:
    """Compute every analysis for every customer and store the snapshot dated ``as_of`` (default today).

    A snapshot for the same date is replaced: the run keeps its id and rewrites only the rows
    that changed (:mod:`snapshot_store`), and reuses its fit if made from the same inputs
    (:mod:`fit_cache`). Tier and segment moves are taken against the
    latest earlier snapshot. When this is the latest snapshot, the core's lifecycle stage of
    each customer with purchases is updated (one UPDATE ... FROM the stored snapshot).
    """
    settings = settings_for(uow) if settings is None else settings
    as_of = today() if as_of is None else as_of
    if not DATE_RANGE[0] <= as_of <= DATE_RANGE[1]:
        raise InvalidInput(f"invalid input: as_of: {as_of} is outside {DATE_RANGE[0]}..{DATE_RANGE[1]}", [("as_of", "out of range")])
    session, clock = uow.session, _Clock()
    ids, settings, currency_warning, stats, satisfaction = _read(uow, settings, as_of)
    hist, categories = stats.history, stats.categories
    clock.lap("read")
    pp = profit_part(uow, ids, settings, loaders.Period.up_to(as_of, settings.window_days), stats.value.monetary)
    basis = choose_basis(settings, pp)
    value = analyse_value(session, ids, settings, as_of, aggregates=stats.value,
                          profit=pp.profit if basis == "profit" else None)
    _check_purchasers(session, value, settings, as_of)
    clock.lap("value")
    stored = session.scalar(select(ValueRun).where(ValueRun.as_of == as_of))  # this date's run, to be replaced
    est = estimates.estimate(hist, settings, cached=None if stored is None else stored.model_cache)
    settings = est.settings  # the time unit as chosen from the data
    clock.lap("models")
    extra = _loyalty_extra(uow, hist, settings, as_of, satisfaction)
    settings, retention = _resolve_retention(settings, hist)
    hp = _history_part(hist, categories, satisfaction, est.p_alive, settings, *_clv_rates(hist, stats.value, pp, settings),
                       extra=extra)
    clock.lap("lifecycle_loyalty_clv")
    prev_tier, prev_segment, moves = _compare_previous(session, ids, value, settings, as_of, pp)
    clock.lap("previous")
    summary = _summary(as_of, settings, value, hp, est, moves, [currency_warning] if currency_warning else [], pp)
    summary["clv"]["retention"] = retention
    run, replacing = _run_row(uow, as_of, ids, value, settings, summary)
    run.model_cache = est.fit_blob
    written = snapshot_store.store(session, run, _columns(run.id, ids, value, hist, categories, satisfaction, hp, est,
                                                          prev_tier, prev_segment, pp), ids.size, replacing=replacing)
    clock.lap("store")
    updated = 0
    is_latest = session.scalar(select(func.count()).select_from(ValueRun).where(ValueRun.as_of > as_of)) == 0
    if settings.lifecycle.update_core and is_latest:
        updated = _update_lifecycle(uow, run.id)
    clock.lap("lifecycle_update")
    run.summary = {**summary, "timings": clock.timings, "lifecycle_updated": updated, "rows_written": written}
    session.flush()
    return RunOutcome(run=RunRead.model_validate(run), summary=run.summary, lifecycle_updated=updated)


__all__ = [
    "CORE_STAGE", "RunOutcome", "ValuePart", "analyse_value", "resolve_currency", "run_analysis", "settings_for",
    "today",
]
