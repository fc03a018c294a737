"""Visibility and reads in the services: an "own" user sees the same customers by every face
(Python API, CLI, HTTP API), never another owner's, and "not found" is one answer for missing
and invisible. Also the one customer search (name, email, reference, tags, owner, country,
stage, keyset pages) and the 360° profile service."""
from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.errors import ConfigError, InvalidInput, NotFound
from crmcore.schemas import (
    ContactCreate,
    CustomerCreate,
    CustomerQuery,
    CustomerUpdate,
    InteractionCreate,
    TransactionCreate,
    UserCreate,
)
from crmcore.visibility import visibility_modes

CONFIG = {"visibility": {"sales": "own"}}
USERS = (("root", ["admin"]), ("anna", ["sales"]), ("bob", ["sales"]), ("vic", ["viewer"]), ("mia", ["sales", "manager"]))


class World:
    """Anna's and Bob's customers (each with a contact, an interaction, an invoice) and an unowned one."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        with crm.unit_of_work("setup") as uow:
            for name, roles in USERS:
                uow.users.add(UserCreate(username=name, display_name=name.title(), roles=roles))
        with crm.unit_of_work("root") as uow:
            self.ids = {}
            for key, owner, name, email, country in (("A-1", "anna", "Änna Straße GmbH", "Info@Anna.example", "DE"),
                                                     ("B-1", "bob", "Bob Builders", "bob@builders.example", "FR"),
                                                     ("F-1", None, "Free Agents", None, "DE")):
                c = uow.customers.create(CustomerCreate(name=name, external_ref=key, owner=owner, email=email,
                                                        country=country, tags=["vip"] if owner else []))
                uow.contacts.add(c.id, ContactCreate(name=f"Contact of {name}"))
                uow.interactions.log(c.id, InteractionCreate(channel="email", subject=f"hello {key}"))
                uow.accounts.post(c.id, TransactionCreate(kind="invoice", amount=Decimal("100.00"), reference=f"INV-{key}"))
                self.ids[key] = c.id
            self.accounts = {k: uow.accounts.list(v)[0].id for k, v in self.ids.items()}
            self.tokens = {n: TokenService(uow).create(n, "t")[1] for n, _ in USERS}

    def client(self) -> TestClient:
        return TestClient(create_app(self.crm), raise_server_exceptions=False)

    def get(self, user: str, path: str, **params: Any) -> Any:
        return self.client().get(path, params=params, headers={"Authorization": f"Bearer {self.tokens[user]}"})


@pytest.fixture
def world(make_crm: Callable[..., CRM]) -> World:
    return World(make_crm(config=CONFIG))


@pytest.fixture
def wcli(world: World, cli: Callable[..., Any], tmp_path: Path) -> Callable[..., Any]:
    """``crm`` with the world's crm.toml (the ``cli`` fixture runs in tmp_path)."""
    (tmp_path / "crm.toml").write_text('[visibility]\nsales = "own"\n')
    return cli


def names(uow: Any, **q: Any) -> list[str]:
    return [c.external_ref for c in uow.customers.search(CustomerQuery(**q)).items]


# -- configuration ---------------------------------------------------------------------------------

def test_modes_merge_the_old_api_table_and_refuse_bad_values() -> None:
    assert visibility_modes({"api": {"visibility": {"sales": "own", "viewer": "own"}}, "visibility": {"viewer": "all"}}) \
        == {"sales": "own", "viewer": "all"}
    with pytest.raises(ConfigError, match=r"\[visibility\]: sales = 'mine'"):
        visibility_modes({"visibility": {"sales": "mine"}})
    with pytest.raises(ConfigError, match="must be a table"):
        visibility_modes({"visibility": "own"})


def test_who_sees_what(world: World, make_crm: Callable[..., CRM]) -> None:
    for user, own in (("anna", True), ("root", False), ("vic", False), ("mia", False)):
        with world.crm.unit_of_work(user, read_only=True) as uow:
            assert uow.visibility.own_only is own, user
    # the old [api] visibility table alone is still read, for every face
    old = make_crm(config={"api": {"visibility": {"sales": "own"}}})
    with old.unit_of_work("anna", read_only=True) as uow:
        assert uow.visibility.own_only and names(uow) == ["A-1"]


