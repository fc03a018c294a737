"""The set-based report (one aggregate pass: FILTERed counts and percentile_cont on PostgreSQL,
one scan folded in NumPy on SQLite) against an independent per-ticket computation in plain
Python (``statistics``), on generated tickets with every status, breach and group mix."""
from __future__ import annotations

import datetime as dt
import random
import statistics
from collections import defaultdict
from typing import Any

import crm_service.plugin as PLUGIN
import pytest
from crm_service import report
from crm_service.models import SurveyAnswer, Ticket
from sqlalchemy import insert, select

from crmcore import CRM
from crmcore.models import User
from crmcore.schemas import CustomerCreate, UserCreate

NOW = dt.datetime(2030, 6, 5, 12, 0, tzinfo=dt.UTC)
TEAMS = ("support", "billing")
CONFIG = {"service": {"teams": {t: {} for t in TEAMS}}}


def generate(crm: CRM, n: int = 700, seed: int = 3) -> None:
    rnd = random.Random(seed)
    with crm.unit_of_work("test") as uow:
        uow.users.add(UserCreate(username="test", display_name="T", roles=["admin"]))
        agents = [uow.users.add(UserCreate(username=f"a{i}", display_name=f"A{i}", roles=["support_agent"])).id
                  for i in range(3)]
        customers = [uow.customers.create(CustomerCreate(name=f"C{i}")).id for i in range(8)]
        rows = []
        for i in range(n):
            opened = NOW - dt.timedelta(minutes=rnd.randint(10, 200 * 1440))
            status = rnd.choice(["new", "open", "waiting", "resolved", "closed", "closed"])
            done = status in ("resolved", "closed")
            answered = status != "new" and rnd.random() < 0.9
            # ties on purpose (small ranges): the interpolation between equal neighbours must agree
            frt = rnd.randint(0, 40) * 7 if answered else None
            res = rnd.randint(0, 300) * 11 if done and rnd.random() < 0.95 else None
            rows.append({"customer_id": rnd.choice(customers), "channel": "email",
                         "kind": rnd.choice(["complaint", "inquiry", "request", "suggestion"]),
                         "category": rnd.choice(["billing", "delivery", "other"]), "priority": "normal",
                         "subject": f"t{i}", "assignee_id": rnd.choice([*agents, None]), "team": rnd.choice(TEAMS),
                         "status": status, "external_ref": f"T{i}", "opened_at": opened,
                         "first_response_due": opened + dt.timedelta(hours=8),
                         "resolution_due": opened + dt.timedelta(hours=40),
                         "first_response_breached_at": opened if rnd.random() < 0.2 else None,
                         "resolution_breached_at": opened if rnd.random() < 0.2 else None,
                         "first_response_minutes": frt, "resolution_minutes": res, "paused_minutes": 0,
                         "reopen_count": rnd.choice([0, 0, 0, 1, 2]), "created_at": NOW})
        uow.session.execute(insert(Ticket), rows)
        answers = [{"customer_id": t.customer_id, "ticket_id": t.id, "kind": "csat", "score": rnd.randint(1, 5),
                    "answered_at": NOW, "dedupe": f"csat:t{t.id}", "source": "test"}
                   for t in uow.session.scalars(select(Ticket)) if rnd.random() < 0.3]
        uow.session.execute(insert(SurveyAnswer), answers)


def pct(values: list[int]) -> dict[str, float | None]:
    """Median and p90 (linear interpolation) in hours, as the report rounds them."""
    if not values:
        return {"median": None, "p90": None}
    p90 = values[0] if len(values) == 1 else statistics.quantiles(values, n=10, method="inclusive")[8]
    return {"median": round(statistics.median(values) / 60, 2), "p90": round(p90 / 60, 2)}


def rate(num: int, den: int) -> float | None:
    return None if den == 0 else round(num / den, 4)


