"""Core services through the Python API (what integrators embed)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from crmcore import Conflict, CRM, InvalidInput, NotFound, StaleVersion
from crmcore.models import AuditEntry, Contact, Interaction
from crmcore.schemas import (
    AccountCreate,
    ContactCreate,
    CustomerCreate,
    CustomerUpdate,
    InteractionCreate,
    TransactionCreate,
    UserCreate,
)


def new(crm: CRM, **kw) -> int:
    with crm.unit_of_work("tester") as uow:
        return uow.customers.create(CustomerCreate(**{"name": "Acme", **kw})).id


@pytest.mark.parametrize("field,value,message", [
    ("email", "not-an-email", "invalid email"),
    ("phone", "12", "invalid phone number"),
    ("country", "XX", "unknown country code"),
    ("kind", "alien", "person"),
    ("name", "   ", "at least 1 character"),
])
def test_customer_validation(field, value, message):
    with pytest.raises(ValidationError, match=message):
        CustomerCreate(**{"name": "A", field: value})


def test_unknown_fields_are_refused():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        CustomerCreate(name="A", colour="red")


def test_create_update_with_optimistic_locking_and_audit(crm):
    cid = new(crm, email="A@Example.COM", external_ref="R1")
    with crm.unit_of_work("alice") as uow:
        c = uow.customers.update(cid, CustomerUpdate(industry="Retail", version=1))
        assert (c.version, c.email) == (2, "A@example.com")
    with pytest.raises(StaleVersion, match="you have version 1, the database has 2"):
        with crm.unit_of_work() as uow:
            uow.customers.update(cid, CustomerUpdate(industry="Food", version=1))
    with crm.unit_of_work() as uow:
        assert uow.customers.get(cid).industry == "Retail"
        entries = uow.audit.list("customer", cid)
        assert [(e.action, e.actor) for e in entries] == [("update", "alice"), ("create", "tester")]
        assert entries[0].before == {"industry": None} and entries[0].after == {"industry": "Retail"}


def test_duplicate_external_ref_and_unknown_owner(crm):
    new(crm, external_ref="R1")
    with pytest.raises(Conflict, match="already belongs to customer 1"):
        new(crm, external_ref="R1")
    with pytest.raises(NotFound, match="user 'ghost' not found"):
        new(crm, owner="ghost")


def test_owner_is_a_user(crm):
    with crm.unit_of_work() as uow:  # the first user is an admin ("tester", who acts in new()) and acts from now on
        uow.users.add(UserCreate(username="tester", display_name="Admin", roles=["admin"]))
        uow.users.add(UserCreate(username="anna", display_name="Anna", roles=["sales", "manager"]))
    cid = new(crm, owner="anna")
    with crm.unit_of_work("tester") as uow:
        assert uow.session.get(type(uow.customers.get(cid)), cid).owner_id == uow.users.get_by_username("anna").id
        with pytest.raises(Conflict, match="already exists"):
            uow.users.add(UserCreate(username="anna", display_name="Other"))


def test_archive_blocks_new_activity_but_keeps_history(crm):
    cid = new(crm)
    with crm.unit_of_work() as uow:
        uow.interactions.log(cid, InteractionCreate(channel="phone", subject="hello"))
        uow.customers.archive(cid)
    with pytest.raises(Conflict, match="archived"):
        with crm.unit_of_work() as uow:
            uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="1", reference="x"))
    with crm.unit_of_work() as uow:
        assert uow.customers.list() == []
        assert len(uow.customers.list(include_archived=True)) == 1
        assert len(uow.interactions.list(cid)) == 1


def test_posting_rules(crm):
    cid = new(crm)
    with crm.unit_of_work() as uow:
        inv, created = uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="100", reference="INV-1",
                                                                 occurred_at="2024-01-31"))
        assert created and inv.due_date == dt.date(2024, 3, 1)
        again, created = uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="100", reference="INV-1"))
        assert not created and again.id == inv.id  # reposting is a no-op
        uow.accounts.post(cid, TransactionCreate(kind="payment", amount="30", reference="P-1"))
        uow.accounts.post(cid, TransactionCreate(kind="adjustment", amount="-5.50", reference="ADJ-1"))
        account_id = inv.account_id
    with pytest.raises(Conflict, match="already posted on account .* as invoice 100.00"):
        with crm.unit_of_work() as uow:
            uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="120", reference="INV-1"))
    with pytest.raises(InvalidInput, match="wrong currency USD"):
        with crm.unit_of_work() as uow:
            uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="1", currency="USD", reference="U-1"))
    with crm.unit_of_work() as uow:
        uow.accounts.set_status(account_id, "on_hold")
    with pytest.raises(Conflict, match="on hold"):
        with crm.unit_of_work() as uow:
            uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="1", reference="H-1"))
    with crm.unit_of_work() as uow:
        uow.accounts.post(cid, TransactionCreate(kind="payment", amount="60", reference="P-2"))  # payments still welcome
        with pytest.raises(Conflict, match="balance of 4.50 EUR; settle it before closing"):
            uow.accounts.set_status(account_id, "closed")
        uow.accounts.post(cid, TransactionCreate(kind="payment", amount="4.50", reference="P-3"))
        stored, summed = uow.accounts.verify_balance(account_id)
        assert stored == summed == Decimal("0.00")
        uow.accounts.set_status(account_id, "closed")


@pytest.mark.parametrize("kind,amount,message", [
    ("invoice", "-1", "must be positive"),
    ("payment", "0", "must be positive"),
    ("adjustment", "0", "must not be zero"),
    ("invoice", "1.00001", "more than 4 decimal places"),  # per currency: tests/test_reliability_core.py
    ("invoice", "abc", "not an amount"),
    ("invoice", "NaN", "not an amount"),
    ("invoice", "1e20", "too large"),
])
def test_bad_amounts(kind, amount, message):
    with pytest.raises(ValidationError, match=message):
        TransactionCreate(kind=kind, amount=amount, reference="x")


def test_statement_running_balance_and_period(crm):
    cid = new(crm)
    with crm.unit_of_work() as uow:
        for ref, kind, amount, day in [("I1", "invoice", "100", 1), ("P1", "payment", "40", 5), ("I2", "invoice", "10", 9)]:
            e, _ = uow.accounts.post(cid, TransactionCreate(kind=kind, amount=amount, reference=ref,
                                                             occurred_at=dt.datetime(2024, 1, day, tzinfo=dt.timezone.utc)))
        st = uow.accounts.statement(e.account_id, since=dt.datetime(2024, 1, 3, tzinfo=dt.timezone.utc))
    assert st.opening_balance == Decimal("100.00")
    assert [(line.entry.reference, line.running_balance) for line in st.lines] == [("P1", Decimal("60.00")),
                                                                                    ("I2", Decimal("70.00"))]
    assert st.closing_balance == Decimal("70.00")


def test_second_account_and_default(crm):
    cid = new(crm)
    with crm.unit_of_work() as uow:
        usd = uow.accounts.open(cid, AccountCreate(currency="usd", payment_terms_days=60))
        assert usd.is_default  # the first account becomes the default
        eur = uow.accounts.open(cid, AccountCreate(currency="EUR", is_default=True))
        assert eur.is_default and not uow.accounts.get(usd.id).is_default
        e, _ = uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="5", reference="X"), account_id=usd.id)
        assert e.currency == "USD"


def test_contacts_only_for_organizations(crm):
    person = new(crm, kind="person")
    org = new(crm, name="Org")
    with crm.unit_of_work() as uow:
        with pytest.raises(InvalidInput, match="is a person"):
            uow.contacts.add(person, ContactCreate(name="X"))
        c = uow.contacts.add(org, ContactCreate(name="Jane", role="decider", phone="+44 20 7946 0958"))
        assert c.phone == "+442079460958"


def test_merge_moves_every_related_row(crm):
    a, b = new(crm, name="A", tags=["x"]), new(crm, name="B", email="b@example.com", tags=["y"], kind="organization")
    with crm.unit_of_work() as uow:
        uow.contacts.add(b, ContactCreate(name="Jane"))
        uow.interactions.log(b, InteractionCreate(channel="email", subject="s"))
        uow.accounts.post(b, TransactionCreate(kind="invoice", amount="10", reference="I"))
        uow.accounts.post(a, TransactionCreate(kind="invoice", amount="20", reference="J"))
        counts = uow.customers.merge(b, a)
    assert counts == {"contacts": 1, "interactions": 1, "accounts": 1}
    with crm.unit_of_work() as uow:
        target, source = uow.customers.get(a), uow.customers.get(b)
        assert (source.archived, source.merged_into_id) == (True, a)
        assert target.email == "b@example.com" and target.tags == ["x", "y"]
        accounts = uow.accounts.list(a)
        assert len(accounts) == 2 and sum(acc.is_default for acc in accounts) == 1
        assert uow.session.scalar(select(func.count()).select_from(Contact).where(Contact.customer_id == a)) == 1
        assert uow.session.scalar(select(func.count()).select_from(Interaction).where(Interaction.customer_id == a)) == 1
        with pytest.raises(Conflict, match="already merged"):
            uow.customers.merge(b, a)
        with pytest.raises(InvalidInput, match="into itself"):
            uow.customers.merge(a, a)


def test_custom_fields_from_config(make_crm):
    crm = make_crm(config={"custom_fields": {"budget": {"type": "decimal", "required": True},
                                             "since": {"type": "date"}}})
    with pytest.raises(InvalidInput, match="attributes.budget: required custom field is missing"):
        new(crm)
    with pytest.raises(InvalidInput, match="expected a date"):
        new(crm, attributes={"budget": "10", "since": "yesterday"})
    cid = new(crm, attributes={"budget": "12000.50", "since": "2020-02-01"})
    with crm.unit_of_work() as uow:
        assert uow.customers.get(cid).attributes == {"budget": "12000.50", "since": "2020-02-01"}
        c = uow.customers.update(cid, CustomerUpdate(attributes={"since": None}))
        assert c.attributes == {"budget": "12000.50"}


def test_bad_custom_field_config(make_crm):
    from crmcore import ConfigError

    with pytest.raises(ConfigError, match="unknown type 'money'"):
        make_crm(config={"custom_fields": {"budget": {"type": "money"}}})
    with pytest.raises(ConfigError, match="choices go with type 'choice'"):
        make_crm(config={"custom_fields": {"size": {"type": "choice"}}})


def test_audit_is_rolled_back_with_the_change(crm):
    with pytest.raises(RuntimeError):
        with crm.unit_of_work() as uow:
            uow.customers.create(CustomerCreate(name="X"))
            raise RuntimeError("abort")
    with crm.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_uninitialised_and_missing_database(tmp_path, empty_database_url):
    from crmcore import DatabaseError

    with pytest.raises(DatabaseError, match="run `crm init` first"):
        CRM.open(f"sqlite:///{tmp_path / 'missing.db'}")
    crm = CRM.open(empty_database_url, create=True, entry_points=False, config={})
    try:
        with pytest.raises(DatabaseError, match="not initialised"):
            with crm.unit_of_work():
                pass
    finally:
        crm.close()


def test_list_filters_tags_beyond_the_first_page_and_escapes_like(crm):
    for i in range(5):
        new(crm, name=f"Plain {i}")
    new(crm, name="100% Tagged_Co", tags=["vip"])
    with crm.unit_of_work() as uow:
        assert [c.name for c in uow.customers.list(tag="vip", limit=3)] == ["100% Tagged_Co"]
        assert [c.name for c in uow.customers.list(search="100%")] == ["100% Tagged_Co"]
        assert [c.name for c in uow.customers.list(search="d_c")] == ["100% Tagged_Co"]
        assert uow.customers.list(search="n_ 1") == []  # "_" is not a wildcard


def test_read_only_unit_of_work_never_writes(crm):
    cid = new(crm)
    with crm.unit_of_work(read_only=True) as uow:
        uow.customers.get(cid).name = "Changed in a report"
        uow.session.flush()
    with crm.unit_of_work() as uow:
        assert uow.customers.get(cid).name == "Acme"


def test_set_lifecycle_stages_in_bulk(crm):
    ids = [new(crm, name=f"C{i}") for i in range(30)]
    with crm.unit_of_work() as uow:
        changed = uow.customers.set_lifecycle_stages({i: ("active" if i % 2 else "churned") for i in ids})
    assert changed == ids
    with crm.unit_of_work(read_only=True) as uow:
        stages = {c.id: c.lifecycle_stage.value for c in uow.customers.list(limit=100)}
    assert stages == {i: ("active" if i % 2 else "churned") for i in ids}
