"""Every hook of crmcore.hookspecs is proved here through the test plugin (tests/testplugin).

tests/test_docs.py fails when a hook is missing from this file or from docs/hooks.md.
"""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crmcore import PluginError, Vetoed
from crmcore.models import AuditEntry, Customer, Transaction
from crmcore.schemas import CustomerCreate, CustomerUpdate, InteractionCreate, TransactionCreate


@pytest.fixture
def crm_tp(make_crm, testplug):
    return make_crm(plugins=[("testplug", testplug)])


def calls(mod, hook):
    return [p for h, p in mod.CALLS if h == hook]


def add_customer(crm, name="Acme", **kw):
    with crm.unit_of_work("t") as uow:
        return uow.customers.create(CustomerCreate(name=name, **kw)).id


def test_crm_customer_created_writes_derived_row_atomically(crm_tp, testplug):
    from crm_testplug.models import TestplugNote

    cid = add_customer(crm_tp)
    assert calls(testplug, "crm_customer_created") == [cid]
    with crm_tp.unit_of_work() as uow:
        notes = uow.session.scalars(select(TestplugNote.text).where(TestplugNote.customer_id == cid)).all()
    assert notes == ["welcome Acme"]


def test_after_commit_callback_runs_only_after_commit(crm_tp, testplug):
    cid = add_customer(crm_tp)
    assert testplug.SENT == [f"welcome mail to {cid}"]
    testplug.SENT.clear()
    with pytest.raises(RuntimeError, match="caller failed"):
        with crm_tp.unit_of_work() as uow:
            uow.customers.create(CustomerCreate(name="Rolled back"))
            raise RuntimeError("caller failed")
    assert testplug.SENT == []  # the transaction rolled back: no mail
    with crm_tp.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Customer)) == 1


def test_crm_customer_updated_gets_changes(crm_tp, testplug):
    cid = add_customer(crm_tp)
    with crm_tp.unit_of_work() as uow:
        uow.customers.update(cid, CustomerUpdate(industry="Retail", region="North"))
    assert calls(testplug, "crm_customer_updated") == [(cid, ["industry", "region"])]


def test_crm_customer_archived(crm_tp, testplug):
    cid = add_customer(crm_tp)
    with crm_tp.unit_of_work() as uow:
        uow.customers.archive(cid)
    assert calls(testplug, "crm_customer_archived") == [cid]


def test_crm_interaction_logged(crm_tp, testplug):
    cid = add_customer(crm_tp)
    with crm_tp.unit_of_work() as uow:
        i = uow.interactions.log(cid, InteractionCreate(channel="phone", subject="hi"))
        iid = i.id
    assert calls(testplug, "crm_interaction_logged") == [iid]


def test_crm_transaction_posted_and_guard_called(crm_tp, testplug):
    cid = add_customer(crm_tp)
    with crm_tp.unit_of_work() as uow:
        uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="10", reference="I-1"))
    assert calls(testplug, "crm_before_transaction_post") == ["I-1"]
    assert calls(testplug, "crm_transaction_posted") == ["I-1"]


def test_crm_before_transaction_post_veto_writes_nothing(crm_tp, testplug):
    cid = add_customer(crm_tp)
    testplug.VETO_REFS.add("I-9")
    with pytest.raises(Vetoed) as e:
        with crm_tp.unit_of_work() as uow:
            uow.interactions.log(cid, InteractionCreate(channel="email", subject="same unit"))
            uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="10", reference="I-9"))
    assert e.value.plugin == "testplug"
    assert e.value.hook == "crm_before_transaction_post"
    assert "credit hold" in str(e.value)
    with crm_tp.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Transaction)) == 0
        assert uow.interactions.list(cid) == []  # the whole unit rolled back
        assert uow.accounts.list(cid) == []


def test_hook_that_raises_rolls_back_and_names_plugin_and_hook(crm_tp, testplug):
    testplug.FAIL_IN = "crm_customer_created"
    with pytest.raises(PluginError) as e:
        add_customer(crm_tp)
    assert (e.value.plugin, e.value.hook) == ("testplug", "crm_customer_created")
    assert "boom in crm_customer_created" in str(e.value)
    with crm_tp.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Customer)) == 0
        assert uow.session.scalar(select(func.count()).select_from(AuditEntry)) == 0
    assert testplug.SENT == []


def test_crm_merge_customers_repoints_plugin_rows(crm_tp, testplug):
    from crm_testplug.models import TestplugNote

    a, b = add_customer(crm_tp, "A"), add_customer(crm_tp, "B")
    with crm_tp.unit_of_work() as uow:
        counts = uow.customers.merge(b, a)
    assert counts["testplug_notes"] == 1
    assert calls(testplug, "crm_merge_customers") == [(b, a)]
    with crm_tp.unit_of_work() as uow:
        owners = uow.session.scalars(select(TestplugNote.customer_id)).all()
    assert sorted(owners) == [a, a]


def test_crm_customer_profile_sections(crm_tp, cli, testplug):
    cid = add_customer(crm_tp)
    res = cli("customer", "show", str(cid), "--json", plugins=[("testplug", testplug)])
    assert res.exit_code == 0, res.output
    import json

    assert json.loads(res.output)["sections"] == {"Test plug": {"notes": 1}}


