"""The plugin's service layer: run the analyses, store snapshots, report, fit and validate models.

Everything works on whole arrays: :mod:`loaders` reads the base in one aggregate pass,
:mod:`analytics`, :mod:`clv_models` and :mod:`purchase_models` compute in NumPy, and the snapshot
is written with ``COPY`` (PostgreSQL) or one ``executemany`` (SQLite). Every function takes the caller's unit of work, so a run is one
transaction: if anything fails, no partial snapshot and no lifecycle change is left behind.

Public API (typed, for the CLI, other plugins and embedding code):

* :func:`run_analysis` -- compute everything for every customer and store a dated snapshot.
* :func:`analyse_value` -- the RFM + pyramid + Pareto + dependency part alone (no writes).
* Reports over the latest snapshot: :func:`rfm_report`, :func:`pyramid_report`,
  :func:`pareto_report`, :func:`dependency_report`, :func:`churn_report`,
  :func:`loyalty_report`, :func:`clv_report`, :func:`customer_value`, :func:`list_runs`.
* Models: :func:`fit_models`, :func:`validate_models`.
* :func:`select_customers` -- customer ids by tier, segment, CLV, churn risk... for targeting.
"""
from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Float, String, and_, case, delete, func, select, type_coerce, update
from sqlalchemy.orm import Session

from crm_value_analysis import analytics, clv_models, loaders, plots, purchase_models
from crm_value_analysis.models import CustomerValue, ValueRun
from crm_value_analysis.schemas import (
    CONFIG_TABLE,
    DATE_RANGE,
    INACTIVE_TIER,
    CustomerValueRead,
    RunRead,
    ValueSettings,
    apply_overrides,
    load_settings,
)
from crmcore.db.types import utcnow
from crmcore.enums import LifecycleStage
from crmcore.errors import CRMError, InvalidInput
from crmcore.models import Account, Customer
from crmcore.profile import ProfileSection
from crmcore.uow import UnitOfWork

FloatArray = NDArray[np.float64]
DAYS_PER_MONTH = 365.25 / 12.0
PARETO_POINTS = 100
TOP_SHARES = (0.01, 0.05, 0.10, 0.20, 0.50)
INSERT_CHUNK = 10_000

#: Lifecycle stage of the analysis -> the core's customer stage (customers without purchases keep theirs).
CORE_STAGE: dict[str, LifecycleStage] = {
    "exploration": LifecycleStage.ACTIVE,
    "formation": LifecycleStage.ACTIVE,
    "stability": LifecycleStage.ACTIVE,
    "decline": LifecycleStage.AT_RISK,
    "churned": LifecycleStage.CHURNED,
}


class NoRunYet(CRMError):
    """Reports need a stored snapshot."""

    def __init__(self) -> None:
        super().__init__("no value analysis run yet; run `crm value run` first")


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

    @property
    def purchasers(self) -> NDArray[np.bool_]:
        return self.aggregates.frequency > 0

    @property
    def n_purchasers(self) -> int:
        return int(self.purchasers.sum())


def analyse_value(session: Session, ids: NDArray[np.int64], settings: ValueSettings, as_of: dt.date,
                  aggregates: loaders.ValueAggregates | None = None) -> ValuePart:
    """RFM scores and segments, value-pyramid tiers, the Pareto curve and key-account dependency.

    One GROUP BY over the window's transactions, then NumPy. Tiers and the Pareto curve are
    computed among customers with purchases in the window (a dormant base would otherwise
    dilute "the top 1%"); customers without purchases get the tier ``inactive``.
    Dependency shares are of the whole base's net revenue.
    """
    agg = aggregates if aggregates is not None else loaders.value_aggregates(
        session, ids, settings, loaders.Period.up_to(as_of, settings.window_days))
    recency = loaders.day_of(as_of) - agg.last_day
    scores = analytics.rfm_scores(recency, agg.frequency, agg.monetary)
    segments = analytics.rfm_segments(scores.r, scores.f, scores.m, settings.segment_rules())
    buyers = agg.frequency > 0
    tiers = np.full(ids.size, INACTIVE_TIER, dtype=f"<U{max(len(t) for t in settings.tier_order())}")
    pareto = None
    if buyers.any():
        tiers[buyers] = analytics.pyramid_tiers(agg.monetary[buyers], cutoffs=list(settings.pyramid.items()))
        pareto = analytics.pareto_curve(agg.monetary[buyers], points=PARETO_POINTS)
    dep = settings.dependency
    dependency = analytics.dependency_levels(agg.monetary, key=dep.key, critical=dep.critical, mono=dep.mono)
    return ValuePart(ids=ids, aggregates=agg, recency_days=recency, scores=scores, segments=segments, tiers=tiers,
                     pareto=pareto, dependency=dependency)


# =============================================================================================
# Models on the purchase history: BG/NBD + Gamma-Gamma
# =============================================================================================

@dataclass(frozen=True)
class RFTInput:
    """BG/NBD inputs of the customers with a purchase up to the cut (``mask`` over all ids)."""

    mask: NDArray[np.bool_]
    frequency: FloatArray  # repeat purchase days
    recency: FloatArray  # last - first purchase day, in model units
    T: FloatArray  # cut - first purchase day, in model units
    monetary: FloatArray  # mean net spend of a repeat purchase day


