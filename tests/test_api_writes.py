"""The routes added so every writing command has an HTTP counterpart (tests/test_api_parity.py):
each does what its command does, under the same permissions, and a bad request writes nothing."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import crm_credit.plugin as CREDIT
import crm_marketing.plugin as MARKETING
import crm_sales_automation.plugin as SALES
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.models import AuditEntry, Contact, Customer
from crmcore.schemas import CustomerCreate, UserCreate

Client = tuple[TestClient, dict[str, dict[str, str]], CRM]


def _tokens(crm: CRM) -> dict[str, dict[str, str]]:
    with crm.unit_of_work("setup") as uow:
        for name, role in (("root", "admin"), ("anna", "sales"), ("vic", "viewer")):
            uow.users.add(UserCreate(username=name, display_name=name.title(), roles=[role]))
    out = {}
    for name in ("root", "anna", "vic"):
        with crm.unit_of_work("root") as uow:
            out[name] = {"Authorization": f"Bearer {TokenService(uow).create(name, 'test')[1]}"}
    return out


@pytest.fixture
def api(make_crm: Callable[..., CRM]) -> Client:
    crm = make_crm(plugins=[CREDIT, MARKETING, SALES])
    return TestClient(create_app(crm), raise_server_exceptions=False), _tokens(crm), crm


def _problem(r: Any, status: int, text: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert text in r.json()["detail"] and "\n" not in r.json()["detail"]


def _count(crm: CRM, model: Any, *where: Any) -> int:
    with crm.unit_of_work("root", read_only=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _customer(crm: CRM, name: str, **kw: Any) -> int:
    with crm.unit_of_work("root") as uow:
        return uow.customers.create(CustomerCreate(name=name, **kw), force=True).id


# -- core ----------------------------------------------------------------------------------------

def test_search_finds_by_email_and_reference_and_by_ref_route(api: Client) -> None:
    client, h, crm = api
    cid = _customer(crm, "Tundra Flooring", email="sales@tundra.example", external_ref="EXPO-7781")
    _customer(crm, "Other Co", email="info@other.example", external_ref="EXPO-1")
    for term in ("tundra.example", "expo-7781", "Flooring"):
        items = client.get("/customers", params={"search": term}, headers=h["root"]).json()["items"]
        assert [c["id"] for c in items] == [cid], term
    r = client.get("/customers/by-ref/EXPO-7781", headers=h["root"])
    assert r.status_code == 200 and r.json()["id"] == cid and r.headers["ETag"] == f'"{r.json()["version"]}"'
    _problem(client.get("/customers/by-ref/EXPO-404", headers=h["root"]), 404, "EXPO-404")
    _problem(client.get(f"/customers/by-ref/{cid}", headers=h["root"]), 404, "not found")  # an id is not a reference


def test_limit_above_the_maximum_is_422_not_clamped(api: Client) -> None:
    client, h, _ = api
    _problem(client.get("/customers", params={"limit": 201}, headers=h["root"]), 422, "limit: at most 200")
    assert client.get("/customers", params={"limit": 200}, headers=h["root"]).status_code == 200
    spec = client.get("/openapi.json", headers=h["root"]).json()
    limit = next(p for p in spec["paths"]["/customers"]["get"]["parameters"] if p["name"] == "limit")
    assert "max_page_size" in limit["description"]


def test_contact_update_and_remove(api: Client) -> None:
    client, h, crm = api
    cid = _customer(crm, "Org", kind="organization")
    xid = client.post(f"/customers/{cid}/contacts", json={"name": "Ada", "role": "user"}, headers=h["root"]).json()["id"]
    r = client.patch(f"/contacts/{xid}", json={"role": "decider", "title": "CEO"}, headers=h["root"])
    assert r.status_code == 200 and r.json()["role"] == "decider" and r.json()["title"] == "CEO"
    _problem(client.patch(f"/contacts/{xid}", json={"role": "emperor"}, headers=h["root"]), 422, "role")
    _problem(client.patch(f"/contacts/{xid}", json={"title": "x"}, headers=h["vic"]), 403, "contact.write")
    _problem(client.patch("/contacts/999999", json={"title": "x"}, headers=h["root"]), 404, "not found")
    assert client.delete(f"/contacts/{xid}", headers=h["root"]).status_code == 204
    assert _count(crm, Contact) == 0
    assert _count(crm, AuditEntry, AuditEntry.entity == "contact", AuditEntry.action == "delete") == 1


def test_account_open_and_status(api: Client) -> None:
    client, h, crm = api
    cid = _customer(crm, "Ledger Co")
    r = client.post(f"/customers/{cid}/accounts", json={"currency": "USD", "payment_terms_days": 14}, headers=h["root"])
    assert r.status_code == 201 and r.json()["currency"] == "USD"
    aid = r.json()["id"]
    r = client.post(f"/accounts/{aid}/status", json={"status": "on_hold"}, headers=h["root"])
    assert r.status_code == 200 and r.json()["status"] == "on_hold"
    _problem(client.post(f"/accounts/{aid}/status", json={"status": "frozen"}, headers=h["root"]), 422, "status")
    _problem(client.post(f"/accounts/{aid}/status", json={"status": "open"}, headers=h["vic"]), 403, "account.manage")


def test_user_roles_and_activation(api: Client) -> None:
    client, h, _ = api
    r = client.put("/users/anna/roles", json={"roles": ["sales", "manager"]}, headers=h["root"])
    assert r.status_code == 200 and sorted(r.json()["roles"]) == ["manager", "sales"]
    _problem(client.put("/users/anna/roles", json={"roles": ["pope"]}, headers=h["root"]), 422, "pope")
    _problem(client.post("/users/vic/deactivate", headers=h["anna"]), 403, "user.manage")
    assert client.post("/users/vic/deactivate", headers=h["root"]).json()["active"] is False
    _problem(client.get("/customers", headers=h["vic"]), 401, "")  # a deactivated user's token stops working
    assert client.post("/users/vic/activate", headers=h["root"]).json()["active"] is True


# -- sales: a badge-scan app converts a lead over HTTP ------------------------------------------------

def test_lead_update_assess_convert(api: Client) -> None:
    client, h, crm = api
    lead = client.post("/sales/leads", json={"name": "Mia Berg", "company": "Berg Stands GmbH",
                                             "email": "mia@berg.example", "external_ref": "BADGE-0042"},
                       headers=h["anna"]).json()
    lid = lead["id"]
    r = client.post(f"/sales/leads/{lid}/assess", json={"scores": [{"factor": "need", "points": 5},
                                                                    {"factor": "authority", "points": 4}]},
                    headers=h["anna"])
    assert r.status_code == 200 and r.json()["score"] > 0
    _problem(client.post(f"/sales/leads/{lid}/assess", json={"scores": [{"factor": "need", "points": 6}]},
                         headers=h["anna"]), 422, "points")
    _problem(client.patch(f"/sales/leads/{lid}", json={}, headers=h["anna"]), 422, "nothing to update")
    _problem(client.patch(f"/sales/leads/{lid}", json={"status": "converted"}, headers=h["anna"]), 422, "convert")
    r = client.patch(f"/sales/leads/{lid}", json={"status": "qualified", "notes": "met at hall 3"}, headers=h["anna"])
    assert r.status_code == 200 and r.json()["status"] == "qualified"
    before = _count(crm, Customer)
    _problem(client.post(f"/sales/leads/{lid}/convert", json={"new": True, "customer_id": 1}, headers=h["anna"]),
             422, "not both")
    _problem(client.post(f"/sales/leads/{lid}/convert", json={"new": True}, headers=h["vic"]), 403, "sales.")
    assert _count(crm, Customer) == before
    r = client.post(f"/sales/leads/{lid}/convert", json={"new": True, "opportunity": {"title": "Stand 2027", "amount": "12500.50"}},
                    headers=h["anna"])
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["customer_created"] is True and out["opportunity_id"] is not None
    with crm.unit_of_work("root", read_only=True) as uow:
        assert uow.customers.get(out["customer_id"]).name == "Berg Stands GmbH"
    opp = client.get(f"/sales/opportunities/{out['opportunity_id']}", headers=h["anna"]).json()
    assert opp["amount"] == "12500.50"
    _problem(client.post(f"/sales/leads/{lid}/convert", json={"new": True}, headers=h["anna"]), 409, "")


# -- credit profile and consent ----------------------------------------------------------------------

def test_credit_profile_set(api: Client) -> None:
    client, h, crm = api
    cid = _customer(crm, "Credit Co")
    r = client.patch(f"/credit/customers/{cid}/profile", json={"limit": "25000.10", "currency": "EUR", "reason": "review"},
                     headers=h["root"])
    assert r.status_code == 200, r.text
    assert "25000.10" in r.text and "25000.1," not in r.text  # money is a decimal string
    _problem(client.patch(f"/credit/customers/{cid}/profile", json={"limit": "-5"}, headers=h["root"]), 422, "limit")
    _problem(client.patch(f"/credit/customers/{cid}/profile", json={"limit": "1"}, headers=h["anna"]), 403, "credit")
    _problem(client.patch("/credit/customers/999999/profile", json={"limit": "1"}, headers=h["root"]), 404, "not found")
    assert "25000.10" in client.get(f"/credit/customers/{cid}", headers=h["root"]).text


def test_consent_per_customer(api: Client) -> None:
    client, h, crm = api
    _customer(crm, "Mail Co", email="news@mail.example", external_ref="MAIL-1")
    r = client.put("/marketing/customers/MAIL-1/consent", json={"channel": "email", "status": "opt_in",
                                                                 "at": "2026-01-05T10:00:00Z"}, headers=h["root"])
    assert r.status_code == 200, r.text
    assert r.json()["consent"] == [{"channel": "email", "status": "opt_in", "at": "2026-01-05T10:00:00+00:00", "source": "api"}]
    _problem(client.put("/marketing/customers/MAIL-1/consent", json={"channel": "email", "status": "opt_out",
                                                                     "at": "2025-01-01T00:00:00Z"}, headers=h["root"]),
             409, "newer")
    _problem(client.put("/marketing/customers/MAIL-1/consent", json={"channel": "pigeon", "status": "opt_in"},
                        headers=h["root"]), 422, "channel")
    _problem(client.put("/marketing/customers/NOPE/consent", json={"channel": "email", "status": "opt_in"},
                        headers=h["root"]), 404, "not found")
    got = client.get("/marketing/customers/MAIL-1/consent", headers=h["root"]).json()
    assert [c["status"] for c in got["consent"]] == ["opt_in"]


def test_campaign_create_and_launch(api: Client) -> None:
    client, h, crm = api
    _customer(crm, "Camp One", email="a@camp.example", country="DE")
    _customer(crm, "Camp Two", email="b@camp.example", country="FR")
    r = client.post("/marketing/segments", json={"name": "germany", "rule": 'country = "DE"'}, headers=h["root"])
    assert r.status_code == 201 and r.json()["count"] == 1
    _problem(client.post("/marketing/segments", json={"name": "bad", "rule": "x", "static": True}, headers=h["root"]),
             422, "not both")
    r = client.post("/marketing/campaigns", json={"name": "spring", "channel": "email", "segments": ["germany"],
                                                  "budget": "1000.00", "subject": "Hello", "body": "Hi"}, headers=h["root"])
    assert r.status_code == 201 and r.json()["status"] == "draft" and r.json()["budget"] == "1000.00"
    r = client.post("/marketing/campaigns/spring/launch", headers=h["root"])
    assert r.status_code == 200 and r.json()["targeted"] == 1 and r.json()["status"] == "running"
    _problem(client.post("/marketing/campaigns/spring/launch", headers=h["root"]), 409, "")
