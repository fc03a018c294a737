"""Consent per contact (person) and channel: service, rule against the company's, audit, CLI, races, migration."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import crm_marketing.plugin as PLUGIN
import pytest
from crm_marketing import people, services
from crm_marketing.models import ContactConsent
from crm_marketing.schemas import ConsentSet
from crm_marketing.testing import Shop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, inspect, select

from crmcore import CRM
from crmcore.errors import Conflict, NotFound
from crmcore.migrations import runner
from crmcore.models import AuditEntry
from crmcore.schemas import ContactCreate
from crmcore.testing_concurrency import run_in_processes


def add_contact(crm: CRM, customer_id: int, ref: str, role: str | None = None, email: str | None = "") -> int:
    with crm.unit_of_work("test") as uow:
        return uow.contacts.add(customer_id, ContactCreate(
            name=f"Person {ref}", role=role, external_ref=ref,
            email=f"{ref.lower()}@people.example" if email == "" else email)).id


@pytest.fixture
def org(shop: Shop, mcrm: CRM) -> tuple[int, int, int]:
    cid = shop.customer("ACME", kind="organization", country="DE")
    return cid, add_contact(mcrm, cid, "ANNA", "decider"), add_contact(mcrm, cid, "BEN", "user")


def test_person_unsubscribe_wins_over_company_opt_in(mcrm: CRM, org: tuple[int, int, int]) -> None:
    cid, anna, ben = org
    with mcrm.unit_of_work("test") as uow:
        services.set_consent(uow, cid, ConsentSet(channel="email", status="opt_in"))
        people.unsubscribe_contact(uow, anna, "email", source="link in mail")
    with mcrm.unit_of_work("test", read_only=True) as uow:
        a = people.effective_consent(uow, anna, "email")
        b = people.effective_consent(uow, ben, "email")
        assert (a.allowed, a.reason, a.source) == (False, "contact consent: unsubscribed", "contact")
        assert (b.allowed, b.source) == (True, "customer")  # Ben inherits the company's opt-in
        assert services.consents(uow, cid)[0].status == "opt_in"  # the company's statement is untouched
        audit = uow.session.scalars(select(AuditEntry).where(AuditEntry.entity == "contact", AuditEntry.action == "consent")).all()
        assert [e.entity_id for e in audit] == [str(anna)]


def test_rule_table() -> None:
    d = people.decide
    assert d(None, None, False).allowed and not d(None, None, True).allowed
    assert d("opt_in", None, True).allowed and d(None, "opt_in", True).allowed
    assert not d("opt_out", "opt_in", False).allowed
    assert not d("opt_in", "unsubscribed", False).allowed  # a company's withdrawal also suppresses
    assert d("opt_in", "opt_out", True).reason == "consent: opt_out"


def test_older_statement_cannot_replace_newer(mcrm: CRM, org: tuple[int, int, int]) -> None:
    _cid, anna, _ben = org
    t = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)
    with mcrm.unit_of_work("test") as uow:
        people.set_contact_consent(uow, anna, ConsentSet(channel="sms", status="opt_in", at=t))
    with pytest.raises(Conflict, match="newer sms consent"), mcrm.unit_of_work("test") as uow:
        people.set_contact_consent(uow, anna, ConsentSet(channel="sms", status="opt_out", at=t - dt.timedelta(days=1)))
    with mcrm.unit_of_work("test", read_only=True) as uow:
        assert [(x.channel, x.status) for x in people.contact_consents(uow, anna)] == [("sms", "opt_in")]


def test_unknown_contact_and_permission(mcrm: CRM, org: tuple[int, int, int]) -> None:
    with pytest.raises(NotFound), mcrm.unit_of_work("test") as uow:
        people.set_contact_consent(uow, 999_999, ConsentSet(channel="email", status="opt_in"))
    with pytest.raises(NotFound), mcrm.unit_of_work("test", read_only=True) as uow:
        people.resolve_contact(uow, "NOPE")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.text(max_size=120))
def test_resolve_contact_free_text_is_found_or_not_found(mcrm: CRM, key: str) -> None:
    with mcrm.unit_of_work("test", read_only=True) as uow:
        try:
            c = people.resolve_contact(uow, key)
        except NotFound:
            return
        assert c.external_ref == key.strip() or key.strip().removeprefix("#") == str(c.id)


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def test_cli_set_unsubscribe_show(mcli: Callable[..., Any], mcrm: CRM, org: tuple[int, int, int]) -> None:
    ok(mcli("marketing", "consent", "set", "ACME", "email", "opt_in"))
    ok(mcli("marketing", "contact-consent", "set", "BEN", "sms", "opt_in", "--source", "fair form"))
    assert "unsubscribed from email" in ok(mcli("marketing", "contact-consent", "unsubscribe", "ANNA", "email")).output
    rows = {r["channel"]: r for r in json.loads(ok(mcli("marketing", "contact-consent", "show", "ANNA", "--json")).output)["consent"]}
    assert rows["email"]["status"] == "unsubscribed" and rows["email"]["allowed"] is False
    ben = {r["channel"]: r for r in json.loads(ok(mcli("marketing", "contact-consent", "show", "BEN", "--json")).output)["consent"]}
    assert ben["email"]["status"] is None and ben["email"]["allowed"] is True and ben["sms"]["source"] == "fair form"


@pytest.mark.parametrize("args, code, text", [
    (("set", "NOPE", "email", "opt_in"), 1, "contact"),
    (("set", "ANNA", "pigeon", "opt_in"), 2, "pigeon"),
    (("set", "ANNA", "email", "maybe"), 2, "maybe"),
    (("set", "ANNA", "email", "opt_in", "--at", "yesterday-ish"), 1, "at"),
    (("set", "ANNA", "email", "opt_in", "--source", "x" * 500), 1, "source"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(mcli: Callable[..., Any], mcrm: CRM, org: tuple[int, int, int],
                                                      args: tuple[str, ...], code: int, text: str) -> None:
    r = mcli("marketing", "contact-consent", *args)
    assert r.exit_code == code, r.output
    lines = [x for x in r.output.splitlines() if x.lower().startswith("error")]
    assert len(lines) == 1 and text in lines[0].lower(), r.output
    assert "Traceback" not in r.output
    with mcrm.unit_of_work("test", read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(ContactConsent)) == 0


def _race(i: int, url: str, contact_id: int) -> str:
    crm = CRM.open(url, plugins=[PLUGIN], entry_points=False, config={})
    try:
        with crm.unit_of_work(f"w{i}") as uow:
            people.set_contact_consent(uow, contact_id, ConsentSet(channel="email", status="opt_in" if i % 2 else "opt_out",
                                                                     source=f"worker {i}"))
        return "ok"
    finally:
        crm.close()


def test_concurrent_writers_of_one_person_all_land_once(crm_url: str, mcrm: CRM, org: tuple[int, int, int]) -> None:
    _cid, anna, _ben = org
    results = run_in_processes(4, _race, crm_url, anna)
    assert [r.error for r in results] == [None] * 4 and [r.value for r in results] == ["ok"] * 4
    with mcrm.unit_of_work("test", read_only=True) as uow:
        rows = people.contact_consents(uow, anna)
        assert len(rows) == 1
        n = uow.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.entity == "contact", AuditEntry.action == "consent"))
        assert n == 4  # every statement is in the log, in the order they were serialised


def test_migration_mk_0002_up_and_down(empty_database_url: str) -> None:
    crm = CRM.open(empty_database_url, plugins=[PLUGIN], entry_points=False, create=True, config={})
    try:
        crm.upgrade()
        assert inspect(crm.engine).has_table("marketing_contact_consents")
        assert runner.schema_diff(crm.engine, {"marketing_contact_consents"}) == []
        runner.downgrade_to_base(crm.engine, [PLUGIN.MIGRATIONS], "marketing")
        assert not inspect(crm.engine).has_table("marketing_contact_consents")
        crm.upgrade()
        assert runner.schema_diff(crm.engine, {"marketing_contact_consents"}) == []
    finally:
        crm.close()
