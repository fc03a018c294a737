"""``GET /service/report`` and ``GET /service/nps``: the objects of ``crm service report --json``
and ``crm service nps --json`` (same options as query parameters), with the same visibility: an
"own" service manager sees only their customers' tickets, answers and visits, totals included."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from crm_service import surveys, tickets, visits
from crm_service.schemas import SurveyIn, TicketOpen, VisitDone
from fastapi.testclient import TestClient

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.schemas import CustomerCreate, UserCreate


@pytest.fixture
def config() -> dict[str, Any]:
    return {"visibility": {"service_manager": "own"},
            "service": {"calendars": {"default": {"timezone": "UTC"}}, "visit_after_days": 1}}


@pytest.fixture
def world(scrm: CRM, clock: Any) -> dict[str, Any]:
    """sue (an "own" service manager) owns A (2 tickets, one resolved with CSAT 5, its return
    visit done; NPS 10); B, owned by root, has 3 tickets (CSAT 1, NPS 2 and 6)."""
    with scrm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
        uow.users.add(UserCreate(username="sue", display_name="Sue", roles=["service_manager"]))
    with scrm.unit_of_work("root") as uow:
        a = uow.customers.create(CustomerCreate(name="A", owner="sue", external_ref="A")).id
        b = uow.customers.create(CustomerCreate(name="B", owner="root", external_ref="B")).id
        for cid, n, score in ((a, 2, 5), (b, 3, 1)):
            for i in range(n):
                t, _ = tickets.open_ticket(uow, cid, TicketOpen(subject=f"t{i}", category=("billing", "delivery")[i % 2],
                                                                kind="complaint" if i == 0 else "inquiry"))
            tickets.change_status(uow, t.id, "resolved")
            surveys.record(uow, cid, SurveyIn(csat=score, ticket_id=t.id))
        surveys.record(uow, a, SurveyIn(nps=10, answered_at=dt.datetime(2030, 1, 5, tzinfo=dt.UTC)))
        surveys.record(uow, b, SurveyIn(nps=2, answered_at=dt.datetime(2030, 1, 6, tzinfo=dt.UTC)))
        surveys.record(uow, b, SurveyIn(nps=6, answered_at=dt.datetime(2030, 5, 6, tzinfo=dt.UTC)))
    clock.advance(days=5)
    with scrm.unit_of_work("root") as uow:
        visit = next(v for v in visits.due(uow) if v["customer_id"] == a)
        visits.done(uow, visit["id"], VisitDone(outcome="fine", satisfaction=5))
        heads = {n: {"Authorization": f"Bearer {TokenService(uow).create(n, 't')[1]}"} for n in ("root", "sue")}
    return {"client": TestClient(create_app(scrm), raise_server_exceptions=False), "heads": heads}


def _cli(scli: Any, user: str, *args: str) -> Any:
    res = scli("service", *args, "--json", user=user)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.mark.parametrize("by", [None, "agent", "team", "category", "month"])
def test_report_route_is_the_cli_object_with_its_visibility(world: dict[str, Any], scli: Any, by: str | None) -> None:
    for user, n, csat in (("sue", 2, {"5": 1}), ("root", 5, {"1": 1, "5": 1})):
        r = world["client"].get("/service/report", params={"by": by} if by else {}, headers=world["heads"][user])
        assert r.status_code == 200, r.text
        assert r.json() == _cli(scli, user, "report", *(("--by", by) if by else ())), (user, by)
        total = r.json()["total"]
        assert total["tickets"] == n and {k: v for k, v in total["csat"]["distribution"].items() if v} == csat
        assert total["return_visit_rate"] == (1.0 if user == "sue" else 0.5)
        assert sum(g["tickets"] for g in r.json()["groups"]) == (n if by else 0)


@pytest.mark.parametrize("period", [None, "month", "quarter", "year"])
def test_nps_route_is_the_cli_object_with_its_visibility(world: dict[str, Any], scli: Any, period: str | None) -> None:
    for user, answers, nps in (("sue", 1, 100.0), ("root", 3, -33.3)):
        r = world["client"].get("/service/nps", params={"period": period} if period else {}, headers=world["heads"][user])
        assert r.status_code == 200, r.text
        assert r.json() == _cli(scli, user, "nps", *(("--period", period) if period else ()))
        assert r.json()["period"] == (period or "quarter")
        assert r.json()["total"]["answers"] == answers and r.json()["total"]["nps"] == nps


def test_bad_options_and_missing_rights_are_4xx(world: dict[str, Any], scrm: CRM) -> None:
    client, root = world["client"], world["heads"]["root"]
    assert client.get("/service/report", params={"by": "weekday"}, headers=root).status_code == 422
    assert client.get("/service/nps", params={"period": "week"}, headers=root).status_code == 422
    assert client.get("/service/report").status_code == 401
    with scrm.unit_of_work("root") as uow:
        uow.users.add(UserCreate(username="ann", display_name="Ann", roles=["support_agent"]))
        ann = {"Authorization": f"Bearer {TokenService(uow).create('ann', 't')[1]}"}
    for path in ("/service/report", "/service/nps"):
        r = client.get(path, headers=ann)
        assert r.status_code == 403 and "service.report" in r.json()["detail"], r.text
