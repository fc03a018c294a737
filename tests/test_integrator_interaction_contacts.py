"""The contact person on an interaction (issue 24 §5): by the Python API (one and many), the CLI and
the HTTP API; another customer's contact is refused with one line and nothing written; removing
the contact keeps the interaction; a merge moves both; the migration keeps every row. Both engines."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from crmcore import CRM
from crmcore.errors import InvalidInput
from crmcore.migrations import runner
from crmcore.models import Interaction
from crmcore.schemas import ContactCreate, CustomerCreate, InteractionCreate

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _people(crm: CRM, actor: str = "setup") -> dict[str, int]:
    """Two companies with a contact each: ACME's Ada (A-ADA), Globex's Gus (G-GUS)."""
    with crm.unit_of_work(actor) as uow:
        acme = uow.customers.create(CustomerCreate(name="Acme Anvils", external_ref="ACME"))
        globex = uow.customers.create(CustomerCreate(name="Globex Gears", external_ref="GLOBEX"))
        ada = uow.contacts.add(acme.id, ContactCreate(name="Ada", role="decider", external_ref="A-ADA"))
        gus = uow.contacts.add(globex.id, ContactCreate(name="Gus", external_ref="G-GUS"))
        return {"acme": acme.id, "globex": globex.id, "ada": ada.id, "gus": gus.id}


def _count(crm: CRM) -> int:
    with crm.unit_of_work("setup", read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Interaction)) or 0)


def test_log_by_id_or_reference_and_refusals(crm: CRM) -> None:
    ids = _people(crm)
    call = InteractionCreate(channel="phone", subject="pricing")
    with crm.unit_of_work("setup") as uow:
        assert uow.interactions.log(ids["acme"], call, contact=ids["ada"]).contact_id == ids["ada"]
        assert uow.interactions.log(ids["acme"], call, contact="A-ADA").contact_id == ids["ada"]
        assert uow.interactions.log(ids["acme"], call, contact=str(ids["ada"])).contact_id == ids["ada"]
        assert uow.interactions.log(ids["acme"], call).contact_id is None
    for bad, message in ((ids["gus"], "belongs to another customer, not to customer"), ("G-GUS", "belongs to another"),
                         ("NOBODY", "no contact 'NOBODY'"), (999_999, "no contact 999999")):
        with pytest.raises(InvalidInput, match=message) as e, crm.unit_of_work("setup") as uow:
            uow.interactions.log(ids["acme"], call, contact=bad)
        assert "\n" not in str(e.value)
    assert _count(crm) == 4
    # a reference logged again is the same touchpoint only with the same person
    with crm.unit_of_work("setup") as uow:
        first = uow.interactions.log(ids["acme"], InteractionCreate(channel="email", subject="x", external_ref="R1"),
                                     contact="A-ADA")
        again, created = uow.interactions.log_once(ids["acme"], InteractionCreate(channel="email", subject="x",
                                                                                  external_ref="R1"), contact=ids["ada"])
        assert (again.id, created) == (first.id, False)
    with pytest.raises(Exception, match="different contact_id"), crm.unit_of_work("setup") as uow:
        uow.interactions.log(ids["acme"], InteractionCreate(channel="email", subject="x", external_ref="R1"))


def test_log_many_takes_contacts_and_refuses_the_batch_on_a_foreign_one(crm: CRM) -> None:
    ids = _people(crm)
    with crm.unit_of_work("setup") as uow:
        done = uow.interactions.log_many([
            ("ACME", {"channel": "visit", "subject": "demo", "contact": "A-ADA"}),
            ("GLOBEX", InteractionCreate(channel="phone", subject="call"), "G-GUS"),
            ("ACME", InteractionCreate(channel="phone", subject="plain")),
        ])
        assert [i.contact_id for i in done] == [ids["ada"], ids["gus"], None]
    before = _count(crm)
    with pytest.raises(InvalidInput, match=r"^row 2: contact 'A-ADA' belongs to another customer"), \
            crm.unit_of_work("setup") as uow:
        uow.interactions.log_many([("ACME", {"channel": "visit", "subject": "ok", "contact": "A-ADA"}),
                                   ("GLOBEX", {"channel": "visit", "subject": "bad", "contact": "A-ADA"})])
    assert _count(crm) == before


@SETTINGS
@given(rows=st.lists(st.tuples(st.sampled_from(["ACME", "GLOBEX"]),
                               st.sampled_from([None, "A-ADA", "G-GUS", "NOBODY", "", "  "])), min_size=1, max_size=6))
def test_any_batch_is_all_written_with_the_right_people_or_refused_whole(crm: CRM, rows: list[tuple[str, Any]]) -> None:
    """The write path's property: a batch is either written whole, each row with its own customer's
    person (or none), or refused with one line naming a row, and then nothing is written."""
    if not _has(crm, "ACME"):  # the fixture's CRM is shared by the examples
        _people(crm)
    with crm.unit_of_work("setup", read_only=True) as uow:
        owner = {c.external_ref: c.customer_id for c in
                 (uow.session.execute(text("SELECT external_ref, customer_id FROM contacts")).all())}
        cid = {r: uow.customers.resolve(r).id for r in ("ACME", "GLOBEX")}
    before = _count(crm)
    fine = all(p is None or not p.strip() or (p in owner and owner[p] == cid[c]) for c, p in rows)
    try:
        with crm.unit_of_work("setup") as uow:
            done = uow.interactions.log_many([(c, {"channel": "web", "subject": "s", "contact": p}) for c, p in rows])
            got = [(i.customer_id, i.contact_id) for i in done]
    except InvalidInput as e:
        assert not fine, e
        assert str(e).startswith("row ") and "\n" not in str(e)
        assert _count(crm) == before
        return
    assert fine
    with crm.unit_of_work("setup", read_only=True) as uow:
        ids = dict(uow.session.execute(text("SELECT external_ref, id FROM contacts")).all())
    assert got == [(cid[c], ids[p] if p and p.strip() else None) for c, p in rows]
    assert _count(crm) == before + len(rows)


def _has(crm: CRM, ref: str) -> bool:
    with crm.unit_of_work("setup", read_only=True) as uow:
        return bool(uow.session.execute(text("SELECT 1 FROM customers WHERE external_ref = :r"), {"r": ref}).first())


def test_cli_contact_option(crm: CRM, cli: Callable[..., Any]) -> None:
    ids = _people(crm)
    res = cli("interaction", "log", "ACME", "--channel", "phone", "--subject", "hi", "--contact", "A-ADA", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["interaction"]["contact_id"] == ids["ada"]
    res = cli("interaction", "log", "ACME", "--channel", "phone", "--subject", "hi", "--contact", "G-GUS")
    assert res.exit_code in (1, 2) and len(res.output.strip().splitlines()) == 1, res.output
    assert "belongs to another customer" in res.output
    listed = json.loads(cli("interaction", "list", "--customer", "ACME", "--json").output)
    assert [r["contact_id"] for r in listed] == [ids["ada"]]


def test_http_api_contact_field(make_crm: Callable[..., CRM]) -> None:
    from fastapi.testclient import TestClient

    from crmcore.api import create_app
    from crmcore.api.auth import TokenService
    from crmcore.schemas import UserCreate

    crm = make_crm()
    with crm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    ids = _people(crm, "root")
    with crm.unit_of_work("root") as uow:
        headers = {"Authorization": f"Bearer {TokenService(uow).create('root', 'test')[1]}"}
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    url = f"/customers/{ids['acme']}/interactions"
    r = client.post(url, json={"channel": "visit", "subject": "site", "contact": "A-ADA"}, headers=headers)
    assert r.status_code == 201 and r.json()["contact_id"] == ids["ada"], r.text
    r = client.post(url, json={"channel": "visit", "subject": "site", "contact": ids["gus"]}, headers=headers)
    assert r.status_code == 422 and "belongs to another customer" in r.text
    assert [x["contact_id"] for x in client.get(url, headers=headers).json()] == [ids["ada"]]


def test_removing_the_contact_keeps_the_interaction_and_a_merge_moves_both(crm: CRM) -> None:
    ids = _people(crm)
    with crm.unit_of_work("setup") as uow:
        kept = uow.interactions.log(ids["globex"], InteractionCreate(channel="phone", subject="g"), contact="G-GUS").id
        other = uow.contacts.add(ids["globex"], ContactCreate(name="Gil", external_ref="G-GIL")).id
        gone = uow.interactions.log(ids["globex"], InteractionCreate(channel="phone", subject="h"), contact=other).id
    with crm.unit_of_work("setup") as uow:
        uow.contacts.remove(other)
    with crm.unit_of_work("setup") as uow:
        assert uow.session.get(Interaction, gone).contact_id is None  # ON DELETE SET NULL
        moved = uow.customers.merge(ids["globex"], ids["acme"])
        assert moved["interactions"] == 2 and moved["contacts"] == 1
    with crm.unit_of_work("setup") as uow:  # Gus moved with Globex: still a person of the interaction's customer
        assert uow.session.get(Interaction, kept).contact_id == ids["gus"]
        assert uow.interactions.log(ids["acme"], InteractionCreate(channel="phone", subject="after"),
                                    contact="G-GUS").contact_id == ids["gus"]


def test_migration_0009_round_trip_keeps_rows_pointing_at_interactions(empty_database_url: str) -> None:
    from alembic import command

    def to(revision: str, down: bool = False) -> None:
        cfg = runner.alembic_config([])
        with crm.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, revision)

    crm = CRM.open(empty_database_url, entry_points=False, create=True, config={})
    try:
        to("0008_ledger_links")
        with crm.unit_of_work() as uow:
            cid = uow.customers.create(CustomerCreate(name="Acme")).id
        iid = 7
        with crm.engine.begin() as conn:  # the model has the new column already: raw rows at 0008
            conn.execute(text("INSERT INTO interactions (id, customer_id, channel, direction, kind, subject, occurred_at, "
                              "source, created_at) VALUES (7, :c, 'phone', 'inbound', 'other', 'hi', :t, 'core', :t)"),
                         {"c": cid, "t": "2030-01-01 00:00:00"})
            conn.execute(text("CREATE TABLE kid_null (id INTEGER PRIMARY KEY, interaction_id INTEGER "
                              "REFERENCES interactions(id) ON DELETE SET NULL)"))
            conn.execute(text("INSERT INTO kid_null VALUES (1, :i)"), {"i": iid})
        to("heads")
        assert runner.schema_diff(crm.engine, {"interactions"}) == []
        with crm.engine.begin() as conn:
            assert conn.execute(text("SELECT interaction_id FROM kid_null")).scalar_one() == iid
            assert conn.execute(text("SELECT contact_id FROM interactions")).scalar_one() is None
        to("0008_ledger_links", down=True)
        with crm.engine.begin() as conn:
            assert conn.execute(text("SELECT interaction_id FROM kid_null")).scalar_one() == iid
            assert "contact_id" not in list(conn.execute(text("SELECT * FROM interactions")).keys())
        to("heads")
        assert runner.schema_diff(crm.engine, {"interactions"}) == []
    finally:
        crm.close()
