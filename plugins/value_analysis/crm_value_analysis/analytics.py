"""Customer-value analytics over the whole customer base, in vectorised NumPy.

The database layer loads per-customer aggregates with one ``GROUP BY`` into
NumPy arrays that are aligned by position (``customer_ids[i]`` belongs to
``frequency[i]``, ``monetary[i]``, ...) and calls the functions here. Nothing
in this module loops over customers in Python, so 100k-1M customers take
milliseconds to a few hundred milliseconds; loops run only over the handful of
scores, tiers, rules or components.

Every function validates its input and raises :class:`ValueError` with a
message naming the offending argument, because the callers are report jobs
where a silent NaN or a misaligned array would produce a plausible-looking but
wrong report.

Contents
--------
* RFM: :func:`rfm_scores`, :func:`rfm_segments`, :class:`SegmentRule`,
  :data:`DEFAULT_SEGMENT_RULES`, :func:`parse_segment_rules`
* Value pyramid: :func:`tier_sizes`, :func:`pyramid_tiers`, :func:`tier_moves`
* Concentration: :func:`pareto_curve`, :func:`share_of_top`, :func:`gini`,
  :func:`plot_pareto`
* Key-account dependency: :func:`dependency_levels`
* Lifecycle: :func:`lifecycle_stages`
* Loyalty: :func:`loyalty_index`
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DEFAULT_LOYALTY_WEIGHTS",
    "DEFAULT_PYRAMID_CUTOFFS",
    "DEFAULT_SEGMENT_RULES",
    "DEPENDENCY_LEVELS",
    "LIFECYCLE_STAGES",
    "LOYALTY_COMPONENTS",
    "NO_PURCHASES",
    "UNCLASSIFIED",
    "DependencyLevels",
    "LoyaltyIndex",
    "ParetoCurve",
    "RFMScores",
    "SegmentRule",
    "TierMoves",
    "dependency_levels",
    "gini",
    "lifecycle_stages",
    "loyalty_index",
    "pareto_curve",
    "parse_segment_rules",
    "plot_pareto",
    "pyramid_tiers",
    "rfm_scores",
    "rfm_segments",
    "share_of_top",
    "tier_moves",
    "tier_sizes",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
StrArray = NDArray[np.str_]

#: Segment of customers without any purchase (all RFM scores are 0).
NO_PURCHASES = "no_purchases"
#: Segment of purchasers that no rule matched (only possible with custom rules).
UNCLASSIFIED = "unclassified"


# --------------------------------------------------------------------------
# validation and ranking helpers
# --------------------------------------------------------------------------


def _as_1d_float(name: str, values: ArrayLike, *, allow_nan: bool = False) -> FloatArray:
    """Convert to a 1-D float64 array; reject non-numeric data, inf and (unless allowed) NaN."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if allow_nan:
        if np.isinf(arr).any():
            raise ValueError(f"{name} must not contain infinite values")
    elif not np.isfinite(arr).all():
        raise ValueError(f"{name} must contain only finite numbers (no NaN or inf)")
    return arr


def _check_same_length(**arrays: np.ndarray) -> int:
    """Return the common length, or raise because positional alignment would be broken."""
    lengths = {name: int(a.shape[0]) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise ValueError(f"arrays must have the same length (aligned by customer): {detail}")
    return next(iter(lengths.values())) if lengths else 0


def _twice_average_rank(values: FloatArray) -> IntArray:
    """Return 2 x the 1-based average ('mid') rank of each value, as exact integers.

    Equal values share the average of the positions they occupy, so ties always
    get identical ranks. Doubling keeps the half ranks integral, which lets the
    quantile cut use integer arithmetic with no float boundary surprises.
    """
    n = values.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(values)  # order inside a run of ties is irrelevant
    sorted_v = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])  # 0-based run starts
    ends = np.r_[starts[1:], n]  # exclusive ends
    run_of_position = np.repeat(np.arange(starts.size), ends - starts)
    twice = np.empty(n, dtype=np.int64)
    # 1-based first + last position of the run = (start + 1) + end
    twice[order] = (starts + 1 + ends)[run_of_position]
    return twice


def _percentile_rank(values: FloatArray) -> FloatArray:
    """Average-rank percentile in [0, 1]: min -> 0, max -> 1, ties and a lone value -> mid."""
    n = values.size
    if n == 0:
        return np.zeros(0)
    if n == 1:
        return np.full(1, 0.5)
    return (_twice_average_rank(values) - 2) / (2.0 * (n - 1))


def _labels(names: Sequence[str], codes: NDArray[np.integer[Any]]) -> StrArray:
    """Map integer codes to a fixed-width string array (vectorised gather)."""
    return np.asarray(list(names), dtype=np.str_)[codes]


