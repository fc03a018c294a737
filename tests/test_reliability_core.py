"""Issue 7 (reliability), the core's single-process guarantees, on SQLite and PostgreSQL:
references unique per customer in the database, exact money at size with a clean limit,
currency minor units, Unicode search, audit completeness, durability, credentials never shown,
reports that never wait for a writer. The many-process checks are in test_concurrency.py."""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from decimal import Decimal

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError

from crmcore import CRM
from crmcore.db.engine import create_crm_engine, mask_url, sqlite_snapshot_is_committed_state, sqlite_synchronous
from crmcore.db.types import BALANCE_LIMIT
from crmcore.errors import ConfigError, Conflict, DatabaseError, InvalidInput
from crmcore.models import Account, AuditEntry, Customer, Transaction
from crmcore.schemas import AccountCreate, ContactCreate, CustomerCreate, CustomerUpdate, TransactionCreate
from crmcore.testing import is_postgres


def ok(res):
    assert res.exit_code == 0, res.output
    return res


def fails(res, code, *texts):
    assert res.exit_code == code, res.output
    for t in texts:
        assert t in res.output, res.output
    assert "Traceback" not in res.output and "internal error" not in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    return res


def new_customer(crm: CRM, name: str = "Acme", ref: str | None = None) -> int:
    with crm.unit_of_work() as uow:
        return uow.customers.create(CustomerCreate(name=name, external_ref=ref)).id


def post(crm: CRM, cid: int, kind: str, amount: str, ref: str) -> tuple[int, bool]:
    with crm.unit_of_work() as uow:
        entry, created = uow.accounts.post(cid, TransactionCreate(kind=kind, amount=amount, reference=ref))
        return entry.account_id, created


# -- a reference is posted once per customer, enforced by the database -------------------------

def test_reference_is_unique_per_customer_across_accounts(crm):
    cid = new_customer(crm)
    acc1, _ = post(crm, cid, "invoice", "100", "INV-1")
    with crm.unit_of_work() as uow:
        acc2 = uow.accounts.open(cid, AccountCreate()).id
    assert acc2 != acc1
    with crm.unit_of_work() as uow:  # same document on the second account: the same posting, a no-op
        entry, created = uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="100", reference="INV-1"), acc2)
        assert (entry.account_id, created) == (acc1, False)
    with pytest.raises(Conflict, match="already posted"), crm.unit_of_work() as uow:
        uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="101", reference="INV-1"), acc2)
    # the database itself refuses a second row, whatever code writes it
    with pytest.raises(IntegrityError), crm.engine.begin() as conn:
        conn.execute(insert(Transaction).values(account_id=acc2, customer_id=cid, kind="invoice", amount=Decimal(1),
                                                currency="EUR", occurred_at=dt.datetime.now(dt.UTC),
                                                reference="INV-1", source="raw", created_at=dt.datetime.now(dt.UTC)))
    # and an entry whose customer is not its account's customer
    other = new_customer(crm, "Other")
    with pytest.raises(IntegrityError), crm.engine.begin() as conn:
        conn.execute(insert(Transaction).values(account_id=acc2, customer_id=other, kind="invoice", amount=Decimal(1),
                                                currency="EUR", occurred_at=dt.datetime.now(dt.UTC),
                                                reference="RAW-2", source="raw", created_at=dt.datetime.now(dt.UTC)))


def test_default_account_is_never_demoted_by_first_posting(crm):
    cid = new_customer(crm)
    with crm.unit_of_work() as uow:  # someone else opened the default account a moment ago
        first = uow.accounts.open(cid, AccountCreate()).id
    with crm.unit_of_work() as uow:
        acc = uow.accounts.default_account(cid)
        assert (acc.id, acc.is_default) == (first, True)
    with crm.unit_of_work(read_only=True) as uow:
        assert [(a.id, a.is_default) for a in uow.accounts.list(cid)] == [(first, True)]


