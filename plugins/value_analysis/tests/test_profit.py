"""Value by profit: margins per category, costs to serve from other plugins, rankings by profit.

Each expectation is recomputed independently with pandas/NumPy from the generated entries
(never from the plugin's own functions), on data built so that the profit ranking and the
revenue ranking differ.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any

import crm_value_analysis.plugin as PLUGIN
import numpy as np
import pandas as pd
import pytest
from crm_value_analysis import services
from crm_value_analysis.models import CustomerValue
from crm_value_analysis.testing import Base, bulk_load, d
from sqlalchemy import select

from crmcore import CRM, hookimpl

MARGINS = {"hw": 0.10, "sw": 0.60}
DEFAULT_MARGIN = 0.30
N = 200
AS_OF = d(400)


class SupportCosts:
    """A stand-in for another plugin answering ``value_customer_costs`` (e.g. support hours)."""

    def __init__(self, costs: Mapping[int, float]) -> None:
        self.costs = dict(costs)
        self.calls: list[tuple[dt.date | None, dt.date]] = []

    @hookimpl
    def value_customer_costs(self, uow: Any, customer_ids: list[int], start: dt.date | None, end: dt.date,
                             register: Callable[[str, Mapping[int, float]], None]) -> None:
        self.calls.append((start, end))
        register("test.support", {c: v for c, v in self.costs.items() if c in set(customer_ids)})


def _entries(seed: int = 7) -> pd.DataFrame:
    """Hardware buyers bring big revenue at a thin margin, software buyers less revenue at a fat one."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(N - 10):  # the last 10 customers never buy
        kind = ("hw", "sw", None)[c % 3]
        for _ in range(int(rng.integers(1, 8))):
            scale = {"hw": 900.0, "sw": 250.0, None: 400.0}[kind]
            rows.append((c, int(rng.integers(0, 400)), round(float(rng.uniform(0.2, 1.8) * scale), 2), "invoice", kind))
        if c % 17 == 0:  # a credit note nets revenue (and margin) out
            rows.append((c, int(rng.integers(0, 400)), 50.0, "credit_note", kind))
    return pd.DataFrame(rows, columns=["c", "day", "amount", "kind", "category"])


def _load(crm: CRM, df: pd.DataFrame) -> np.ndarray:
    return bulk_load(crm, df["c"].to_numpy(), df["day"].to_numpy(), df["amount"].to_numpy(), N,
                     kinds=df["kind"].to_numpy(), categories=df["category"].tolist())


def _expected_profit(df: pd.DataFrame, ids: np.ndarray, costs: Mapping[int, float]) -> pd.Series:
    signed = np.where(df["kind"] == "invoice", df["amount"], -df["amount"])
    rate = df["category"].map(MARGINS).fillna(DEFAULT_MARGIN)
    margin = pd.Series(signed * rate).groupby(df["c"]).sum().reindex(range(N), fill_value=0.0)
    margin.index = ids
    return margin - pd.Series(costs).reindex(ids, fill_value=0.0)


def _snapshot(crm: CRM) -> pd.DataFrame:
    with crm.unit_of_work() as uow:
        run = services.latest_run(uow)
        cv = CustomerValue
        rows = uow.session.execute(select(cv.customer_id, cv.monetary, cv.profit, cv.gross_margin, cv.cost_to_serve,
                                          cv.tier, cv.frequency).where(cv.run_id == run.id)).all()
    return pd.DataFrame(rows, columns=["id", "revenue", "profit", "gross_margin", "cost", "tier", "frequency"]).set_index("id")


@pytest.fixture
def profit_crm(make_crm: Callable[..., CRM]) -> tuple[CRM, pd.DataFrame, np.ndarray, dict[int, float]]:
    df = _entries()
    probe = make_crm(plugins=[PLUGIN])
    ids = _load(probe, df)
    # support costs that make some big hardware buyers unprofitable
    costs = {int(ids[c]): 400.0 + 10.0 * c for c in range(0, N - 10, 6)}
    crm = make_crm(plugins=[PLUGIN, ("test_costs", SupportCosts(costs))],
                   config={"value_analysis": {"category_margins": MARGINS, "margin": DEFAULT_MARGIN}})
    with crm.unit_of_work() as uow:
        services.run_analysis(uow, as_of=AS_OF)
    return crm, df, ids, costs


def _tiers_by_rank(values: pd.Series, sizes: Mapping[str, int]) -> dict[str, set[int]]:
    """Tier members when customers are ranked by ``values`` and tiers take ``sizes`` in turn."""
    order = values.sort_values(ascending=False, kind="stable").index.tolist()
    out, start = {}, 0
    for name, size in sizes.items():
        out[name] = set(order[start:start + size])
        start += size
    return out


