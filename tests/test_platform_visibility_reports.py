"""An "own" user gets the same answer from the CLI, the Python API and the HTTP API for the plugin
reads that had no such test: service tickets, the service report and NPS (CLI and Python here;
their routes ``GET /service/report`` and ``GET /service/nps`` in
tests/test_platform_visibility_new_routes.py), the sales funnel (likewise, ``GET /sales/funnel``)
and value_analysis's reports (refused to an own user without ``value.report`` by every face, the
same numbers by every face for a user who sees all).

The other plugin reports have theirs in their own suites: credit's ageing and DSO
(plugins/credit/tests/test_visibility.py), sales forecasts and pipelines
(plugins/sales_automation/tests/test_visibility.py; its other reports in
tests/test_platform_visibility_sales_reports.py), marketing's segments and campaign reports
(plugins/marketing/tests/test_visibility.py), and the core's customer reads (tests/test_visibility.py).
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import crm_sales_automation.plugin as SALES
import crm_service.plugin as SERVICE
import crm_value_analysis.plugin as VALUE
import pytest
from crm_sales_automation import analytics
from crm_sales_automation.testing import Sales
from crm_service import report as service_report
from crm_service import surveys, tickets
from crm_service.schemas import SurveyIn, TicketOpen
from crm_value_analysis import services as value_services
from fastapi.testclient import TestClient

from crmcore import CRM, PermissionDenied
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.schemas import CustomerCreate, TransactionCreate, UserCreate

OWN = {"sales": "own", "service_manager": "own"}
TOML = '[visibility]\nsales = "own"\nservice_manager = "own"\n'
OWNED = {"anna": 2, "bob": 3}  # customers per owner
ALL = sum(OWNED.values())
Headers = dict[str, dict[str, str]]


def world(make_crm: Callable[..., CRM], tmp_path: Path, plugin: Any,
          anna_roles: tuple[str, ...] = ("sales",)) -> tuple[CRM, Headers, dict[str, list[int]]]:
    """anna ("own" by each of her roles) owns 2 customers, bob (sales: "own") 3; root is an admin."""
    (tmp_path / "crm.toml").write_text(TOML)  # the cli fixture runs in tmp_path: the same [visibility]
    crm = make_crm(plugins=[plugin], config={"visibility": OWN})
    with crm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
        uow.users.add(UserCreate(username="anna", display_name="Anna", roles=list(anna_roles)))
        uow.users.add(UserCreate(username="bob", display_name="Bob", roles=["sales"]))
    ids: dict[str, list[int]] = {}
    with crm.unit_of_work("root") as uow:
        for owner, n in OWNED.items():
            ids[owner] = [uow.customers.create(CustomerCreate(name=f"{owner} shop {i}", owner=owner,
                                                              external_ref=f"{owner.upper()}{i}")).id for i in range(n)]
        tokens = {n: {"Authorization": f"Bearer {TokenService(uow).create(n, 't')[1]}"} for n in ("anna", "root")}
    return crm, tokens, ids


def cli_json(cli: Callable[..., Any], user: str, plugin: Any, *args: str) -> Any:
    res = cli(*args, "--json", plugins=[plugin], user=user)
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


# -- service ----------------------------------------------------------------------------------

@pytest.fixture
def service_world(make_crm: Callable[..., CRM], tmp_path: Path) -> tuple[CRM, Headers]:
    crm, tokens, ids = world(make_crm, tmp_path, SERVICE, ("sales", "service_manager"))
    with crm.unit_of_work("root") as uow:
        for n, cid in enumerate(ids["anna"] + ids["bob"]):
            tickets.open_ticket(uow, cid, TicketOpen(subject=f"broken {n}"))
            surveys.record(uow, cid, SurveyIn(nps=10 if n % 2 else 3))
    return crm, tokens


def test_service_tickets_by_every_face(service_world: tuple[CRM, Headers], cli: Callable[..., Any]) -> None:
    crm, tokens = service_world
    for user, expected in (("anna", OWNED["anna"]), ("root", ALL)):
        with crm.unit_of_work(user, read_only=True) as uow:
            python = sorted(t.customer_id for t in tickets.list_tickets(uow))
        client = TestClient(create_app(crm), raise_server_exceptions=False)
        http = sorted(t["customer_id"] for t in client.get("/service/tickets", headers=tokens[user]).json())
        shell = sorted(t["customer_id"] for t in cli_json(cli, user, SERVICE, "service", "ticket", "list"))
        assert len(python) == expected and python == http == shell, user


def test_service_report_and_nps_by_every_face(service_world: tuple[CRM, Headers], cli: Callable[..., Any]) -> None:
    crm, _ = service_world
    for user, expected in (("anna", OWNED["anna"]), ("root", ALL)):
        with crm.unit_of_work(user, read_only=True) as uow:
            python = service_report.report(uow)
            python_nps = surveys.nps(uow, "quarter")
        shell = cli_json(cli, user, SERVICE, "service", "report")
        shell_nps = cli_json(cli, user, SERVICE, "service", "nps")
        assert python["total"]["tickets"] == expected and shell["total"]["tickets"] == expected, user
        assert python_nps["total"]["answers"] == expected and shell_nps["total"] == python_nps["total"], user
        assert json.loads(json.dumps(python, default=str))["total"]["backlog"] == shell["total"]["backlog"]


def test_service_report_is_refused_to_bob_by_every_face(service_world: tuple[CRM, Headers], cli: Callable[..., Any]) -> None:
    crm, _ = service_world
    with crm.unit_of_work("bob", read_only=True) as uow, pytest.raises(PermissionDenied, match=r"service\.report"):
        service_report.report(uow)
    res = cli("service", "report", plugins=[SERVICE], user="bob")
    assert res.exit_code == 1 and "service.report" in res.stderr and len(res.stderr.strip().splitlines()) == 1


# -- value_analysis ---------------------------------------------------------------------------

def test_value_reports_by_every_face(make_crm: Callable[..., CRM], tmp_path: Path, cli: Callable[..., Any]) -> None:
    crm, tokens, ids = world(make_crm, tmp_path, VALUE)
    with crm.unit_of_work("root") as uow:
        for i, cid in enumerate(ids["anna"] + ids["bob"]):
            for k in range(1 + i):
                uow.accounts.post(cid, TransactionCreate(kind="invoice", amount=f"{100 * (i + 1)}.00", reference=f"I{i}-{k}",
                                                         occurred_at=dt.datetime(2024, 1 + k, 1, tzinfo=dt.UTC)))
    assert cli("value", "run", plugins=[VALUE], user="root").exit_code == 0
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    for name, path in (("rfm", "/value/rfm"), ("pyramid", "/value/pyramid")):
        fn = getattr(value_services, f"{name}_report")
        with crm.unit_of_work("anna", read_only=True) as uow, pytest.raises(PermissionDenied, match=r"value\.report"):
            fn(uow)
        assert client.get(path, headers=tokens["anna"]).status_code == 403, path
        res = cli("value", name, plugins=[VALUE], user="anna")
        assert res.exit_code == 1 and "lacks value.report" in res.stderr
        with crm.unit_of_work("root", read_only=True) as uow:
            python = json.loads(json.dumps(fn(uow), default=str))
        http = client.get(path, headers=tokens["root"]).json()
        shell = cli_json(cli, "root", VALUE, "value", name)
        key = "segments" if name == "rfm" else "tiers"
        customers = [g["customers"] for g in python[key]]
        assert sum(customers) == ALL and customers == [g["customers"] for g in http[key]] == \
            [g["customers"] for g in shell[key]], name


# -- sales_automation: the funnel (its HTTP route: tests/test_platform_visibility_new_routes.py) -

def test_sales_funnel_by_every_face(make_crm: Callable[..., CRM], cli: Callable[..., Any], tmp_path: Path) -> None:
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
    answers = {}
    for user in ("anna", "admin"):
        with crm.unit_of_work(user, read_only=True) as uow:
            python = json.loads(json.dumps(analytics.funnel(uow), default=str))
        assert cli_json(cli, user, SALES, "sales", "report", "funnel") == python, user
        answers[user] = sum(p["won"] for p in python)
    assert answers == {"anna": 1, "admin": 4}
