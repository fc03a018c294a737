"""The HTTP face of the plugin reports that first had only a CLI and a Python face: an "own" user
(and an admin who sees all) gets the same object from the HTTP API, the CLI and the Python API,
for every value of the CLI's options, and a bad option is a 4xx / exit 2 by both faces.

- ``GET /service/report?by=``: ``crm service report [--by agent|team|category|month] --json``
- ``GET /service/nps?period=``: ``crm service nps [--period month|quarter|year] --json``
- ``GET /sales/funnel?pipeline=``: ``crm sales report funnel [--pipeline NAME] --json``

The CLI and Python faces of the same reports (and the refusal to a user without
``service.report``) are in tests/test_platform_visibility_reports.py.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import crm_sales_automation.plugin as SALES
import crm_service.plugin as SERVICE
import pytest
from crm_sales_automation import analytics
from crm_sales_automation import services as sales_services
from crm_sales_automation.schemas import PipelineCreate
from crm_sales_automation.testing import Sales
from crm_service import report as service_report
from crm_service import surveys, tickets
from crm_service.schemas import SurveyIn, TicketOpen
from fastapi.testclient import TestClient

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.errors import NotFound
from crmcore.schemas import CustomerCreate, UserCreate

OWNED = {"anna": 2, "bob": 3}  # customers per owner
ALL = sum(OWNED.values())
CATEGORIES = ("billing", "delivery", "other")


def plain(value: Any) -> Any:
    """What a JSON face gives for a Python answer (dates and Decimals as strings)."""
    return json.loads(json.dumps(value, default=str))


def tokens(crm: CRM, admin: str, *users: str) -> dict[str, dict[str, str]]:
    """Bearer headers of ``users`` (and of ``admin``, who creates the tokens)."""
    with crm.unit_of_work(admin) as uow:
        return {n: {"Authorization": f"Bearer {TokenService(uow).create(n, 't')[1]}"} for n in (admin, *users)}


def cli_json(cli: Callable[..., Any], user: str, plugin: Any, *args: str) -> Any:
    res = cli(*args, "--json", plugins=[plugin], user=user)
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


# -- service: report and NPS --------------------------------------------------------------------

class ServiceWorld:
    """anna (sales and service_manager, both "own") owns 2 customers, bob 3; root is an admin. Every
    customer has a ticket (categories and assignees vary, some resolved) and an NPS answer, the
    answers spread over two years so that every period groups differently."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        with crm.unit_of_work("setup") as uow:
            uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
            uow.users.add(UserCreate(username="anna", display_name="Anna", roles=["sales", "service_manager"]))
            uow.users.add(UserCreate(username="bob", display_name="Bob", roles=["sales"]))
        with crm.unit_of_work("root") as uow:
            ids = [uow.customers.create(CustomerCreate(name=f"{owner} shop {i}", owner=owner, external_ref=f"{owner.upper()}{i}")).id
                   for owner, n in OWNED.items() for i in range(n)]
            for n, cid in enumerate(ids):
                t, _ = tickets.open_ticket(uow, cid, TicketOpen(subject=f"broken {n}", category=CATEGORIES[n % 3],
                                                                assignee=("root", "anna", None)[n % 3]))
                if n % 2:
                    tickets.change_status(uow, t.id, "resolved")
                at = dt.datetime(2025 + n % 2, 1 + 4 * (n % 3), 10, tzinfo=dt.UTC)
                surveys.record(uow, cid, SurveyIn(nps=(10, 3, 8)[n % 3], answered_at=at))
        self.tokens = tokens(crm, "root", "anna")
        self.client = TestClient(create_app(crm), raise_server_exceptions=False)

    def http(self, user: str, path: str) -> Any:
        r = self.client.get(path, headers=self.tokens[user])
        assert r.status_code == 200, (path, r.text)
        return r.json()


@pytest.fixture
def service_world(make_crm: Callable[..., CRM], tmp_path: Path) -> ServiceWorld:
    (tmp_path / "crm.toml").write_text('[visibility]\nsales = "own"\nservice_manager = "own"\n')  # the cli's
    return ServiceWorld(make_crm(plugins=[SERVICE], config={"visibility": {"sales": "own", "service_manager": "own"}}))


@pytest.mark.parametrize("by", [None, "agent", "team", "category", "month"])
def test_service_report_by_every_face(service_world: ServiceWorld, cli: Callable[..., Any], by: str | None) -> None:
    for user, expected in (("anna", OWNED["anna"]), ("root", ALL)):
        with service_world.crm.unit_of_work(user, read_only=True) as uow:
            python = plain(service_report.report(uow, by))
        http = service_world.http(user, "/service/report" + (f"?by={by}" if by else ""))
        shell = cli_json(cli, user, SERVICE, "service", "report", *(("--by", by) if by else ()))
        assert python["total"]["tickets"] == expected, (user, by)
        assert http == python == shell, (user, by)
        if by:
            assert sum(g["tickets"] for g in http["groups"]) == expected, (user, by)


