"""Tests of the hello plugin, on crmcore's fixtures (crm_url, make_crm, uow, cli, empty_database_url).

Run them with `pytest` in the plugin's directory; set CRM_TEST_DATABASE_URL to run on PostgreSQL.
"""
from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import inspect, select

import crm_hello.plugin as hello
from crm_hello.models import Greeting
from crmcore import CRM, InvalidInput
from crmcore.bulk.importer import run_import
from crmcore.bulk.readers import SourceRow
from crmcore.migrations import runner
from crmcore.schemas import CustomerCreate


@pytest.fixture
def crm(make_crm):
    """Overrides crmcore's ``crm`` fixture: the same CRM, with the plugin registered in code."""
    return make_crm(plugins=[hello])


def greetings(crm, customer_id=None):
    with crm.unit_of_work() as uow:
        q = select(Greeting.text).order_by(Greeting.id)
        if customer_id is not None:
            q = q.where(Greeting.customer_id == customer_id)
        return uow.session.scalars(q).all()


def test_new_customer_is_greeted_after_commit(crm, caplog):
    caplog.set_level(logging.INFO, logger="crm_hello")
    with crm.unit_of_work("alice") as uow:
        c = uow.customers.create(CustomerCreate(name="Acme", attributes={"hello_language": "de"}))
        assert "welcome sent" not in caplog.text  # not yet: the transaction is still open
    assert greetings(crm, c.id) == ["Hallo, Acme!"]
    assert f"welcome sent to customer {c.id}: Hallo, Acme!" in caplog.text


def test_rolled_back_customer_is_neither_greeted_nor_welcomed(crm, caplog):
    caplog.set_level(logging.INFO, logger="crm_hello")
    with pytest.raises(RuntimeError):
        with crm.unit_of_work() as uow:
            uow.customers.create(CustomerCreate(name="Ghost"))
            raise RuntimeError("the caller failed")
    assert greetings(crm) == []
    assert "welcome sent" not in caplog.text


def test_custom_field_is_validated(uow):
    with pytest.raises(InvalidInput, match="hello_language"):
        uow.customers.create(CustomerCreate(name="B", attributes={"hello_language": "xx"}))


def test_uow_fixture_sees_the_plugin(uow):
    c = uow.customers.create(CustomerCreate(name="Zed"))
    uow.session.flush()
    assert uow.session.scalars(select(Greeting.text).where(Greeting.customer_id == c.id)).all() == ["Hello, Zed!"]


def test_bulk_import_greets_each_batch_once_and_reruns_change_nothing(crm):
    rows = [SourceRow(i + 2, {"external_ref": f"C{i}", "name": f"Customer {i}", "attr.hello_language": "fr"})
            for i in range(7)]
    result = run_import(crm, "customers", rows, batch_size=3)
    assert (result.inserted, result.batches) == (7, 3)
    assert greetings(crm) == [f"Bonjour, Customer {i}!" for i in range(7)]
    again = run_import(crm, "customers", rows, batch_size=3)
    assert (again.inserted, again.unchanged) == (0, 7)
    assert len(greetings(crm)) == 7


def test_merge_moves_greetings(crm):
    with crm.unit_of_work() as uow:
        a = uow.customers.create(CustomerCreate(name="A")).id
        b = uow.customers.create(CustomerCreate(name="B")).id
    with crm.unit_of_work() as uow:
        moved = uow.customers.merge(b, a)
    assert moved["hello_greetings"] == 1
    assert greetings(crm, a) == ["Hello, A!", "Hello, B!"]


def test_command_and_profile_section(crm, cli):
    with crm.unit_of_work() as uow:
        cid = uow.customers.create(CustomerCreate(name="Acme", external_ref="ACME")).id
    res = cli("hello", "show", "ACME", plugins=[hello])
    assert res.exit_code == 0, res.output
    assert res.output == "Hello, Acme!\n"
    res = cli("customer", "show", str(cid), "--json", plugins=[hello])
    assert json.loads(res.output)["sections"]["Hello"] == {"greetings": 1, "latest": "Hello, Acme!"}


def test_migration_branch_upgrades_and_downgrades(empty_database_url):
    crm = CRM.open(empty_database_url, plugins=[hello], entry_points=False, create=True, config={})
    try:
        assert crm.upgrade() == ["core", "hello"]
        assert "hello_greetings" in inspect(crm.engine).get_table_names()
        assert runner.schema_diff(crm.engine, crm.managed_tables()) == []  # the revision matches the models
        branches = crm.migration_branches(crm.hooks.plugins)["hello"]
        assert runner.current_heads(crm.engine, branches)["hello"] == "h001_hello"
        runner.downgrade_to_base(crm.engine, branches, "hello")
        assert "hello_greetings" not in inspect(crm.engine).get_table_names()
    finally:
        crm.close()
