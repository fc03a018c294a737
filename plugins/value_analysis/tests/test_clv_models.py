"""Tests for crm_value_analysis.clv_models (BG/NBD, Gamma-Gamma, CLV)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from crm_value_analysis import clv_models as cm
from crm_value_analysis.clv_models import (
    BGNBDParams,
    GammaGammaParams,
    bgnbd_expected_purchases,
    bgnbd_probability_alive,
    bgnbd_unconditional_expected,
    deterministic_clv,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_expected_spend,
    probabilistic_clv,
    simulate_bgnbd,
    simulate_gamma_gamma,
    summary_from_purchases,
)
from scipy import integrate, stats
from scipy.optimize import approx_fprime
from scipy.special import betaln, gammaln, hyp2f1

TRUE_BG = {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43}
TRUE_GG = {"p": 6.25, "q": 3.74, "v": 15.44}
BG = BGNBDParams(**TRUE_BG)
GG = GammaGammaParams(**TRUE_GG)


def _fhl_loglik(params: BGNBDParams, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> float:
    """Straight transcription of FHL (2005) eq. 6, independent of the module's tricks."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    like = np.exp(a2 - (r + x) * np.log(alpha + T))
    xs = np.maximum(x, 1)
    like = like + (x > 0) * np.exp(betaln(a + 1, b + xs - 1) - betaln(a, b) - (r + x) * np.log(alpha + tx))
    return float(np.sum(a1 + np.log(like)))


