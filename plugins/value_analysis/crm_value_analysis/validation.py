"""``crm value fit`` and ``crm value validate``: the models on a calibration period, checked on a holdout.

(Split from :mod:`services`, which re-exports these names.) A failed fit (a parameter on a bound,
no convergence) is shown with its status and reason and is never named the best model; nor is
one of several models the data cannot tell apart.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from crm_value_analysis import loaders, plots, purchase_models
from crm_value_analysis.fitting import RFTInput, fit_rft, resolve_time_unit, rft_input, same_fit
from crm_value_analysis.money import money
from crm_value_analysis.run import resolve_currency, settings_for
from crm_value_analysis.schemas import ValueSettings
from crmcore.errors import InvalidInput
from crmcore.uow import UnitOfWork


def _check_calibration(uow: UnitOfWork, settings: ValueSettings, calibration_end: dt.date) -> tuple[dt.date, dt.date]:
    span = loaders.purchase_span(uow.session, settings)
    if span is None:
        raise InvalidInput("no purchases to fit the models on")
    first, last = span
    if calibration_end > last:
        raise InvalidInput(f"invalid input: calibration end {calibration_end} is after the data (last purchase {last})",
                           [("calibration_end", "after the last purchase")])
    if calibration_end <= first:
        raise InvalidInput(f"invalid input: calibration end {calibration_end} leaves no calibration period "
                           f"(first purchase {first})", [("calibration_end", "before the data")])
    return span


def _models(model: str | None, settings: ValueSettings, *, allow_all: bool) -> tuple[str, ...]:
    """The models to fit; "auto" is one choice for ``fit`` and every model for ``validate``."""
    name = settings.model if model is None else model
    if allow_all and name in ("all", "auto"):
        return purchase_models.MODELS
    if name == "auto":
        return (name,)
    if name not in purchase_models.MODELS:
        known = ", ".join([*purchase_models.MODELS, "auto", *(["all"] if allow_all else [])])
        raise InvalidInput(f"invalid input: model: unknown model {name!r}; known: {known}", [("model", "unknown")])
    return (name,)


def _calibration(uow: UnitOfWork, settings: ValueSettings, calibration_end: dt.date,
                 holdout_end: dt.date | None = None) -> tuple[ValueSettings, list[str], np.ndarray, loaders.PurchaseHistory, RFTInput]:
    """The calibration history (time unit resolved from it when "auto")."""
    settings, currency_warning = resolve_currency(uow.session, settings)
    _check_calibration(uow, settings, calibration_end)
    ids = loaders.customer_ids(uow.session)
    hist = loaders.customer_stats(uow.session, ids, settings, calibration_end, holdout_end=holdout_end).history
    settings, choice = resolve_time_unit(settings, hist)
    warnings = [currency_warning] if currency_warning else []
    if choice["how"] != "set":
        warnings.append(f"time unit {choice['value']}: {choice['why']}")
    return settings, warnings, ids, hist, rft_input(hist, settings.unit_days)


def require_base_report(uow: UnitOfWork) -> None:
    """A read over the whole customer base (a run's totals, a model fitted on every customer's
    purchases) needs ``customer.read`` and, for a user who sees only their own customers
    (``[visibility]`` "own"), ``value.report``: by every face, since the check is here."""
    uow.require("customer.read")
    if uow.visibility.own_only:
        uow.require("value.report")


def fit_models(uow: UnitOfWork, calibration_end: dt.date, settings: ValueSettings | None = None,
               model: str | None = None) -> dict[str, Any]:
    """Fit one purchase model (default: the ``model`` setting) and Gamma-Gamma on the purchases up to
    ``calibration_end``: parameters by their usual names and log-likelihoods (over every customer:
    see :func:`require_base_report`)."""
    require_base_report(uow)
    settings = settings_for(uow) if settings is None else settings
    (name,) = _models(model, settings, allow_all=False)
    settings, warnings, _, _, rft = _calibration(uow, settings, calibration_end)
    fit = fit_rft(rft, strict=True, model=name)
    return {
        "calibration_end": calibration_end.isoformat(),
        "currency": settings.currency,
        "customers": int(rft.mask.sum()),
        "repeat_customers": int((rft.frequency > 0).sum()),
        **_with_money(fit.as_dict(settings.time_unit)),
        "seconds": round(fit.seconds, 4),
        "warnings": warnings,
    }


def _holdout_weeks(uow: UnitOfWork, settings: ValueSettings, ids: np.ndarray, mask: np.ndarray,
                   calibration_end: dt.date, holdout_end: dt.date) -> np.ndarray:
    """Repeat purchases (purchase days) per holdout week of the calibration cohort: one GROUP BY."""
    session = uow.session
    day = loaders.day_number(loaders.Transaction.occurred_at)
    stmt = (select(loaders._customer(), day)
            .select_from(loaders.Transaction)
            .where(*loaders._where(session, settings, loaders.Period(end=holdout_end + dt.timedelta(days=1),
                                                                     start=calibration_end + dt.timedelta(days=1)),
                                   purchases_only=True))
            .group_by(loaders._customer(), day))
    m = loaders._fetch_array(session, stmt, 2)
    weeks = -(-(holdout_end - calibration_end).days // 7)
    if m.size == 0:
        return np.zeros(weeks)
    pos, found = loaders._align(ids, m[:, 0])
    keep = found & mask[pos]
    week = ((m[keep, 1] - loaders.day_of(calibration_end) - 1) // 7).astype(np.int64)
    return np.bincount(week, minlength=weeks)[:weeks].astype(np.float64)


def _metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, Any]:
    err = predicted - actual
    corr = (float(np.corrcoef(predicted, actual)[0, 1])
            if actual.size > 1 and actual.std() > 0 and predicted.std() > 0 else None)
    return {"customers": int(actual.size), "predicted": float(predicted.sum()), "actual": float(actual.sum()),
            "error_pct": float(100.0 * err.sum() / actual.sum()) if actual.sum() > 0 else None,
            "mae": float(np.abs(err).mean()) if err.size else None,
            "rmse": float(np.sqrt((err ** 2).mean())) if err.size else None, "correlation": corr}


def validate_models(uow: UnitOfWork, calibration_end: dt.date, holdout_end: dt.date,
                    settings: ValueSettings | None = None, model: str | None = None,
                    plot: Path | None = None) -> dict[str, Any]:
    """Fit on the calibration period, predict repeat purchases in (calibration end, holdout end], compare.

    ``model`` is one model name or ``"all"``: each is compared on the holdout in total,
    per customer (MAE, RMSE), per number of calibration repeats and week by week (cumulative
    tracking); the best is the one with the lowest per-customer RMSE. Optionally a PNG.
    """
    require_base_report(uow)
    settings = settings_for(uow) if settings is None else settings
    names = _models(model, settings, allow_all=True)
    if holdout_end <= calibration_end:
        raise InvalidInput(f"invalid input: holdout end {holdout_end} must be after the calibration end {calibration_end}",
                           [("holdout_end", "not after calibration_end")])
    if plot is not None:
        plots.check_path(plot)
    settings, warnings, ids, hist, rft = _calibration(uow, settings, calibration_end, holdout_end)
    horizon = (holdout_end - calibration_end).days / settings.unit_days
    actual = hist.holdout_days[rft.mask].astype(np.float64)
    fits: dict[str, dict[str, Any]] = {}
    predicted: dict[str, np.ndarray] = {}
    for name in names:
        try:
            fit = fit_rft(rft, strict=True, model=name)
        except InvalidInput as e:
            if len(names) == 1:
                raise
            fits[name] = {"error": str(e), "status": "failed"}
            continue
        assert fit.purchase is not None
        predicted[name] = purchase_models.expected_purchases(fit.purchase, rft.frequency, rft.recency, rft.T, horizon)
        fits[name] = {**_with_money(fit.as_dict(settings.time_unit)), "total": _metrics(predicted[name], actual)}
    if not predicted:
        raise InvalidInput("cannot fit any model on this data: " + "; ".join(f"{k}: {v['error']}" for k, v in fits.items()))
    best, best_reason = _best_model(fits, predicted)
    shown = best or next(iter(predicted))
    buckets = np.minimum(rft.frequency, 7).astype(int)
    by_freq = []
    for b in np.unique(buckets).tolist():
        m = buckets == b
        by_freq.append({"frequency": f"{b}+" if b == 7 else str(b), "customers": int(m.sum()),
                        "actual_mean": float(actual[m].mean()), "predicted_mean": float(predicted[shown][m].mean()),
                        "predicted_means": {k: float(v[m].mean()) for k, v in predicted.items()}})
    weekly = _holdout_weeks(uow, settings, ids, rft.mask, calibration_end, holdout_end)
    days = (holdout_end - calibration_end).days
    ends = np.minimum(7.0 * np.arange(1, weekly.size + 1), days) / settings.unit_days
    tracking = {"actual": np.cumsum(weekly).tolist(), "predicted": {
        k: [float(purchase_models.expected_purchases(fits_p, rft.frequency, rft.recency, rft.T, t).sum()) for t in ends]
        for k, fits_p in ((k, purchase_models.make_params(k, fits[k]["purchase"])) for k in predicted)}}
    order = np.argsort(-predicted[shown], kind="stable")
    cids = ids[rft.mask]
    customers = [
        {"customer_id": int(cids[i]), "frequency": int(rft.frequency[i]), "recency": float(rft.recency[i]),
         "T": float(rft.T[i]), "predicted": float(predicted[shown][i]), "actual": int(actual[i]),
         "predictions": {k: float(v[i]) for k, v in predicted.items()}}
        for i in order.tolist()
    ]
    out = {
        "calibration_end": calibration_end.isoformat(), "holdout_end": holdout_end.isoformat(),
        "currency": settings.currency, "time_unit": settings.time_unit, "holdout_length": horizon,
        "models": fits, "best": best, "best_reason": best_reason, "listed_model": shown,
        "model": fits[best]["purchase"] if best else None, "total": fits[shown]["total"],
        "by_frequency": by_freq, "tracking": tracking, "customers": customers, "warnings": warnings, "plot": None,
    }
    if plot is not None:
        out["plot"] = str(plots.plot_validation(out, plot))
    return out


def _with_money(fit: dict[str, Any]) -> dict[str, Any]:
    """Gamma-Gamma's mean spend is money: a Decimal (a decimal string in JSON)."""
    gg = fit.get("gamma_gamma")
    if gg:
        fit["gamma_gamma"] = {**gg, "mean_spend": money(gg.get("mean_spend"))}
    return fit


