"""Value pyramid, tier moves, Pareto concentration and key-account dependency, vectorised
(split from :mod:`analytics`, which re-exports it)."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from crm_value_analysis.arrays import (
    FloatArray,
    IntArray,
    StrArray,
    _as_1d_float,
    _labels,
)

# --------------------------------------------------------------------------
# Value pyramid
# --------------------------------------------------------------------------

#: Default pyramid: top 1% VIP, next 4% key, next 15% normal, remaining 80% small.
DEFAULT_PYRAMID_CUTOFFS: tuple[tuple[str, float], ...] = (
    ("vip", 0.01),
    ("key", 0.04),
    ("normal", 0.15),
    ("small", 0.80),
)


def _validate_cutoffs(
    cutoffs: Sequence[tuple[str, float]] | Mapping[str, float],
) -> tuple[list[str], FloatArray]:
    items = list(cutoffs.items()) if isinstance(cutoffs, Mapping) else list(cutoffs)
    if not items:
        raise ValueError("cutoffs must list at least one (tier, fraction) pair")
    names: list[str] = []
    fractions: list[float] = []
    for item in items:
        try:
            name, frac = item
        except (TypeError, ValueError):
            raise ValueError(f"each cutoff must be a (tier, fraction) pair, got {item!r}") from None
        if not isinstance(name, str) or not name:
            raise ValueError(f"tier name must be a non-empty string, got {name!r}")
        if isinstance(frac, bool) or not isinstance(frac, (int, float, np.floating, np.integer)):
            raise ValueError(f"fraction of tier {name!r} must be a number, got {frac!r}")  # noqa: TRY004 (ValueError: one line for the commands)
        if not (math.isfinite(frac) and 0.0 <= frac <= 1.0):
            raise ValueError(f"fraction of tier {name!r} must be in [0, 1], got {frac!r}")
        names.append(name)
        fractions.append(float(frac))
    if len(set(names)) != len(names):
        raise ValueError(f"tier names must be unique, got {names}")
    total = math.fsum(fractions)
    if abs(total - 1.0) > 1e-9:
        raise ValueError(f"tier fractions must sum to 1, got {total:g}")
    return names, np.asarray(fractions)


def tier_sizes(
    n: int,
    cutoffs: Sequence[tuple[str, float]] | Mapping[str, float] = DEFAULT_PYRAMID_CUTOFFS,
) -> IntArray:
    """Number of customers per tier for a base of ``n`` (before tie adjustment).

    Rounding rule: ``count_k = round(C_k * n) - round(C_(k-1) * n)`` where ``C_k``
    is the cumulative fraction and ``round`` is round-half-up. Why: the counts
    always sum to ``n``; each count is within 1 of ``fraction_k * n``; and a tier
    with ``fraction_k * n >= 1`` always gets at least one customer (so with the
    default 1% VIP tier, any base of >= 50 customers has a VIP: 0.5 rounds up).
    1000 customers -> 10/40/150/800; 100 -> 1/4/15/80.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    _, fractions = _validate_cutoffs(cutoffs)
    cum = np.cumsum(fractions)
    # Round half up; the tiny epsilon absorbs float error in the cumulative sum
    # (0.01 + 0.04 + ... may land a hair below an exact .5).
    bounds = np.floor(cum * n + 0.5 + 1e-9).astype(np.int64)
    bounds = np.minimum(bounds, n)
    bounds[-1] = n
    return np.diff(bounds, prepend=0)


def pyramid_tiers(
    value: ArrayLike,
    *,
    cutoffs: Sequence[tuple[str, float]] | Mapping[str, float] = DEFAULT_PYRAMID_CUTOFFS,
) -> StrArray:
    """Assign each customer to a value-pyramid tier (top tier first in ``cutoffs``).

    Customers are ranked by value descending, ties broken by position (stable
    sort) so the ranking is deterministic; tier sizes come from
    :func:`tier_sizes` over *all* customers.

    Tie rule: equal values are never split. A group of equal values that
    straddles a boundary goes **entirely to the higher tier** (the tier of its
    best-ranked member) -- nobody is demoted because of row order, so the higher
    tier may hold a few more than its count (in the extreme, a base where
    everybody has the same positive value is entirely in the top tier).

    Customers with value <= 0 (no or negative net revenue) always go to the
    bottom (last) tier, even if the rounding would have had room for them above.
    """
    names, _ = _validate_cutoffs(cutoffs)
    v = _as_1d_float("value", value)
    n = v.size
    sizes = tier_sizes(n, cutoffs)
    if n == 0:
        return np.zeros(0, dtype=np.str_)
    bounds = np.cumsum(sizes)
    order = np.argsort(-v, kind="stable")
    sorted_v = v[order]
    tier_at_position = np.searchsorted(bounds, np.arange(n), side="right")
    # first position of each run of equal values -> all of the run takes its tier
    starts = np.r_[True, sorted_v[1:] != sorted_v[:-1]]
    run_first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    tier_sorted = tier_at_position[run_first]
    codes = np.empty(n, dtype=np.int64)
    codes[order] = tier_sorted
    codes[v <= 0] = len(names) - 1
    return _labels(names, codes)


