"""credit's review list by every face, for an "own" user and for one who sees all: the credit
files due for review (``GET /credit/reviews/due?as_of=``, ``crm credit review due --as-of --json``)
are the same object from the Python API, the HTTP API and the CLI, and an "own" user's holds only
their customers.

Ageing, DSO, the dunning list and the credit profile are in plugins/credit/tests/test_visibility.py.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import crm_credit.plugin as CREDIT
import pytest
from crm_credit import control, services
from crm_credit.schemas import ProfileUpdate
from fastapi.testclient import TestClient

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.schemas import CustomerCreate, UserCreate
from crmcore.sdk import jsonable

DAY = dt.date(2024, 6, 1)


@pytest.fixture
def world(make_crm: Callable[..., CRM], tmp_path: Path) -> tuple[CRM, TestClient, dict[str, dict[str, str]], dict[str, list[int]]]:
    """anna and bob ("own") own 2 and 3 customers with credit files: one of each never reviewed,
    the others reviewed on 1 January 2024 and due on 1 March or 1 September."""
    (tmp_path / "crm.toml").write_text('[visibility]\nsales = "own"\n')  # the cli fixture runs in tmp_path
    crm = make_crm(plugins=[CREDIT], config={"visibility": {"sales": "own"}})
    with crm.unit_of_work("setup") as uow:
        for name, role in (("root", "admin"), ("anna", "sales"), ("bob", "sales")):
            uow.users.add(UserCreate(username=name, display_name=name.title(), roles=[role]))
    ids: dict[str, list[int]] = {"anna": [], "bob": []}
    with crm.unit_of_work("root") as uow:
        for owner, n in (("anna", 2), ("bob", 3)):
            for i in range(n):
                cid = uow.customers.create(CustomerCreate(name=f"{owner} co {i}", owner=owner)).id
                ids[owner].append(cid)
                review = {} if i == 0 else {"last_review": dt.date(2024, 1, 1),
                                            "next_review": dt.date(2024, 3 if i % 2 else 9, 1)}
                services.set_profile(uow, cid, ProfileUpdate(limit="1000", currency="EUR", **review))
        heads = {n: {"Authorization": f"Bearer {TokenService(uow).create(n, 't')[1]}"} for n in ("root", "anna")}
    return crm, TestClient(create_app(crm), raise_server_exceptions=False), heads, ids


def test_reviews_due_by_every_face(world: tuple[CRM, TestClient, dict[str, dict[str, str]], dict[str, list[int]]],
                                   cli: Callable[..., Any]) -> None:
    crm, client, heads, ids = world
    due = {}
    for user in ("anna", "root"):
        with crm.unit_of_work(user, read_only=True) as uow:
            python = json.loads(json.dumps(jsonable({"as_of": DAY, "due": [r.__dict__ for r in control.review_due(uow, DAY)]})))
        r = client.get(f"/credit/reviews/due?as_of={DAY}", headers=heads[user])
        res = cli("credit", "review", "due", "--as-of", DAY.isoformat(), "--json", plugins=[CREDIT], user=user)
        assert r.status_code == 200 and res.exit_code == 0, (r.text, res.output)
        assert r.json() == python == json.loads(res.stdout), user
        due[user] = sorted(d["customer_id"] for d in python["due"])
    # due on 1 June: the never-reviewed files and those due on 1 March (not 1 September)
    assert due["anna"] == sorted([ids["anna"][0], ids["anna"][1]])
    assert due["root"] == sorted([*due["anna"], ids["bob"][0], ids["bob"][1]])
