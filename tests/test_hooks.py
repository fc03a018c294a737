"""Every hook of crmcore.hookspecs is proved here through the test plugin (tests/testplugin).

tests/test_docs.py fails when a hook is missing from this file or from docs/hooks.md.
"""
from __future__ import annotations

from typing import Any

from fastapi import Request  # at module level: FastAPI resolves route annotations from module globals

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


# -- platform 2: guards, interaction updates, timeline, published hooks, register hooks ---------

def test_crm_before_customer_archive_veto_keeps_customer(crm_tp, testplug):
    keep, go = add_customer(crm_tp, "Keep"), add_customer(crm_tp, "Go")
    testplug.VETO_NAMES.add("Keep")
    with pytest.raises(Vetoed) as e:
        with crm_tp.unit_of_work() as uow:
            uow.customers.archive(keep)
    assert (e.value.plugin, e.value.hook) == ("testplug", "crm_before_customer_archive")
    assert "Keep has open business" in str(e.value)
    with crm_tp.unit_of_work() as uow:
        uow.customers.archive(go)
    with crm_tp.unit_of_work(read_only=True) as uow:
        assert uow.customers.get(keep).archived is False and uow.customers.get(go).archived is True
        assert uow.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "archive")) == 1
    assert calls(testplug, "crm_before_customer_archive") == [keep, go]
    assert calls(testplug, "crm_customer_archived") == [go]


def test_crm_before_customer_merge_veto_moves_nothing(crm_tp, testplug):
    from crm_testplug.models import TestplugNote

    a, b = add_customer(crm_tp, "A"), add_customer(crm_tp, "Stay")
    with crm_tp.unit_of_work() as uow:
        uow.interactions.log(b, InteractionCreate(channel="phone", subject="hi"))
    testplug.VETO_NAMES.add("Stay")
    with pytest.raises(Vetoed, match="crm_before_customer_merge.*must stay apart"):
        with crm_tp.unit_of_work() as uow:
            uow.customers.merge(b, a)
    assert calls(testplug, "crm_before_customer_merge") == [(b, a)]
    assert calls(testplug, "crm_merge_customers") == []  # refused before any row moved
    with crm_tp.unit_of_work(read_only=True) as uow:
        assert uow.customers.get(b).merged_into_id is None
        assert len(uow.interactions.list(b)) == 1
        assert sorted(uow.session.scalars(select(TestplugNote.customer_id))) == [a, b]


def test_crm_interaction_updated_gets_changes(crm_tp, testplug):
    from crmcore import InvalidInput

    cid = add_customer(crm_tp)
    with crm_tp.unit_of_work() as uow:
        iid = uow.interactions.log(cid, InteractionCreate(channel="phone", subject="hi", satisfaction=2)).id
    with crm_tp.unit_of_work() as uow:
        x = uow.interactions.update(iid, {"satisfaction": 4, "subject": "hi"})
        assert x.satisfaction == 4
    assert calls(testplug, "crm_interaction_updated") == [(iid, ["satisfaction"])]
    with crm_tp.unit_of_work() as uow:
        uow.interactions.update(iid, {"satisfaction": 4})  # nothing changes: no hook, no audit
    assert len(calls(testplug, "crm_interaction_updated")) == 1
    with pytest.raises(InvalidInput, match="satisfaction"):
        with crm_tp.unit_of_work() as uow:
            uow.interactions.update(iid, {"satisfaction": 9})
    with pytest.raises(InvalidInput, match="cannot be changed: customer_id"):
        with crm_tp.unit_of_work() as uow:
            uow.interactions.update(iid, {"customer_id": 2})
    testplug.FAIL_IN = "crm_interaction_updated"
    with pytest.raises(PluginError):
        with crm_tp.unit_of_work() as uow:
            uow.interactions.update(iid, {"outcome": "sold"})
    with crm_tp.unit_of_work(read_only=True) as uow:
        assert uow.interactions.list(cid)[0].outcome is None  # rolled back with the hook's failure
        audit = uow.session.scalars(select(AuditEntry).where(AuditEntry.entity == "interaction",
                                                             AuditEntry.action == "update")).all()
        assert [(a.before, a.after) for a in audit] == [({"satisfaction": 2}, {"satisfaction": 4})]