@dataclass(frozen=True)
class TierMoves:
    """Customers that changed tier between two snapshots (sorted by customer id).

    ``up``/``down`` hold ids that moved to a better/worse tier, with their tiers
    before (``*_from``) and after (``*_to``). ``new`` are only in the new
    snapshot, ``gone`` only in the old. ``transitions[i, j]`` counts customers
    present in both that went from ``order[i]`` to ``order[j]``.
    """

    order: tuple[str, ...]
    up: np.ndarray
    up_from: StrArray
    up_to: StrArray
    down: np.ndarray
    down_from: StrArray
    down_to: StrArray
    new: np.ndarray
    new_tiers: StrArray
    gone: np.ndarray
    gone_tiers: StrArray
    unchanged: int
    transitions: IntArray


def _tier_codes(name: str, tiers: np.ndarray, order_arr: StrArray, sorter: IntArray) -> IntArray:
    pos = np.searchsorted(order_arr, tiers, sorter=sorter)
    pos = np.minimum(pos, order_arr.size - 1)
    codes = sorter[pos]
    bad = order_arr[codes] != tiers
    if bad.any():
        unknown = sorted(set(np.unique(tiers[bad]).tolist()))[:5]
        raise ValueError(f"{name} contains tiers not in order: {unknown}")
    return codes


def _ids(name: str, ids: ArrayLike) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    try:
        sorted_ids = np.sort(arr)
    except TypeError:
        raise ValueError(f"{name} must hold mutually comparable ids") from None
    if (sorted_ids[1:] == sorted_ids[:-1]).any():
        raise ValueError(f"{name} contains duplicate customer ids")
    return arr


def tier_moves(
    customer_ids_old: ArrayLike,
    tiers_old: ArrayLike,
    customer_ids_new: ArrayLike,
    tiers_new: ArrayLike,
    order: Sequence[str],
) -> TierMoves:
    """Compare two pyramid snapshots: who moved up, who moved down, who is new or gone.

    ``order`` lists the tiers best first (e.g. ``("vip", "key", "normal",
    "small")``), which defines "up". Ids must be unique within each snapshot.
    Matching is done with ``np.intersect1d``/``np.setdiff1d``, so it is
    vectorised and works for integer or string ids.
    """
    order_t = tuple(order)
    if not order_t or len(set(order_t)) != len(order_t):
        raise ValueError("order must list each tier once, best tier first")
    order_arr = np.asarray(order_t, dtype=np.str_)
    sorter = np.argsort(order_arr, kind="stable")

    ids_old = _ids("customer_ids_old", customer_ids_old)
    ids_new = _ids("customer_ids_new", customer_ids_new)
    t_old = np.asarray(tiers_old).astype(np.str_)
    t_new = np.asarray(tiers_new).astype(np.str_)
    if t_old.ndim != 1 or t_new.ndim != 1:
        raise ValueError("tiers_old and tiers_new must be 1-D arrays")
    if t_old.size != ids_old.size:
        raise ValueError(f"tiers_old has {t_old.size} entries for {ids_old.size} customer ids")
    if t_new.size != ids_new.size:
        raise ValueError(f"tiers_new has {t_new.size} entries for {ids_new.size} customer ids")
    def _kind(a: np.ndarray) -> str:
        return "number" if a.dtype.kind in "biuf" else "text" if a.dtype.kind in "US" else a.dtype.kind

    if ids_old.size and ids_new.size and _kind(ids_old) != _kind(ids_new):
        # e.g. ints vs strings would silently match nobody: everyone "new" and "gone"
        raise ValueError(
            f"customer_ids_old ({ids_old.dtype}) and customer_ids_new ({ids_new.dtype}) "
            "must be the same kind of id"
        )
    try:
        common, i_old, i_new = np.intersect1d(ids_old, ids_new, assume_unique=True, return_indices=True)
    except TypeError:
        raise ValueError("customer_ids_old and customer_ids_new must have comparable types") from None

    c_old = _tier_codes("tiers_old", t_old, order_arr, sorter)
    c_new = _tier_codes("tiers_new", t_new, order_arr, sorter)
    a, b = c_old[i_old], c_new[i_new]
    up, down = b < a, b > a

    k = len(order_t)
    transitions = np.bincount(a * k + b, minlength=k * k).reshape(k, k)

    gone_mask = ~np.isin(ids_old, common, assume_unique=True)
    new_mask = ~np.isin(ids_new, common, assume_unique=True)
    gone_order = np.argsort(ids_old[gone_mask], kind="stable")
    new_order = np.argsort(ids_new[new_mask], kind="stable")
    return TierMoves(
        order=order_t,
        up=common[up],
        up_from=order_arr[a[up]],
        up_to=order_arr[b[up]],
        down=common[down],
        down_from=order_arr[a[down]],
        down_to=order_arr[b[down]],
        new=ids_new[new_mask][new_order],
        new_tiers=t_new[new_mask][new_order],
        gone=ids_old[gone_mask][gone_order],
        gone_tiers=t_old[gone_mask][gone_order],
        unchanged=int((a == b).sum()),
        transitions=transitions,
    )


