"""Issue 24 §5: a converted lead keeps its source reference (the badge number) on the contact it
becomes, and gives that contact a role in the buying centre, by every face."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from crm_sales_automation import services
from crm_sales_automation.testing import Sales, assert_error
from fastapi.testclient import TestClient

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.models import Contact


def _contact(crm: CRM, contact_id: int) -> tuple[str, str | None, str | None]:
    with crm.unit_of_work("admin", read_only=True) as uow:
        c = uow.session.get(Contact, contact_id)
        return c.name, c.role, c.external_ref


def test_python_the_contact_keeps_the_badge_and_gets_a_role(scrm: CRM, sales: Sales) -> None:
    badge = sales.lead("Jana Novak", status="qualified", company="Alpine Kitchens", external_ref="BADGE-4711")
    with scrm.unit_of_work() as uow:
        r = services.convert(uow, badge)
    assert _contact(scrm, r.contact_id) == ("Jana Novak", "initiator", "BADGE-4711")
    with scrm.unit_of_work(read_only=True) as uow:
        assert services.lead_detail(uow, badge)["ref"] == "BADGE-4711"  # the lead keeps it too
    # a second lead with the same person's badge already on a contact: the contact gets a fresh reference
    again = sales.lead("Jan Novak", status="qualified", company="Alpine Kitchens 2", external_ref="BADGE-4712")
    with scrm.unit_of_work() as uow:
        uow.session.get(Contact, r.contact_id).external_ref = "BADGE-4712"
    with scrm.unit_of_work() as uow:
        r2 = services.convert(uow, again, new=True, contact_role="decider")
    name, role, ref = _contact(scrm, r2.contact_id)
    assert (name, role) == ("Jan Novak", "decider") and ref not in (None, "BADGE-4712")


def test_cli_and_api_take_the_role_and_refuse_an_unknown_one(scrm: CRM, sales: Sales, scli: Callable[..., Any]) -> None:
    sales.user("anna", "sales")
    sales.actor = "anna"
    one = sales.lead("Eva", status="qualified", company="Eva GmbH", external_ref="BADGE-1")
    two = sales.lead("Max", status="qualified", company="Max AG", external_ref="BADGE-2")
    assert_error(scli("sales", "lead", "convert", str(one), "--role", "boss", user="anna"), "role")
    with scrm.unit_of_work("admin", read_only=True) as uow:
        assert services.lead_detail(uow, one)["status"] == "qualified"  # nothing written
    res = scli("sales", "lead", "convert", str(one), "--role", "gatekeeper", "--json", user="anna")
    assert res.exit_code == 0, res.output
    assert _contact(scrm, json.loads(res.output)["contact_id"]) == ("Eva", "gatekeeper", "BADGE-1")
    with scrm.unit_of_work("admin") as uow:
        h = {"Authorization": f"Bearer {TokenService(uow).create('anna', 't')[1]}"}
    client = TestClient(create_app(scrm), raise_server_exceptions=False)
    bad = client.post(f"/sales/leads/{two}/convert", json={"role": "boss"}, headers=h)
    assert bad.status_code == 422 and "role" in bad.text, bad.text
    ok = client.post(f"/sales/leads/{two}/convert", json={"role": "influencer"}, headers=h)
    assert ok.status_code == 200, ok.text
    assert _contact(scrm, ok.json()["contact_id"]) == ("Max", "influencer", "BADGE-2")
