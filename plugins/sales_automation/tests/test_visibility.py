"""An "own" sales user sees only their own customers' deals and their own leads, in every list and
report, by every face (Python, CLI, HTTP): issue 25's acceptance test for GET /sales/opportunities."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import crm_sales_automation.plugin as PLUGIN
import pytest
from crm_sales_automation import analytics, services
from crm_sales_automation.schemas import ActivityCreate
from crm_sales_automation.testing import Sales
from fastapi.testclient import TestClient

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.errors import NotFound


class Deals:
    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        s = Sales(crm)
        s.user("anna")
        s.user("bob")
        s.actor = "admin"
        self.a = s.customer("Anna Co", owner="anna")
        self.b = s.customer("Bob Co", owner="bob")
        self.deal_a = s.opp(self.a, "100", "mine", owner="anna")
        self.deal_b = s.opp(self.b, "900", "theirs", owner="bob")
        self.won_b = s.opp(self.b, "5000", "their win", owner="bob")
        s.win(self.won_b)
        self.lead_a = s.lead("Lena", owner="anna")
        self.lead_b = s.lead("Lars", owner="bob")
        with crm.unit_of_work("admin") as uow:
            services.add_activity(uow, ActivityCreate(kind="call", subject="call bob's client", owner="bob",
                                                      due_at="2000-01-01T00:00:00Z"), opportunity_id=self.deal_b)
            services.add_activity(uow, ActivityCreate(kind="call", subject="call anna's client", owner="anna",
                                                      due_at="2000-01-01T00:00:00Z"), opportunity_id=self.deal_a)
            self.tokens = {n: {"Authorization": f"Bearer {TokenService(uow).create(n, 't')[1]}"} for n in ("anna", "admin")}

    def get(self, user: str, path: str) -> Any:
        return TestClient(create_app(self.crm), raise_server_exceptions=False).get(path, headers=self.tokens[user])


@pytest.fixture
def deals(make_crm: Callable[..., CRM]) -> Deals:
    return Deals(make_crm(plugins=[PLUGIN], config={"visibility": {"sales": "own"}}))


@pytest.fixture
def own_cli(deals: Deals, cli: Callable[..., Any], tmp_path: Path) -> Callable[..., Any]:
    (tmp_path / "crm.toml").write_text('[visibility]\nsales = "own"\n')

    def run(*args: str, user: str = "anna") -> Any:
        res = cli("sales", *args, plugins=[PLUGIN], user=user)
        return res
    return run


def test_python_reports_count_only_visible_deals(deals: Deals) -> None:
    with deals.crm.unit_of_work("anna", read_only=True) as uow:
        assert [d["id"] for d in services.list_opportunities(uow, status=None)] == [deals.deal_a]
        assert [x["id"] for x in services.list_leads(uow)] == [deals.lead_a]
        assert {str(k): str(v["amount"]) for k, v in analytics.forecast(uow, "month")["totals"].items()} == {"EUR": "100.00"}
        owners = analytics.forecast(uow, "owner")["rows"]
        assert {r["owner"] for r in owners} == {"anna"} and all(r["won"] == 0 for r in owners)
        assert [r["deals"] for r in analytics.weighted_pipeline(uow, "owner") if r.get("owner")] == [1]
        assert all(p["won"] == 0 for p in analytics.funnel(uow))
        assert [r["owner"] for r in analytics.performance(uow)] == ["anna"]
        stale = analytics.stale(uow, 1)
        assert {d["id"] for d in stale["overdue_deals"] + stale["stale"]} <= {deals.deal_a}
        assert [a["subject"] for a in stale["overdue_activities"]] == ["call anna's client"]
        assert [a["subject"] for a in services.due_activities(uow)] == ["call anna's client"]
        board = services.board(uow)
        assert [d["title"] for col in board["columns"] for d in col["deals"]] == ["mine"]
        assert sum(col["count"] for col in board["columns"]) == 1
        with pytest.raises(NotFound, match=f"opportunity {deals.deal_b} not found"):
            services.opportunity_detail(uow, deals.deal_b)
        with pytest.raises(NotFound, match=f"lead {deals.lead_b} not found"):
            services.lead_detail(uow, deals.lead_b)
    with deals.crm.unit_of_work("admin", read_only=True) as uow:
        assert len(services.list_opportunities(uow, status=None)) == 3 and len(services.list_leads(uow)) == 2
        assert str(analytics.forecast(uow, "month")["totals"]["EUR"]["amount"]) == "1000.00"


def test_http_lists_and_reports(deals: Deals) -> None:
    opps = deals.get("anna", "/sales/opportunities?status=open")
    assert opps.status_code == 200 and [d["id"] for d in opps.json()] == [deals.deal_a]
    assert [d["id"] for d in deals.get("anna", "/sales/opportunities?status=won").json()] == []
    assert [x["id"] for x in deals.get("anna", "/sales/leads").json()] == [deals.lead_a]
    assert deals.get("anna", "/sales/forecast").json()["totals"] == {"EUR": {"amount": "100.00", "weighted": "10.00"}}
    hidden, missing = deals.get("anna", f"/sales/opportunities/{deals.deal_b}"), deals.get("anna", "/sales/opportunities/999999")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace(str(deals.deal_b), "N") == missing.json()["detail"].replace("999999", "N")
    assert deals.get("anna", f"/sales/leads/{deals.lead_b}").status_code == 404
    assert len(deals.get("admin", "/sales/opportunities?status=open").json()) == 2


def test_cli_lists_and_reports(deals: Deals, own_cli: Callable[..., Any]) -> None:
    assert [d["id"] for d in json.loads(own_cli("opp", "list", "--status", "all", "--json").output)] == [deals.deal_a]
    assert [x["id"] for x in json.loads(own_cli("lead", "list", "--json").output)] == [deals.lead_a]
    assert json.loads(own_cli("forecast", "--json").output)["totals"] == {"EUR": {"amount": "100.00", "weighted": "10.00"}}
    assert [r["owner"] for r in json.loads(own_cli("report", "performance", "--json").output)] == ["anna"]
    res = own_cli("opp", "show", str(deals.deal_b))
    assert res.exit_code == 1 and res.output.strip() == f"error: opportunity {deals.deal_b} not found"
    res = own_cli("opp", "move", str(deals.deal_b), "presentation")
    assert res.exit_code == 1 and res.output.strip() == f"error: opportunity {deals.deal_b} not found"
    res = own_cli("opp", "list", "--customer", f"#{deals.b}")
    assert res.exit_code == 1 and res.output.strip() == f"error: customer {deals.b} not found"
    assert len(json.loads(own_cli("opp", "list", "--status", "all", "--json", user="admin").output)) == 3


def test_an_own_users_new_lead_and_customer_are_theirs(deals: Deals) -> None:
    from crm_sales_automation.schemas import LeadCreate

    from crmcore.schemas import CustomerCreate

    with deals.crm.unit_of_work("anna") as uow:
        lead = services.add_lead(uow, LeadCreate(name="New"))
        c = uow.customers.create(CustomerCreate(name="Fresh"))
        assert services.lead_detail(uow, lead.id)["owner"] == "anna" and uow.customers.visible(c.id).owner_id is not None
    with deals.crm.unit_of_work("admin") as uow:  # an "all" user's new lead keeps no owner, as before
        assert services.add_lead(uow, LeadCreate(name="Nobody's")).owner_id is None