def test_crm_interactions_updated_batch_is_dispatched(crm_tp, testplug):
    # the importer calls it for updated interactions (tests/test_bulk_import.py); here the relay
    with crm_tp.unit_of_work() as uow:
        uow.hooks.interactions_updated_batch(uow, [3, 4])
    assert calls(testplug, "crm_interactions_updated_batch") == [[3, 4]]


def test_crm_customer_timeline_merged_by_date(crm_tp, cli, testplug):
    import datetime as dt
    import json

    from crmcore import TimelineEntry

    cid = add_customer(crm_tp)
    with crm_tp.unit_of_work() as uow:
        uow.interactions.log(cid, InteractionCreate(channel="phone", subject="Call-X", occurred_at="2024-03-01T10:00:00Z"))
        uow.interactions.log(cid, InteractionCreate(channel="email", subject="Mail-Y", occurred_at="2024-01-01T10:00:00Z"))
    testplug.TIMELINE.extend([
        TimelineEntry(at=dt.datetime(2024, 2, 1, 9, 0), kind="opportunity won", summary="Deal 1", reference="OPP-1"),
        TimelineEntry(at=dt.datetime(2024, 4, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))), kind="dunning letter",
                      summary="Reminder 1"),
    ])
    res = cli("customer", "show", str(cid), "--json", plugins=[("testplug", testplug)])
    assert res.exit_code == 0, res.output
    tl = json.loads(res.output)["timeline"]
    assert [(e["summary"], e["source"]) for e in tl] == [("Reminder 1", "testplug"), ("Call-X", "core"),
                                                          ("Deal 1", "testplug"), ("Mail-Y", "core")]
    assert tl[0]["at"].startswith("2024-04-01T07:00:00") and tl[2]["reference"] == "OPP-1"
    res = cli("customer", "show", str(cid), plugins=[("testplug", testplug)])
    assert res.exit_code == 0, res.output
    words = ("Reminder 1", "Call-X", "Deal 1", "Mail-Y")
    lines = [ln for ln in res.output.splitlines() if any(w in ln for w in words)]
    assert [next(w for w in words if w in ln) for ln in lines] == list(words)
    assert calls(testplug, "crm_customer_timeline") == [cid, cid]


def test_profile_section_tables(crm_tp, cli, testplug):
    import json

    cid = add_customer(crm_tp)
    res = cli("customer", "show", str(cid), "--json", plugins=[("testplug", testplug)])
    data = json.loads(res.output)
    assert data["section_tables"]["Test plug"] == [{"title": "Notes", "columns": ["id", "text"], "rows": [[1, "welcome Acme"]]}]
    res = cli("customer", "show", str(cid), plugins=[("testplug", testplug)])
    assert "Test plug: Notes" in res.output and "welcome Acme" in res.output


def test_profile_table_rows_must_match_columns():
    from crmcore import ProfileTable

    with pytest.raises(ValueError, match="row 0 has 1 cells for 2 columns"):
        ProfileTable(title="t", columns=["a", "b"], rows=[[1]])


def _publisher_plugins():
    import crm_publisher
    import crm_subscriber

    crm_subscriber.CALLS.clear()
    return crm_publisher, crm_subscriber


@pytest.mark.parametrize("order", ["publisher first", "subscriber first"])
def test_crm_add_hookspecs_published_guard_implemented_by_another_plugin(make_crm, order):
    pub, sub = _publisher_plugins()
    plugins = [("publisher", pub), ("subscriber", sub)]
    crm = make_crm(plugins=plugins if order == "publisher first" else plugins[::-1])
    assert crm.hooks.published == {"publisher_before_deal": "publisher", "publisher_extra": "publisher"}
    with crm.unit_of_work() as uow:
        pub.close_deal(uow, "fine")
        assert uow.hooks.call_with_names("publisher_extra", uow=uow, customer_id=4) == [("subscriber", 40)]
    with pytest.raises(Vetoed) as e:
        with crm.unit_of_work() as uow:
            pub.close_deal(uow, "forbidden")
    assert (e.value.plugin, e.value.hook, e.value.reason) == ("subscriber", "publisher_before_deal", "deal forbidden is on hold")
    assert sub.CALLS == ["fine", "forbidden"]


