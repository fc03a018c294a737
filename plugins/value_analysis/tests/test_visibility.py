"""Value reports are about the whole customer base: an "own" user needs ``value.report`` for them,
by the CLI and the HTTP API alike; users who see every customer read them with customer.read."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import crm_value_analysis.plugin as PLUGIN
from fastapi.testclient import TestClient

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.schemas import CustomerCreate, TransactionCreate, UserCreate


def test_an_own_user_needs_value_report(make_crm: Callable[..., CRM], cli: Callable[..., Any], tmp_path: Any) -> None:
    (tmp_path / "crm.toml").write_text('[visibility]\nsales = "own"\n')
    crm = make_crm(plugins=[PLUGIN], config={"visibility": {"sales": "own"}})
    with crm.unit_of_work("setup") as uow:
        for name, role in (("root", "admin"), ("anna", "sales"), ("mel", "manager")):
            uow.users.add(UserCreate(username=name, display_name=name.title(), roles=[role]))
    with crm.unit_of_work("root") as uow:
        for i in range(6):
            c = uow.customers.create(CustomerCreate(name=f"Shop {i}", owner="anna" if i % 2 else "root", external_ref=f"S{i}"))
            for k in range(1 + i):
                uow.accounts.post(c.id, TransactionCreate(kind="invoice", amount=f"{100 * (i + 1)}.00", reference=f"I{i}-{k}",
                                                          occurred_at=dt.datetime(2024, 1 + k, 1, tzinfo=dt.UTC)))
        tokens = {n: {"Authorization": f"Bearer {TokenService(uow).create(n, 't')[1]}"} for n in ("anna", "root")}
    assert cli("value", "run", plugins=[PLUGIN], user="root").exit_code == 0
    res = cli("value", "pyramid", plugins=[PLUGIN], user="anna")
    assert res.exit_code == 1 and "lacks value.report" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert cli("value", "pyramid", plugins=[PLUGIN], user="root").exit_code == 0
    assert cli("value", "pyramid", plugins=[PLUGIN], user="mel").exit_code == 0
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    for path in ("/value/rfm", "/value/pyramid", "/value/clv"):
        assert client.get(path, headers=tokens["anna"]).status_code == 403, path
        assert client.get(path, headers=tokens["root"]).status_code == 200, path
