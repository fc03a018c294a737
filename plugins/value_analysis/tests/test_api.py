"""The value routes of the HTTP API: reports of the latest run and one customer's value."""
from __future__ import annotations

from crm_value_analysis import services
from crm_value_analysis.testing import Base, d
from fastapi.testclient import TestClient

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.schemas import UserCreate


def test_value_routes(vcrm: CRM, base: Base) -> None:
    ids = [base.customer(f"C{i}") for i in range(6)]
    for n, c in enumerate(ids):
        base.buys(c, [1, 20 + n, 60 + 2 * n], str(100 * (n + 1)))
    client = TestClient(create_app(vcrm), raise_server_exceptions=False)
    with vcrm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    with vcrm.unit_of_work("root") as uow:
        h = {"Authorization": f"Bearer {TokenService(uow).create('root', 't')[1]}"}
    early = client.get("/value/pyramid", headers=h)  # no run yet: one clear line, not a 500
    assert early.status_code in (400, 404, 409) and "run" in early.json()["detail"]
    with vcrm.unit_of_work("root") as uow:
        services.run_analysis(uow, as_of=d(120))
    assert client.get("/value/pyramid").status_code == 401
    pyramid = client.get("/value/pyramid", headers=h)
    assert pyramid.status_code == 200, pyramid.text
    assert client.get("/value/rfm", headers=h).status_code == 200
    assert client.get("/value/clv?limit=3", headers=h).status_code == 200
    one = client.get(f"/value/customers/{ids[-1]}", headers=h)
    assert one.status_code == 200, one.text
    assert client.get("/value/customers/999999", headers=h).status_code == 404