def rft_input(hist: loaders.PurchaseHistory, unit_days: float) -> RFTInput:
    """The (x, t_x, T, m) summary of :func:`clv_models.summary_from_purchases`, from the reduced series.

    Repeat spend is scaled by the customer's net/gross ratio so credit notes net out of the
    spend the Gamma-Gamma model sees.
    """
    mask = hist.has_purchase
    first, last = hist.first_day[mask], hist.last_day[mask]
    x = (hist.purchase_days[mask] - 1).astype(np.float64)
    gross = hist.gross[mask]
    with np.errstate(invalid="ignore", divide="ignore"):
        net_ratio = np.clip(np.where(gross > 0, hist.net[mask] / gross, 0.0), 0.0, 1.0)
        repeat_spend = np.maximum(gross - hist.gross_first_day[mask], 0.0)
        monetary = np.where(x > 0, repeat_spend / np.maximum(x, 1.0), 0.0) * net_ratio
    return RFTInput(mask=mask, frequency=x, recency=(last - first) / unit_days,
                    T=(hist.cut_day - first) / unit_days, monetary=monetary)


@dataclass
class ModelFit:
    """Fitted models (None when the data cannot identify them) and why not.

    ``purchase`` is the purchase/drop-out model chosen by name (BG/NBD, MBG/NBD or Pareto/NBD),
    ``gamma_gamma`` the spend model that turns its expected purchases into CLV.
    """

    model: str = "bg_nbd"
    purchase: purchase_models.Params | None = None
    gamma_gamma: clv_models.GammaGammaParams | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def bgnbd(self) -> purchase_models.Params | None:  # the name of the first release
        return self.purchase

    def as_dict(self, time_unit: str) -> dict[str, Any]:
        """Parameters by their usual names: r, alpha, a, b (s, beta for Pareto/NBD); p, q, gamma."""
        def meta(p: Any) -> dict[str, Any]:
            return {"log_likelihood": p.log_likelihood, "n_customers": p.n_customers, "converged": p.converged}

        out: dict[str, Any] = {"time_unit": time_unit, "model": self.model, "purchase": None, "gamma_gamma": None}
        if self.purchase is not None:
            out["purchase"] = {**purchase_models.param_dict(self.purchase), **meta(self.purchase)}
        gg = self.gamma_gamma
        if gg is not None:
            out["gamma_gamma"] = {"p": gg.p, "q": gg.q, "gamma": gg.v, **meta(gg),
                                  "mean_spend": gg.p * gg.v / (gg.q - 1.0) if gg.q > 1 else None}
        return out


def fit_rft(rft: RFTInput, *, strict: bool = False, model: str = "bg_nbd") -> ModelFit:
    """Fit the purchase model ``model`` and Gamma-Gamma by maximum likelihood.

    ``strict=False`` (analysis runs): a model the data cannot identify (e.g. no repeat buyers,
    one customer) is left out with a warning and the run goes on without churn/CLV estimates.
    ``strict=True`` (``crm value fit``): that is an error for the user.
    """
    out = ModelFit(model=model)
    start = time.perf_counter()
    title = purchase_models.TITLES[model]
    for name, fit in (
        (title, lambda: purchase_models.fit(model, rft.frequency, rft.recency, rft.T)),
        ("Gamma-Gamma", lambda: clv_models.fit_gamma_gamma(rft.frequency, rft.monetary)),
    ):
        try:
            params = fit()
        except ValueError as e:
            if strict:
                raise InvalidInput(f"cannot fit the {name} model on this data: {e}") from None
            out.warnings.append(f"{name} model not fitted: {e}")
            continue
        if not params.converged and not strict:
            out.warnings.append(f"{name} fit did not converge on this data; its estimates are left out")
            continue
        if name == "Gamma-Gamma":
            out.gamma_gamma = params  # type: ignore[assignment]
        else:
            out.purchase = params  # type: ignore[assignment]
    out.seconds = time.perf_counter() - start
    return out


def _expected_spend(gg: clv_models.GammaGammaParams, x: FloatArray, m: FloatArray) -> FloatArray:
    """Gamma-Gamma expected spend; NaN where the model has no finite mean (q <= 1 and x = 0)."""
    ok = gg.p * x + gg.q - 1.0 > 0
    out = np.full(x.shape, np.nan)
    if ok.any():
        out[ok] = clv_models.gamma_gamma_expected_spend(gg, x[ok], m[ok])
    return out


def model_estimates(fit: ModelFit, rft: RFTInput, settings: ValueSettings) -> dict[str, FloatArray]:
    """P(alive), expected purchases and probabilistic CLV over the horizon (NaN: no model)."""
    n = int(rft.mask.sum())
    out = {k: np.full(n, np.nan) for k in ("p_alive", "expected_purchases", "clv_probabilistic")}
    bg, gg = fit.purchase, fit.gamma_gamma
    if bg is None or n == 0:
        return out
    x, tx, T = rft.frequency, rft.recency, rft.T
    out["p_alive"] = purchase_models.probability_alive(bg, x, tx, T)
    step = DAYS_PER_MONTH / settings.unit_days
    out["expected_purchases"] = purchase_models.expected_purchases(bg, x, tx, T, settings.horizon_months * step)
    if gg is None:
        return out
    spend = _expected_spend(gg, x, rft.monetary)
    ok = np.isfinite(spend)
    if ok.any():
        # probabilistic_clv = margin * spend * discounted purchases; pass unit spend through monetary
        # of the customers whose spend is finite.
        out["clv_probabilistic"][ok] = purchase_models.probabilistic_clv(
            bg, gg, x[ok], tx[ok], T[ok], rft.monetary[ok], horizon_periods=settings.horizon_months,
            discount_rate_per_period=settings.monthly_discount_rate, margin=settings.margin, step=step)
    return out