def test_optional_hook_without_its_publisher_is_never_called(make_crm):
    _, sub = _publisher_plugins()
    crm = make_crm(plugins=[("subscriber", sub)])
    with crm.unit_of_work() as uow:
        assert uow.hooks.call("publisher_before_deal", uow=uow, deal="forbidden") == []
        assert uow.hooks.call_with_names("publisher_extra", uow=uow, customer_id=1) == []
        assert uow.hooks.call("nobody_ever_published_this", uow=uow) == []
    assert sub.CALLS == []


def test_non_optional_unknown_hook_is_refused_unless_published(make_crm):
    import crm_strict

    from crmcore import CRMError

    pub, _ = _publisher_plugins()
    with pytest.raises(CRMError, match="plugin 'strict' implements unknown hook\\(s\\) publisher_extra"):
        make_crm(plugins=[("strict", crm_strict)])
    crm = make_crm(plugins=[("strict", crm_strict), ("publisher", pub)])  # after all are registered: fine
    with crm.unit_of_work() as uow:
        assert uow.hooks.call("publisher_extra", uow=uow, customer_id=1) == [1]


def test_published_spec_may_not_take_a_core_name_or_another_plugins():
    import types

    from crmcore import CRMError, hookimpl, hookspec
    from crmcore.plugins import HookRelay, describe

    class Bad:
        @hookspec
        def crm_customer_created(self, uow):  # type: ignore[no-untyped-def]
            """clash"""

    mod = types.ModuleType("bad")
    mod.crm_add_hookspecs = hookimpl(lambda register: register(Bad))
    with pytest.raises(CRMError, match="cannot publish hook crm_customer_created: the crm_ prefix is the core's"):
        HookRelay().register(describe("bad", mod))
    pub, _ = _publisher_plugins()
    from crm_publisher import hookspecs as publisher_specs

    twin = types.ModuleType("twin")
    twin.crm_add_hookspecs = hookimpl(lambda register: register(publisher_specs))
    relay = HookRelay()
    errors = relay.assemble([describe("publisher", pub), describe("twin", twin)])
    assert errors == {"twin": "plugin 'twin' publishes hook publisher_before_deal, already published by 'publisher'"}
    assert sorted(relay.plugins) == ["publisher"]


@pytest.mark.parametrize("hook", ["crm_register_settings", "crm_register_permissions", "crm_register_bulk_entities"])
def test_register_hooks_collect_what_each_plugin_registers(hook):
    """The registration hooks (their core side: crmcore.settings, crmcore.permissions,
    crmcore.bulk.registry) are collected with the registering plugin's id."""
    import types

    from crmcore import hookimpl
    from crmcore.plugins import HookRelay, describe

    mod = types.ModuleType("reg")
    setattr(mod, hook, hookimpl(lambda register: register("item")))
    relay = HookRelay()
    relay.register(describe("reg", mod))
    assert relay.collect(hook) == [("reg", "item")]


def test_crm_customer_timeline_bad_result_names_the_plugin(crm_tp, cli, testplug):
    cid = add_customer(crm_tp)
    testplug.TIMELINE.append("not an entry")  # type: ignore[arg-type]
    res = cli("customer", "show", str(cid), plugins=[("testplug", testplug)])
    assert res.exit_code == 1
    assert "plugin 'testplug' failed in hook crm_customer_timeline: TypeError: expected a list of TimelineEntry" in res.output


def test_timeline_entry_times_are_utc():
    import datetime as dt

    from crmcore import TimelineEntry

    assert TimelineEntry(at=dt.date(2024, 5, 1), kind="k", summary="s").at == dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
    local = dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert TimelineEntry(at=local, kind="k", summary="s").at.hour == 17
    with pytest.raises(TypeError, match="must be a datetime"):
        TimelineEntry(at="2024-05-01", kind="k", summary="s")  # type: ignore[arg-type]


