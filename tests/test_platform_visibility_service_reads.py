"""service's other reads, by every face, for an "own" user and for one who sees all: the return
visits due (``GET /service/visits/due``, ``crm service visit due --json``) and one ticket
(``GET /service/tickets/{id}``, ``crm service ticket show ID --json``): the same object from the
Python API, the HTTP API and the CLI; another owner's ticket is "not found" by every face.

The ticket list, the report and NPS are in tests/test_platform_visibility_reports.py and
tests/test_platform_visibility_new_routes.py.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import crm_service.plugin as SERVICE
import pytest
from crm_service import tickets, visits
from crm_service.models import Visit
from crm_service.schemas import TicketOpen
from fastapi.testclient import TestClient
from sqlalchemy import update

from crmcore import CRM, NotFound
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.schemas import CustomerCreate, UserCreate
from crmcore.sdk import jsonable

OWNED = {"anna": 2, "bob": 3}


class World:
    """anna (sales and service_manager, both "own") owns 2 customers, bob 3; each customer has a
    resolved ticket whose return visit is due (moved into the past)."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        with crm.unit_of_work("setup") as uow:
            uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
            uow.users.add(UserCreate(username="anna", display_name="Anna", roles=["sales", "service_manager"]))
            uow.users.add(UserCreate(username="bob", display_name="Bob", roles=["sales"]))
        self.tickets: dict[str, list[int]] = {"anna": [], "bob": []}
        with crm.unit_of_work("root") as uow:
            for owner, n in OWNED.items():
                for i in range(n):
                    cid = uow.customers.create(CustomerCreate(name=f"{owner} shop {i}", owner=owner)).id
                    t, _ = tickets.open_ticket(uow, cid, TicketOpen(subject=f"{owner} broke {i}"))
                    tickets.change_status(uow, t.id, "resolved")
                    self.tickets[owner].append(t.id)
            uow.session.execute(update(Visit).values(due_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)))
            self.heads = {n: {"Authorization": f"Bearer {TokenService(uow).create(n, 't')[1]}"} for n in ("root", "anna")}
        self.client = TestClient(create_app(crm), raise_server_exceptions=False)


@pytest.fixture
def world(make_crm: Callable[..., CRM], tmp_path: Path) -> World:
    (tmp_path / "crm.toml").write_text('[visibility]\nsales = "own"\nservice_manager = "own"\n')  # the cli's
    return World(make_crm(plugins=[SERVICE], config={"visibility": {"sales": "own", "service_manager": "own"}}))


def plain(value: Any) -> Any:
    return json.loads(json.dumps(jsonable(value)))


def test_visits_due_by_every_face(world: World, cli: Callable[..., Any]) -> None:
    for user, expected in (("anna", OWNED["anna"]), ("root", sum(OWNED.values()))):
        with world.crm.unit_of_work(user, read_only=True) as uow:
            python = plain(visits.due(uow))
        r = world.client.get("/service/visits/due", headers=world.heads[user])
        res = cli("service", "visit", "due", "--json", plugins=[SERVICE], user=user)
        assert r.status_code == 200 and res.exit_code == 0, (r.text, res.output)
        assert len(python) == expected and r.json() == python == json.loads(res.stdout), user
        assert all(v["overdue"] for v in python)


def test_one_ticket_by_every_face(world: World, cli: Callable[..., Any]) -> None:
    mine, theirs = world.tickets["anna"][0], world.tickets["bob"][0]
    with world.crm.unit_of_work("anna", read_only=True) as uow:
        python = plain(tickets.as_dict(uow, tickets.get(uow, mine), notes=True))
    r = world.client.get(f"/service/tickets/{mine}", headers=world.heads["anna"])
    res = cli("service", "ticket", "show", str(mine), "--json", plugins=[SERVICE], user="anna")
    assert r.status_code == 200 and res.exit_code == 0, (r.text, res.output)
    assert r.json() == python == json.loads(res.stdout)
    assert python["subject"] == "anna broke 0"
    # bob's ticket: "not found" by every face, in the same words as a ticket that does not exist
    with world.crm.unit_of_work("anna", read_only=True) as uow, pytest.raises(NotFound) as hidden:
        tickets.get(uow, theirs)
    with world.crm.unit_of_work("anna", read_only=True) as uow, pytest.raises(NotFound) as missing:
        tickets.get(uow, 999_999)
    assert str(hidden.value).replace(str(theirs), "N") == str(missing.value).replace("999999", "N")
    assert world.client.get(f"/service/tickets/{theirs}", headers=world.heads["anna"]).status_code == 404
    res = cli("service", "ticket", "show", str(theirs), "--json", plugins=[SERVICE], user="anna")
    assert res.exit_code == 1 and "not found" in res.stderr and res.stdout == ""
    assert world.client.get(f"/service/tickets/{theirs}", headers=world.heads["root"]).status_code == 200
