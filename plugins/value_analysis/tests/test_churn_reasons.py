"""Churn reasons through every face (service, hook, CLI, API) and observed retention on data
whose retention is known (recomputed with pandas)."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import crm_value_analysis.plugin as PLUGIN
import numpy as np
import pandas as pd
import pytest
from crm_value_analysis import churn_reasons, services
from crm_value_analysis.models import ChurnReason
from crm_value_analysis.testing import Base, bulk_load, d
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.errors import InvalidInput
from crmcore.schemas import UserCreate


def _count(crm: CRM) -> int:
    with crm.unit_of_work() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(ChurnReason)))


def test_reasons_from_the_service_the_hook_the_cli_and_the_api(vcrm: CRM, base: Base, vcli: Callable[..., Any]) -> None:
    a, b, c = base.customer("A"), base.customer("B"), base.customer("C")
    with vcrm.unit_of_work("alice") as uow:
        churn_reasons.record_loss(uow, a, "Competitive", note="went to a rival")
    with vcrm.unit_of_work("credit") as uow:  # what credit does on a write-off
        out = uow.hooks.pm.hook.value_customer_lost(uow=uow, customer_id=b, reason="malicious", note="written off",
                                                    source="credit.write_off")
        assert out["reason"] == "malicious"
    res = vcli("value", "lost", str(c), "--reason", "negligent", "--on", "2026-01-31", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["lost_on"] == "2026-01-31"
    client = TestClient(create_app(vcrm), raise_server_exceptions=False)
    with vcrm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    with vcrm.unit_of_work("root") as uow:
        h = {"Authorization": f"Bearer {TokenService(uow).create('root', 't')[1]}"}
    r = client.post(f"/value/customers/{a}/lost", json={"reason": "natural", "note": "moved away"}, headers=h)
    assert r.status_code == 201, r.text
    report = client.get("/value/churn-reasons", headers=h).json()
    assert report["by_reason"] == {
        "competitive": {"total": 1, "by_source": {"manual": 1}}, "malicious": {"total": 1, "by_source": {"credit.write_off": 1}},
        "natural": {"total": 1, "by_source": {"api": 1}}, "negligent": {"total": 1, "by_source": {"manual": 1}}}
    assert len(report["latest"]) == 4
    res = vcli("value", "reasons", user="root")
    assert res.exit_code == 0 and "credit.write_off 1" in res.output, res.output


@pytest.mark.parametrize("args", [("--reason", "bored"), ("--reason", "natural", "--note", "x" * 501),
                                  ("--reason", "natural", "--on", "yesterday")])
def test_a_bad_reason_is_one_error_line_and_nothing_written(vcrm: CRM, base: Base, vcli: Callable[..., Any],
                                                           args: tuple[str, ...]) -> None:
    c = base.customer("A")
    res = vcli("value", "lost", str(c), *args)
    assert res.exit_code in (1, 2)
    assert len([line for line in res.output.splitlines() if line.strip()]) == 1
    assert _count(vcrm) == 0


def test_the_api_refuses_bad_input_with_a_4xx(vcrm: CRM, base: Base) -> None:
    c = base.customer("A")
    client = TestClient(create_app(vcrm), raise_server_exceptions=False)
    with vcrm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    with vcrm.unit_of_work("root") as uow:
        h = {"Authorization": f"Bearer {TokenService(uow).create('root', 't')[1]}"}
    for body in ({"reason": "bored"}, {"reason": ""}, {"reason": "natural", "extra": 1}):
        assert 400 <= client.post(f"/value/customers/{c}/lost", json=body, headers=h).status_code < 500
    assert client.post("/value/customers/999999/lost", json={"reason": "natural"}, headers=h).status_code == 404
    assert client.get("/value/ranking/pyramid?by=margin", headers=h).status_code == 422
    assert _count(vcrm) == 0


def test_configured_reasons_and_merges(make_crm: Callable[..., CRM]) -> None:
    crm = make_crm(plugins=[PLUGIN], config={"value_analysis": {"churn_reasons": ["price", "Moved_Away"]}})
    b = Base(crm)
    a, z = b.customer("A"), b.customer("Z")
    with crm.unit_of_work() as uow:
        churn_reasons.record_loss(uow, a, "moved_away")
        with pytest.raises(InvalidInput, match="natural"):
            churn_reasons.record_loss(uow, a, "natural")
    with crm.unit_of_work() as uow:
        uow.customers.merge(a, z)
    with crm.unit_of_work() as uow:
        assert uow.session.scalars(select(ChurnReason.customer_id)).all() == [z]


def _retention_base(crm: CRM) -> pd.DataFrame:
    """300 customers start two years back; 60% buy in the next year, of those 50% in the latest;
    100 more start in the middle year, 30% of whom buy in the latest."""
    rng = np.random.default_rng(5)
    rows = []
    for c in range(300):
        rows.append((c, int(rng.integers(1, 360))))
        if c < 180:
            rows.append((c, int(rng.integers(366, 725))))
            if c < 90:
                rows.append((c, int(rng.integers(731, 1090))))
    for c in range(300, 400):
        rows.append((c, int(rng.integers(366, 725))))
        if c < 330:
            rows.append((c, int(rng.integers(731, 1090))))
    df = pd.DataFrame(rows, columns=["c", "day"])
    bulk_load(crm, df["c"].to_numpy(), df["day"].to_numpy(), np.full(len(df), 100.0), 400)
    return df


def test_observed_retention_per_cohort_and_in_the_clv(vcrm: CRM) -> None:
    df = _retention_base(vcrm)
    as_of = d(1094)
    df["period"] = (1094 - df["day"]) // 365
    active = df.groupby(["c", "period"]).size().reset_index()[["c", "period"]]
    active["cohort"] = active.groupby("c")["period"].transform("max")
    keys = set(zip(active["c"], active["period"]))
    active["again"] = [(c, p - 1) in keys for c, p in zip(active["c"], active["period"])]
    pairs = active[active["period"] > 0]
    expected = pairs.groupby(["cohort", "period"])["again"].agg(["size", "sum"])
    with vcrm.unit_of_work() as uow:
        out = churn_reasons.retention_report(uow, as_of=as_of)
    got = {(r["customers"], r["retained"]) for r in out["cohorts"]}
    assert got == {(int(n), int(k)) for n, k in expected.to_numpy()}
    assert out["rate"] == pytest.approx(pairs["again"].mean())
    assert out["rate"] == pytest.approx((180 + 90 + 30) / (300 + 180 + 100))
    with vcrm.unit_of_work() as uow:
        run = services.run_analysis(uow, as_of=as_of)
    latest = pairs[pairs["period"] == 1]  # the run: bought in the previous year -> the last one
    assert run.summary["clv"]["retention"] == {"rate": pytest.approx(latest["again"].mean()), "source": "observed",
                                               "customers": len(latest)}
    assert latest["again"].mean() == pytest.approx((90 + 30) / (180 + 100))
    with vcrm.unit_of_work() as uow:
        run = services.run_analysis(uow, as_of=as_of, settings=services.settings_for(uow, {"retention": 0.5}))
    assert run.summary["clv"]["retention"] == {"rate": 0.5, "source": "setting"}


def test_retention_without_history_is_assumed(vcrm: CRM, base: Base, vcli: Callable[..., Any]) -> None:
    c = base.customer("A")
    base.buys(c, [1, 30], "10")
    with vcrm.unit_of_work() as uow:
        run = services.run_analysis(uow, as_of=d(60))
    assert run.summary["clv"]["retention"] == {"rate": 0.8, "source": "assumed"}
    res = vcli("value", "retention", "--as-of", d(60).isoformat(), "--json")
    assert res.exit_code == 0 and json.loads(res.output)["rate"] is None


def test_lifecycle_patterns_over_the_snapshot_history(vcrm: CRM, base: Base, vcli: Callable[..., Any]) -> None:
    names = ("aborted", "midway", "left", "lasting", "new")
    a, b, c, e, n = (base.customer(x) for x in names)
    base.buy(a, 0)                                   # one try, then gone
    base.buys(b, [0, 30, 60])                        # formation, then gone
    base.buys(c, list(range(0, 781, 30)))            # stability, then gone
    base.buys(e, list(range(0, 1291, 30)))           # stability all along
    base.buy(n, 1280)                                # just arrived
    for day in (90, 800, 1300):
        with vcrm.unit_of_work() as uow:
            services.run_analysis(uow, as_of=d(day))
    with vcrm.unit_of_work() as uow:
        paths = {cid: [h["lifecycle"] for h in services.customer_value(uow, cid)["history"]] for cid in (a, b, c, e, n)}
    assert paths[a][0] == "exploration" and paths[a][-1] == "churned" and "formation" not in paths[a]
    assert "formation" in paths[b] and "stability" not in paths[b] and paths[b][-1] == "churned"
    assert "stability" in paths[c] and paths[c][-1] == "churned"
    assert paths[e][-1] == "stability" and paths[n][-1] == "exploration"
    res = vcli("value", "patterns", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["runs"] == 3 and out["customers"] == 5
    assert out["patterns"] == {"aborted_early": 1, "died_midway": 1, "left_early": 1, "long_lasting": 1, "ongoing": 1}
