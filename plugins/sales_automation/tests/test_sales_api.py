"""The sales routes of the HTTP API: leads, deals, a win refused by a guard (409, nothing written), forecast."""
from __future__ import annotations

from typing import Any

import crm_sales_automation.plugin as PLUGIN
from crm_sales_automation.testing import Sales
from fastapi.testclient import TestClient

from crmcore import Veto, hookimpl
from crmcore.api import create_app
from crmcore.api.auth import TokenService


class Guard:
    @staticmethod
    @hookimpl(optionalhook=True)
    def sales_before_opportunity_won(uow: Any, opportunity: Any) -> None:
        if opportunity.amount > 10_000:
            raise Veto("exposure over the credit limit")


def test_sales_routes(make_crm: Any) -> None:
    crm = make_crm(plugins=[PLUGIN, ("guard", Guard)])
    s = Sales(crm)
    customer = s.customer("Alpine Kitchens")
    s.user("anna")
    s.actor = "anna"
    tokens = {}
    for name in ("anna", "admin"):
        with crm.unit_of_work("admin") as uow:
            tokens[name] = {"Authorization": f"Bearer {TokenService(uow).create(name, 't')[1]}"}
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    h = tokens["anna"]
    assert client.get("/sales/leads").status_code == 401
    lead = client.post("/sales/leads", json={"name": "Jana Novak", "email": "jana@alpine.example.com"}, headers=h)
    assert lead.status_code == 201 and lead.json()["name"] == "Jana Novak"
    assert client.get("/sales/leads", headers=h).json()[0]["name"] == "Jana Novak"
    small = client.post("/sales/opportunities", json={"customer_id": customer, "title": "Tiles", "amount": "900"}, headers=h)
    big = client.post("/sales/opportunities", json={"customer_id": customer, "title": "Kitchen", "amount": "12500"}, headers=h)
    assert small.status_code == big.status_code == 201
    neg = client.post("/sales/opportunities", json={"customer_id": customer, "title": "X", "amount": "-5"}, headers=h)
    assert neg.status_code == 422
    moved = client.post(f"/sales/opportunities/{small.json()['id']}/move", json={"stage": "presentation"}, headers=h)
    assert moved.status_code == 200, moved.text
    unknown = client.post(f"/sales/opportunities/{small.json()['id']}/move", json={"stage": "nirvana"}, headers=h)
    assert unknown.status_code in (404, 422) and "nirvana" in unknown.json()["detail"]
    refused = client.post(f"/sales/opportunities/{big.json()['id']}/win", headers=h)
    assert refused.status_code == 409 and "exposure over the credit limit" in refused.json()["detail"]
    assert client.get(f"/sales/opportunities/{big.json()['id']}", headers=h).json()["status"] == "open"
    won = client.post(f"/sales/opportunities/{small.json()['id']}/win", headers=h)
    assert won.status_code == 200 and won.json()["status"] == "won"
    lost = client.post(f"/sales/opportunities/{big.json()['id']}/lose", json={"reason": "budget"}, headers=h)
    assert lost.status_code == 200 and lost.json()["status"] == "lost"
    assert client.get("/sales/forecast?by=owner", headers=h).status_code == 200
    assert client.get("/sales/forecast?by=planet", headers=h).status_code == 422
