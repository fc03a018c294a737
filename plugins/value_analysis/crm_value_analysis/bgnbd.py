"""BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way", Marketing Science
24(2)) and the purchase-log summary (x, t_x, T) every purchase model starts from.

Pure NumPy/SciPy; see :mod:`crm_value_analysis.clv_models` for the conventions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1, logsumexp  # type: ignore[import-untyped]

from crm_value_analysis.mle import (
    _as_1d_float,
    _broadcast_horizon,
    _check_positive_params,
    _check_same_length,
    _finite_scalar,
    _initial_vector,
    _rng,
    _run_lbfgsb,
    _validate_rft,
    bound_failure,
)


@dataclass(frozen=True)
class RFTSummary:
    """Per-customer frequency / recency / T / monetary summary (index = customer)."""

    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    monetary: np.ndarray
    has_purchase: np.ndarray

    def __len__(self) -> int:
        return int(self.frequency.shape[0])


@dataclass(frozen=True)
class BGNBDParams:
    """Fitted BG/NBD parameters.

    r, alpha: Gamma(shape r, rate alpha) heterogeneity of the purchase rate.
    a, b: Beta(a, b) heterogeneity of the drop-out probability.
    """

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")
    n_customers: int = 0
    converged: bool = True
    failure: str | None = None  # why the fit failed (a bound, no convergence); None when converged

    def __post_init__(self) -> None:
        _check_positive_params("BGNBDParams", r=self.r, alpha=self.alpha, a=self.a, b=self.b)

def _as_bgnbd(params: object) -> BGNBDParams:
    if not isinstance(params, BGNBDParams):
        raise ValueError(f"expected BGNBDParams, got {type(params).__name__}")  # noqa: TRY004 (the API raises ValueError)
    return params


def _purchase_log(customer_idx: np.ndarray, purchase_t: np.ndarray, n_customers: int, calibration_end: float,
                  first_t: np.ndarray | None, amounts: np.ndarray | None) -> tuple[Any, ...]:
    """The checked inputs of :func:`summary_from_purchases` (ValueError naming the bad one)."""
    n = n_customers
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 0:
        raise ValueError(f"n_customers must be a non-negative integer, got {n_customers!r}")
    n = int(n)
    cal_end = _finite_scalar("calibration_end", calibration_end)

    idx = np.atleast_1d(np.asarray(customer_idx))
    if idx.ndim != 1:
        raise ValueError(f"customer_idx must be one-dimensional, got shape {idx.shape}")
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"customer_idx must have an integer dtype, got {idx.dtype}")
    idx = idx.astype(np.int64, copy=False)
    t = _as_1d_float("purchase_t", purchase_t)
    amt = None if amounts is None else _as_1d_float("amounts", amounts)
    if amt is None:
        _check_same_length(customer_idx=idx, purchase_t=t)
    else:
        _check_same_length(customer_idx=idx, purchase_t=t, amounts=amt)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"customer_idx values must lie in [0, n_customers={n})")

    birth_given = None
    if first_t is not None:
        birth_given = _as_1d_float("first_t", first_t, allow_nan=True)
        if birth_given.shape[0] != n:
            raise ValueError(
                f"first_t must have one value per customer (n_customers={n}), "
                f"got {birth_given.shape[0]}"
            )

    return n, cal_end, idx, t, amt, birth_given


def summary_from_purchases(
    customer_idx: np.ndarray,
    purchase_t: np.ndarray,
    n_customers: int,
    calibration_end: float,
    first_t: np.ndarray | None = None,
    amounts: np.ndarray | None = None,
) -> RFTSummary:
    """Summarise a purchase log (one row per purchase) into per-customer x, t_x, T.

    Purchases of one customer at the same time value are one purchase *period*
    (the caller floors times to days/weeks), because BG/NBD counts purchase
    occasions, not order lines.  Purchases after ``calibration_end`` are ignored.

    ``first_t`` (optional, one value per customer, NaN = unknown) is the
    customer's birth time when the log may not contain the first purchase
    (e.g. a truncated history).  Every distinct purchase time strictly after
    the birth time is a repeat purchase; without ``first_t`` the birth time is
    the earliest purchase, which gives the textbook definitions.  A customer
    with a finite ``first_t <= calibration_end`` counts as having purchased.

    ``monetary`` is the mean over repeat purchase periods of the summed amounts
    (0 for customers without repeat purchases, NaN everywhere if ``amounts`` is
    None, so it cannot be silently used as spend data).
    """
    n, cal_end, idx, t, amt, birth_given = _purchase_log(customer_idx, purchase_t, n_customers, calibration_end,
                                                         first_t, amounts)
    keep = t <= cal_end
    idx, t = idx[keep], t[keep]
    amt = np.zeros_like(t) if amt is None else amt[keep]

    # Sort by (customer, time) and collapse equal times into purchase periods.
    order = np.lexsort((t, idx))
    idx, t, amt = idx[order], t[order], amt[order]
    if t.size:
        new_period = np.empty(t.size, dtype=bool)
        new_period[0] = True
        new_period[1:] = (idx[1:] != idx[:-1]) | (t[1:] != t[:-1])
        starts = np.flatnonzero(new_period)
        p_idx, p_t, p_amt = idx[starts], t[starts], np.add.reduceat(amt, starts)
    else:
        p_idx, p_t, p_amt = idx, t, amt

    first_purchase = np.full(n, np.nan)
    if p_idx.size:
        cust_first = np.empty(p_idx.size, dtype=bool)
        cust_first[0] = True
        cust_first[1:] = p_idx[1:] != p_idx[:-1]
        first_purchase[p_idx[cust_first]] = p_t[cust_first]

    if birth_given is None:
        birth = first_purchase
    else:
        birth = np.where(np.isfinite(birth_given), birth_given, first_purchase)
        if p_idx.size and (p_t < birth[p_idx]).any():
            raise ValueError("some purchases happen before the customer's first_t")

    born = np.isfinite(birth) & (birth <= cal_end)
    is_repeat = p_t > birth[p_idx] if p_idx.size else np.zeros(0, dtype=bool)
    r_idx, r_t, r_amt = p_idx[is_repeat], p_t[is_repeat], p_amt[is_repeat]

    frequency = np.bincount(r_idx, minlength=n).astype(np.int64)
    last = np.zeros(n)
    if r_idx.size:
        is_last = np.empty(r_idx.size, dtype=bool)
        is_last[-1] = True
        is_last[:-1] = r_idx[1:] != r_idx[:-1]
        last[r_idx[is_last]] = r_t[is_last]
    has_repeat = frequency > 0
    recency = np.where(has_repeat, last - np.where(has_repeat, birth, 0.0), 0.0)
    T = np.where(born, cal_end - np.where(born, birth, 0.0), 0.0)
    if amounts is None:
        monetary = np.full(n, np.nan)
    else:
        spend = np.bincount(r_idx, weights=r_amt, minlength=n)
        monetary = np.where(has_repeat, spend / np.maximum(frequency, 1), 0.0)
    return RFTSummary(
        frequency=frequency, recency=recency, T=T, monetary=monetary, has_purchase=born
    )


class _BGNBDData:
    """Pre-processed fit data; x-only terms are evaluated once per distinct x."""

    def __init__(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> None:
        self.x = x
        self.tx = tx
        self.T = T
        self.n = x.shape[0]
        self.xu, self.inv, counts = np.unique(x, return_inverse=True, return_counts=True)
        self.counts = counts.astype(np.float64)
        self.pos = self.xu > 0
        self.sum_x = float(x.sum())


def _bgnbd_nll_grad(theta: np.ndarray, d: _BGNBDData) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood (FHL 2005, eq. 6) and its gradient in log-params.

    LL_i = ln Γ(r+x) − ln Γ(r) + r ln α
           + ln( exp(u) + δ_{x>0} exp(w) ),
    u = ln B(a, b+x) − ln B(a,b) − (r+x) ln(α+T),
    w = ln B(a+1, b+x−1) − ln B(a,b) − (r+x) ln(α+t_x).
    """
    r, alpha, a, b = np.exp(theta)
    xu, inv, pos = d.xu, d.inv, d.pos

    lb_ab = betaln(a, b)
    u_x = betaln(a, b + xu) - lb_ab
    w_x = np.full(xu.shape, -np.inf)
    w_x[pos] = betaln(a + 1.0, b + xu[pos] - 1.0) - lb_ab

    log_aT = np.log(alpha + d.T)
    log_atx = np.log(alpha + d.tx)
    rx = r + d.x
    u = u_x[inv] - rx * log_aT
    w = w_x[inv] - rx * log_atx
    m = np.maximum(u, w)
    eu = np.exp(u - m)
    ew = np.exp(w - m)
    s = eu + ew
    ll_mix = m + np.log(s)

    ll_const = d.counts @ (gammaln(r + xu) - gammaln(r)) + d.n * r * math.log(alpha)
    total = ll_const + ll_mix.sum()

    pu = eu / s
    pw = ew / s
    # d/dr, d/dalpha
    g_r = d.counts @ (digamma(r + xu) - digamma(r)) + d.n * math.log(alpha)
    g_r -= pu @ log_aT + pw @ log_atx
    g_alpha = d.n * r / alpha - (rx * (pu / (alpha + d.T) + pw / (alpha + d.tx))).sum()
    # d/da, d/db: per distinct x, weighted by the posterior mixture weights.
    PU = np.bincount(inv, weights=pu, minlength=xu.size)
    PW = np.bincount(inv, weights=pw, minlength=xu.size)
    psi_ab = digamma(a + b)
    psi_abx = digamma(a + b + xu)
    da_u = psi_ab - psi_abx
    db_u = digamma(b + xu) - digamma(b) + psi_ab - psi_abx
    da_w = np.zeros_like(xu)
    db_w = np.zeros_like(xu)
    da_w[pos] = digamma(a + 1.0) - digamma(a) + psi_ab - psi_abx[pos]
    db_w[pos] = digamma(b + xu[pos] - 1.0) - digamma(b) + psi_ab - psi_abx[pos]
    g_a = PU @ da_u + PW @ da_w
    g_b = PU @ db_u + PW @ db_w

    grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
    return -total / d.n, -grad / d.n