# =============================================================================================
# The run
# =============================================================================================

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


_NULLABLE_INT = frozenset({"recency_days", "first_purchase_days", "categories"})
_NULLABLE_BOOL = frozenset({"churn_risk"})


def _to_column(name: str, values: NDArray[Any]) -> list[Any]:
    """NumPy -> Python values for the insert; NaN becomes NULL (floats carry the nullable ints/bools)."""
    if values.dtype.kind != "f":
        return values.tolist()
    out = values.tolist()
    if name in _NULLABLE_INT:
        return [None if v != v else int(v) for v in out]
    if name in _NULLABLE_BOOL:
        return [None if v != v else bool(v) for v in out]
    return [None if v != v else v for v in out]


def _row_chunks(columns: dict[str, NDArray[Any]], n: int) -> Iterator[tuple[Any, ...]]:
    """Row tuples, converted INSERT_CHUNK rows at a time (bounded memory)."""
    names = list(columns)
    for start in range(0, n, INSERT_CHUNK):
        sl = slice(start, min(start + INSERT_CHUNK, n))
        yield from zip(*[_to_column(k, columns[k][sl]) for k in names])


#: PostgreSQL binary COPY type of each snapshot column type (as compiled for PostgreSQL)
_BINARY_TYPES = {"INTEGER": "int4", "SMALLINT": "int2", "FLOAT": "float8", "BOOLEAN": "bool"}


def _binary_types(session: Session, names: list[str]) -> list[str]:
    """The binary COPY types of the snapshot columns, read from the model (fails loudly on a new type)."""
    dialect = session.get_bind().dialect
    out = []
    for name in names:
        compiled = CustomerValue.__table__.c[name].type.compile(dialect=dialect)
        kind = "varchar" if compiled.startswith("VARCHAR") else _BINARY_TYPES.get(compiled)
        if kind is None:
            raise TypeError(f"no binary COPY type for {CustomerValue.__tablename__}.{name} ({compiled})")
        out.append(kind)
    return out


def _insert_rows(session: Session, columns: dict[str, NDArray[Any]], n: int) -> None:
    """The snapshot rows: binary ``COPY`` on PostgreSQL, one ``executemany`` of plain tuples on SQLite.

    Both go through the session's DBAPI connection, so they belong to the run's transaction.
    Binary, because PostgreSQL parses 3.8 million text floats of a 100k-customer snapshot in
    about a second; the binary form is copied as is (measured: 1.3 s -> 0.26 s).
    """
    table = CustomerValue.__table__.name
    names = list(columns)
    raw = session.connection().connection.dbapi_connection
    cur = raw.cursor()
    try:
        if session.get_bind().dialect.name == "postgresql":
            with cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_binary_types(session, names))
                for row in _row_chunks(columns, n):
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(names))
            cur.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", _row_chunks(columns, n))
    finally:
        cur.close()


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