def _fhl_expected(params: BGNBDParams, x, tx, T, t) -> np.ndarray:
    """FHL (2005) eq. 10 with the paper's own 2F1 (fine for moderate x)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, tx, T, t = (np.asarray(v, dtype=float) for v in (x, tx, T, t))
    z = t / (alpha + T + t)
    numer = (a + b + x - 1) / (a - 1) * (
        1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
    )
    xs = np.maximum(x, 1)
    denom = 1 + (x > 0) * a / (b + xs - 1) * ((alpha + T) / (alpha + tx)) ** (r + x)
    return numer / denom


@pytest.fixture(scope="module")
def bg_sample():
    rng = np.random.default_rng(12345)
    return simulate_bgnbd(20_000, 52.0, rng=rng, **TRUE_BG)


@pytest.fixture(scope="module")
def bg_fit(bg_sample):
    return fit_bgnbd(*bg_sample)


# --------------------------------------------------------------------------
# BG/NBD fit
# --------------------------------------------------------------------------


def test_fit_bgnbd_recovers_known_parameters(bg_fit):
    assert bg_fit.converged
    assert bg_fit.n_customers == 20_000
    for name, true in TRUE_BG.items():
        est = getattr(bg_fit, name)
        assert abs(est - true) / true < 0.15, (name, est, true)


def test_fit_bgnbd_log_likelihood_matches_paper_formula(bg_sample, bg_fit):
    x, tx, T = bg_sample
    assert bg_fit.log_likelihood == pytest.approx(_fhl_loglik(bg_fit, x, tx, T), rel=1e-10)
    # The MLE must beat the data-generating parameters on their own sample.
    assert bg_fit.log_likelihood >= _fhl_loglik(BG, x, tx, T)


def test_fit_bgnbd_is_invariant_to_the_starting_point(bg_sample, bg_fit):
    refit = fit_bgnbd(*bg_sample, initial=(2.0, 20.0, 3.0, 5.0))
    for name in TRUE_BG:
        assert getattr(refit, name) == pytest.approx(getattr(bg_fit, name), rel=1e-3)


def test_bgnbd_analytic_gradient_matches_finite_differences(bg_sample):
    x, tx, T = bg_sample
    data = cm._BGNBDData(x[:2000].astype(float), tx[:2000], T[:2000])
    theta = np.log([0.5, 3.0, 1.3, 2.0])
    _, grad = cm._bgnbd_nll_grad(theta, data)
    numeric = approx_fprime(theta, lambda th: cm._bgnbd_nll_grad(th, data)[0], 1e-7)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_fit_bgnbd_scales_with_time_unit(bg_sample, bg_fit):
    # Measuring time in days instead of weeks only rescales alpha.
    x, tx, T = bg_sample
    days = fit_bgnbd(x, tx * 7.0, T * 7.0)
    assert days.alpha == pytest.approx(bg_fit.alpha * 7.0, rel=1e-3)
    for name in ("r", "a", "b"):
        assert getattr(days, name) == pytest.approx(getattr(bg_fit, name), rel=1e-3)


# --------------------------------------------------------------------------
# BG/NBD predictions
# --------------------------------------------------------------------------


def test_probability_alive_is_one_without_repeat_purchases():
    p = bgnbd_probability_alive(BG, [0, 0, 0], [0, 0, 0], [1.0, 52.0, 500.0])
    np.testing.assert_array_equal(p, [1.0, 1.0, 1.0])


def test_probability_alive_hand_computed():
    r, alpha, a, b = BG.r, BG.alpha, BG.a, BG.b
    expected = 1.0 / (1.0 + a / (b + 2 - 1) * ((alpha + 52) / (alpha + 30)) ** (r + 2))
    got = bgnbd_probability_alive(BG, [2], [30.0], [52.0])
    assert got[0] == pytest.approx(expected, rel=1e-12)
    # 0.79/3.43 · (56.41/34.41)^2.24 = 0.230321 · 3.02598 = 0.696946
    assert got[0] == pytest.approx(1 / 1.696946, abs=5e-6)


def test_probability_alive_decreases_as_last_purchase_gets_older():
    recency = np.array([50.0, 40.0, 30.0, 20.0, 10.0, 1.0])
    p = bgnbd_probability_alive(BG, np.full(6, 4), recency, np.full(6, 52.0))
    assert np.all(np.diff(p) < 0)
    assert p[0] > 0.8 and p[-1] < 0.05


def test_expected_purchases_increase_with_frequency():
    x = np.arange(1, 11)
    e = bgnbd_expected_purchases(BG, x, np.full(10, 52.0), np.full(10, 52.0), 52.0)
    assert np.all(np.diff(e) > 0)


def test_expected_purchases_match_paper_formula():
    x = np.array([0, 1, 2, 5, 10, 30, 0, 3])
    tx = np.array([0, 10, 30, 40, 50, 51, 0, 5.0])
    T = np.array([52, 52, 52, 52, 52, 52, 10, 60.0])
    t = np.array([10, 20, 52, 5, 100, 30, 1, 200.0])
    got = bgnbd_expected_purchases(BG, x, tx, T, t)
    np.testing.assert_allclose(got, _fhl_expected(BG, x, tx, T, t), rtol=1e-9)
    assert got[4] == pytest.approx(11.11675, rel=1e-5)


def test_expected_purchases_finite_for_heavy_buyers():
    x = np.array([200, 200, 1000])
    tx = np.array([1000.0, 500.0, 999.0])
    T = np.array([1000.0, 1000.0, 1000.0])
    got = bgnbd_expected_purchases(BG, x, tx, T, 100.0)
    assert np.all(np.isfinite(got)) and np.all(got >= 0)
    # Alive heavy buyer: roughly (x / T) purchases per period.
    assert got[0] == pytest.approx(20.0, rel=0.1)
    assert got[1] < 1e-6  # silent for half his life with x=200: surely gone
    # The paper's 2F1 overflows here; the stable path agrees with quadrature.
    alive = bgnbd_probability_alive(BG, x, tx, T)
    quad = alive * cm._expected_if_alive_quadrature(BG, x.astype(float), T, np.full(3, 100.0))
    np.testing.assert_allclose(got, quad, rtol=1e-6)


@pytest.mark.parametrize(
    "params",
    [BGNBDParams(2.0, 0.5, 5.0, 0.3), BGNBDParams(0.05, 100.0, 0.05, 50.0), BGNBDParams(1.0, 1.0, 1.0, 1.0)],
)
def test_expected_purchases_stable_across_parameter_space(params):
    x = np.array([0, 200, 1000, 3, 0, 1])
    T = np.array([0, 1000, 1000, 5, 0, 52.0])
    tx = np.array([0, 999, 500, 2, 0, 10.0])
    t = np.array([1e6, 1000, 10, 1e5, 3.0, 52.0])
    got = bgnbd_expected_purchases(params, x, tx, T, t)
    assert np.all(np.isfinite(got))
    alive = bgnbd_probability_alive(params, x, tx, T)
    quad = alive * cm._expected_if_alive_quadrature(params, x.astype(float), T, t)
    np.testing.assert_allclose(got, quad, rtol=1e-5)


def test_unconditional_expected_matches_eq9_and_simulation():
    r, alpha, a, b = BG.r, BG.alpha, BG.a, BG.b
    t = np.array([0.0, 13.0, 52.0, 104.0])
    eq9 = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    got = bgnbd_unconditional_expected(BG, t)
    np.testing.assert_allclose(got, eq9, rtol=1e-10, atol=1e-15)
    assert got[0] == 0.0
    assert float(bgnbd_unconditional_expected(BG, 52.0)) == pytest.approx(got[2])
    x, _, _ = simulate_bgnbd(200_000, 52.0, rng=np.random.default_rng(7), **TRUE_BG)
    assert x.mean() == pytest.approx(got[2], rel=0.03)


def test_conditional_equals_unconditional_for_new_customer():
    t = np.array([5.0, 50.0])
    cond = bgnbd_expected_purchases(BG, [0, 0], [0, 0], [0, 0], t)
    np.testing.assert_allclose(cond, bgnbd_unconditional_expected(BG, t), rtol=1e-12)


# --------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------


def test_fit_gamma_gamma_recovers_known_parameters():
    rng = np.random.default_rng(99)
    freq = 1 + rng.poisson(4.0, size=20_000)
    freq[:3000] = 0  # no repeat purchases: must be filtered out
    mon = simulate_gamma_gamma(freq, rng=rng, **TRUE_GG)
    assert np.all(mon[:3000] == 0)
    fit = fit_gamma_gamma(freq, mon)
    assert fit.converged
    assert fit.n_customers == 17_000
    for name, true in TRUE_GG.items():
        est = getattr(fit, name)
        assert abs(est - true) / true < 0.2, (name, est, true)


def test_gamma_gamma_likelihood_matches_numerical_integration():
    x = np.array([1.0, 3.0, 7.0])
    m = np.array([20.0, 35.0, 12.5])
    theta = np.log([GG.p, GG.q, GG.v])
    nll, _ = cm._gg_nll_grad(theta, x, m)

    def density(mbar: float, xi: float) -> float:
        def f(nu):
            return stats.gamma.pdf(mbar, GG.p * xi, scale=1 / (nu * xi)) * stats.gamma.pdf(
                    nu, GG.q, scale=1 / GG.v
                )
        return integrate.quad(f, 0, np.inf, limit=200)[0]

    expected = -np.mean([math.log(density(mi, xi)) for mi, xi in zip(m, x)])
    assert nll == pytest.approx(expected, rel=1e-6)


def test_gamma_gamma_gradient_matches_finite_differences():
    x = np.array([1.0, 2.0, 5.0, 9.0])
    m = np.array([10.0, 40.0, 25.0, 30.0])
    theta = np.log([3.0, 2.0, 10.0])
    _, grad = cm._gg_nll_grad(theta, x, m)
    numeric = approx_fprime(theta, lambda th: cm._gg_nll_grad(th, x, m)[0], 1e-7)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_gamma_gamma_expected_spend():
    p, q, v = GG.p, GG.q, GG.v
    got = gamma_gamma_expected_spend(GG, [0, 1, 10], [0.0, 50.0, 50.0])
    pop = p * v / (q - 1)
    assert got[0] == pytest.approx(pop)
    assert got[1] == pytest.approx((p * v + p * 1 * 50.0) / (p * 1 + q - 1))
    # More purchases -> less shrinkage towards the population mean (35.219).
    assert pop < got[1] < got[2] < 50.0
    assert pop == pytest.approx(96.5 / 2.74, rel=1e-12)  # 6.25·15.44 / 2.74 = 35.219


def test_gamma_gamma_expected_spend_rejects_infinite_population_mean():
    with pytest.raises(ValueError, match="q <= 1"):
        gamma_gamma_expected_spend(GammaGammaParams(2.0, 0.8, 10.0), [0, 2], [0.0, 10.0])


# --------------------------------------------------------------------------
# CLV
# --------------------------------------------------------------------------


def test_deterministic_clv_hand_computed():
    # 60 / 1.1 + 60·0.8 / 1.1² + 60·0.64 / 1.1³ − 50
    expected = 60 / 1.1 + 48 / 1.21 + 38.4 / 1.331 - 50
    got = deterministic_clv(
        np.array([100.0, 40.0]),
        np.array([40.0, 40.0]),
        retention=0.8,
        discount_rate=0.1,
        horizon=3,
        acquisition_cost=np.array([50.0, 0.0]),
    )
    np.testing.assert_allclose(got, [expected, 0.0], rtol=1e-12)
    assert got[0] == pytest.approx(73.0654, abs=1e-4)


def test_deterministic_clv_scalar_cost_and_limits():
    got = deterministic_clv(np.array([10.0, 20.0]), 5.0, retention=1.0, discount_rate=0.0, horizon=4)
    np.testing.assert_allclose(got, [20.0, 60.0])
    one = deterministic_clv(np.array([10.0]), 0.0, retention=0.0, discount_rate=0.25, horizon=10)
    assert one[0] == pytest.approx(8.0)


def _clv_inputs():
    x = np.array([0, 1, 4, 10])
    tx = np.array([0.0, 20.0, 45.0, 51.0])
    T = np.array([30.0, 52.0, 52.0, 52.0])
    m = np.array([0.0, 30.0, 45.0, 20.0])
    return x, tx, T, m


def test_probabilistic_clv_zero_margin_is_zero():
    x, tx, T, m = _clv_inputs()
    clv = probabilistic_clv(
        BG, GG, x, tx, T, m, horizon_periods=12, discount_rate_per_period=0.01, margin=0.0
    )
    np.testing.assert_array_equal(clv, np.zeros(4))


def test_probabilistic_clv_grows_with_horizon():
    x, tx, T, m = _clv_inputs()
    kwargs = {"discount_rate_per_period": 0.01, "margin": 0.3, "step": 4.0}
    short = probabilistic_clv(BG, GG, x, tx, T, m, horizon_periods=6, **kwargs)
    long = probabilistic_clv(BG, GG, x, tx, T, m, horizon_periods=24, **kwargs)
    assert np.all(short > 0)
    assert np.all(long > short)


def test_probabilistic_clv_closed_forms():
    x, tx, T, m = _clv_inputs()
    spend = gamma_gamma_expected_spend(GG, x, m)
    # Without discounting the sum telescopes to margin · spend · E[Y(H·step)].
    undiscounted = probabilistic_clv(
        BG, GG, x, tx, T, m, horizon_periods=5, discount_rate_per_period=0.0, margin=0.5, step=2.0
    )
    expected = 0.5 * spend * bgnbd_expected_purchases(BG, x, tx, T, 10.0)
    np.testing.assert_allclose(undiscounted, expected, rtol=1e-10)
    # One period: everything is discounted once.
    one = probabilistic_clv(
        BG, GG, x, tx, T, m, horizon_periods=1, discount_rate_per_period=0.1, margin=1.0, step=3.0
    )
    expected = spend * bgnbd_expected_purchases(BG, x, tx, T, 3.0) / 1.1
    np.testing.assert_allclose(one, expected, rtol=1e-10)


# --------------------------------------------------------------------------
# Summary from purchase log
# --------------------------------------------------------------------------


def test_summary_from_purchases_tiny_example():
    # customer 0: day 0 (two lines), day 3, day 3, day 10, day 25 (after end)
    # customer 1: no purchases
    # customer 2: single purchase on day 5
    # customer 3: days 2 and 8
    idx = np.array([0, 0, 3, 0, 0, 2, 0, 0, 3])
    t = np.array([0.0, 0.0, 2.0, 3.0, 3.0, 5.0, 10.0, 25.0, 8.0])
    amt = np.array([5.0, 5.0, 7.0, 10.0, 20.0, 9.0, 60.0, 1000.0, 13.0])
    s = summary_from_purchases(idx, t, 4, 20.0, amounts=amt)
    np.testing.assert_array_equal(s.frequency, [2, 0, 0, 1])
    np.testing.assert_allclose(s.recency, [10.0, 0.0, 0.0, 6.0])
    np.testing.assert_allclose(s.T, [20.0, 0.0, 15.0, 18.0])
    # customer 0 repeat periods: day 3 (10+20) and day 10 (60) -> mean 45
    np.testing.assert_allclose(s.monetary, [45.0, 0.0, 0.0, 13.0])
    np.testing.assert_array_equal(s.has_purchase, [True, False, True, True])
    assert len(s) == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.frequency = s.frequency  # frozen


def test_summary_from_purchases_first_t_and_no_amounts():
    idx = np.array([0, 0, 1])
    t = np.array([4.0, 9.0, 6.0])
    first = np.array([1.0, np.nan, 3.0])
    s = summary_from_purchases(idx, t, 3, 12.0, first_t=first)
    # customer 0 born at 1: purchases on 4 and 9 are both repeats
    np.testing.assert_array_equal(s.frequency, [2, 0, 0])
    np.testing.assert_allclose(s.recency, [8.0, 0.0, 0.0])
    np.testing.assert_allclose(s.T, [11.0, 6.0, 9.0])
    np.testing.assert_array_equal(s.has_purchase, [True, True, True])
    assert np.all(np.isnan(s.monetary))


def test_summary_feeds_the_fit(bg_fit):
    # Build a purchase log from the simulator's story and check the round trip.
    rng = np.random.default_rng(3)
    x, tx, T = simulate_bgnbd(3000, 52.0, rng=rng, **TRUE_BG)
    idx = np.concatenate([np.arange(3000), np.flatnonzero(x > 0)])
    times = np.concatenate([np.zeros(3000), tx[x > 0]])
    s = summary_from_purchases(idx, times, 3000, 52.0)
    np.testing.assert_array_equal(s.frequency, (x > 0).astype(int))
    np.testing.assert_allclose(s.recency, np.where(x > 0, tx, 0.0))
    np.testing.assert_allclose(s.T, T)


# --------------------------------------------------------------------------
# Simulators
# --------------------------------------------------------------------------


def test_simulate_bgnbd_shapes_and_support():
    T = np.linspace(1, 100, 500)
    x, tx, TT = simulate_bgnbd(500, T, rng=1, **TRUE_BG)
    assert x.dtype.kind == "i" and x.shape == (500,)
    assert np.all(tx <= TT) and np.all(tx[x == 0] == 0) and np.all(tx[x > 0] > 0)
    np.testing.assert_array_equal(TT, T)


def test_simulate_gamma_gamma_mean():
    freq = np.full(50_000, 3)
    mon = simulate_gamma_gamma(freq, rng=5, **TRUE_GG)
    pop = GG.p * GG.v / (GG.q - 1)
    assert mon.mean() == pytest.approx(pop, rel=0.05)


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------

_X = np.array([0, 2, 3])
_TX = np.array([0.0, 10.0, 20.0])
_T = np.array([30.0, 30.0, 30.0])
_M = np.array([0.0, 10.0, 20.0])


def _clv(**overrides):
    kwargs = {"horizon_periods": 12, "discount_rate_per_period": 0.01, "margin": 0.3}
    kwargs.update(overrides)
    return probabilistic_clv(BG, GG, _X, _TX, _T, _M, **kwargs)


def _det(**overrides):
    kwargs = {"retention": 0.8, "discount_rate": 0.1, "horizon": 3}
    kwargs.update(overrides)
    return deterministic_clv(np.array([1.0, 2.0]), 0.5, **kwargs)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: _det(discount_rate=-0.1), "discount_rate must be non-negative"),
        (lambda: _det(retention=1.2), "retention must lie in"),
        (lambda: _det(retention=-0.1), "retention must lie in"),
        (lambda: _det(horizon=0), "horizon must be >= 1"),
        (lambda: _det(horizon=2.5), "horizon must be an integer"),
        (lambda: deterministic_clv(np.ones(2), np.ones(3), retention=0.5, discount_rate=0.1, horizon=2),
         "same length"),
        (lambda: deterministic_clv(np.array([1.0, np.nan]), 0.0, retention=0.5, discount_rate=0.1, horizon=2),
         "NaN"),
        (lambda: _clv(discount_rate_per_period=-0.01), "discount_rate_per_period must be non-negative"),
        (lambda: _clv(margin=1.5), "margin must lie in"),
        (lambda: _clv(margin=-0.1), "margin must lie in"),
        (lambda: _clv(horizon_periods=0), "horizon_periods must be >= 1"),
        (lambda: _clv(step=0), "step must be > 0"),
        (lambda: probabilistic_clv(BG, GG, _X, _TX, _T, _M[:2], horizon_periods=1,
                                   discount_rate_per_period=0.0, margin=0.5), "same length"),
        (lambda: probabilistic_clv(GG, BG, _X, _TX, _T, _M, horizon_periods=1,
                                   discount_rate_per_period=0.0, margin=0.5), "expected BGNBDParams"),
        (lambda: fit_bgnbd([1, -1], [1.0, 0.0], [5.0, 5.0]), "frequency must be non-negative"),
        (lambda: fit_bgnbd([1.5, 1], [1.0, 1.0], [5.0, 5.0]), "whole numbers"),
        (lambda: fit_bgnbd([1, 2], [6.0, 1.0], [5.0, 5.0]), "recency must not exceed T"),
        (lambda: fit_bgnbd([0, 2], [1.0, 1.0], [5.0, 5.0]), "recency must be 0"),
        (lambda: fit_bgnbd([1, 2], [1.0, np.nan], [5.0, 5.0]), "NaN"),
        (lambda: fit_bgnbd([1, 2], [1.0, 1.0], [5.0]), "same length"),
        (lambda: fit_bgnbd([], [], []), "empty"),
        (lambda: fit_bgnbd([0, 0], [0.0, 0.0], [5.0, 5.0]), "no repeat purchases"),
        (lambda: fit_bgnbd([1, 2], [1.0, 1.0], [5.0, 5.0], initial=(1.0, 2.0)), "4 values"),
        (lambda: fit_gamma_gamma([], []), "empty"),
        (lambda: fit_gamma_gamma([1, 0, 0], [10.0, 5.0, 5.0]), "at least 2 customers"),
        (lambda: fit_gamma_gamma([1, 2], [10.0, np.nan]), "NaN"),
        (lambda: fit_gamma_gamma([1, 2, 3], [10.0, 2.0]), "same length"),
        (lambda: gamma_gamma_expected_spend(GG, [1, 2], [-1.0, 2.0]), "monetary must be non-negative"),
        (lambda: bgnbd_probability_alive(BG, [1, -2], [1.0, 1.0], [2.0, 2.0]), "non-negative"),
        (lambda: bgnbd_expected_purchases(BG, [1], [1.0], [2.0], -1.0), "t must be finite and non-negative"),
        (lambda: bgnbd_expected_purchases(BG, [1, 2], [1.0, 1.0], [2.0, 2.0], [1.0, 2.0, 3.0]), "t has length"),
        (lambda: bgnbd_unconditional_expected(BG, np.nan), "t must be finite"),
        (lambda: BGNBDParams(r=-1.0, alpha=1.0, a=1.0, b=1.0), "parameter r must be"),
        (lambda: GammaGammaParams(p=1.0, q=float("nan"), v=1.0), "parameter q must be"),
        (lambda: summary_from_purchases(np.array([0, 5]), np.array([0.0, 1.0]), 3, 10.0), "customer_idx values"),
        (lambda: summary_from_purchases(np.array([0.0, 1.0]), np.array([0.0, 1.0]), 3, 10.0), "integer dtype"),
        (lambda: summary_from_purchases(np.array([0, 1]), np.array([0.0]), 3, 10.0), "same length"),
        (lambda: summary_from_purchases(np.array([0]), np.array([np.nan]), 3, 10.0), "NaN"),
        (lambda: summary_from_purchases(np.array([0]), np.array([1.0]), 3, float("nan")), "calibration_end"),
        (lambda: summary_from_purchases(np.array([0]), np.array([1.0]), 3, 10.0, first_t=np.ones(2)),
         "one value per customer"),
        (lambda: summary_from_purchases(np.array([0]), np.array([1.0]), 1, 10.0, first_t=np.array([2.0])),
         "before the customer's first_t"),
        (lambda: simulate_bgnbd(10, 52.0, 0.24, 4.41, 0.0, 2.43, rng=1), "parameter a must be"),
        (lambda: simulate_bgnbd(10, 52.0, 0.24, 4.41, 0.79, 2.43, rng="seed"), "rng must be"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
