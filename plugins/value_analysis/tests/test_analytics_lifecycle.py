"""Tests for crm_value_analysis.analytics (lifecycle stages, the loyalty index, the whole
pipeline): hand-checked numbers that a bug would change (split from test_analytics.py)."""
from __future__ import annotations

import numpy as np
import pytest
from crm_value_analysis import analytics as va

LIFECYCLE_CASES = [
    # (first, last, frequency, trend, p_alive, expected)
    (np.nan, np.nan, 0, np.nan, np.nan, "prospect"),
    (800.0, 400.0, 5, 0.0, np.nan, "churned"),  # silent > 365 days
    (500.0, 10.0, 10, 0.0, 0.1, "churned"),  # model says probably gone
    (20.0, 20.0, 1, np.nan, np.nan, "exploration"),  # one purchase, young
    (700.0, 10.0, 8, -0.5, np.nan, "decline"),  # spend down 50%
    (300.0, 200.0, 11, 0.0, np.nan, "decline"),  # usual gap 10 d (floor 30) -> 200 > 75
    (200.0, 200.0, 1, np.nan, np.nan, "decline"),  # trial never repeated
    (60.0, 5.0, 3, 0.0, np.nan, "formation"),  # repeat, young
    (1000.0, 7.0, 20, 0.5, 0.9, "formation"),  # old but growing
    (730.0, 14.0, 24, 0.05, np.nan, "stability"),  # repeat, old, steady
    (730.0, 14.0, 24, np.nan, np.nan, "stability"),  # unknown trend = steady
]


def test_lifecycle_one_customer_per_stage() -> None:
    cols = list(zip(*LIFECYCLE_CASES))
    stages = va.lifecycle_stages(cols[0], cols[1], cols[2], cols[3], p_alive=cols[4])
    np.testing.assert_array_equal(stages, cols[5])
    assert set(stages) == set(va.LIFECYCLE_STAGES)


def test_lifecycle_without_p_alive_and_thresholds() -> None:
    # the p_alive-churned customer is stable/formation without the model
    stages = va.lifecycle_stages([500.0], [10.0], [10], [0.0])
    assert stages[0] == "stability"
    # a shorter churn window churns the gap customer
    assert va.lifecycle_stages([300.0], [200.0], [11], [0.0], churn_after_days=180)[0] == "churned"
    # raising the floor of the usual gap keeps it in stability/formation
    assert va.lifecycle_stages([300.0], [200.0], [11], [0.0], min_gap_days=100)[0] == "formation"


