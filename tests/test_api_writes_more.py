"""More of the routes added for parity with the CLI: the selling work (pipelines, activities,
quotas, objections), credit write-offs and dunning, the service desk (inbound mail, assignment,
SLA check), webhooks and the value run. Each does what its command does, under its permission."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import crm_credit.plugin as CREDIT
import crm_sales_automation.plugin as SALES
import crm_service.plugin as SERVICE
import crm_value_analysis.plugin as VALUE
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.api import create_app
from crmcore.models import Transaction, WebhookSubscription
from crmcore.schemas import CustomerCreate, TransactionCreate

from .test_api_writes import _problem, _tokens

Client = tuple[TestClient, dict[str, dict[str, str]], CRM]

MAIL = b"""From: Ann Buyer <ann@example.com>
To: support@example.com
Subject: Broken kettle
Message-ID: <api-m1@example.com>

My kettle leaks.
"""


@pytest.fixture
def api(make_crm: Callable[..., CRM]) -> Client:
    crm = make_crm(plugins=[CREDIT, SALES, SERVICE, VALUE])
    return TestClient(create_app(crm), raise_server_exceptions=False), _tokens(crm), crm


def _customer(crm: CRM, **kw: Any) -> int:
    with crm.unit_of_work("root") as uow:
        return uow.customers.create(CustomerCreate(**kw), force=True).id


def test_selling_work(api: Client) -> None:
    client, h, crm = api
    cid = _customer(crm, name="Deal Co")
    r = client.post("/sales/pipelines", json={"name": "expo", "stages": [{"name": "booth", "probability": 20},
                                                                         {"name": "offer", "probability": 60}]},
                    headers=h["root"])
    assert r.status_code == 201 and r.json()["name"] == "expo"
    _problem(client.post("/sales/pipelines", json={"name": "expo", "stages": [{"name": "x", "probability": 5}]},
                         headers=h["root"]), 409, "already exists")
    opp = client.post("/sales/opportunities", json={"customer_id": cid, "title": "Stand", "amount": "900.00",
                                                   "pipeline": "expo"}, headers=h["anna"]).json()
    r = client.patch(f"/sales/opportunities/{opp['id']}", json={"amount": "1200.50", "next_step": "call"}, headers=h["anna"])
    assert r.status_code == 200 and r.json()["amount"] == "1200.50"
    ob = client.post(f"/sales/opportunities/{opp['id']}/objections", json={"kind": "price", "description": "too dear"},
                     headers=h["anna"])
    assert ob.status_code == 201 and ob.json()["resolved"] is False
    r = client.post(f"/sales/objections/{ob.json()['id']}/resolve", json={"handling": "payment plan"}, headers=h["anna"])
    assert r.status_code == 200 and r.json()["resolved"] is True
    _problem(client.post("/sales/activities", json={"kind": "call", "subject": "x"}, headers=h["anna"]), 422, "exactly one")
    act = client.post("/sales/activities", json={"kind": "call", "subject": "Follow up", "customer_id": cid}, headers=h["anna"])
    assert act.status_code == 201
    done = client.post(f"/sales/activities/{act.json()['id']}/done", json={"outcome": "booked"}, headers=h["anna"])
    assert done.status_code == 200 and done.json()["interaction_id"] is not None
    _problem(client.put("/sales/quotas", json={"owner": "anna", "period": "2027-01-01", "amount": "5000", "currency": "EUR"},
                        headers=h["anna"]), 403, "sales.quota")
    q = client.put("/sales/quotas", json={"owner": "anna", "period": "2027-01-01", "amount": "5000", "currency": "EUR"},
                   headers=h["root"])
    assert q.status_code == 200 and q.json()["amount"] == "5000.00"


def test_credit_writeoff_and_dunning(api: Client) -> None:
    client, h, crm = api
    cid = _customer(crm, name="Bad Debt Co")
    with crm.unit_of_work("root") as uow:
        uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="300.00", reference="INV-9",
                                                 occurred_at="2025-01-01T00:00:00Z", due_date="2025-01-31"))
    r = client.post("/credit/dunning/run", json={"as_of": "2025-06-01"}, headers=h["root"])
    assert r.status_code == 200 and r.json()["overdue"] == 1 and r.json()["as_of"] == "2025-06-01"
    _problem(client.post(f"/credit/customers/{cid}/writeoffs", json={"invoice": "INV-9", "reason": "insolvent"},
                         headers=h["anna"]), 403, "credit.writeoff")
    r = client.post(f"/credit/customers/{cid}/writeoffs", json={"invoice": "INV-9", "amount": "100.10", "reason": "insolvent"},
                    headers=h["root"])
    assert r.status_code == 201 and r.json()["amount"] == "100.10"
    _problem(client.post(f"/credit/customers/{cid}/writeoffs", json={"invoice": "NOPE", "reason": "x"}, headers=h["root"]),
             404, "NOPE")
    with crm.unit_of_work("root", read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Transaction).where(Transaction.kind == "write_off")) == 1


def test_service_mail_assign_and_sla(api: Client) -> None:
    client, h, crm = api
    _customer(crm, name="Kettle Co", email="ann@example.com")
    _problem(client.post("/service/mail", content=b"", headers={**h["root"], "Content-Type": "message/rfc822"}),
             422, "raw e-mail")
    r = client.post("/service/mail", content=MAIL, params={"priority": "high"},
                    headers={**h["root"], "Content-Type": "message/rfc822"})
    assert r.status_code == 200 and r.json()["created"] is True
    tid = r.json()["ticket_id"]
    again = client.post("/service/mail", content=MAIL, headers={**h["root"], "Content-Type": "message/rfc822"})
    assert again.json()["duplicate"] is True and again.json()["ticket_id"] == tid
    r = client.post(f"/service/tickets/{tid}/assign", json={"username": "root"}, headers=h["root"])
    assert r.status_code == 200 and r.json()["assignee"] == "root"
    _problem(client.post(f"/service/tickets/{tid}/assign", json={"username": "root", "auto": True}, headers=h["root"]),
             422, "not both")
    r = client.post("/service/sla/check", headers=h["root"])
    assert r.status_code == 200 and "first_response_breaches" in r.json()


def test_webhooks_and_value_run(api: Client) -> None:
    client, h, crm = api
    _problem(client.post("/webhooks", json={"url": "https://hooks.example.com/crm", "events": ["*"]}, headers=h["anna"]),
             403, "user.manage")
    _problem(client.post("/webhooks", json={"url": "http://127.0.0.1/x", "events": ["*"]}, headers=h["root"]), 422, "")
    r = client.post("/webhooks", json={"url": "https://hooks.example.com/crm", "events": ["customer.created"]},
                    headers=h["root"])
    assert r.status_code == 201 and len(r.json()["secret"]) >= 16
    assert client.delete(f"/webhooks/{r.json()['id']}", headers=h["root"]).status_code == 204
    with crm.unit_of_work("root", read_only=True) as uow:
        assert uow.session.scalar(select(WebhookSubscription.active).where(WebhookSubscription.id == r.json()["id"])) is False
    cid = _customer(crm, name="Buyer")
    with crm.unit_of_work("root") as uow:
        for i, day in enumerate(("2025-01-10", "2025-03-02", "2025-05-20")):
            uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="99.99", reference=f"V-{i}", occurred_at=f"{day}T00:00:00Z"))
    _problem(client.post("/value/runs", json={"margin": "2"}, headers=h["root"]), 422, "margin")
    r = client.post("/value/runs", json={"as_of": "2025-06-01", "update_lifecycle": False}, headers=h["root"])
    assert r.status_code == 200, r.text
    assert r.json()["run"]["as_of"] == "2025-06-01" and r.json()["run"]["n_purchasers"] == 1
