"""Lifecycle stages and the loyalty index over whole arrays (split from :mod:`analytics`,
which re-exports it)."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from crm_value_analysis.arrays import (
    FloatArray,
    StrArray,
    _as_1d_float,
    _check_same_length,
    _labels,
    _percentile_rank,
)

# --------------------------------------------------------------------------
# Lifecycle
# --------------------------------------------------------------------------

#: Lifecycle stages in rule order.
LIFECYCLE_STAGES: tuple[str, ...] = (
    "prospect",
    "churned",
    "exploration",
    "decline",
    "formation",
    "stability",
)


def _inputs(first_purchase_days_ago: ArrayLike, last_purchase_days_ago: ArrayLike, frequency: ArrayLike,
            spend_trend: ArrayLike, p_alive: ArrayLike | None) -> tuple[Any, ...]:
    """The lifecycle inputs as float arrays of one length (ValueError naming a bad one)."""
    first = _as_1d_float("first_purchase_days_ago", first_purchase_days_ago, allow_nan=True)
    last = _as_1d_float("last_purchase_days_ago", last_purchase_days_ago, allow_nan=True)
    freq = _as_1d_float("frequency", frequency)
    trend = _as_1d_float("spend_trend", spend_trend, allow_nan=True)
    arrays: dict[str, np.ndarray] = {
        "first_purchase_days_ago": first,
        "last_purchase_days_ago": last,
        "frequency": freq,
        "spend_trend": trend,
    }
    palive: FloatArray | None = None
    if p_alive is not None:
        palive = _as_1d_float("p_alive", p_alive, allow_nan=True)
        arrays["p_alive"] = palive
    n = _check_same_length(**arrays)
    return first, last, freq, trend, palive, n


def _check_rules(**params: float) -> None:
    """The lifecycle thresholds are finite and ordered (ValueError naming the bad one)."""
    formation_after_days, stability_after_days = params["formation_after_days"], params["stability_after_days"]
    churn_after_days, min_gap_days = params["churn_after_days"], params["min_gap_days"]
    decline_trend, growth_trend = params["decline_trend"], params["growth_trend"]
    gap_factor, p_alive_threshold = params["gap_factor"], params["p_alive_threshold"]
    for label, val in params.items():
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
            raise ValueError(f"{label} must be a finite number, got {val!r}")
    if formation_after_days <= 0 or churn_after_days <= 0 or min_gap_days < 0:
        raise ValueError("formation_after_days and churn_after_days must be > 0, min_gap_days >= 0")
    if stability_after_days < formation_after_days:
        raise ValueError("stability_after_days must be >= formation_after_days")
    if decline_trend >= growth_trend:
        raise ValueError("decline_trend must be below growth_trend")
    if gap_factor <= 0:
        raise ValueError("gap_factor must be > 0")
    if not 0.0 <= p_alive_threshold <= 1.0:
        raise ValueError("p_alive_threshold must be in [0, 1]")


def _check_history(first: FloatArray, last: FloatArray, freq: FloatArray, palive: FloatArray | None) -> NDArray[np.bool_]:
    """The purchase history is consistent; returns who bought (ValueError otherwise)."""
    if (freq < 0).any() or (freq != np.floor(freq)).any():
        raise ValueError("frequency must be a non-negative whole number of purchases")
    buyer = freq > 0
    fb, lb = first[buyer], last[buyer]
    if np.isnan(fb).any() or np.isnan(lb).any():
        raise ValueError("first/last purchase days must be set for customers with purchases")
    if (lb < 0).any():
        raise ValueError("last_purchase_days_ago must be >= 0")
    if (fb < lb).any():
        raise ValueError("first_purchase_days_ago must be >= last_purchase_days_ago")
    if palive is not None:
        pa = palive[~np.isnan(palive)]
        if ((pa < 0) | (pa > 1)).any():
            raise ValueError("p_alive must be probabilities in [0, 1]")
    return buyer


def lifecycle_stages(
    first_purchase_days_ago: ArrayLike,
    last_purchase_days_ago: ArrayLike,
    frequency: ArrayLike,
    spend_trend: ArrayLike,
    *,
    formation_after_days: float = 90.0,
    stability_after_days: float = 365.0,
    churn_after_days: float = 365.0,
    decline_trend: float = -0.2,
    growth_trend: float = 0.1,
    gap_factor: float = 2.5,
    min_gap_days: float = 30.0,
    p_alive: ArrayLike | None = None,
    p_alive_threshold: float = 0.2,
) -> StrArray:
    """Place each customer in a relationship lifecycle stage from its purchase history.

    Inputs per customer: days since first and last purchase, number of purchases
    (``frequency``) and ``spend_trend`` = relative change of spend, e.g. last
    12 months vs the 12 before (-0.3 = down 30%; NaN = unknown, treated as
    steady). Optional ``p_alive`` (e.g. from a BG/NBD model; NaN = unknown).

    Rules, evaluated top to bottom, first match wins (``interval`` = usual gap
    between purchases = (first - last) / (frequency - 1)):

    ===========  ==========================================================
    stage        condition
    ===========  ==========================================================
    prospect     frequency == 0 (no purchase; first/last may be NaN)
    churned      last > churn_after_days, or p_alive < p_alive_threshold
    exploration  frequency == 1 and first <= formation_after_days
                 (one purchase, young relationship: still trying us out)
    decline      spend_trend < decline_trend; or frequency >= 2 and
                 last > gap_factor * max(interval, min_gap_days) (much longer
                 silence than usual); or frequency == 1 and
                 first > formation_after_days (the trial never turned into a
                 second purchase)
    formation    frequency >= 2 and (first <= stability_after_days or
                 spend_trend > growth_trend) (repeat buyer, young or growing)
    stability    everything else: repeat buyer, relationship older than
                 stability_after_days, trend between decline and growth
    ===========  ==========================================================

    Churn is checked before anything else because a long-gone customer's
    history says nothing about the present; exploration before decline because
    a brand-new customer has no trend to decline from.
    """
    first, last, freq, trend, palive, n = _inputs(first_purchase_days_ago, last_purchase_days_ago, frequency,
                                                  spend_trend, p_alive)

    _check_rules(formation_after_days=formation_after_days, stability_after_days=stability_after_days,
                 churn_after_days=churn_after_days, decline_trend=decline_trend, growth_trend=growth_trend,
                 gap_factor=gap_factor, min_gap_days=min_gap_days, p_alive_threshold=p_alive_threshold)
    buyer = _check_history(first, last, freq, palive)

    single = freq == 1
    repeat = freq >= 2
    with np.errstate(invalid="ignore", divide="ignore"):
        interval = np.where(repeat, (first - last) / np.maximum(freq - 1, 1), np.nan)
    usual_gap = np.maximum(np.nan_to_num(interval, nan=0.0), min_gap_days)
    # NaN comparisons are False, so unknown trend / p_alive never trigger a rule.
    churned = last > churn_after_days
    if palive is not None:
        churned |= palive < p_alive_threshold
    exploration = single & (first <= formation_after_days)
    decline = (
        (trend < decline_trend)
        | (repeat & (last > gap_factor * usual_gap))
        | (single & (first > formation_after_days))
    )
    formation = repeat & ((first <= stability_after_days) | (trend > growth_trend))

    # First match wins: assign in reverse rule order so earlier rules overwrite.
    codes = np.full(n, LIFECYCLE_STAGES.index("stability"), dtype=np.int64)
    for stage, mask in (("formation", formation), ("decline", decline), ("exploration", exploration),
                        ("churned", churned), ("prospect", ~buyer)):
        codes[mask] = LIFECYCLE_STAGES.index(stage)
    return _labels(LIFECYCLE_STAGES, codes)


# --------------------------------------------------------------------------
# Loyalty index
# --------------------------------------------------------------------------

#: Known loyalty components (higher raw value = more loyal; flip signs before if not).
LOYALTY_COMPONENTS: tuple[str, ...] = (
    "duration",           # A11 purchase duration
    "frequency",          # A12
    "frequency_trend",    # A13
    "share_of_wallet",    # A21 (spend per year / the customer's wallet)
    "spend",              # absolute spend per year: A21's stand-in where no wallet is known
    "cross_buying",       # A22
    "referrals",          # A31 mention / referral rate
    "price_sensitivity",  # A32 (less bought on discount = more loyal)
    "voluntariness",      # A33 (share of purchases no campaign prompted)
    "satisfaction",       # A34
)

#: Default weights over the material's three subsystems (purchase behaviour, wallet and
#: cross-buying, attitude); they sum to 1. A factor without data is left out and the others
#: renormalised, so the old six keep their relative weights when the new ones have no data.
DEFAULT_LOYALTY_WEIGHTS: dict[str, float] = {
    "duration": 0.12,
    "frequency": 0.12,
    "frequency_trend": 0.09,
    "share_of_wallet": 0.16,
    "spend": 0.12,
    "cross_buying": 0.09,
    "referrals": 0.08,
    "price_sensitivity": 0.08,
    "voluntariness": 0.08,
    "satisfaction": 0.06,
}


@dataclass(frozen=True)
class LoyaltyIndex:
    """Loyalty index 0..100 per customer with the parts it is built from.

    ``parts[:, j]`` is component ``components[j]`` normalised to 0..1 (NaN = no
    data), ``weights[j]`` its configured weight. ``coverage`` is the share of the
    total weight for which the customer has data (1.0 = complete picture).
    """

    index: FloatArray
    parts: FloatArray
    components: tuple[str, ...]
    weights: FloatArray
    coverage: FloatArray

    def contributions(self) -> FloatArray:
        """Points each component adds to each customer's index (NaN where no data).

        ``np.nansum(contributions(), axis=1)`` equals ``index`` wherever the index
        is defined, so a report can show why a customer scores what it scores.
        """
        avail = ~np.isnan(self.parts)
        w = np.where(avail, self.weights, 0.0)
        denom = w.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            eff = np.where(denom > 0, w / denom, np.nan)
        return np.where(avail, 100.0 * eff * self.parts, np.nan)


def loyalty_index(
    components: Mapping[str, ArrayLike],
    weights: Mapping[str, float] | None = None,
) -> LoyaltyIndex:
    """Combine loyalty components into one 0..100 index per customer.

    1. Each component is normalised to 0..1 by **percentile rank among the
       customers that have data** (average rank: lowest -> 0, highest -> 1,
       ties and a lone value -> the mid value of their ranks, 0.5 when all equal).
       Ranks make components with different units and skew comparable and are
       robust to outliers.
    2. The index is ``100 * sum(w_c * p_c) / sum(w_c)`` over the components the
       customer has data for -- weights are renormalised per customer, so a
       missing survey does not count as a zero. No data at all (or data only in
       zero-weight components) -> NaN.

    ``weights`` defaults to :data:`DEFAULT_LOYALTY_WEIGHTS`; weights of
    components not supplied are ignored. Raises ValueError for a component
    without a weight, negative/non-finite weights, all supplied weights zero,
    arrays of different length, no components, or infinite values.
    """
    if not isinstance(components, Mapping) or not components:
        raise ValueError("components must be a non-empty mapping of name -> array")
    w_map = DEFAULT_LOYALTY_WEIGHTS if weights is None else weights
    if not isinstance(w_map, Mapping):
        raise ValueError("weights must be a mapping of component name -> weight")  # noqa: TRY004 (ValueError: one line for the commands)
    for name, weight in w_map.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float, np.floating, np.integer)):
            raise ValueError(f"weight of {name!r} must be a number, got {weight!r}")  # noqa: TRY004 (ValueError: one line for the commands)
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight of {name!r} must be finite and >= 0, got {weight!r}")
    unknown = [name for name in components if name not in w_map]
    if unknown:
        raise ValueError(
            f"unknown loyalty components {unknown}; known: {sorted(map(str, w_map))}"
        )

    names = tuple(components)
    cols = {name: _as_1d_float(f"component {name!r}", components[name], allow_nan=True) for name in names}
    n = _check_same_length(**{f"component {k!r}": v for k, v in cols.items()})
    w = np.asarray([float(w_map[name]) for name in names])
    if not (w > 0).any():
        raise ValueError("at least one supplied component needs a weight > 0")

    parts = np.full((n, len(names)), np.nan)
    for j, name in enumerate(names):
        col = cols[name]
        has = ~np.isnan(col)
        parts[has, j] = _percentile_rank(col[has])

    avail = ~np.isnan(parts)
    w_avail = np.where(avail, w, 0.0)
    denom = w_avail.sum(axis=1)
    numer = (w_avail * np.nan_to_num(parts, nan=0.0)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        index = np.where(denom > 0, 100.0 * numer / denom, np.nan)
    return LoyaltyIndex(
        index=index,
        parts=parts,
        components=names,
        weights=w,
        coverage=denom / w.sum(),
    )