def test_merge_with_a_shared_reference_is_refused_cleanly(crm):
    a, b = new_customer(crm, "A"), new_customer(crm, "B")
    post(crm, a, "invoice", "10", "INV-1")
    post(crm, b, "invoice", "10", "INV-1")
    post(crm, b, "invoice", "5", "INV-2")
    with pytest.raises(Conflict, match="'INV-1'.*posted once per customer"), crm.unit_of_work() as uow:
        uow.customers.merge(b, a)
    c = new_customer(crm, "C")
    post(crm, c, "invoice", "7", "INV-3")
    with crm.unit_of_work() as uow:
        uow.customers.merge(c, a)
    with crm.unit_of_work(read_only=True) as uow:  # the entries follow their account to the target
        refs = uow.session.execute(select(Transaction.reference, Transaction.customer_id).order_by(Transaction.reference)).all()
        assert [(r, cid) for r, cid in refs if r != "INV-1"] == [("INV-2", b), ("INV-3", a)]


# -- money at size -------------------------------------------------------------------------------

def test_balances_are_exact_at_size_and_bounded(crm, cli):
    cid = new_customer(crm, ref="BIG")
    for i in range(20):
        post(crm, cid, "invoice", "9999999999999.99", f"B{i}")
    for i in range(3):
        post(crm, cid, "adjustment", "0.01", f"S{i}")
    with crm.unit_of_work(read_only=True) as uow:
        acc_id = uow.accounts.default_account(cid).id
        stored, summed = uow.accounts.verify_balance(acc_id)
    assert stored == summed == Decimal("199999999999999.80") + Decimal("0.03")
    listed = json.loads(ok(cli("account", "list", "--json")).output)
    assert listed[0]["balance"] == "199999999999999.83"
    with crm.unit_of_work() as uow:  # up to just below the limit
        for i in range(70):
            uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="9999999999999.99", reference=f"N{i}"))
    # beyond the documented limit: one clean line, nothing posted, no SQL
    for i in range(3):
        res = cli("account", "post", "BIG", "invoice", "9999999999999.99", "--ref", f"X{i}")
        if res.exit_code:
            break
    fails(res, 1, "beyond the limit of ±900,000,000,000,000 EUR")
    assert "SELECT" not in res.output and "UPDATE" not in res.output
    with crm.unit_of_work(read_only=True) as uow:
        stored, summed = uow.accounts.verify_balance(acc_id)
        assert stored == summed and abs(stored) <= BALANCE_LIMIT
        assert uow.accounts.posted(cid, f"X{i}") is None


def test_currency_minor_units(crm, cli):
    ok(cli("customer", "add", "Tokyo KK", "--ref", "JP"))
    ok(cli("account", "open", "JP", "--currency", "JPY"))
    fails(cli("account", "post", "JP", "invoice", "100.50", "--ref", "J1"), 1, "whole number", "JPY")
    ok(cli("account", "post", "JP", "invoice", "100", "--ref", "J2"))
    fails(cli("account", "post", "JP", "invoice", "100.5", "--ref", "J3", "--currency", "JPY"), 1, "JPY")
    ok(cli("customer", "add", "Kuwait Co", "--ref", "KW"))
    ok(cli("account", "open", "KW", "--currency", "KWD"))
    assert "invoice 1.234 KWD" in ok(cli("account", "post", "KW", "invoice", "1.234", "--ref", "K1")).output
    fails(cli("account", "post", "KW", "invoice", "1.2345", "--ref", "K2"), 1, "more than 3 decimal places")
    fails(cli("account", "post", "KW", "invoice", "1000000000000", "--ref", "K3"), 1, "too large", "KWD")
    rows = {r["currency"]: r["balance"] for r in json.loads(ok(cli("account", "list", "--json")).output)}
    assert rows == {"JPY": "100.00", "KWD": "1.234"}
    ok(cli("customer", "add", "Euro AG", "--ref", "EU"))
    fails(cli("account", "post", "EU", "invoice", "1.001", "--ref", "E1"), 1, "more than 2 decimal places (EUR has 2)")


# -- Unicode search ----------------------------------------------------------------------------

