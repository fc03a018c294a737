"""The three purchase models behind churn and CLV: BG/NBD, MBG/NBD and Pareto/NBD, behind one interface.

* BG/NBD: Fader, Hardie & Lee (2005), in :mod:`clv_models` (unchanged, the default).
* MBG/NBD: Batislam, Denizel & Filiztekin (2007), "Empirical validation and comparison of
  models for customer base analysis", IJRM 24(3). Like BG/NBD, but a customer may also drop
  out right after the first purchase, so one-time buyers are not "alive for sure".
* Pareto/NBD: Schmittlein, Morrison & Colombo (1987), "Counting your customers: who are they
  and what will they do next?", Management Science 33(1); likelihood as in Fader & Hardie
  (2005), "A Note on Deriving the Pareto/NBD Model and Related Expressions".

Everything is vectorised over customers, fitted by maximum likelihood (L-BFGS-B on
log-parameters, analytic gradients), in log space so customers with hundreds of repeat
purchases neither overflow nor lose the likelihood to cancellation.

Why Pareto/NBD is integrated numerically instead of through ``scipy.special.hyp2f1``: the
closed form needs 2F1(r+s+x, s+1; r+s+x+1; z) with z -> 1 whenever alpha >> beta, and the
difference of two such terms. For large x, c - a - b = -s < 0 makes 2F1 diverge like
(1-z)^-s while SciPy's series/transformations lose all digits (or return inf) once
r+s+x reaches the hundreds; the difference then cancels catastrophically. The same quantity
is the integral of the dying-at-tau density,
    I = integral_{t_x}^{T} (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau,
which after the substitution w = ((alpha+t_x)/(alpha+tau))^(r+s+x) becomes
    I = (alpha+t_x)^-(r+s+x) (1 - w_T) / (r+s+x) * integral_0^1 h(q) dq,
    h = ((alpha+tau)/(beta+tau))^(s+1),
a bounded, monotone integrand (all the steep decay is absorbed by the substitution). Its only
roughness is an algebraic end-point singularity in the derivatives, which tanh-sinh
(double-exponential) quadrature integrates to ~1e-12 with a few dozen nodes. Everything is
summed with logsumexp, so log I is finite for any x, and the gradient comes from the same
nodes (derivatives under the integral sign).
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln, logsumexp  # type: ignore[import-untyped]

from crm_value_analysis import clv_models
from crm_value_analysis.clv_models import BGNBDParams, GammaGammaParams

ModelName = Literal["bg_nbd", "mbg_nbd", "pareto_nbd"]
MODELS: tuple[str, ...] = ("bg_nbd", "mbg_nbd", "pareto_nbd")
TITLES = {"bg_nbd": "BG/NBD", "mbg_nbd": "MBG/NBD", "pareto_nbd": "Pareto/NBD"}
PARAM_NAMES: dict[str, tuple[str, ...]] = {
    "bg_nbd": ("r", "alpha", "a", "b"),
    "mbg_nbd": ("r", "alpha", "a", "b"),
    "pareto_nbd": ("r", "alpha", "s", "beta"),
}


@dataclass(frozen=True)
class MBGNBDParams:
    """MBG/NBD: Gamma(r, rate alpha) purchase rates, Beta(a, b) drop-out probability."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")
    n_customers: int = 0
    converged: bool = True
    failure: str | None = None  # why the fit failed (a bound, no convergence); None when converged

    def __post_init__(self) -> None:
        clv_models._check_positive_params("MBGNBDParams", r=self.r, alpha=self.alpha, a=self.a, b=self.b)


@dataclass(frozen=True)
class ParetoNBDParams:
    """Pareto/NBD: Gamma(r, rate alpha) purchase rates, Gamma(s, rate beta) drop-out rates."""

    r: float
    alpha: float
    s: float
    beta: float
    log_likelihood: float = float("nan")
    n_customers: int = 0
    converged: bool = True
    failure: str | None = None

    def __post_init__(self) -> None:
        clv_models._check_positive_params("ParetoNBDParams", r=self.r, alpha=self.alpha, s=self.s, beta=self.beta)


