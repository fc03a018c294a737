""""Own customers" visibility holds for writes too, in the services, so every face refuses the same
way: an own user changing another owner's contact or account gets "not found" (as for a customer
that does not exist), and nothing is written."""
from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.errors import NotFound
from crmcore.models import AuditEntry
from crmcore.schemas import AccountCreate, ContactCreate, ContactUpdate, CustomerCreate, TransactionCreate, UserCreate


@pytest.fixture
def two_owners(make_crm: Callable[..., CRM]) -> tuple[CRM, dict[str, int], str]:
    crm = make_crm(config={"visibility": {"sales": "own", "credit_controller": "own"}})
    with crm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
        for name in ("anna", "bob"):
            uow.users.add(UserCreate(username=name, display_name=name.title(), roles=["sales", "credit_controller"]))
    with crm.unit_of_work("root") as uow:
        bob = uow.customers.create(CustomerCreate(name="Bob Builders", external_ref="B-1", owner="bob"))
        contact = uow.contacts.add(bob.id, ContactCreate(name="Carla Contact"))
        uow.accounts.post(bob.id, TransactionCreate(kind="invoice", amount=Decimal("10.00"), reference="INV-1"))
        ids = {"customer": bob.id, "contact": contact.id, "account": uow.accounts.list(bob.id)[0].id}
        token = TokenService(uow).create("anna", "t")[1]
    return crm, ids, token


def _audit_count(crm: CRM) -> int:
    with crm.unit_of_work("root", read_only=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(AuditEntry))


@pytest.mark.parametrize("write", ["contact update", "contact remove", "contact add", "account status", "account open",
                                   "account post"])
def test_python_api_writes_refuse_another_owners_customer(two_owners: tuple[CRM, dict[str, int], str], write: str) -> None:
    crm, ids, _ = two_owners
    before = _audit_count(crm)
    calls: dict[str, Callable[[Any], Any]] = {
        "contact update": lambda uow: uow.contacts.update(ids["contact"], ContactUpdate(name="Hijacked")),
        "contact remove": lambda uow: uow.contacts.remove(ids["contact"]),
        "contact add": lambda uow: uow.contacts.add(ids["customer"], ContactCreate(name="Mole")),
        "account status": lambda uow: uow.accounts.set_status(ids["account"], "on_hold"),
        "account open": lambda uow: uow.accounts.open(ids["customer"], AccountCreate(currency="USD")),
        "account post": lambda uow: uow.accounts.post(ids["customer"], TransactionCreate(
            kind="payment", amount=Decimal("10.00"), reference="PAY-X")),
    }
    with pytest.raises(NotFound), crm.unit_of_work("anna") as uow:
        calls[write](uow)
    assert _audit_count(crm) == before
    with crm.unit_of_work("bob") as uow:  # the owner still can
        calls[write](uow)


def test_cli_and_http_refuse_the_same_way(two_owners: tuple[CRM, dict[str, int], str], cli: Callable[..., Any],
                                          tmp_path: Path) -> None:
    crm, ids, token = two_owners
    (tmp_path / "crm.toml").write_text('[visibility]\nsales = "own"\ncredit_controller = "own"\n')  # cli runs in tmp_path
    res = cli("contact", "update", str(ids["contact"]), "--name", "Hijacked", user="anna")
    assert res.exit_code == 1 and res.output.strip() == f"error: contact {ids['contact']} not found"
    res = cli("account", "status", str(ids["account"]), "on_hold", user="anna")
    assert res.exit_code == 1 and res.output.strip() == f"error: account {ids['account']} not found"
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    h = {"Authorization": f"Bearer {token}"}
    assert client.patch(f"/contacts/{ids['contact']}", json={"name": "Hijacked"}, headers=h).status_code == 404
    assert client.delete(f"/contacts/{ids['contact']}", headers=h).status_code == 404
    assert client.post(f"/accounts/{ids['account']}/status", json={"status": "on_hold"}, headers=h).status_code == 404
    with crm.unit_of_work("root", read_only=True) as uow:
        assert uow.contacts.list(ids["customer"])[0].name == "Carla Contact"
        assert uow.accounts.get(ids["account"]).status.value == "open"
