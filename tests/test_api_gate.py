"""The API's front door: no token means 401 before any validation, on every route of the core and
of the repository's plugins; the docs need a token unless ``[api] public_docs``, and then work
offline; a marketing response for an invisible customer reads like one for a missing customer."""
from __future__ import annotations

import re
from typing import Any

import crm_credit.plugin as credit  # the plugins' tables must be on the metadata before the test database is made
import crm_marketing.plugin as marketing
import crm_sales_automation.plugin as sales
import crm_value_analysis.plugin as value
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.app import ApiSettings
from crmcore.api.auth import TokenService
from crmcore.models import ApiToken
from crmcore.schemas import CustomerCreate, UserCreate

PLUGINS = [value, sales, credit, marketing]
GARBAGE_PATH = ("-1", "99999999999999999999999", "x" * 300, "%00")
GARBAGE_QUERY = ("-1", "abc", "1e999", "")


def tokens(crm: CRM) -> dict[str, str]:
    """root (admin), sam (sales), and a revoked token ``old``."""
    with crm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
        uow.users.add(UserCreate(username="sam", display_name="Sam", roles=["sales"]))
    out = {}
    with crm.unit_of_work("root") as uow:
        for name in ("root", "sam"):
            out[name] = TokenService(uow).create(name, "gate")[1]
        row, out["old"] = TokenService(uow).create("root", "old")
        TokenService(uow).revoke(row.id)
    return out


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def is_401(r: Any, text: str = "") -> None:
    assert r.status_code == 401, (r.request.method, r.request.url, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json") and r.headers["www-authenticate"] == "Bearer"
    assert text in r.json()["detail"] and "invalid input" not in r.text


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in spec["paths"].items() for method, op in item.items()
            if method in ("get", "post", "put", "patch", "delete")]


def garbage_requests(path: str, op: dict[str, Any]) -> list[dict[str, Any]]:
    """Requests with invalid path, query and body values (what validation would answer 422 to)."""
    queries = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
    out = []
    for i, junk in enumerate(GARBAGE_PATH):
        url = re.sub(r"\{[^}]+\}", junk, path)
        params = {q: GARBAGE_QUERY[(i + n) % len(GARBAGE_QUERY)] for n, q in enumerate(queries)}
        body: dict[str, Any] = {}
        if "requestBody" in op:
            body = ({"content": b"{not json", "headers": {"content-type": "application/json"}} if i % 2 == 0
                    else {"json": {"zzz": -1, "id": "x", "version": 9}})
        out.append({"url": url, "params": params, **body})
    return out


@pytest.fixture
def full(make_crm: Any) -> tuple[CRM, TestClient, dict[str, str]]:
    crm = make_crm(plugins=PLUGINS)
    return crm, TestClient(create_app(crm), raise_server_exceptions=False), tokens(crm)


def test_every_operation_answers_401_before_validation(full: tuple[CRM, TestClient, dict[str, str]]) -> None:
    crm, client, tok = full
    spec = client.get("/openapi.json", headers=bearer(tok["root"])).json()
    ops = operations(spec)
    assert len(ops) >= 40 and any(p.startswith("/marketing") for _, p, _ in ops) and any(p.startswith("/credit") for _, p, _ in ops)
    wrong = ({}, {"Authorization": "Basic cm9vdDpyb290"}, {"Authorization": "Bearer "}, bearer("crm_unknown"),
             bearer(tok["old"]), {"Authorization": "Bearer \u00e9\u00e9".encode("latin-1")})
    for method, path, op in ops:
        for n, req in enumerate(garbage_requests(path, op)):
            content_type = req.pop("headers", {})
            is_401(client.request(method, **req, headers={**content_type, **wrong[n % len(wrong)]}))
            is_401(client.request(method, **req, headers=content_type), "authentication required")
    with crm.unit_of_work("root", read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(ApiToken)) == 3  # nothing written by any of them


def test_the_reported_requests(full: tuple[CRM, TestClient, dict[str, str]]) -> None:
    _, client, tok = full
    is_401(client.post("/users", json={"username": ""}), "authentication required")
    is_401(client.post("/users"), "authentication required")
    is_401(client.get("/customers?limit=-1"), "authentication required")
    is_401(client.get("/customers?limit=-1", headers=bearer("crm_nope")), "invalid token")
    is_401(client.get("/customers?limit=-1", headers=bearer(tok["old"])), "revoked")
    assert client.get("/customers?limit=-1", headers=bearer(tok["root"])).status_code == 422  # with a token: validation
    is_401(client.post("/customers", content=iter([b'{"name": "x"}']), headers={"content-type": "application/json"}))
    is_401(client.get("/no/such/route"))  # deny by default, also for paths that do not exist
    assert client.get("/no/such/route", headers=bearer(tok["root"])).status_code == 404


