"""`run_analysis`: one pass over the whole base, a dated snapshot, moves between runs, edge cases."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import crm_value_analysis.plugin as PLUGIN
import numpy as np
import pytest
from crm_value_analysis import clv_models, services
from crm_value_analysis.models import CustomerValue, ValueRun
from crm_value_analysis.schemas import ValueSettings
from crm_value_analysis.testing import Base, bulk_load, d, simulate_purchase_log
from sqlalchemy import func, select

from crmcore import CRM, ConfigError, InvalidInput
from crmcore.models import Customer


def run(crm: CRM, as_of: dt.date, **settings: Any) -> services.RunOutcome:
    with crm.unit_of_work("analyst") as uow:
        return services.run_analysis(uow, as_of=as_of, settings=ValueSettings(**settings) if settings else None)


def rows(crm: CRM, as_of: dt.date | None = None) -> dict[int, CustomerValue]:
    with crm.unit_of_work() as uow:
        run_id = uow.session.scalar(select(ValueRun.id).where(ValueRun.as_of == as_of) if as_of
                                    else select(ValueRun.id).order_by(ValueRun.as_of.desc()).limit(1))
        return {r.customer_id: r for r in uow.session.scalars(select(CustomerValue).where(CustomerValue.run_id == run_id))}


def stages(crm: CRM) -> dict[int, str]:
    with crm.unit_of_work() as uow:
        return {c.id: c.lifecycle_stage.value for c in uow.session.scalars(select(Customer))}


def counts(crm: CRM) -> tuple[int, int]:
    with crm.unit_of_work() as uow:
        return (uow.session.scalar(select(func.count()).select_from(ValueRun)),
                uow.session.scalar(select(func.count()).select_from(CustomerValue)))


# -- the edge cases of single customers ------------------------------------------------------------

def test_run_covers_every_kind_of_customer(vcrm: CRM, base: Base) -> None:
    regular = base.customer("Regular")
    base.buys(regular, range(200, 400, 20), "100", category="a")
    base.buy(regular, 380, "100", category="b")  # a second entry on a purchase day
    once = base.customer("Once")
    base.buy(once, 395, "80")
    never = base.customer("Never", lifecycle_stage="target")
    refunds = base.customer("Refunds only", lifecycle_stage="target")
    base.buy(refunds, 300, "50", kind="credit_note")
    gone = base.customer("Gone")
    base.buys(gone, [0, 10], "60")

    out = run(vcrm, d(400))
    assert out.run.n_customers == 5 and out.run.n_purchasers == 3
    assert out.run.total_revenue == pytest.approx(1100 + 80 - 50 + 120)
    r = rows(vcrm)
    assert set(r) == {regular, once, never, refunds, gone}

    assert (r[regular].frequency, r[regular].purchase_days, r[regular].categories) == (11, 10, 2)
    assert r[regular].lifecycle in ("formation", "stability") and r[regular].tier != "inactive"

    assert (r[once].frequency, r[once].purchase_days, r[once].recency_days) == (1, 1, 5)
    assert r[once].lifecycle == "exploration"

    for cid in (never, refunds):
        row = r[cid]
        assert (row.segment, row.tier, row.lifecycle) == ("no_purchases", "inactive", "prospect")
        assert (row.r_score, row.f_score, row.m_score) == (0, 0, 0)
        assert row.recency_days is None and row.clv_deterministic is None and row.loyalty is None
        assert row.p_alive is None and row.churn_risk is None
    assert r[refunds].monetary == -50.0 and r[refunds].dependency == "none" and r[refunds].revenue_share < 0

    assert r[gone].lifecycle == "churned" and r[gone].first_purchase_days == 400

    # the core's lifecycle stage follows; customers without purchases keep theirs
    assert stages(vcrm) == {regular: "active", once: "active", never: "target", refunds: "target", gone: "churned"}
    assert out.lifecycle_updated == 3


def test_single_customer(vcrm: CRM, base: Base) -> None:
    only = base.customer("Only")
    base.buys(only, [10, 50, 90], "100")
    out = run(vcrm, d(100))
    row = rows(vcrm)[only]
    assert (row.r_score, row.f_score, row.m_score) == (3, 3, 3)  # no information: the middle score
    assert row.dependency == "mono_client" and row.revenue_share == 1.0
    assert row.tier == "small"  # 1% of one customer rounds to nobody
    assert out.summary["pareto"]["gini"] == 0.0
    # one customer is below min_fit_customers (20): no purchase model, and the run says so
    assert out.summary["models"]["purchase"] is None and out.summary["models"]["gamma_gamma"] is None
    assert ("the purchase model and Gamma-Gamma not fitted: 1 customers with purchases, fewer than "
            "min_fit_customers = 20") in out.summary["warnings"]
    assert (row.p_alive, row.expected_purchases, row.clv_probabilistic) == (None, None, None)
    assert out.summary["clv"]["probabilistic_total"] is None
    # churn risk falls back to the gap rule: last purchase on day 90, usual gap 40 days, as of day 100
    assert out.summary["churn"]["method"] == "gap_rule" and out.summary["churn"]["business_gap_days"] == 40.0
    assert row.churn_risk is False
    assert row.clv_deterministic is not None and row.clv_deterministic > 0
    assert out.summary["clv"]["deterministic_total"] == f"{row.clv_deterministic:.2f}"


def test_all_customers_equal(vcrm: CRM, base: Base) -> None:
    ids = [base.customer(f"Same {i}") for i in range(5)]
    for c in ids:
        base.buys(c, [10, 40], "100")
    out = run(vcrm, d(60))
    r = rows(vcrm)
    assert {(x.r_score, x.f_score, x.m_score, x.segment) for x in r.values()} == {(3, 3, 3, "loyal")}
    # 5 customers leave no seat in vip/key (1% and 4% of 5 round to 0); ties are never split
    assert {x.tier for x in r.values()} == {"normal"}
    assert {x.dependency for x in r.values()} == {"key"}  # 20% each: above 10%, not above 20%
    assert {round(x.loyalty, 9) for x in r.values()} == {50.0}
    assert out.summary["pareto"]["gini"] == pytest.approx(0.0)
    assert out.summary["pareto"]["top_shares"]["20%"] == pytest.approx(0.2)


def test_dependency_levels(vcrm: CRM, base: Base) -> None:
    shares = {"Mono": 600, "Critical": 250, "Key": 120, "Small": 30}
    ids = {}
    for name, amount in shares.items():
        ids[name] = base.customer(name)
        base.buy(ids[name], 5, amount)
    run(vcrm, d(10))
    r = rows(vcrm)
    assert {n: r[c].dependency for n, c in ids.items()} == {
        "Mono": "mono_client", "Critical": "critical", "Key": "key", "Small": "none"}
    assert r[ids["Key"]].revenue_share == pytest.approx(0.12)


def test_rfm_scores_and_segments(vcrm: CRM, base: Base) -> None:
    ids = []
    for i in range(10):  # customer i: recency 10*(10-i) days, i+1 purchases of 10*(i+1)
        c = base.customer(f"C{i}")
        ids.append(c)
        last = 200 - 10 * (10 - i)
        base.buys(c, [last - 3 * k for k in range(i + 1)], 10 * (i + 1))
    run(vcrm, d(200))
    r = rows(vcrm)
    assert [r[c].r_score for c in ids] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [r[c].f_score for c in ids] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [r[c].segment for c in ids][:2] == ["lost", "lost"]
    assert [r[c].segment for c in ids][-2:] == ["champions", "champions"]
    assert r[ids[0]].recency_days == 100


def test_window_limits_rfm_but_not_lifecycle(vcrm: CRM, base: Base) -> None:
    old = base.customer("Old")
    base.buys(old, [0, 30], "500")
    new = base.customer("New")
    base.buys(new, [350, 360], "100")
    run(vcrm, d(365), window_days=90)
    r = rows(vcrm)
    assert (r[old].frequency, r[old].tier, r[old].segment) == (0, "inactive", "no_purchases")
    assert r[old].purchase_days == 2 and r[old].lifecycle == "decline"  # history still counts
    with vcrm.unit_of_work() as uow:
        assert "fewer than min_fit_customers" in services.latest_run(uow).summary["warnings"][0]
    assert r[new].monetary == 200.0


def test_custom_segments_pyramid_and_loyalty_weights_from_config(make_crm: Callable[..., CRM]) -> None:
    config = {"value_analysis": {
        "pyramid": {"top": 0.5, "rest": 0.5},
        "segments": [{"name": "everyone", "r": [1, 5], "fm": [1, 5]}],
        "loyalty_weights": {"satisfaction": 0, "cross_buying": 0},
    }}
    crm = make_crm(plugins=[PLUGIN], config=config)
    b = Base(crm)
    ids = [b.customer(f"C{i}") for i in range(4)]
    for i, c in enumerate(ids):
        b.buy(c, 5, 100 * (i + 1))
    out = run(crm, d(10))
    r = rows(crm)
    assert [r[c].tier for c in ids] == ["rest", "rest", "top", "top"]
    assert {x.segment for x in r.values()} == {"everyone"}
    assert out.summary["tiers"] == {"top": 2, "rest": 2, "inactive": 0}
    with crm.unit_of_work() as uow:
        assert services.latest_run(uow).settings["loyalty_weights"]["satisfaction"] == 0


def test_bad_config_is_a_config_error(make_crm: Callable[..., CRM]) -> None:
    # the core validates registered settings when the CRM opens, before any run can start
    with pytest.raises(ConfigError, match="discount_rate"):
        make_crm(plugins=[PLUGIN], config={"value_analysis": {"discount_rate": -0.1}})


# -- snapshots over time -------------------------------------------------------------------------------

def _pyramid_base(base: Base) -> list[int]:
    ids = [base.customer(f"C{i}") for i in range(100)]
    for i, c in enumerate(ids):
        base.buy(c, 10, 10 + i)  # C99 is the VIP of the first run
    return ids


def test_tier_moves_between_runs(vcrm: CRM, base: Base) -> None:
    ids = _pyramid_base(base)
    first = run(vcrm, d(20))
    assert first.summary["moves"] is None
    assert first.summary["tiers"] == {"vip": 1, "key": 4, "normal": 15, "small": 80, "inactive": 0}
    base.buy(ids[0], 30, "1000")  # C0 jumps to the top
    late = base.customer("Late")
    base.buy(late, 30, "5")
    second = run(vcrm, d(40))
    moves = second.summary["moves"]
    assert moves["previous_as_of"] == d(20).isoformat()
    assert (moves["up"], moves["new"], moves["gone"]) == (1, 1, 0)
    assert moves["down"] == 3  # C99 loses the VIP seat, the last key and the last normal customer move down
    r = rows(vcrm)
    assert (r[ids[0]].previous_tier, r[ids[0]].tier) == ("small", "vip")
    assert (r[ids[99]].previous_tier, r[ids[99]].tier) == ("vip", "key")
    assert r[late].previous_tier is None and r[ids[5]].previous_tier == r[ids[5]].tier == "small"
    assert moves["transitions"]["small"]["vip"] == 1


def test_rerun_of_the_same_date_replaces_the_snapshot(vcrm: CRM, base: Base) -> None:
    c = base.customer("A")
    base.buy(c, 5, "100")
    first = run(vcrm, d(10))
    base.buy(c, 6, "100")
    second = run(vcrm, d(10))
    assert counts(vcrm) == (1, 1)
    assert first.run.as_of == second.run.as_of and rows(vcrm)[c].monetary == 200.0
    assert second.summary["moves"] is None  # a replaced run is not its own predecessor


def test_backfilled_run_does_not_touch_lifecycle(vcrm: CRM, base: Base) -> None:
    c = base.customer("A")
    base.buys(c, [0, 10], "100")
    run(vcrm, d(500))
    assert stages(vcrm)[c] == "churned"
    out = run(vcrm, d(20))  # an earlier date: stored, but the latest snapshot still rules
    assert out.lifecycle_updated == 0 and stages(vcrm)[c] == "churned"
    assert rows(vcrm, d(20))[c].lifecycle != "churned"
    with vcrm.unit_of_work() as uow:
        assert services.latest_run(uow).as_of == d(500)


def test_lifecycle_update_can_be_switched_off(vcrm: CRM, base: Base) -> None:
    c = base.customer("A")
    base.buy(c, 0, "100")
    out = run(vcrm, d(10), lifecycle={"update_core": False})
    assert out.lifecycle_updated == 0 and stages(vcrm)[c] == "prospect"


# -- bad input and failures leave nothing behind ---------------------------------------------------------

def test_analysis_date_before_any_data(vcrm: CRM, base: Base) -> None:
    c = base.customer("A")
    base.buy(c, 100, "100")
    with pytest.raises(InvalidInput, match="no purchases on or before"), vcrm.unit_of_work() as uow:
        services.run_analysis(uow, as_of=d(50))
    assert counts(vcrm) == (0, 0)


def test_no_customers_or_no_purchases(vcrm: CRM, base: Base) -> None:
    with pytest.raises(InvalidInput, match="no customers"), vcrm.unit_of_work() as uow:
        services.run_analysis(uow, as_of=d(50))
    base.customer("A")
    with pytest.raises(InvalidInput, match="no purchases to analyse"), vcrm.unit_of_work() as uow:
        services.run_analysis(uow, as_of=d(50))


def test_failed_run_stores_no_partial_snapshot(vcrm: CRM, base: Base, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _pyramid_base(base)
    run(vcrm, d(20))
    before = counts(vcrm), stages(vcrm)
    base.buy(ids[3], 400, "5")
    from crm_value_analysis import snapshot_store

    real_insert = snapshot_store.insert_rows

    def insert_then_fail(session: Any, columns: Any, n: int) -> None:
        real_insert(session, columns, n)  # everything written...
        raise RuntimeError("disk full")  # ...then the run fails

    monkeypatch.setattr(snapshot_store, "insert_rows", insert_then_fail)
    monkeypatch.setattr(snapshot_store, "INSERT_CHUNK", 7)
    with pytest.raises(RuntimeError), vcrm.unit_of_work() as uow:
        services.run_analysis(uow, as_of=d(20))  # would replace the stored run
    assert (counts(vcrm), stages(vcrm)) == before
    assert rows(vcrm)[ids[3]].monetary == 13.0


# -- churn, CLV and loyalty -------------------------------------------------------------------------------

def test_models_fitted_in_a_run(vcrm: CRM) -> None:
    ci, days, amounts = simulate_purchase_log(1500, r=0.24, alpha=4.41, a=0.79, b=2.43, p=6.25, q=3.74, v=15.44,
                                              end_day=450, seed=1)
    ids = bulk_load(vcrm, ci, days, amounts, 1500)
    out = run(vcrm, d(450), churn_threshold=0.5, time_unit="days", model="bg_nbd")
    models = out.summary["models"]
    assert out.summary["churn"]["method"] == "model"  # purchases at random: the model decides
    assert models["model"] == "bg_nbd" and models["purchase"]["converged"] and models["gamma_gamma"]["converged"]
    assert models["purchase"]["alpha"] == pytest.approx(4.41 * 7, rel=0.35)  # fitted in days by default
    assert out.summary["warnings"] == []
    r = rows(vcrm)
    p_alive = np.array([r[c].p_alive for c in ids])
    assert ((p_alive >= 0) & (p_alive <= 1)).all()
    one_timers = [c for c in ids if r[c].purchase_days == 1]
    assert all(r[c].p_alive == 1.0 for c in one_timers)  # BG/NBD: no drop-out before a repeat purchase
    at_risk = [c for c in ids if r[c].churn_risk]
    assert at_risk and all(r[c].p_alive < 0.5 for c in at_risk)
    assert out.summary["churn"]["at_risk"] == len(at_risk)
    assert all(r[c].lifecycle == "churned" for c in ids if r[c].p_alive < 0.2)
    clv = np.array([r[c].clv_probabilistic for c in ids])
    assert (clv >= 0).all() and clv.sum() == pytest.approx(float(out.summary["clv"]["probabilistic_total"]), abs=0.01)
    assert isinstance(out.summary["clv"]["probabilistic_total"], str)  # money: a decimal string
    # more expected purchases -> more CLV, all else equal: the correlation is strongly positive
    exp = np.array([r[c].expected_purchases for c in ids])
    assert np.corrcoef(exp, clv)[0, 1] > 0.7


def test_probabilistic_clv_matches_the_model_for_one_customer(vcrm: CRM) -> None:
    ci, days, amounts = simulate_purchase_log(800, r=0.24, alpha=4.41, a=0.79, b=2.43, p=6.25, q=3.74, v=15.44,
                                              end_day=400, seed=5)
    ids = bulk_load(vcrm, ci, days, amounts, 800)
    out = run(vcrm, d(400), time_unit="weeks", model="bg_nbd", horizon_months=12, discount_rate=0.12, margin=0.4)
    m = out.summary["models"]
    bg = clv_models.BGNBDParams(**{k: m["purchase"][k] for k in ("r", "alpha", "a", "b")})
    gg = clv_models.GammaGammaParams(p=m["gamma_gamma"]["p"], q=m["gamma_gamma"]["q"], v=m["gamma_gamma"]["gamma"])
    i = int(np.argmax(np.bincount(ci)))  # the most frequent buyer
    mine = np.unique(days[ci == i])
    spend = np.array([amounts[(ci == i) & (days == day)].round(2).sum() for day in mine])
    x, tx, T = len(mine) - 1, (mine[-1] - mine[0]) / 7, (day_400 := 400 - mine[0]) / 7
    assert day_400 > 0
    want = clv_models.probabilistic_clv(bg, gg, [x], [tx], [T], [spend[1:].mean()], horizon_periods=12,
                                        discount_rate_per_period=1.12 ** (1 / 12) - 1, margin=0.4, step=365.25 / 12 / 7)
    row = rows(vcrm)[int(ids[i])]
    assert row.clv_probabilistic == pytest.approx(float(want[0]), rel=1e-6)
    assert row.p_alive == pytest.approx(float(clv_models.bgnbd_probability_alive(bg, [x], [tx], [T])[0]))


def test_deterministic_clv(vcrm: CRM, base: Base) -> None:
    c = base.customer("A")
    base.buys(c, [100, 200, 300], "400")  # 1200 in the last 365 days
    base.buy(c, 250, "200", kind="credit_note")
    run(vcrm, d(364), margin=0.25, discount_rate=0.1, retention=0.9, horizon_months=24, acquisition_cost=30)
    monthly = (1000 * 365.25 / 365 / 12) * 0.25
    rho, disc = 0.9 ** (1 / 12), 1.1 ** (1 / 12) - 1
    want = sum(monthly * rho ** (t - 1) / (1 + disc) ** t for t in range(1, 25)) - 30
    assert rows(vcrm)[c].clv_deterministic == pytest.approx(want)


def test_loyalty_index_parts_and_missing_indicators(vcrm: CRM, base: Base) -> None:
    a, b, c = base.customer("A"), base.customer("B"), base.customer("C")
    base.buys(a, [0, 100, 200, 400, 420], "300", category="x")
    base.buy(a, 410, "50", category="y")
    base.rate(a, 300, 5)
    base.buys(b, [300, 430], "100", category="x")
    base.rate(b, 300, 2)
    base.buy(c, 420, "20")  # no category, no survey, too young for a trend
    run(vcrm, d(440))
    r = rows(vcrm)
    assert r[a].loyalty > r[b].loyalty > r[c].loyalty
    assert r[a].loyalty_coverage == pytest.approx(0.6)  # the six factors of the entries; wallet, referrals... unknown
    assert r[c].loyalty_satisfaction is None and r[c].loyalty_cross_buying is None and r[c].loyalty_frequency_trend is None
    assert r[c].loyalty_coverage == pytest.approx(0.36)  # duration + frequency + spend
    with vcrm.unit_of_work() as uow:
        shown = services.customer_value(uow, c)
    parts = shown["loyalty_contributions"]
    assert sum(v for v in parts.values() if v is not None) == pytest.approx(r[c].loyalty)
    assert r[a].satisfaction == 5.0 and r[a].categories == 2
