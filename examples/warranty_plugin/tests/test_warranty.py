"""The warranty example plugin: its declarations reach the core, its rules hold on every face.

Run with `pytest` in the plugin's directory; CRM_TEST_DATABASE_URL runs it on PostgreSQL.
"""
from __future__ import annotations

import datetime as dt
import json

import crm_warranty.plugin as warranty
import pytest
from crm_warranty import claims
from fastapi.testclient import TestClient

from crmcore import CRM, InvalidInput, PermissionDenied
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.bulk.importer import run_import
from crmcore.bulk.readers import SourceRow
from crmcore.migrations import runner
from crmcore.schemas import CustomerCreate, UserCreate
from crmcore.statemachine import IllegalMove

TODAY = dt.date.today()


@pytest.fixture
def crm(make_crm):
    crm = make_crm(plugins=[warranty], config={"warranty": {"max_claim_days": 365}})
    with crm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="boss", display_name="Boss", roles=["admin"]))
        uow.users.add(UserCreate(username="wendy", display_name="Wendy", roles=["warranty_clerk"]))
        uow.users.add(UserCreate(username="sam", display_name="Sam", roles=["sales"]))
        uow.customers.create(CustomerCreate(name="Acme", external_ref="ACME", owner="sam"))
    return crm


def test_open_decide_close_is_audited_and_on_the_timeline(crm):
    with crm.unit_of_work("sam") as uow:
        cid = claims.open_claim(uow, "ACME", claims.ClaimIn(product="Tap", sold_on=TODAY, amount="49.90")).id
    with pytest.raises(PermissionDenied, match="warranty.decide"), crm.unit_of_work("sam") as uow:
        claims.decide(uow, cid, "approved")
    with crm.unit_of_work("wendy") as uow:
        claims.decide(uow, cid, "approved", reason="seal failed")
    with pytest.raises(IllegalMove, match="cannot move from approved to rejected \\(allowed from approved: closed\\)"), \
            crm.unit_of_work("wendy") as uow:
        claims.decide(uow, cid, "rejected")
    with crm.unit_of_work("boss", read_only=True) as uow:  # reading the audit log is an admin's act
        assert [e.action for e in uow.audit.list("warranty_claim")][:2] == ["move", "create"]
    with crm.unit_of_work("wendy", read_only=True) as uow:
        view = uow.profiles.get("ACME")
    section = view["sections"]["Warranty"]
    assert (section["claims"], section["open"]) == (1, 0), section
    assert any("open → approved" in json.dumps(t, ensure_ascii=False) for t in view["timeline"]), view["timeline"]


def test_settings_refuse_an_old_sale(crm):
    with pytest.raises(InvalidInput, match="max_claim_days"), crm.unit_of_work("sam") as uow:
        claims.open_claim(uow, "ACME", claims.ClaimIn(product="Tap", sold_on=TODAY - dt.timedelta(days=400)))


def test_cli_and_import_and_api(crm, cli, tmp_path):
    res = cli("warranty", "open", "ACME", "--product", "Tap", "--sold-on", TODAY.isoformat(), user="sam")
    assert res.exit_code == 0, res.output
    res = cli("warranty", "open", "ACME", "--product", "Tap", "--sold-on", "yesterday", user="sam")
    assert res.exit_code == 1 and len(res.stderr.strip().splitlines()) == 1
    rows = [SourceRow(2, {"external_ref": "W1", "customer_ref": "ACME", "product": "Sink", "sold_on": TODAY.isoformat()}),
            SourceRow(3, {"external_ref": "W2", "customer_ref": "NOPE", "product": "Sink", "sold_on": TODAY.isoformat()})]
    result = run_import(crm, "warranty_claims", rows, actor="boss")
    assert (result.inserted, result.rejected) == (1, 1)
    assert result.first_errors[0].reason == "unknown customer 'NOPE'"
    assert run_import(crm, "warranty_claims", rows[:1], actor="boss").unchanged == 1  # a re-run changes nothing
    listed = json.loads(cli("warranty", "list", "ACME", "--json", user="sam").output)
    assert [c["product"] for c in listed] == ["Tap", "Sink"]
    with crm.unit_of_work("boss") as uow:
        token = TokenService(uow).create("sam", "test")[1]
    client = TestClient(create_app(crm))
    got = client.get("/warranty/customers/1/claims", headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200 and len(got.json()) == 2


def test_migration_branch_upgrades_and_downgrades(empty_database_url):
    crm = CRM.open(empty_database_url, create=True, plugins=[warranty], entry_points=False)
    try:
        crm.upgrade()
        assert runner.schema_diff(crm.engine, crm.managed_tables()) == []
        branches = crm.migration_branches(crm.hooks.plugins)["warranty"]
        runner.downgrade_to_base(crm.engine, branches, "warranty")
    finally:
        crm.close()
