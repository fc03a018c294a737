"""Model choice through the CLI: fit each model on data simulated from it, validate them all on a
holdout, run with a chosen model; currencies are never added together; concurrent runs."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import crm_value_analysis.plugin as PLUGIN
import pytest
from crm_value_analysis.models import CustomerValue, ValueRun
from crm_value_analysis.testing import Base, bulk_load, d, simulate_purchase_log
from sqlalchemy import func, select

from crmcore import CRM

SPEND = {"p": 6.25, "q": 3.74, "v": 15.44}
TRUE = {
    "mbg_nbd": {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43},
    "pareto_nbd": {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67},
}
CAL_END = 78 * 7
HOLD_END = CAL_END + 39 * 7
PNG = b"\x89PNG\r\n\x1a\n"


def simulated(crm: CRM, model: str, n: int = 4000, seed: int = 3) -> None:
    ci, days, amounts = simulate_purchase_log(n, **TRUE[model], **SPEND, end_day=HOLD_END, seed=seed, model=model)
    bulk_load(crm, ci, days, amounts, n)


def one_line_error(res: Any, message: str, code: int = 1) -> None:
    assert res.exit_code == code, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], res.stderr


@pytest.mark.parametrize("model", ["mbg_nbd", "pareto_nbd"])
def test_fit_recovers_each_model_through_the_cli(vcrm: CRM, vcli: Callable[..., Any], model: str) -> None:
    simulated(vcrm, model)
    res = vcli("value", "fit", "--model", model, "--calibration-end", d(CAL_END).isoformat(), "--time-unit", "weeks", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["model"] == model and out["purchase"]["converged"] and out["customers"] == 4000
    assert set(out["purchase"]) >= {*TRUE[model], "log_likelihood"} and set(out["gamma_gamma"]) >= {"p", "q", "gamma"}
    for k, true in TRUE[model].items():
        assert out["purchase"][k] == pytest.approx(true, rel=0.35), (k, out["purchase"])
    text = vcli("value", "fit", "--model", model, "--calibration-end", d(CAL_END).isoformat())
    assert text.exit_code == 0 and ("Pareto/NBD" if model == "pareto_nbd" else "MBG/NBD") in text.stdout


def test_validate_all_models_names_the_best_and_plots(vcrm: CRM, vcli: Callable[..., Any], tmp_path: Path) -> None:
    simulated(vcrm, "pareto_nbd")
    target = tmp_path / "validate.png"
    res = vcli("value", "validate", "--model", "all", "--calibration-end", d(CAL_END).isoformat(),
               "--holdout-end", d(HOLD_END).isoformat(), "--time-unit", "weeks", "--plot", str(target), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out["models"]) == {"bg_nbd", "mbg_nbd", "pareto_nbd"} and out["best"] in out["models"]
    best_rmse = out["models"][out["best"]]["total"]["rmse"]
    assert all(best_rmse <= m["total"]["rmse"] for m in out["models"].values())
    for m in out["models"].values():
        assert abs(m["total"]["error_pct"]) < 15 and m["total"]["mae"] > 0 and m["purchase"]["converged"]
    # the cumulative tracking ends on the totals; the actual series never decreases
    tracking = out["tracking"]
    assert len(tracking["actual"]) == 39 and tracking["actual"][-1] == out["total"]["actual"]
    assert all(a <= b for a, b in zip(tracking["actual"], tracking["actual"][1:]))
    for name, series in tracking["predicted"].items():
        assert series[-1] == pytest.approx(out["models"][name]["total"]["predicted"], rel=1e-9)
    rows = {b["frequency"]: b for b in out["by_frequency"]}
    assert rows["0"]["actual_mean"] < rows["7+"]["actual_mean"] and set(rows["0"]["predicted_means"]) == set(out["models"])
    assert target.read_bytes().startswith(PNG) and target.stat().st_size > 5000
    text = vcli("value", "validate", "--model", "all", "--calibration-end", d(CAL_END).isoformat(),
                "--holdout-end", d(HOLD_END).isoformat(), "--time-unit", "weeks", "--top", "2")
    assert text.exit_code == 0 and f"best model on this holdout: {out['best']}" in text.stdout


def test_run_uses_the_model_setting(make_crm: Callable[..., CRM]) -> None:
    crm = make_crm(plugins=[PLUGIN], config={"value_analysis": {"model": "mbg_nbd", "time_unit": "weeks"}})
    simulated(crm, "mbg_nbd", n=1500)
    from crm_value_analysis import services

    with crm.unit_of_work("analyst") as uow:
        out = services.run_analysis(uow, as_of=d(CAL_END))
    models = out.summary["models"]
    assert models["model"] == "mbg_nbd" and models["purchase"]["converged"] and "b" in models["purchase"]
    with crm.unit_of_work() as uow:
        one_timers = uow.session.scalars(select(CustomerValue.p_alive).where(CustomerValue.purchase_days == 1)).all()
    assert one_timers and max(one_timers) < 1.0  # MBG/NBD: one-time buyers may be gone


def test_run_with_pareto_from_the_cli(vcrm: CRM, vcli: Callable[..., Any], tmp_path: Path) -> None:
    simulated(vcrm, "pareto_nbd", n=1500)
    res = vcli("value", "run", "--as-of", d(CAL_END).isoformat(), "--model", "pareto_nbd", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["summary"]["models"]["purchase"]["s"] > 0
    target = tmp_path / "clv.png"
    assert vcli("value", "clv", "--plot", str(target)).exit_code == 0 and target.read_bytes().startswith(PNG)


@pytest.mark.parametrize("args, message", [
    (("fit", "--model", "gamma", "--calibration-end", "2023-06-01"), "unknown model 'gamma'"),
    (("validate", "--model", "nbd", "--calibration-end", "2023-06-01", "--holdout-end", "2023-09-01"), "unknown model 'nbd'"),
    (("fit", "--model", "all", "--calibration-end", "2023-06-01"), "unknown model 'all'"),
    (("validate", "--model", "all", "--calibration-end", "2023-06-01", "--holdout-end", "2023-05-01"),
     "must be after the calibration end"),
    (("validate", "--model", "all", "--calibration-end", "2000-01-01", "--holdout-end", "2023-05-01"),
     "leaves no calibration period"),
    (("fit", "--model", "pareto_nbd", "--calibration-end", "2000-01-01"), "leaves no calibration period"),
    # the calibration ends on the first purchase date: every customer has T = 0
    (("fit", "--model", "mbg_nbd", "--calibration-end", d(0).isoformat()), "leaves no calibration period"),
    (("validate", "--calibration-end", "2023-06-01", "--holdout-end", "2023-09-01", "--plot", "/nope/v.png"),
     "folder /nope does not exist"),
])
def test_bad_model_input(vcrm: CRM, base: Base, vcli: Callable[..., Any], args: tuple[str, ...], message: str) -> None:
    c = base.customer("A")
    base.buys(c, [0, 100, 300], "10")
    one_line_error(vcli("value", *args), message)


def test_one_purchase_only_cannot_be_fitted(vcrm: CRM, base: Base, vcli: Callable[..., Any]) -> None:
    for i in range(5):
        base.buy(base.customer(f"C{i}"), i, "10")
    for model in ("mbg_nbd", "pareto_nbd"):
        one_line_error(vcli("value", "fit", "--model", model, "--calibration-end", d(3).isoformat()), "no repeat purchases")


def test_all_customers_identical_run(vcrm: CRM, base: Base) -> None:
    from crm_value_analysis import services

    for i in range(25):
        base.buys(base.customer(f"Same {i}"), [10, 40, 70], "100")
    for model in ("bg_nbd", "mbg_nbd", "pareto_nbd"):
        with vcrm.unit_of_work("analyst") as uow:
            out = services.run_analysis(uow, as_of=d(100), settings=services.settings_for(uow, {"model": model}))
        assert out.run.n_purchasers == 25  # fitted or left out with a warning, never a crash or NaN in the table
        with vcrm.unit_of_work() as uow:
            values = uow.session.scalars(select(CustomerValue.p_alive)).all()
        assert all(v is None or 0.0 <= v <= 1.0 for v in values)


# -- currencies ------------------------------------------------------------------------------------

def test_currencies_are_never_added(vcrm: CRM, base: Base, vcli: Callable[..., Any]) -> None:
    euros = [base.customer(f"EUR {i}") for i in range(3)]
    for c in euros:
        base.buy(c, 5, "100")
    dollar = base.customer("USD buyer")
    with vcrm.unit_of_work() as uow:
        from crmcore.schemas import AccountCreate
        uow.accounts.open(dollar, AccountCreate(currency="USD", is_default=True))
    base.buy(dollar, 5, "1000000")
    res = vcli("value", "run", "--as-of", d(10).isoformat(), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["run"]["total_revenue"] == "300.00" and out["summary"]["currency"] == "EUR"
    assert any("several currencies" in w and "USD" in w for w in out["summary"]["warnings"])
    text = vcli("value", "run", "--as-of", d(10).isoformat())
    assert "warning: accounts are kept in several currencies; analysed EUR only" in text.stderr
    usd = json.loads(vcli("value", "run", "--as-of", d(10).isoformat(), "--currency", "USD", "--json").stdout)
    assert usd["run"]["total_revenue"] == "1000000.00"
    assert not any("currencies" in w for w in usd["summary"]["warnings"])


# -- several processes at once -----------------------------------------------------------------------

def test_concurrent_runs_leave_consistent_snapshots(vcrm: CRM, base: Base, crm_url: str) -> None:
    """Four `crm value run` processes at once, two per date: each date ends with one whole snapshot."""
    vcrm.plugin_state(PLUGIN.PLUGIN_ID, True, PLUGIN.__version__)  # the `crm` processes load it by entry point
    ids = [base.customer(f"C{i}") for i in range(30)]
    for i, c in enumerate(ids):
        base.buys(c, [i, 40 + i], str(10 + i))
    code = "from crmcore.cli import main; main()"
    procs = [subprocess.Popen([sys.executable, "-c", code, "--database", crm_url, "value", "run", "--as-of",
                               d(80 + k % 2).isoformat()], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in range(4)]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (_stdout, stderr) in zip(procs, outs):
        assert p.returncode in (0, 1, 2) and "Traceback" not in stderr, stderr
        if p.returncode:
            assert len(stderr.strip().splitlines()) == 1, stderr
    assert any(p.returncode == 0 for p in procs), outs
    with vcrm.unit_of_work() as uow:
        runs = uow.session.execute(select(ValueRun.as_of, ValueRun.id, ValueRun.n_customers)).all()
        assert len({r[0] for r in runs}) == len(runs) >= 1
        for _, run_id, n in runs:
            assert uow.session.scalar(select(func.count()).where(CustomerValue.run_id == run_id)) == n == 30
