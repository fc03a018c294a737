"""The HTTP API through an HTTP test client: auth, permissions, visibility, mass assignment, ETags,
idempotent retries, vetoes, problem details, pagination."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmcore import CRM, Veto, hookimpl
from crmcore.api import create_app
from crmcore.api.app import ApiSettings
from crmcore.api.auth import TokenService
from crmcore.models import ApiToken, Customer, Transaction
from crmcore.schemas import UserCreate


def users(crm: CRM) -> dict[str, str]:
    """admin, sales (two), viewer; a token each."""
    tokens = {}
    with crm.unit_of_work("setup") as uow:
        for name, role in (("root", "admin"), ("anna", "sales"), ("bob", "sales"), ("vic", "viewer")):
            uow.users.add(UserCreate(username=name, display_name=name.title(), roles=[role]))
    for name in ("root", "anna", "bob", "vic"):
        with crm.unit_of_work("root") as uow:
            tokens[name] = TokenService(uow).create(name, "test")[1]
    return tokens


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(crm: CRM) -> tuple[TestClient, dict[str, str]]:
    return TestClient(create_app(crm), raise_server_exceptions=False), users(crm)


def count(crm: CRM, model: Any = Customer) -> int:
    with crm.unit_of_work("root", read_only=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(model)) or 0


def is_problem(r: Any, status: int, text: str = "") -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and text in body["detail"] and "Traceback" not in r.text


def test_deny_by_default(api: tuple[TestClient, dict[str, str]], crm: CRM) -> None:
    client, tokens = api
    is_problem(client.get("/customers"), 401, "authentication required")
    is_problem(client.get("/customers", headers={"Authorization": "Basic abc"}), 401, "Bearer")
    is_problem(client.get("/customers", headers=auth("crm_nope")), 401, "invalid token")
    with crm.unit_of_work("root") as uow:
        tid = uow.session.scalar(select(ApiToken.id).where(ApiToken.prefix == tokens["vic"][:10]))
        TokenService(uow).revoke(tid)
    is_problem(client.get("/customers", headers=auth(tokens["vic"])), 401, "revoked")
    with crm.unit_of_work("root") as uow:
        row, expired = TokenService(uow).create("anna", "short", expires_days=1)
        row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    is_problem(client.get("/customers", headers=auth(expired)), 401, "expired")


def test_token_is_stored_as_a_hash_only(api: tuple[TestClient, dict[str, str]], crm: CRM) -> None:
    _, tokens = api
    with crm.unit_of_work("root", read_only=True) as uow:
        stored = [t.token_hash for t in uow.session.scalars(select(ApiToken))]
    assert all(tok not in stored and len(h) == 64 for tok in tokens.values() for h in stored)


def test_customer_lifecycle_with_etags(api: tuple[TestClient, dict[str, str]], crm: CRM) -> None:
    client, tokens = api
    h = auth(tokens["anna"])
    r = client.post("/customers", json={"name": "Acme", "email": "info@acme.example.com", "country": "DE"}, headers=h)
    assert r.status_code == 201 and r.headers["etag"] == '"1"' and r.headers["location"] == f"/customers/{r.json()['id']}"
    cid = r.json()["id"]
    view = client.get(f"/customers/{cid}", headers=h)
    assert view.status_code == 200 and view.json()["customer"]["name"] == "Acme" and view.headers["etag"] == '"1"'
    is_problem(client.patch(f"/customers/{cid}", json={"region": "Bavaria"}, headers=h), 428, "If-Match is required")
    ok = client.patch(f"/customers/{cid}", json={"region": "Bavaria"}, headers={**h, "If-Match": '"1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == '"2"' and ok.json()["region"] == "Bavaria"
    is_problem(client.patch(f"/customers/{cid}", json={"region": "Hesse"}, headers={**h, "If-Match": '"1"'}),
               412, "changed by someone else")
    is_problem(client.patch(f"/customers/{cid}", json={"region": "Hesse"}, headers={**h, "If-Match": "garbage"}), 412)
    with crm.unit_of_work("root", read_only=True) as uow:
        assert uow.customers.get(cid).region == "Bavaria"


@pytest.mark.parametrize("field, value", [("id", 99), ("version", 7), ("created_at", "2020-01-01T00:00:00Z"),
                                          ("merged_into_id", 1), ("archived", True), ("balance", "5")])
def test_mass_assignment_is_refused(api: tuple[TestClient, dict[str, str]], crm: CRM, field: str, value: Any) -> None:
    client, tokens = api
    r = client.post("/customers", json={"name": "Sneaky", field: value}, headers=auth(tokens["anna"]))
    is_problem(r, 422, field)
    assert count(crm) == 0


def test_permissions_and_visibility(crm: CRM) -> None:
    tokens = users(crm)
    client = TestClient(create_app(crm, ApiSettings(visibility={"sales": "own"})), raise_server_exceptions=False)
    is_problem(client.post("/customers", json={"name": "X"}, headers=auth(tokens["vic"])), 403, "user vic lacks customer.write")
    is_problem(client.get("/users", headers=auth(tokens["anna"])), 403, "lacks user.manage")
    assert client.get("/users", headers=auth(tokens["root"])).status_code == 200
    mine = client.post("/customers", json={"name": "Mine", "owner": "anna"}, headers=auth(tokens["anna"])).json()["id"]
    theirs = client.post("/customers", json={"name": "Theirs", "owner": "bob"}, headers=auth(tokens["bob"])).json()["id"]
    assert client.get(f"/customers/{mine}", headers=auth(tokens["anna"])).status_code == 200
    hidden = client.get(f"/customers/{theirs}", headers=auth(tokens["anna"]))
    missing = client.get("/customers/999999", headers=auth(tokens["anna"]))
    is_problem(hidden, 404)
    assert hidden.json()["detail"].replace(str(theirs), "N") == missing.json()["detail"].replace("999999", "N")
    listed = [c["id"] for c in client.get("/customers", headers=auth(tokens["anna"])).json()["items"]]
    assert listed == [mine]
    assert sorted(c["id"] for c in client.get("/customers", headers=auth(tokens["root"])).json()["items"]) == [mine, theirs]


def test_idempotent_retry_writes_once(api: tuple[TestClient, dict[str, str]], crm: CRM) -> None:
    client, tokens = api
    h = {**auth(tokens["anna"]), "Idempotency-Key": "order-42"}
    first = client.post("/customers", json={"name": "Once"}, headers=h)
    again = client.post("/customers", json={"name": "Once"}, headers=h)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert again.headers.get("idempotent-replayed") == "true" and count(crm) == 1
    is_problem(client.post("/customers", json={"name": "Other"}, headers=h), 422, "different request")
    assert count(crm) == 1


def test_a_veto_returns_409_and_writes_nothing(crm_url: str, make_crm: Callable[..., CRM]) -> None:
    class Hold:
        @staticmethod
        @hookimpl
        def crm_before_transaction_post(uow: Any, account: Any, entry: Any) -> None:
            if entry.amount > 1000:
                raise Veto("credit limit exceeded")

    crm = make_crm(plugins=[("hold", Hold)])
    tokens = users(crm)
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    h = auth(tokens["root"])
    cid = client.post("/customers", json={"name": "Big"}, headers=h).json()["id"]
    r = client.post(f"/customers/{cid}/transactions", json={"kind": "invoice", "amount": "5000", "reference": "INV-1"}, headers=h)
    is_problem(r, 409, "credit limit exceeded")
    assert count(crm, Transaction) == 0
    ok = client.post(f"/customers/{cid}/transactions", json={"kind": "invoice", "amount": "500", "reference": "INV-2"}, headers=h)
    assert ok.status_code == 201
    same = client.post(f"/customers/{cid}/transactions", json={"kind": "invoice", "amount": "500", "reference": "INV-2"}, headers=h)
    assert same.status_code == 200 and same.json()["id"] == ok.json()["id"]
    account = client.get(f"/customers/{cid}/accounts", headers=h).json()[0]
    st = client.get(f"/accounts/{account['id']}/statement", headers=h).json()
    assert st["closing_balance"] in ("500.00", "500") and len(st["lines"]) == 1


def test_contacts_interactions_archive_merge(api: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = api
    h = auth(tokens["root"])
    a = client.post("/customers", json={"name": "A GmbH"}, headers=h).json()["id"]
    b = client.post("/customers", json={"name": "A G.m.b.H."}, headers=h).json()["id"]
    assert client.post(f"/customers/{a}/contacts", json={"name": "Jana", "role": "decider"}, headers=h).status_code == 201
    assert client.post(f"/customers/{b}/interactions", json={"channel": "phone", "subject": "call"}, headers=h).status_code == 201
    assert len(client.get(f"/customers/{b}/interactions", headers=h).json()) == 1
    merged = client.post(f"/customers/{b}/merge", json={"into": a}, headers=h)
    assert merged.status_code == 200 and merged.json()["into"] == a
    assert len(client.get(f"/customers/{a}/interactions", headers=h).json()) == 1
    assert client.post(f"/customers/{a}/archive", headers=h).json()["archived"] is True


def test_keyset_pagination_and_limits(api: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = api
    h = auth(tokens["root"])
    ids = [client.post("/customers", json={"name": f"C{i}"}, headers=h).json()["id"] for i in range(7)]
    seen, after = [], 0
    while True:
        page = client.get(f"/customers?limit=3&after={after}", headers=h).json()
        seen += [c["id"] for c in page["items"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert seen == ids
    is_problem(client.get("/customers?limit=0", headers=h), 422, "limit")
    is_problem(client.get("/customers/99999999999999999999999", headers=h), 422)
    is_problem(client.post("/customers", content=b"x" * 2_000_000, headers={**h, "content-type": "application/json"}), 413)
    is_problem(client.post("/customers", content=b"{not json", headers={**h, "content-type": "application/json"}), 422)


def test_openapi_is_served(api: tuple[TestClient, dict[str, str]]) -> None:
    """To a token holder (``[api] public_docs`` is off by default: see test_api_gate.py)."""
    client, tokens = api
    spec = client.get("/openapi.json", headers=auth(tokens["vic"])).json()
    assert "/customers" in spec["paths"] and "/customers/{customer_id}/transactions" in spec["paths"]
    is_problem(client.get("/openapi.json"), 401, "authentication required")


def test_writes_the_role_may_not_make(api: tuple[TestClient, dict[str, str]], crm: CRM) -> None:
    client, tokens = api
    h = auth(tokens["anna"])
    is_problem(client.post("/customers", json={"name": "Gift", "owner": "root"}, headers=h), 403, "lacks customer.reassign")
    mine = client.post("/customers", json={"name": "Mine", "owner": "anna"}, headers=h)
    assert mine.status_code == 201
    cid = mine.json()["id"]
    is_problem(client.patch(f"/customers/{cid}", json={"owner": "bob"}, headers={**h, "If-Match": '"1"'}), 403, "customer.reassign")
    is_problem(client.patch(f"/customers/{cid}", json={"version": 9, "region": "X"}, headers={**h, "If-Match": '"1"'}),
               422, "version")
    assert count(crm) == 1


def test_tag_filter_pages_exactly(api: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = api
    h = auth(tokens["root"])
    tagged = [client.post("/customers", json={"name": f"T{i}", "tags": ["x"] if i >= 5 else []}, headers=h).json()["id"]
              for i in range(10)]
    seen, after = [], 0
    while True:
        page = client.get(f"/customers?tag=x&limit=2&after={after}", headers=h).json()
        seen += [c["id"] for c in page["items"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert seen == tagged[5:]


def test_a_body_without_length_is_refused(api: tuple[TestClient, dict[str, str]], crm: CRM) -> None:
    client, tokens = api

    def chunks() -> Any:
        yield b'{"name": '
        yield b'"Chunked"}'

    r = client.post("/customers", content=chunks(), headers={**auth(tokens["root"]), "content-type": "application/json"})
    is_problem(r, 411, "Content-Length")
    assert count(crm) == 0