# --------------------------------------------------------------------------
# RFM scoring
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RFMScores:
    """RFM scores aligned with the input arrays.

    ``r``, ``f``, ``m`` are int16 in ``1..bins`` for purchasers and 0 for
    customers without purchases (``has_purchases`` is False for them).
    """

    r: NDArray[np.int16]
    f: NDArray[np.int16]
    m: NDArray[np.int16]
    has_purchases: NDArray[np.bool_]
    bins: int


def _quantile_scores(values: FloatArray, bins: int) -> NDArray[np.int16]:
    """Cut average ranks into ``bins`` equal-count groups, higher value -> higher score.

    score = floor(bins * (rank_avg - 0.5) / n) + 1, i.e. the Hazen percentile of
    the mid rank. Equal values share ``rank_avg`` hence the score; all-equal
    values (and a single value) sit at percentile 0.5, the middle score.
    """
    n = values.size
    if n == 0:
        return np.zeros(0, dtype=np.int16)
    twice_rank = _twice_average_rank(values)
    return ((twice_rank - 1) * bins // (2 * n) + 1).astype(np.int16)


def rfm_scores(
    recency_days: ArrayLike,
    frequency: ArrayLike,
    monetary: ArrayLike,
    *,
    bins: int = 5,
) -> RFMScores:
    """Score recency, frequency and monetary value 1..``bins`` by quantile (quintiles by default).

    Why quantiles: they adapt to every business without hand-set thresholds, and
    each score holds about the same number of customers, which keeps segments
    comparable between periods.

    Rules:

    * Customers with ``frequency == 0`` have no purchases: they get 0 for all
      three scores and are left out of the quantile computation (otherwise a large
      dormant base would compress the active customers into the top scores).
      Their recency/monetary may be anything, including NaN.
    * Ranks use method **'average'** (mid rank), then
      ``score = floor(bins * (rank - 0.5) / n) + 1``. Equal values therefore
      *always* share a score; with 10 distinct values and 5 bins the scores are
      1,1,2,2,3,3,4,4,5,5.
    * Recency: fewer days since the last purchase is better -> higher score.
    * All purchasers equal (or a single purchaser): everybody sits at the median,
      so everybody gets the **middle** score (3 of 5; for an even ``bins`` the
      upper middle). There is no information to call them best or worst, and the
      middle score keeps them out of the extreme segments (champions / lost).
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or not 1 <= bins <= 100:
        raise ValueError(f"bins must be an integer in 1..100, got {bins!r}")
    bins = int(bins)
    rec = _as_1d_float("recency_days", recency_days, allow_nan=True)
    freq = _as_1d_float("frequency", frequency)
    mon = _as_1d_float("monetary", monetary, allow_nan=True)
    _check_same_length(recency_days=rec, frequency=freq, monetary=mon)
    if (freq < 0).any():
        raise ValueError("frequency must be >= 0 (0 means 'no purchases')")
    active = freq > 0
    rec_a, freq_a, mon_a = rec[active], freq[active], mon[active]
    if np.isnan(rec_a).any():
        raise ValueError("recency_days must be set for every customer with frequency > 0")
    if (rec_a < 0).any():
        raise ValueError("recency_days must be >= 0 (days since the last purchase)")
    if np.isnan(mon_a).any():
        raise ValueError("monetary must be set for every customer with frequency > 0")

    n = freq.size
    r = np.zeros(n, dtype=np.int16)
    f = np.zeros(n, dtype=np.int16)
    m = np.zeros(n, dtype=np.int16)
    r[active] = _quantile_scores(-rec_a, bins)  # fewer days -> higher rank -> higher score
    f[active] = _quantile_scores(freq_a, bins)
    m[active] = _quantile_scores(mon_a, bins)
    return RFMScores(r=r, f=f, m=m, has_purchases=active, bins=bins)


# --------------------------------------------------------------------------
# RFM segments
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentRule:
    """One segment: inclusive ranges for the R score and for FM = (F + M) / 2.

    Rules are evaluated in order and the first match wins, so a broad rule
    placed after a narrow one only catches what is left.
    """

    name: str
    r: tuple[int, int]
    fm: tuple[float, float]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("segment name must be a non-empty string")
        if self.name in (NO_PURCHASES, UNCLASSIFIED):
            raise ValueError(f"segment name {self.name!r} is reserved")
        for label, (lo, hi) in (("r", self.r), ("fm", self.fm)):
            if not lo <= hi:
                raise ValueError(f"segment {self.name!r}: {label} range {lo}..{hi} is empty")
            if lo < 1:
                raise ValueError(
                    f"segment {self.name!r}: {label} range must start at >= 1 "
                    "(score 0 is reserved for customers without purchases)"
                )


#: Default rules for 5-bin scores, after the widely used R x FM grid
#: (R = recency score, FM = mean of frequency and monetary scores).
#: Together they cover every purchaser exactly once:
#:
#: ============  ======  ===========  ==========================================
#: segment       R       FM           meaning
#: ============  ======  ===========  ==========================================
#: champions     4-5     4-5          bought recently, often, and spend the most
#: loyal         3-5     3-5          solid repeat buyers (rest of the top-right)
#: new           4-5     1-1.5        recent but (so far) little and rarely
#: potential     3-5     1-3          recent, average value: could become loyal
#: cant_lose     1-2     4.5-5        were the best customers, not seen for long
#: at_risk       1-2     3-4.5        valuable, but slipping away
#: hibernating   2       1-3          low value, long since the last purchase
#: lost          1       1-3          lowest recency and low value
#: ============  ======  ===========  ==========================================
DEFAULT_SEGMENT_RULES: tuple[SegmentRule, ...] = (
    SegmentRule("champions", (4, 5), (4.0, 5.0)),
    SegmentRule("loyal", (3, 5), (3.0, 5.0)),
    SegmentRule("new", (4, 5), (1.0, 1.5)),
    SegmentRule("potential", (3, 5), (1.0, 3.0)),
    SegmentRule("cant_lose", (1, 2), (4.5, 5.0)),
    SegmentRule("at_risk", (1, 2), (3.0, 4.5)),
    SegmentRule("hibernating", (2, 2), (1.0, 3.0)),
    SegmentRule("lost", (1, 1), (1.0, 3.0)),
)


def _as_score_array(name: str, values: ArrayLike) -> IntArray:
    arr = _as_1d_float(name, values)
    if (arr < 0).any() or (arr != np.floor(arr)).any():
        raise ValueError(f"{name} must contain non-negative integer scores")
    return arr.astype(np.int64)


def rfm_segments(
    r: ArrayLike,
    f: ArrayLike,
    m: ArrayLike,
    rules: Sequence[SegmentRule] | None = None,
) -> StrArray:
    """Name each customer's segment from its R, F and M scores (first matching rule wins).

    Customers with a score of 0 (no purchases) get ``"no_purchases"``; purchasers
    that no rule matches get ``"unclassified"`` (impossible with
    :data:`DEFAULT_SEGMENT_RULES`, which cover the whole 5x5 grid). Segments are
    configurable because every business names and cuts them differently; see
    :func:`parse_segment_rules`.
    """
    rules = DEFAULT_SEGMENT_RULES if rules is None else tuple(rules)
    if not rules:
        raise ValueError("rules must contain at least one SegmentRule")
    if not all(isinstance(rule, SegmentRule) for rule in rules):
        raise ValueError("rules must be SegmentRule instances (see parse_segment_rules)")
    ra = _as_score_array("r", r)
    fa = _as_score_array("f", f)
    ma = _as_score_array("m", m)
    n = _check_same_length(r=ra, f=fa, m=ma)
    fm = (fa + ma) / 2.0

    names = [rule.name for rule in rules] + [UNCLASSIFIED, NO_PURCHASES]
    unclassified, no_purchase = len(rules), len(rules) + 1
    codes = np.full(n, unclassified, dtype=np.int64)
    no_purch = (ra == 0) | (fa == 0) | (ma == 0)
    codes[no_purch] = no_purchase
    open_ = ~no_purch
    for i, rule in enumerate(rules):
        hit = (
            open_
            & (ra >= rule.r[0]) & (ra <= rule.r[1])
            & (fm >= rule.fm[0]) & (fm <= rule.fm[1])
        )
        codes[hit] = i
        open_ &= ~hit
    return _labels(names, codes)


_RULE_KEYS = frozenset({"name", "r", "fm"})


def _parse_range(seg: str, key: str, raw: Any, max_score: int, *, integer: bool) -> tuple[Any, Any]:
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence) or len(raw) != 2:
        raise ValueError(f"segment {seg!r}: {key!r} must be a [low, high] pair, got {raw!r}")
    lo, hi = raw
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"segment {seg!r}: {key!r} bounds must be numbers, got {raw!r}")
        if integer and v != int(v):
            raise ValueError(f"segment {seg!r}: {key!r} bounds must be integers, got {raw!r}")
        if not 1 <= v <= max_score:
            raise ValueError(f"segment {seg!r}: {key!r} range {raw!r} is outside 1..{max_score}")
    if lo > hi:
        raise ValueError(f"segment {seg!r}: {key!r} low bound {lo} is above high bound {hi}")
    return (int(lo), int(hi)) if integer else (float(lo), float(hi))


def parse_segment_rules(mapping: Mapping[str, Any], *, max_score: int = 5) -> list[SegmentRule]:
    """Validate a segment config and build the ordered rule list.

    Expected shape (e.g. from the plugin's YAML/JSON config)::

        {"rules": [
            {"name": "champions", "r": [4, 5], "fm": [4, 5]},
            {"name": "lost",      "r": [1, 1], "fm": [1, 3]},
        ]}

    Raises ValueError for: a non-mapping, unknown or missing keys, an empty
    rule list, bounds outside ``1..max_score``, non-integer R bounds, low > high,
    empty/duplicate/reserved names. Failing loudly at config load beats silently
    putting customers into the wrong segment.
    """
    if not isinstance(mapping, Mapping):
        raise ValueError(f"segment config must be a mapping, got {type(mapping).__name__}")
    unknown = set(mapping) - {"rules"}
    if unknown:
        raise ValueError(f"unknown segment config keys: {sorted(map(str, unknown))}")
    if "rules" not in mapping:
        raise ValueError("segment config needs a 'rules' list")
    raw_rules = mapping["rules"]
    if isinstance(raw_rules, (str, bytes, Mapping)) or not isinstance(raw_rules, Sequence):
        raise ValueError("segment config 'rules' must be a list")
    if not raw_rules:
        raise ValueError("segment config 'rules' must not be empty")

    rules: list[SegmentRule] = []
    seen: set[str] = set()
    for idx, raw in enumerate(raw_rules):
        if not isinstance(raw, Mapping):
            raise ValueError(f"rule #{idx} must be a mapping with keys name, r, fm")
        bad = set(raw) - _RULE_KEYS
        if bad:
            raise ValueError(f"rule #{idx}: unknown keys {sorted(map(str, bad))}")
        missing = _RULE_KEYS - set(raw)
        if missing:
            raise ValueError(f"rule #{idx}: missing keys {sorted(missing)}")
        name = raw["name"]
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"rule #{idx}: name must be a non-empty string")
        if name in seen:
            raise ValueError(f"duplicate segment name {name!r}")
        seen.add(name)
        r_range = _parse_range(name, "r", raw["r"], max_score, integer=True)
        fm_range = _parse_range(name, "fm", raw["fm"], max_score, integer=False)
        rules.append(SegmentRule(name=name, r=r_range, fm=fm_range))
    return rules


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
            raise ValueError(f"fraction of tier {name!r} must be a number, got {frac!r}")
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
        raise ValueError(f"fraction must be a number in [0, 1], got {fraction!r}")
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
        raise ValueError("curve must be a ParetoCurve (see pareto_curve)")
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

    params = {
        "formation_after_days": formation_after_days,
        "stability_after_days": stability_after_days,
        "churn_after_days": churn_after_days,
        "decline_trend": decline_trend,
        "growth_trend": growth_trend,
        "gap_factor": gap_factor,
        "min_gap_days": min_gap_days,
        "p_alive_threshold": p_alive_threshold,
    }
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
    for stage, mask in (
        ("formation", formation),
        ("decline", decline),
        ("exploration", exploration),
        ("churned", churned),
        ("prospect", ~buyer),
    ):
        codes[mask] = LIFECYCLE_STAGES.index(stage)
    return _labels(LIFECYCLE_STAGES, codes)


# --------------------------------------------------------------------------
# Loyalty index
# --------------------------------------------------------------------------

#: Known loyalty components (higher raw value = more loyal; flip signs before if not).
LOYALTY_COMPONENTS: tuple[str, ...] = (
    "duration",
    "frequency",
    "frequency_trend",
    "spend",
    "cross_buying",
    "satisfaction",
)

#: Default weights: behaviour (duration, frequency, spend) dominates; trend,
#: cross-buying and stated satisfaction refine it. They sum to 1.
DEFAULT_LOYALTY_WEIGHTS: dict[str, float] = {
    "duration": 0.20,
    "frequency": 0.20,
    "frequency_trend": 0.15,
    "spend": 0.20,
    "cross_buying": 0.15,
    "satisfaction": 0.10,
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
        raise ValueError("weights must be a mapping of component name -> weight")
    for name, w in w_map.items():
        if isinstance(w, bool) or not isinstance(w, (int, float, np.floating, np.integer)):
            raise ValueError(f"weight of {name!r} must be a number, got {w!r}")
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"weight of {name!r} must be finite and >= 0, got {w!r}")
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
