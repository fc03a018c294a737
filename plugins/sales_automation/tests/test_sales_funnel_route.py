"""GET /sales/funnel: the same options (``pipeline``) and JSON as ``crm sales report funnel --json``
and the same visibility (an "own" user counts only their customers' deals), by every face."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import crm_sales_automation.plugin as PLUGIN
import pytest
from crm_sales_automation import analytics, services
from crm_sales_automation.schemas import PipelineCreate
from crm_sales_automation.testing import Sales, assert_error
from fastapi.testclient import TestClient

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService


class World:
    """anna ("own") owns one customer, bob another; deals won, lost and open on both, and a second pipeline."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        s = Sales(crm)
        s.user("anna")
        s.user("bob")
        s.actor = "admin"
        a, b = s.customer("Anna Co", owner="anna"), s.customer("Bob Co", owner="bob")
        with crm.unit_of_work("admin") as uow:
            services.create_pipeline(uow, PipelineCreate(name="projects", stages=[{"name": "brief", "probability": 20},
                                                                                  {"name": "bid", "probability": 60}]))
        for cid, owner, n in ((a, "anna", 2), (b, "bob", 5)):
            for i in range(n):
                oid = s.opp(cid, "100", f"{owner} {i}", owner=owner)
                s.move(oid, *("qualification", "approach", "presentation")[: i % 4])
                (s.win if i % 3 == 0 else s.lose if i % 3 == 1 else (lambda _o: None))(oid)
        s.move(s.opp(b, "50", "project", owner="bob", pipeline="projects"), "bid")
        with crm.unit_of_work("admin") as uow:
            self.tokens = {n: {"Authorization": f"Bearer {TokenService(uow).create(n, 't')[1]}"} for n in ("anna", "admin")}

    def get(self, user: str | None, query: str = "") -> Any:
        client = TestClient(create_app(self.crm), raise_server_exceptions=False)
        return client.get(f"/sales/funnel{query}", headers=self.tokens[user] if user else {})


@pytest.fixture
def world(make_crm: Callable[..., CRM], cli: Callable[..., Any], tmp_path: Path) -> World:
    (tmp_path / "crm.toml").write_text('[visibility]\nsales = "own"\n')  # the cli fixture runs in tmp_path
    return World(make_crm(plugins=[PLUGIN], config={"visibility": {"sales": "own"}}))


def _cli(cli: Callable[..., Any], user: str, *args: str) -> Any:
    return cli("sales", "report", "funnel", *args, plugins=[PLUGIN], user=user)


@pytest.mark.parametrize("user", ["anna", "admin"])
@pytest.mark.parametrize("query", [(), ("--pipeline", "default"), ("--pipeline", "projects")])
def test_the_route_answers_as_the_cli_and_python(world: World, cli: Callable[..., Any], user: str,
                                                 query: tuple[str, ...]) -> None:
    res = _cli(cli, user, *query, "--json")
    assert res.exit_code == 0, res.output
    by_cli = json.loads(res.output)
    r = world.get(user, f"?pipeline={query[1]}" if query else "")
    assert r.status_code == 200, r.text
    assert r.json() == by_cli
    with world.crm.unit_of_work(user, read_only=True) as uow:
        by_python = analytics.funnel(uow, query[1] if query else None)
    assert [(p["pipeline"], p["won"], p["lost"], [s["reached"] for s in p["stages"]]) for p in by_python] == \
        [(p["pipeline"], p["won"], p["lost"], [s["reached"] for s in p["stages"]]) for p in by_cli]


def test_an_own_user_counts_only_their_deals(world: World) -> None:
    mine, everyone = world.get("anna").json(), world.get("admin").json()
    assert [p["pipeline"] for p in mine] == [p["pipeline"] for p in everyone] == ["default", "projects"]
    assert (mine[0]["won"], mine[0]["lost"], mine[0]["stages"][0]["reached"]) == (1, 1, 2)
    assert (everyone[0]["won"], everyone[0]["lost"], everyone[0]["stages"][0]["reached"]) == (3, 3, 7)
    assert mine[1]["stages"][0]["reached"] == 0 and everyone[1]["stages"][1]["reached"] == 1
    assert everyone[0]["win_rate"] == 50.0 and isinstance(everyone[0]["avg_cycle_days"], float)


def test_bad_input_by_every_face(world: World, cli: Callable[..., Any]) -> None:
    assert_error(_cli(cli, "anna", "--pipeline", "nope"), "pipeline 'nope' not found")
    r = world.get("anna", "?pipeline=nope")
    assert r.status_code == 404 and "pipeline 'nope' not found" in r.json()["detail"]
    for bad in ("", "x" * 65, "%00", "a%1B[31m"):  # NUL cannot reach PostgreSQL: refused before any query
        assert world.get("anna", f"?pipeline={bad}").status_code == 422, bad
    board = TestClient(create_app(world.crm), raise_server_exceptions=False).get(
        "/sales/pipelines/a%00b", headers=world.tokens["anna"])  # the board by name: the same rule
    assert board.status_code == 422 and "control character" in board.text
    assert world.get(None).status_code == 401
