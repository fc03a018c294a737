"""One step of the run, pure NumPy: from the purchase history to churn risk and CLV estimates.

Chooses the time unit and model from the data (when set to "auto"), fits, decides the churn
method (:mod:`crm_value_analysis.churn`) and keeps a rejected model out of every number: when
churn falls back to the gap rule, P(alive), expected purchases and the probabilistic CLV of that
model are left empty too, so no report mixes a model the run did not trust with one it did.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crm_value_analysis import churn, fit_cache, fitting, loaders, purchase_models
from crm_value_analysis.schemas import ValueSettings

FloatArray = NDArray[np.float64]


@dataclass
class Estimates:
    """Per-customer estimates aligned with the history's ids (NaN: none), and how they were made."""

    settings: ValueSettings  # with the time unit resolved
    fit: fitting.ModelFit
    rft: fitting.RFTInput
    p_alive: FloatArray
    expected_purchases: FloatArray
    clv_probabilistic: FloatArray
    decision: churn.ChurnDecision
    rule: churn.GapRule
    unit_choice: dict[str, str]
    fit_blob: bytes | None = None  # the fit as stored for a re-run of the date (see fit_cache)

    def models_summary(self) -> dict[str, Any]:
        """The fitted models, their status and the choices of unit and model, for the run's summary."""
        out = self.fit.as_dict(self.settings.time_unit)
        out["time_unit_choice"] = self.unit_choice
        out["model_choice"] = self.fit.choice or {"value": self.fit.model, "how": "set"}
        out["used_for_churn"] = self.decision.use_model
        return out

    def churn_summary(self, threshold: float) -> dict[str, Any]:
        gap = self.rule.business_gap
        return {"threshold": threshold, "at_risk": int(np.nansum(self.decision.at_risk == 1)),
                "method": self.decision.method, "reason": self.decision.reason, "gap_factor": self.rule.factor,
                "business_gap_days": None if gap is None else round(gap, 1), "agreement": self.decision.agreement}


def estimate(hist: loaders.PurchaseHistory, settings: ValueSettings, cached: bytes | None = None) -> Estimates:
    """Fit (unit and model from the data when "auto"), decide churn, and compute the estimates.

    ``cached``: the stored fit of an earlier run of the same date, reused when made from the
    same inputs (:mod:`fit_cache`).
    """
    settings, unit_choice = fitting.resolve_time_unit(settings, hist)
    rft = fitting.rft_input(hist, settings.unit_days)
    cache_key = fit_cache.key(rft, settings)
    fit = fit_cache.decode(cached, cache_key) or fitting.fit_for_run(rft, settings)
    blob = fit_cache.encode(fit, cache_key)
    est = fitting.model_estimates(fit, rft, settings)
    n = hist.ids.size

    def spread(values: FloatArray) -> FloatArray:
        full = np.full(n, np.nan)
        full[rft.mask] = values
        return full

    p_alive = spread(est["p_alive"])
    rule = churn.gap_rule(hist.first_day, hist.last_day, hist.purchase_days, hist.cut_day, settings.churn_gap_factor)
    title = None if fit.purchase is None else purchase_models.TITLES[fit.model]
    failure = None
    if fit.purchase is None:
        tried = [t for t in (purchase_models.TITLES.get(m) for m in (*fitting.AUTO_MODELS, fit.model)) if t]
        failure = ("no purchase model could be used (" + " / ".join(dict.fromkeys(tried)) + " not fitted or failed, "
                   "see the warnings)")
    regular, _ = churn.regularity(hist.days_last, hist.days_prev, hist.first_day, hist.cut_day, settings.trend_days)
    decision = churn.decide(p_alive, rule, settings.churn_threshold, title, failure, regular)
    expected, clv = spread(est["expected_purchases"]), spread(est["clv_probabilistic"])
    if not decision.use_model:  # Gamma-Gamma's spend has no expected purchases to multiply
        fit.warnings = [w.replace("; probabilistic CLV uses each customer's own average spend", "") for w in fit.warnings]
    if not decision.use_model and fit.purchase is not None:
        fit.warnings.append(f"{title}'s P(alive), expected purchases and probabilistic CLV are left out: "
                            f"{decision.reason}")
        p_alive, expected, clv = (np.full(n, np.nan) for _ in range(3))
    elif not decision.use_model:
        fit.warnings.append(f"churn risk from the gap rule: {decision.reason}")
    return Estimates(settings=settings, fit=fit, rft=rft, p_alive=p_alive, expected_purchases=expected,
                     clv_probabilistic=clv, decision=decision, rule=rule, unit_choice=unit_choice, fit_blob=blob)


__all__ = ["Estimates", "estimate"]
