"""Analytics on small histories whose answers are worked out by hand."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from crm_sales_automation import analytics, services
from crm_sales_automation.schemas import ActivityCreate, QuotaSet
from crm_sales_automation.testing import Sales, at

from crmcore import CRM, InvalidInput

D = Decimal


@pytest.fixture
def book(scrm: CRM, sales: Sales) -> dict[str, int]:
    """Open deals in two currencies and two owners, a lost deal, a won deal, a quota."""
    sales.user("anna")
    sales.user("ben")
    s = Sales(scrm, actor="admin")
    c = s.customer("Acme")
    ids = {
        "o1": s.opp(c, "1000", owner="anna", stage="closing", expected_close=dt.date(2030, 1, 15)),
        "o2": s.opp(c, "500", currency="USD", owner="anna", stage="presentation", expected_close=dt.date(2030, 1, 20)),
        "o3": s.opp(c, "2000", owner="ben", probability=40, expected_close=dt.date(2030, 2, 10)),
        "lost": s.opp(c, "9999", owner="ben", expected_close=dt.date(2030, 1, 5)),
        "won": s.opp(c, "3000", owner="anna", expected_close=dt.date(2030, 1, 5)),
    }
    s.lose(ids["lost"], "price")
    s.win(ids["won"])
    s.backdate(ids["won"], at("2029-12-01"), [at("2029-12-01"), at("2030-01-10")], closed=at("2030-01-10"))
    with scrm.unit_of_work("admin") as uow:
        services.set_quota(uow, QuotaSet(owner="anna", period="2030-01", amount="10000", currency="EUR"))
        services.set_quota(uow, QuotaSet(owner="ben", period="2030-03", amount="500", currency="EUR"))
    return ids


def _rows(out: dict, *keys: str) -> dict:
    return {tuple(r[k] for k in keys): r for r in out["rows"]}


def test_forecast_by_month_never_counts_lost_deals_or_mixes_currencies(scrm: CRM, book: dict[str, int]) -> None:
    with scrm.unit_of_work(read_only=True) as uow:
        out = analytics.forecast(uow, "month")
    rows = _rows(out, "month", "currency")
    assert set(rows) == {("2030-01", "EUR"), ("2030-01", "USD"), ("2030-02", "EUR")}
    assert (rows[("2030-01", "EUR")]["amount"], rows[("2030-01", "EUR")]["weighted"]) == (D("1000.00"), D("800.00"))
    assert (rows[("2030-01", "USD")]["amount"], rows[("2030-01", "USD")]["weighted"]) == (D("500.00"), D("250.00"))
    assert rows[("2030-02", "EUR")]["weighted"] == D("800.00")  # the hand-set 40% beats the stage's 10%
    assert out["totals"] == {"EUR": {"amount": D("3000.00"), "weighted": D("1600.00")},
                             "USD": {"amount": D("500.00"), "weighted": D("250.00")}}


def test_forecast_with_exchange_rates(scrm: CRM, book: dict[str, int]) -> None:
    conv = analytics.parse_rates(["USD=0.9"], "EUR")
    with scrm.unit_of_work(read_only=True) as uow:
        out = analytics.forecast(uow, "month", conversion=conv)
        rows = _rows(out, "month", "currency")
        assert (rows[("2030-01", "EUR")]["amount"], rows[("2030-01", "EUR")]["weighted"]) == (D("1450.00"), D("1025.00"))
        assert set(rows) == {("2030-01", "EUR"), ("2030-02", "EUR")}
        with pytest.raises(InvalidInput, match="no exchange rate for USD"):
            analytics.forecast(uow, "month", conversion=analytics.parse_rates(["GBP=1.1"], "EUR"))
    for bad, to in ((["USD"], "EUR"), (["USD=-1"], "EUR"), (["ZZZ=1"], "EUR"), (["USD=1"], None), (["USD=abc"], "EUR")):
        with pytest.raises(InvalidInput):
            analytics.parse_rates(bad, to)


def test_forecast_by_owner_has_quota_attainment(scrm: CRM, book: dict[str, int]) -> None:
    with scrm.unit_of_work(read_only=True) as uow:
        out = analytics.forecast(uow, "owner")
    rows = _rows(out, "owner", "month", "currency")
    anna = rows[("anna", "2030-01", "EUR")]
    assert (anna["quota"], anna["won"], anna["weighted"]) == (D("10000.00"), D("3000.00"), D("800.00"))
    assert (anna["attainment"], anna["forecast_attainment"]) == (30.0, 38.0)
    assert rows[("anna", "2030-01", "USD")]["quota"] is None
    ben_march = rows[("ben", "2030-03", "EUR")]  # a quota month without deals still shows
    assert (ben_march["deals"], ben_march["attainment"]) == (0, 0.0)
    assert rows[("ben", "2030-02", "EUR")]["weighted"] == D("800.00")


def test_forecast_by_pipeline_and_weighted_pipeline(scrm: CRM, book: dict[str, int]) -> None:
    with scrm.unit_of_work(read_only=True) as uow:
        by_pipe = _rows(analytics.forecast(uow, "pipeline"), "pipeline", "month", "currency")
        stages = {(r["stage"], r["currency"]): r for r in analytics.weighted_pipeline(uow, "stage")}
        owners = {(r["owner"], r["currency"]): r for r in analytics.weighted_pipeline(uow, "owner")}
        with pytest.raises(InvalidInput):
            analytics.weighted_pipeline(uow, "colour")
    assert by_pipe[("default", "2030-01", "EUR")]["weighted"] == D("800.00")
    assert {k: v["weighted"] for k, v in stages.items()} == {
        ("prospecting", "EUR"): D("800.00"), ("presentation", "USD"): D("250.00"), ("closing", "EUR"): D("800.00")}
    assert owners[("anna", "EUR")]["deals"] == 1 and owners[("ben", "EUR")]["amount"] == D("2000.00")


def _closed(s: Sales, c: int, won: bool, created: str, stages: tuple[str, ...] = (), entered: tuple[str, ...] = (),
            closed: str | None = None) -> int:
    oid = s.opp(c, "100")
    s.move(oid, *stages)
    (s.win if won else s.lose)(oid)
    times = [at(created), *(at(e) for e in entered)]
    s.backdate(oid, at(created), [*times, at(closed or created)], closed=at(closed or created))
    return oid


def test_learned_probabilities_and_their_brier_scores(scrm: CRM, sales: Sales) -> None:
    c = sales.customer("Acme")
    for won in (True, True, False, False):
        _closed(sales, c, won, "2029-01-01")
    with scrm.unit_of_work(read_only=True) as uow:
        out = analytics.learned_probabilities(uow)
    (cell,) = out["cells"]
    assert (cell["stage"], cell["age"], cell["deals"], cell["won"], cell["default"]) == ("prospecting", "0-29d", 4, 2, 10)
    assert cell["learned"] == round(100 * 2.5 / 9, 1)  # (2 wins + 5 x 10%) / (4 + 5)
    # stage default 10%: (2 x 0.9^2 + 2 x 0.1^2) / 4; learned, leave-one-out: a won deal is
    # scored (1 + 0.5) / 8, a lost one (2 + 0.5) / 8
    assert out["brier"] == {"stage_defaults": 0.41, "learned": round((2 * (1 - 1.5 / 8) ** 2 + 2 * (2.5 / 8) ** 2) / 4, 4),
                            "observations": 4}
    assert out["trust"] == "learned"


def test_learned_forecast_uses_stage_and_age_but_keeps_hand_set_probabilities(scrm: CRM, sales: Sales) -> None:
    c = sales.customer("Acme")
    for won in (True, True, True, False):  # deals that reached approach 40 days in mostly won
        _closed(sales, c, won, "2029-01-01", ("approach",), ("2029-02-10",), "2029-03-01")
    young = sales.opp(c, "1000", stage="approach", expected_close=dt.date(2030, 1, 1))
    old = sales.opp(c, "1000", expected_close=dt.date(2030, 2, 1))
    sales.move(old, "approach")
    sales.backdate(old, at("2029-06-01"), [at("2029-06-01"), at("2029-07-11")])
    fixed = sales.opp(c, "1000", probability=5, expected_close=dt.date(2030, 3, 1))
    with scrm.unit_of_work(read_only=True) as uow:
        learned = {c_["age"]: c_["learned"] for c_ in analytics.learned_probabilities(uow)["cells"] if c_["stage"] == "approach"}
        out = analytics.forecast(uow, "month", learned=True)
    assert learned == {"30-89d": round(100 * (3 + 5 * 0.3) / 9, 1)}
    rows = _rows(out, "month", "currency")
    assert rows[("2030-01", "EUR")]["weighted"] == D("300.00")  # young deal: no history for its age, stage default
    assert rows[("2030-02", "EUR")]["weighted"] == (D(1000) * D(str(learned["30-89d"])) / 100).quantize(D("0.01"))
    assert rows[("2030-03", "EUR")]["weighted"] == D("50.00")  # set by hand: never replaced
    assert out["probabilities"] == "learned" and out["brier"]["observations"] == 8
    assert young and fixed


def test_funnel_win_rate_and_cycle_time(scrm: CRM, sales: Sales) -> None:
    c = sales.customer("Acme")
    a = sales.opp(c)
    sales.move(a, "qualification", "approach", "closing")
    _closed(sales, c, True, "2029-01-01", ("qualification",), ("2029-01-03",), "2029-01-11")
    _closed(sales, c, False, "2029-01-01", ("qualification", "approach"), ("2029-01-02", "2029-01-03"), "2029-01-21")
    sales.opp(c)
    with scrm.unit_of_work(read_only=True) as uow:
        (p,) = analytics.funnel(uow)
        with pytest.raises(Exception, match="pipeline 'nope'"):
            analytics.funnel(uow, "nope")
    assert [(s["stage"], s["reached"], s["to_next"]) for s in p["stages"]] == [
        ("prospecting", 4, 75.0), ("qualification", 3, 100.0), ("approach", 3, 66.7), ("presentation", 2, 100.0),
        ("objection_handling", 2, 100.0), ("closing", 2, 50.0), ("won", 1, None)]
    assert (p["won"], p["lost"], p["win_rate"], p["avg_cycle_days"]) == (1, 1, 50.0, 10.0)


def test_rep_performance(scrm: CRM, sales: Sales) -> None:
    sales.user("anna")
    s = Sales(scrm, actor="admin")
    c = s.customer("Acme")
    w = s.opp(c, "300", owner="anna")
    s.win(w)
    s.backdate(w, at("2029-01-01"), [at("2029-01-01"), at("2029-01-05")], closed=at("2029-01-05"))
    s.lose(s.opp(c, "50", owner="anna"))
    s.opp(c, "1000", owner="anna", stage="closing")
    s.opp(c, "70")
    with scrm.unit_of_work("admin") as uow:
        a = services.add_activity(uow, ActivityCreate(kind="call", subject="x", owner="anna"), customer_id=c)
        services.complete_activity(uow, a.id)
    with scrm.unit_of_work(read_only=True) as uow:
        rows = {r["owner"]: r for r in analytics.performance(uow)}
    anna = rows["anna"]
    assert (anna["won"], anna["lost"], anna["win_rate"], anna["avg_cycle_days"]) == (1, 1, 50.0, 4.0)
    assert (anna["activities_done"], anna["open_deals"]) == (1, 1)
    assert anna["pipeline"] == {"EUR": D("1000.00")} and anna["weighted"] == {"EUR": D("800.00")}
    assert anna["won_amount"] == {"EUR": D("300.00")}
    assert rows["admin"]["open_deals"] == 1  # no --owner: the acting user owns it


def test_stale_and_overdue(scrm: CRM, sales: Sales) -> None:
    c = sales.customer("Acme")
    idle = sales.opp(c, expected_close=dt.date(2020, 1, 1))
    busy = sales.opp(c)
    fresh = sales.opp(c)
    now = dt.datetime.now(dt.UTC)
    for oid in (idle, busy):
        sales.backdate(oid, now - dt.timedelta(days=40))
    with scrm.unit_of_work() as uow:
        a = services.add_activity(uow, ActivityCreate(kind="call", subject="x"), opportunity_id=busy)
        services.complete_activity(uow, a.id, at=now - dt.timedelta(days=2))
        services.add_activity(uow, ActivityCreate(kind="email", subject="late", due_at=now - dt.timedelta(days=1)),
                              customer_id=c)
    with scrm.unit_of_work(read_only=True) as uow:
        out = analytics.stale(uow)
        assert [d["id"] for d in analytics.stale(uow, 1)["stale"]] == [idle, busy]
        with pytest.raises(InvalidInput):
            analytics.stale(uow, 0)
    assert out["stale_days"] == 30
    assert [(d["id"], d["idle_days"]) for d in out["stale"]] == [(idle, 40)]
    assert [d["id"] for d in out["overdue_deals"]] == [idle]
    assert [a["subject"] for a in out["overdue_activities"]] == ["late"]
    assert fresh


def test_stale_days_is_a_setting(make_crm) -> None:  # type: ignore[no-untyped-def]
    import crm_sales_automation.plugin as PLUGIN

    crm = make_crm(plugins=[PLUGIN], config={"sales_automation": {"stale_days": 7}})
    s = Sales(crm)
    oid = s.opp(s.customer("Acme"))
    s.backdate(oid, dt.datetime.now(dt.UTC) - dt.timedelta(days=10))
    with crm.unit_of_work(read_only=True) as uow:
        out = analytics.stale(uow)
    assert out["stale_days"] == 7 and [d["id"] for d in out["stale"]] == [oid]
