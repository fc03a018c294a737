"""Tests for crm_value_analysis.analytics: hand-checked numbers that a bug would change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from crm_value_analysis import analytics as va

# --------------------------------------------------------------------------
# RFM scores
# --------------------------------------------------------------------------


def test_quintiles_on_ten_distinct_values() -> None:
    rng = np.random.default_rng(1)
    perm = rng.permutation(10)
    monetary = (np.arange(1, 11) * 10.0)[perm]
    recency = np.arange(1, 11, dtype=float)[perm]  # 1 day = best
    frequency = np.arange(1, 11)[perm]
    s = va.rfm_scores(recency, frequency, monetary)
    expected_up = np.array([1, 1, 2, 2, 3, 3, 4, 4, 5, 5])[perm]
    np.testing.assert_array_equal(s.m, expected_up)
    np.testing.assert_array_equal(s.f, expected_up)
    # recency: fewer days is better -> reversed
    np.testing.assert_array_equal(s.r, (6 - np.array([1, 1, 2, 2, 3, 3, 4, 4, 5, 5]))[perm])
    assert s.bins == 5
    assert s.has_purchases.all()


def test_recency_direction() -> None:
    s = va.rfm_scores([1.0, 400.0], [1, 1], [10.0, 10.0])
    assert s.r[0] > s.r[1]
    assert (s.r[0], s.r[1]) == (4, 2)  # mid ranks 2 and 1 of 2 -> Hazen 0.75 / 0.25


def test_ties_share_score_average_rank() -> None:
    # six 1s occupy ranks 1..6 -> mid rank 3.5 -> floor(5 * 3.0 / 10) + 1 = 2
    freq = np.array([1, 1, 1, 1, 1, 1, 2, 2, 3, 10])
    s = va.rfm_scores(np.arange(10.0), freq, np.arange(10.0))
    np.testing.assert_array_equal(s.f, [2, 2, 2, 2, 2, 2, 4, 4, 5, 5])


def test_ties_property_random() -> None:
    rng = np.random.default_rng(7)
    mon = rng.integers(0, 20, size=5000).astype(float)  # heavy ties
    s = va.rfm_scores(rng.integers(0, 50, 5000), rng.integers(1, 4, 5000), mon)
    order = np.argsort(mon)
    # monotone: a higher value never gets a lower score
    assert (np.diff(s.m[order].astype(int)) >= 0).all()
    # equal values -> equal scores
    for v in np.unique(mon):
        assert np.unique(s.m[mon == v]).size == 1


def test_distinct_values_fill_bins_evenly() -> None:
    rng = np.random.default_rng(3)
    s = va.rfm_scores(rng.random(1000), np.ones(1000), rng.random(1000))
    np.testing.assert_array_equal(np.bincount(s.m), [0, 200, 200, 200, 200, 200])
    np.testing.assert_array_equal(np.bincount(s.r), [0, 200, 200, 200, 200, 200])


def test_no_purchase_customers_get_zero_and_are_excluded() -> None:
    recency = np.array([np.nan, 5.0, 4.0, np.nan, 3.0, 2.0, 1.0, 999.0])
    frequency = np.array([0, 1, 1, 0, 1, 1, 1, 0])
    monetary = np.array([0.0, 10.0, 20.0, 0.0, 30.0, 40.0, 50.0, np.nan])
    s = va.rfm_scores(recency, frequency, monetary)
    none = frequency == 0
    assert (s.r[none] == 0).all() and (s.f[none] == 0).all() and (s.m[none] == 0).all()
    np.testing.assert_array_equal(s.has_purchases, ~none)
    # the 5 purchasers alone: distinct values -> 1..5
    np.testing.assert_array_equal(s.m[~none], [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(s.r[~none], [1, 2, 3, 4, 5])
    seg = va.rfm_segments(s.r, s.f, s.m)
    assert (seg[none] == va.NO_PURCHASES).all()
    assert not (seg[~none] == va.NO_PURCHASES).any()


def test_all_equal_customers_get_middle_score() -> None:
    s = va.rfm_scores(np.full(7, 30.0), np.full(7, 2), np.full(7, 99.0))
    for arr in (s.r, s.f, s.m):
        np.testing.assert_array_equal(arr, np.full(7, 3))
    s4 = va.rfm_scores(np.full(4, 30.0), np.full(4, 2), np.full(4, 99.0), bins=4)
    np.testing.assert_array_equal(s4.m, [3, 3, 3, 3])  # upper middle for even bins


def test_single_customer() -> None:
    s = va.rfm_scores([12.0], [3], [450.0])
    assert (s.r[0], s.f[0], s.m[0]) == (3, 3, 3)
    assert va.rfm_segments(s.r, s.f, s.m)[0] == "loyal"


def test_empty_base() -> None:
    s = va.rfm_scores([], [], [])
    assert s.r.size == s.f.size == s.m.size == 0
    assert va.rfm_segments(s.r, s.f, s.m).size == 0


def test_other_bins() -> None:
    s = va.rfm_scores(np.arange(10.0), np.ones(10), np.arange(10.0), bins=10)
    np.testing.assert_array_equal(s.m, np.arange(1, 11))
    s1 = va.rfm_scores(np.arange(3.0), np.ones(3), np.arange(3.0), bins=1)
    np.testing.assert_array_equal(s1.m, [1, 1, 1])


@pytest.mark.parametrize(
    "args, kwargs, msg",
    [
        (([1.0, 2.0], [1, 1], [1.0]), {}, "same length"),
        (([1.0], [-1], [1.0]), {}, "frequency"),
        (([np.nan], [1], [1.0]), {}, "recency_days"),
        (([-1.0], [1], [1.0]), {}, "recency_days"),
        (([1.0], [1], [np.nan]), {}, "monetary"),
        (([1.0], [np.nan], [1.0]), {}, "frequency"),
        (([1.0], [1], [1.0]), {"bins": 0}, "bins"),
        (([1.0], [1], [1.0]), {"bins": 2.5}, "bins"),
        (([[1.0]], [[1]], [[1.0]]), {}, "1-D"),
        ((["a"], [1], [1.0]), {}, "numeric"),
    ],
)
def test_rfm_scores_errors(args: tuple, kwargs: dict, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        va.rfm_scores(*args, **kwargs)


# --------------------------------------------------------------------------
# Segments
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "r, f, m, segment",
    [
        (5, 5, 5, "champions"),
        (4, 4, 4, "champions"),
        (3, 3, 3, "loyal"),
        (5, 3, 4, "loyal"),
        (5, 1, 1, "new"),
        (4, 1, 2, "new"),
        (5, 2, 2, "potential"),
        (3, 1, 2, "potential"),
        (1, 5, 5, "cant_lose"),
        (2, 4, 5, "cant_lose"),
        (2, 3, 4, "at_risk"),
        (1, 3, 3, "at_risk"),
        (2, 1, 1, "hibernating"),
        (2, 2, 3, "hibernating"),
        (1, 1, 1, "lost"),
        (1, 2, 3, "lost"),
        (0, 0, 0, "no_purchases"),
    ],
)
def test_default_segments(r: int, f: int, m: int, segment: str) -> None:
    assert va.rfm_segments([r], [f], [m])[0] == segment


def test_default_rules_cover_whole_grid() -> None:
    r, f, m = (a.ravel() for a in np.meshgrid(*[np.arange(1, 6)] * 3, indexing="ij"))
    seg = va.rfm_segments(r, f, m)
    assert not (seg == va.UNCLASSIFIED).any()
    assert set(seg) == {
        "champions", "loyal", "potential", "new", "at_risk", "cant_lose", "hibernating", "lost",
    }


def test_first_matching_rule_wins_and_unclassified() -> None:
    rules = [
        va.SegmentRule("a", (4, 5), (1.0, 5.0)),
        va.SegmentRule("b", (5, 5), (1.0, 5.0)),  # shadowed by "a"
    ]
    seg = va.rfm_segments([5, 4, 2, 0], [5, 1, 3, 0], [5, 1, 3, 0], rules)
    np.testing.assert_array_equal(seg, ["a", "a", "unclassified", "no_purchases"])


def test_parse_segment_rules_roundtrip() -> None:
    config = {
        "rules": [
            {"name": rule.name, "r": list(rule.r), "fm": list(rule.fm)}
            for rule in va.DEFAULT_SEGMENT_RULES
        ]
    }
    rules = va.parse_segment_rules(config)
    assert rules == list(va.DEFAULT_SEGMENT_RULES)
    assert isinstance(rules[0].r[0], int) and isinstance(rules[0].fm[0], float)


@pytest.mark.parametrize(
    "config, msg",
    [
        ({"rules": []}, "empty"),
        ({}, "rules"),
        ({"rules": [], "extra": 1}, "unknown"),
        ({"rules": [{"name": "x", "r": [1, 5], "fm": [1, 5], "colour": "red"}]}, "unknown"),
        ({"rules": [{"name": "x", "r": [1, 5]}]}, "missing"),
        ({"rules": [{"name": "x", "r": [0, 5], "fm": [1, 5]}]}, "outside"),
        ({"rules": [{"name": "x", "r": [1, 6], "fm": [1, 5]}]}, "outside"),
        ({"rules": [{"name": "x", "r": [1, 5], "fm": [0.5, 5]}]}, "outside"),
        ({"rules": [{"name": "x", "r": [1, 5], "fm": [1, 5.5]}]}, "outside"),
        ({"rules": [{"name": "x", "r": [1.5, 5], "fm": [1, 5]}]}, "integers"),
        ({"rules": [{"name": "x", "r": [4, 2], "fm": [1, 5]}]}, "above"),
        ({"rules": [{"name": "x", "r": [1, 5, 3], "fm": [1, 5]}]}, "pair"),
        ({"rules": [{"name": "x", "r": "15", "fm": [1, 5]}]}, "pair"),
        ({"rules": [{"name": "", "r": [1, 5], "fm": [1, 5]}]}, "name"),
        ({"rules": [{"name": "no_purchases", "r": [1, 5], "fm": [1, 5]}]}, "reserved"),
        (
            {"rules": [{"name": "x", "r": [1, 5], "fm": [1, 5]}, {"name": "x", "r": [1, 5], "fm": [1, 5]}]},
            "duplicate",
        ),
        ({"rules": "champions"}, "list"),
        ({"rules": ["champions"]}, "mapping"),
        ([{"name": "x"}], "mapping"),
    ],
)
def test_parse_segment_rules_errors(config: object, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        va.parse_segment_rules(config)  # type: ignore[arg-type]


def test_rfm_segments_errors() -> None:
    with pytest.raises(ValueError, match="same length"):
        va.rfm_segments([1, 2], [1], [1])
    with pytest.raises(ValueError, match="integer scores"):
        va.rfm_segments([1.5], [1], [1])
    with pytest.raises(ValueError, match="integer scores"):
        va.rfm_segments([-1], [1], [1])
    with pytest.raises(ValueError, match="at least one"):
        va.rfm_segments([1], [1], [1], [])
    with pytest.raises(ValueError, match="SegmentRule"):
        va.rfm_segments([1], [1], [1], [("x", (1, 5), (1, 5))])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="empty"):
        va.SegmentRule("x", (3, 2), (1.0, 5.0))


# --------------------------------------------------------------------------
# Pyramid
# --------------------------------------------------------------------------


def _counts(tiers: np.ndarray) -> dict[str, int]:
    names, counts = np.unique(tiers, return_counts=True)
    return dict(zip(names.tolist(), counts.tolist()))


def test_pyramid_1000_exact_counts_and_order() -> None:
    rng = np.random.default_rng(11)
    value = rng.permutation(np.arange(1, 1001, dtype=float))
    tiers = va.pyramid_tiers(value)
    assert _counts(tiers) == {"vip": 10, "key": 40, "normal": 150, "small": 800}
    assert (value[tiers == "vip"] > 990).all()
    assert set(value[tiers == "key"]) == set(np.arange(951.0, 991.0))
    assert value[tiers == "normal"].min() == 801.0


def test_pyramid_100() -> None:
    tiers = va.pyramid_tiers(np.arange(100, 0, -1, dtype=float))
    assert _counts(tiers) == {"vip": 1, "key": 4, "normal": 15, "small": 80}
    assert tiers[0] == "vip" and (tiers[1:5] == "key").all()


def test_tier_sizes_rounding_rule() -> None:
    np.testing.assert_array_equal(va.tier_sizes(1000), [10, 40, 150, 800])
    np.testing.assert_array_equal(va.tier_sizes(100), [1, 4, 15, 80])
    np.testing.assert_array_equal(va.tier_sizes(50), [1, 2, 7, 40])  # 0.5 -> 1 VIP (half up)
    np.testing.assert_array_equal(va.tier_sizes(49), [0, 2, 8, 39])  # 0.49 -> no VIP
    np.testing.assert_array_equal(va.tier_sizes(0), [0, 0, 0, 0])
    fr = np.array([0.01, 0.04, 0.15, 0.80])
    for n in range(1, 3000, 7):
        sizes = va.tier_sizes(n)
        assert sizes.sum() == n
        assert (np.abs(sizes - fr * n) < 1).all()
        assert ((sizes >= 1) | (fr * n < 1)).all()


def test_pyramid_boundary_ties_go_to_higher_tier() -> None:
    value = np.arange(1000, 0, -1, dtype=float)
    value[10] = value[9]  # 10th and 11th best tie at the VIP boundary
    tiers = va.pyramid_tiers(value)
    assert tiers[9] == tiers[10] == "vip"
    assert _counts(tiers) == {"vip": 11, "key": 39, "normal": 150, "small": 800}
    # independent of row order
    perm = np.random.default_rng(5).permutation(1000)
    np.testing.assert_array_equal(va.pyramid_tiers(value[perm]), tiers[perm])


def test_pyramid_all_equal_go_to_top() -> None:
    tiers = va.pyramid_tiers(np.full(100, 7.0))
    assert (tiers == "vip").all()


def test_pyramid_non_positive_always_bottom() -> None:
    value = np.concatenate([np.arange(10, 0, -1, dtype=float), np.zeros(85), -np.ones(5)])
    tiers = va.pyramid_tiers(value)
    assert (tiers[10:] == "small").all()
    assert tiers[0] == "vip" and (tiers[1:5] == "key").all() and (tiers[5:10] == "normal").all()
    assert (va.pyramid_tiers(np.zeros(20)) == "small").all()


def test_pyramid_custom_cutoffs_and_errors() -> None:
    tiers = va.pyramid_tiers([5.0, 4.0, 3.0, 2.0], cutoffs={"a": 0.5, "b": 0.5})
    np.testing.assert_array_equal(tiers, ["a", "a", "b", "b"])
    assert va.pyramid_tiers([]).size == 0
    with pytest.raises(ValueError, match="sum to 1"):
        va.pyramid_tiers([1.0], cutoffs=(("a", 0.5), ("b", 0.4)))
    with pytest.raises(ValueError, match="unique"):
        va.pyramid_tiers([1.0], cutoffs=(("a", 0.5), ("a", 0.5)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        va.pyramid_tiers([1.0], cutoffs=(("a", 1.5), ("b", -0.5)))
    with pytest.raises(ValueError, match="at least one"):
        va.pyramid_tiers([1.0], cutoffs=())
    with pytest.raises(ValueError, match="pair"):
        va.pyramid_tiers([1.0], cutoffs=(("a", 0.5, 1), ("b", 0.5)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        va.pyramid_tiers([1.0, np.nan])
    with pytest.raises(ValueError, match="non-negative"):
        va.tier_sizes(-1)


ORDER = ("vip", "key", "normal", "small")


def test_tier_moves_small_example() -> None:
    moves = va.tier_moves(
        [1, 2, 3, 4, 5],
        ["vip", "key", "normal", "small", "small"],
        [6, 5, 4, 3, 2],
        ["key", "small", "normal", "small", "vip"],
        ORDER,
    )
    np.testing.assert_array_equal(moves.up, [2, 4])
    np.testing.assert_array_equal(moves.up_from, ["key", "small"])
    np.testing.assert_array_equal(moves.up_to, ["vip", "normal"])
    np.testing.assert_array_equal(moves.down, [3])
    np.testing.assert_array_equal(moves.down_from, ["normal"])
    np.testing.assert_array_equal(moves.down_to, ["small"])
    np.testing.assert_array_equal(moves.new, [6])
    np.testing.assert_array_equal(moves.new_tiers, ["key"])
    np.testing.assert_array_equal(moves.gone, [1])
    np.testing.assert_array_equal(moves.gone_tiers, ["vip"])
    assert moves.unchanged == 1
    expected = np.zeros((4, 4), dtype=int)
    expected[1, 0] = expected[2, 3] = expected[3, 2] = expected[3, 3] = 1
    np.testing.assert_array_equal(moves.transitions, expected)


def test_tier_moves_string_ids_and_pyramid_output() -> None:
    ids = np.array(["c1", "c2", "c3"])
    old = va.pyramid_tiers([3.0, 2.0, 1.0], cutoffs=(("top", 1 / 3), ("bottom", 2 / 3)))
    new = va.pyramid_tiers([1.0, 2.0, 3.0], cutoffs=(("top", 1 / 3), ("bottom", 2 / 3)))
    moves = va.tier_moves(ids, old, ids, new, ("top", "bottom"))
    np.testing.assert_array_equal(moves.up, ["c3"])
    np.testing.assert_array_equal(moves.down, ["c1"])
    assert moves.new.size == 0 and moves.gone.size == 0 and moves.unchanged == 1


def test_tier_moves_errors() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        va.tier_moves([1, 1], ["vip", "key"], [1], ["vip"], ORDER)
    with pytest.raises(ValueError, match="not in order"):
        va.tier_moves([1], ["gold"], [1], ["vip"], ORDER)
    with pytest.raises(ValueError, match="entries"):
        va.tier_moves([1, 2], ["vip"], [1], ["vip"], ORDER)
    with pytest.raises(ValueError, match="once"):
        va.tier_moves([1], ["vip"], [1], ["vip"], ("vip", "vip"))
    with pytest.raises(ValueError, match="once"):
        va.tier_moves([1], ["vip"], [1], ["vip"], ())
    with pytest.raises(ValueError, match="same kind of id"):
        va.tier_moves([1, 2], ["vip", "key"], ["1"], ["vip"], ORDER)
    with pytest.raises(ValueError, match="comparable"):
        va.tier_moves(np.array([1, None], dtype=object), ["vip", "key"], [1], ["vip"], ORDER)


# --------------------------------------------------------------------------
# Pareto / Gini
# --------------------------------------------------------------------------


def _eighty_twenty() -> np.ndarray:
    value = np.concatenate([np.full(20, 4.0), np.full(80, 0.25)])  # 80 + 20 = 100
    return np.random.default_rng(2).permutation(value)


def test_share_of_top_80_20() -> None:
    v = _eighty_twenty()
    assert va.share_of_top(v, 0.2) == pytest.approx(0.8)
    assert va.share_of_top(v, 0.1) == pytest.approx(0.4)
    assert va.share_of_top(v, 0.0) == 0.0
    assert va.share_of_top(v, 1.0) == pytest.approx(1.0)
    # fractional customer interpolated: top 2.5 of [4, 3, 2, 1] = 4 + 3 + 1 = 8 of 10
    assert va.share_of_top([1.0, 2.0, 3.0, 4.0], 0.625) == pytest.approx(0.8)
    assert va.share_of_top([0.0, 0.0], 0.5) == 0.5  # all zero: equality


def test_pareto_curve() -> None:
    curve = va.pareto_curve(_eighty_twenty(), points=10)
    assert curve.customer_share.shape == curve.value_share.shape == (11,)
    assert curve.value_share[0] == 0.0 and curve.value_share[-1] == pytest.approx(1.0)
    assert curve.value_share[2] == pytest.approx(0.8)
    assert curve.share_at(0.2) == pytest.approx(0.8)
    assert (np.diff(curve.value_share) >= 0).all()
    assert curve.n_customers == 100 and curve.total_value == pytest.approx(100.0)
    # gini of 20 x 4 and 80 x 0.25 = 0.6 (population form)
    assert curve.gini == pytest.approx(0.6)
    flat = va.pareto_curve(np.zeros(5), points=5)
    np.testing.assert_allclose(flat.value_share, flat.customer_share)
    with pytest.raises(ValueError, match="points"):
        va.pareto_curve([1.0], points=0)
    with pytest.raises(ValueError, match="at least one"):
        va.pareto_curve([])


def test_gini_values() -> None:
    assert va.gini(np.full(10, 3.0)) == pytest.approx(0.0)
    assert va.gini([0.0, 0.0, 0.0, 1.0]) == pytest.approx(0.75)
    assert va.gini([1.0, 2.0, 3.0, 4.0]) == pytest.approx(0.25)  # (-3-2+3+12)/(4*10)
    assert va.gini([-5.0, 0.0, 0.0, 1.0]) == pytest.approx(0.75)  # negatives clipped
    assert va.gini([0.0, 0.0]) == 0.0
    assert va.gini([5.0]) == 0.0
    big = np.zeros(10_000)
    big[0] = 1.0
    assert va.gini(big) == pytest.approx(0.9999)
    with pytest.raises(ValueError, match="at least one"):
        va.gini([])
    with pytest.raises(ValueError, match="finite"):
        va.gini([1.0, np.inf])


def test_share_of_top_errors() -> None:
    with pytest.raises(ValueError, match="fraction"):
        va.share_of_top([1.0], 1.5)
    with pytest.raises(ValueError, match="fraction"):
        va.share_of_top([1.0], "0.2")  # type: ignore[arg-type]


def test_plot_pareto_writes_png(tmp_path: Path) -> None:
    out = va.plot_pareto(va.pareto_curve(_eighty_twenty()), tmp_path / "pareto.png")
    data = out.read_bytes()
    assert len(data) > 1000
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="ParetoCurve"):
        va.plot_pareto([0.1, 0.2], tmp_path / "x.png")  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Dependency
# --------------------------------------------------------------------------


def test_dependency_thresholds() -> None:
    dep = va.dependency_levels([9.9, 10.1, 20.1, 50.1, 9.8])
    np.testing.assert_array_equal(dep.levels, ["none", "key", "critical", "mono_client", "none"])
    np.testing.assert_allclose(dep.share, [0.099, 0.101, 0.201, 0.501, 0.098])
    assert dep.total == pytest.approx(100.0)


def test_dependency_strictly_above_and_non_positive_total() -> None:
    np.testing.assert_array_equal(va.dependency_levels([10.0, 90.0]).levels, ["none", "mono_client"])
    dep = va.dependency_levels([5.0, -5.0])
    assert (dep.levels == "none").all() and (dep.share == 0).all()
    custom = va.dependency_levels([30.0, 70.0], key=0.3, critical=0.6, mono=0.8)
    np.testing.assert_array_equal(custom.levels, ["none", "critical"])
    with pytest.raises(ValueError, match="key < critical < mono"):
        va.dependency_levels([1.0], key=0.3, critical=0.2)
    with pytest.raises(ValueError, match="finite"):
        va.dependency_levels([np.nan])