Params = BGNBDParams | MBGNBDParams | ParetoNBDParams
_CLASSES: dict[str, type] = {"bg_nbd": BGNBDParams, "mbg_nbd": MBGNBDParams, "pareto_nbd": ParetoNBDParams}


def model_name(params: Params) -> str:
    for name, cls in _CLASSES.items():
        if isinstance(params, cls):
            return name
    raise ValueError(f"not a purchase-model parameter set: {type(params).__name__}")


def check_model(name: str) -> str:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return name


def make_params(name: str, values: dict[str, float]) -> Params:
    """Parameters of model ``name`` from a mapping with the usual names (extra keys ignored)."""
    cls = _CLASSES[check_model(name)]
    return cls(**{k: float(values[k]) for k in PARAM_NAMES[name]})


def param_dict(params: Params) -> dict[str, float]:
    return {k: float(getattr(params, k)) for k in PARAM_NAMES[model_name(params)]}


# =============================================================================================
# MBG/NBD
# =============================================================================================

def _mbgnbd_nll_grad(theta: np.ndarray, d: Any) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood of MBG/NBD (Batislam et al. 2007, eq. 2) and its gradient.

    LL_i = ln Γ(r+x) − ln Γ(r) + r ln α + ln( e^u + e^w ),
    u = ln B(a, b+x+1) − ln B(a,b) − (r+x) ln(α+T),
    w = ln B(a+1, b+x) − ln B(a,b) − (r+x) ln(α+t_x)      (for every x, also x = 0).
    """
    r, alpha, a, b = np.exp(theta)
    xu, inv = d.xu, d.inv
    lb_ab = betaln(a, b)
    u = (betaln(a, b + xu + 1.0) - lb_ab)[inv] - (r + d.x) * (log_aT := np.log(alpha + d.T))
    w = (betaln(a + 1.0, b + xu) - lb_ab)[inv] - (r + d.x) * (log_atx := np.log(alpha + d.tx))
    mix = np.logaddexp(u, w)
    total = d.counts @ (gammaln(r + xu) - gammaln(r)) + d.n * r * math.log(alpha) + mix.sum()
    pu, pw = np.exp(u - mix), np.exp(w - mix)
    rx = r + d.x
    g_r = d.counts @ (digamma(r + xu) - digamma(r)) + d.n * math.log(alpha) - pu @ log_aT - pw @ log_atx
    g_alpha = d.n * r / alpha - (rx * (pu / (alpha + d.T) + pw / (alpha + d.tx))).sum()
    PU = np.bincount(inv, weights=pu, minlength=xu.size)
    PW = np.bincount(inv, weights=pw, minlength=xu.size)
    psi_ab, psi_abx1 = digamma(a + b), digamma(a + b + xu + 1.0)
    da_u = psi_ab - psi_abx1
    db_u = digamma(b + xu + 1.0) - psi_abx1 - digamma(b) + psi_ab
    da_w = digamma(a + 1.0) - digamma(a) + psi_ab - psi_abx1
    db_w = digamma(b + xu) - psi_abx1 - digamma(b) + psi_ab
    g_a = PU @ da_u + PW @ da_w
    g_b = PU @ db_u + PW @ db_w
    grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
    return -total / d.n, -grad / d.n


def fit_mbgnbd(frequency: Any, recency: Any, T: Any) -> MBGNBDParams:
    x, tx, tt = clv_models._validate_rft(frequency, recency, T)
    _check_fit_data("fit_mbgnbd", x, tt)
    data = clv_models._BGNBDData(x, tx, tt)
    rate = data.sum_x / float(tt.sum())
    theta, nll, failure = clv_models._run_lbfgsb(_mbgnbd_nll_grad, np.log(np.array([1.0, 1.0 / rate, 1.0, 1.0])), (data,))
    r, alpha, a, b = (float(v) for v in np.exp(theta))
    failure = clv_models.bound_failure({"r": r, "alpha": alpha, "a": a, "b": b}, {"alpha": float(tt.max())}) or failure
    return MBGNBDParams(r=r, alpha=alpha, a=a, b=b, log_likelihood=-nll * data.n, n_customers=data.n,
                        converged=failure is None, failure=failure)


def _mbg_log_odds_dead(p: MBGNBDParams, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    return math.log(p.a) - np.log(p.b + x) + (p.r + x) * (np.log(p.alpha + T) - np.log(p.alpha + tx))


# =============================================================================================
# Pareto/NBD
# =============================================================================================

def _tanh_sinh_nodes(level: float = 3.2, h: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes q, 1 - q (computed directly: no cancellation near 1) and log-weights on [0, 1]."""
    t = np.arange(-level, level + h / 2, h)
    u = 0.5 * math.pi * np.sinh(t)
    q = expit(2.0 * u)          # (1 + tanh u) / 2
    one_minus_q = expit(-2.0 * u)
    log_w = math.log(h * 0.5 * math.pi) + np.log(np.cosh(t)) - 2.0 * np.logaddexp(u, -u) + math.log(2.0)
    return q, one_minus_q, log_w


