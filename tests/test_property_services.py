"""Property-based: the services (the Python API plugins and integrations call) under generated input.

Values arrive as Python objects, so more can reach the services than through a shell: lone
surrogates, NUL, every Unicode category, ints beyond 64 bits, floats/Decimals that are NaN,
infinite or 1e400, datetimes at year 1 and 9999 with offsets, wrong types. Every call must either
succeed or raise a *clean* error — pydantic's ``ValidationError`` (schema) or a ``CRMError``
(service) — and a failed unit of work must leave the database exactly as it was (counts,
balances, versions, audit log). Runs on SQLite and, with CRM_TEST_DATABASE_URL, on PostgreSQL.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from sqlalchemy import Integer, func, select

from crmcore.errors import CRMError
from crmcore.models import Account, AuditEntry, Contact, Customer, Interaction, Transaction, User
from crmcore.schemas import (
    AccountCreate,
    ContactCreate,
    CustomerCreate,
    CustomerUpdate,
    InteractionCreate,
    TransactionCreate,
    UserCreate,
)

any_text = st.text(st.characters(exclude_categories=()), max_size=40)  # every category, surrogates included
texts = st.one_of(any_text, st.sampled_from(["", " ", "\x00", "a\x00b", "\x1b[2J", "\u202e", "\ud800", "ÖZTÜRK", "a" * 300,
                                             "%", "_", "\\", "[/x]", "A1", "B2"]))
ints = st.one_of(st.integers(-3, 5), st.integers(-(2**80), 2**80), st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63]))
numbers = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(min_value="0.01", max_value="9999999999999.99", places=2), ints,
    st.sampled_from([Decimal("1e400"), Decimal("1e27"), Decimal("-0"), Decimal("0.001"), "1e308", "NaN", True]),
)
offsets = st.one_of(st.none(), st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: dt.timezone(dt.timedelta(minutes=m))))
datetimes = st.one_of(
    st.builds(lambda d, tz: d.replace(tzinfo=tz), st.datetimes(), offsets),
    st.builds(lambda d, tz: d.replace(tzinfo=tz), st.sampled_from([dt.datetime.min, dt.datetime.max,
                                                                   dt.datetime(9999, 12, 31), dt.datetime(1, 1, 1)]), offsets),
    st.dates(), texts,
)
moments = st.builds(lambda d, tz: d.replace(tzinfo=tz), st.one_of(st.datetimes(), st.sampled_from(
    [dt.datetime.min, dt.datetime.max, dt.datetime(9999, 12, 31), dt.datetime(1, 1, 1, 12)])), offsets)
anything = st.one_of(texts, numbers, datetimes, st.none(), st.lists(texts, max_size=3))
customer_ids = st.one_of(st.sampled_from([1, 2, 3]), ints)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, st.none(), anything)


def records(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict with a random subset of ``fields``; None values are left out (as the CLI does)."""
    return st.fixed_dictionaries({}, optional=fields).map(lambda d: {k: v for k, v in d.items() if v is not None})


CUSTOMER = {
    "name": texts, "kind": maybe(st.sampled_from(["organization", "person"])), "email": texts, "phone": texts,
    "country": maybe(st.sampled_from(["DE", "at", "XX"])), "region": texts, "industry": texts, "tags": st.lists(texts, max_size=3),
    "external_ref": texts, "attributes": st.dictionaries(texts, anything, max_size=2), "lifecycle_stage": maybe(st.just("active")),
}
INTERACTION = {
    "channel": st.sampled_from(["email", "phone", "visit", "fax"]), "subject": texts, "notes": texts, "occurred_at": datetimes,
    "satisfaction": maybe(ints), "outcome": texts, "external_ref": texts, "direction": maybe(st.just("outbound")),
}
TRANSACTION = {
    "kind": st.sampled_from(["invoice", "payment", "credit_note", "adjustment", "write_off", "gift"]), "amount": numbers,
    "currency": maybe(st.sampled_from(["EUR", "JPY", "KWD", "USD", "eur"])), "occurred_at": datetimes,
    "due_date": st.one_of(st.dates(), datetimes), "reference": texts, "description": texts, "category": texts,
}


