"""The core reads that had only a command now have a route too, and each face gives the same answer:

- ``GET /interactions`` = ``crm interaction list --json`` (no ``--customer``) = ``uow.interactions.list()``
- ``GET /accounts`` = ``crm account list --json`` (no ``--customer``) = ``uow.accounts.list()``
- ``GET /audit`` = ``crm audit --json`` = ``uow.audit.list()``: ``user.manage`` by every face
- ``GET /webhooks`` = ``crm webhooks list --json`` (``user.manage``, like adding or removing one)

for an admin and for an "own" user (who sees only their customers' interactions and accounts).
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.permissions import PermissionDenied
from crmcore.schemas import AccountCreate, AccountRead, CustomerCreate, InteractionCreate, InteractionRead, UserCreate
from crmcore.services._base import jsonable
from crmcore.webhooks import subscriptions

OWNERS = ("anna", "bob")
VISIBILITY = {"sales": "own"}


def normal(value: Any) -> Any:
    """A JSON document with its timestamps parsed (the API writes UTC as ``Z``, the CLI as ``+00:00``)."""
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normal(v) for v in value]
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


class World:
    """root (admin); anna and bob (sales, "own") own two customers each, every one with two
    interactions and an account; every change is in the audit log."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        with crm.unit_of_work("setup") as uow:
            uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
            for name in OWNERS:
                uow.users.add(UserCreate(username=name, display_name=name.title(), roles=["sales"]))
        self.customers: dict[str, set[int]] = {name: set() for name in OWNERS}
        with crm.unit_of_work("root") as uow:
            for owner in OWNERS:
                for i in range(2):
                    cid = uow.customers.create(CustomerCreate(name=f"{owner} shop {i}", owner=owner, external_ref=f"{owner}{i}")).id
                    self.customers[owner].add(cid)
                    for n in range(2):
                        uow.interactions.log(cid, InteractionCreate(channel="phone", kind="inquiry", subject=f"call {n}"))
                    uow.accounts.open(cid, AccountCreate(currency="EUR"))
            self.headers = {n: {"Authorization": f"Bearer {TokenService(uow).create(n, 't')[1]}"} for n in ("root", *OWNERS)}
        self.client = TestClient(create_app(crm), raise_server_exceptions=False)

    def get(self, user: str, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.headers[user])


@pytest.fixture
def world(make_crm: Callable[..., CRM], tmp_path: Any) -> World:
    (tmp_path / "crm.toml").write_text('[visibility]\nsales = "own"\n')  # the cli fixture runs in tmp_path
    return World(make_crm(config={"visibility": VISIBILITY}))


def cli_json(cli: Callable[..., Any], user: str, *args: str) -> Any:
    res = cli(*args, "--json", user=user)
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def api_json(world: World, user: str, path: str, **params: Any) -> Any:
    res = world.get(user, path, **params)
    assert res.status_code == 200, res.text
    return res.json()


@pytest.mark.parametrize("user", ["root", "anna"])
def test_every_interaction_you_may_see_by_every_face(world: World, cli: Callable[..., Any], user: str) -> None:
    by_cli = cli_json(cli, user, "interaction", "list", "--limit", "100")
    by_api = api_json(world, user, "/interactions", limit=100)
    with world.crm.unit_of_work(user, read_only=True) as uow:
        by_python = [InteractionRead.model_validate(x).model_dump() for x in uow.interactions.list(limit=100)]
    assert normal(by_api) == normal(by_cli) == normal(json.loads(json.dumps(jsonable(by_python))))
    seen = {x["customer_id"] for x in by_api}
    assert seen == (world.customers["anna"] if user == "anna" else world.customers["anna"] | world.customers["bob"])
    assert len(by_api) == 2 * len(seen)
    assert len(api_json(world, user, "/interactions", limit=1)) == 1 == len(cli_json(cli, user, "interaction", "list", "--limit", "1"))


