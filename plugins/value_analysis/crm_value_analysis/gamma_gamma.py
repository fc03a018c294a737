"""Spend and value: the Gamma-Gamma model of spend per purchase (Fader & Hardie 2013, "The
Gamma-Gamma Model of Monetary Value") and the two CLV formulas (probabilistic, deterministic).

Pure NumPy/SciPy; see :mod:`crm_value_analysis.clv_models` for the conventions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, expit, gammaln  # type: ignore[import-untyped]

from crm_value_analysis.bgnbd import BGNBDParams, _as_bgnbd, _expected_if_alive, _log_odds_dead
from crm_value_analysis.mle import (
    _as_1d_float,
    _check_frequency,
    _check_positive_params,
    _check_rate,
    _check_same_length,
    _check_unit_interval,
    _finite_scalar,
    _initial_vector,
    _positive_int,
    _rng,
    _run_lbfgsb,
    _validate_rft,
    bound_failure,
)


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma parameters (p: shape of spend per transaction;
    q, v: Gamma(shape q, rate v) heterogeneity of the per-customer rate)."""

    p: float
    q: float
    v: float
    log_likelihood: float = float("nan")
    n_customers: int = 0
    converged: bool = True
    failure: str | None = None  # why the fit failed (a bound, no convergence); None when converged

    def __post_init__(self) -> None:
        _check_positive_params("GammaGammaParams", p=self.p, q=self.q, v=self.v)

def _as_gg(params: object) -> GammaGammaParams:
    if not isinstance(params, GammaGammaParams):
        raise ValueError(f"expected GammaGammaParams, got {type(params).__name__}")  # noqa: TRY004
    return params