# Valid input, mixed into every writing property: a property that only ever sees garbage would pass
# with a service that refuses everything (the tally in ``world`` checks both outcomes happen).
names = st.from_regex(r"[A-Z][a-z]{1,15}( [A-Z][a-z]{1,15})?", fullmatch=True)
known_ids = st.sampled_from([1, 2, 3])
CUSTOMER_OK = st.fixed_dictionaries({"name": names}, optional={
    "kind": st.sampled_from(["organization", "person"]), "country": st.sampled_from(["DE", "AT"]), "industry": names,
    "tags": st.lists(st.sampled_from(["vip", "new", "b2b"]), max_size=2, unique=True)})
CUSTOMER_CHANGE_OK = st.fixed_dictionaries({}, optional={"name": names, "industry": names, "region": names})
CONTACT_OK = st.fixed_dictionaries({"name": names}, optional={"title": names})
INTERACTION_OK = st.fixed_dictionaries({"channel": st.sampled_from(["email", "phone", "visit"]), "subject": names},
                                       optional={"outcome": names})
TRANSACTION_OK = st.fixed_dictionaries({"kind": st.sampled_from(["invoice", "payment"]), "reference": st.from_regex(r"R-[0-9]{1,9}", fullmatch=True),
                                        "amount": st.decimals(min_value="0.01", max_value="100000", places=2)})
USER_OK = st.fixed_dictionaries({"username": st.from_regex(r"[a-z][a-z0-9]{2,15}", fullmatch=True), "display_name": names,
                                 "roles": st.just(["admin"])})


def snapshot(engine: Any) -> tuple[Any, ...]:
    """What a failed command must leave untouched: row counts, balances, versions, archived flags,
    the audit log. One round trip (it runs twice per example)."""
    counts = [select(func.count()).select_from(m).scalar_subquery() for m in
              (Customer, Contact, Interaction, Account, Transaction, User, AuditEntry)]
    sums = [select(func.coalesce(func.sum(col), 0)).scalar_subquery() for col in
            (Account.balance, Customer.version, Customer.archived.cast(Integer))]
    with engine.connect() as conn:
        return tuple(conn.execute(select(*counts, *sums)).one())


#: how the calls of the running test ended ("ok" / "refused"), counted by :func:`attempt`
TALLY: Counter[str] = Counter()


@pytest.fixture
def world(crm: Any) -> Iterator[Any]:
    """Customers 1-3 (refs A1, B2, C3), each with a default EUR account and an invoice.

    Afterwards: a property whose calls were all refused (or all accepted) tested only one path,
    so every test that went through :func:`attempt` must have seen both outcomes."""
    with crm.unit_of_work("test") as uow:
        for ref in ("A1", "B2", "C3"):
            c = uow.customers.create(CustomerCreate(name=f"Customer {ref}", external_ref=ref))
            uow.accounts.post(c.id, TransactionCreate(kind="invoice", amount="100", reference=f"INV-{ref}"))
    TALLY.clear()
    yield crm
    if TALLY:
        assert TALLY["ok"] > 0, f"no call succeeded: the property tested only refusals ({dict(TALLY)})"
        assert TALLY["refused"] > 0, f"no call was refused: the property tested only valid input ({dict(TALLY)})"


def attempt(crm: Any, action: Any, *, read_only: bool = False) -> bool:
    """Run ``action(uow)``; a failure must be clean (ValidationError or CRMError) and write nothing.
    Counts the outcome in :data:`TALLY`; returns whether the call succeeded."""
    before = snapshot(crm.engine)
    try:
        with crm.unit_of_work("test", read_only=read_only) as uow:
            action(uow)
    except (ValidationError, CRMError):
        assert snapshot(crm.engine) == before, "a failed unit of work wrote something"
        TALLY["refused"] += 1
        return False
    # anything else propagates and fails the test: an input crashed the core
    TALLY["ok"] += 1
    return True