def test_unicode_search_is_the_same_on_both_engines(cli):
    ok(cli("customer", "add", "ÖZTÜRK BAU", "--ref", "OZ"))
    ok(cli("customer", "add", "Straße & Söhne", "--ref", "ST"))
    ok(cli("customer", "add", "Plain Ltd", "--ref", "PL"))
    ok(cli("customer", "update", "PL", "--name", "ΣΟΦΙΑ Trading"))

    def found(term):
        return sorted(c["external_ref"] for c in json.loads(ok(cli("customer", "list", "--search", term, "--json")).output))

    assert found("öztürk") == ["OZ"]
    assert found("ÖzTüRk bau") == ["OZ"]
    assert found("STRASSE") == ["ST"] and found("söhne") == ["ST"]
    assert found("σοφια") == ["PL"]  # a renamed customer is found by its new name
    assert found("plain") == []
    assert found("%") == [] and found("_") == []


# -- audit ---------------------------------------------------------------------------------------

def audit(crm, entity, entity_id=None):
    with crm.unit_of_work(read_only=True) as uow:
        return [(e.actor, e.action, e.before, e.after) for e in uow.audit.list(entity, entity_id)]


def test_merge_audits_source_and_filled_fields(crm):
    with crm.unit_of_work("anna") as uow:
        target = uow.customers.create(CustomerCreate(name="Target", email="t@example.com")).id
        source = uow.customers.create(CustomerCreate(name="Source", phone="+49301234567", country="DE", region="Bavaria")).id
    with crm.unit_of_work("anna") as uow:
        uow.customers.merge(source, target)
    (actor, action, before, after), *_ = audit(crm, "customer", target)
    assert (actor, action) == ("anna", "merge")
    assert before["source"] == source and before["phone"] is None and before["region"] is None
    assert after["phone"] == "+49301234567" and after["country"] == "DE" and after["region"] == "Bavaria"
    assert "email" not in after  # the target kept its own
    (actor, action, before, after), *_ = audit(crm, "customer", source)
    assert (actor, action) == ("anna", "merged")
    assert before == {"archived": False, "merged_into_id": None}
    assert after["merged_into_id"] == target and after["archived"] is True


def test_deleted_contact_keeps_its_whole_row(crm):
    cid = new_customer(crm)
    with crm.unit_of_work("bob") as uow:
        contact = uow.contacts.add(cid, ContactCreate(name="Jana Novak", role="decider", email="jana@example.com",
                                                       title="Buyer", phone="+49301234567"))
        kid = contact.id
    with crm.unit_of_work("bob") as uow:
        uow.contacts.remove(kid)
    (actor, action, before, after), *_ = audit(crm, "contact", kid)
    assert (actor, action, after) == ("bob", "delete", None)
    assert {k: before[k] for k in ("name", "role", "email", "title", "phone", "customer_id")} == {
        "name": "Jana Novak", "role": "decider", "email": "jana@example.com", "title": "Buyer",
        "phone": "+49301234567", "customer_id": cid}
    assert before["external_ref"] and before["created_at"]


def test_bulk_lifecycle_update_lists_ids_before_and_after(crm):
    ids = [new_customer(crm, f"C{i}") for i in range(3)]
    with crm.unit_of_work("value") as uow:
        changed = uow.customers.set_lifecycle_stages({ids[0]: "active", ids[1]: "at_risk", ids[2]: "prospect"})
    assert changed == ids[:2]  # the third was a prospect already
    entries = [e for e in audit(crm, "customer") if e[1] == "lifecycle"]
    assert len(entries) == 1
    actor, _, before, after = entries[0]
    assert actor == "value"
    assert before == {"lifecycle_stage": {str(ids[0]): "prospect", str(ids[1]): "prospect"}}
    assert after["lifecycle_stage"] == {str(ids[0]): "active", str(ids[1]): "at_risk"}


# -- durability, credentials, actor ----------------------------------------------------------------

