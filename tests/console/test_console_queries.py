"""The console's core pages issue a fixed number of SQL queries whatever the data size.

Counted with SQLAlchemy's ``before_cursor_execute`` on the CRM's engine, for the home page, the
customer list, the 360° view and an account statement, with a small and a large data set (10
and 1,000 timeline entries, contacts, ledger entries, customers): an N+1 (a query per row)
shows up as a count that grows. Each page is requested once before counting, so a session
refresh (``last_seen_at``, at most once a minute) or a first-use cache does not blur the count.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event

from crmcore.schemas import ContactCreate, CustomerCreate, InteractionCreate, TransactionCreate

SIZES = (10, 1000)
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@contextmanager
def counting(engine: Any) -> Iterator[list[str]]:
    """The SQL statements the engine runs inside the block."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def fill(crm: Any, name: str, n: int) -> int:
    """A customer owned by anna with ``n`` interactions, contacts and ledger entries, and ``n``
    more customers of hers (the list and home page sizes); returns the customer's id."""
    with crm.unit_of_work("boss") as uow:
        cid = uow.customers.create(CustomerCreate(name=name, external_ref=name.upper(), owner="anna", country="DE")).id
        for i in range(n):
            at = T0 + dt.timedelta(hours=i)
            uow.interactions.log(cid, InteractionCreate(channel="phone", subject=f"call {i}", occurred_at=at,
                                                        handled_by="anna"))
            uow.contacts.add(cid, ContactCreate(name=f"Contact {i}", email=f"c{i}@{name.lower()}.example.com"))
            kind = "invoice" if i % 2 == 0 else "payment"
            uow.accounts.post(cid, TransactionCreate(kind=kind, amount=Decimal("100.00"), currency="EUR",
                                                     reference=f"{name}-{i}", occurred_at=at))
            uow.customers.create(CustomerCreate(name=f"{name} client {i}", owner="anna", country="DE"))
    return cid


def account_of(crm: Any, cid: int) -> int:
    with crm.unit_of_work("boss", read_only=True) as uow:
        return int(uow.profiles.get(cid)["accounts"][0]["id"])


def count(c: Any, engine: Any, path: str) -> int:
    c.get(path)  # warm: session refresh, caches
    with counting(engine) as seen:
        r = c.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return len(seen)


@pytest.fixture
def sized(console_crm: Any) -> dict[int, int]:
    """Customer id for each size; each size has its own owner so lists and home pages differ in size."""
    return {n: fill(console_crm, f"Size{n}", n) for n in SIZES}


def test_the_data_is_really_there(client: Any, sized: dict[int, int]) -> None:
    """The large customer's page shows the large data (so the counts below compare real pages)."""
    c = client("boss")
    big = c.get(f"/console/customers/{sized[1000]}").text
    assert big.count("Contact ") >= 1000 and "call 999" in big
    assert "€" in big or "EUR" in big
    listing = c.get("/console/customers?search=Size1000").text
    assert len(re.findall(r'href="/console/customers/\d+"', listing)) == 25  # a full page of the 1,001


@pytest.mark.parametrize("user", ["boss", "anna"])
def test_queries_do_not_grow_with_the_data(client: Any, console_crm: Any, sized: dict[int, int], user: str) -> None:
    c = client(user)
    engine = console_crm.engine
    pages = {
        "360": {n: f"/console/customers/{cid}" for n, cid in sized.items()},
        "timeline": {n: f"/console/customers/{cid}?kind=phone&partial=timeline" for n, cid in sized.items()},
        "statement": {n: f"/console/accounts/{account_of(console_crm, cid)}/statement" for n, cid in sized.items()},
        "list": {n: f"/console/customers?search=Size{n}" for n in SIZES},
    }
    counts = {page: {n: count(c, engine, path) for n, path in by_size.items()} for page, by_size in pages.items()}
    counts["home"] = {n: count(c, engine, "/console/") for n in SIZES}  # the same user: count twice, equal
    for page, by_size in counts.items():
        assert len(set(by_size.values())) == 1, (page, by_size)
        assert by_size[1000] <= 20, (page, by_size)  # and few


def test_home_page_count_does_not_depend_on_how_many_customers_one_owns(client: Any, console_crm: Any,
                                                                       sized: dict[int, int]) -> None:
    """sam owns one customer, anna over 2,000: the home page (my customers) costs the same."""
    engine = console_crm.engine
    assert count(client("sam"), engine, "/console/") == count(client("anna"), engine, "/console/")
