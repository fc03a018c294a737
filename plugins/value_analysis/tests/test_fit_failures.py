"""A fit on a parameter bound, or models the data cannot tell apart, is a FAILED fit with a reason --
never "converged", never "the best model"."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from crm_value_analysis import clv_models, fitting, shapes, validation
from crm_value_analysis import purchase_models as pm
from crm_value_analysis.testing import bulk_load, d

from crmcore import CRM


def test_a_parameter_on_its_bound_is_a_failed_fit() -> None:
    assert clv_models.bound_failure({"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43}, {"alpha": 52.0}) is None
    msg = clv_models.bound_failure({"r": 10.6, "alpha": 3186.0, "a": 2e-8, "b": 1.3}, {"alpha": 2000.0})
    assert msg and msg.startswith("failed fit: a = 2e-08") and "no customer ever drops out" in msg
    msg = clv_models.bound_failure({"r": 2e6, "alpha": 6e7, "a": 0.9, "b": 40.0}, {"alpha": 1000.0})
    assert msg and "regular purchases" in msg and "r = 2e+06" in msg


@pytest.mark.parametrize("name", pm.MODELS)
def test_clockwork_payments_fail_every_model(name: str) -> None:
    """Monthly subscriptions: purchase rates do not vary, the Poisson models run r to its bound."""
    hist = shapes.subscriptions(n=600).history()
    rft = fitting.rft_input(hist, 7.0)
    fit = pm.fit(name, rft.frequency, rft.recency, rft.T)
    assert not fit.converged and fit.failure and fit.failure.startswith("failed fit:"), fit


def test_no_dropout_at_all_fails_instead_of_converging() -> None:
    """Nobody ever drops out (a -> 0): the issue's 'converged: true with a = 2e-8'."""
    x, tx, T = pm.simulate("bg_nbd", 3000, 52.0, {"r": 2.0, "alpha": 10.0, "a": 1e-9, "b": 5.0}, rng=3)
    fit = clv_models.fit_bgnbd(x, tx, T)
    assert not fit.converged and "no customer ever drops out" in (fit.failure or ""), fit


def test_stable_prices_fail_gamma_gamma_with_a_reason() -> None:
    rft = fitting.rft_input(shapes.exhibitions(n=600).history(), 30.4375)
    out = fitting.fit_rft(rft, model="bg_nbd")
    assert out.gamma_gamma is None and "spend does not vary" in (out.gg_failure or "")
    gg = out.as_dict("months")["gamma_gamma"]
    assert gg["status"] == "failed" and gg["converged"] is False


def _holdout(fits: dict[str, float], preds: dict[str, np.ndarray], converged: bool = True) -> tuple[Any, str]:
    models = {k: {"purchase": {"log_likelihood": ll, "converged": converged},
                  "total": {"rmse": float(np.sqrt(np.mean(preds[k] ** 2))), "error_pct": 1.0}} for k, ll in fits.items()}
    return validation._best_model(models, preds)


def test_indistinguishable_models_have_no_best() -> None:
    same = np.full(50, 0.987)
    best, why = _holdout({"bg_nbd": -1000.0, "mbg_nbd": -1000.0, "pareto_nbd": -1000.0},
                         {"bg_nbd": same, "mbg_nbd": same.copy(), "pareto_nbd": same.copy()})
    assert best is None and "cannot be told apart" in why
    best, why = _holdout({"bg_nbd": -1000.0, "mbg_nbd": -900.0}, {"bg_nbd": same, "mbg_nbd": same * 0.5})
    assert best == "mbg_nbd" and "lowest per-customer RMSE" in why
    best, why = _holdout({"bg_nbd": -1000.0}, {"bg_nbd": same}, converged=False)
    assert best is None and "every fit failed" in why


def test_validate_all_never_names_a_failed_fit_best(vcrm: CRM, vcli: Callable[..., Any]) -> None:
    log = shapes.subscriptions(n=300)
    bulk_load(vcrm, log.customer_idx, log.days, log.amounts, log.n)
    cal, hold = d(log.as_of_day - 180).isoformat(), d(log.as_of_day).isoformat()
    res = vcli("value", "validate", "--model", "all", "--calibration-end", cal, "--holdout-end", hold, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["best"] is None and out["model"] is None and out["best_reason"].startswith("no best model")
    for m in out["models"].values():
        assert m["purchase"]["status"] == "failed" and m["purchase"]["converged"] is False and m["purchase"]["failure"]
    text = vcli("value", "validate", "--model", "all", "--calibration-end", cal, "--holdout-end", hold)
    assert text.exit_code == 0 and "no best model" in text.stdout and "best model on this holdout" not in text.stdout
    fit = vcli("value", "fit", "--model", "bg_nbd", "--calibration-end", cal, "--json")
    assert fit.exit_code == 0, fit.output
    got = json.loads(fit.stdout)
    assert got["purchase"]["status"] == "failed" and "regular purchases" in got["purchase"]["failure"]
    assert got["gamma_gamma"]["status"] == "failed"
    text = vcli("value", "fit", "--model", "bg_nbd", "--calibration-end", cal)
    assert text.exit_code == 0 and "warning: BG/NBD: failed fit:" in text.stderr
