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

The code lives in :mod:`rfm`, :mod:`tiers` and :mod:`stages` (helpers in :mod:`arrays`); this
module is the one import path the rest of the plugin and its tests use.
"""

from __future__ import annotations

from crm_value_analysis.rfm import (
    DEFAULT_SEGMENT_RULES,
    NO_PURCHASES,
    UNCLASSIFIED,
    RFMScores,
    SegmentRule,
    parse_segment_rules,
    rfm_scores,
    rfm_segments,
)
from crm_value_analysis.stages import (
    DEFAULT_LOYALTY_WEIGHTS,
    LIFECYCLE_STAGES,
    LOYALTY_COMPONENTS,
    LoyaltyIndex,
    lifecycle_stages,
    loyalty_index,
)
from crm_value_analysis.tiers import (
    DEFAULT_PYRAMID_CUTOFFS,
    DEPENDENCY_LEVELS,
    DependencyLevels,
    ParetoCurve,
    TierMoves,
    dependency_levels,
    gini,
    pareto_curve,
    plot_pareto,
    pyramid_tiers,
    share_of_top,
    tier_moves,
    tier_sizes,
)

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
