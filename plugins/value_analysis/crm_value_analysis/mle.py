"""Shared numerics of the purchase and spend models: input checks, the optimiser, fit diagnostics.

Every model is fitted by maximum likelihood with L-BFGS-B on log-parameters. A fit is only
*converged* when the optimiser stopped at an interior optimum: a parameter that runs off to a
bound (a BG/NBD ``a`` of 1e-8 means "nobody ever drops out", an ``r`` of 1e6 means "every
customer buys at exactly the same pace") is a degenerate limit the model cannot represent, so
:func:`bound_failure` turns it into a failed fit with a message saying what the data look like.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy.optimize import minimize  # type: ignore[import-untyped]

# Optimisation happens on log-parameters; these bounds (e^-18 .. e^18) keep exp() finite.
_LOG_BOUNDS = (-18.0, 18.0)
#: A fitted parameter beyond this factor from its reference scale (1 for shapes, the data's time
#: span or mean spend for scales) sits on a bound: the likelihood kept improving towards a limit.
BOUND_FACTOR = 1e4


def _check_positive_params(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not (isinstance(value, Real) and math.isfinite(value) and value > 0):
            raise ValueError(f"{owner}: parameter {name} must be a finite number > 0, got {value!r}")


def _as_1d_float(name: str, values: object, *, allow_nan: bool = False) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name} must be real-valued")
    arr = np.atleast_1d(arr).astype(np.float64, copy=False)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if allow_nan:
        if np.isinf(arr).any():
            raise ValueError(f"{name} contains infinite values")
    elif not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _check_same_length(**arrays: np.ndarray) -> int:
    lengths = {name: arr.shape[0] for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise ValueError(f"arrays must have the same length, got {detail}")
    return next(iter(lengths.values()))


def _finite_scalar(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")  # noqa: TRY004 (the API raises ValueError)
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")  # noqa: TRY004
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _check_frequency(frequency: np.ndarray) -> None:
    if (frequency < 0).any():
        raise ValueError("frequency must be non-negative")
    if (frequency != np.floor(frequency)).any():
        raise ValueError("frequency must contain whole numbers (count of repeat purchases)")


def _validate_rft(
    frequency: object, recency: object, T: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate an (x, t_x, T) triple; the likelihood is meaningless otherwise."""
    x = _as_1d_float("frequency", frequency)
    tx = _as_1d_float("recency", recency)
    tt = _as_1d_float("T", T)
    _check_same_length(frequency=x, recency=tx, T=tt)
    _check_frequency(x)
    if (tx < 0).any():
        raise ValueError("recency must be non-negative")
    if (tx > tt).any():
        raise ValueError("recency must not exceed T (last purchase after end of calibration?)")
    if ((x == 0) & (tx != 0)).any():
        raise ValueError("recency must be 0 for customers with frequency 0")
    return x, tx, tt


def _check_rate(name: str, value: object) -> float:
    d = _finite_scalar(name, value)
    if d < 0:
        raise ValueError(f"{name} must be non-negative, got {d}")
    return d


def _check_unit_interval(name: str, value: object) -> float:
    val = _finite_scalar(name, value)
    if not 0.0 <= val <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {val}")
    return val


def _rng(rng: object) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (Integral, np.random.SeedSequence)):
        return np.random.default_rng(int(rng) if isinstance(rng, Integral) else rng)
    raise ValueError(f"rng must be a numpy Generator, a seed or None, got {type(rng).__name__}")


def _broadcast_horizon(t: object, n: int) -> np.ndarray:
    arr = np.asarray(t, dtype=np.float64)
    if arr.ndim > 1:
        raise ValueError("t must be a scalar or a one-dimensional array")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError("t must be finite and non-negative")
    if arr.ndim == 1 and arr.shape[0] != n:
        raise ValueError(f"t has length {arr.shape[0]} but there are {n} customers")
    return np.broadcast_to(arr, (n,)).astype(np.float64)