def test_durability_setting(crm, monkeypatch):
    with crm.engine.connect() as conn:
        if is_postgres():  # the CRM never lowers durability itself: the server's and database's settings apply
            # (the test database has synchronous_commit off, see crmcore.testing.relax_durability)
            source = conn.execute(text("SELECT source FROM pg_settings WHERE name = 'synchronous_commit'")).scalar()
            assert source in ("default", "database", "configuration file"), source
            return
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    monkeypatch.setenv("CRM_SQLITE_SYNCHRONOUS", "normal")
    assert sqlite_synchronous() == "NORMAL"
    engine = create_crm_engine(str(crm.engine.url))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
    engine.dispose()
    assert sqlite_synchronous("extra") == "EXTRA"
    monkeypatch.setenv("CRM_SQLITE_SYNCHRONOUS", "sometimes")
    with pytest.raises(ConfigError, match="sqlite_synchronous must be one of"):
        sqlite_synchronous()


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://bob:se@cr3t-tail@127.0.0.1:5432/crm",
    "postgresql+psycopg://bob:p@ss/w0rd@127.0.0.1/crm",
    "postgresql://bob:se@cr3t-tail@127.0.0.1:notaport/crm",
    "postgresql://bob:cr3t-tail@[::1/crm",
])
def test_credentials_never_shown(cli, url):
    res = cli("customer", "list", database=url)
    assert res.exit_code == 2, res.output
    assert "cr3t" not in res.output and "w0rd" not in res.output and "tail" not in res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert mask_url(url).startswith(url.split("://")[0] + "://***@")


def test_overlong_actor_is_refused_before_anything_is_written(crm, cli, monkeypatch):
    ok(cli("customer", "add", "Acme", "--ref", "A"))
    res = cli("--user", "u" * 200, "customer", "update", "A", "--region", "North")
    assert res.exit_code in (1, 2) and "updated" not in res.output and "Traceback" not in res.output
    with pytest.raises(InvalidInput, match="64"), crm.unit_of_work("u" * 200) as uow:
        uow.customers.update(1, CustomerUpdate(region="South"))
    with crm.unit_of_work(read_only=True) as uow:
        c = uow.session.get(Customer, 1)
        assert (c.region, c.version) == (None, 1)
        assert uow.session.scalar(select(AuditEntry).where(AuditEntry.action == "update")) is None


# -- reports never wait for a writer ------------------------------------------------------------

