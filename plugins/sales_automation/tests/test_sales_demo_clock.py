"""Issue 24 §6: the sales demo and the lists a newcomer reads after it (follow-up, stale, overdue)
give the same results whatever today's date is: every demo timestamp lies before ``--as-of``, and
the reports run ``--as-of`` that day do not read the clock."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import crm_sales_automation.plugin as PLUGIN
import pytest
from crm_sales_automation.models import Activity, Assessment, Conversion, Lead, Opportunity, StageChange
from crm_sales_automation.services import _common
from crm_sales_automation.testing import assert_error
from fastapi.testclient import TestClient
from sqlalchemy import select

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.schemas import UserCreate

AS_OF = dt.date(2025, 1, 15)
NOON = dt.datetime.combine(AS_OF, dt.time(12), tzinfo=dt.UTC)


@pytest.fixture
def demo(make_crm: Callable[..., CRM], cli: Callable[..., Any]) -> CRM:
    crm = make_crm(plugins=[PLUGIN])
    with crm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="demo", display_name="Demo", roles=["admin"]))
        uow.users.add(UserCreate(username="anna", display_name="Anna", roles=["sales"]))
    for i in range(4):
        assert cli("customer", "add", f"Customer {i}", plugins=[PLUGIN], user="demo").exit_code == 0
    res = cli("sales", "demo", "--deals", "25", "--leads", "30", "--seed", "3", "--as-of", AS_OF.isoformat(),
              plugins=[PLUGIN], user="demo")
    assert res.exit_code == 0, res.output
    return crm


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def test_every_demo_timestamp_lies_before_its_as_of(demo: CRM) -> None:
    columns = [Lead.created_at, Lead.updated_at, Assessment.assessed_at, Conversion.converted_at, Opportunity.created_at,
               Opportunity.updated_at, Opportunity.closed_at, StageChange.changed_at, Activity.created_at, Activity.done_at]
    with demo.unit_of_work(read_only=True) as uow:
        for col in columns:
            values = [_aware(v) for v in uow.session.scalars(select(col)) if v is not None]
            assert values, col
            assert all(NOON - dt.timedelta(days=400) <= v <= NOON for v in values), (str(col), max(values))
        assert uow.session.scalars(select(Conversion.id)).first() is not None  # the demo converts some leads


def test_the_follow_up_and_stale_lists_read_the_same_on_any_day(demo: CRM, cli: Callable[..., Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def reports() -> list[Any]:
        out = []
        for args in (("follow-up",), ("follow-up", "--days", "10", "--owner", "anna"), ("stale",), ("stale", "--days", "7")):
            res = cli("sales", "report", *args, "--as-of", AS_OF.isoformat(), "--json", plugins=[PLUGIN], user="demo")
            assert res.exit_code == 0, res.output
            out.append(json.loads(res.output))
        return out

    today = reports()
    follow, stale = today[0], today[2]
    assert follow["total"] > 0 and any(o["leads"] for o in follow["owners"])  # the demo leads are in it
    assert all(0 <= i["idle_days"] <= 400 for o in follow["owners"] for k in ("leads", "opportunities") for i in o[k])
    assert all(0 <= d["idle_days"] <= 400 for d in stale["stale"])
    assert all(dt.datetime.fromisoformat(a["due_at"]) < NOON for a in stale["overdue_activities"])
    assert all(dt.date.fromisoformat(d["expected_close"]) < AS_OF for d in stale["overdue_deals"])
    for later in (dt.datetime(2031, 6, 1, tzinfo=dt.UTC), dt.datetime(2040, 12, 31, 23, tzinfo=dt.UTC)):
        monkeypatch.setattr(_common, "utcnow", lambda later=later: later)  # the reports' only clock
        assert reports() == today
    with demo.unit_of_work("demo") as uow:
        h = {"Authorization": f"Bearer {TokenService(uow).create('demo', 't')[1]}"}
    client = TestClient(create_app(demo), raise_server_exceptions=False)
    r = client.get(f"/sales/reports/follow-up?as_of={AS_OF.isoformat()}", headers=h)
    assert r.status_code == 200 and r.json() == today[0]
    assert client.get("/sales/reports/follow-up?as_of=15.01.2025", headers=h).status_code == 422


@pytest.mark.parametrize("report", ["follow-up", "stale"])
def test_a_bad_as_of_is_one_line(scrm: CRM, scli: Callable[..., Any], report: str) -> None:
    res = scli("sales", "report", report, "--as-of", "15.01.2025")
    assert_error(res, "invalid input: as-of: '15.01.2025' is not a date (use YYYY-MM-DD)")
