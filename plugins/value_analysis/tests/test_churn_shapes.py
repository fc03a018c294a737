"""Churn risk against the KNOWN truth, on three business shapes (crm_value_analysis.shapes): retail
(CDNOW-like Poisson purchases), the B2B exhibition organiser (yearly / half-yearly bookings at stable
prices, ~40 % stopped) and monthly subscriptions. The customers who really stopped must be found at
risk with recall and precision each >= 0.8 at the default settings -- once through the pure models,
once through the real `crm value run` (on the engine the suite runs on)."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from crm_value_analysis import estimates, purchase_models, shapes
from crm_value_analysis.models import CustomerValue, ValueRun
from crm_value_analysis.schemas import ValueSettings
from crm_value_analysis.testing import bulk_load, d
from sqlalchemy import select

from crmcore import CRM

#: The method each shape must end up with, and why (see crm_value_analysis.churn).
METHOD = {"retail": "model", "exhibitions": "gap_rule", "subscriptions": "gap_rule"}


def recall_precision(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    hit = int((flagged & truth).sum())
    return hit / max(int(truth.sum()), 1), hit / max(int(flagged.sum()), 1)


@pytest.mark.parametrize("shape", list(shapes.SHAPES))
def test_stopped_customers_are_found_by_the_pure_models(shape: str) -> None:
    log = shapes.SHAPES[shape]()
    assert 0.3 < log.stopped.mean() < 0.45  # the truth: about 40 % stopped (and missed a purchase since)
    est = estimates.estimate(log.history(), ValueSettings())
    recall, precision = recall_precision(est.decision.at_risk == 1, log.stopped)
    assert recall >= 0.8 and precision >= 0.8, (shape, recall, precision, est.decision.reason)
    assert est.decision.method == METHOD[shape], est.decision.reason
    summary = est.churn_summary(0.3)
    assert summary["method"] == METHOD[shape] and summary["reason"] and summary["at_risk"] == int((est.decision.at_risk == 1).sum())
    assert est.unit_choice["how"] == "chosen from the data" and "median gap" in est.unit_choice["why"]
    if METHOD[shape] == "gap_rule":  # a model the run does not trust is in no number of the run
        assert np.isnan(est.p_alive).all() and np.isnan(est.clv_probabilistic).all()
        assert any("gap rule" in w or "left out" in w for w in est.fit.warnings)
    else:
        assert est.fit.purchase is not None and est.fit.purchase.converged
        assert np.isfinite(est.clv_probabilistic[log.history().has_purchase]).all()


def test_exhibitions_fail_or_are_distrusted_with_a_reason() -> None:
    """The issue's case: the Poisson models cannot describe yearly fairs; no fit is silently 'converged'
    and used, and stable prices make Gamma-Gamma fail (spend does not vary)."""
    est = estimates.estimate(shapes.exhibitions().history(), ValueSettings())
    assert est.settings.time_unit == "months"  # a median gap of ~half a year
    assert est.fit.gamma_gamma is None
    failed = est.fit.as_dict("months")
    assert failed["gamma_gamma"]["status"] == "failed" and "spend does not vary" in failed["gamma_gamma"]["failure"]
    assert "regular intervals" in est.decision.reason and est.decision.agreement["regularity"] < 0.5


def test_gamma_gamma_failure_falls_back_to_the_customers_own_spend() -> None:
    """Retail purchases at a fixed price per customer: Gamma-Gamma cannot be fitted, the purchase model
    can; CLV = margin x own average spend x discounted expected purchases, with a warning."""
    log = shapes.retail()
    price = np.round(np.random.default_rng(4).choice([20.0, 35.0, 60.0], log.n), 2)
    fixed = shapes.ShapeLog("fixed", log.customer_idx, log.days, price[log.customer_idx], log.as_of_day, log.stopped)
    hist = fixed.history()
    settings = ValueSettings()
    est = estimates.estimate(hist, settings)
    assert est.fit.gamma_gamma is None and est.fit.purchase is not None and est.decision.use_model
    assert any("Gamma-Gamma" in w and "own average spend" in w for w in est.fit.warnings)
    buyers = hist.has_purchase
    s = est.settings
    step = 365.25 / 12 / s.unit_days
    discounted = purchase_models.discounted_purchases(
        est.fit.purchase, est.rft.frequency, est.rft.recency, est.rft.T, horizon_periods=s.horizon_months,
        discount_rate_per_period=s.monthly_discount_rate, step=step)
    own = hist.net[buyers] / hist.purchase_days[buyers]
    assert np.median(own / price[buyers]) == 1.0  # the own spend of a purchase day (two orders a day: twice)
    assert np.allclose(est.clv_probabilistic[buyers], s.margin * own * discounted)


def _load(crm: CRM, log: shapes.ShapeLog) -> np.ndarray:
    return bulk_load(crm, log.customer_idx, log.days, log.amounts, log.n)


@pytest.mark.parametrize("shape", list(shapes.SHAPES))
def test_stopped_customers_are_found_by_crm_value_run(vcrm: CRM, vcli: Callable[..., Any], shape: str) -> None:
    log = shapes.SHAPES[shape](n=800)
    ids = _load(vcrm, log)
    res = vcli("value", "run", "--as-of", d(log.as_of_day).isoformat(), "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)["summary"]
    churn = summary["churn"]
    assert churn["method"] == METHOD[shape] and churn["reason"]
    assert summary["models"]["time_unit_choice"]["how"] == "chosen from the data"
    with vcrm.unit_of_work() as uow:
        run_id = uow.session.scalar(select(ValueRun.id))
        risk = dict(uow.session.execute(select(CustomerValue.customer_id, CustomerValue.churn_risk)
                                        .where(CustomerValue.run_id == run_id)).all())
    flagged = np.array([bool(risk[int(c)]) for c in ids])
    recall, precision = recall_precision(flagged, log.stopped)
    assert recall >= 0.8 and precision >= 0.8, (shape, recall, precision, churn["reason"])
    assert churn["at_risk"] == int(flagged.sum())
    # the text report says which method decided and why
    text = vcli("value", "churn")
    assert text.exit_code == 0 and f"by {METHOD[shape]} (" in text.stdout, text.output
    clv = json.loads(vcli("value", "clv", "--json").stdout)
    assert clv["top"], clv  # never "(none)": the deterministic CLV when there is no probabilistic one
    if METHOD[shape] == "gap_rule":
        assert clv["by"] == "deterministic" and clv["note"]
