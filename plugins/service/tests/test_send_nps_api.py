"""``POST /service/surveys/send-nps``: the service call of ``crm service survey send-nps`` (its
permission, once per customer and period, a 409 line without the marketing plugin)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import crm_marketing.plugin as MARKETING  # its tables must be on the metadata when the test database is made
import crm_service.plugin as PLUGIN
from crm_marketing import services as marketing
from crm_marketing.schemas import ConsentSet
from fastapi.testclient import TestClient

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.schemas import CustomerCreate, UserCreate


def _heads(crm: CRM, **roles: str) -> dict[str, dict[str, str]]:
    with crm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    with crm.unit_of_work("root") as uow:
        for name, role in roles.items():
            uow.users.add(UserCreate(username=name, display_name=name.title(), roles=[role]))
    out = {}
    for name in ("root", *roles):
        with crm.unit_of_work("root") as uow:
            out[name] = {"Authorization": f"Bearer {TokenService(uow).create(name, 't')[1]}"}
    return out


def test_send_nps_route(make_crm: Any, clock: Any, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    crm = make_crm(plugins=[PLUGIN, MARKETING], config={"marketing": {"outbox": str(outbox)}})
    crm.clock = clock  # 2030-06-03: period 2030-Q2
    with crm.unit_of_work("test") as uow:
        yes = uow.customers.create(CustomerCreate(name="Yes", email="yes@example.com")).id
        uow.customers.create(CustomerCreate(name="No", email="no@example.com"))
        marketing.set_consent(uow, yes, ConsentSet(channel="email", status="opt_in", source="form"))
    h = _heads(crm, val="viewer")
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    assert client.post("/service/surveys/send-nps").status_code == 401
    denied = client.post("/service/surveys/send-nps", headers=h["val"])
    assert denied.status_code == 403 and "service.survey.write" in denied.json()["detail"], denied.text
    assert not outbox.exists()
    first = client.post("/service/surveys/send-nps", headers=h["root"])
    assert first.status_code == 200, first.text
    assert first.json() == {"period": "2030-Q2", "queued": 1, "suppressed": 1, "already_answered": 0, "already_sent": 0}
    assert (outbox / f"campaign-service-nps-c{yes}-2030-Q2" / f"customer-{yes}.eml").exists()
    again = client.post("/service/surveys/send-nps", headers=h["root"]).json()
    assert (again["queued"], again["already_sent"]) == (0, 2)


def test_send_nps_route_without_marketing(make_crm: Any) -> None:
    crm = make_crm(plugins=[PLUGIN])
    with crm.unit_of_work("test") as uow:
        uow.customers.create(CustomerCreate(name="A", email="a@example.com"))
    h = _heads(crm)
    r = TestClient(create_app(crm), raise_server_exceptions=False).post("/service/surveys/send-nps", headers=h["root"])
    assert r.status_code == 409 and "marketing plugin is not enabled" in r.json()["detail"] and "\n" not in r.json()["detail"]