def _gg_nll_grad(theta: np.ndarray, x: np.ndarray, m: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood of the average spend m̄ over x transactions.

    f(m̄ | p,q,v,x) = Γ(px+q)/(Γ(px)Γ(q)) · v^q · m̄^(px−1) · x^(px) / (v + x m̄)^(px+q)
    (Fader & Hardie 2013, eq. 4).
    """
    p, q, v = np.exp(theta)
    px = p * x
    log_m = np.log(m)
    log_x = np.log(x)
    log_vxm = np.log(v + x * m)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * math.log(v)
        + (px - 1.0) * log_m
        + px * log_x
        - (px + q) * log_vxm
    )
    n = x.shape[0]
    psi_pxq = digamma(px + q)
    g_p = (x * (psi_pxq - digamma(px) + log_m + log_x - log_vxm)).sum()
    g_q = (psi_pxq - digamma(q) + math.log(v) - log_vxm).sum()
    g_v = (q / v - (px + q) / (v + x * m)).sum()
    grad = np.array([g_p * p, g_q * q, g_v * v])
    return -ll.sum() / n, -grad / n


def fit_gamma_gamma(
    frequency: np.ndarray,
    monetary: np.ndarray,
    *,
    initial: GammaGammaParams | Sequence[float] | None = None,
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma fit on customers with frequency > 0 and monetary > 0.

    Customers without repeat purchases carry no spend information and
    non-positive averages are outside the model's support, so both are dropped.
    """
    x = _as_1d_float("frequency", frequency)
    m = _as_1d_float("monetary", monetary)
    _check_same_length(frequency=x, monetary=m)
    if x.size == 0:
        raise ValueError("fit_gamma_gamma needs at least one customer, got empty input")
    _check_frequency(x)
    keep = (x > 0) & (m > 0)
    x, m = x[keep], m[keep]
    if x.size < 2:
        raise ValueError(
            f"fit_gamma_gamma needs at least 2 customers with frequency > 0 and monetary > 0, "
            f"got {x.size}"
        )
    theta0 = _initial_vector(initial, ("p", "q", "v"))
    if theta0 is None:
        # p=1, q=2 makes the prior mean spend p·v/(q−1) = v; match it to the data.
        theta0 = np.log(np.array([1.0, 2.0, float(np.mean(m))]))
    theta, nll, failure = _run_lbfgsb(_gg_nll_grad, theta0, (x, m))
    p, q, v = (float(val) for val in np.exp(theta))
    failure = bound_failure({"p": p, "q": q, "v": v}, {"v": float(np.mean(m))}) or failure  # the bound says why
    return GammaGammaParams(p=p, q=q, v=v, log_likelihood=-nll * x.size, n_customers=int(x.size),
                            converged=failure is None, failure=failure)


def gamma_gamma_expected_spend(
    params: GammaGammaParams, frequency: np.ndarray, monetary: np.ndarray
) -> np.ndarray:
    """E[average spend per transaction | x, m̄] = (p·v + p·x·m̄) / (p·x + q − 1).

    A weighted average of the population mean p·v/(q−1) and the customer's own
    mean, shrinking noisy averages of customers with few purchases; with x = 0
    it is the population mean.
    """
    params = _as_gg(params)
    x = _as_1d_float("frequency", frequency)
    m = _as_1d_float("monetary", monetary)
    _check_same_length(frequency=x, monetary=m)
    _check_frequency(x)
    if (m < 0).any():
        raise ValueError("monetary must be non-negative")
    p, q, v = params.p, params.q, params.v
    denom = p * x + q - 1.0
    if (denom <= 0).any():
        if ((x == 0) & (denom <= 0)).any():
            raise ValueError(
                f"population mean spend is infinite for q <= 1 (q={q:.4g}); "
                "cannot predict spend for customers with frequency 0"
            )
        raise ValueError("expected spend is infinite for some customers (p·x + q <= 1)")
    m = np.where(x > 0, m, 0.0)
    return (p * v + p * x * m) / denom


def probabilistic_clv(
    bg: BGNBDParams,
    gg: GammaGammaParams,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    monetary: np.ndarray,
    *,
    horizon_periods: int,
    discount_rate_per_period: float,
    margin: float,
    step: float = 1,
) -> np.ndarray:
    """Discounted expected margin over ``horizon_periods`` discounting periods.

    CLV = Σ_{k=1..H} margin · spend · (E[Y(k·step)] − E[Y((k−1)·step)]) / (1+d)^k

    One discounting period spans ``step`` model time units (e.g. step=30 for a
    model fitted in days with monthly discounting); ``d`` is the rate per
    discounting period.  Purchases are discounted at the end of the period in
    which they are expected.
    """
    bg = _as_bgnbd(bg)
    gg = _as_gg(gg)
    horizon = _positive_int("horizon_periods", horizon_periods)
    d = _check_rate("discount_rate_per_period", discount_rate_per_period)
    mg = _check_unit_interval("margin", margin)
    step_f = _finite_scalar("step", step)
    if step_f <= 0:
        raise ValueError(f"step must be > 0, got {step_f}")
    x, tx, tt = _validate_rft(frequency, recency, T)
    m = _as_1d_float("monetary", monetary)
    _check_same_length(frequency=x, monetary=m)
    spend = gamma_gamma_expected_spend(gg, x, m)

    alive = expit(-_log_odds_dead(bg, x, tx, tt))
    total = np.zeros(x.shape)
    previous = np.zeros(x.shape)
    for k in range(1, horizon + 1):
        current = alive * _expected_if_alive(bg, x, tt, np.full(x.shape, k * step_f))
        total += (current - previous) / (1.0 + d) ** k
        previous = current
    return mg * spend * total


def deterministic_clv(
    revenue_per_period: np.ndarray,
    cost_per_period: np.ndarray | float,
    *,
    retention: float,
    discount_rate: float,
    horizon: int,
    acquisition_cost: float | np.ndarray = 0.0,
) -> np.ndarray:
    """Textbook retention-model CLV, vectorised over customers:

    CLV = Σ_{t=1..H} (revenue − cost) · retention^(t−1) / (1+d)^t − acquisition_cost

    Cash flows arrive at the end of each period; the customer is present in
    period 1 for sure and survives each further period with ``retention``.
    """
    rev = _as_1d_float("revenue_per_period", revenue_per_period)
    n = rev.shape[0]
    cost = _as_1d_float("cost_per_period", cost_per_period)
    if cost.shape[0] == 1 and np.ndim(cost_per_period) == 0:
        cost = np.full(n, cost[0])
    _check_same_length(revenue_per_period=rev, cost_per_period=cost)
    acq = _as_1d_float("acquisition_cost", acquisition_cost)
    if acq.shape[0] == 1 and np.ndim(acquisition_cost) == 0:
        acq = np.full(n, acq[0])
    _check_same_length(revenue_per_period=rev, acquisition_cost=acq)
    rho = _check_unit_interval("retention", retention)
    d = _check_rate("discount_rate", discount_rate)
    h = _positive_int("horizon", horizon)
    periods = np.arange(1, h + 1, dtype=np.float64)
    factor = float(np.sum(rho ** (periods - 1.0) / (1.0 + d) ** periods))
    return (rev - cost) * factor - acq


def simulate_gamma_gamma(
    frequency: np.ndarray,
    p: float,
    q: float,
    v: float,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Draw the mean repeat spend for each customer from the Gamma-Gamma model.

    ν ~ Gamma(q, rate v); each transaction ~ Gamma(p, rate ν), so the mean of x
    transactions ~ Gamma(p·x, rate ν·x).  Customers with x = 0 get 0.
    """
    _check_positive_params("simulate_gamma_gamma", p=p, q=q, v=v)
    x = _as_1d_float("frequency", frequency)
    _check_frequency(x)
    gen = _rng(rng)
    nu = np.asarray(gen.gamma(shape=q, scale=1.0 / v, size=x.shape[0]))
    out = np.zeros(x.shape)
    pos = x > 0
    out[pos] = gen.gamma(shape=p * x[pos], scale=1.0 / (nu[pos] * x[pos]))
    return out
