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

import crm_credit.plugin as credit  # the plugins' tables must be on the metadata before the test database is made
import crm_marketing.plugin as marketing
import crm_sales_automation.plugin as sales
import crm_service.plugin as service
import crm_value_analysis.plugin as value
from sqlalchemy import event

from crmcore.enums import Channel, CustomerKind, Direction, InteractionKind, TransactionKind
from crmcore.models import Contact, Customer, Interaction, Transaction
from crmcore.schemas import ContactCreate, CustomerCreate, InteractionCreate, TransactionCreate
from crmcore.services._base import new_ref
from crmcore.services.accounts import effect
from tests.console.conftest import FAST_HASH, PASSWORD

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
    more customers of hers (the list and home page sizes); returns the customer's id.

    The first rows of each kind go through the services (so the account, audit and hooks are
    real); the rest are inserted in bulk, as an import would, which keeps the test fast."""
    with crm.unit_of_work("boss") as uow:
        cid = uow.customers.create(CustomerCreate(name=name, external_ref=name.upper(), owner="anna", country="DE")).id
        for i in range(min(n, 3)):
            at = T0 + dt.timedelta(hours=i)
            uow.interactions.log(cid, InteractionCreate(channel="phone", subject=f"call {i}", occurred_at=at,
                                                        handled_by="anna"))
            uow.contacts.add(cid, ContactCreate(name=f"Contact {i}", email=f"c{i}@{name.lower()}.example.com"))
            uow.accounts.post(cid, TransactionCreate(kind=_kind(i), amount=Decimal("100.00"), currency="EUR",
                                                     reference=f"{name}-{i}", occurred_at=at))
            uow.customers.create(CustomerCreate(name=f"{name} client {i}", owner="anna", country="DE"))
        account, anna = uow.accounts.default_account(cid, "EUR"), uow.users.id_for("anna")
        for i in range(3, n):
            at = T0 + dt.timedelta(hours=i)
            uow.session.add_all([
                Interaction(customer_id=cid, channel=Channel.PHONE, direction=Direction.INBOUND,
                            kind=InteractionKind.OTHER, subject=f"call {i}", occurred_at=at, handled_by_id=anna),
                Contact(customer_id=cid, name=f"Contact {i}", email=f"c{i}@{name.lower()}.example.com"),
                Transaction(account_id=account.id, customer_id=cid, kind=_kind(i), amount=Decimal("100.00"),
                            currency="EUR", occurred_at=at, reference=f"{name}-{i}", source="core"),
                Customer(name=f"{name} client {i}", kind=CustomerKind.ORGANIZATION, owner_id=anna, country="DE",
                         external_ref=new_ref())])
            account.balance += effect(_kind(i), Decimal("100.00"))
    return cid


def _kind(i: int) -> TransactionKind:
    return TransactionKind.INVOICE if i % 2 == 0 else TransactionKind.PAYMENT


def add_users(crm: Any) -> None:
    """boss (admin), anna and sam (sales) with console passwords, as in the console fixtures."""
    from crmcore.console.auth import set_password
    from crmcore.schemas import UserCreate

    with crm.unit_of_work("boss") as uow:
        uow.users.add(UserCreate(username="boss", display_name="Bea Boss", roles=["admin"]))
    with crm.unit_of_work("boss") as uow:
        for name in ("anna", "sam"):
            uow.users.add(UserCreate(username=name, display_name=name.title(), roles=["sales"]))
        for name in ("boss", "anna", "sam"):
            set_password(uow, name, PASSWORD)


def account_of(crm: Any, cid: int) -> int:
    with crm.unit_of_work("boss", read_only=True) as uow:
        return int(uow.profiles.get(cid)["accounts"][0]["id"])


def count(c: Any, engine: Any, path: str) -> int:
    c.get(path)  # warm: session refresh, caches
    with counting(engine) as seen:
        r = c.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return len(seen)


def test_queries_do_not_grow_with_the_data(client: Any, console_crm: Any) -> None:
    sized = {n: fill(console_crm, f"Size{n}", n) for n in SIZES}
    engine = console_crm.engine
    boss = client("boss")
    # the large customer's page shows the large data (so the counts compare real pages)
    big = boss.get(f"/console/customers/{sized[1000]}").text
    # the timeline's latest entries: calls and ledger entries of the same hours, merged
    # each contact in the contacts table and in the log form's "Contact person" select (+ its label)
    assert big.count(">Contact ") == 2001 and "call 999" in big and "call 990" in big and "Size1000-999" in big
    listing = boss.get("/console/customers?search=Size1000").text
    assert len(set(re.findall(r'href="/console/customers/(\d+)"', listing))) == 25  # a full page of the 1,001
    pages = {
        "360": {n: f"/console/customers/{cid}" for n, cid in sized.items()},
        "timeline": {n: f"/console/customers/{cid}?kind=phone&partial=timeline" for n, cid in sized.items()},
        "statement": {n: f"/console/accounts/{account_of(console_crm, cid)}/statement" for n, cid in sized.items()},
        "list": {n: f"/console/customers?search=Size{n}" for n in SIZES},
    }
    for user in ("boss", "anna"):  # an admin, and a sales user with "own" visibility
        c = boss if user == "boss" else client(user)
        counts = {page: {n: count(c, engine, path) for n, path in by_size.items()} for page, by_size in pages.items()}
        for page, by_size in counts.items():
            assert len(set(by_size.values())) == 1, (user, page, by_size)
            assert by_size[1000] <= 20, (user, page, by_size)  # and few
    # sam owns one customer, anna over 1,000: the home page ("my customers") costs the same
    assert count(client("sam"), engine, "/console/") == count(client("anna"), engine, "/console/") <= 20


def test_with_every_bundled_plugin_the_counts_still_do_not_grow(make_crm: Any) -> None:
    """The same pages with the bundled plugins active: their timeline entries, 360° sections and
    home cards are part of the page, and must not cost a query per row either."""
    crm = make_crm(plugins=[credit, marketing, sales, service, value], config={"visibility": {"sales": "own"},
                                                                             "console": FAST_HASH})
    add_users(crm)
    sized = {n: fill(crm, f"Size{n}", n) for n in SIZES}
    from tests.console.conftest import TestClient, create_app, sign_in, with_console

    with TestClient(with_console(create_app(crm), crm)) as c:
        sign_in(c, "boss")
        for path in ("/console/customers/{cid}", "/console/accounts/{aid}/statement"):
            counts = {n: count(c, crm.engine, path.format(cid=cid, aid=account_of(crm, cid))) for n, cid in sized.items()}
            assert len(set(counts.values())) == 1, (path, counts)
        assert count(c, crm.engine, "/console/customers?search=Size1000") == count(c, crm.engine, "/console/customers?search=Size10")
    homes = []
    for user in ("anna", "sam"):  # over 2,000 customers, and none
        with TestClient(with_console(create_app(crm), crm)) as c:
            sign_in(c, user)
            homes.append(count(c, crm.engine, "/console/"))
    assert homes[0] == homes[1], homes
