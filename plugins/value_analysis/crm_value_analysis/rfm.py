"""RFM scoring and segments over whole arrays (split from :mod:`analytics`, which re-exports it)."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from crm_value_analysis.arrays import (
    FloatArray,
    IntArray,
    StrArray,
    _as_1d_float,
    _check_same_length,
    _labels,
    _twice_average_rank,
)

NO_PURCHASES = "no_purchases"
#: Segment of purchasers that no rule matched (only possible with custom rules).
UNCLASSIFIED = "unclassified"


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
        raise ValueError(f"segment config must be a mapping, got {type(mapping).__name__}")  # noqa: TRY004 (ValueError: one line for the commands)
    unknown = set(mapping) - {"rules"}
    if unknown:
        raise ValueError(f"unknown segment config keys: {sorted(map(str, unknown))}")
    if "rules" not in mapping:
        raise ValueError("segment config needs a 'rules' list")
    raw_rules = mapping["rules"]
    if isinstance(raw_rules, (str, bytes, Mapping)) or not isinstance(raw_rules, Sequence):
        raise ValueError("segment config 'rules' must be a list")  # noqa: TRY004 (ValueError: one line for the commands)
    if not raw_rules:
        raise ValueError("segment config 'rules' must not be empty")

    rules: list[SegmentRule] = []
    seen: set[str] = set()
    for idx, raw in enumerate(raw_rules):
        if not isinstance(raw, Mapping):
            raise ValueError(f"rule #{idx} must be a mapping with keys name, r, fm")  # noqa: TRY004 (ValueError: one line for the commands)
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
