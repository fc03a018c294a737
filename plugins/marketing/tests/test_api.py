"""The marketing routes of the HTTP API: previews, reports, responses; the same rules as the CLI."""
from __future__ import annotations

from crm_marketing import services
from crm_marketing.schemas import CampaignCreate, ConsentSet
from crm_marketing.testing import Shop
from fastapi.testclient import TestClient

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.schemas import UserCreate


def test_marketing_routes(mcrm: CRM, shop: Shop) -> None:
    ids = [shop.customer(f"M{i}", country="DE") for i in range(4)]  # before users exist (single-user mode)
    with mcrm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
        uow.users.add(UserCreate(username="vic", display_name="Vic", roles=["viewer"]))
    tokens = {}
    for name in ("root", "vic"):
        with mcrm.unit_of_work("root") as uow:
            tokens[name] = {"Authorization": f"Bearer {TokenService(uow).create(name, 't')[1]}"}
    with mcrm.unit_of_work("root") as uow:
        for i in ids:
            services.set_consent(uow, i, ConsentSet(channel="email", status="opt_in"))
        services.create_segment(uow, "de", rule='country = "DE"')
        services.launch(uow, services.create_campaign(uow, CampaignCreate(name="Web", channel="email", segments=["de"])))
    client = TestClient(create_app(mcrm), raise_server_exceptions=False)
    assert client.post("/marketing/segments/preview", json={"rule": 'country = "DE"'}).status_code == 401
    r = client.post("/marketing/segments/preview", json={"rule": 'country = "DE"', "sample": 2}, headers=tokens["vic"])
    assert r.status_code == 200 and r.json()["count"] == 4 and len(r.json()["sample"]) == 2
    bad = client.post("/marketing/segments/preview", json={"rule": "colour = 1"}, headers=tokens["vic"])
    assert bad.status_code == 422 and "unknown field" in bad.json()["detail"]
    assert client.get("/marketing/segments/de/preview", headers=tokens["vic"]).json()["count"] == 4
    assert client.get("/marketing/segments/nope/preview", headers=tokens["vic"]).status_code == 404
    denied = client.post("/marketing/campaigns/Web/responses", json={"customer": "M1", "type": "clicked"}, headers=tokens["vic"])
    assert denied.status_code == 403 and "lacks marketing.response.write" in denied.json()["detail"]
    ok = client.post("/marketing/campaigns/Web/responses", json={"customer": "M1", "type": "clicked", "external_ref": "x1"},
                     headers=tokens["root"])
    assert ok.status_code == 201 and ok.json()["created"] is True
    report = client.get("/marketing/campaigns/Web/report", headers=tokens["vic"]).json()
    assert report["targeted"] == 4 and report["responses"]["clicked"]["customers"] == 1
    assert [c["name"] for c in client.get("/marketing/campaigns", headers=tokens["vic"]).json()] == ["Web"]




def test_previews_show_only_what_the_user_may_see(mcrm: CRM, shop: Shop) -> None:
    from crmcore.api.app import ApiSettings

    with mcrm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
        uow.users.add(UserCreate(username="sam", display_name="Sam", roles=["sales"]))
    with mcrm.unit_of_work("root") as uow:
        from crmcore.schemas import CustomerCreate

        for i in range(3):
            uow.customers.create(CustomerCreate(name=f"Other {i}", country="DE", owner="root"))
        uow.customers.create(CustomerCreate(name="Own", country="DE", owner="sam"))
        token = TokenService(uow).create("sam", "t")[1]
    client = TestClient(create_app(mcrm, ApiSettings(visibility={"sales": "own"})), raise_server_exceptions=False)
    r = client.post("/marketing/segments/preview", json={"rule": 'country = "DE"'}, headers={"Authorization": f"Bearer {token}"})
    assert r.json()["count"] == 1 and r.json()["sample"][0]["name"] == "Own"
    assert shop is not None