def fit_bgnbd(
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    *,
    initial: BGNBDParams | Sequence[float] | None = None,
) -> BGNBDParams:
    """Maximum-likelihood BG/NBD fit (L-BFGS-B on log-parameters, analytic gradient).

    Terms that depend only on x (gammaln/betaln/digamma) are evaluated once per
    distinct frequency, so one evaluation costs a few vector logs/exps over the
    customers; 100k customers fit in well under a second.
    """
    x, tx, tt = _validate_rft(frequency, recency, T)
    if x.size == 0:
        raise ValueError("fit_bgnbd needs at least one customer, got empty input")
    if not (tt > 0).any():
        raise ValueError("fit_bgnbd: every customer has T == 0, nothing to learn from")
    if x.sum() == 0:
        raise ValueError("fit_bgnbd: no repeat purchases at all, the parameters are not identified")
    data = _BGNBDData(x, tx, tt)
    theta0 = _initial_vector(initial, ("r", "alpha", "a", "b"))
    if theta0 is None:
        # r=1 with alpha matched to the observed repeat rate x/T puts the start
        # on the right time scale whatever unit (days/weeks) the caller uses.
        rate = data.sum_x / float(tt.sum())
        theta0 = np.log(np.array([1.0, 1.0 / rate, 1.0, 1.0]))
    theta, nll, failure = _run_lbfgsb(_bgnbd_nll_grad, theta0, (data,))
    r, alpha, a, b = (float(v) for v in np.exp(theta))
    # a parameter run off to a bound says why the fit failed better than the optimiser's own message
    failure = bound_failure({"r": r, "alpha": alpha, "a": a, "b": b}, {"alpha": float(tt.max())}) or failure
    return BGNBDParams(r=r, alpha=alpha, a=a, b=b, log_likelihood=-nll * data.n, n_customers=int(data.n),
                       converged=failure is None, failure=failure)