def test_single_user_mode_sees_everything(make_crm: Callable[..., CRM]) -> None:
    crm = make_crm(config=CONFIG)
    with crm.unit_of_work("anyone") as uow:
        uow.customers.create(CustomerCreate(name="X", external_ref="X"))
    with crm.unit_of_work("anyone", read_only=True) as uow:
        assert not uow.visibility.own_only and uow.visibility.user_id is None and names(uow) == ["X"]


# -- Python API ---------------------------------------------------------------------------------------

def test_python_api_reads_apply_visibility(world: World) -> None:
    ids = world.ids
    with world.crm.unit_of_work("anna", read_only=True) as uow:
        assert names(uow) == ["A-1"] and uow.customers.visible("A-1").id == ids["A-1"]
        for key in (ids["B-1"], "B-1", f"#{ids['B-1']}", ids["F-1"]):
            with pytest.raises(NotFound):
                uow.customers.visible(key)
        with pytest.raises(NotFound) as hidden:
            uow.customers.visible("B-1")
        with pytest.raises(NotFound) as missing:
            uow.customers.visible("NOPE")
        assert str(hidden.value) == "customer 'B-1' not found" and str(missing.value) == "customer 'NOPE' not found"
        with pytest.raises(NotFound, match=f"customer {ids['B-1']} not found"):
            uow.contacts.list(ids["B-1"])
        with pytest.raises(NotFound):
            uow.interactions.list(ids["B-1"])
        with pytest.raises(NotFound):
            uow.accounts.list(ids["B-1"])
        with pytest.raises(NotFound, match=f"account {world.accounts['B-1']} not found"):
            uow.accounts.statement(world.accounts["B-1"])
        with pytest.raises(NotFound):
            uow.profiles.get("B-1")
        assert {x.customer_id for x in uow.interactions.list()} == {ids["A-1"]}
        assert {a.customer_id for a in uow.accounts.list()} == {ids["A-1"]}
        assert uow.customers.list() == [uow.customers.get(ids["A-1"])]
        assert uow.profiles.get("A-1")["customer"]["external_ref"] == "A-1"
    with world.crm.unit_of_work("root", read_only=True) as uow:
        assert names(uow) == ["A-1", "B-1", "F-1"] and uow.profiles.get("B-1")["customer"]["id"] == ids["B-1"]


def test_an_own_user_cannot_write_through_another_owners_customer(world: World, wcli: Callable[..., Any]) -> None:
    with world.crm.unit_of_work("anna") as uow, pytest.raises(NotFound):
        uow.customers.resolve("B-1")
    res = wcli("interaction", "log", "B-1", "--channel", "email", "--subject", "sneaky", user="anna")
    assert res.exit_code == 1 and res.output.strip() == "error: customer 'B-1' not found"


def test_a_reference_held_by_an_invisible_customer_does_not_exist_for_the_user(world: World) -> None:
    with world.crm.unit_of_work("root") as uow:
        uow.customers.update(world.ids["B-1"], CustomerUpdate(external_ref=str(world.ids["A-1"])))
    with world.crm.unit_of_work("anna", read_only=True) as uow:  # the reference wins only where it can be seen
        assert uow.customers.visible(str(world.ids["A-1"])).external_ref == "A-1"
    with world.crm.unit_of_work("root", read_only=True) as uow:
        assert uow.customers.visible(str(world.ids["A-1"])).id == world.ids["B-1"]
        assert uow.customers.visible(f"#{world.ids['A-1']}").id == world.ids["A-1"]


def test_reads_need_customer_read(make_crm: Callable[..., CRM]) -> None:
    crm = make_crm(config={"roles": {"viewer": {"permissions": ["interaction.write"]}}})
    with crm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
        uow.users.add(UserCreate(username="cleo", display_name="Cleo", roles=["viewer"]))
    with crm.unit_of_work("root") as uow:
        uow.customers.create(CustomerCreate(name="X", external_ref="X"))
    from crmcore.permissions import PermissionDenied

    for read in (lambda u: u.customers.search(CustomerQuery()), lambda u: u.customers.visible("NOPE"),
                 lambda u: u.profiles.get("X"), lambda u: u.interactions.list()):
        with crm.unit_of_work("cleo", read_only=True) as uow, pytest.raises(PermissionDenied, match="customer.read"):
            read(uow)