def run_analysis(uow: UnitOfWork, *, as_of: dt.date | None = None, settings: ValueSettings | None = None) -> RunOutcome:
    """Compute every analysis for every customer and store the snapshot dated ``as_of`` (default today).

    A snapshot for the same date is replaced. Tier and segment moves are taken against the
    latest earlier snapshot. When this is the latest snapshot, the core's lifecycle stage of
    each customer with purchases is updated (one UPDATE ... FROM the stored snapshot).
    """
    settings = settings_for(uow) if settings is None else settings
    as_of = today() if as_of is None else as_of
    if not DATE_RANGE[0] <= as_of <= DATE_RANGE[1]:
        raise InvalidInput(f"invalid input: as_of: {as_of} is outside {DATE_RANGE[0]}..{DATE_RANGE[1]}", [("as_of", "out of range")])
    session = uow.session
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 4)
        clock = now

    ids = loaders.customer_ids(session)
    if ids.size == 0:
        raise InvalidInput("no customers to analyse")
    settings, currency_warning = resolve_currency(session, settings)
    stats = loaders.customer_stats(session, ids, settings, as_of)
    hist, categories = stats.history, stats.categories
    satisfaction = loaders.satisfaction_means(session, ids, as_of)
    lap("read")
    value = analyse_value(session, ids, settings, as_of, aggregates=stats.value)
    if value.n_purchasers == 0:
        span = loaders.purchase_span(session, settings)
        if span is None:
            raise InvalidInput("no purchases to analyse: post invoices first")
        window = f"the {settings.window_days}-day window ending {as_of}" if settings.window_days else f"or before {as_of}"
        raise InvalidInput(f"no purchases on {window} (purchases run from {span[0]} to {span[1]}); choose another --as-of")
    lap("value")

    rft = rft_input(hist, settings.unit_days)
    if rft.mask.sum() >= settings.min_fit_customers:
        fit = fit_rft(rft, model=settings.model)
    else:  # four parameters from a handful of customers would be noise presented as a forecast
        fit = ModelFit(model=settings.model, warnings=[
            f"{purchase_models.TITLES[settings.model]} and Gamma-Gamma not fitted: {int(rft.mask.sum())} customers with purchases, "
                                 f"fewer than min_fit_customers = {settings.min_fit_customers}"])
    est = model_estimates(fit, rft, settings)
    buyers = rft.mask
    n = ids.size

    def spread(values: FloatArray) -> FloatArray:
        full = np.full(n, np.nan)
        full[buyers] = values
        return full

    p_alive = spread(est["p_alive"])
    lap("models")

    cut = hist.cut_day
    first_ago = np.where(buyers, cut - hist.first_day, np.nan)
    last_ago = np.where(buyers, cut - hist.last_day, np.nan)
    w = settings.trend_days
    with np.errstate(invalid="ignore", divide="ignore"):
        spend_trend = np.where(buyers & (hist.net_prev > 0), (hist.net_last - hist.net_prev) / hist.net_prev, np.nan)
        both = hist.days_last + hist.days_prev
        freq_trend = np.where(buyers & (hist.first_day <= cut - w) & (both > 0),
                              (hist.days_last - hist.days_prev) / both, np.nan)
        years = np.maximum(first_ago + 1.0, 365.0) / 365.0
    lifecycle = analytics.lifecycle_stages(first_ago, last_ago, hist.purchase_days, spend_trend, p_alive=p_alive,
                                           **settings.lifecycle.rule_kwargs())

    loyalty_parts = {k: np.full(n, np.nan) for k in analytics.LOYALTY_COMPONENTS}
    loyalty = np.full(n, np.nan)
    coverage = np.full(n, np.nan)
    if buyers.any():
        components = {
            "duration": first_ago[buyers],
            "frequency": (hist.purchase_days / years)[buyers],
            "frequency_trend": freq_trend[buyers],
            "spend": (hist.net / years)[buyers],
            "cross_buying": categories[buyers],
            "satisfaction": satisfaction[buyers],
        }
        li = analytics.loyalty_index(components, settings.loyalty_weights)
        loyalty[buyers], coverage[buyers] = li.index, li.coverage
        for j, name in enumerate(li.components):
            loyalty_parts[name][buyers] = li.parts[:, j]

    # deterministic CLV: the run-rate of the last trend window, as monthly margin
    monthly_margin = np.maximum(hist.net_last, 0.0) * (365.25 / w) / 12.0 * settings.margin
    clv_det = np.full(n, np.nan)
    if buyers.any():
        clv_det[buyers] = clv_models.deterministic_clv(
            monthly_margin[buyers], 0.0, retention=settings.retention ** (1.0 / 12.0),
            discount_rate=settings.monthly_discount_rate, horizon=settings.horizon_months,
            acquisition_cost=settings.acquisition_cost)
    churn_risk = np.where(np.isnan(p_alive), np.nan, p_alive < settings.churn_threshold)
    lap("lifecycle_loyalty_clv")

    # -- compare with the previous snapshot, replace a snapshot of the same date
    previous = _previous_run(session, as_of)
    prev_tier = np.full(n, None, dtype=object)
    prev_segment = np.full(n, None, dtype=object)
    moves: dict[str, Any] | None = None
    if previous is not None:
        p_ids, p_tiers, p_segments = _run_rows(session, previous.id)
        pos, found = loaders._align(ids, p_ids) if p_ids.size else (np.zeros(0, np.int64), np.zeros(0, bool))
        prev_tier[pos[found]] = p_tiers[found]
        prev_segment[pos[found]] = p_segments[found]
        order = tuple(dict.fromkeys([*settings.tier_order(), *np.unique(p_tiers).tolist()]))
        tm = analytics.tier_moves(p_ids, p_tiers, ids, value.tiers, order)
        moves = {"previous_as_of": previous.as_of.isoformat(), "up": int(tm.up.size), "down": int(tm.down.size),
                 "new": int(tm.new.size), "gone": int(tm.gone.size), "unchanged": tm.unchanged,
                 "transitions": {a: {b: int(tm.transitions[i, j]) for j, b in enumerate(tm.order)
                                     if tm.transitions[i, j]} for i, a in enumerate(tm.order)}}
    existing = session.scalar(select(ValueRun).where(ValueRun.as_of == as_of))
    if existing is not None:
        session.execute(delete(CustomerValue).where(CustomerValue.run_id == existing.id))
        session.delete(existing)
        session.flush()
    lap("previous")

    agg = value.aggregates
    summary: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "window_days": settings.window_days,
        "pareto": None if value.pareto is None else {
            "gini": value.pareto.gini, "top_shares": _shares(value.pareto), "n_customers": value.pareto.n_customers,
            "curve": [round(float(v), 6) for v in value.pareto.value_share]},
        "tiers": _counts(value.tiers, settings.tier_order()),
        "segments": _counts(value.segments, settings.segment_names()),
        "dependency": _counts(value.dependency.levels, analytics.DEPENDENCY_LEVELS),
        "lifecycle": _counts(lifecycle, analytics.LIFECYCLE_STAGES),
        "moves": moves,
        "models": fit.as_dict(settings.time_unit),
        "churn": {"threshold": settings.churn_threshold, "at_risk": int(np.nansum(churn_risk == 1))},
        "clv": {"deterministic_total": float(np.nansum(clv_det)),
                "probabilistic_total": float(np.nansum(est["clv_probabilistic"])) if fit.gamma_gamma else None},
        "warnings": ([currency_warning] if currency_warning else []) + fit.warnings,
        "currency": settings.currency,
        "timings": timings,
    }
    run = ValueRun(as_of=as_of, created_by=uow.actor[:64], n_customers=int(n), n_purchasers=value.n_purchasers,
                   total_revenue=float(agg.monetary.sum()), settings=settings.model_dump(mode="json"), summary=summary)
    session.add(run)
    session.flush()

    clv_prob = spread(est["clv_probabilistic"])
    columns: dict[str, NDArray[Any]] = {
        "run_id": np.full(n, run.id, dtype=np.int64),
        "customer_id": ids,
        "recency_days": value.recency_days,
        "frequency": agg.frequency,
        "monetary": agg.monetary,
        "r_score": value.scores.r, "f_score": value.scores.f, "m_score": value.scores.m,
        "segment": value.segments, "previous_segment": prev_segment,
        "tier": value.tiers, "previous_tier": prev_tier,
        "revenue_share": value.dependency.share, "dependency": value.dependency.levels,
        "first_purchase_days": first_ago,
        "purchase_days": hist.purchase_days,
        "spend_trend": spend_trend, "frequency_trend": freq_trend,
        "categories": categories,
        "satisfaction": satisfaction,
        "lifecycle": lifecycle,
        "p_alive": p_alive,
        "churn_risk": churn_risk,
        "expected_purchases": spread(est["expected_purchases"]),
        "clv_deterministic": clv_det, "clv_probabilistic": clv_prob,
        "loyalty": loyalty, "loyalty_coverage": coverage,
        **{f"loyalty_{k}": v for k, v in loyalty_parts.items()},
    }
    _insert_rows(session, columns, n)
    lap("store")

    updated = 0
    is_latest = session.scalar(select(func.count()).select_from(ValueRun).where(ValueRun.as_of > as_of)) == 0
    if settings.lifecycle.update_core and is_latest:
        updated = _update_lifecycle(uow, run.id)
    lap("lifecycle_update")
    run.summary = {**summary, "timings": timings, "lifecycle_updated": updated}
    session.flush()
    return RunOutcome(run=RunRead.model_validate(run), summary=run.summary, lifecycle_updated=updated)


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
    uow.require("customer.read")
    if uow.visibility.own_only:
        uow.require("value.report")
    return latest_run(uow)


