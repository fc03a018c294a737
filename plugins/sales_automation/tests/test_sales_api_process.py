"""The selling process over HTTP: a lead's source and campaign, the won and lost reasons on the
win and lose routes, the process reports (same visibility as the CLI) and the pipelines as reads
that write nothing."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

import crm_sales_automation.plugin as PLUGIN
from crm_sales_automation.models import Lead, Opportunity, Pipeline, Stage
from crm_sales_automation.testing import Sales
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.db.types import utcnow


def _client(crm: CRM, *users: str) -> tuple[TestClient, dict[str, dict[str, str]]]:
    heads = {}
    for name in users:
        with crm.unit_of_work("admin") as uow:
            heads[name] = {"Authorization": f"Bearer {TokenService(uow).create(name, 't')[1]}"}
    return TestClient(create_app(crm), raise_server_exceptions=False), heads


def _count(crm: CRM, model: Any) -> int:
    with crm.unit_of_work(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def _one_error(r: Any, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert "\n" not in detail and all(w in detail for w in words), detail


def test_lead_source_campaign_and_deal_reasons(make_crm: Any) -> None:
    crm = make_crm(plugins=[PLUGIN])
    s = Sales(crm)
    s.user("anna")
    s.actor = "anna"
    client, h = _client(crm, "anna")
    a = h["anna"]
    lead = client.post("/sales/leads", json={"name": "Jana", "source": "event", "campaign": "FAIR-26"}, headers=a)
    assert lead.status_code == 201, lead.text
    assert (lead.json()["source"], lead.json()["campaign"]) == ("event", "FAIR-26")
    _one_error(client.post("/sales/leads", json={"name": "Ivo", "source": "carrier-pigeon"}, headers=a), 422,
               "source", "carrier-pigeon")
    customer = s.customer("Alpine Kitchens")
    ids = [client.post("/sales/opportunities", json={"customer_id": customer, "title": t, "amount": "1250.50"},
                       headers=a).json()["id"] for t in ("Tiles", "Kitchen", "Bath")]
    # a reason outside the vocabulary: one line naming it, and the deal stays open
    _one_error(client.post(f"/sales/opportunities/{ids[0]}/win", json={"reason": "luck"}, headers=a), 422, "reason", "luck")
    _one_error(client.post(f"/sales/opportunities/{ids[0]}/win", json={"reason": "quality", "extra": 1}, headers=a), 422, "extra")
    assert client.get(f"/sales/opportunities/{ids[0]}", headers=a).json()["status"] == "open"
    won = client.post(f"/sales/opportunities/{ids[0]}/win", json={"reason": "Quality"}, headers=a)
    assert won.status_code == 200 and won.json()["won_reason"] == "quality", won.text
    assert client.post(f"/sales/opportunities/{ids[2]}/win", headers=a).json()["won_reason"] is None  # no body: as before
    _one_error(client.post(f"/sales/opportunities/{ids[1]}/lose", json={"reason": "too dear", "code": "astrology"},
                           headers=a), 422, "code", "astrology")
    assert client.get(f"/sales/opportunities/{ids[1]}", headers=a).json()["status"] == "open"
    lost = client.post(f"/sales/opportunities/{ids[1]}/lose", json={"reason": "too dear", "code": "price"}, headers=a)
    assert lost.status_code == 200 and (lost.json()["lost_reason"], lost.json()["lost_reason_code"]) == ("too dear", "price")
    reasons = client.get("/sales/reports/reasons", headers=a)
    assert reasons.status_code == 200
    rows = {(r["outcome"], r["reason"]): r for r in reasons.json()}
    assert rows[("won", "quality")]["amount"] == {"EUR": "1250.50"} and rows[("won", "quality")]["share"] == 50.0
    assert rows[("lost", "price")]["deals"] == 1 and rows[("won", "unspecified")]["deals"] == 1
    # the lead from the fair converts into a won deal: its source and campaign earn the revenue
    lid = lead.json()["id"]
    assert client.patch(f"/sales/leads/{lid}", json={"status": "qualified"}, headers=a).status_code == 200
    conv = client.post(f"/sales/leads/{lid}/convert", json={"new": True, "opportunity": {"title": "Fair deal", "amount": "300.25"}},
                       headers=a)
    assert conv.status_code == 200, conv.text
    assert client.post(f"/sales/opportunities/{conv.json()['opportunity_id']}/win", json={"reason": "service"},
                       headers=a).status_code == 200
    for by, key in (("source", "event"), ("campaign", "FAIR-26")):
        r = {x[by]: x for x in client.get(f"/sales/reports/sources?by={by}", headers=a).json()}[key]
        assert (r["leads"], r["converted"], r["won"], r["revenue"]) == (1, 1, 1, {"EUR": "300.25"})


def test_process_reports_follow_visibility(make_crm: Any) -> None:
    crm = make_crm(plugins=[PLUGIN], config={"visibility": {"sales": "own"}})
    s = Sales(crm)
    s.user("anna")
    s.user("ben")
    client, h = _client(crm, "anna", "ben", "admin")
    for who, src in (("anna", "web"), ("ben", "event")):
        r = client.post("/sales/leads", json={"name": f"{who} lead", "source": src, "campaign": "C1"}, headers=h[who])
        assert r.status_code == 201, r.text
    anna = client.get("/sales/reports/sources", headers=h["anna"]).json()
    assert [(r["source"], r["leads"]) for r in anna] == [("web", 1)]
    assert {r["source"] for r in client.get("/sales/reports/sources", headers=h["admin"]).json()} == {"web", "event"}
    by_campaign = client.get("/sales/reports/sources?by=campaign", headers=h["admin"]).json()
    assert [(r["campaign"], r["leads"], r["revenue"]) for r in by_campaign] == [("C1", 2, {})]
    _one_error(client.get("/sales/reports/sources?by=planet", headers=h["admin"]), 422, "by")
    follow = client.get("/sales/reports/follow-up?days=1", headers=h["anna"])  # just created: nothing idle
    assert follow.status_code == 200 and (follow.json()["days"], follow.json()["total"]) == (1, 0)
    with crm.unit_of_work() as uow:  # both leads came in 40 days ago and nobody acted since
        uow.session.execute(update(Lead).values(created_at=utcnow() - dt.timedelta(days=40)))
    mine = client.get("/sales/reports/follow-up", headers=h["anna"]).json()
    assert (mine["days"], mine["total"], [o["owner"] for o in mine["owners"]]) == (30, 1, ["anna"])
    assert mine["owners"][0]["leads"][0]["idle_days"] == 40
    assert client.get("/sales/reports/follow-up?days=30", headers=h["admin"]).json()["total"] == 2
    _one_error(client.get("/sales/reports/follow-up?days=0", headers=h["anna"]), 422, "days")
    _one_error(client.get("/sales/reports/follow-up?owner=nobody", headers=h["admin"]), 404, "nobody")
    assert client.get("/sales/reports/reasons").status_code == 401


def test_pipelines_are_reads(make_crm: Any, cli: Any) -> None:
    crm = make_crm(plugins=[PLUGIN])
    s = Sales(crm)
    s.user("anna")
    s.actor = "anna"
    client, h = _client(crm, "anna")
    a = h["anna"]
    listed = client.get("/sales/pipelines", headers=a)
    assert listed.status_code == 200, listed.text
    [default] = listed.json()
    assert default["id"] is None and default["default"] and default["stages"][-2:][0]["kind"] == "won"
    board = client.get("/sales/pipelines/default", headers=a).json()
    assert board["pipeline"] == "default" and all(c["count"] == 0 for c in board["columns"])
    res = cli("sales", "pipeline", "list", "--json", plugins=[PLUGIN], user="anna")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)[0]["stages"] == default["stages"]
    assert cli("sales", "pipeline", "show", plugins=[PLUGIN], user="anna").exit_code == 0
    assert _count(crm, Pipeline) == _count(crm, Stage) == 0  # reading wrote nothing
    _one_error(client.get("/sales/pipelines/nope", headers=a), 404, "nope", "default")
    _one_error(client.get("/sales/pipelines/default?per_stage=0", headers=a), 422, "per_stage")
    # the first write stores the default pipeline, with the stages the read described
    customer = s.customer("Alpine Kitchens")
    opp = client.post("/sales/opportunities", json={"customer_id": customer, "title": "Tiles", "amount": "99.90"}, headers=a)
    assert opp.status_code == 201, opp.text
    stored = client.get("/sales/pipelines", headers=a).json()
    assert stored[0]["id"] is not None and stored[0]["stages"] == default["stages"]
    column = client.get("/sales/pipelines/default", headers=a).json()["columns"][0]
    assert column["count"] == 1 and column["value"] == {"EUR": "99.90"} and column["deals"][0]["amount"] == "99.90"
    assert _count(crm, Opportunity) == 1