# -- every face gives the same answer ---------------------------------------------------------------

def test_cli_http_and_python_agree_for_an_own_user(world: World, wcli: Callable[..., Any]) -> None:
    ids = world.ids
    with world.crm.unit_of_work("anna", read_only=True) as uow:
        python = [c.id for c in uow.customers.search(CustomerQuery()).items]
    cli = [c["id"] for c in json.loads(wcli("customer", "list", "--json", user="anna").output)]
    http = [c["id"] for c in world.get("anna", "/customers").json()["items"]]
    assert python == cli == http == [ids["A-1"]]
    # the 360° view, by each face
    shown = json.loads(wcli("customer", "show", "A-1", "--json", user="anna").output)
    assert shown == world.get("anna", f"/customers/{ids['A-1']}").json()
    # invisible: exit 1 / 404, the same words as a missing customer
    for args in (("customer", "show", "B-1"), ("contact", "list", "B-1"), ("interaction", "list", "--customer", "B-1"),
                 ("account", "list", "--customer", "B-1")):
        res = wcli(*args, user="anna")
        assert res.exit_code == 1 and res.output.strip() == "error: customer 'B-1' not found", args
    res = wcli("account", "statement", str(world.accounts["B-1"]), user="anna")
    assert res.exit_code == 1 and res.output.strip() == f"error: account {world.accounts['B-1']} not found"
    assert [x["customer_id"] for x in json.loads(wcli("interaction", "list", "--json", user="anna").output)] == [ids["A-1"]]
    assert [x["customer_id"] for x in json.loads(wcli("account", "list", "--json", user="anna").output)] == [ids["A-1"]]
    hidden, missing = world.get("anna", f"/customers/{ids['B-1']}"), world.get("anna", "/customers/999999")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace(str(ids["B-1"]), "N") == missing.json()["detail"].replace("999999", "N")
    for path in (f"/customers/{ids['B-1']}/contacts", f"/customers/{ids['B-1']}/interactions",
                 f"/customers/{ids['B-1']}/accounts", f"/accounts/{world.accounts['B-1']}/statement"):
        assert world.get("anna", path).status_code == 404, path
    assert world.get("anna", "/customers", owner="bob").json() == {"items": [], "next_after": None}
    assert len(world.get("root", "/customers").json()["items"]) == 3
    assert len(json.loads(wcli("customer", "list", "--json", user="mia").output)) == 3


# -- the one search --------------------------------------------------------------------------------------

def test_search_matches_name_email_and_reference_case_insensitively(world: World) -> None:
    with world.crm.unit_of_work("root", read_only=True) as uow:
        assert names(uow, search="STRASSE") == ["A-1"]  # folded: ß matches ss, case ignored
        assert names(uow, search="anna.EXAMPLE") == ["A-1"]  # email
        assert names(uow, search="b-1") == ["B-1"]  # reference, any case
        assert names(uow, search="-1") == ["A-1", "B-1", "F-1"]  # part of a reference
        assert names(uow, search="%") == [] and names(uow, search="_") == []  # no wildcards
        assert names(uow, tag="VIP") == ["A-1", "B-1"]
        assert names(uow, owner="bob") == ["B-1"] and names(uow, country="de") == ["A-1", "F-1"]
        assert names(uow, stage="active") == [] and names(uow, stage="prospect") == ["A-1", "B-1", "F-1"]
        with pytest.raises(InvalidInput, match="owner: no user 'zed'"):
            uow.customers.search(CustomerQuery(owner="zed"))


def test_keyset_pages_and_archived(world: World) -> None:
    with world.crm.unit_of_work("root") as uow:
        uow.customers.archive(world.ids["F-1"])
    with world.crm.unit_of_work("root", read_only=True) as uow:
        first = uow.customers.search(CustomerQuery(limit=1))
        second = uow.customers.search(CustomerQuery(limit=1, after=first.next_after))
        assert [c.external_ref for c in first.items + second.items] == ["A-1", "B-1"] and second.next_after is None
        assert names(uow, archived=True) == ["A-1", "B-1", "F-1"]
    page = world.get("root", "/customers", limit=1, search="-1", country="FR", tag="vip", owner="bob", stage="prospect").json()
    assert [c["external_ref"] for c in page["items"]] == ["B-1"] and page["next_after"] is None
    two = world.get("root", "/customers", limit=1).json()
    assert two["next_after"] == world.ids["A-1"]
    assert [c["external_ref"] for c in world.get("root", "/customers", after=two["next_after"]).json()["items"]] == ["B-1"]