@pytest.mark.parametrize(
    "args, kwargs, msg",
    [
        (([10.0], [20.0], [2], [0.0]), {}, "first_purchase_days_ago must be >="),
        (([10.0], [5.0], [-1], [0.0]), {}, "frequency"),
        (([10.0], [5.0], [1.5], [0.0]), {}, "frequency"),
        (([np.nan], [5.0], [1], [0.0]), {}, "must be set"),
        (([10.0], [-5.0], [2], [0.0]), {}, "last_purchase_days_ago"),
        (([10.0, 1.0], [5.0], [2], [0.0]), {}, "same length"),
        (([10.0], [5.0], [2], [0.0]), {"p_alive": [1.5]}, "p_alive"),
        (([10.0], [5.0], [2], [0.0]), {"p_alive": [0.5, 0.5]}, "same length"),
        (([10.0], [5.0], [2], [0.0]), {"decline_trend": 0.5}, "decline_trend"),
        (([10.0], [5.0], [2], [0.0]), {"churn_after_days": 0}, "churn_after_days"),
        (([10.0], [5.0], [2], [0.0]), {"stability_after_days": 10}, "stability_after_days"),
        (([10.0], [5.0], [2], [0.0]), {"gap_factor": 0}, "gap_factor"),
        (([10.0], [5.0], [2], [0.0]), {"p_alive_threshold": 2}, "p_alive_threshold"),
        (([10.0], [5.0], [2], [0.0]), {"formation_after_days": float("nan")}, "finite"),
    ],
)
def test_lifecycle_errors(args: tuple, kwargs: dict, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        va.lifecycle_stages(*args, **kwargs)


# --------------------------------------------------------------------------
# Loyalty index
# --------------------------------------------------------------------------


def test_loyalty_index_renormalises_missing_component() -> None:
    comps = {
        "duration": np.array([1.0, 2.0, 3.0]),  # parts 0, .5, 1
        "spend": np.array([30.0, 10.0, 20.0]),  # parts 1, 0, .5
        "satisfaction": np.array([np.nan, 4.0, 2.0]),  # parts -, 1, 0
    }
    weights = {"duration": 0.5, "spend": 0.3, "satisfaction": 0.2}
    li = va.loyalty_index(comps, weights)
    # customer 0: (0.5*0 + 0.3*1) / 0.8 = 0.375 -- satisfaction left out, not zero
    np.testing.assert_allclose(li.index, [37.5, 45.0, 65.0])
    np.testing.assert_allclose(li.parts[:, 0], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(li.parts[:, 1], [1.0, 0.0, 0.5])
    assert np.isnan(li.parts[0, 2]) and li.parts[1, 2] == 1.0 and li.parts[2, 2] == 0.0
    np.testing.assert_allclose(li.coverage, [0.8, 1.0, 1.0])
    assert li.components == ("duration", "spend", "satisfaction")
    contrib = li.contributions()
    np.testing.assert_allclose(contrib[0, :2], [0.0, 37.5])
    assert np.isnan(contrib[0, 2])
    np.testing.assert_allclose(np.nansum(contrib, axis=1), li.index)


def test_loyalty_index_ties_default_weights_and_no_data() -> None:
    comps = {
        "frequency": np.array([5.0, 5.0, 5.0, np.nan]),
        "satisfaction": np.array([1.0, 2.0, np.nan, np.nan]),
    }
    li = va.loyalty_index(comps)  # default weights: frequency .2, satisfaction .1
    np.testing.assert_allclose(li.parts[:3, 0], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(li.index[:3], [100 * 0.2 * 0.5 / 0.3, 100 * (0.1 + 0.1) / 0.3, 50.0])
    assert np.isnan(li.index[3])
    assert set(va.DEFAULT_LOYALTY_WEIGHTS) == set(va.LOYALTY_COMPONENTS)
    assert sum(va.DEFAULT_LOYALTY_WEIGHTS.values()) == pytest.approx(1.0)


def test_loyalty_zero_weight_component_only_gives_nan() -> None:
    li = va.loyalty_index(
        {"a": np.array([1.0, np.nan]), "b": np.array([np.nan, 2.0])}, {"a": 1.0, "b": 0.0}
    )
    assert li.index[0] == 50.0 and np.isnan(li.index[1])


@pytest.mark.parametrize(
    "components, weights, msg",
    [
        ({"duration": [1.0]}, {"duration": -1.0}, "finite and >= 0"),
        ({"duration": [1.0]}, {"duration": float("nan")}, "finite and >= 0"),
        ({"loyalty_card": [1.0]}, None, "unknown"),
        ({"duration": [1.0], "spend": [1.0]}, {"duration": 0.0, "spend": 0.0}, "weight > 0"),
        ({"duration": [1.0, 2.0], "spend": [1.0]}, None, "same length"),
        ({}, None, "non-empty"),
        ({"duration": [1.0, np.inf]}, None, "infinite"),
        ({"duration": [[1.0]]}, None, "1-D"),
        ({"duration": [1.0]}, {"duration": "high"}, "number"),
        ({"duration": [1.0]}, [("duration", 1.0)], "mapping"),
    ],
)
def test_loyalty_index_errors(components: dict, weights: object, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        va.loyalty_index(components, weights)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Scale smoke test (vectorised paths, no timing assertion)
# --------------------------------------------------------------------------


def test_whole_pipeline_on_large_base() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    freq = rng.poisson(2.0, n)
    first = rng.uniform(0, 1500, n)
    last = first * rng.random(n)
    mon = np.where(freq > 0, rng.lognormal(5, 1.2, n), 0.0)
    s = va.rfm_scores(np.where(freq > 0, last, np.nan), freq, mon)
    seg = va.rfm_segments(s.r, s.f, s.m)
    assert ((seg == "no_purchases") == (freq == 0)).all()
    assert not (seg == "unclassified").any()
    tiers = va.pyramid_tiers(mon)
    assert (tiers == "vip").sum() == 2000
    assert 0.0 < va.gini(mon) < 1.0
    stages = va.lifecycle_stages(
        np.where(freq > 0, first, np.nan), np.where(freq > 0, last, np.nan), freq, rng.normal(0, 0.3, n)
    )
    assert ((stages == "prospect") == (freq == 0)).all()
    li = va.loyalty_index({"frequency": freq.astype(float), "spend": np.where(freq > 0, mon, np.nan)})
    assert np.nanmin(li.index) >= 0 and np.nanmax(li.index) <= 100
