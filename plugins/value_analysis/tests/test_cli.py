"""`crm value …`: every report in text and JSON, and one-line errors for bad input."""
from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from crm_value_analysis.testing import Base, d

from crmcore import CRM

READS = ["rfm", "pyramid", "pareto", "dependency", "churn", "loyalty", "clv", "runs"]


def assert_error(res: Any, message: str, code: int = 1) -> None:
    assert res.exit_code == code, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], res.stderr
    assert "Traceback" not in res.output


@pytest.fixture
def analysed(vcrm: CRM, base: Base, vcli: Callable[..., Any]) -> dict[str, int]:
    """A small base with a key account, two runs (so tier moves exist)."""
    ids = {"big": base.customer("Big Co", external_ref="BIG")}
    base.buys(ids["big"], [10, 40, 70], "2000", category="a")
    for i in range(12):
        ids[f"c{i}"] = c = base.customer(f"Customer {i}")
        base.buys(c, [5 + i, 50 + 2 * i], 100 + 10 * i, category="ab"[i % 2])
    assert vcli("value", "run", "--as-of", d(60).isoformat()).exit_code == 0
    base.buy(ids["c0"], 80, "5000")
    res = vcli("value", "run", "--as-of", d(90).isoformat())
    assert res.exit_code == 0, res.output
    return ids


def test_run_prints_a_summary(analysed: dict[str, int], vcli: Callable[..., Any]) -> None:
    res = vcli("value", "run", "--as-of", d(90).isoformat(), "--json")
    out = json.loads(res.stdout)
    assert out["run"]["n_customers"] == 13 and out["summary"]["as_of"] == d(90).isoformat()
    assert "curve" not in out["summary"]["pareto"]
    text = vcli("value", "run", "--as-of", d(90).isoformat())
    assert "13 customers" in text.stdout and "tiers:" in text.stdout and "since " in text.stdout
    profit = Decimal(out["summary"]["profit"]["total_profit"])
    assert f"; profit {profit:,.2f} (" in text.stdout  # formatted as the revenue is, with separators
    assert "Gamma-Gamma not fitted" in text.stderr  # 13 buyers < min_fit_customers: a warning, not an error