def _best_model(fits: dict[str, dict[str, Any]], predicted: dict[str, np.ndarray]) -> tuple[str | None, str]:
    """The best converged model on the holdout and why; None when no converged fit is left or the
    leaders are indistinguishable (same log-likelihood and the same predictions)."""
    ok = [k for k in predicted if fits[k]["purchase"]["converged"]]
    failed = [k for k in predicted if k not in ok]
    note = "" if not failed else f" ({', '.join(failed)}: failed fit, not eligible)"
    if not ok:
        return None, "no best model: every fit failed" + note
    ranked = sorted(ok, key=lambda k: (fits[k]["total"]["rmse"], abs(fits[k]["total"]["error_pct"] or 0.0)))
    if len(ranked) > 1:
        a, b = ranked[0], ranked[1]
        scale = 1.0 + float(np.mean(np.abs(predicted[a])))
        same_pred = float(np.max(np.abs(predicted[a] - predicted[b]))) <= 1e-3 * scale
        if same_pred and same_fit(fits[a]["purchase"]["log_likelihood"], fits[b]["purchase"]["log_likelihood"]):
            tied = [k for k in ranked if same_fit(fits[k]["purchase"]["log_likelihood"], fits[a]["purchase"]["log_likelihood"])]
            return None, (f"no best model: {', '.join(tied)} cannot be told apart on this data (the same "
                          f"log-likelihood and the same predictions)" + note)
    return ranked[0], "lowest per-customer RMSE on the holdout" + note


__all__ = ["fit_models", "require_base_report", "validate_models"]