def _initial_vector(initial: object, names: Sequence[str]) -> np.ndarray | None:
    """Log start values from a parameter object (attributes ``names``) or a sequence."""
    if initial is None:
        return None
    if all(hasattr(initial, k) for k in names) and not isinstance(initial, (list, tuple, np.ndarray)):
        values = [getattr(initial, k) for k in names]
    else:
        values = list(np.asarray(initial, dtype=np.float64).ravel())
    if len(values) != len(names):
        raise ValueError(f"initial must provide {len(names)} values ({', '.join(names)})")
    values_arr = np.asarray(values, dtype=np.float64)
    if not (np.isfinite(values_arr).all() and (values_arr > 0).all()):
        raise ValueError("initial parameter values must be finite and > 0")
    return np.log(values_arr)


def _run_lbfgsb(fun: Callable[..., Any], theta0: np.ndarray, args: tuple[Any, ...]) -> tuple[np.ndarray, float, str | None]:
    """Minimise ``fun`` (value and gradient) on log-parameters: (theta, value, failure or None)."""
    bounds = [_LOG_BOUNDS] * theta0.size
    theta0 = np.clip(theta0, _LOG_BOUNDS[0] + 1.0, _LOG_BOUNDS[1] - 1.0)
    res = minimize(fun, theta0, args=args, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9})
    theta = np.asarray(res.x, dtype=np.float64)
    if not np.isfinite(res.fun):
        return theta, float(res.fun), "failed fit: the likelihood is not finite at the optimum"
    # L-BFGS-B sometimes reports ABNORMAL line-search termination once it sits
    # exactly on the optimum; accept that when the gradient is already tiny.
    _, grad = fun(theta, *args)
    if not (bool(res.success) or float(np.max(np.abs(grad))) < 1e-5):
        return theta, float(res.fun), f"failed fit: the optimiser stopped without converging ({res.message})"
    return theta, float(res.fun), None


#: What a parameter running to a bound says about the data: (parameter, "low"/"high") -> meaning.
_BOUND_MEANING = {
    ("r", "high"): "purchase rates do not vary between customers (regular purchases, not a Poisson process)",
    ("alpha", "high"): "purchase rates do not vary between customers (regular purchases, not a Poisson process)",
    ("r", "low"): "purchase rates vary without limit between customers",
    ("a", "low"): "no customer ever drops out",
    ("b", "high"): "no customer ever drops out",
    ("s", "low"): "no customer ever drops out",
    ("beta", "high"): "no customer ever drops out",
    ("p", "high"): "spend does not vary between a customer's purchases",
    ("v", "low"): "spend does not vary between a customer's purchases",
    ("q", "high"): "average spend does not vary between customers",
}


def bound_failure(values: Mapping[str, float], scales: Mapping[str, float] | None = None) -> str | None:
    """Why a fit that reached a parameter bound failed, or None for an interior fit.

    ``values``: the fitted parameters; ``scales``: reference scale of each scale parameter
    (e.g. the longest customer history for alpha, the mean spend for Gamma-Gamma's gamma);
    shape parameters are compared with 1. A parameter more than :data:`BOUND_FACTOR` away from
    its scale (or within 1e-3 of the optimiser's box) is on a bound.
    """
    scales = scales or {}
    found: dict[str, list[str]] = {}
    for name, value in values.items():
        ratio = value / scales.get(name, 1.0)
        log_v = math.log(value) if value > 0 else -math.inf
        side = ("low" if ratio < 1.0 / BOUND_FACTOR or log_v <= _LOG_BOUNDS[0] + 1e-3 else
                "high" if ratio > BOUND_FACTOR or log_v >= _LOG_BOUNDS[1] - 1e-3 else None)
        if side is not None:
            meaning = _BOUND_MEANING.get((name, side), "the data cannot identify it")
            found.setdefault(meaning, []).append(f"{name} = {value:.3g} ({'lower' if side == 'low' else 'upper'} bound)")
    if not found:
        return None
    return "failed fit: " + "; ".join(f"{', '.join(params)}: {meaning}" for meaning, params in found.items())
