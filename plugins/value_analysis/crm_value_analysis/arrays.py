"""Validation and ranking helpers shared by the analytics modules (split from :mod:`analytics`)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
StrArray = NDArray[np.str_]

# --------------------------------------------------------------------------
# validation and ranking helpers
# --------------------------------------------------------------------------


def _as_1d_float(name: str, values: ArrayLike, *, allow_nan: bool = False) -> FloatArray:
    """Convert to a 1-D float64 array; reject non-numeric data, inf and (unless allowed) NaN."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if allow_nan:
        if np.isinf(arr).any():
            raise ValueError(f"{name} must not contain infinite values")
    elif not np.isfinite(arr).all():
        raise ValueError(f"{name} must contain only finite numbers (no NaN or inf)")
    return arr


def _check_same_length(**arrays: np.ndarray) -> int:
    """Return the common length, or raise because positional alignment would be broken."""
    lengths = {name: int(a.shape[0]) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise ValueError(f"arrays must have the same length (aligned by customer): {detail}")
    return next(iter(lengths.values())) if lengths else 0


def _twice_average_rank(values: FloatArray) -> IntArray:
    """Return 2 x the 1-based average ('mid') rank of each value, as exact integers.

    Equal values share the average of the positions they occupy, so ties always
    get identical ranks. Doubling keeps the half ranks integral, which lets the
    quantile cut use integer arithmetic with no float boundary surprises.
    """
    n = values.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(values)  # order inside a run of ties is irrelevant
    sorted_v = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])  # 0-based run starts
    ends = np.r_[starts[1:], n]  # exclusive ends
    run_of_position = np.repeat(np.arange(starts.size), ends - starts)
    twice = np.empty(n, dtype=np.int64)
    # 1-based first + last position of the run = (start + 1) + end
    twice[order] = (starts + 1 + ends)[run_of_position]
    return twice


def _percentile_rank(values: FloatArray) -> FloatArray:
    """Average-rank percentile in [0, 1]: min -> 0, max -> 1, ties and a lone value -> mid."""
    n = values.size
    if n == 0:
        return np.zeros(0)
    if n == 1:
        return np.full(1, 0.5)
    return (_twice_average_rank(values) - 2) / (2.0 * (n - 1))


def _labels(names: Sequence[str], codes: NDArray[np.integer[Any]]) -> StrArray:
    """Map integer codes to a fixed-width string array (vectorised gather)."""
    return np.asarray(list(names), dtype=np.str_)[codes]