def list_runs(uow: UnitOfWork) -> list[RunRead]:
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


def _customer_rows(uow: UnitOfWork, run: ValueRun, cols: Sequence[Any], *where: Any, order: Sequence[Any] = (),
                   limit: int | None = None) -> list[dict[str, Any]]:
    stmt = (select(CustomerValue.customer_id, Customer.name, *cols)
            .join(Customer, Customer.id == CustomerValue.customer_id)
            .where(CustomerValue.run_id == run.id, uow.visibility.customer_clause(Customer.owner_id), *where)
            .order_by(*order, CustomerValue.customer_id))
    if limit:
        stmt = stmt.limit(limit)
    return [{k: _clean(v) for k, v in r._mapping.items()} for r in uow.session.execute(stmt)]


def _group(uow: UnitOfWork, run: ValueRun, key: Any, *, order: Sequence[str]) -> list[dict[str, Any]]:
    """Customers, revenue and means per value of ``key`` (a CustomerValue column), in ``order``."""
    cv = CustomerValue
    stmt = (select(key, func.count(), func.sum(cv.monetary), func.avg(cv.recency_days.cast(Float)),
                   func.avg(cv.frequency.cast(Float)), func.avg(cv.monetary), func.min(cv.monetary), func.max(cv.monetary))
            .where(cv.run_id == run.id).group_by(key))
    total_n = run.n_customers or 1
    total_rev = run.total_revenue
    out = {}
    for k, cnt, rev, rec, freq, avg_m, min_m, max_m in uow.session.execute(stmt):
        out[k] = {"customers": cnt, "customer_share": cnt / total_n, "revenue": _clean(rev),
                  "revenue_share": _clean(rev / total_rev) if total_rev > 0 else None,
                  "avg_recency_days": _clean(rec), "avg_frequency": _clean(freq), "avg_monetary": _clean(avg_m),
                  "min_monetary": _clean(min_m), "max_monetary": _clean(max_m)}
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


