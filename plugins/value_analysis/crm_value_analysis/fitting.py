"""The models behind churn and CLV, fitted on the base: the time unit and model chosen from the
data, failed fits told apart from converged ones, and the estimates each customer gets.

A fit is *failed* when the optimiser did not converge or a parameter ran off to a bound (see
:func:`crm_value_analysis.mle.bound_failure`): such parameters describe a limit the model cannot
represent (nobody ever drops out; everybody buys like clockwork), so a run never uses them --
churn risk falls back to the gap rule of :mod:`crm_value_analysis.churn` and the report says so.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crm_value_analysis import clv_models, loaders, purchase_models
from crm_value_analysis.schemas import ValueSettings
from crmcore.errors import InvalidInput

FloatArray = NDArray[np.float64]
DAYS_PER_MONTH = 365.25 / 12.0
#: Time unit of the fits by the median gap between a repeat buyer's purchases (days): below the
#: first bound days, below the second weeks, else months -- so a model's rates are neither tiny
#: nor huge numbers, and purchases on nearby days are not split into many unit periods.
UNIT_BY_GAP = ((10.0, "days"), (90.0, "weeks"))
#: Models compared when ``model = "auto"``. Pareto/NBD's numerical likelihood costs ~20x more
#: per fit; choose it by name, or compare all three on a holdout with ``crm value validate``.
AUTO_MODELS = ("bg_nbd", "mbg_nbd")
#: Two fits whose log-likelihoods differ by less than this (absolute, or relative to the
#: log-likelihood) cannot be told apart by the data.
SAME_LL_ABS, SAME_LL_REL = 0.5, 1e-7


@dataclass(frozen=True)
class RFTInput:
    """BG/NBD inputs of the customers with a purchase up to the cut (``mask`` over all ids)."""

    mask: NDArray[np.bool_]
    frequency: FloatArray  # repeat purchase days
    recency: FloatArray  # last - first purchase day, in model units
    T: FloatArray  # cut - first purchase day, in model units
    monetary: FloatArray  # mean net spend of a repeat purchase day
    own_spend: FloatArray | None = None  # mean net spend of any purchase day (the CLV fallback)
    first_spend: FloatArray | None = None  # net spend of the first purchase day


def rft_input(hist: loaders.PurchaseHistory, unit_days: float) -> RFTInput:
    """The (x, t_x, T, m) summary of :func:`clv_models.summary_from_purchases`, from the reduced series.

    Repeat spend is scaled by the customer's net/gross ratio so credit notes net out of the
    spend the Gamma-Gamma model sees.
    """
    mask = hist.has_purchase
    first, last = hist.first_day[mask], hist.last_day[mask]
    x = (hist.purchase_days[mask] - 1).astype(np.float64)
    gross = hist.gross[mask]
    with np.errstate(invalid="ignore", divide="ignore"):
        net_ratio = np.clip(np.where(gross > 0, hist.net[mask] / gross, 0.0), 0.0, 1.0)
        repeat_spend = np.maximum(gross - hist.gross_first_day[mask], 0.0)
        monetary = np.where(x > 0, repeat_spend / np.maximum(x, 1.0), 0.0) * net_ratio
    own = np.maximum(hist.net[mask], 0.0) / hist.purchase_days[mask]
    return RFTInput(mask=mask, frequency=x, recency=(last - first) / unit_days,
                    T=(hist.cut_day - first) / unit_days, monetary=monetary, own_spend=own,
                    first_spend=hist.gross_first_day[mask] * net_ratio)


#: Spend "does not vary" when this share of repeat buyers paid within 10 % of the same amount every time.
STABLE_SPEND_SHARE = 0.9


def stable_spend(rft: RFTInput) -> float | None:
    """Share of repeat buyers whose first purchase and average repeat purchase cost the same (within
    10 %: two orders on one day count as one purchase of twice the price). Gamma-Gamma only sees average spend, so it cannot notice fixed prices itself: its likelihood
    then grows without end towards "no variation" and the optimiser stops somewhere on the way."""
    if rft.first_spend is None:
        return None
    rep = rft.frequency > 0
    if not rep.any():
        return None
    first, mean = rft.first_spend[rep], rft.monetary[rep]
    return float((np.abs(first - mean) <= 0.1 * np.maximum(np.abs(mean), 1e-9)).mean())


def choose_time_unit(hist: loaders.PurchaseHistory) -> tuple[str, str]:
    """The time unit of the fits from the data, and why (the median gap between purchases)."""
    repeat = hist.purchase_days >= 2
    if not repeat.any():
        return "days", "no repeat buyers: days"
    gaps = (hist.last_day[repeat] - hist.first_day[repeat]) / (hist.purchase_days[repeat] - 1)
    median = float(np.median(gaps))
    unit = next((u for bound, u in UNIT_BY_GAP if median < bound), "months")
    return unit, f"median gap between a repeat buyer's purchases is {median:.0f} days: {unit}"


def resolve_time_unit(settings: ValueSettings, hist: loaders.PurchaseHistory) -> tuple[ValueSettings, dict[str, str]]:
    """``settings`` with ``time_unit = "auto"`` replaced by the unit the data call for."""
    if settings.time_unit != "auto":
        return settings, {"value": settings.time_unit, "how": "set"}
    unit, why = choose_time_unit(hist)
    return settings.model_copy(update={"time_unit": unit}), {"value": unit, "how": "chosen from the data", "why": why}


@dataclass
class ModelFit:
    """Fitted models (None when the data cannot identify them) and why not.

    ``purchase`` is the purchase/drop-out model chosen by name (BG/NBD, MBG/NBD or Pareto/NBD),
    ``gamma_gamma`` the spend model that turns its expected purchases into CLV. ``failed`` keeps
    the fits that were tried and failed (name -> parameters), so the report can show them.
    """

    model: str = "bg_nbd"
    purchase: purchase_models.Params | None = None
    gamma_gamma: clv_models.GammaGammaParams | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    failed: dict[str, Any] = field(default_factory=dict)
    choice: dict[str, Any] = field(default_factory=dict)
    gg_failure: str | None = None

    @property
    def bgnbd(self) -> purchase_models.Params | None:  # the name of the first release
        return self.purchase

    def as_dict(self, time_unit: str) -> dict[str, Any]:
        """Parameters by their usual names: r, alpha, a, b (s, beta for Pareto/NBD); p, q, gamma;
        each fit's status ("converged" or "failed") and, when failed, why."""
        out: dict[str, Any] = {"time_unit": time_unit, "model": self.model, "purchase": None, "gamma_gamma": None}
        if self.purchase is not None:
            out["purchase"] = purchase_dict(self.purchase)
        gg = self.gamma_gamma if self.gamma_gamma is not None else self.failed.get("gamma_gamma")
        if gg is not None:
            out["gamma_gamma"] = {"p": gg.p, "q": gg.q, "gamma": gg.v, **_meta(gg),
                                  "mean_spend": gg.p * gg.v / (gg.q - 1.0) if gg.q > 1 else None}
        elif self.gg_failure:
            out["gamma_gamma"] = {"converged": False, "status": "failed", "failure": self.gg_failure}
        out["failed_fits"] = {k: purchase_dict(v) for k, v in self.failed.items() if k != "gamma_gamma"}
        if self.choice:
            out["choice"] = self.choice
        return out


