"""The selling process's reports: lead sources and campaigns, won/lost reasons, follow-up discipline."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import crm_sales_automation.plugin as PLUGIN
import pytest
from crm_sales_automation import process, services
from crm_sales_automation.models import Activity, Lead, Opportunity, StageChange
from crm_sales_automation.schemas import ActivityCreate, OpportunityCreate
from crm_sales_automation.testing import Sales, assert_error
from sqlalchemy import update

from crmcore import CRM, InvalidInput
from crmcore.db.types import utcnow

Run = Callable[..., Any]


def _convert(crm: CRM, s: Sales, name: str, amount: str, currency: str = "EUR", **kw: Any) -> int:
    lead = s.lead(name, status="qualified", **kw)
    with crm.unit_of_work(s.actor) as uow:
        return services.convert(uow, lead, new=True, opportunity=OpportunityCreate(
            title=name, amount=amount, currency=currency)).opportunity_id  # type: ignore[return-value]


def _age(crm: CRM, model: Any, ident: int, days: float, column: str = "created_at") -> None:
    with crm.unit_of_work() as uow:
        uow.session.execute(update(model).where(model.id == ident)
                            .values({column: utcnow() - dt.timedelta(days=days)}))


def test_lead_sources_and_campaigns(scrm: CRM, sales: Sales, scli: Run) -> None:
    won_web = _convert(scrm, sales, "Web win", "100", source="web", campaign="C1")
    lost_web = _convert(scrm, sales, "Web loss", "70", source="web")
    won_event = _convert(scrm, sales, "Fair win", "50", "USD", source="event", campaign="C1")
    sales.lead("Fair open", source="event")
    sales.lead("Web open", source="web")
    sales.win(won_web)
    sales.lose(lost_web)
    sales.win(won_event)
    with scrm.unit_of_work() as uow:  # the won web deal closed exactly 10 days after its lead came in
        closed = uow.session.get(Opportunity, won_web).closed_at
        lead_id = uow.session.get(Opportunity, won_web).lead_id
        uow.session.execute(update(Lead).where(Lead.id == lead_id).values(created_at=closed - dt.timedelta(days=10)))
    with scrm.unit_of_work(read_only=True) as uow:
        by_source = {r["source"]: r for r in process.source_effectiveness(uow)}
        by_campaign = {r["campaign"]: r for r in process.source_effectiveness(uow, "campaign")}
    assert set(by_source) == {"web", "event"}
    web = by_source["web"]
    assert (web["leads"], web["converted"], web["conversion_rate"], web["deals"], web["won"], web["lost"],
            web["win_rate"], web["avg_cycle_days"], web["revenue"]) == (3, 2, 66.7, 2, 1, 1, 50.0, 10.0, {"EUR": 100})
    event = by_source["event"]
    assert (event["leads"], event["converted"], event["win_rate"], event["revenue"]) == (2, 1, 100.0, {"USD": 50})
    assert (by_campaign["C1"]["leads"], by_campaign["C1"]["won"], by_campaign["C1"]["revenue"]) == (2, 2, {"EUR": 100, "USD": 50})
    assert (by_campaign["(none)"]["leads"], by_campaign["(none)"]["lost"], by_campaign["(none)"]["win_rate"]) == (3, 1, 0.0)
    out = json.loads(scli("sales", "report", "sources", "--by", "campaign", "--json").stdout)
    assert out[0]["campaign"] == "C1" and out[0]["revenue"] == {"EUR": "100.00", "USD": "50.00"}  # money as strings
    text = scli("sales", "report", "sources").stdout
    assert "66.7%" in text and "100.00 EUR" in text
    with scrm.unit_of_work(read_only=True) as uow, pytest.raises(InvalidInput, match="'owner' is not one of source, campaign"):
        process.source_effectiveness(uow, "owner")
    assert scli("sales", "report", "sources", "--by", "owner").exit_code == 2


def test_won_and_lost_reasons_report(scrm: CRM, sales: Sales, scli: Run) -> None:
    cid = sales.customer("Acme")
    deals = [sales.opp(cid, a) for a in ("10", "20", "30", "40", "50", "60")]
    with scrm.unit_of_work() as uow:
        services.win(uow, deals[0], reason="relationship")
        services.win(uow, deals[1], reason="relationship")
        services.win(uow, deals[2])
        services.lose(uow, deals[3], "too dear", code="price")
        services.lose(uow, deals[4], "went elsewhere", code="competitor")
    with scrm.unit_of_work(read_only=True) as uow:
        rows = process.reasons(uow)
    assert [(r["outcome"], r["reason"], r["deals"], r["share"], r["amount"]) for r in rows] == [
        ("won", "relationship", 2, 66.7, {"EUR": 30}), ("won", "unspecified", 1, 33.3, {"EUR": 30}),
        ("lost", "competitor", 1, 50.0, {"EUR": 50}), ("lost", "price", 1, 50.0, {"EUR": 40})]
    js = json.loads(scli("sales", "report", "reasons", "--json").stdout)
    assert js[0] == {"outcome": "won", "reason": "relationship", "deals": 2, "share": 66.7, "amount": {"EUR": "30.00"}}


def test_follow_up_lists_what_nobody_touched(scrm: CRM, sales: Sales, scli: Run) -> None:
    sales.user("anna")
    sales.user("bob")
    sales.actor = "admin"
    cid = sales.customer("Acme")
    forgotten_lead = sales.lead("Forgotten", owner="anna")
    called_lead = sales.lead("Called", owner="anna")
    forgotten_deal = sales.opp(cid, "10", "forgotten deal", owner="bob")
    planned_deal = sales.opp(cid, "20", "planned deal", owner="bob")
    moved_deal = sales.opp(cid, "30", "moved deal", owner="anna")
    fresh = sales.lead("Fresh", owner="bob")
    for model, ident in ((Lead, forgotten_lead), (Lead, called_lead), (Opportunity, forgotten_deal),
                         (Opportunity, planned_deal), (Opportunity, moved_deal)):
        _age(scrm, model, ident, 40)
    with scrm.unit_of_work() as uow:  # the deals' first stage record is as old as they are
        uow.session.execute(update(StageChange).values(changed_at=utcnow() - dt.timedelta(days=40)))
    with scrm.unit_of_work(sales.actor) as uow:
        done = services.add_activity(uow, ActivityCreate(kind="call", subject="called"), lead_id=called_lead)
        services.add_activity(uow, ActivityCreate(kind="visit", subject="visit", due_at=utcnow() + dt.timedelta(days=3)),
                              opportunity_id=planned_deal)
        services.move(uow, moved_deal, "approach")
    with scrm.unit_of_work(sales.actor) as uow:
        services.complete_activity(uow, done.id, "ok")
    _age(scrm, Activity, done.id, 5, "done_at")
    _age(scrm, Lead, fresh, 29)
    with scrm.unit_of_work(read_only=True) as uow:
        out = process.follow_up(uow)
        assert process.follow_up(uow, 50)["total"] == 0
        assert [o["owner"] for o in process.follow_up(uow, owner="bob")["owners"]] == ["bob"]
    assert out["days"] == 30 and out["total"] == 2
    got = {o["owner"]: ([i["name"] for i in o["leads"]], [i["name"] for i in o["opportunities"]]) for o in out["owners"]}
    assert got == {"anna": (["Forgotten"], []), "bob": ([], ["forgotten deal"])}
    assert out["owners"][0]["leads"][0]["idle_days"] == 40
    js = json.loads(scli("sales", "report", "follow-up", "--days", "20", "--json", user="admin").stdout)
    assert js["total"] == 3  # the 29-day-old lead too
    assert_error(scli("sales", "report", "follow-up", "--owner", "nobody", user="admin"), "user 'nobody' not found")
    assert scli("sales", "report", "follow-up", "--days", "0", user="admin").exit_code == 2


def test_an_own_user_sees_only_their_part(make_crm: Callable[..., CRM], cli: Run, tmp_path: Path) -> None:
    crm = make_crm(plugins=[PLUGIN], config={"visibility": {"sales": "own"}})
    s = Sales(crm)
    s.user("anna")
    s.user("bob")
    s.actor = "admin"
    mine = s.lead("Mine", owner="anna", source="web")
    theirs = s.lead("Theirs", owner="bob", source="event")
    for ident in (mine, theirs):
        _age(crm, Lead, ident, 40)
    (tmp_path / "crm.toml").write_text('[visibility]\nsales = "own"\n')
    with crm.unit_of_work("anna", read_only=True) as uow:
        assert [r["source"] for r in process.source_effectiveness(uow)] == ["web"]
        assert [o["owner"] for o in process.follow_up(uow)["owners"]] == ["anna"]
    res = cli("sales", "report", "sources", "--json", plugins=[PLUGIN], user="anna")
    assert [r["source"] for r in json.loads(res.stdout)] == ["web"]
    res = cli("sales", "report", "follow-up", "--json", plugins=[PLUGIN], user="anna")
    assert [o["owner"] for o in json.loads(res.stdout)["owners"]] == ["anna"]
    res = cli("sales", "report", "sources", "--json", plugins=[PLUGIN], user="admin")
    assert sorted(r["source"] for r in json.loads(res.stdout)) == ["event", "web"]