def test_a_deactivated_user_is_refused_before_validation(full: tuple[CRM, TestClient, dict[str, str]]) -> None:
    crm, client, tok = full
    with crm.unit_of_work("root") as uow:
        uow.users.set_active("sam", False)
    is_401(client.get("/customers?limit=-1", headers=bearer(tok["sam"])), "deactivated")


def test_docs_need_a_token_by_default(full: tuple[CRM, TestClient, dict[str, str]]) -> None:
    _, client, tok = full
    for path in ("/openapi.json", "/docs", "/redoc", "/docs/assets/swagger-ui-bundle.js"):
        is_401(client.get(path), "authentication required")
    assert client.get("/openapi.json", headers=bearer(tok["sam"])).json()["info"]["title"] == "crmcore API"
    for path in ("/docs", "/redoc", "/docs/assets/swagger-ui-bundle.js"):  # not served: a browser cannot send a token
        assert client.get(path, headers=bearer(tok["sam"])).status_code == 404


def test_public_docs_work_offline(make_crm: Any) -> None:
    crm = make_crm(plugins=PLUGINS, config={"api": {"public_docs": True}})
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    assert "/customers" in client.get("/openapi.json").json()["paths"]
    for page, assets in (("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")), ("/redoc", ("redoc.standalone.js",))):
        html = client.get(page)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", html.text), "a page loads something from another host"
        for name in assets:
            assert f"/docs/assets/{name}" in html.text
            asset = client.get(f"/docs/assets/{name}")
            assert asset.status_code == 200 and len(asset.content) > 100_000
    assert client.get("/docs/assets/..%2F__init__.py").status_code == 404  # nothing outside the assets
    is_401(client.get("/customers"), "authentication required")  # only the docs are public
    is_401(client.get("/docs/x"), "authentication required")


def test_public_docs_is_a_boolean_setting(make_crm: Any) -> None:
    from pydantic import ValidationError

    assert ApiSettings().public_docs is False
    with pytest.raises(ValidationError):
        ApiSettings.model_validate({"public_docs": "maybe"})


def test_cors_preflight_is_answered_without_a_token(make_crm: Any) -> None:
    crm = make_crm(config={"api": {"cors_origins": ["https://shop.example.com"]}})
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    pre = client.options("/customers", headers={"Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST",
                                                "Access-Control-Request-Headers": "authorization"})
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://shop.example.com"
    denied = client.get("/customers", headers={"Origin": "https://shop.example.com"})
    is_401(denied)
    assert denied.headers["access-control-allow-origin"] == "https://shop.example.com"  # the browser can read the 401


def test_a_response_for_an_invisible_customer_reads_like_a_missing_one(make_crm: Any) -> None:
    from crm_marketing import services
    from crm_marketing.models import Response
    from crm_marketing.schemas import CampaignCreate, ConsentSet

    crm = make_crm(plugins=PLUGINS, config={"visibility": {"sales": "own"}})
    tok = tokens(crm)
    with crm.unit_of_work("root") as uow:
        theirs = uow.customers.create(CustomerCreate(name="Theirs", external_ref="THEIRS", country="DE", owner="root",
                                                   email="theirs@example.com"))
        mine = uow.customers.create(CustomerCreate(name="Mine", external_ref="MINE", country="DE", owner="sam",
                                                 email="mine@example.com"))
        for c in (theirs, mine):
            services.set_consent(uow, c.id, ConsentSet(channel="email", status="opt_in"))
        services.create_segment(uow, "de", rule='country = "DE"')
        services.launch(uow, services.create_campaign(uow, CampaignCreate(name="Web", channel="email", segments=["de"])))
        theirs_id = theirs.id
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    h = bearer(tok["sam"])

    def respond(ref: str, who: dict[str, str] = h) -> Any:
        return client.post("/marketing/campaigns/Web/responses", headers=who,
                           json={"customer": ref, "type": "clicked", "external_ref": f"click-{ref}"})

    for invisible, missing in (("THEIRS", "NOPE"), (f"#{theirs_id}", "#999999"), (str(theirs_id), "999999")):
        a, b = respond(invisible), respond(missing)
        assert (a.status_code, b.status_code) == (404, 404)
        assert a.json()["detail"] == f"customer {invisible!r} not found" and b.json()["detail"] == f"customer {missing!r} not found"
        assert a.json()["detail"].replace(invisible, "?") == b.json()["detail"].replace(missing, "?")
    assert respond("MINE").status_code == 201, respond("MINE").text
    assert respond("THEIRS", bearer(tok["root"])).status_code == 201  # the admin sees every customer
    with crm.unit_of_work("root", read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Response)) == 2