def _meta(p: Any) -> dict[str, Any]:
    return {"log_likelihood": p.log_likelihood, "n_customers": p.n_customers, "converged": p.converged,
            "status": "converged" if p.converged else "failed", "failure": p.failure}


def purchase_dict(params: purchase_models.Params) -> dict[str, Any]:
    return {**purchase_models.param_dict(params), **_meta(params)}


def same_fit(ll_a: float, ll_b: float) -> bool:
    """True when two log-likelihoods are too close for the data to prefer either model."""
    return abs(ll_a - ll_b) <= max(SAME_LL_ABS, SAME_LL_REL * max(abs(ll_a), abs(ll_b)))


def _fit_one(name: str, rft: RFTInput, strict: bool) -> purchase_models.Params | str:
    """The fit, or the reason it could not be made (strict: an error for the user)."""
    try:
        return purchase_models.fit(name, rft.frequency, rft.recency, rft.T)
    except ValueError as e:
        if strict:
            raise InvalidInput(f"cannot fit the {purchase_models.TITLES[name]} model on this data: {e}") from None
        return str(e)


def _fit_purchase(out: ModelFit, rft: RFTInput, model: str, strict: bool) -> None:
    """Fit ``model`` (or, for "auto", each of :data:`AUTO_MODELS` and keep the best converged one)."""
    names = AUTO_MODELS if model == "auto" else (model,)
    fits: dict[str, purchase_models.Params] = {}
    for name in names:
        got = _fit_one(name, rft, strict and model != "auto")
        if isinstance(got, str):
            if strict and name == names[-1] and not fits and not out.failed:  # auto: nothing could be fitted
                raise InvalidInput(f"cannot fit the {purchase_models.TITLES[names[0]]} model on this data: {got}")
            out.warnings.append(f"{purchase_models.TITLES[name]} model not fitted: {got}")
        elif got.converged:
            fits[name] = got
        else:
            out.failed[name] = got
            out.warnings.append(f"{purchase_models.TITLES[name]}: {got.failure}")
    if model != "auto":
        out.model = model
        out.purchase = fits.get(model) or (out.failed.pop(model, None) if strict else None)
        return
    if not fits:
        out.model = names[0]
        out.choice = {"how": "chosen from the data", "why": "no model could be fitted without failing"}
        return
    ranked = sorted(fits, key=lambda k: -fits[k].log_likelihood)
    best = ranked[0]
    if len(ranked) > 1 and same_fit(fits[ranked[0]].log_likelihood, fits[ranked[1]].log_likelihood):
        best = next(n for n in names if n in fits)
        why = (f"{' and '.join(purchase_models.TITLES[n] for n in ranked)} fit equally well "
               f"(log-likelihoods {', '.join(f'{fits[n].log_likelihood:.1f}' for n in ranked)}): kept "
               f"{purchase_models.TITLES[best]}")
    else:
        why = ("highest log-likelihood: " + ", ".join(f"{purchase_models.TITLES[n]} {fits[n].log_likelihood:.1f}"
                                                        for n in ranked))
    out.model, out.purchase = best, fits[best]
    out.choice = {"how": "chosen from the data", "why": why, "log_likelihoods": {n: fits[n].log_likelihood for n in ranked}}