def test_crm_register_custom_fields_validates_attributes(crm_tp):
    from crmcore import InvalidInput

    with crm_tp.unit_of_work() as uow:
        c = uow.customers.create(CustomerCreate(name="A", attributes={"segment": "trade", "loyalty_card": "X1"}))
        assert c.attributes == {"segment": "trade", "loyalty_card": "X1"}
    with pytest.raises(InvalidInput, match="segment.*expected one of retail, trade"):
        with crm_tp.unit_of_work() as uow:
            uow.customers.create(CustomerCreate(name="B", attributes={"segment": "wholesale"}))
    with pytest.raises(InvalidInput, match="unknown custom field"):
        with crm_tp.unit_of_work() as uow:
            uow.customers.create(CustomerCreate(name="C", attributes={"colour": "red"}))


def test_crm_register_commands(cli, testplug):
    res = cli("testplug", "hello", plugins=[("testplug", testplug)])
    assert res.exit_code == 0 and "hello from testplug" in res.output
    assert cli("testplug", "hello").exit_code == 2  # not registered: no such command


def test_crm_register_migrations(make_crm, testplug):
    crm = make_crm(plugins=[("testplug", testplug)])
    branches = crm.migration_branches(crm.hooks.plugins)["testplug"]
    assert [b.label for b in branches] == ["testplug"]
    assert (branches[0].versions / "t001_testplug.py").exists()


def test_crm_customers_batch_and_set_lifecycle_stages(crm_tp, testplug):
    ids = [add_customer(crm_tp, f"C{i}") for i in range(3)]
    with crm_tp.unit_of_work() as uow:
        changed = uow.customers.set_lifecycle_stages({ids[0]: "active", ids[1]: "prospect", ids[2]: "churned"})
    assert changed == [ids[0], ids[2]]  # ids[1] already was a prospect
    assert calls(testplug, "crm_customers_batch") == [([], [ids[0], ids[2]])]
    with crm_tp.unit_of_work() as uow:
        c = uow.customers.get(ids[0])
        assert (c.lifecycle_stage.value, c.version) == ("active", 2)


# The bulk hooks crm_interactions_batch, crm_transactions_batch and crm_before_transactions_batch
# are proved with the importer in tests/test_bulk_import.py; they are listed here so that this file
# names every hook: crm_interactions_batch crm_transactions_batch crm_before_transactions_batch


def test_money_is_decimal(crm_tp):
    cid = add_customer(crm_tp)
    with crm_tp.unit_of_work() as uow:
        e, _ = uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="0.10", reference="a"))
        uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="0.20", reference="b"))
        stored, summed = uow.accounts.verify_balance(e.account_id)
    assert stored == summed == Decimal("0.30")


def test_cli_reports_failing_plugin_and_hook_and_writes_nothing(cli, testplug):
    testplug.FAIL_IN = "crm_customer_created"
    res = cli("customer", "add", "Acme", plugins=[("testplug", testplug)])
    assert res.exit_code == 1
    assert "error: plugin 'testplug' failed in hook crm_customer_created: RuntimeError: boom" in res.output
    assert "Traceback" not in res.output
    testplug.FAIL_IN = None
    assert '"name"' not in cli("customer", "list", "--json").output  # nothing was written


def test_cli_reports_veto(cli, testplug):
    cli("customer", "add", "Acme")
    testplug.VETO_REFS.add("INV-9")
    res = cli("account", "post", "1", "invoice", "10", "--ref", "INV-9", plugins=[("testplug", testplug)])
    assert res.exit_code == 1
    assert "refused by plugin 'testplug' (crm_before_transaction_post): credit hold on account" in res.output


def test_swallowed_hook_error_still_rolls_back(crm_tp, testplug):
    testplug.FAIL_IN = "crm_customer_created"
    with pytest.raises(PluginError):
        with crm_tp.unit_of_work() as uow:
            try:
                uow.customers.create(CustomerCreate(name="Acme"))
            except PluginError:
                pass  # an embedding caller that carries on must not commit half a change
    testplug.FAIL_IN = None
    with crm_tp.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Customer)) == 0


def test_misspelt_hook_is_refused(make_crm):
    import types

    from crmcore import CRMError, hookimpl

    mod = types.ModuleType("typo_plugin")

    @hookimpl
    def crm_customer_creatd(uow, customer):  # noqa: ANN001
        pass

    mod.crm_customer_creatd = crm_customer_creatd
    with pytest.raises(CRMError, match="unknown hook\\(s\\) crm_customer_creatd"):
        make_crm(plugins=[("typo", mod)])


def test_merge_archives_source_through_the_hook(crm_tp, testplug):
    a, b = add_customer(crm_tp, "A"), add_customer(crm_tp, "B")
    with crm_tp.unit_of_work() as uow:
        uow.customers.merge(b, a)
    assert calls(testplug, "crm_customer_archived") == [b]


def test_swallowed_veto_still_rolls_back(crm_tp, testplug):
    cid = add_customer(crm_tp)
    testplug.VETO_REFS.add("V-1")
    with pytest.raises(Vetoed):
        with crm_tp.unit_of_work() as uow:
            uow.interactions.log(cid, InteractionCreate(channel="phone", subject="before the veto"))
            try:
                uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="5", reference="V-1"))
            except Vetoed:
                pass
    with crm_tp.unit_of_work(read_only=True) as uow:
        assert uow.interactions.list(cid) == []