@pytest.mark.parametrize("period", [None, "month", "quarter", "year"])
def test_service_nps_by_every_face(service_world: ServiceWorld, cli: Callable[..., Any], period: str | None) -> None:
    for user, expected in (("anna", OWNED["anna"]), ("root", ALL)):
        with service_world.crm.unit_of_work(user, read_only=True) as uow:
            python = plain(surveys.nps(uow, period or "quarter"))
        http = service_world.http(user, "/service/nps" + (f"?period={period}" if period else ""))
        shell = cli_json(cli, user, SERVICE, "service", "nps", *(("--period", period) if period else ()))
        assert python["total"]["answers"] == expected, (user, period)
        assert sum(p["answers"] for p in http["periods"]) == expected, (user, period)
        assert http == python == shell, (user, period)


def test_service_reports_refused_and_bad_options_by_every_face(service_world: ServiceWorld, cli: Callable[..., Any]) -> None:
    bob = tokens(service_world.crm, "root", "bob")["bob"]  # sales only: no service.report
    for path, args in (("/service/report", ("report",)), ("/service/nps", ("nps",))):
        r = service_world.client.get(path, headers=bob)
        assert r.status_code == 403 and "service.report" in r.text, path
        res = cli("service", *args, plugins=[SERVICE], user="bob")
        assert res.exit_code == 1 and "service.report" in res.stderr, args
    for path, args in (("/service/report?by=weekday", ("report", "--by", "weekday")),
                       ("/service/nps?period=week", ("nps", "--period", "week"))):
        assert service_world.client.get(path, headers=service_world.tokens["root"]).status_code == 422, path
        res = cli("service", *args, plugins=[SERVICE], user="root")
        assert res.exit_code == 2 and res.stdout == "", args


# -- sales: the funnel ---------------------------------------------------------------------------

@pytest.fixture
def sales_world(make_crm: Callable[..., CRM], tmp_path: Path) -> tuple[CRM, dict[str, dict[str, str]]]:
    """anna ("own") has 1 won deal; bob 3 won and 1 lost; a second pipeline holds one of bob's open deals."""
    (tmp_path / "crm.toml").write_text('[visibility]\nsales = "own"\n')
    crm = make_crm(plugins=[SALES], config={"visibility": {"sales": "own"}})
    s = Sales(crm)
    s.user("anna")
    s.user("bob")
    s.actor = "admin"
    s.win(s.opp(s.customer("Anna Co", owner="anna"), "100", "mine", owner="anna"))
    bob = s.customer("Bob Co", owner="bob")
    for n in range(3):
        s.win(s.opp(bob, "900", f"theirs {n}", owner="bob"))
    s.lose(s.opp(bob, "900", "lost one", owner="bob"))
    with crm.unit_of_work("admin") as uow:
        sales_services.create_pipeline(uow, PipelineCreate(name="projects", stages=[{"name": "brief", "probability": 20},
                                                                                  {"name": "bid", "probability": 60}]))
    s.move(s.opp(bob, "50", "project", owner="bob", pipeline="projects"), "bid")
    return crm, tokens(crm, "admin", "anna")


@pytest.mark.parametrize("pipeline", [None, "default", "projects"])
def test_sales_funnel_by_every_face(sales_world: tuple[CRM, dict[str, dict[str, str]]], cli: Callable[..., Any],
                                    pipeline: str | None) -> None:
    crm, heads = sales_world
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    won = {}
    for user in ("anna", "admin"):
        with crm.unit_of_work(user, read_only=True) as uow:
            python = plain(analytics.funnel(uow, pipeline))
        r = client.get("/sales/funnel" + (f"?pipeline={pipeline}" if pipeline else ""), headers=heads[user])
        assert r.status_code == 200, r.text
        shell = cli_json(cli, user, SALES, "sales", "report", "funnel", *(("--pipeline", pipeline) if pipeline else ()))
        assert r.json() == python == shell, (user, pipeline)
        assert [p["pipeline"] for p in python] == ([pipeline] if pipeline else ["default", "projects"])
        won[user] = (sum(p["won"] for p in python), sum(p["lost"] for p in python),
                     sum(p["stages"][0]["reached"] for p in python))
    expected = {None: {"anna": (1, 0, 1), "admin": (4, 1, 6)}, "default": {"anna": (1, 0, 1), "admin": (4, 1, 5)},
                "projects": {"anna": (0, 0, 0), "admin": (0, 0, 1)}}[pipeline]
    assert won == expected


def test_sales_funnel_unknown_pipeline_by_every_face(sales_world: tuple[CRM, dict[str, dict[str, str]]],
                                                     cli: Callable[..., Any]) -> None:
    crm, heads = sales_world
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    r = client.get("/sales/funnel?pipeline=nope", headers=heads["anna"])
    assert r.status_code == 404 and "nope" in r.text
    res = cli("sales", "report", "funnel", "--pipeline", "nope", plugins=[SALES], user="anna")
    assert res.exit_code == 1 and "nope" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    with crm.unit_of_work("anna", read_only=True) as uow, pytest.raises(NotFound, match="nope"):
        analytics.funnel(uow, "nope")