def expected(tickets: list[Ticket], csat: dict[int, int]) -> dict[str, Any]:
    """The KPIs of a group, ticket by ticket."""
    active = [t for t in tickets if t.status.value in ("new", "open", "waiting")]
    done = [t for t in tickets if t not in active]
    ok = [t for t in done if t.first_response_breached_at is None and t.resolution_breached_at is None]
    complaints = [t for t in tickets if t.kind.value == "complaint"]
    handled = [t for t in complaints if t.resolution_minutes is not None and t.resolution_breached_at is None]
    base = [t for t in tickets if t.resolution_minutes is not None or t not in active]
    ages = [(NOW - t.opened_at).total_seconds() / 86400 for t in active]
    scores = [csat[t.id] for t in tickets if t.id in csat]
    return {
        "tickets": len(tickets), "backlog": len(active),
        "ageing": {"under_1d": sum(a < 1 for a in ages), "1d_3d": sum(1 <= a < 3 for a in ages),
                   "3d_7d": sum(3 <= a < 7 for a in ages), "over_7d": sum(a >= 7 for a in ages)},
        "first_response_hours": pct([t.first_response_minutes for t in tickets if t.first_response_minutes is not None]),
        "resolution_hours": pct([t.resolution_minutes for t in tickets if t.resolution_minutes is not None]),
        "sla_attainment": rate(len(ok), len(done)), "complaint_handling_rate": rate(len(handled), len(complaints)),
        "reopen_rate": None if not done else rate(sum(t.reopen_count > 0 for t in base), len(base)),
        "csat": {"answers": len(scores), "avg": round(sum(scores) / len(scores), 2) if scores else None,
                 "distribution": {str(s): scores.count(s) for s in range(1, 6)}},
    }


@pytest.fixture
def crm(make_crm: Any) -> CRM:
    crm = make_crm(plugins=[PLUGIN], config=CONFIG)
    crm.clock = lambda: NOW
    generate(crm)
    return crm


@pytest.mark.parametrize("by", [None, "agent", "team", "category", "month"])
def test_report_equals_a_per_ticket_computation(crm: CRM, by: str | None) -> None:
    with crm.unit_of_work("test", read_only=True) as uow:
        out = report.report(uow, by)
        tickets = list(uow.session.scalars(select(Ticket)))
        csat = dict(uow.session.execute(select(SurveyAnswer.ticket_id, SurveyAnswer.score)).all())
        names = dict(uow.session.execute(select(User.id, User.username)).all())
        check(out, by, tickets, csat, names)


def check(out: dict[str, Any], by: str | None, tickets: list[Ticket], csat: dict[int, int], names: dict[int, str]) -> None:
    label = {None: lambda t: None, "team": lambda t: t.team, "category": lambda t: t.category,
             "agent": lambda t: names.get(t.assignee_id, "(unassigned)"),
             "month": lambda t: t.opened_at.astimezone(dt.UTC).strftime("%Y-%m")}[by]
    groups: dict[Any, list[Ticket]] = defaultdict(list)
    for t in tickets:
        groups[label(t)].append(t)
    total = out["total"]
    assert total.pop("return_visit_rate") is None  # no visits generated
    assert total == expected(tickets, csat)
    if by is None:
        assert out["groups"] == []
        return
    assert [g[by] for g in out["groups"]] == sorted(groups, key=str)
    assert len(groups) > 1 and (by != "agent" or "(unassigned)" in groups)
    for g in out["groups"]:
        assert {k: v for k, v in g.items() if k != by} == expected(groups[g[by]], csat), g[by]


def test_report_of_an_empty_table(make_crm: Any) -> None:
    crm = make_crm(plugins=[PLUGIN], config=CONFIG)
    with crm.unit_of_work("test", read_only=True) as uow:
        for by in (None, "team"):
            out = report.report(uow, by)
            assert out["groups"] == [] and out["total"]["tickets"] == 0
            assert out["total"]["first_response_hours"] == {"median": None, "p90": None}
            assert out["total"]["sla_attainment"] is None