_Q, _ONE_MINUS_Q, _LOG_W = _tanh_sinh_nodes()


#: customers per block of the Pareto/NBD quadrature (block x nodes temporaries stay ~5 MB each)
PNBD_BLOCK = 8192


def _pnbd_terms(r: float, alpha: float, s: float, beta: float, x: np.ndarray, tx: np.ndarray, T: np.ndarray,
                grad: bool = False) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray] | None]:
    """A = ln[(α+T)^-(r+x) (β+T)^-s] (alive at T) and B = ln[s·I] (died in (t_x, T]); see the module doc.

    With ``grad``: the node-weighted means E[g] of the integrand's log-derivatives.
    Customers are independent rows, so large inputs are cut in blocks that run on all cores
    (NumPy releases the GIL in its loops): the same numbers, ~1.8x faster on 2 cores, and memory
    bounded by the block instead of customers x quadrature nodes.
    """
    n = x.shape[0]
    if n <= PNBD_BLOCK:
        return _pnbd_terms_block(r, alpha, s, beta, x, tx, T, grad)
    blocks = [slice(i, min(i + PNBD_BLOCK, n)) for i in range(0, n, PNBD_BLOCK)]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        parts = list(pool.map(lambda b: _pnbd_terms_block(r, alpha, s, beta, x[b], tx[b], T[b], grad), blocks))
    A = np.concatenate([p[0] for p in parts])
    B = np.concatenate([p[1] for p in parts])
    if not grad:
        return A, B, None
    keys = parts[0][2].keys()  # type: ignore[union-attr]
    return A, B, {k: np.concatenate([p[2][k] for p in parts]) for k in keys}  # type: ignore[index]


def _pnbd_terms_block(r: float, alpha: float, s: float, beta: float, x: np.ndarray, tx: np.ndarray, T: np.ndarray,
                      grad: bool) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray] | None]:
    """:func:`_pnbd_terms` for one block of customers."""
    m = r + s + x
    log_at = np.log(alpha + T)
    log_atx = np.log(alpha + tx)
    A = -(r + x) * log_at - s * np.log(beta + T)
    log_wT = -m * (log_at - log_atx)               # ln w_T <= 0; 0 when t_x == T
    with np.errstate(divide="ignore"):
        log_1m_wT = np.log(-np.expm1(log_wT))      # -inf when t_x == T: nothing to integrate
    # nodes: ln w = ln((1-q) + q w_T); ln(α+τ) = ln(α+t_x) − ln(w)/m
    log_w = np.logaddexp(np.log(_ONE_MINUS_Q)[None, :], np.log(_Q)[None, :] + log_wT[:, None])
    log_a_tau = log_atx[:, None] - log_w / m[:, None]
    inv_a_tau = np.exp(-log_a_tau)
    log_h = -(s + 1.0) * np.log1p((beta - alpha) * inv_a_tau)
    lw = _LOG_W[None, :] + log_h
    log_int = logsumexp(lw, axis=1)
    B = math.log(s) - m * log_atx - np.log(m) + log_1m_wT + log_int
    if not grad:
        return A, B, None
    weights = np.exp(lw - log_int[:, None])
    log_b_tau = np.log(beta - alpha + np.exp(log_a_tau))
    e = {
        "log_a": (weights * log_a_tau).sum(axis=1),
        "inv_a": (weights * inv_a_tau).sum(axis=1),
        "log_b": (weights * log_b_tau).sum(axis=1),
        "inv_b": (weights * np.exp(-log_b_tau)).sum(axis=1),
    }
    return A, B, e


