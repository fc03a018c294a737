"""MBG/NBD and Pareto/NBD (and BG/NBD through the same interface): likelihoods, recovery, edge cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
from crm_value_analysis import clv_models
from crm_value_analysis import purchase_models as pm
from crm_value_analysis.purchase_models import MBGNBDParams, ParetoNBDParams
from scipy.integrate import quad
from scipy.special import betaln, gammaln

TRUE = {
    "bg_nbd": {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43},
    "mbg_nbd": {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43},
    "pareto_nbd": {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67},  # CDNOW estimates (weeks)
}


@pytest.fixture(scope="module")
def samples() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(11)
    T = rng.uniform(26, 78, 8000)
    return {name: pm.simulate(name, 8000, T, params, rng=i) for i, (name, params) in enumerate(TRUE.items())}


@pytest.mark.parametrize("name", pm.MODELS)
def test_fit_recovers_simulated_parameters(samples, name: str) -> None:
    x, tx, T = samples[name]
    fitted = pm.fit(name, x, tx, T)
    assert fitted.converged and pm.model_name(fitted) == name
    got = pm.param_dict(fitted)
    for k, true in TRUE[name].items():
        assert got[k] == pytest.approx(true, rel=0.3), (k, got)
    # the fitted model explains its own data better than the others explain it
    assert fitted.log_likelihood < 0 and math.isfinite(fitted.log_likelihood)


def test_pareto_likelihood_matches_direct_integration() -> None:
    """log L against the definition: alive through T, or dead at some tau in (t_x, T] (scipy quad)."""
    p = ParetoNBDParams(r=0.55, alpha=10.58, s=0.61, beta=11.67)
    cases = [(0, 0.0, 30.0), (2, 10.0, 38.0), (50, 30.0, 39.0), (3, 5.0, 500.0), (1, 0.5, 1.0), (7, 20.0, 20.0)]
    got = pm.pareto_nbd_log_likelihood(p, *map(np.array, zip(*cases)))
    for (x, tx, T), ll in zip(cases, got):
        f = lambda tau: math.exp(-(p.r + x) * math.log(p.alpha + tau) - (p.s + 1) * math.log(p.beta + tau))  # noqa: E731, B023 - called at once, inside the iteration
        integral = quad(f, tx, T, epsabs=0, epsrel=1e-12)[0] if tx < T else 0.0
        alive = (p.alpha + T) ** -(p.r + x) * (p.beta + T) ** -p.s
        want = gammaln(p.r + x) - gammaln(p.r) + p.r * math.log(p.alpha) + p.s * math.log(p.beta) + math.log(alive + p.s * integral)
        assert ll == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("alpha, beta", [(100.0, 2.0), (2.0, 100.0), (5.0, 5.0)])
def test_pareto_stays_finite_for_very_many_repeats(alpha: float, beta: float) -> None:
    """x = 2000 over a short life: where 2F1 overflows, the quadrature keeps log L and P(alive) finite."""
    p = ParetoNBDParams(r=0.5, alpha=alpha, s=0.6, beta=beta)
    x, tx, T = np.array([2000.0, 2000.0, 0.0]), np.array([39.0, 10.0, 0.0]), np.array([40.0, 40.0, 40.0])
    ll = pm.pareto_nbd_log_likelihood(p, x, tx, T)
    alive = pm.probability_alive(p, x, tx, T)
    assert np.isfinite(ll).all() and ((alive >= 0) & (alive <= 1)).all()
    assert alive[1] < 1e-6 and alive[1] <= alive[0]  # silent for 30 of 40 weeks after buying 2000 times: gone
    assert np.isfinite(pm.expected_purchases(p, x, tx, T, 52.0)).all()


def test_pareto_gradient_matches_finite_differences(samples) -> None:
    data = pm._PNBDData(*[a.astype(float) for a in samples["pareto_nbd"]])
    theta = np.log([0.5, 9.0, 0.7, 13.0])
    _, grad = pm._pnbd_nll_grad(theta, data)
    eye = np.eye(4) * 1e-6
    numeric = np.array([(pm._pnbd_nll_grad(theta + e, data)[0] - pm._pnbd_nll_grad(theta - e, data)[0]) / 2e-6 for e in eye])
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-7)


def test_mbgnbd_likelihood_and_gradient() -> None:
    p = {"r": 0.3, "alpha": 5.0, "a": 0.8, "b": 2.5}
    x, tx, T = np.array([0.0, 1.0, 6.0]), np.array([0.0, 3.0, 20.0]), np.array([10.0, 30.0, 25.0])
    data = clv_models._BGNBDData(x, tx, T)
    nll, grad = pm._mbgnbd_nll_grad(np.log(list(p.values())), data)
    r, al, a, b = p.values()
    want = [gammaln(r + xi) - gammaln(r) + r * math.log(al)
            + math.log(math.exp(betaln(a, b + xi + 1) - betaln(a, b)) / (al + Ti) ** (r + xi)
                       + math.exp(betaln(a + 1, b + xi) - betaln(a, b)) / (al + ti) ** (r + xi))
            for xi, ti, Ti in zip(x, tx, T)]
    assert -nll * 3 == pytest.approx(sum(want), rel=1e-12)
    eye = np.eye(4) * 1e-6
    theta = np.log(list(p.values()))
    numeric = np.array([(pm._mbgnbd_nll_grad(theta + e, data)[0] - pm._mbgnbd_nll_grad(theta - e, data)[0]) / 2e-6 for e in eye])
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_mbg_one_time_buyers_may_be_gone_unlike_bgnbd() -> None:
    bg = clv_models.BGNBDParams(r=0.3, alpha=5.0, a=0.8, b=2.5)
    mbg = MBGNBDParams(r=0.3, alpha=5.0, a=0.8, b=2.5)
    assert pm.probability_alive(bg, [0], [0], [50])[0] == 1.0
    alive = pm.probability_alive(mbg, [0, 0], [0, 0], [5, 50])
    assert 0 < alive[1] < alive[0] < 1  # the longer since the only purchase, the less likely alive
    # E[Y(t) | alive] of MBG/NBD is BG/NBD's with b + 1 (posterior Beta(a, b + x + 1)): check by quadrature
    shifted = clv_models.BGNBDParams(r=0.3, alpha=5.0, a=0.8, b=3.5)
    x, T, t = np.array([0.0, 4.0]), np.array([50.0, 50.0]), np.array([30.0, 30.0])
    want = clv_models._expected_if_alive_quadrature(shifted, x, T, t)
    np.testing.assert_allclose(pm._expected_if_alive(mbg, x, T, t), want, rtol=1e-6)


def test_pareto_expected_purchases_closed_form_and_limits() -> None:
    p = ParetoNBDParams(r=0.55, alpha=10.58, s=0.61, beta=11.67)
    x, tx, T = np.array([3.0]), np.array([20.0]), np.array([30.0])
    alive = pm.probability_alive(p, x, tx, T)[0]
    got = pm.expected_purchases(p, x, tx, T, 52.0)[0]
    want = alive * (p.r + 3) * (p.beta + 30) / ((p.alpha + 30) * (p.s - 1)) * (1 - ((p.beta + 30) / (p.beta + 82)) ** (p.s - 1))
    assert got == pytest.approx(want, rel=1e-12)
    one = ParetoNBDParams(r=0.55, alpha=10.58, s=1.0, beta=11.67)  # s = 1: the log limit, continuous
    near = ParetoNBDParams(r=0.55, alpha=10.58, s=1.0 + 1e-7, beta=11.67)
    assert pm.expected_purchases(one, x, tx, T, 52.0)[0] == pytest.approx(pm.expected_purchases(near, x, tx, T, 52.0)[0], rel=1e-5)
    assert pm.expected_purchases(p, x, tx, T, 0.0)[0] == 0.0


@pytest.mark.parametrize("name", pm.MODELS)
def test_clv_is_nonnegative_and_grows_with_horizon(samples, name: str) -> None:
    x, tx, T = (a[:300] for a in samples[name])
    params = pm.fit(name, *samples[name])
    gg = clv_models.GammaGammaParams(p=6.25, q=3.74, v=15.44)
    m = np.where(x > 0, 35.0, 0.0)
    short, long = (pm.probabilistic_clv(params, gg, x, tx, T, m, horizon_periods=h, discount_rate_per_period=0.01,
                                        margin=0.3, step=4.35) for h in (6, 24))
    assert (short >= 0).all() and (long >= short - 1e-12).all() and long.sum() > short.sum()


@pytest.mark.parametrize("name", pm.MODELS)
def test_edge_cases(name: str) -> None:
    # customers with one purchase only: nothing identifies the repeat rate
    with pytest.raises(ValueError, match="no repeat purchases"):
        pm.fit(name, np.zeros(50), np.zeros(50), np.full(50, 20.0))
    # every customer born at the calibration end
    with pytest.raises(ValueError, match="T == 0"):
        pm.fit(name, np.zeros(5), np.zeros(5), np.zeros(5))
    # all customers identical: the fit ends finite (converged or flagged), never NaN
    same = pm.fit(name, np.full(200, 3.0), np.full(200, 10.0), np.full(200, 20.0))
    values = pm.param_dict(same)
    assert all(math.isfinite(v) and v > 0 for v in values.values()) and math.isfinite(same.log_likelihood)
    alive = pm.probability_alive(same, [3.0], [10.0], [20.0])
    assert 0.0 <= alive[0] <= 1.0


def test_unknown_model_and_bad_parameters() -> None:
    with pytest.raises(ValueError, match="unknown model 'bgnbd'"):
        pm.fit("bgnbd", [1], [1], [2])
    with pytest.raises(ValueError, match="parameter s must be"):
        ParetoNBDParams(r=1, alpha=1, s=-1, beta=1)
    with pytest.raises(ValueError, match="recency must not exceed T"):
        pm.probability_alive(MBGNBDParams(r=1, alpha=1, a=1, b=1), [1], [5], [2])


def test_pareto_nbd_blocks_give_the_same_numbers_as_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large inputs are cut in blocks that run on several threads: likelihood and fit are unchanged."""
    x, tx, T = pm.simulate("pareto_nbd", 3000, 52.0, {"r": 0.55, "alpha": 10.5, "s": 0.6, "beta": 12.0},
                                        rng=np.random.default_rng(11))
    params = pm.make_params("pareto_nbd", {"r": 0.6, "alpha": 9.0, "s": 0.5, "beta": 11.0})
    whole = pm.pareto_nbd_log_likelihood(params, x, tx, T)
    fit_whole = pm.fit_pareto_nbd(x, tx, T)
    monkeypatch.setattr(pm, "PNBD_BLOCK", 256)
    np.testing.assert_array_equal(pm.pareto_nbd_log_likelihood(params, x, tx, T), whole)
    fit_blocks = pm.fit_pareto_nbd(x, tx, T)
    assert (fit_blocks.r, fit_blocks.alpha, fit_blocks.s, fit_blocks.beta) == (fit_whole.r, fit_whole.alpha, fit_whole.s,
                                                                               fit_whole.beta)