def test_crm_register_routes(crm_url: str, make_crm: Any) -> None:
    """A plugin's routes are part of the API, behind the same authentication and units of work."""
    from fastapi.testclient import TestClient

    from crmcore import hookimpl
    from crmcore.api import create_app
    from crmcore.api.app import unit
    from crmcore.api.auth import TokenService
    from crmcore.schemas import UserCreate

    class Routes:
        @staticmethod
        @hookimpl
        def crm_register_routes(router: Any) -> None:
            @router.get("/hello/whoami")
            def whoami(request: Request) -> dict[str, str]:
                with unit(request, write=False) as uow:
                    return {"user": uow.actor}

    crm = make_crm(plugins=[("routes", Routes)])
    with crm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
        uow.users.add(UserCreate(username="ada", display_name="Ada", roles=["viewer"]))
    with crm.unit_of_work("ada") as uow:
        token = TokenService(uow).create("ada", "t")[1]
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    assert client.get("/hello/whoami").status_code == 401
    assert client.get("/hello/whoami", headers={"Authorization": f"Bearer {token}"}).json() == {"user": "ada"}


def test_hookimpl_with_an_argument_the_hook_lacks_is_refused(make_crm):
    import types

    from crmcore import CRMError, hookimpl

    mod = types.ModuleType("badargs")

    @hookimpl
    def crm_customer_created(uow, customer, colour):  # noqa: ANN001
        pass

    mod.crm_customer_created = crm_customer_created
    with pytest.raises(CRMError, match="plugin 'badargs' does not fit the hook contract: .*; hookimpl definition: crm_customer_created\\(uow, customer, colour\\); Argument\\(s\\) {'colour'}"):
        make_crm(plugins=[("badargs", mod)])


def test_cli_archive_and_merge_guards_are_one_line(cli, testplug):
    cli("customer", "add", "Keep", "--ref", "K")
    cli("customer", "add", "Other", "--ref", "O")
    testplug.VETO_NAMES.add("Keep")
    res = cli("customer", "archive", "K", plugins=[("testplug", testplug)])
    assert res.exit_code == 1 and res.output.strip() == \
        "error: refused by plugin 'testplug' (crm_before_customer_archive): Keep has open business"
    res = cli("customer", "merge", "O", "--into", "K", plugins=[("testplug", testplug)])
    assert res.exit_code == 1 and "crm_before_customer_merge" in res.output and "Traceback" not in res.output
    res = cli("customer", "show", "K", "--json")
    assert '"archived": false' in res.output


def test_console_hooks(make_crm, tmp_path):
    """crm_console_register, crm_console_home_cards, crm_console_customer_sections and
    crm_console_authenticate reach the console (their pages, errors and disabled-plugin behaviour
    are tested in tests/console/)."""
    from crmcore import hookimpl
    from crmcore.console import ConsolePage, ConsoleSection, HomeCard, NavEntry, create_console
    from crmcore.console.extensions import call_each, first_answer

    class Console:
        @hookimpl
        def crm_console_register(self, register):
            register(NavEntry("Deals", "/deals"))
            register(ConsolePage("/deals", lambda view: None))

        @hookimpl
        def crm_console_home_cards(self, uow, user):
            return HomeCard("Deals")

        @hookimpl
        def crm_console_customer_sections(self, uow, customer, profile):
            return [ConsoleSection("Score", "x.html", {"name": customer.name, "contacts": len(profile["contacts"])})]

        @hookimpl
        def crm_console_authenticate(self, uow, request, username, password):
            return "sso-" + username if password == "from the portal" else None

    crm = make_crm(plugins=[("c", Console())])
    registry = create_console(crm).app.state.console.registry  # type: ignore[attr-defined]
    assert [(p, e.path) for p, e in registry.nav] == [("c", "/deals")] and [e.path for _, e in registry.pages] == ["/deals"]
    with crm.unit_of_work("t") as uow:
        c = uow.customers.create(CustomerCreate(name="Acme"))
        assert [h.title for _, h in call_each(uow, "crm_console_home_cards", {"c"}, user=None)] == ["Deals"]
        profile = uow.profiles.get(c.id)
        (_, section), = call_each(uow, "crm_console_customer_sections", {"c"}, customer=c, profile=profile)
        assert section.context == {"name": "Acme", "contacts": 0}
        assert call_each(uow, "crm_console_home_cards", set(), user=None) == []  # not active: nothing
        assert first_answer(uow, "crm_console_authenticate", request=None, username="ann", password="from the portal") == ("c", "sso-ann")
        assert first_answer(uow, "crm_console_authenticate", request=None, username="ann", password="guess") is None
