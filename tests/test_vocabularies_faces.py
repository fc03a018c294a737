"""A configured contact role or interaction kind works on every face (Python API, CLI, HTTP API,
import, console); an unconfigured one is refused there with the allowed words and where they are
configured, nothing written; removing a word in use is refused at open, by any command."""
from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmcore import CRM, InvalidInput
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.errors import ConfigError
from crmcore.models import Contact, Interaction
from crmcore.schemas import ContactCreate, ContactUpdate, CustomerCreate, InteractionCreate, UserCreate

DEFAULT_ROLES = ["initiator", "user", "influencer", "decider", "gatekeeper"]
WITH_BUYER = {"vocabularies": {"contact_roles": [*DEFAULT_ROLES, "buyer"],
                               "interaction_kinds": ["inquiry", "sale", "site_visit", "other"]}}
REFUSED_ROLE = ("'buyer' is not allowed (allowed: initiator, user, influencer, decider, gatekeeper; "
                "configured in crm.toml [vocabularies] contact_roles)")
REFUSED_KIND = ("'site_visit' is not allowed (allowed: inquiry, complaint, feedback, follow_up, sale, support, "
                "marketing, other; configured in crm.toml [vocabularies] interaction_kinds)")


def _toml(tmp_path: Path, config: dict[str, Any]) -> None:
    lines = ["[vocabularies]"] + [f"{k} = {json.dumps(v)}" for k, v in config["vocabularies"].items()]
    (tmp_path / "crm.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _org(crm: CRM, ref: str = "ACME") -> int:
    with crm.unit_of_work() as uow:
        return uow.customers.create(CustomerCreate(name="Acme", external_ref=ref)).id


def _count(crm: CRM, model: Any) -> int:
    with crm.unit_of_work(read_only=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(model)) or 0


def test_python_api_stores_a_configured_role_and_kind(make_crm: Callable[..., CRM]) -> None:
    crm = make_crm(config=WITH_BUYER)
    cid = _org(crm)
    with crm.unit_of_work() as uow:
        contact = uow.contacts.add(cid, ContactCreate(name="Bea", role=" Buyer "))
        ix = uow.interactions.log(cid, InteractionCreate(channel="visit", subject="plant tour", kind="site_visit"))
        many = uow.interactions.log_many([(cid, {"channel": "phone", "subject": "a", "kind": "site_visit"})])
        other = uow.contacts.add(cid, ContactCreate(name="Dan", role="decider"))
        uow.contacts.update(other.id, ContactUpdate(role="buyer"))
        uow.interactions.update(ix.id, {"kind": "inquiry"})
    with crm.unit_of_work(read_only=True) as uow:
        assert uow.session.get(Contact, contact.id).role == "buyer"
        assert uow.session.get(Contact, other.id).role == "buyer"
        assert uow.session.get(Interaction, ix.id).kind == "inquiry"
        assert uow.session.get(Interaction, many[0].id).kind == "site_visit"


def test_python_api_refuses_an_unconfigured_word_naming_the_allowed_ones(crm: CRM) -> None:
    cid = _org(crm)
    with crm.unit_of_work() as uow:
        kept = uow.contacts.add(cid, ContactCreate(name="Dan", role="decider")).id
        logged = uow.interactions.log(cid, InteractionCreate(channel="phone", subject="hi")).id
    attempts: list[Callable[[Any], Any]] = [
        lambda uow: uow.contacts.add(cid, ContactCreate(name="Bea", role="buyer")),
        lambda uow: uow.contacts.update(kept, ContactUpdate(role="buyer")),
        lambda uow: uow.interactions.log(cid, InteractionCreate(channel="visit", subject="tour", kind="site_visit")),
        lambda uow: uow.interactions.update(logged, {"kind": "site_visit"}),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidInput) as e, crm.unit_of_work() as uow:
            attempt(uow)
        assert str(e.value).endswith(REFUSED_ROLE if "role" in str(e.value) else REFUSED_KIND)
        assert "\n" not in str(e.value)
    with pytest.raises(InvalidInput) as e, crm.unit_of_work() as uow:
        uow.interactions.log_many([(cid, {"channel": "phone", "subject": "ok"}),
                                   (cid, {"channel": "visit", "subject": "tour", "kind": "site_visit"})])
    assert str(e.value) == f"row 2: invalid input: kind: {REFUSED_KIND}"
    assert e.value.errors == [("row 2.kind", REFUSED_KIND)]
    with crm.unit_of_work(read_only=True) as uow:  # nothing half-written
        assert [c.role for c in uow.contacts.list(cid)] == ["decider"]
        assert [i.kind for i in uow.interactions.list(cid)] == ["other"]


def test_cli_takes_a_configured_word_and_refuses_another(crm: CRM, cli: Callable[..., Any], tmp_path: Path) -> None:
    _org(crm)
    with crm.unit_of_work() as uow:
        uow.users.add(UserCreate(username="tester", display_name="Tester", roles=["admin"]))
    res = cli("contact", "add", "ACME", "Bea", "--role", "buyer")
    assert res.exit_code == 1 and res.stderr.strip().splitlines() == [f"error: invalid input: role: {REFUSED_ROLE}"]
    res = cli("interaction", "log", "ACME", "--channel", "visit", "--subject", "tour", "--kind", "site_visit")
    assert res.exit_code == 1 and res.stderr.strip().splitlines() == [f"error: invalid input: kind: {REFUSED_KIND}"]
    assert (_count(crm, Contact), _count(crm, Interaction)) == (0, 0)

    _toml(tmp_path, WITH_BUYER)
    out = json.loads(cli("contact", "add", "ACME", "Bea", "--role", "BUYER", "--json").stdout)
    assert out["role"] == "buyer"
    assert cli("contact", "update", str(out["id"]), "--role", "decider").exit_code == 0
    assert cli("contact", "update", str(out["id"]), "--role", "buyer").exit_code == 0
    res = cli("interaction", "log", "ACME", "--channel", "visit", "--subject", "tour", "--kind", "site_visit", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["interaction"]["kind"] == "site_visit"
    assert [c["role"] for c in json.loads(cli("contact", "list", "ACME", "--json").stdout)] == ["buyer"]


def test_removing_a_word_in_use_is_refused_at_open_by_any_command(make_crm: Callable[..., CRM], cli: Callable[..., Any],
                                                                   tmp_path: Path) -> None:
    crm = make_crm(config=WITH_BUYER)
    cid = _org(crm)
    with crm.unit_of_work() as uow:
        uow.contacts.add(cid, ContactCreate(name="Bea", role="buyer"))
        uow.contacts.add(cid, ContactCreate(name="Bo", role="buyer"))
    with pytest.raises(ConfigError) as e:
        make_crm(config={"vocabularies": {"contact_roles": DEFAULT_ROLES}})
    assert str(e.value) == ("crm.toml [vocabularies] contact_roles: 'buyer' (2 rows) in use in contacts.role cannot be "
                            "removed; add it back (allowed now: initiator, user, influencer, decider, gatekeeper)")
    _toml(tmp_path, {"vocabularies": {"contact_roles": DEFAULT_ROLES}})
    for command in (("customer", "list"), ("contact", "list", "ACME"), ("interaction", "list")):
        res = cli(*command)
        assert res.exit_code == 2, res.output
        assert res.stderr.strip().splitlines() == [f"error: {e.value}"]
    _toml(tmp_path, {"vocabularies": {"contact_roles": ["buyer", "buyer"]}})  # a malformed table: one line too
    res = cli("customer", "list")
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == ["error: crm.toml [vocabularies] contact_roles: 'buyer' is listed twice"]


def _client(crm: CRM) -> tuple[TestClient, dict[str, str]]:
    with crm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    with crm.unit_of_work("root") as uow:
        token = TokenService(uow).create("root", "test")[1]
    return TestClient(create_app(crm), raise_server_exceptions=False), {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("configured", [True, False])
def test_http_api(make_crm: Callable[..., CRM], configured: bool) -> None:
    crm = make_crm(config=WITH_BUYER if configured else {})
    cid = _org(crm)
    client, h = _client(crm)
    r = client.post(f"/customers/{cid}/contacts", json={"name": "Bea", "role": "buyer"}, headers=h)
    ix = client.post(f"/customers/{cid}/interactions", json={"channel": "visit", "subject": "t", "kind": "site_visit"},
                     headers=h)
    if configured:
        assert (r.status_code, r.json()["role"]) == (201, "buyer"), r.text
        assert (ix.status_code, ix.json()["kind"]) == (201, "site_visit"), ix.text
        return
    for resp, reason in ((r, REFUSED_ROLE), (ix, REFUSED_KIND)):
        assert resp.status_code == 422, resp.text
        assert reason in resp.json()["detail"] and "\n" not in resp.json()["detail"]
    assert (_count(crm, Contact), _count(crm, Interaction)) == (0, 0)


CONTACTS_CSV = "external_ref,customer_ref,name,role\nK1,ACME,Bea,buyer\nK2,ACME,Dan,Decider\n"
INTERACTIONS_CSV = ("external_ref,customer_ref,channel,kind,subject,occurred_at\n"
                    "I1,ACME,visit,site_visit,tour,2030-01-01T10:00:00\nI2,ACME,phone,sale,call,2030-01-02T10:00:00\n")


@pytest.mark.parametrize("configured", [True, False])
def test_import(make_crm: Callable[..., CRM], cli: Callable[..., Any], tmp_path: Path, configured: bool) -> None:
    crm = make_crm(config=WITH_BUYER if configured else {})
    _org(crm)
    with crm.unit_of_work() as uow:
        uow.users.add(UserCreate(username="tester", display_name="Tester", roles=["admin"]))
    if configured:
        _toml(tmp_path, WITH_BUYER)
    for entity, text, field, reason in (("contacts", CONTACTS_CSV, "role", REFUSED_ROLE),
                                        ("interactions", INTERACTIONS_CSV, "kind", REFUSED_KIND)):
        path = tmp_path / f"{entity}.csv"
        path.write_text(text, encoding="utf-8")
        res = cli("import", entity, str(path))
        if configured:
            assert res.exit_code == 0, res.output
            assert "2 inserted" in res.output
            continue
        assert res.exit_code == 1, res.output
        assert "1 inserted, 0 updated, 0 unchanged, 1 rejected" in res.output
        with open(tmp_path / f"{entity}.csv.errors.csv", newline="") as f:
            report = list(csv.DictReader(f))
        assert [(r["line"], r["field"], r["reason"]) for r in report] == [("2", field, reason)]
    with crm.unit_of_work(read_only=True) as uow:
        roles = sorted(r or "" for r in uow.session.scalars(select(Contact.role)))
        kinds = sorted(uow.session.scalars(select(Interaction.kind)))
    assert (roles, kinds) == ((["buyer", "decider"], ["sale", "site_visit"]) if configured else (["decider"], ["sale"]))
