"""``GET /value/retention``: an ``as_of`` outside the dates the reports accept is one 422 line
naming the range (it was a 500: counting yearly periods back from year 999 overflowed); both
ends of the range answer over the oldest history the ledger accepts."""
from __future__ import annotations

import datetime as dt

from crm_value_analysis.schemas import DATE_RANGE
from fastapi.testclient import TestClient

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.schemas import CustomerCreate, TransactionCreate, UserCreate


def test_retention_as_of_range_and_year_one(vcrm: CRM) -> None:
    with vcrm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    with vcrm.unit_of_work("root") as uow:
        h = {"Authorization": f"Bearer {TokenService(uow).create('root', 't')[1]}"}
        c = uow.customers.create(CustomerCreate(name="Old Firm")).id
        for ref, when in (("Y1", dt.datetime(1900, 1, 1, tzinfo=dt.UTC)), ("Y2", dt.datetime(1900, 12, 1, tzinfo=dt.UTC))):
            uow.accounts.post(c, TransactionCreate(kind="invoice", amount="10.00", reference=ref, occurred_at=when))
    client = TestClient(create_app(vcrm), raise_server_exceptions=False)
    span = f"{DATE_RANGE[0]}..{DATE_RANGE[1]}"
    for bad in ("0999-01-01", "1899-12-31", "3000-01-01"):
        r = client.get(f"/value/retention?as_of={bad}", headers=h)
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == f"invalid input: as_of: {bad} is outside {span}"
    assert client.get("/value/retention?as_of=yesterday", headers=h).status_code == 422
    first = client.get("/value/retention?as_of=1900-01-01", headers=h)
    assert first.status_code == 200, first.text
    assert (first.json()["as_of"], first.json()["periods"], first.json()["rate"]) == ("1900-01-01", 1, None)
    last = client.get("/value/retention?as_of=2999-12-31", headers=h)
    assert last.status_code == 200, last.text
    body = last.json()  # 1,100 years of yearly periods counted back, the oldest one holding the first purchase
    assert body["periods"] == (dt.date(2999, 12, 31) - dt.date(1900, 1, 1)).days // 365 + 1
    end = dt.date(2999, 12, 31)
    p1, p2 = ((end - day).days // 365 for day in (dt.date(1900, 1, 1), dt.date(1900, 12, 1)))
    assert body["cohorts"][0]["customers"] == 1
    assert body["rate"] == (0.5 if p1 - p2 == 1 else 0.0)  # bought again in the next period, or in the same one
