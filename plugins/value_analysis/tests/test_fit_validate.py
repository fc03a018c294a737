"""`crm value fit` / `validate`: recover known parameters from simulated purchases written to the database."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from crm_value_analysis.testing import Base, bulk_load, d, simulate_purchase_log

from crmcore import CRM

TRUE = {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43, "p": 6.25, "q": 3.74, "v": 15.44}  # rates per week
CAL_END = 78 * 7  # 78 weeks of calibration, customers born in the first 12 weeks


@pytest.fixture
def simulated(vcrm: CRM) -> CRM:
    """5000 customers drawn from BG/NBD + Gamma-Gamma, 78 weeks of calibration and 39 of holdout."""
    ci, days, amounts = simulate_purchase_log(5000, **TRUE, end_day=CAL_END + 39 * 7, seed=0)
    bulk_load(vcrm, ci, days, amounts, 5000)
    return vcrm


def _fit(vcli: Callable[..., Any], *args: str) -> dict[str, Any]:
    res = vcli("value", "fit", "--calibration-end", d(CAL_END).isoformat(), "--json", *args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_fit_recovers_the_parameters_in_weeks(simulated: CRM, vcli: Callable[..., Any]) -> None:
    out = _fit(vcli, "--time-unit", "weeks", "--model", "bg_nbd")
    bg, gg = out["purchase"], out["gamma_gamma"]
    assert out["customers"] == 5000 and out["time_unit"] == "weeks" and out["model"] == "bg_nbd"
    assert bg["converged"] and gg["converged"]
    for k in ("r", "alpha"):
        assert bg[k] == pytest.approx(TRUE[k], rel=0.2), k
    for k in ("a", "b"):
        assert bg[k] == pytest.approx(TRUE[k], rel=0.35), k
    for k, true in (("p", TRUE["p"]), ("q", TRUE["q"]), ("gamma", TRUE["v"])):  # the note's name for v
        assert gg[k] == pytest.approx(true, rel=0.25), k
    true_mean = TRUE["p"] * TRUE["v"] / (TRUE["q"] - 1)
    assert isinstance(gg["mean_spend"], str)  # money: a decimal string
    assert float(gg["mean_spend"]) == pytest.approx(true_mean, rel=0.05)
    assert bg["log_likelihood"] < 0 and gg["log_likelihood"] < 0
    assert out["seconds"] < 5


def test_days_and_weeks_describe_the_same_process(simulated: CRM, vcli: Callable[..., Any]) -> None:
    weeks = _fit(vcli, "--time-unit", "weeks", "--model", "bg_nbd")["purchase"]
    days = _fit(vcli, "--time-unit", "days", "--model", "bg_nbd")["purchase"]
    assert days["alpha"] == pytest.approx(7 * weeks["alpha"], rel=1e-3)  # alpha carries the time unit
    for k in ("r", "a", "b"):
        assert days[k] == pytest.approx(weeks[k], rel=1e-3)


def test_fit_text_output(simulated: CRM, vcli: Callable[..., Any]) -> None:
    res = vcli("value", "fit", "--calibration-end", d(CAL_END).isoformat())
    assert res.exit_code == 0
    assert "BG/NBD" in res.stdout and "Gamma-Gamma" in res.stdout and "log_likelihood" in res.stdout


def test_validate_predicts_the_holdout(simulated: CRM, vcli: Callable[..., Any]) -> None:
    res = vcli("value", "validate", "--calibration-end", d(CAL_END).isoformat(),
               "--holdout-end", d(CAL_END + 39 * 7).isoformat(), "--time-unit", "weeks", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    total = out["total"]
    assert total["customers"] == 5000 and len(out["customers"]) == 5000
    assert total["actual"] > 1000
    assert abs(total["error_pct"]) < 10
    assert total["correlation"] > 0.5
    preds = [c["predicted"] for c in out["customers"]]
    assert preds == sorted(preds, reverse=True)
    by_freq = {b["frequency"]: b for b in out["by_frequency"]}
    assert by_freq["0"]["predicted_mean"] < by_freq["7+"]["predicted_mean"]
    assert out["holdout_length"] == pytest.approx(39.0)

    text = vcli("value", "validate", "--calibration-end", d(CAL_END).isoformat(),
                "--holdout-end", d(CAL_END + 39 * 7).isoformat(), "--top", "3")
    assert text.exit_code == 0 and "predicted" in text.stdout and "Top 3 customers" in text.stdout


@pytest.mark.parametrize("args, message", [
    (("fit", "--calibration-end", "2040-01-01"), "is after the data"),
    (("fit", "--calibration-end", "2000-01-01"), "leaves no calibration period"),
    (("fit", "--calibration-end", "2023-06-01", "--time-unit", "fortnights"), "time_unit"),
    (("fit",), "--calibration-end is required"),
    (("fit", "--calibration-end", "yesterday"), "is not a date"),
    (("validate", "--calibration-end", "2023-06-01", "--holdout-end", "2023-05-01"), "must be after the calibration end"),
    (("validate", "--calibration-end", "2023-06-01", "--holdout-end", "2023-06-01"), "must be after the calibration end"),
    (("validate", "--calibration-end", "2023-06-01"), "--holdout-end is required"),
    (("validate", "--calibration-end", "2023-06-01", "--holdout-end", "2023-09-01", "--top", "-1"), "must be >= 0"),
])
def test_bad_model_input(vcrm: CRM, base: Base, vcli: Callable[..., Any], args: tuple[str, ...], message: str) -> None:
    c = base.customer("A")
    base.buys(c, [0, 100, 300], "10")
    res = vcli("value", *args)
    assert res.exit_code == 1
    assert res.stderr.startswith("error: ") and message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.output


def test_fit_needs_repeat_purchases(vcrm: CRM, base: Base, vcli: Callable[..., Any]) -> None:
    for i in range(3):
        base.buy(base.customer(f"C{i}"), i, "10")
    res = vcli("value", "fit", "--calibration-end", d(2).isoformat())
    assert res.exit_code == 1 and "cannot fit the BG/NBD model" in res.stderr
