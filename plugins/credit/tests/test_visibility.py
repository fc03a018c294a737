"""An "own" user's ageing, DSO, dunning list and credit profile cover only their customers, totals
included, by every face: issue 25's acceptance test for GET /credit/aging."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import crm_credit.plugin as PLUGIN
import pytest
from crm_credit import reports
from fastapi.testclient import TestClient

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.errors import NotFound
from crmcore.schemas import CustomerCreate, TransactionCreate, UserCreate

DAY = dt.date(2024, 3, 1)


class Ledger:
    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        with crm.unit_of_work("setup") as uow:
            for name, role in (("root", "admin"), ("anna", "sales"), ("bob", "sales")):
                uow.users.add(UserCreate(username=name, display_name=name.title(), roles=[role]))
        with crm.unit_of_work("root") as uow:
            self.ids = {}
            for owner, amount in (("anna", "100.00"), ("bob", "900.00")):
                c = uow.customers.create(CustomerCreate(name=f"{owner} co", owner=owner, external_ref=owner.upper()))
                uow.accounts.post(c.id, TransactionCreate(kind="invoice", amount=Decimal(amount), reference=f"I-{owner}",
                                                          occurred_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)))
                self.ids[owner] = c.id
            self.tokens = {n: {"Authorization": f"Bearer {TokenService(uow).create(n, 't')[1]}"} for n in ("anna", "root")}

    def get(self, user: str, path: str) -> Any:
        return TestClient(create_app(self.crm), raise_server_exceptions=False).get(path, headers=self.tokens[user])


@pytest.fixture
def book(make_crm: Callable[..., CRM]) -> Ledger:
    return Ledger(make_crm(plugins=[PLUGIN], config={"visibility": {"sales": "own"}}))


def _open(report: dict[str, Any]) -> tuple[list[int], list[str]]:
    return [r["customer_id"] for r in report["customers"]], [str(t["open"]) for t in report["totals"]]


def test_python_ageing_and_dso(book: Ledger) -> None:
    with book.crm.unit_of_work("anna", read_only=True) as uow:
        assert _open(reports.ageing(uow, DAY)) == ([book.ids["anna"]], ["100.00"])
        dso = reports.dso(uow, dt.date(2024, 1, 1), DAY)
        assert [r["customer_id"] for r in dso["customers"]] == [book.ids["anna"]]
        assert [str(t["receivables"]) for t in dso["totals"]] == ["100.00"]
        with pytest.raises(NotFound, match=f"customer {book.ids['bob']} not found"):
            reports.profile_data(uow, book.ids["bob"])
    with book.crm.unit_of_work("root", read_only=True) as uow:
        assert _open(reports.ageing(uow, DAY)) == (sorted(book.ids.values()), ["1000.00"])


def test_http_ageing(book: Ledger) -> None:
    r = book.get("anna", f"/credit/aging?as_of={DAY}")
    assert r.status_code == 200
    assert [c["customer_id"] for c in r.json()["customers"]] == [book.ids["anna"]]
    assert [t["open"] for t in r.json()["totals"]] == ["100.00"]
    hidden = book.get("anna", f"/credit/aging?as_of={DAY}&customer_id={book.ids['bob']}")
    assert hidden.status_code == 404 and hidden.json()["detail"] == f"customer {book.ids['bob']} not found"
    assert book.get("anna", f"/credit/customers/{book.ids['bob']}").status_code == 404
    assert [t["open"] for t in book.get("root", f"/credit/aging?as_of={DAY}").json()["totals"]] == ["1000.00"]


def test_cli_ageing_dso_and_profile(book: Ledger, cli: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / "crm.toml").write_text('[visibility]\nsales = "own"\n')

    def run(*args: str) -> Any:
        return cli("credit", *args, plugins=[PLUGIN], user="anna")

    out = json.loads(run("aging", "--as-of", str(DAY), "--json").output)
    assert [c["customer_id"] for c in out["customers"]] == [book.ids["anna"]] and [t["open"] for t in out["totals"]] == ["100.00"]
    table = run("aging", "--as-of", str(DAY)).output
    assert "100.00" in table and "900.00" not in table and "1,000.00" not in table
    out = json.loads(run("dso", "--from", "2024-01-01", "--to", str(DAY), "--json").output)
    assert [t["receivables"] for t in out["totals"]] == ["100.00"]
    res = run("profile", "show", "BOB")
    assert res.exit_code == 1 and res.output.strip() == "error: customer 'BOB' not found"
