"""The contact person on a sales activity: one of the customer's contacts (of its deal, or of the
customer its lead became), never another customer's; by the CLI, the API and in the lists."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from crm_sales_automation import services
from crm_sales_automation.models import Activity
from crm_sales_automation.schemas import ActivityCreate
from crm_sales_automation.testing import Sales, assert_error
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.errors import InvalidInput, NotFound
from crmcore.schemas import ContactCreate

Run = Callable[..., Any]


def _people(crm: CRM, sales: Sales) -> tuple[int, int, int, int]:
    mine, other = sales.customer("Alpine", external_ref="ALP"), sales.customer("Other", external_ref="OTH")
    with crm.unit_of_work() as uow:
        jana = uow.contacts.add(mine, ContactCreate(name="Jana Novak")).id
        otto = uow.contacts.add(other, ContactCreate(name="Otto")).id
    return mine, other, jana, otto


def _count(crm: CRM) -> int:
    with crm.unit_of_work(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Activity)) or 0)


def test_python_checks_the_person_belongs_to_the_customer(scrm: CRM, sales: Sales) -> None:
    mine, other, jana, otto = _people(scrm, sales)
    deal = sales.opp(mine)
    lead = sales.lead("Not yet a customer")
    with scrm.unit_of_work() as uow:
        a = services.add_activity(uow, ActivityCreate(kind="call", subject="c", contact_id=jana), customer_id=mine)
        b = services.add_activity(uow, ActivityCreate(kind="demo", subject="d", contact_id=jana), opportunity_id=deal)
        assert (a.contact_id, b.contact_id) == (jana, jana)
    for kw in ({"customer_id": mine}, {"opportunity_id": deal}):
        with pytest.raises(InvalidInput, match=f"contact {otto} is not a contact of customer {mine}"), scrm.unit_of_work() as uow:
            services.add_activity(uow, ActivityCreate(kind="call", subject="x", contact_id=otto), **kw)
    with pytest.raises(InvalidInput, match="not a customer yet"), scrm.unit_of_work() as uow:
        services.add_activity(uow, ActivityCreate(kind="call", subject="x", contact_id=jana), lead_id=lead)
    with pytest.raises(NotFound, match="contact 999999 not found"), scrm.unit_of_work() as uow:
        services.add_activity(uow, ActivityCreate(kind="call", subject="x", contact_id=999999), customer_id=mine)
    assert _count(scrm) == 2
    with scrm.unit_of_work(read_only=True) as uow:
        rows = services.opportunity_detail(uow, deal)["activities"]
        assert [(r["contact_id"], r["contact"]) for r in rows] == [(jana, "Jana Novak")]
    assert other


def test_cli_option_and_list(scrm: CRM, sales: Sales, scli: Run) -> None:
    mine, _, jana, otto = _people(scrm, sales)
    res = scli("sales", "activity", "add", "call", "Call Jana", "--customer", "ALP", "--contact", str(jana),
               "--due", "2000-01-01", "--json")
    assert res.exit_code == 0, res.output
    assert_error(scli("sales", "activity", "add", "call", "Call Otto", "--customer", "ALP", "--contact", str(otto)),
                 f"contact {otto} is not a contact of customer {mine}")
    assert _count(scrm) == 1
    due = scli("sales", "activity", "due")
    assert "Jana Novak" in due.stdout and "with" in due.stdout
    rows = json.loads(scli("sales", "activity", "due", "--json").stdout)
    assert [(r["contact_id"], r["contact"]) for r in rows] == [(jana, "Jana Novak")]


def test_api_field(scrm: CRM, sales: Sales) -> None:
    mine, _, jana, otto = _people(scrm, sales)
    sales.user("anna")
    with scrm.unit_of_work("admin") as uow:
        token = {"Authorization": f"Bearer {TokenService(uow).create('anna', 't')[1]}"}
    client = TestClient(create_app(scrm), raise_server_exceptions=False)
    ok = client.post("/sales/activities", json={"kind": "call", "subject": "s", "customer_id": mine, "contact_id": jana},
                     headers=token)
    assert ok.status_code == 201, ok.text
    bad = client.post("/sales/activities", json={"kind": "call", "subject": "s", "customer_id": mine, "contact_id": otto},
                      headers=token)
    assert bad.status_code == 422 and f"contact {otto}" in bad.text
    with scrm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalars(select(Activity.contact_id)).all() == [jana]
