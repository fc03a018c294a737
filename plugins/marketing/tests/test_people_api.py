"""Consent per person and role-addressed campaigns over HTTP: the service calls of
``crm marketing contact-consent set|unsubscribe|show`` and ``crm marketing campaign address``,
with their permissions, visibility and one-line refusals."""
from __future__ import annotations

from typing import Any

from crm_marketing import services
from crm_marketing.models import ContactConsent
from crm_marketing.schemas import ConsentSet
from crm_marketing.testing import Shop
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.schemas import ContactCreate, UserCreate


def _setup(crm: CRM, shop: Shop) -> tuple[TestClient, dict[str, dict[str, str]], dict[str, int]]:
    ids = {"ACME": shop.customer("ACME", kind="organization", country="DE")}
    with crm.unit_of_work("test") as uow:
        for ref, role in (("ANNA", "decider"), ("BEN", "user")):
            ids[ref] = uow.contacts.add(ids["ACME"], ContactCreate(name=f"Person {ref}", role=role, external_ref=ref,
                                                                   email=f"{ref.lower()}@people.example")).id
        services.set_consent(uow, ids["ACME"], ConsentSet(channel="email", status="opt_in"))
        services.create_segment(uow, "de", rule='country = "DE"')
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    with crm.unit_of_work("root") as uow:
        uow.users.add(UserCreate(username="mia", display_name="Mia", roles=["marketing"]))
        uow.users.add(UserCreate(username="sam", display_name="Sam", roles=["sales"]))
        uow.users.add(UserCreate(username="val", display_name="Val", roles=["viewer"]))
    heads = {}
    for name in ("mia", "sam", "val"):
        with crm.unit_of_work("root") as uow:
            heads[name] = {"Authorization": f"Bearer {TokenService(uow).create(name, 't')[1]}"}
    return TestClient(create_app(crm), raise_server_exceptions=False), heads, ids


def _error(r: Any, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    assert "\n" not in r.json()["detail"] and all(w in r.json()["detail"] for w in words), r.json()["detail"]


def _rows(crm: CRM) -> int:
    with crm.unit_of_work(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(ContactConsent)) or 0)


def test_contact_consent_routes(mcrm: CRM, shop: Shop) -> None:
    client, h, ids = _setup(mcrm, shop)
    shown = client.get("/marketing/contacts/ANNA/consent", headers=h["sam"])
    assert shown.status_code == 200, shown.text
    email = {r["channel"]: r for r in shown.json()["consent"]}["email"]
    assert (email["status"], email["allowed"]) == (None, True)  # inherits the company's opt-in
    _error(client.put("/marketing/contacts/ANNA/consent", json={"channel": "email", "status": "maybe"}, headers=h["sam"]),
           422, "status")
    _error(client.put("/marketing/contacts/ANNA/consent", json={"channel": "pigeon", "status": "opt_in"}, headers=h["sam"]),
           422, "channel")
    _error(client.put("/marketing/contacts/NOBODY/consent", json={"channel": "email", "status": "opt_in"}, headers=h["sam"]),
           404, "NOBODY")
    _error(client.put("/marketing/contacts/ANNA/consent", json={"channel": "email", "status": "opt_in"}, headers=h["val"]),
           403, "marketing.consent.write")
    assert _rows(mcrm) == 0
    opted = client.put("/marketing/contacts/ANNA/consent", json={"channel": "sms", "status": "opt_in"}, headers=h["sam"])
    assert opted.status_code == 200, opted.text
    sms = {r["channel"]: r for r in opted.json()["consent"]}["sms"]
    assert (sms["status"], sms["source"], sms["allowed"]) == ("opt_in", "api", True)
    _error(client.put("/marketing/contacts/ANNA/consent", json={"channel": "sms", "status": "opt_out",
                                                                 "at": "2001-01-01T00:00:00Z"}, headers=h["sam"]),
           409, "newer")
    gone = client.post(f"/marketing/contacts/%23{ids['BEN']}/unsubscribe", json={"channel": "email"}, headers=h["sam"])
    assert gone.status_code == 200, gone.text
    email = {r["channel"]: r for r in gone.json()["consent"]}["email"]
    assert (email["status"], email["source"], email["allowed"]) == ("unsubscribed", "unsubscribe", False)
    _error(client.post("/marketing/contacts/BEN/unsubscribe", json={"channel": "email", "why": "x"}, headers=h["sam"]),
           422, "why")
    assert _rows(mcrm) == 2
    with mcrm.unit_of_work(read_only=True) as uow:  # the company's statement is untouched
        assert services.consents(uow, ids["ACME"])[0].status == "opt_in"


def test_campaign_address_route(mcrm: CRM, shop: Shop) -> None:
    client, h, _ = _setup(mcrm, shop)
    created = client.post("/marketing/campaigns", json={"name": "Fair", "channel": "email", "segments": ["de"]}, headers=h["mia"])
    assert created.status_code == 201, created.text
    _error(client.post("/marketing/campaigns/Fair/address", json={"to_roles": ["pope"]}, headers=h["mia"]), 422, "pope", "decider")
    _error(client.post("/marketing/campaigns/Fair/address", json={"to_roles": ["decider"]}, headers=h["sam"]), 403,
           "marketing.campaign.write")
    _error(client.post("/marketing/campaigns/Nope/address", json={"to_roles": ["decider"]}, headers=h["mia"]), 404, "Nope")
    ok = client.post("/marketing/campaigns/Fair/address", json={"to_roles": ["user", "decider"]}, headers=h["mia"])
    assert ok.status_code == 200 and ok.json() == {"name": "Fair", "to_roles": ["decider", "user"]}, ok.text
    before = client.get("/marketing/campaigns/Fair/audience", headers=h["sam"])
    assert before.status_code == 200 and (before.json()["launched"], before.json()["total"]) == (False, 0), before.text
    assert client.post("/marketing/campaigns/Fair/launch", headers=h["mia"]).status_code == 200
    _error(client.post("/marketing/campaigns/Fair/address", json={"to_roles": []}, headers=h["mia"]), 409, "fixed at launch")
    seen = client.get("/marketing/campaigns/Fair/audience", headers=h["sam"]).json()
    assert seen["launched"] and seen["to_roles"] == ["decider", "user"] and seen["total"] == 2
    assert sorted(r["contact_ref"] for r in seen["rows"]) == ["ANNA", "BEN"]  # the people, each with their consent
    only = client.get("/marketing/campaigns/Fair/audience?group=suppressed", headers=h["sam"]).json()
    assert only["counts"] == seen["counts"] and all(r["grp"] == "suppressed" for r in only["rows"])
    _error(client.get("/marketing/campaigns/Fair/audience?group=vip", headers=h["sam"]), 422, "group")
    _error(client.get("/marketing/campaigns/Fair/audience?limit=0", headers=h["sam"]), 422, "limit")
    _error(client.get("/marketing/campaigns/Nope/audience", headers=h["sam"]), 404, "Nope")


def test_campaign_address_back_to_the_company(mcrm: CRM, shop: Shop) -> None:
    client, h, _ = _setup(mcrm, shop)
    assert client.post("/marketing/campaigns", json={"name": "Fair", "channel": "email", "segments": ["de"],
                                                     "to_roles": ["decider"]}, headers=h["mia"]).status_code == 201
    back = client.post("/marketing/campaigns/Fair/address", json={"to_roles": []}, headers=h["mia"])
    assert back.json() == {"name": "Fair", "to_roles": []}
    with mcrm.unit_of_work(read_only=True) as uow:
        assert services.get_campaign(uow, "Fair").to_roles is None
