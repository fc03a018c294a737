"""``POST /credit/scores``: the service call of ``crm credit score`` (one customer or everyone),
the same permission, the same result as the CLI, money as decimal strings, bad input refused."""
from __future__ import annotations

import json
from typing import Any

from crm_credit.models import CreditScore
from crm_credit.testing import Book
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.schemas import UserCreate


def _scores(crm: CRM) -> int:
    with crm.unit_of_work(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(CreditScore)) or 0)


def test_score_route_matches_the_command(ccrm: CRM, book: Book, ccli: Any) -> None:
    a, b = book.customer("A"), book.customer("B")
    book.invoice(a, "1000", "I1", days_ago=200, due_days_ago=170)
    book.pay(a, "1000", "P1", days_ago=160, invoice="I1")
    book.invoice(a, "300.10", "I3", days_ago=40, due_days_ago=10)
    with ccrm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
        uow.users.add(UserCreate(username="sam", display_name="Sam", roles=["sales"]))
        uow.users.add(UserCreate(username="cc", display_name="Cecile", roles=["credit_controller"]))
    h = {}
    for name in ("root", "sam", "cc"):
        with ccrm.unit_of_work("root") as uow:
            h[name] = {"Authorization": f"Bearer {TokenService(uow).create(name, 't')[1]}"}
    client = TestClient(create_app(ccrm), raise_server_exceptions=False)

    def refused(body: Any, status: int, *words: str, who: str = "cc") -> None:
        r = client.post("/credit/scores", json=body, headers=h[who])
        assert r.status_code == status, r.text
        assert "\n" not in r.json()["detail"] and all(w in r.json()["detail"] for w in words), r.json()["detail"]

    refused({}, 422, "customer_id or all")
    refused({"customer_id": a, "all": True}, 422, "customer_id or all")
    refused({"customer_id": 0}, 422, "customer_id")
    refused({"all": True, "as_of": "0999-01-01"}, 422, "as_of")
    refused({"all": True, "weights": 1}, 422, "weights")
    refused({"customer_id": 999_999}, 404, "999999")
    refused({"customer_id": a}, 403, "credit.score", who="sam")
    assert _scores(ccrm) == 0  # nothing half-written by any refusal

    one = client.post("/credit/scores", json={"customer_id": a}, headers=h["cc"])
    assert one.status_code == 200, one.text
    body = one.json()
    c = body["customer"]
    assert body["scored"] == 1 and sum(body["grades"].values()) == 1 and c["customer_id"] == a
    assert isinstance(c["suggested_limit"], str) and "." in c["suggested_limit"]
    assert set(c["points"]) == set(c["max_points"]) and c["score"] == sum(c["points"].values())
    res = ccli("credit", "score", "A", "--json", user="cc")
    assert res.exit_code == 0, res.output
    from_cli = json.loads(res.output)
    assert from_cli["customer"] == {k: v for k, v in c.items() if k != "max_points"}  # one service, one answer
    everyone = client.post("/credit/scores", json={"all": True}, headers=h["cc"]).json()
    assert everyone == {"scored": 2, "grades": everyone["grades"]} and sum(everyone["grades"].values()) == 2
    assert _scores(ccrm) == 2 and b


def test_profile_terms_over_the_profile_route(ccrm: CRM, book: Book) -> None:
    """``crm credit profile set --discount/--discount-days/--group/--next-review`` as PATCH fields."""
    a = book.customer("A")
    with ccrm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    with ccrm.unit_of_work("root") as uow:
        h = {"Authorization": f"Bearer {TokenService(uow).create('root', 't')[1]}"}
    client = TestClient(create_app(ccrm), raise_server_exceptions=False)
    url = f"/credit/customers/{a}/profile"

    def refused(body: Any, *words: str) -> None:
        r = client.patch(url, json=body, headers=h)
        assert r.status_code == 422, r.text
        assert "\n" not in r.json()["detail"] and all(w in r.json()["detail"] for w in words), r.json()["detail"]

    refused({"payment_terms_days": 30, "discount_percent": "2", "discount_days": 30}, "discount", "30 days")
    refused({"discount_percent": "2.001", "discount_days": 10}, "discount_percent")
    refused({"last_review": "2030-05-01", "next_review": "2030-04-01"}, "next-review", "2030-04-01")
    refused({"credit_group": "wholesale", "color": "red"}, "color")
    ok = client.patch(url, json={"payment_terms_days": 30, "discount_percent": "2", "discount_days": 10,
                                 "credit_group": "wholesale", "next_review": "2030-09-30"}, headers=h)
    assert ok.status_code == 200, ok.text
    p = ok.json()["profile"]
    assert (p["discount_percent"], p["discount_days"], p["credit_group"], p["next_review"]) == ("2.00", 10, "wholesale", "2030-09-30")
    cleared = client.patch(url, json={"clear_discount": True}, headers=h).json()
    p = cleared["profile"]
    assert (p["discount_percent"], p["discount_days"]) == (None, None)