def test_profit_per_customer_equals_margin_minus_cost(profit_crm: Any) -> None:
    crm, df, ids, costs = profit_crm
    snap = _snapshot(crm)
    expected = _expected_profit(df, ids, costs)
    np.testing.assert_allclose(snap.loc[ids, "profit"].to_numpy(), expected.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(snap.loc[ids, "cost"].to_numpy(), pd.Series(costs).reindex(ids, fill_value=0.0), atol=1e-9)
    with crm.unit_of_work() as uow:
        summary = services.latest_run(uow).summary
    assert summary["value_basis"] == "profit"  # auto: costs are configured
    assert summary["profit"]["margins"] == "per_category" and summary["profit"]["cost_sources"] == ["test.support"]
    assert summary["profit"]["total_profit"] == f"{expected.sum():.2f}"
    assert summary["profit"]["unprofitable"] == int((expected < 0).sum()) > 0


def test_pyramid_by_profit_and_by_revenue_match_independent_rankings(profit_crm: Any) -> None:
    crm, df, ids, costs = profit_crm
    snap = _snapshot(crm)
    buyers = snap[snap["frequency"] > 0]
    with crm.unit_of_work() as uow:
        by_profit = services.pyramid_report(uow)
        by_revenue = services.pyramid_report(uow, by="revenue")
    assert by_profit["by"] == "profit" and by_revenue["by"] == "revenue"
    expected_profit = _expected_profit(df, ids, costs)
    revenue = pd.Series(np.where(df["kind"] == "invoice", df["amount"], -df["amount"])).groupby(df["c"]).sum()
    revenue.index = ids[revenue.index]
    for report, values in ((by_profit, expected_profit.loc[buyers.index]), (by_revenue, revenue.loc[buyers.index])):
        sizes = {t["name"]: t["customers"] for t in report["tiers"] if t["name"] != "inactive"}
        assert sum(sizes.values()) == len(buyers)
        for name, frac in {"vip": 0.01, "key": 0.04, "normal": 0.15, "small": 0.80}.items():
            assert abs(sizes[name] - frac * len(buyers)) <= 1  # 1/4/15/80 of the purchasers
        members = _tiers_by_rank(values, sizes)
        for t in report["tiers"]:
            if t["name"] in members:
                mask = snap.index.isin(list(members[t["name"]]))
                assert float(t["profit"]) == pytest.approx(round(expected_profit.loc[snap.index[mask]].sum(), 2), abs=0.011)
        if report is by_profit:  # the stored tiers are the profit ones
            for name, who in members.items():
                assert set(snap.index[snap["tier"] == name]) == who
    top = lambda r: {t["name"]: t["customers"] for t in r["tiers"]}  # noqa: E731
    assert top(by_profit) == top(by_revenue)  # same sizes ...
    vip_key = lambda v: set(v.sort_values(ascending=False).index[:10])  # noqa: E731
    assert vip_key(expected_profit.loc[buyers.index]) != vip_key(revenue.loc[buyers.index])  # ... other customers


def test_pareto_80_20_by_profit_and_revenue(profit_crm: Any) -> None:
    crm, df, ids, costs = profit_crm
    snap = _snapshot(crm)
    buyers = snap[snap["frequency"] > 0]
    with crm.unit_of_work() as uow:
        p = services.pareto_report(uow, by="profit")
        r = services.pareto_report(uow, by="revenue")
    for report, values in ((p, _expected_profit(df, ids, costs).loc[buyers.index]), (r, buyers["revenue"])):
        v = np.sort(np.clip(values.to_numpy(), 0, None))[::-1]
        top20 = v[: round(0.2 * v.size)].sum() / v.sum()
        assert report["top_shares"]["20%"] == pytest.approx(top20, abs=0.01)
        assert report["n_customers"] == len(buyers)
    assert p["top_shares"]["20%"] != pytest.approx(r["top_shares"]["20%"], abs=0.005)


def test_unprofitable_report_lists_who_costs_more_than_they_bring(profit_crm: Any) -> None:
    crm, df, ids, costs = profit_crm
    expected = _expected_profit(df, ids, costs)
    losers = expected[expected < 0].sort_values()
    with crm.unit_of_work() as uow:
        out = services.unprofitable_report(uow, limit=5)
    assert out["customers_unprofitable"] == len(losers)
    assert float(out["total_loss"]) == pytest.approx(-losers.sum(), abs=0.011)
    assert [r["customer_id"] for r in out["customers"]] == losers.index[:5].tolist()
    assert out["profit"]["cost_sources"] == ["test.support"]


def test_dependency_by_profit_flags_shares_of_profit(profit_crm: Any) -> None:
    crm, df, ids, costs = profit_crm
    expected = _expected_profit(df, ids, costs)
    with crm.unit_of_work() as uow:
        out = services.dependency_report(uow, by="profit")
        rev = services.dependency_report(uow, by="revenue")
    assert out["by"] == "profit" and rev["by"] == "revenue"
    shares = expected / expected.sum()
    assert {r["customer_id"] for r in out["flagged"]} == set(shares[shares > 0.10].index)
    for row in out["flagged"]:
        assert row["share"] == pytest.approx(shares[row["customer_id"]])


def test_without_costs_the_run_ranks_by_revenue_and_profit_is_the_margin(vcrm: CRM) -> None:
    df = _entries(seed=3)
    ids = _load(vcrm, df)
    with vcrm.unit_of_work() as uow:
        out = services.run_analysis(uow, as_of=AS_OF)
    assert out.summary["value_basis"] == "revenue" and out.summary["profit"]["cost_sources"] == []
    snap = _snapshot(vcrm)
    np.testing.assert_allclose(snap.loc[ids, "profit"], snap.loc[ids, "revenue"] * DEFAULT_MARGIN, atol=1e-6)


def test_by_option_on_the_commands(profit_crm: Any, cli: Callable[..., Any]) -> None:
    costs = profit_crm[3]
    plugins = [PLUGIN, ("test_costs", SupportCosts(costs))]
    res = cli("value", "pyramid", "--by", "revenue", "--json", plugins=plugins)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["by"] == "revenue" and isinstance(data["tiers"][0]["profit"], str)
    res = cli("value", "unprofitable", "--json", "--limit", "3", plugins=plugins)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert len(data["customers"]) == 3 and all(isinstance(r["profit"], str) and r["profit"].startswith("-")
                                               for r in data["customers"])
    res = cli("value", "pareto", "--by", "profit", plugins=plugins)
    assert res.exit_code == 0 and "share of profit" in res.output
    res = cli("value", "dependency", "--by", "profit", plugins=plugins)
    assert res.exit_code == 0 and "by profit" in res.output


@pytest.mark.parametrize("args", [("value", "pyramid", "--by", "margin"), ("value", "pareto", "--by", "x"),
                                  ("value", "dependency", "--by", "Profit"), ("value", "run", "--by", "gross")])
def test_a_bad_basis_is_one_error_line(profit_crm: Any, vcli: Callable[..., Any], args: tuple[str, ...]) -> None:
    crm = profit_crm[0]
    with crm.unit_of_work() as uow:
        before = len(services.list_runs(uow))
    res = vcli(*args)
    assert res.exit_code in (1, 2)
    assert len([line for line in res.output.splitlines() if line.strip()]) == 1 and "by" in res.output
    with crm.unit_of_work() as uow:
        assert len(services.list_runs(uow)) == before


@pytest.mark.parametrize("margins, message", [({"hw": 1.5}, "hw"), ({"sw": -0.1}, "sw")])
def test_bad_category_margins_fail_at_open(make_crm: Callable[..., CRM], margins: dict[str, float], message: str) -> None:
    with pytest.raises(Exception, match=message):
        make_crm(plugins=[PLUGIN], config={"value_analysis": {"category_margins": margins}})


def test_net_upward_migration_and_what_moved(profit_crm: Any) -> None:
    crm, ids = profit_crm[0], profit_crm[2]
    first = _snapshot(crm)
    base = Base(crm)
    for c in ids[[2, 5, 8, 11, 14]]:  # small buyers place big software orders: they move up, others down
        base.buy(int(c), 450, "20000", category="sw")
    with crm.unit_of_work() as uow:
        out = services.run_analysis(uow, as_of=AS_OF + dt.timedelta(days=200))
    second = _snapshot(crm)
    order = ["vip", "key", "normal", "small", "inactive"]
    rank_before = first["tier"].map(order.index)
    rank_after = second["tier"].map(order.index).loc[first.index]
    up, down = (rank_after < rank_before), (rank_after > rank_before)
    mig = out.summary["moves"]["migration"]
    assert mig["net_upward_rate"] == pytest.approx((up.sum() - down.sum()) / len(first))
    assert up.sum() >= 5 and down.sum() > 0
    assert mig["up"]["profit"] == f"{second.loc[up[up].index, 'profit'].sum():.2f}"
    assert mig["down"]["revenue"] == f"{second.loc[down[down].index, 'revenue'].sum():.2f}"
    assert mig["down"]["profit"] == f"{second.loc[down[down].index, 'profit'].sum():.2f}"