def _log_odds_dead(params: BGNBDParams, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    """ln[ a/(b+x−1) · ((α+T)/(α+t_x))^(r+x) ] for x>0, −inf for x=0."""
    out = np.full(x.shape, -np.inf)
    pos = x > 0
    xp = x[pos]
    out[pos] = (
        math.log(params.a)
        - np.log(params.b + xp - 1.0)
        + (params.r + xp) * (np.log(params.alpha + T[pos]) - np.log(params.alpha + tx[pos]))
    )
    return out


def bgnbd_probability_alive(
    params: BGNBDParams, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(customer still active at T | x, t_x, T) (FHL 2005 eq. 11), in log space.

    Customers without repeat purchases are alive with probability 1 under
    BG/NBD (drop-out only happens right after a repeat purchase).
    """
    params = _as_bgnbd(params)
    x, tx, tt = _validate_rft(frequency, recency, T)
    return expit(-_log_odds_dead(params, x, tx, tt))


def _expected_if_alive_quadrature(
    params: BGNBDParams, x: np.ndarray, T: np.ndarray, t: np.ndarray, n_nodes: int = 4001
) -> np.ndarray:
    """E[Y(t) | alive, x, T] = E_{p~Beta(a, b+x)}[(1 − (1+κp)^−(r+x)) / p], κ = t/(α+T).

    Robust fallback to the 2F1 closed form: the posterior of the drop-out
    probability is Beta(a, b+x); integrating over y = logit(p) gives a smooth,
    bell-shaped integrand for which the trapezoid rule converges very fast.
    """
    alpha, a, b = params.alpha, params.a, params.b
    out = np.empty(x.shape)
    chunk = 256
    for start in range(0, x.size, chunk):
        sl = slice(start, start + chunk)
        c = b + x[sl]
        rx = (params.r + x[sl])[:, None]
        kappa = (t[sl] / (alpha + T[sl]))[:, None]
        # Grid wide enough for the exp(a·y) / exp(−c·y) tails to fall by e^-40.
        mode = np.log(a / c)
        lo = mode - 40.0 / a - 5.0
        hi = mode + 40.0 / c + 5.0
        u = np.linspace(0.0, 1.0, n_nodes)[None, :]
        y = lo[:, None] + (hi - lo)[:, None] * u
        log_p = -np.logaddexp(0.0, -y)
        log_1mp = -np.logaddexp(0.0, y)
        logw = a * log_p + c[:, None] * log_1mp
        logw -= logsumexp(logw, axis=1, keepdims=True)
        p = np.exp(log_p)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = -np.expm1(-rx * np.log1p(kappa * p)) / p
        # p underflows to 0 far in the left tail, where g -> (r+x)·κ.
        g = np.where(p > 0, g, rx * kappa)
        out[sl] = np.sum(np.exp(logw) * g, axis=1)
    return out


def _expected_if_alive_2f1(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, T: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """Closed form via Euler's transformation; may contain NaN/inf (handled by caller)."""
    log1mz = np.log(alpha + T) - np.log(alpha + T + t)
    z = t / (alpha + T + t)
    with np.errstate(all="ignore"):
        F = hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
        log_h = (a - 1.0) * log1mz
        one_minus_h = np.where(
            F > 0, -np.expm1(log_h + np.log(np.where(F > 0, F, 1.0))), 1.0 - np.exp(log_h) * F
        )
        return (a + b + x - 1.0) / (a - 1.0) * one_minus_h


def _expected_if_alive(params: BGNBDParams, x: np.ndarray, T: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Numerator of FHL 2005 eq. 10: (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) · 2F1(...)].

    The 2F1(r+x, b+x; a+b+x−1; z) of the paper explodes for large x because
    c−a−b = a−1−r−x ≪ 0.  Euler's transformation turns the product into
    (1−z)^(a−1) · 2F1(a+b−1−r, a−1; a+b+x−1; z), whose parameters do not grow
    with x, so scipy evaluates it accurately; any non-finite or negative value
    left over is recomputed by quadrature.  a == 1 is a removable singularity:
    there we interpolate linearly between a = 1 ± 1e-6.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    h = 1e-6
    if abs(a - 1.0) < h:
        lo = _expected_if_alive_2f1(r, alpha, 1.0 - h, b, x, T, t)
        hi = _expected_if_alive_2f1(r, alpha, 1.0 + h, b, x, T, t)
        out = lo + (a - (1.0 - h)) / (2.0 * h) * (hi - lo)
    else:
        out = _expected_if_alive_2f1(r, alpha, a, b, x, T, t)
    bad = ~np.isfinite(out) | (out < 0)
    if bad.any():
        out[bad] = _expected_if_alive_quadrature(params, x[bad], T[bad], t[bad])
    return np.maximum(out, 0.0)


def bgnbd_expected_purchases(
    params: BGNBDParams,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    t: float | np.ndarray,
) -> np.ndarray:
    """E[number of purchases in (T, T+t] | x, t_x, T] (FHL 2005 eq. 10).

    = P(alive) · E[purchases in t | alive]; the second factor uses a
    numerically stable transformation of the paper's 2F1 (see
    ``_expected_if_alive``) so large x/T never produce NaN.
    """
    params = _as_bgnbd(params)
    x, tx, tt = _validate_rft(frequency, recency, T)
    horizon = _broadcast_horizon(t, x.shape[0])
    alive = expit(-_log_odds_dead(params, x, tx, tt))
    return alive * _expected_if_alive(params, x, tt, horizon)


def bgnbd_unconditional_expected(params: BGNBDParams, t: float | np.ndarray) -> np.ndarray:
    """E[X(t)]: expected repeat purchases of a brand-new customer in (0, t] (FHL eq. 9).

    Equals the conditional expectation with x = t_x = T = 0, which reuses the
    stable evaluation path.
    """
    params = _as_bgnbd(params)
    arr = np.asarray(t, dtype=np.float64)
    if arr.ndim > 1:
        raise ValueError("t must be a scalar or a one-dimensional array")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError("t must be finite and non-negative")
    flat = np.atleast_1d(arr)
    zeros = np.zeros(flat.shape)
    out = _expected_if_alive(params, zeros, zeros, flat)
    return out.reshape(arr.shape) if arr.ndim == 0 else out


def simulate_bgnbd(
    n_customers: int,
    T: float | np.ndarray,
    r: float,
    alpha: float,
    a: float,
    b: float,
    rng: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw (frequency, recency, T) from the BG/NBD generative story.

    λ ~ Gamma(r, rate α), p ~ Beta(a, b); repeat purchases follow a Poisson(λ)
    process and after each one the customer drops out with probability p.
    Vectorised: with K ~ Poisson(λT) uncensored events and the drop-out index
    N ~ Geometric(p), x = min(K, N) and t_x is the x-th of K uniform order
    statistics on (0, T], i.e. T · Beta(x, K−x+1).
    """
    n = n_customers
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 0:
        raise ValueError(f"n_customers must be a non-negative integer, got {n_customers!r}")
    _check_positive_params("simulate_bgnbd", r=r, alpha=alpha, a=a, b=b)
    gen = _rng(rng)
    tt = np.asarray(T, dtype=np.float64)
    if tt.ndim > 1 or (tt.ndim == 1 and tt.shape[0] != n):
        raise ValueError("T must be a scalar or have one value per customer")
    if not np.isfinite(tt).all() or (tt < 0).any():
        raise ValueError("T must be finite and non-negative")
    tt = np.broadcast_to(tt, (n,)).astype(np.float64)
    lam = gen.gamma(shape=r, scale=1.0 / alpha, size=n)
    p = np.clip(gen.beta(a, b, size=n), 1e-12, 1.0)
    k = gen.poisson(lam * tt)
    drop = gen.geometric(p)
    x = np.minimum(k, drop).astype(np.int64)
    recency = np.zeros(n)
    pos = x > 0
    recency[pos] = tt[pos] * gen.beta(x[pos], k[pos] - x[pos] + 1)
    return x, recency, tt
