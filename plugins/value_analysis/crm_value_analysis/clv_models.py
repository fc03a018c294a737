"""Customer lifetime value models: BG/NBD, Gamma-Gamma and simple CLV formulas.

Pure NumPy/SciPy, written from the published maths:

* Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An
  Alternative to the Pareto/NBD Model", Marketing Science 24(2) -- BG/NBD.
* Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value" (note).

Conventions (the usual "RFM" summary of a purchase history):

* ``frequency`` (x): number of *repeat* purchase periods, i.e. distinct purchase
  times after the first one;
* ``recency`` (t_x): time of the last purchase minus time of the first one;
* ``T``: end of the calibration window minus time of the first purchase;
* ``monetary``: mean value of the repeat purchases (first purchase excluded,
  because the Gamma-Gamma model describes the spend of repeat transactions).

All times are in one caller-chosen unit (days, weeks, ...).  Every function is
vectorised over customers; the only Python loops run over a handful of horizon
steps or quadrature chunks, never over customers.
"""

from __future__ import annotations

# The models live in three modules (kept small); this module is their stable import path.
from crm_value_analysis.bgnbd import (  # noqa: F401  (re-exported, also the private helpers other modules use)
    BGNBDParams,
    RFTSummary,
    _as_bgnbd,
    _bgnbd_nll_grad,
    _BGNBDData,
    _expected_if_alive,
    _expected_if_alive_2f1,
    _expected_if_alive_quadrature,
    _log_odds_dead,
    bgnbd_expected_purchases,
    bgnbd_probability_alive,
    bgnbd_unconditional_expected,
    fit_bgnbd,
    simulate_bgnbd,
    summary_from_purchases,
)
from crm_value_analysis.gamma_gamma import (  # noqa: F401
    GammaGammaParams,
    _as_gg,
    _gg_nll_grad,
    deterministic_clv,
    fit_gamma_gamma,
    gamma_gamma_expected_spend,
    probabilistic_clv,
    simulate_gamma_gamma,
)
from crm_value_analysis.mle import (  # noqa: F401
    _LOG_BOUNDS,
    BOUND_FACTOR,
    _as_1d_float,
    _broadcast_horizon,
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

__all__ = [
    "BGNBDParams",
    "GammaGammaParams",
    "RFTSummary",
    "bgnbd_expected_purchases",
    "bgnbd_probability_alive",
    "bgnbd_unconditional_expected",
    "bound_failure",
    "deterministic_clv",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "gamma_gamma_expected_spend",
    "probabilistic_clv",
    "simulate_bgnbd",
    "simulate_gamma_gamma",
    "summary_from_purchases",
]


if __name__ == "__main__":  # pragma: no cover - manual benchmark
    import time

    import numpy as np

    true_bg = {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43}
    true_gg = {"p": 6.25, "q": 3.74, "v": 15.44}
    gen = np.random.default_rng(2024)
    freq, rec, age = simulate_bgnbd(100_000, 52.0, rng=gen, **true_bg)
    start = time.perf_counter()
    fitted = fit_bgnbd(freq, rec, age)
    elapsed = time.perf_counter() - start
    print(f"BG/NBD fit, 100,000 customers: {elapsed:.3f} s, converged={fitted.converged}")
    for name, true in true_bg.items():
        est = getattr(fitted, name)
        print(f"  {name:>5}: true {true:7.3f}  est {est:7.3f}  rel.err {abs(est - true) / true:6.2%}")
    mon = simulate_gamma_gamma(freq, rng=gen, **true_gg)
    start = time.perf_counter()
    gg_fit = fit_gamma_gamma(freq, mon)
    elapsed = time.perf_counter() - start
    print(
        f"Gamma-Gamma fit, {gg_fit.n_customers} customers: {elapsed:.3f} s, "
        f"converged={gg_fit.converged}"
    )
    for name, true in true_gg.items():
        est = getattr(gg_fit, name)
        print(f"  {name:>5}: true {true:7.3f}  est {est:7.3f}  rel.err {abs(est - true) / true:6.2%}")
    start = time.perf_counter()
    clv = probabilistic_clv(
        fitted, gg_fit, freq, rec, age, mon,
        horizon_periods=12, discount_rate_per_period=0.01, margin=0.3, step=4.345,
    )
    print(f"12-month probabilistic CLV, 100,000 customers: {time.perf_counter() - start:.3f} s, "
          f"mean {clv.mean():.2f}")
