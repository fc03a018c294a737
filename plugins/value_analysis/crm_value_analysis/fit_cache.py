"""Re-running a stored date on the same data reuses that run's model fit instead of fitting again.

The fits are deterministic: the same inputs (every customer's frequency, recency, age and spend,
the model setting) and the same fitting code give the same parameters. A run stores its fit with a
key over exactly those inputs and over the source of the fitting modules
(``value_analysis_runs.model_cache``); a re-run of that date whose key matches takes the stored
fit (its ``seconds`` read 0: nothing was fitted), anything else fits afresh. The stored bytes are
JSON (NaN and infinities as Python writes them), never pickles.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from crm_value_analysis import bgnbd, clv_models, fitting, gamma_gamma, mle, purchase_models
from crm_value_analysis.schemas import ValueSettings

#: the parameter classes a fit can hold, by name
_KINDS: dict[str, Any] = {cls.__name__: cls for cls in (clv_models.BGNBDParams, purchase_models.MBGNBDParams,
                                                      purchase_models.ParetoNBDParams, clv_models.GammaGammaParams)}
FORMAT = 1


@lru_cache(maxsize=1)
def _code_version() -> str:
    """A digest of the fitting code: a changed optimiser or likelihood never reuses an older fit."""
    h = hashlib.blake2b(digest_size=16)
    try:
        for module in (fitting, purchase_models, bgnbd, clv_models, gamma_gamma, mle):
            h.update(Path(module.__file__ or "").read_bytes())
    except OSError:  # the source cannot be read (a frozen install): never reuse a fit across processes
        return uuid.uuid4().hex
    return h.hexdigest()


def key(rft: fitting.RFTInput, settings: ValueSettings) -> str:
    """What a run's fit depends on: the model inputs of every customer, the model settings, the code."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps([FORMAT, settings.model, settings.min_fit_customers, _code_version()]).encode())
    for values in (rft.mask, rft.frequency, rft.recency, rft.T, rft.monetary, rft.own_spend, rft.first_spend):
        if values is None:
            h.update(b"-")
            continue
        arr = np.ascontiguousarray(values)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _params(p: Any) -> dict[str, Any] | None:
    return None if p is None else {"kind": type(p).__name__, **dataclasses.asdict(p)}


def _from(d: dict[str, Any] | None) -> Any:
    if d is None:
        return None
    fields = dict(d)
    return _KINDS[fields.pop("kind")](**fields)


def encode(fit: fitting.ModelFit, cache_key: str) -> bytes:
    """The fit as it came out of the fitting, with its key (call before the run adds its own warnings)."""
    return json.dumps({"key": cache_key, "model": fit.model, "purchase": _params(fit.purchase),
                       "gamma_gamma": _params(fit.gamma_gamma), "warnings": list(fit.warnings),
                       "failed": {k: _params(v) for k, v in fit.failed.items()}, "choice": fit.choice,
                       "gg_failure": fit.gg_failure}).encode("utf-8")


def json_key(blob: bytes) -> str | None:
    """The key a stored fit was made under (None: unreadable)."""
    try:
        found = json.loads(bytes(blob).decode("utf-8")).get("key")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def decode(blob: bytes | None, cache_key: str) -> fitting.ModelFit | None:
    """The stored fit when its key is ``cache_key``; None otherwise (or when it cannot be read)."""
    if not blob:
        return None
    try:
        d = json.loads(bytes(blob).decode("utf-8"))
        if d.get("key") != cache_key:
            return None
        return fitting.ModelFit(model=d["model"], purchase=_from(d["purchase"]), gamma_gamma=_from(d["gamma_gamma"]),
                                warnings=list(d["warnings"]), seconds=0.0,
                                failed={k: _from(v) for k, v in d["failed"].items()}, choice=d["choice"],
                                gg_failure=d["gg_failure"])
    except (ValueError, KeyError, TypeError):
        return None  # an unreadable cache is no cache


__all__ = ["decode", "encode", "json_key", "key"]