# --------------------------------------------------------------------------
# Pareto / concentration
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ParetoCurve:
    """Cumulative share of value held by the top share of customers.

    ``customer_share`` runs 0..1 in ``points`` equal steps; ``value_share[i]`` is
    the share of total value held by the best ``customer_share[i]`` of customers
    (linear interpolation between whole customers). Negative values are clipped
    to 0, as in :func:`gini`.
    """

    customer_share: FloatArray
    value_share: FloatArray
    n_customers: int
    total_value: float
    gini: float

    def share_at(self, fraction: float) -> float:
        """Value share of the top ``fraction`` of customers, read off the curve."""
        return float(np.interp(fraction, self.customer_share, self.value_share))


def _sorted_desc_nonneg(name: str, value: ArrayLike) -> FloatArray:
    v = _as_1d_float(name, value)
    if v.size == 0:
        raise ValueError(f"{name} must contain at least one customer")
    return -np.sort(-np.clip(v, 0.0, None))


def _cumulative_share(sorted_desc: FloatArray) -> FloatArray:
    """Cumulative value share after 0..n customers; all-zero base -> equality line."""
    n = sorted_desc.size
    total = sorted_desc.sum()
    if total <= 0:
        return np.arange(n + 1) / n
    cum = np.empty(n + 1)
    cum[0] = 0.0
    np.cumsum(sorted_desc, out=cum[1:])
    cum /= total
    cum[-1] = 1.0
    return cum


def pareto_curve(value: ArrayLike, points: int = 100) -> ParetoCurve:
    """Build the Pareto (ABC / Lorenz-from-the-top) curve of customer value.

    Customers are sorted by value descending. Why: "x% of customers make y% of
    revenue" is the question management asks, and the curve answers it for every
    x at once. An all-zero base is treated as perfectly equal (diagonal), which
    matches ``gini == 0``.
    """
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 1:
        raise ValueError(f"points must be a positive integer, got {points!r}")
    v = _sorted_desc_nonneg("value", value)
    n = v.size
    cum = _cumulative_share(v)
    customer_share = np.linspace(0.0, 1.0, int(points) + 1)
    value_share = np.interp(customer_share * n, np.arange(n + 1), cum)
    return ParetoCurve(
        customer_share=customer_share,
        value_share=value_share,
        n_customers=n,
        total_value=float(v.sum()),
        gini=_gini_sorted_desc(v),
    )