class _PNBDData:
    """Distinct (x, t_x, T) rows with their counts: customers often share them (weeks, one-timers)."""

    def __init__(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> None:
        rows, counts = np.unique(np.column_stack([x, tx, T]), axis=0, return_counts=True)
        self.x, self.tx, self.T = rows[:, 0], rows[:, 1], rows[:, 2]
        self.c = counts.astype(np.float64)
        self.n = float(counts.sum())


def _pnbd_nll_grad(theta: np.ndarray, d: _PNBDData) -> tuple[float, np.ndarray]:
    r, alpha, s, beta = np.exp(theta)
    A, B, e = _pnbd_terms(r, alpha, s, beta, d.x, d.tx, d.T, grad=True)
    assert e is not None
    mix = np.logaddexp(A, B)
    C = gammaln(r + d.x) - gammaln(r) + r * math.log(alpha) + s * math.log(beta)
    total = d.c @ (C + mix)
    pA, pB = np.exp(A - mix), np.exp(B - mix)
    rx = r + d.x
    g_r = digamma(rx) - digamma(r) + math.log(alpha) - pA * np.log(alpha + d.T) - pB * e["log_a"]
    g_alpha = r / alpha - pA * rx / (alpha + d.T) - pB * rx * e["inv_a"]
    g_s = math.log(beta) - pA * np.log(beta + d.T) + pB * (1.0 / s - e["log_b"])
    g_beta = s / beta - pA * s / (beta + d.T) - pB * (s + 1.0) * e["inv_b"]
    grad = np.array([d.c @ g_r * r, d.c @ g_alpha * alpha, d.c @ g_s * s, d.c @ g_beta * beta])
    return -float(total) / d.n, -grad / d.n


def pareto_nbd_log_likelihood(params: ParetoNBDParams, x: Any, tx: Any, T: Any) -> np.ndarray:
    """Per-customer log-likelihood (for tests and model comparison)."""
    x, tx, tt = clv_models._validate_rft(x, tx, T)
    p = params
    A, B, _ = _pnbd_terms(p.r, p.alpha, p.s, p.beta, x, tx, tt)
    return gammaln(p.r + x) - gammaln(p.r) + p.r * math.log(p.alpha) + p.s * math.log(p.beta) + np.logaddexp(A, B)


def fit_pareto_nbd(frequency: Any, recency: Any, T: Any) -> ParetoNBDParams:
    x, tx, tt = clv_models._validate_rft(frequency, recency, T)
    _check_fit_data("fit_pareto_nbd", x, tt)
    data = _PNBDData(x, tx, tt)
    rate = float(x.sum()) / float(tt.sum())
    theta0 = np.log(np.array([1.0, 1.0 / rate, 1.0, 1.0 / rate]))
    theta, nll, failure = clv_models._run_lbfgsb(_pnbd_nll_grad, theta0, (data,))
    r, alpha, s, beta = (float(v) for v in np.exp(theta))
    span = float(tt.max())
    failure = clv_models.bound_failure({"r": r, "alpha": alpha, "s": s, "beta": beta},
                                       {"alpha": span, "beta": span}) or failure
    return ParetoNBDParams(r=r, alpha=alpha, s=s, beta=beta, log_likelihood=-nll * data.n, n_customers=int(data.n),
                           converged=failure is None, failure=failure)


def _pnbd_p_alive(p: ParetoNBDParams, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    A, B, _ = _pnbd_terms(p.r, p.alpha, p.s, p.beta, x, tx, T)
    return np.exp(A - np.logaddexp(A, B))


def _pnbd_expected_if_alive(p: ParetoNBDParams, x: np.ndarray, T: np.ndarray, t: np.ndarray) -> np.ndarray:
    """E[Y(t) | alive at T] = (r+x)/(α+T) · (β+T)/(s−1) · [1 − ((β+T)/(β+T+t))^(s−1)] (s = 1: the log limit)."""
    log_rho = np.log(p.beta + T) - np.log(p.beta + T + t)
    factor = -log_rho if abs(p.s - 1.0) < 1e-09 else -np.expm1((p.s - 1.0) * log_rho) / (p.s - 1.0)
    return (p.r + x) / (p.alpha + T) * (p.beta + T) * factor


# =============================================================================================
# One interface
# =============================================================================================

def _check_fit_data(owner: str, x: np.ndarray, T: np.ndarray) -> None:
    if x.size == 0:
        raise ValueError(f"{owner} needs at least one customer, got empty input")
    if not (T > 0).any():
        raise ValueError(f"{owner}: every customer has T == 0, nothing to learn from")
    if x.sum() == 0:
        raise ValueError(f"{owner}: no repeat purchases at all, the parameters are not identified")


def fit(name: str, frequency: Any, recency: Any, T: Any) -> Params:
    """Maximum-likelihood fit of model ``name`` on (x, t_x, T)."""
    fitter: Any = {"bg_nbd": clv_models.fit_bgnbd, "mbg_nbd": fit_mbgnbd, "pareto_nbd": fit_pareto_nbd}[check_model(name)]
    return fitter(frequency, recency, T)


def probability_alive(params: Params, frequency: Any, recency: Any, T: Any) -> np.ndarray:
    """P(still active at T | x, t_x, T)."""
    if isinstance(params, BGNBDParams):
        return clv_models.bgnbd_probability_alive(params, frequency, recency, T)
    x, tx, tt = clv_models._validate_rft(frequency, recency, T)
    if isinstance(params, MBGNBDParams):
        return expit(-_mbg_log_odds_dead(params, x, tx, tt))
    return _pnbd_p_alive(params, x, tx, tt)


def expected_purchases(params: Params, frequency: Any, recency: Any, T: Any, t: Any) -> np.ndarray:
    """E[repeat purchases in (T, T+t] | x, t_x, T]."""
    if isinstance(params, BGNBDParams):
        return clv_models.bgnbd_expected_purchases(params, frequency, recency, T, t)
    x, tx, tt = clv_models._validate_rft(frequency, recency, T)
    horizon = clv_models._broadcast_horizon(t, x.shape[0])
    return probability_alive(params, x, tx, tt) * _expected_if_alive(params, x, tt, horizon)


def _expected_if_alive(params: Params, x: np.ndarray, T: np.ndarray, t: np.ndarray) -> np.ndarray:
    if isinstance(params, BGNBDParams):
        return clv_models._expected_if_alive(params, x, T, t)
    if isinstance(params, MBGNBDParams):
        # the MBG/NBD posterior of p given "alive" is Beta(a, b+x+1): BG/NBD's formula with b + 1
        shifted = BGNBDParams(r=params.r, alpha=params.alpha, a=params.a, b=params.b + 1.0)
        return clv_models._expected_if_alive(shifted, x, T, t)
    return _pnbd_expected_if_alive(params, x, T, t)


def probabilistic_clv(params: Params, gg: GammaGammaParams, frequency: Any, recency: Any, T: Any, monetary: Any, *,
                      horizon_periods: int, discount_rate_per_period: float, margin: float, step: float = 1) -> np.ndarray:
    """Discounted expected margin over the horizon (see :func:`clv_models.probabilistic_clv`), any model:
    margin x Gamma-Gamma expected spend x :func:`discounted_purchases`."""
    mg = clv_models._check_unit_interval("margin", margin)
    x, tx, tt = clv_models._validate_rft(frequency, recency, T)
    spend = clv_models.gamma_gamma_expected_spend(gg, x, clv_models._as_1d_float("monetary", monetary))
    return mg * spend * discounted_purchases(params, x, tx, tt, horizon_periods=horizon_periods,
                                             discount_rate_per_period=discount_rate_per_period, step=step)


def discounted_purchases(params: Params, frequency: Any, recency: Any, T: Any, *, horizon_periods: int,
                         discount_rate_per_period: float, step: float = 1) -> np.ndarray:
    """Sum over the horizon of each period's expected purchases, discounted to today.

    Multiplied by a spend per purchase (Gamma-Gamma's, or the customer's own average when spend
    cannot be modelled) and the margin, it is the probabilistic CLV. E[Y(t) | alive] -- the costly
    part (a 2F1 per customer and month for BG/NBD) -- depends only on (x, T), so it is evaluated
    once per distinct pair: whole days and integer repeat counts repeat a lot in a real base.
    """
    horizon = clv_models._positive_int("horizon_periods", horizon_periods)
    d = clv_models._check_rate("discount_rate_per_period", discount_rate_per_period)
    x, tx, tt = clv_models._validate_rft(frequency, recency, T)
    step_f = clv_models._finite_scalar("step", step)
    if step_f <= 0:
        raise ValueError(f"step must be > 0, got {step_f}")
    alive = probability_alive(params, x, tx, tt)
    pairs, inv = np.unique(np.column_stack([x, tt]), axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    ux, uT = pairs[:, 0].copy(), pairs[:, 1].copy()

    def expected(k: int) -> np.ndarray:
        return _expected_if_alive(params, ux, uT, np.full(ux.shape, k * step_f))

    # One horizon per task: SciPy's special functions release the GIL, so the months run on all
    # cores (the run's database work is idle meanwhile). Same numbers as a plain loop; only one
    # batch of months (one per worker) is held at a time, so memory does not grow with the horizon.
    workers = min(4, os.cpu_count() or 1)
    total = np.zeros(x.shape)
    previous = np.zeros(x.shape)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(1, horizon + 1, workers):
            months = range(start, min(start + workers, horizon + 1))
            for k, values in zip(months, pool.map(expected, months)):
                current = alive * values[inv]
                total += (current - previous) / (1.0 + d) ** k
                previous = current
    return total


# =============================================================================================
# Simulators (parameter recovery tests)
# =============================================================================================

def simulate(name: str, n: int, T: Any, params: dict[str, float], rng: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw (x, t_x, T) for ``n`` customers from model ``name`` with the given parameters."""
    name = check_model(name)
    gen = clv_models._rng(rng)
    tt = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).astype(np.float64)
    p = make_params(name, params)
    lam = gen.gamma(shape=p.r, scale=1.0 / p.alpha, size=n)
    if isinstance(p, ParetoNBDParams):
        mu = gen.gamma(shape=p.s, scale=1.0 / p.beta, size=n)
        life = np.minimum(gen.exponential(1.0 / mu), tt)
        x = gen.poisson(lam * life)
        recency = np.zeros(n)
        pos = x > 0
        recency[pos] = life[pos] * gen.beta(x[pos], 1.0)  # the last of x uniform purchase times
        return x.astype(np.int64), recency, tt
    if isinstance(p, MBGNBDParams):
        drop = np.clip(gen.beta(p.a, p.b, size=n), 1e-12, 1.0)
        k = gen.poisson(lam * tt)
        survived = gen.geometric(drop) - 1  # repeat purchases survived before dropping (0: gone at once)
        x = np.minimum(k, survived).astype(np.int64)
        recency = np.zeros(n)
        pos = x > 0
        recency[pos] = tt[pos] * gen.beta(x[pos], k[pos] - x[pos] + 1)
        return x, recency, tt
    return clv_models.simulate_bgnbd(n, tt, p.r, p.alpha, p.a, p.b, rng=gen)


__all__ = [
    "MODELS",
    "PARAM_NAMES",
    "TITLES",
    "MBGNBDParams",
    "Params",
    "ParetoNBDParams",
    "check_model",
    "discounted_purchases",
    "expected_purchases",
    "fit",
    "fit_mbgnbd",
    "fit_pareto_nbd",
    "make_params",
    "model_name",
    "param_dict",
    "pareto_nbd_log_likelihood",
    "probabilistic_clv",
    "probability_alive",
    "simulate",
]