def pyramid_report(uow: UnitOfWork, limit: int = 20, plot: Path | None = None) -> dict[str, Any]:
    """Tier sizes and revenue; upgrades and downgrades since the previous snapshot (largest value first).

    ``plot``: also a PNG of each tier's share of customers and of revenue.
    """
    if plot is not None:
        plots.check_path(plot)
    run = report_run(uow)
    settings = ValueSettings.model_validate(run.settings)
    cv = CustomerValue
    order = settings.tier_order()
    now, before = _tier_rank(order, cv.tier), _tier_rank(order, cv.previous_tier)
    cols = (cv.previous_tier.label("from_tier"), cv.tier.label("to_tier"), cv.monetary)
    moved = and_(cv.previous_tier.is_not(None), cv.previous_tier != cv.tier)
    out = {
        "run": _run_header(run),
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


def pareto_report(uow: UnitOfWork, plot: Path | None = None) -> dict[str, Any]:
    """Share of revenue of the top 1/5/10/20/50% of purchasers, the Gini, and optionally a PNG."""
    run = report_run(uow)
    pareto = run.summary.get("pareto") or {}
    out = {"run": _run_header(run), "gini": pareto.get("gini"), "top_shares": pareto.get("top_shares"),
           "n_customers": pareto.get("n_customers", 0), "total_revenue": run.total_revenue, "plot": None}
    if plot is not None:
        if not pareto:
            raise InvalidInput("the latest run has no purchasers to plot")
        curve = analytics.ParetoCurve(
            customer_share=np.linspace(0.0, 1.0, len(pareto["curve"])), value_share=np.asarray(pareto["curve"]),
            n_customers=pareto["n_customers"], total_value=run.total_revenue, gini=pareto["gini"])
        try:
            out["plot"] = str(analytics.plot_pareto(curve, plot, title=f"Revenue concentration, {run.as_of}"))
        except OSError as e:
            raise InvalidInput(f"cannot write the plot to {plot}: {e.strerror or e}") from None
    return out


def dependency_report(uow: UnitOfWork) -> dict[str, Any]:
    """Customers above the key / critical / mono-client revenue-share thresholds."""
    run = report_run(uow)
    settings = ValueSettings.model_validate(run.settings)
    cv = CustomerValue
    flagged = _customer_rows(uow, run, (cv.dependency.label("level"), cv.revenue_share, cv.monetary),
                             cv.dependency != "none", order=[cv.revenue_share.desc()])
    worst = max((analytics.DEPENDENCY_LEVELS.index(r["level"]) for r in flagged), default=0)
    return {"run": _run_header(run), "thresholds": settings.dependency.model_dump(),
            "total_revenue": run.total_revenue, "level": analytics.DEPENDENCY_LEVELS[worst], "flagged": flagged}


def churn_report(uow: UnitOfWork, limit: int = 20) -> dict[str, Any]:
    """Churn risk from BG/NBD P(alive): counts, lifecycle stages, and the at-risk customers by value."""
    run = report_run(uow)
    cv = CustomerValue
    n_model, avg_p = uow.session.execute(select(func.count(cv.p_alive), func.avg(cv.p_alive)).where(cv.run_id == run.id)).one()
    at_risk = uow.session.scalar(select(func.count()).where(cv.run_id == run.id, cv.churn_risk.is_(True)))
    cols = (cv.p_alive, cv.lifecycle, cv.recency_days, cv.monetary, cv.clv_probabilistic)
    return {
        "run": _run_header(run),
        "threshold": run.summary.get("churn", {}).get("threshold"),
        "model": (run.summary.get("models") or {}).get("purchase"),
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
    counts = dict(uow.session.execute(select(bucket, func.count()).where(cv.run_id == run.id, cv.loyalty.is_not(None))
                                      .group_by(bucket)).all())
    histogram = {f"{20 * i}-{20 * (i + 1)}": int(counts.get(i, 0)) for i in range(5)}
    n, mean = uow.session.execute(select(func.count(cv.loyalty), func.avg(cv.loyalty)).where(cv.run_id == run.id)).one()
    cols = (cv.loyalty, cv.loyalty_coverage, *(getattr(cv, c) for c in LOYALTY_COLUMNS))
    top = _customer_rows(uow, run, cols, cv.loyalty.is_not(None), order=[cv.loyalty.desc()], limit=limit)
    for r in top:
        r["contributions"] = loyalty_contributions(r, settings.loyalty_weights)
    return {"run": _run_header(run), "weights": settings.loyalty_weights, "customers_with_index": n,
            "mean": _clean(mean), "histogram": histogram, "top": top}


def clv_report(uow: UnitOfWork, limit: int = 20, by: str = "probabilistic", plot: Path | None = None) -> dict[str, Any]:
    """Both CLVs: totals, means, the settings and models behind them, the top customers; optional PNG
    of the distribution of the ``by`` CLV."""
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
    out = {
        "run": _run_header(run),
        "settings": {k: getattr(settings, k) for k in ("margin", "discount_rate", "horizon_months", "retention",
                                                        "acquisition_cost", "time_unit", "model")},
        "models": run.summary.get("models"),
        "deterministic": {"customers": row[0], "total": _clean(row[1]), "mean": _clean(row[2])},
        "probabilistic": {"customers": row[3], "total": _clean(row[4]), "mean": _clean(row[5])},
        "by": by,
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
        {"as_of": a.isoformat(), "tier": t, "segment": s, "monetary": _clean(m), "clv_probabilistic": _clean(c),
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
# Model fit and validation (calibration / holdout)
# =============================================================================================

def _check_calibration(uow: UnitOfWork, settings: ValueSettings, calibration_end: dt.date) -> tuple[dt.date, dt.date]:
    span = loaders.purchase_span(uow.session, settings)
    if span is None:
        raise InvalidInput("no purchases to fit the models on")
    first, last = span
    if calibration_end > last:
        raise InvalidInput(f"invalid input: calibration end {calibration_end} is after the data (last purchase {last})",
                           [("calibration_end", "after the last purchase")])
    if calibration_end <= first:
        raise InvalidInput(f"invalid input: calibration end {calibration_end} leaves no calibration period "
                           f"(first purchase {first})", [("calibration_end", "before the data")])
    return span


def _models(model: str | None, settings: ValueSettings, *, allow_all: bool) -> tuple[str, ...]:
    name = settings.model if model is None else model
    if allow_all and name == "all":
        return purchase_models.MODELS
    if name not in purchase_models.MODELS:
        known = ", ".join([*purchase_models.MODELS, *(["all"] if allow_all else [])])
        raise InvalidInput(f"invalid input: model: unknown model {name!r}; known: {known}", [("model", "unknown")])
    return (name,)


def _calibration(uow: UnitOfWork, settings: ValueSettings, calibration_end: dt.date,
                 holdout_end: dt.date | None = None) -> tuple[ValueSettings, list[str], np.ndarray, loaders.PurchaseHistory, RFTInput]:
    settings, currency_warning = resolve_currency(uow.session, settings)
    _check_calibration(uow, settings, calibration_end)
    ids = loaders.customer_ids(uow.session)
    hist = loaders.customer_stats(uow.session, ids, settings, calibration_end, holdout_end=holdout_end).history
    return settings, [currency_warning] if currency_warning else [], ids, hist, rft_input(hist, settings.unit_days)


def fit_models(uow: UnitOfWork, calibration_end: dt.date, settings: ValueSettings | None = None,
               model: str | None = None) -> dict[str, Any]:
    """Fit one purchase model (default: the ``model`` setting) and Gamma-Gamma on the purchases up to
    ``calibration_end``: parameters by their usual names and log-likelihoods."""
    settings = settings_for(uow) if settings is None else settings
    (name,) = _models(model, settings, allow_all=False)
    settings, warnings, _, _, rft = _calibration(uow, settings, calibration_end)
    fit = fit_rft(rft, strict=True, model=name)
    return {
        "calibration_end": calibration_end.isoformat(),
        "currency": settings.currency,
        "customers": int(rft.mask.sum()),
        "repeat_customers": int((rft.frequency > 0).sum()),
        **fit.as_dict(settings.time_unit),
        "seconds": round(fit.seconds, 4),
        "warnings": warnings,
    }


def _holdout_weeks(uow: UnitOfWork, settings: ValueSettings, ids: np.ndarray, mask: np.ndarray,
                   calibration_end: dt.date, holdout_end: dt.date) -> np.ndarray:
    """Repeat purchases (purchase days) per holdout week of the calibration cohort: one GROUP BY."""
    session = uow.session
    day = loaders.day_number(loaders.Transaction.occurred_at)
    stmt = (select(loaders._customer(), day)
            .select_from(loaders.Transaction)
            .where(*loaders._where(session, settings, loaders.Period(end=holdout_end + dt.timedelta(days=1),
                                                                     start=calibration_end + dt.timedelta(days=1)),
                                   purchases_only=True))
            .group_by(loaders._customer(), day))
    m = loaders._fetch_array(session, stmt, 2)
    weeks = -(-(holdout_end - calibration_end).days // 7)
    if m.size == 0:
        return np.zeros(weeks)
    pos, found = loaders._align(ids, m[:, 0])
    keep = found & mask[pos]
    week = ((m[keep, 1] - loaders.day_of(calibration_end) - 1) // 7).astype(np.int64)
    return np.bincount(week, minlength=weeks)[:weeks].astype(np.float64)


def _metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, Any]:
    err = predicted - actual
    corr = (float(np.corrcoef(predicted, actual)[0, 1])
            if actual.size > 1 and actual.std() > 0 and predicted.std() > 0 else None)
    return {"customers": int(actual.size), "predicted": float(predicted.sum()), "actual": float(actual.sum()),
            "error_pct": float(100.0 * err.sum() / actual.sum()) if actual.sum() > 0 else None,
            "mae": float(np.abs(err).mean()) if err.size else None,
            "rmse": float(np.sqrt((err ** 2).mean())) if err.size else None, "correlation": corr}


def validate_models(uow: UnitOfWork, calibration_end: dt.date, holdout_end: dt.date,
                    settings: ValueSettings | None = None, model: str | None = None,
                    plot: Path | None = None) -> dict[str, Any]:
    """Fit on the calibration period, predict repeat purchases in (calibration end, holdout end], compare.

    ``model`` is one model name or ``"all"``: each is compared on the holdout in total,
    per customer (MAE, RMSE), per number of calibration repeats and week by week (cumulative
    tracking); the best is the one with the lowest per-customer RMSE. Optionally a PNG.
    """
    settings = settings_for(uow) if settings is None else settings
    names = _models(model, settings, allow_all=True)
    if holdout_end <= calibration_end:
        raise InvalidInput(f"invalid input: holdout end {holdout_end} must be after the calibration end {calibration_end}",
                           [("holdout_end", "not after calibration_end")])
    if plot is not None:
        plots.check_path(plot)
    settings, warnings, ids, hist, rft = _calibration(uow, settings, calibration_end, holdout_end)
    horizon = (holdout_end - calibration_end).days / settings.unit_days
    actual = hist.holdout_days[rft.mask].astype(np.float64)
    fits: dict[str, dict[str, Any]] = {}
    predicted: dict[str, np.ndarray] = {}
    for name in names:
        try:
            fit = fit_rft(rft, strict=True, model=name)
        except InvalidInput as e:
            if len(names) == 1:
                raise
            fits[name] = {"error": str(e)}
            continue
        assert fit.purchase is not None
        predicted[name] = purchase_models.expected_purchases(fit.purchase, rft.frequency, rft.recency, rft.T, horizon)
        fits[name] = {**fit.as_dict(settings.time_unit), "total": _metrics(predicted[name], actual)}
    if not predicted:
        raise InvalidInput("cannot fit any model on this data: " + "; ".join(f"{k}: {v['error']}" for k, v in fits.items()))
    best = min(predicted, key=lambda k: (fits[k]["total"]["rmse"], abs(fits[k]["total"]["error_pct"] or 0.0)))
    buckets = np.minimum(rft.frequency, 7).astype(int)
    by_freq = []
    for b in np.unique(buckets).tolist():
        m = buckets == b
        by_freq.append({"frequency": f"{b}+" if b == 7 else str(b), "customers": int(m.sum()),
                        "actual_mean": float(actual[m].mean()), "predicted_mean": float(predicted[best][m].mean()),
                        "predicted_means": {k: float(v[m].mean()) for k, v in predicted.items()}})
    weekly = _holdout_weeks(uow, settings, ids, rft.mask, calibration_end, holdout_end)
    days = (holdout_end - calibration_end).days
    ends = np.minimum(7.0 * np.arange(1, weekly.size + 1), days) / settings.unit_days
    tracking = {"actual": np.cumsum(weekly).tolist(), "predicted": {
        k: [float(purchase_models.expected_purchases(fits_p, rft.frequency, rft.recency, rft.T, t).sum()) for t in ends]
        for k, fits_p in ((k, purchase_models.make_params(k, fits[k]["purchase"])) for k in predicted)}}
    order = np.argsort(-predicted[best], kind="stable")
    cids = ids[rft.mask]
    customers = [
        {"customer_id": int(cids[i]), "frequency": int(rft.frequency[i]), "recency": float(rft.recency[i]),
         "T": float(rft.T[i]), "predicted": float(predicted[best][i]), "actual": int(actual[i]),
         "predictions": {k: float(v[i]) for k, v in predicted.items()}}
        for i in order.tolist()
    ]
    out = {
        "calibration_end": calibration_end.isoformat(), "holdout_end": holdout_end.isoformat(),
        "currency": settings.currency, "time_unit": settings.time_unit, "holdout_length": horizon,
        "models": fits, "best": best, "model": fits[best]["purchase"], "total": fits[best]["total"],
        "by_frequency": by_freq, "tracking": tracking, "customers": customers, "warnings": warnings, "plot": None,
    }
    if plot is not None:
        out["plot"] = str(plots.plot_validation(out, plot))
    return out


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


def profile_section(uow: UnitOfWork, customer: Customer) -> ProfileSection | None:
    """The "Customer value" block of the 360° view, from the latest snapshot (None: no run / no row)."""
    stmt = (select(ValueRun.as_of, CustomerValue).join(ValueRun, ValueRun.id == CustomerValue.run_id)
            .where(CustomerValue.customer_id == customer.id,
                   ValueRun.as_of == select(func.max(ValueRun.as_of)).scalar_subquery()))
    found = uow.session.execute(stmt).first()
    if found is None:
        return None
    as_of, row = found
    def rnd(v: float | None, nd: int = 2) -> float | None:
        return None if v is None else round(v, nd)
    return ProfileSection(title="Customer value", fields={
        "tier": row.tier,
        "rfm_segment": row.segment,
        "rfm_scores": f"R{row.r_score} F{row.f_score} M{row.m_score}",
        "lifecycle": row.lifecycle,
        "clv_probabilistic": rnd(row.clv_probabilistic),
        "clv_deterministic": rnd(row.clv_deterministic),
        "probability_alive": rnd(row.p_alive, 3),
        "churn_risk": row.churn_risk,
        "loyalty_index": rnd(row.loyalty, 1),
        "dependency": row.dependency,
        "as_of": as_of.isoformat(),
    })


def merge_customer_rows(uow: UnitOfWork, source_id: int, target_id: int) -> dict[str, int]:
    """Re-point the source's snapshot rows to the target where the target has none for that run.

    Where both have a row the source's is deleted: snapshot rows are derived and the next run
    recomputes the merged customer from the (already re-pointed) transactions.
    """
    cv = CustomerValue
    target_runs = select(cv.run_id).where(cv.customer_id == target_id).scalar_subquery()
    uow.session.execute(delete(cv).where(cv.customer_id == source_id, cv.run_id.in_(target_runs)))
    res = uow.session.execute(update(cv).where(cv.customer_id == source_id).values(customer_id=target_id),
                              execution_options={"synchronize_session": False})
    return {CustomerValue.__tablename__: int(res.rowcount or 0)}


__all__ = [
    "CORE_STAGE", "ModelFit", "NoRunYet", "RFTInput", "RunOutcome", "ValuePart", "analyse_value", "churn_report",
    "clv_report", "customer_value", "dependency_report", "fit_models", "fit_rft", "latest_run", "list_runs",
    "loyalty_report", "merge_customer_rows", "model_estimates", "pareto_report", "profile_section", "pyramid_report",
    "rfm_report", "rft_input", "run_analysis", "select_customers", "settings_for", "validate_models",
]