def fit_rft(rft: RFTInput, *, strict: bool = False, model: str = "bg_nbd") -> ModelFit:
    """Fit the purchase model ``model`` ("auto": the best of :data:`AUTO_MODELS`) and Gamma-Gamma.

    ``strict=False`` (analysis runs): a model the data cannot identify (e.g. no repeat buyers,
    one customer) or a failed fit is left out with a warning; churn then uses the gap rule and
    CLV each customer's own average spend. ``strict=True`` (``crm value fit`` / ``validate``):
    a purchase model that cannot be fitted at all is an error; a failed fit is returned with its
    status (Gamma-Gamma's too).
    """
    out = ModelFit(model=model)
    start = time.perf_counter()
    _fit_purchase(out, rft, model, strict)
    stable = stable_spend(rft)
    try:
        if stable is not None and stable >= STABLE_SPEND_SHARE:
            raise ValueError(f"spend does not vary: {stable:.0%} of the repeat buyers pay the same amount every "
                             "time (stable prices), so there is no spend variation to model")
        gg = clv_models.fit_gamma_gamma(rft.frequency, rft.monetary)
    except ValueError as e:  # the spend model is reported as failed; the purchase model stands on its own
        out.gg_failure = str(e)
        out.warnings.append(f"Gamma-Gamma model not fitted: {e}; probabilistic CLV uses each customer's own "
                            "average spend")
    else:
        if gg.converged:
            out.gamma_gamma = gg
        else:
            out.failed["gamma_gamma"] = gg
            out.warnings.append(f"Gamma-Gamma: {gg.failure}; probabilistic CLV uses each customer's own average spend")
    out.seconds = time.perf_counter() - start
    return out


def fit_for_run(rft: RFTInput, settings: ValueSettings) -> ModelFit:
    """The run's fit: none from fewer than ``min_fit_customers`` buyers (noise presented as a forecast)."""
    n = int(rft.mask.sum())
    if n >= settings.min_fit_customers:
        return fit_rft(rft, model=settings.model)
    title = "the purchase model" if settings.model == "auto" else purchase_models.TITLES[settings.model]
    return ModelFit(model=settings.model, warnings=[
        (f"{title} and Gamma-Gamma not fitted: {n} customers with purchases, fewer than "
         f"min_fit_customers = {settings.min_fit_customers}")])


def _expected_spend(gg: clv_models.GammaGammaParams, x: FloatArray, m: FloatArray) -> FloatArray:
    """Gamma-Gamma expected spend; NaN where the model has no finite mean (q <= 1 and x = 0)."""
    ok = gg.p * x + gg.q - 1.0 > 0
    out = np.full(x.shape, np.nan)
    if ok.any():
        out[ok] = clv_models.gamma_gamma_expected_spend(gg, x[ok], m[ok])
    return out


def model_estimates(fit: ModelFit, rft: RFTInput, settings: ValueSettings) -> dict[str, FloatArray]:
    """P(alive), expected purchases and probabilistic CLV over the horizon (NaN: no model).

    Spend per purchase is Gamma-Gamma's expectation, or -- when Gamma-Gamma could not be fitted
    (e.g. every customer always pays the same price) -- the customer's own average spend.
    """
    n = int(rft.mask.sum())
    out = {k: np.full(n, np.nan) for k in ("p_alive", "expected_purchases", "clv_probabilistic")}
    bg, gg = fit.purchase, fit.gamma_gamma
    if bg is None or n == 0:
        return out
    x, tx, T = rft.frequency, rft.recency, rft.T
    out["p_alive"] = purchase_models.probability_alive(bg, x, tx, T)
    step = DAYS_PER_MONTH / settings.unit_days
    out["expected_purchases"] = purchase_models.expected_purchases(bg, x, tx, T, settings.horizon_months * step)
    if gg is not None:
        spend = _expected_spend(gg, x, rft.monetary)
    else:
        spend = rft.own_spend if rft.own_spend is not None else np.full(n, np.nan)
    ok = np.isfinite(spend)
    if ok.any():
        discounted = purchase_models.discounted_purchases(
            bg, x[ok], tx[ok], T[ok], horizon_periods=settings.horizon_months,
            discount_rate_per_period=settings.monthly_discount_rate, step=step)
        out["clv_probabilistic"][ok] = settings.margin * spend[ok] * discounted
    return out


__all__ = [
    "AUTO_MODELS", "DAYS_PER_MONTH", "ModelFit", "RFTInput", "choose_time_unit", "fit_for_run", "fit_rft",
    "model_estimates", "purchase_dict", "resolve_time_unit", "rft_input", "same_fit",
]