@pytest.mark.parametrize(("params", "detail"), [
    ({"owner": "zed"}, "owner: no user 'zed'"), ({"country": "XX"}, "unknown country code"),
    ({"stage": "galaxy"}, "stage"), ({"limit": 0}, "limit"), ({"after": -1}, "after"), ({"search": "a\x00b"}, "search"),
])
def test_bad_search_input_is_422(world: World, params: dict[str, Any], detail: str) -> None:
    r = world.get("root", "/customers", **params)
    assert r.status_code == 422 and detail in r.json()["detail"], r.text


@pytest.mark.parametrize(("args", "code", "text"), [
    (("--owner", "zed"), 1, "owner: no user 'zed'"), (("--country", "XX"), 1, "unknown country code"),
    (("--stage", "galaxy"), 2, "--stage"), (("--after", "-1"), 2, "--after"), (("--limit", "0"), 2, "--limit"),
])
def test_bad_search_input_on_the_cli(wcli: Callable[..., Any], args: tuple[str, ...], code: int, text: str) -> None:
    res = wcli("customer", "list", *args, user="root")
    assert res.exit_code == code and text in res.output and "Traceback" not in res.output


def test_cli_list_pages_with_after(world: World, wcli: Callable[..., Any]) -> None:
    res = wcli("customer", "list", "--json", "--limit", "2", user="root")
    assert [c["external_ref"] for c in json.loads(res.stdout)] == ["A-1", "B-1"]
    assert f"more: --after {world.ids['B-1']}" in res.stderr
    rest = wcli("customer", "list", "--json", "--after", str(world.ids["B-1"]), user="root")
    assert [c["external_ref"] for c in json.loads(rest.stdout)] == ["F-1"] and "more:" not in rest.stderr


# -- the profile service ---------------------------------------------------------------------------------

def _queries(crm: CRM, fn: Callable[[], Any]) -> int:
    n = 0

    def count(*_: Any) -> None:
        nonlocal n
        n += 1
    event.listen(crm.engine, "before_cursor_execute", count)
    try:
        fn()
    finally:
        event.remove(crm.engine, "before_cursor_execute", count)
    return n


def test_profile_costs_a_bounded_number_of_queries(world: World) -> None:
    def profile(key: str) -> None:
        with world.crm.unit_of_work("root", read_only=True) as uow:
            data = uow.profiles.get(key, interactions=100)
            json.dumps(data)  # JSON-able as it is
    small = _queries(world.crm, lambda: profile("B-1"))
    with world.crm.unit_of_work("root") as uow:
        for i in range(30):
            uow.contacts.add(world.ids["A-1"], ContactCreate(name=f"c{i}"))
            uow.interactions.log(world.ids["A-1"], InteractionCreate(channel="phone", subject=f"s{i}"))
            uow.accounts.post(world.ids["A-1"], TransactionCreate(kind="invoice", amount=Decimal(1), reference=f"R{i}"))
    assert _queries(world.crm, lambda: profile("A-1")) == small


def test_profile_filters_the_timeline_by_kind(world: World) -> None:
    with world.crm.unit_of_work("root") as uow:
        uow.interactions.log(world.ids["A-1"], InteractionCreate(channel="phone", kind="complaint", subject="broken"))
    with world.crm.unit_of_work("anna", read_only=True) as uow:
        assert [e["summary"] for e in uow.profiles.get("A-1", kinds={"phone"})["timeline"]] == ["broken"]
        assert [e["summary"] for e in uow.profiles.get("A-1", kinds={"complaint"})["timeline"]] == ["broken"]
        assert len(uow.profiles.get("A-1", kinds={"core"})["timeline"]) == 2
        assert uow.profiles.get("A-1", kinds={"nothing"})["timeline"] == []
        assert uow.profiles.get("A-1", interactions=0)["timeline"] == []
        with pytest.raises(InvalidInput, match="interactions must be 0 to 1000"):
            uow.profiles.get("A-1", interactions=1001)
