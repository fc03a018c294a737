"""The whole loyalty index: share of wallet, referrals, price sensitivity, voluntariness.

The expected index is recomputed with pandas from the generated inputs: each factor's
percentile rank among the customers that have it (average ranks), weights renormalised over
the factors a customer has data for.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import crm_value_analysis.plugin as PLUGIN
import numpy as np
import pandas as pd
import pytest
from crm_value_analysis import services
from crm_value_analysis.models import CustomerValue
from crm_value_analysis.testing import bulk_load, d
from sqlalchemy import select, update

from crmcore import CRM, hookimpl
from crmcore.models import Customer

N = 120
AS_OF = d(729)
NEW = {"share_of_wallet": 0.4, "referrals": 0.3, "price_sensitivity": 0.2, "voluntariness": 0.1}
WEIGHTS = {"duration": 0, "frequency": 0, "frequency_trend": 0, "spend": 0, "cross_buying": 0, "satisfaction": 0, **NEW}


class Signals:
    """Stands in for sales_automation (referrals) and marketing (discounts, campaign attribution)."""

    def __init__(self, signals: Mapping[str, Mapping[int, float]]) -> None:
        self.signals = signals

    @hookimpl
    def value_loyalty_signals(self, uow: Any, customer_ids: list[int], start: dt.date | None, end: dt.date,
                              register: Callable[[str, Mapping[int, float]], None]) -> None:
        for name, values in self.signals.items():
            register(name, values)


def _pct_rank(s: pd.Series) -> pd.Series:
    s = s.dropna()
    if len(s) == 1:
        return pd.Series(0.5, index=s.index)
    return (s.rank(method="average") - 1) / (len(s) - 1)


@pytest.fixture
def loyalty_crm(make_crm: Callable[..., CRM]) -> tuple[CRM, pd.DataFrame]:
    rng = np.random.default_rng(11)
    c = np.repeat(np.arange(N), 4)
    days = rng.integers(0, 730, c.size)
    amounts = rng.uniform(50, 500, c.size).round(2)
    probe = make_crm(plugins=[PLUGIN])
    ids = bulk_load(probe, c, days, amounts, N)
    spend = pd.Series(amounts).groupby(c).sum().to_numpy()
    first = pd.Series(days).groupby(c).min().to_numpy()
    years = np.maximum(729 - first + 1.0, 365.0) / 365.0
    truth = pd.DataFrame({"id": ids, "spend_per_year": spend / years}).set_index("id")
    truth["wallet"] = np.where(np.arange(N) % 4 == 0, np.nan, rng.uniform(300, 3000, N).round(2))  # a quarter unknown
    truth["referrals"] = np.where(np.arange(N) % 3 == 0, np.nan, rng.integers(0, 6, N).astype(float))
    truth["discounted"] = np.where(np.arange(N) % 5 == 0, np.nan, rng.uniform(0, 1, N))
    truth["campaign"] = rng.uniform(0, 1, N)
    with probe.engine.begin() as conn:
        for cid, w in truth["wallet"].dropna().items():
            conn.execute(update(Customer).where(Customer.id == int(cid)).values(attributes={"wallet": float(w)}))
        conn.execute(update(Customer).where(Customer.id == int(ids[1])).values(attributes={"wallet": "unknown"}))
    truth.loc[ids[1], "wallet"] = np.nan  # not a number: no share of wallet
    signals = {"referrals": truth["referrals"].dropna().to_dict(), "discounted_share": truth["discounted"].dropna().to_dict(),
               "campaign_share": truth["campaign"].to_dict()}
    crm = make_crm(plugins=[PLUGIN, ("test_signals", Signals(signals))], config={"value_analysis": {"loyalty_weights": WEIGHTS}})
    with crm.unit_of_work() as uow:
        services.run_analysis(uow, as_of=AS_OF)
    return crm, truth


def _snapshot(crm: CRM) -> pd.DataFrame:
    cv = CustomerValue
    cols = [cv.customer_id, cv.loyalty, cv.loyalty_coverage, *(getattr(cv, f"loyalty_{k}") for k in NEW)]
    with crm.unit_of_work() as uow:
        run = services.latest_run(uow)
        rows = uow.session.execute(select(*cols).where(cv.run_id == run.id)).all()
    return pd.DataFrame(rows, columns=["id", "loyalty", "coverage", *NEW]).set_index("id")


def test_each_added_factor_is_its_percentile_rank(loyalty_crm: Any) -> None:
    crm, truth = loyalty_crm
    snap = _snapshot(crm)
    factors = {"share_of_wallet": (truth["spend_per_year"] / truth["wallet"]).clip(0, 1),
               "referrals": truth["referrals"], "price_sensitivity": -truth["discounted"],
               "voluntariness": 1 - truth["campaign"]}
    for name, raw in factors.items():
        expected = _pct_rank(raw)
        got = snap[name]
        assert got.isna().sum() == raw.isna().sum(), name
        np.testing.assert_allclose(got.loc[expected.index], expected, atol=1e-9, err_msg=name)


def test_index_renormalises_over_the_factors_a_customer_has(loyalty_crm: Any) -> None:
    crm, truth = loyalty_crm
    snap = _snapshot(crm)
    parts = pd.DataFrame({"share_of_wallet": _pct_rank((truth["spend_per_year"] / truth["wallet"]).clip(0, 1)),
                          "referrals": _pct_rank(truth["referrals"]), "price_sensitivity": _pct_rank(-truth["discounted"]),
                          "voluntariness": _pct_rank(1 - truth["campaign"])}).reindex(truth.index)
    w = pd.Series(NEW)
    have = parts.notna()
    expected = 100 * (parts.fillna(0) * w).sum(axis=1) / (have * w).sum(axis=1)
    np.testing.assert_allclose(snap.loc[truth.index, "loyalty"], expected, atol=1e-9)
    np.testing.assert_allclose(snap.loc[truth.index, "coverage"], (have * w).sum(axis=1) / w.sum(), atol=1e-9)
    with crm.unit_of_work() as uow:
        report = services.loyalty_report(uow)
    factors = report["factors"]
    assert factors["used"] == list(NEW)
    assert set(factors["left_out"]) == set(WEIGHTS) - set(NEW)
    assert all(v == "weight 0" for v in factors["left_out"].values())
    assert factors["weights"] == pytest.approx(NEW)


def test_without_any_source_the_added_factors_are_left_out_and_said(vcrm: CRM) -> None:
    rng = np.random.default_rng(2)
    c = np.repeat(np.arange(30), 3)
    bulk_load(vcrm, c, rng.integers(0, 700, c.size), rng.uniform(10, 90, c.size), 30)
    with vcrm.unit_of_work() as uow:
        out = services.run_analysis(uow, as_of=AS_OF)
        report = services.loyalty_report(uow)
    left = out.summary["loyalty"]["left_out"]
    for name in NEW:
        assert left[name] == "no data"
    assert "duration" in out.summary["loyalty"]["used"]
    eff = out.summary["loyalty"]["weights"]
    assert sum(eff.values()) == pytest.approx(1.0)
    assert report["factors"] == out.summary["loyalty"]


def test_a_bad_signal_is_refused_and_nothing_is_stored(make_crm: Callable[..., CRM]) -> None:
    probe = make_crm(plugins=[PLUGIN])
    ids = bulk_load(probe, np.array([0, 1]), np.array([1, 2]), np.array([10.0, 20.0]), 2)
    crm = make_crm(plugins=[PLUGIN, ("test_signals", Signals({"campaign_share": {int(ids[0]): 1.5}}))])
    with pytest.raises(ValueError, match="campaign_share"), crm.unit_of_work() as uow:
        services.run_analysis(uow, as_of=d(10))
    with crm.unit_of_work() as uow:
        assert services.list_runs(uow) == []