@pytest.mark.parametrize("user", ["root", "anna"])
def test_every_account_you_may_see_by_every_face(world: World, cli: Callable[..., Any], user: str) -> None:
    by_cli = cli_json(cli, user, "account", "list")
    by_api = api_json(world, user, "/accounts")
    with world.crm.unit_of_work(user, read_only=True) as uow:
        by_python = [AccountRead.model_validate(a).model_dump() for a in uow.accounts.list()]
    assert normal(by_api) == normal(by_cli) == normal(json.loads(json.dumps(jsonable(by_python))))
    expected = world.customers["anna"] if user == "anna" else world.customers["anna"] | world.customers["bob"]
    assert sorted(a["customer_id"] for a in by_api) == sorted(expected)
    assert all(Decimal(a["balance"]) == 0 for a in by_api)


def test_the_audit_log_is_an_admins_read_by_every_face(world: World, cli: Callable[..., Any]) -> None:
    by_cli = cli_json(cli, "root", "audit", "--limit", "200")
    by_api = api_json(world, "root", "/audit", limit=200)
    assert normal(by_api) == normal(by_cli)
    assert {e["entity"] for e in by_api} >= {"customer", "interaction", "account"}
    one = api_json(world, "root", "/audit", entity="customer", entity_id=str(min(world.customers["bob"])))
    assert one == [e for e in by_api if e["entity"] == "customer" and e["id"] == str(min(world.customers["bob"]))] != []
    page = api_json(world, "root", "/audit", limit=3)
    assert [e["at"] for e in page] == [e["at"] for e in by_api[:3]]
    # anyone else: one line and exit 1, 403 with the same words, PermissionDenied in Python
    res = cli("audit", "--json", user="anna")
    assert res.exit_code == 1 and res.output.strip() == "error: user anna lacks user.manage"
    denied = world.get("anna", "/audit")
    assert denied.status_code == 403 and denied.json()["detail"] == "user anna lacks user.manage"
    with pytest.raises(PermissionDenied, match=r"^user anna lacks user\.manage$"), world.crm.unit_of_work("anna", read_only=True) as uow:
        uow.audit.list()


def test_webhook_subscriptions_by_both_faces(world: World, cli: Callable[..., Any]) -> None:
    with world.crm.unit_of_work("root") as uow:
        subscriptions.add(uow, "https://93.184.216.34/hooks/crm", ["customer.created"], "s" * 16)
        gone, _ = subscriptions.add(uow, "https://93.184.216.34/hooks/old", ["*"])
        subscriptions.remove(uow, gone.id)
    by_cli = cli_json(cli, "root", "webhooks", "list")
    by_api = api_json(world, "root", "/webhooks")
    assert by_api == by_cli
    assert [(s["url"], s["active"]) for s in by_api["subscriptions"]] == [
        ("https://93.184.216.34/hooks/crm", True), ("https://93.184.216.34/hooks/old", False)]
    assert "secret" not in json.dumps(by_api)
    denied = world.get("anna", "/webhooks")
    assert denied.status_code == 403 and denied.json()["detail"] == "user anna lacks user.manage"


@pytest.mark.parametrize(("path", "params"), [("/interactions", {"limit": 0}), ("/interactions", {"limit": "x"}),
                                              ("/audit", {"limit": 0}), ("/audit", {"before": 0}),
                                              ("/audit", {"entity": ""}), ("/audit", {"actor": "a" * 255})])
def test_bad_query_values_are_422(world: World, path: str, params: dict[str, Any]) -> None:
    res = world.get("root", path, **params)
    assert res.status_code == 422, res.text
    assert res.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("path", ["/interactions", "/accounts", "/audit", "/webhooks"])
def test_the_new_reads_need_a_token(world: World, path: str) -> None:
    res = world.client.get(path)
    assert res.status_code == 401


def test_the_audit_log_in_single_user_mode(make_crm: Callable[..., CRM], cli: Callable[..., Any]) -> None:
    crm = make_crm()
    with crm.unit_of_work("someone") as uow:
        uow.customers.create(CustomerCreate(name="Solo"))
    res = cli("audit", "--json", user="whoever")
    assert res.exit_code == 0, res.output
    assert [(e["actor"], e["action"], e["entity"]) for e in json.loads(res.output)] == [("someone", "create", "customer")]