def share_of_top(value: ArrayLike, fraction: float) -> float:
    """Share of total value held by the top ``fraction`` of customers (0..1).

    ``share_of_top(v, 0.2) == 0.8`` in a textbook 80/20 base. A fractional number
    of customers is interpolated linearly (top 2.5 customers = top 2 plus half of
    the 3rd). Negative values are clipped to 0; an all-zero base returns
    ``fraction`` (perfect equality).
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating, np.integer)):
        raise ValueError(f"fraction must be a number in [0, 1], got {fraction!r}")  # noqa: TRY004 (ValueError: one line for the commands)
    if not (math.isfinite(fraction) and 0.0 <= fraction <= 1.0):
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    v = _sorted_desc_nonneg("value", value)
    n = v.size
    cum = _cumulative_share(v)
    return float(np.interp(fraction * n, np.arange(n + 1), cum))


def _gini_sorted_desc(sorted_desc: FloatArray) -> float:
    n = sorted_desc.size
    total = sorted_desc.sum()
    if total <= 0:
        return 0.0
    # Population Gini with ascending order x_(1..n): sum((2i - n - 1) x_(i)) / (n sum x).
    # For descending order the coefficient of position j (1-based) is (n + 1 - 2j).
    j = np.arange(1, n + 1, dtype=np.float64)
    return float(np.dot(n + 1 - 2 * j, sorted_desc) / (n * total))


def gini(value: ArrayLike) -> float:
    """Population Gini coefficient of customer value, in [0, (n-1)/n].

    ``G = sum_i (2i - n - 1) x_(i) / (n * sum x)`` with ascending order. 0 when
    all customers are equal; one customer holding everything gives (n-1)/n, e.g.
    0.75 for ``[0, 0, 0, 1]`` (-> 1 as n grows). The population (not the
    n/(n-1)-corrected sample) form is used because the whole base is measured.

    Negative values (net credit notes / returns) are clipped to 0: the Gini is
    only defined for non-negative quantities, and a negative entry can push it
    above 1. An all-zero base returns 0.0 (nothing is concentrated).
    """
    return _gini_sorted_desc(_sorted_desc_nonneg("value", value))


def plot_pareto(
    curve: ParetoCurve,
    path: str | PathLike[str],
    *,
    title: str = "Customer value concentration (Pareto)",
    highlight: float = 0.2,
    dpi: int = 100,
) -> Path:
    """Write the Pareto curve as a PNG and return its path.

    matplotlib is imported lazily (only reports need it) and drawn through a
    bare ``Figure`` on the Agg canvas -- no pyplot global state, so this is safe
    in servers and worker threads.
    """
    if not isinstance(curve, ParetoCurve):
        raise ValueError("curve must be a ParetoCurve (see pareto_curve)")  # noqa: TRY004 (ValueError: one line for the commands)
    if not 0.0 < highlight < 1.0:
        raise ValueError(f"highlight must be in (0, 1), got {highlight!r}")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(path)
    fig = Figure(figsize=(6.4, 4.8), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = curve.customer_share * 100
    y = curve.value_share * 100
    ax.plot(x, y, color="tab:blue", linewidth=2, label="cumulative value share")
    ax.plot([0, 100], [0, 100], color="grey", linestyle="--", linewidth=1, label="equal distribution")
    hx = highlight * 100
    hy = curve.share_at(highlight) * 100
    ax.plot([hx, hx, 0], [0, hy, hy], color="tab:red", linestyle=":", linewidth=1)
    ax.annotate(f"top {hx:.0f}% -> {hy:.1f}%", (hx, hy), textcoords="offset points", xytext=(8, -14))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("share of customers (best first), %")
    ax.set_ylabel("cumulative share of value, %")
    ax.set_title(f"{title}\n{curve.n_customers} customers, Gini {curve.gini:.2f}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.savefig(out, format="png")
    return out


# --------------------------------------------------------------------------
# Key-account dependency
# --------------------------------------------------------------------------

#: Dependency levels, weakest first.
DEPENDENCY_LEVELS: tuple[str, ...] = ("none", "key", "critical", "mono_client")


@dataclass(frozen=True)
class DependencyLevels:
    """Per-customer share of total revenue and the dependency level it implies."""

    levels: StrArray
    share: FloatArray
    total: float


def dependency_levels(
    value: ArrayLike,
    *,
    key: float = 0.10,
    critical: float = 0.20,
    mono: float = 0.50,
) -> DependencyLevels:
    """Flag customers the business depends on, by their share of total revenue.

    share > ``mono`` -> "mono_client", > ``critical`` -> "critical", > ``key`` ->
    "key", else "none" (thresholds are *strictly* above: exactly 10% is "none").
    Why: losing one customer above these shares is an existential risk, whatever
    its RFM score. If total revenue is <= 0 the shares are meaningless: every
    customer is "none" with share 0. Customers with negative value get a negative
    share and "none".
    """
    for label, t in (("key", key), ("critical", critical), ("mono", mono)):
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise ValueError(f"{label} threshold must be a number, got {t!r}")
    if not 0.0 <= key < critical < mono <= 1.0:
        raise ValueError(
            f"thresholds must satisfy 0 <= key < critical < mono <= 1, got {key}, {critical}, {mono}"
        )
    v = _as_1d_float("value", value)
    total = float(v.sum())
    if total <= 0:
        share = np.zeros(v.size)
        codes = np.zeros(v.size, dtype=np.int64)
    else:
        share = v / total
        codes = (share > key).astype(np.int64) + (share > critical) + (share > mono)
    return DependencyLevels(levels=_labels(DEPENDENCY_LEVELS, codes), share=share, total=total)
