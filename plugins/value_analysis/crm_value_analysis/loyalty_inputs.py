"""The loyalty index's factors that do not come from the entries themselves.

* share of wallet (A21): spend per year / the customer's wallet (potential annual spend), read
  from the custom field ``wallet_field`` of the customer (``attributes``, also an import column);
* referrals (A31), price sensitivity (A32), voluntariness (A33): from other plugins through our
  published ``value_loyalty_signals`` hook (sales_automation's referral link, marketing's
  campaign attribution and discounts);
* satisfaction (A34): the service plugin's survey average (its ``service_satisfaction`` hook)
  where present, else the mean satisfaction of the customer's interactions.

A factor nobody answered for stays NaN: :func:`analytics.loyalty_index` leaves it out and
renormalises the weights, and the run's summary names it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, literal_column, select

from crm_value_analysis import reads
from crm_value_analysis.schemas import ValueSettings
from crmcore.models import Customer

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
SIGNALS = ("referrals", "discounted_share", "campaign_share")


def _spread(ids: IntArray, values: Mapping[int, float], what: str, *, share: bool = False) -> FloatArray:
    """A {customer id: value} answer as an array aligned with ``ids`` (NaN: no answer)."""
    out = np.full(ids.size, np.nan)
    if not values:
        return out
    keys = np.fromiter(values.keys(), dtype=np.int64, count=len(values))
    vals = np.fromiter(values.values(), dtype=np.float64, count=len(values))
    if not np.isfinite(vals).all() or (vals < 0).any() or (share and (vals > 1).any()):
        raise ValueError(f"loyalty signal {what!r}: values must be finite, >= 0{' and <= 1' if share else ''}")
    order = np.argsort(keys)
    pos, found = reads._align(ids, keys[order])
    out[pos[found]] = vals[order][found]
    return out


def _number(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) and v > 0 else math.nan


def wallets(session: Any, ids: IntArray, field: str) -> FloatArray:
    """Each customer's wallet (potential annual spend) from its custom field; NaN when absent or not > 0."""
    # the field is an identifier (the settings check it), so the JSON path is a safe literal; a
    # bound path would need the JSON type's bind processing, which the raw cursor skips
    if session.get_bind().dialect.name == "sqlite":
        value: Any = func.json_extract(Customer.attributes, literal_column(f"'$.\"{field}\"'"))
    else:
        value = Customer.attributes.op("->>")(literal_column(f"'{field}'"))
    stmt = select(Customer.id, value).where(value.is_not(None)).order_by(Customer.id)
    rows = reads.fetch_rows(session, stmt)
    out = np.full(ids.size, np.nan)
    if rows:
        keys = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vals = np.array([_number(r[1]) for r in rows])
        pos, found = reads._align(ids, keys)
        out[pos[found]] = vals[found]
    return out


def _signals(uow: Any, ids: IntArray, period: reads.Period) -> dict[str, FloatArray]:
    got: dict[str, FloatArray] = {}
    hook = getattr(uow.hooks.pm.hook, "value_loyalty_signals", None)
    if hook is None or not hook.get_hookimpls():
        return got

    def register(signal: str, values: Mapping[int, float]) -> None:
        if signal not in SIGNALS:
            raise ValueError(f"unknown loyalty signal {signal!r}; known: {', '.join(SIGNALS)}")
        arr = _spread(ids, values, signal, share=signal != "referrals")
        got[signal] = arr if signal not in got else np.where(np.isnan(arr), got[signal], np.nan_to_num(got[signal]) + arr)
    hook(uow=uow, customer_ids=ids.tolist(), start=period.start, end=period.end, register=register)
    return got


def service_satisfaction(uow: Any, ids: IntArray) -> FloatArray:
    """The service plugin's survey average per customer (NaN: none, or no service plugin)."""
    hook = getattr(uow.hooks.pm.hook, "service_satisfaction", None)
    if hook is None or not hook.get_hookimpls():
        return np.full(ids.size, np.nan)
    answer = hook(uow=uow, customer_ids=ids.tolist()) or {}
    scores = {c: v["csat_avg"] for c, v in answer.items() if v and v.get("csat_avg") is not None}
    return _spread(ids, scores, "service_satisfaction")


def loyalty_inputs(uow: Any, ids: IntArray, settings: ValueSettings, period: reads.Period, spend_per_year: FloatArray,
                   satisfaction: FloatArray) -> dict[str, FloatArray]:
    """The four added factors and satisfaction, aligned with ``ids`` (higher = more loyal; NaN = no data)."""
    wallet = wallets(uow.session, ids, settings.wallet_field)
    with np.errstate(invalid="ignore", divide="ignore"):
        share_of_wallet = np.clip(np.maximum(spend_per_year, 0.0) / wallet, 0.0, 1.0)
    sig = _signals(uow, ids, period)
    nan = np.full(ids.size, np.nan)
    survey = service_satisfaction(uow, ids)
    return {
        "share_of_wallet": share_of_wallet,
        "referrals": sig.get("referrals", nan),
        "price_sensitivity": -sig.get("discounted_share", nan),  # the less bought on discount, the more loyal
        "voluntariness": 1.0 - sig.get("campaign_share", nan),
        "satisfaction": np.where(np.isnan(survey), satisfaction, survey),
    }


def factor_report(weights: Mapping[str, float], parts: Mapping[str, FloatArray], buyers: NDArray[np.bool_]) -> dict[str, Any]:
    """Which factors entered the index (data for some purchaser and weight > 0), which were left
    out and why, and the weights renormalised over the ones used."""
    used, left_out = [], {}
    for name, w in weights.items():
        if w <= 0:
            left_out[name] = "weight 0"
        elif not np.isfinite(parts[name][buyers]).any():
            left_out[name] = "no data"
        else:
            used.append(name)
    total = sum(weights[k] for k in used)
    return {"used": used, "left_out": left_out,
            "weights": {k: weights[k] / total for k in used} if total > 0 else {}}


__all__ = ["SIGNALS", "factor_report", "loyalty_inputs", "service_satisfaction", "wallets"]