@pytest.mark.parametrize("command", READS)
def test_every_read_command_has_text_and_json(analysed: dict[str, int], vcli: Callable[..., Any], command: str) -> None:
    text = vcli("value", command)
    assert text.exit_code == 0, text.output
    assert text.stdout.strip()
    res = vcli("value", command, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data


def test_reports_show_the_analyses(analysed: dict[str, int], vcli: Callable[..., Any]) -> None:
    def get(*args: str) -> Any:
        return json.loads(vcli("value", *args, "--json").stdout)

    rfm = get("rfm")
    assert sum(s["customers"] for s in rfm["segments"]) == 13
    pyramid = get("pyramid")
    assert pyramid["tiers"][0]["name"] == "key"  # 13 buyers: no vip seat (1% rounds to 0), one key seat
    assert sum(t["customers"] for t in pyramid["tiers"]) == 13
    assert pyramid["moves"]["previous_as_of"] == d(60).isoformat()
    assert any(u["customer_id"] == analysed["c0"] for u in pyramid["upgrades"])
    dep = get("dependency")
    levels = {f["customer_id"]: f["level"] for f in dep["flagged"]}
    assert levels[analysed["c0"]] in ("critical", "key") and levels[analysed["big"]] in ("critical", "key")
    assert dep["level"] == "critical"
    pareto = get("pareto")
    assert 0 < pareto["gini"] < 1 and pareto["top_shares"]["20%"] > 0.5
    clv = get("clv", "--by", "deterministic", "--limit", "3")
    assert len(clv["top"]) == 3 and clv["top"][0]["clv_deterministic"] >= clv["top"][1]["clv_deterministic"]
    loyalty = get("loyalty", "--limit", "5")
    assert loyalty["customers_with_index"] == 13 and len(loyalty["top"]) == 5
    assert sum(loyalty["histogram"].values()) == 13
    runs = get("runs")
    assert [r["as_of"] for r in runs] == [d(90).isoformat(), d(60).isoformat()]


def test_pareto_plot(analysed: dict[str, int], vcli: Callable[..., Any], tmp_path: Path) -> None:
    png = tmp_path / "pareto.png"
    res = vcli("value", "pareto", "--plot", str(png))
    assert res.exit_code == 0 and f"plot written to {png}" in res.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert_error(vcli("value", "pareto", "--plot", str(tmp_path / "missing" / "p.png")), "cannot write the plot")


def test_show_by_id_and_reference(analysed: dict[str, int], vcli: Callable[..., Any]) -> None:
    by_ref = json.loads(vcli("value", "show", "BIG", "--json").stdout)
    by_id = json.loads(vcli("value", "show", str(analysed["big"]), "--json").stdout)
    assert by_ref == by_id
    assert by_ref["values"]["tier"] and by_ref["values"]["segment"]
    assert [h["as_of"] for h in by_ref["history"]] == [d(60).isoformat(), d(90).isoformat()]
    text = vcli("value", "show", "BIG")
    assert "Big Co" in text.stdout and "Loyalty index parts" in text.stdout and "History" in text.stdout


def test_customer_360_view_gains_a_section(analysed: dict[str, int], vcli: Callable[..., Any]) -> None:
    res = vcli("customer", "show", "BIG", "--json")
    section = json.loads(res.stdout)["sections"]["Customer value"]
    assert section["as_of"] == d(90).isoformat()
    assert {"tier", "rfm_segment", "rfm_scores", "clv_probabilistic", "probability_alive", "loyalty_index"} <= set(section)
    assert "Customer value" in vcli("customer", "show", "BIG").stdout


@pytest.mark.parametrize("command", [*READS[:-1], "show 1"])
def test_no_run_yet(vcrm: CRM, base: Base, vcli: Callable[..., Any], command: str) -> None:
    base.customer("A")
    assert_error(vcli("value", *command.split()), "no value analysis run yet")


def test_runs_lists_nothing_before_the_first_run(vcrm: CRM, vcli: Callable[..., Any]) -> None:
    assert json.loads(vcli("value", "runs", "--json").stdout) == []


@pytest.mark.parametrize("args, message", [
    (("run", "--discount-rate", "-0.1"), "discount_rate"),
    (("run", "--margin", "1.5"), "margin"),
    (("run", "--time-unit", "fortnights"), "time_unit"),
    (("run", "--horizon-months", "soon"), "horizon_months"),
    (("run", "--as-of", "31/12/2024"), "is not a date"),
    (("run", "--as-of", "2000-01-01"), "no purchases on or before 2000-01-01"),
    (("show", "999999"), "customer 999999 not found"),
    (("show", "NO-SUCH-REF"), "not found"),
    (("clv", "--by", "gut-feeling"), "by"),
    (("churn", "--limit", "many"), "not a whole number"),
    # edge values: one clear line, never an overflow traceback (exit 3)
    (("run", "--as-of", "9999-12-31"), "outside 1900-01-01..2999-12-31"),
    (("run", "--as-of", "0001-01-01"), "outside 1900-01-01..2999-12-31"),
    (("run", "--discount-rate", "1e308"), "discount_rate"),
    (("run", "--discount-rate", "inf"), "discount_rate"),
    (("run", "--discount-rate", "nan"), "discount_rate"),
    (("run", "--horizon-months", "1000000000"), "horizon_months"),
    (("run", "--window-days", "100000000000000000000"), "window_days"),
    (("run", "--window-days", "0"), "window_days"),
    (("run", "--acquisition-cost", "1e308"), "acquisition_cost"),
    (("run", "--churn-threshold", "2"), "churn_threshold"),
    (("run", "--model", "bgnbd"), "model"),
    (("run", "--currency", "euro"), "currency"),
    (("pyramid", "--plot", "/no/such/folder/p.png"), "folder /no/such/folder does not exist"),
    (("clv", "--plot", "/no/such/folder/c.png"), "folder /no/such/folder does not exist"),
    (("pareto", "--plot", "/no/such/folder/c.png"), "cannot write the plot"),
])
def test_bad_input_is_one_line(analysed: dict[str, int], vcli: Callable[..., Any], args: tuple[str, ...],
                               message: str) -> None:
    assert_error(vcli("value", *args), message)


def test_failed_run_from_the_cli_writes_nothing(analysed: dict[str, int], vcli: Callable[..., Any]) -> None:
    before = vcli("value", "runs", "--json").stdout
    assert_error(vcli("value", "run", "--as-of", "2000-01-01"), "no purchases")
    assert vcli("value", "runs", "--json").stdout == before


def test_bad_crm_toml_is_a_config_error(analysed: dict[str, int], vcli: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / "crm.toml").write_text('[value_analysis]\ndiscount_rate = -0.05\n')
    assert_error(vcli("value", "run"), "crm.toml [value_analysis]: discount_rate", code=2)
    (tmp_path / "crm.toml").write_text('[value_analysis]\npyramid = { vip = 0.5, rest = 0.4 }\n')
    assert_error(vcli("value", "run"), "tier fractions must sum to 1", code=2)


def test_crm_toml_settings_apply_and_options_override(analysed: dict[str, int], vcli: Callable[..., Any],
                                                      tmp_path: Path) -> None:
    (tmp_path / "crm.toml").write_text('[value_analysis]\nmargin = 0.5\nhorizon_months = 12\n')
    assert vcli("value", "run", "--as-of", d(90).isoformat(), "--horizon-months", "6").exit_code == 0
    s = json.loads(vcli("value", "clv", "--json").stdout)["settings"]
    assert (s["margin"], s["horizon_months"]) == (0.5, 6)


PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("command", [("pyramid",), ("clv", "--by", "deterministic")])
def test_plots_are_png_files(analysed: dict[str, int], vcli: Callable[..., Any], tmp_path: Path,
                             command: tuple[str, ...]) -> None:
    target = tmp_path / "plot.png"
    res = vcli("value", *command, "--plot", str(target))
    assert res.exit_code == 0, res.output
    assert f"plot written to {target}" in res.stdout
    data = target.read_bytes()
    assert data.startswith(PNG) and len(data) > 2000
    again = vcli("value", *command, "--plot", str(target), "--json")  # overwritten, JSON names the file
    assert again.exit_code == 0 and json.loads(again.stdout)["plot"] == str(target)


def test_plot_to_a_folder_is_refused(analysed: dict[str, int], vcli: Callable[..., Any], tmp_path: Path) -> None:
    assert_error(vcli("value", "pyramid", "--plot", str(tmp_path)), "is a folder")
    # too few buyers for the models: no probabilistic CLV, so the report (and its plot) falls back to the
    # deterministic CLV and says so, instead of printing "(none)"
    res = vcli("value", "clv", "--plot", str(tmp_path / "c.png"))
    assert res.exit_code == 0 and "no probabilistic CLV in this run" in res.stdout, res.output
    assert (tmp_path / "c.png").exists() and "Top customers by deterministic CLV" in res.stdout