def test_reports_do_not_wait_for_a_writer(crm, cli, crm_url):
    ok(cli("customer", "add", "Acme", "--ref", "A"))
    if is_postgres():
        holder = create_crm_engine(crm_url)
        conn = holder.connect()
        conn.execute(text("UPDATE customers SET region = 'X'"))  # row locks held, not committed
        conn.execute(text("LOCK TABLE accounts IN ROW EXCLUSIVE MODE"))
    else:
        conn = sqlite3.connect(crm_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")  # what an import holds for each batch
        conn.execute("UPDATE customers SET region = 'X'")
    try:
        start = time.monotonic()
        res = ok(cli("customer", "list", "--json"))
        assert time.monotonic() - start < 3
        assert [c["region"] for c in json.loads(res.output)] == [None]  # the committed state
        ok(cli("account", "list"))
        ok(cli("customer", "show", "A"))
    finally:
        conn.rollback() if is_postgres() else conn.execute("ROLLBACK")
        conn.close()
        if is_postgres():
            holder.dispose()


# -- the migration fills the new columns from existing data ------------------------------------

@pytest.mark.engine("sqlite")
def test_sqlite_knows_when_a_transaction_reads_exactly_the_committed_state(crm):
    """A writing unit of work holds SQLite's write lock; until it writes, other connections read
    what it reads (value_analysis splits a long read across cores on that). Any row it changes,
    and any read-only (deferred) unit of work, ends that."""
    with crm.unit_of_work() as uow:
        conn = uow.session.connection()
        assert sqlite_snapshot_is_committed_state(conn)
        uow.customers.create(CustomerCreate(name="Written"))
        uow.session.flush()
        assert not sqlite_snapshot_is_committed_state(conn)
    with crm.unit_of_work() as uow:  # the next transaction starts clean
        assert sqlite_snapshot_is_committed_state(uow.session.connection())
    with crm.unit_of_work(read_only=True) as uow:
        assert not sqlite_snapshot_is_committed_state(uow.session.connection())


def test_migration_0002_fills_and_converts(empty_database_url):
    from crmcore.migrations import runner

    crm = CRM.open(empty_database_url, entry_points=False, create=True, config={})
    try:
        from alembic import command

        cfg = runner.alembic_config([])

        def migrate(fn, rev):  # type: ignore[no-untyped-def]
            with crm.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                fn(cfg, rev)

        migrate(command.upgrade, "0001_core")
        now = dt.datetime(2024, 1, 1)
        with crm.engine.begin() as conn:
            conn.execute(text("INSERT INTO customers (id, kind, name, lifecycle_stage, tags, attributes, archived, created_at, "
                              "updated_at, version) VALUES (1, 'organization', 'ÖZTÜRK BAU', 'prospect', '[]', '{}', false, "
                              ":now, :now, 1)"), {"now": now})
            conn.execute(text("INSERT INTO accounts (id, customer_id, currency, payment_terms_days, status, balance, is_default, "
                              "created_at) VALUES (1, 1, 'EUR', 30, 'open', 1234.56, true, :now)"), {"now": now})
            conn.execute(text("INSERT INTO transactions (account_id, kind, amount, currency, occurred_at, reference, source, "
                              "created_at) VALUES (1, 'invoice', 1234.56, 'EUR', :now, 'INV-1', 'core', :now)"), {"now": now})
        migrate(command.upgrade, "0002_reliability")
        with crm.engine.connect() as conn:
            assert conn.execute(text("SELECT customer_id FROM transactions")).scalar() == 1
            assert conn.execute(text("SELECT search_name FROM customers")).scalar() == "öztürk bau"
            assert conn.execute(select(Account.balance)).scalar() == Decimal("1234.56")
        migrate(command.downgrade, "0001_core")
        with crm.engine.connect() as conn:
            assert Decimal(str(conn.execute(text("SELECT balance FROM accounts")).scalar())) == Decimal("1234.56")
        # a customer with one reference on two accounts cannot be upgraded: a clean refusal, nothing changed
        with crm.engine.begin() as conn:
            conn.execute(text("INSERT INTO accounts (id, customer_id, currency, payment_terms_days, status, balance, "
                              "is_default, created_at) VALUES (2, 1, 'EUR', 30, 'open', 1, false, :now)"), {"now": now})
            conn.execute(text("INSERT INTO transactions (account_id, kind, amount, currency, occurred_at, reference, source, "
                              "created_at) VALUES (2, 'invoice', 1, 'EUR', :now, 'INV-1', 'core', :now)"), {"now": now})
        with pytest.raises(DatabaseError, match="'INV-1' 2 times"):
            migrate(command.upgrade, "0002_reliability")
        with crm.engine.connect() as conn:
            assert "search_name" not in {c["name"] for c in sa_inspect(conn).get_columns("customers")}
    finally:
        crm.close()


def test_import_checks_the_account_currency_decimals(cli, tmp_path):
    ok(cli("customer", "add", "Tokyo KK", "--ref", "JP"))
    ok(cli("account", "open", "JP", "--currency", "JPY"))
    path = tmp_path / "t.csv"
    path.write_text("customer_ref,kind,amount,occurred_at,reference\n"
                    "JP,invoice,100.50,2024-01-01,J1\nJP,invoice,100,2024-01-01,J2\n", encoding="utf-8")
    res = cli("import", "transactions", str(path))
    assert res.exit_code == 1, res.output
    assert "1 inserted" in res.output and "1 rejected" in res.output and "whole number" in res.output
    rows = json.loads(ok(cli("account", "list", "--json")).output)
    assert [(r["currency"], r["balance"]) for r in rows] == [("JPY", "100.00")]


def test_import_refuses_balances_beyond_the_limit(cli, tmp_path):
    ok(cli("customer", "add", "Big", "--ref", "BIG"))
    ok(cli("customer", "add", "Small", "--ref", "SM"))
    lines = ["customer_ref,kind,amount,currency,occurred_at,reference"]
    lines += [f"BIG,invoice,9999999999999.99,EUR,2024-01-01,B{i}" for i in range(95)]
    lines += ["SM,invoice,10,EUR,2024-01-01,S1"]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = cli("import", "transactions", str(path), "--batch-size", "50")
    assert res.exit_code == 1, res.output
    assert "beyond the limit of ±900,000,000,000,000" in res.output and "Traceback" not in res.output
    rows = {r["customer_id"]: r["balance"] for r in json.loads(ok(cli("account", "list", "--json")).output)}
    assert rows == {1: "499999999999999.50", 2: "10.00"}  # the first batch of 50 fits, the second does not