def build(model: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    return model.model_validate(data)


@settings(max_examples=60)
@given(data=st.one_of(CUSTOMER_OK, records(CUSTOMER)))
def test_customer_create(world: Any, data: dict[str, Any]) -> None:
    attempt(world, lambda uow: uow.customers.create(build(CustomerCreate, data)))


@settings(max_examples=50)
@given(case=st.one_of(st.tuples(known_ids, CUSTOMER_CHANGE_OK), st.tuples(customer_ids, records({**CUSTOMER, "version": maybe(ints)}))))
def test_customer_update(world: Any, case: tuple[Any, dict[str, Any]]) -> None:
    cid, data = case
    attempt(world, lambda uow: uow.customers.update(cid, build(CustomerUpdate, data)))


@settings(max_examples=40)
@given(search=st.none() | texts, tag=st.none() | texts, limit=st.one_of(st.integers(1, 100), ints), offset=st.one_of(st.integers(0, 5), ints),
       archived=st.booleans())
def test_customer_list(world: Any, search: Any, tag: Any, limit: int, offset: int, archived: bool) -> None:
    attempt(world, lambda uow: uow.customers.list(search=search, tag=tag, limit=limit, offset=offset,
                                                  include_archived=archived), read_only=True)


@settings(max_examples=30)
@given(cid=customer_ids, ref=texts)
def test_customer_lookup(world: Any, cid: Any, ref: str) -> None:
    attempt(world, lambda uow: (uow.customers.get(cid), uow.customers.get_by_ref(ref)), read_only=True)


@settings(max_examples=40)
@given(case=st.one_of(st.tuples(known_ids, CONTACT_OK), st.tuples(customer_ids, records({
    "name": texts, "role": maybe(st.just("decider")), "title": texts, "email": texts, "phone": texts, "external_ref": texts}))))
def test_contact_add(world: Any, case: tuple[Any, dict[str, Any]]) -> None:
    cid, data = case
    attempt(world, lambda uow: uow.contacts.add(cid, build(ContactCreate, data)))


@settings(max_examples=50)
@given(case=st.one_of(st.tuples(known_ids, INTERACTION_OK), st.tuples(customer_ids, records(INTERACTION))))
def test_interaction_log(world: Any, case: tuple[Any, dict[str, Any]]) -> None:
    cid, data = case
    attempt(world, lambda uow: uow.interactions.log(cid, build(InteractionCreate, data)))


@settings(max_examples=60)
@given(case=st.one_of(st.tuples(known_ids, st.none(), TRANSACTION_OK), st.tuples(customer_ids, maybe(customer_ids), records(TRANSACTION))))
def test_account_post(world: Any, case: tuple[Any, Any, dict[str, Any]]) -> None:
    cid, account, data = case
    attempt(world, lambda uow: uow.accounts.post(cid, build(TransactionCreate, data),
                                                 account if isinstance(account, int) else None))


@settings(max_examples=25)
@given(cid=customer_ids, data=records({"currency": st.one_of(st.sampled_from(["EUR", "USD"]), texts),
                                       "payment_terms_days": ints, "is_default": st.booleans()}))
def test_account_open(world: Any, cid: Any, data: dict[str, Any]) -> None:
    attempt(world, lambda uow: uow.accounts.open(cid, build(AccountCreate, data)))


@settings(max_examples=40)
@given(aid=customer_ids, since=st.none() | moments, until=st.none() | moments)
def test_account_statement(world: Any, aid: Any, since: Any, until: Any) -> None:
    """Statement bounds: any datetime Python can hold, naive or with any offset."""
    attempt(world, lambda uow: uow.accounts.statement(aid, since, until), read_only=True)


@settings(max_examples=30)
@given(data=st.one_of(USER_OK, records({"username": st.one_of(st.from_regex(r"[a-z][a-z0-9_.-]{1,62}", fullmatch=True), texts),
                     "display_name": texts, "email": texts, "roles": st.lists(st.sampled_from(["admin", "sales", "pope"]), max_size=2)})))
def test_user_add(world: Any, data: dict[str, Any]) -> None:
    attempt(world, lambda uow: uow.users.add(build(UserCreate, data)))


@settings(max_examples=25)
@given(entity=st.none() | texts, entity_id=st.none() | texts | ints, limit=st.one_of(st.integers(1, 50), ints))
def test_audit_list(world: Any, entity: Any, entity_id: Any, limit: int) -> None:
    attempt(world, lambda uow: uow.audit.list(entity, entity_id, limit), read_only=True)


@settings(max_examples=20)
@given(actor=texts)
def test_any_actor_is_accepted_or_refused_cleanly(world: Any, actor: str) -> None:
    before = snapshot(world.engine)
    try:
        with world.unit_of_work(actor) as uow:
            uow.customers.create(CustomerCreate(name="By someone"))
    except CRMError:
        assert snapshot(world.engine) == before


def test_the_world_is_what_the_properties_aim_at(world: Any) -> None:
    with world.unit_of_work("test", read_only=True) as uow:
        assert [c.external_ref for c in uow.customers.list()] == ["A1", "B2", "C3"]
        assert [a.balance for a in uow.accounts.list()] == [Decimal("100.00")] * 3
