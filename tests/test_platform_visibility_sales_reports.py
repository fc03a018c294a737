"""sales_automation's other reads, by every face, for an "own" user and for one who sees all: the
same object from the Python API, the HTTP API and the CLI, and the own user's counts only theirs.

- ``process.reasons``: ``GET /sales/reports/reasons``, ``crm sales report reasons --json``
- ``process.source_effectiveness``: ``GET /sales/reports/sources?by=``, ``crm sales report sources --by``
- ``process.follow_up``: ``GET /sales/reports/follow-up?days=``, ``crm sales report follow-up --days``
- ``services.board``: ``GET /sales/pipelines/{name}?per_stage=``, ``crm sales pipeline show NAME --per-stage``

The funnel is in tests/test_platform_visibility_new_routes.py, forecasts, leads and deals in
plugins/sales_automation/tests/test_visibility.py.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import crm_sales_automation.plugin as SALES
import pytest
from crm_sales_automation import process
from crm_sales_automation import services as sales_services
from crm_sales_automation.models import Lead, Opportunity
from crm_sales_automation.testing import Sales
from fastapi.testclient import TestClient
from sqlalchemy import update

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.sdk import jsonable

Heads = dict[str, dict[str, str]]
LONG_AGO = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)  # old enough to need a follow-up


@pytest.fixture
def world(make_crm: Callable[..., CRM], tmp_path: Path) -> tuple[CRM, TestClient, Heads]:
    """anna ("own") owns 1 customer, bob 1: deals won, lost (with reasons) and open on both, and
    leads from two sources for each, all created long ago with nothing planned."""
    (tmp_path / "crm.toml").write_text('[visibility]\nsales = "own"\n')  # the cli fixture runs in tmp_path
    crm = make_crm(plugins=[SALES], config={"visibility": {"sales": "own"}})
    s = Sales(crm)
    s.user("anna")
    s.user("bob")
    s.actor = "admin"
    for owner, deals in (("anna", 2), ("bob", 5)):
        cid = s.customer(f"{owner} Co", owner=owner)
        for i in range(deals):
            oid = s.opp(cid, f"{100 * (i + 1)}", f"{owner} {i}", owner=owner)
            s.move(oid, *("qualification", "approach")[: i % 3])
            if i % 3 == 0:
                s.win(oid)
            elif i % 3 == 1:
                s.lose(oid, ("price", "timing")[i % 2])
        for i, source in enumerate(("web", "event", "web")[: 1 + deals // 2]):
            s.lead(f"{owner} lead {i}", source=source, owner=owner)
    with crm.unit_of_work("admin") as uow:
        uow.session.execute(update(Lead).values(created_at=LONG_AGO))
        uow.session.execute(update(Opportunity).values(created_at=LONG_AGO))
        heads = {n: {"Authorization": f"Bearer {TokenService(uow).create(n, 't')[1]}"} for n in ("admin", "anna")}
    return crm, TestClient(create_app(crm), raise_server_exceptions=False), heads


def plain(value: Any) -> Any:
    """What a JSON face gives for a Python answer (the core's serialisation, then JSON)."""
    return json.loads(json.dumps(jsonable(value)))


def faces(world: tuple[CRM, TestClient, Heads], cli: Callable[..., Any], user: str, python: Callable[[Any], Any],
          path: str, *args: str) -> Any:
    """The three answers, checked equal; returns the one object."""
    crm, client, heads = world
    with crm.unit_of_work(user, read_only=True) as uow:
        mine = plain(python(uow))
    r = client.get(path, headers=heads[user])
    assert r.status_code == 200, (path, r.text)
    res = cli("sales", *args, "--json", plugins=[SALES], user=user)
    assert res.exit_code == 0, res.output
    assert r.json() == mine == json.loads(res.stdout), (user, path)
    return mine


def test_reasons_by_every_face(world: tuple[CRM, TestClient, Heads], cli: Callable[..., Any]) -> None:
    closed = {}
    for user in ("anna", "admin"):
        out = faces(world, cli, user, process.reasons, "/sales/reports/reasons", "report", "reasons")
        closed[user] = json.dumps(out)
    assert closed["anna"] != closed["admin"]  # bob's lost and won deals count for the admin only


@pytest.mark.parametrize("by", ["source", "campaign"])
def test_sources_by_every_face(world: tuple[CRM, TestClient, Heads], cli: Callable[..., Any], by: str) -> None:
    leads = {}
    for user in ("anna", "admin"):
        out = faces(world, cli, user, lambda uow: process.source_effectiveness(uow, by),
                    f"/sales/reports/sources?by={by}", "report", "sources", "--by", by)
        leads[user] = sum(r["leads"] for r in out)
    assert leads == {"anna": 2, "admin": 5}


@pytest.mark.parametrize("owner", [None, "anna", "bob"])
def test_follow_up_by_every_face(world: tuple[CRM, TestClient, Heads], cli: Callable[..., Any], owner: str | None) -> None:
    query, args = ("?days=30", ("--days", "30")) if owner is None else (f"?days=30&owner={owner}", ("--days", "30", "--owner", owner))
    seen = {}
    for user in ("anna", "admin"):
        out = faces(world, cli, user, lambda uow: process.follow_up(uow, 30, owner), f"/sales/reports/follow-up{query}",
                    "report", "follow-up", *args)
        seen[user] = json.dumps(out)
        if user == "anna":
            assert "bob" not in json.dumps(out), owner  # never another owner's leads or deals
    assert (seen["anna"] == seen["admin"]) is (owner == "anna")


@pytest.mark.parametrize("per_stage", [1, 8])
def test_board_by_every_face(world: tuple[CRM, TestClient, Heads], cli: Callable[..., Any], per_stage: int) -> None:
    counts = {}
    for user in ("anna", "admin"):
        out = faces(world, cli, user, lambda uow: sales_services.board(uow, "default", per_stage),
                    f"/sales/pipelines/default?per_stage={per_stage}", "pipeline", "show", "default",
                    "--per-stage", str(per_stage))
        counts[user] = json.dumps(out)
        if user == "anna":
            assert "bob " not in counts[user]  # no deal of bob's
    assert counts["anna"] != counts["admin"]
