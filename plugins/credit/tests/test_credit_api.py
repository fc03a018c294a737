"""The credit routes of the HTTP API: profile, check, hold, a release needing credit.release (403 without), ageing."""
from __future__ import annotations

from decimal import Decimal

from crm_credit.testing import Book
from fastapi.testclient import TestClient

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.schemas import UserCreate


def test_credit_routes(ccrm: CRM, book: Book) -> None:
    a = book.customer("ACME")
    book.profile(a, limit=Decimal(10000))
    book.invoice(a, "8000", "I-1", days_ago=40, due_days_ago=10)
    with ccrm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
        uow.users.add(UserCreate(username="sam", display_name="Sam", roles=["sales"]))
        uow.users.add(UserCreate(username="cc", display_name="Cecile", roles=["credit_controller"]))
    h = {}
    for name in ("root", "sam", "cc"):
        with ccrm.unit_of_work("root") as uow:
            h[name] = {"Authorization": f"Bearer {TokenService(uow).create(name, 't')[1]}"}
    client = TestClient(create_app(ccrm), raise_server_exceptions=False)
    assert client.get(f"/credit/customers/{a}").status_code == 401
    assert client.get(f"/credit/customers/{a}", headers=h["sam"]).status_code == 200
    ok = client.post(f"/credit/customers/{a}/check", json={"amount": "2000"}, headers=h["sam"]).json()
    too_much = client.post(f"/credit/customers/{a}/check", json={"amount": "2000.01"}, headers=h["sam"]).json()
    assert ok["ok"] is True and too_much["ok"] is False and too_much["exposure"] in ("10000.01", "10000.0100")
    assert client.post(f"/credit/customers/{a}/check", json={"amount": "-1"}, headers=h["sam"]).status_code == 422
    held = client.post(f"/credit/customers/{a}/hold", json={"reason": "cheque bounced"}, headers=h["cc"])
    assert held.status_code == 200, held.text
    refused = client.post(f"/customers/{a}/transactions", json={"kind": "invoice", "amount": "10", "reference": "I-2"},
                          headers=h["root"])
    assert refused.status_code == 409 and "credit hold" in refused.json()["detail"]
    denied = client.post(f"/credit/customers/{a}/release", json={"reason": "paid"}, headers=h["sam"])
    assert denied.status_code == 403 and "lacks credit.release" in denied.json()["detail"]
    released = client.post(f"/credit/customers/{a}/release", json={"reason": "paid by wire", "days": 3}, headers=h["cc"])
    assert released.status_code == 200, released.text
    aging = client.get("/credit/aging", headers=h["sam"]).json()
    assert sum(Decimal(str(v)) for v in aging["totals"][0]["buckets"].values()) == Decimal(str(aging["totals"][0]["open"]))
    assert client.get("/credit/customers/999999", headers=h["sam"]).status_code == 404
