"""Edge input never ends in exit 3: each class (ids, dates, seeds, lengths, undecodable text, the
database itself) is one clear line with exit 1 or 2, and nothing is written. Stored text with
terminal escapes is printed escaped. Runs on SQLite and, with CRM_TEST_DATABASE_URL, PostgreSQL."""
from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys

import pytest
from sqlalchemy import text

from crmcore.cli.output import safe
from crmcore.errors import InvalidInput, NotFound
from crmcore.limits import MAX_ID

ERROR_LINE = re.compile(r"^(error|Error): ", re.MULTILINE)


def ok(res):
    assert res.exit_code == 0, res.output
    return res


def refused(res, code: int, *texts: str):
    """Exit ``code``, one error line containing each text, no traceback, no internal error."""
    out = res.output
    assert res.exit_code == code, out
    assert "Traceback" not in out and "internal error" not in out, out
    assert len(ERROR_LINE.findall(out)) == 1, out
    for t in texts:
        assert t in out, out
    return res


def counts(crm) -> tuple[int, ...]:
    """Rows of every core table and the sum of balances: what a refused command must not change."""
    tables = ("customers", "contacts", "interactions", "accounts", "transactions", "users", "audit_log")
    sql = "SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in tables) + ", (SELECT sum(balance) FROM accounts)"
    with crm.engine.connect() as conn:
        return tuple(conn.execute(text(sql)).one())


@pytest.fixture
def acme(cli):
    ok(cli("customer", "add", "Acme", "--ref", "A1"))
    ok(cli("account", "post", "A1", "invoice", "10", "--ref", "INV-1", "--at", "2024-01-01"))
    return cli


BIG = "99999999999999999999999"


@pytest.mark.parametrize("args", [
    ("customer", "show", f"#{2**31}"),
    ("customer", "show", f"#{BIG}"),
    ("customer", "update", f"#{2**63}", "--region", "x"),
    ("customer", "archive", f"#{BIG}"),
    ("customer", "merge", "A1", "--into", f"#{BIG}"),
    ("contact", "add", f"#{2**31}", "Jane"),
    ("contact", "update", BIG, "--name", "x"),
    ("contact", "remove", str(2**31)),
    ("contact", "remove", "0"),
    ("interaction", "list", "--customer", f"#{BIG}"),
    ("account", "statement", str(2**31)),
    ("account", "statement", "9" * 5000),
    ("account", "status", BIG, "on_hold"),
    ("account", "post", "A1", "invoice", "5", "--ref", "X", "--account", BIG),
    ("account", "list", "--customer", f"#{2**31}"),
    ("customer", "update", "A1", "--region", "x", "--version", BIG),
])
def test_ids_beyond_the_column_are_usage_errors(crm, acme, args):
    before = counts(crm)
    refused(acme(*args), 2, "out of range", str(MAX_ID))
    assert counts(crm) == before


@pytest.mark.parametrize("key", [BIG, str(2**31), "9" * 100])
def test_a_number_beyond_any_id_is_looked_up_as_a_reference_only(acme, key):
    refused(acme("customer", "show", key), 1, "not found")


def test_a_reference_that_looks_like_a_huge_number_is_found(cli):
    ok(cli("customer", "add", "Numbered", "--ref", BIG))
    assert json.loads(ok(cli("customer", "show", BIG, "--json")).output)["customer"]["name"] == "Numbered"
    ok(cli("customer", "add", "Hashed", "--ref", "#A1"))  # '#' followed by non-digits stays a reference
    assert json.loads(ok(cli("customer", "show", "#A1", "--json")).output)["customer"]["name"] == "Hashed"


def test_services_treat_ids_beyond_the_column_as_not_found(uow):
    for key in (0, -1, 2**31, 2**63, 10**30):
        with pytest.raises(NotFound):
            uow.customers.get(key)
        with pytest.raises(NotFound):
            uow.accounts.get(key)


@pytest.mark.parametrize("args", [
    ("interaction", "log", "A1", "--channel", "email", "--subject", "s", "--at", "0001-01-01T00:00:00+05:00"),
    ("interaction", "log", "A1", "--channel", "email", "--subject", "s", "--at", "9999-12-31T23:00:00-05:00"),
    ("interaction", "log", "A1", "--channel", "email", "--subject", "s", "--at", "1899-12-31T23:59:59"),
    ("account", "post", "A1", "invoice", "5", "--ref", "X", "--at", "9999-12-31"),
    ("account", "post", "A1", "invoice", "5", "--ref", "X", "--at", "9000-12-31T23:00-05:00"),
    ("account", "post", "A1", "invoice", "5", "--ref", "X", "--due", "9999-12-31"),
    ("account", "post", "A1", "invoice", "5", "--ref", "X", "--due", "0001-01-01"),
    ("account", "statement", "1", "--since", "0001-01-01T00:00+01:00"),
    ("account", "statement", "1", "--until", "9999-12-31T23:59:59-14:00"),
])
def test_dates_outside_the_supported_range_are_usage_errors(crm, acme, args):
    before = counts(crm)
    refused(acme(*args), 2, "out of range", "1900-01-01 to 9000-12-31")
    assert counts(crm) == before


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", "2024-02-30", "1" * 10000, "2024-01-01T25:00"])
def test_dates_that_are_not_dates_are_usage_errors(acme, value):
    refused(acme("interaction", "log", "A1", "--channel", "email", "--subject", "s", "--at", value), 2, "not an ISO date")


def test_the_edges_of_the_date_range_are_accepted(acme):
    ok(acme("interaction", "log", "A1", "--channel", "email", "--subject", "first", "--at", "1900-01-01T00:00:00Z"))
    ok(acme("interaction", "log", "A1", "--channel", "email", "--subject", "last", "--at", "9000-12-31T23:59:59Z"))
    ok(acme("account", "post", "A1", "invoice", "5", "--ref", "EARLY", "--at", "1900-01-01T00:00:00+00:00"))
    when = sorted(x["occurred_at"][:10] for x in json.loads(ok(acme("interaction", "list", "--json")).output))
    assert when == ["1900-01-01", "9000-12-31"]
    st = json.loads(ok(acme("account", "statement", "1", "--until", "1900-01-02", "--json")).output)
    assert [x["reference"] for x in st["lines"]] == ["EARLY"]
    # a posting is also within the posting horizon (docs: Guarantees): 9000-12-31 is a clean refusal
    refused(acme("account", "post", "A1", "invoice", "5", "--ref", "LATE", "--at", "9000-12-31T10:00:00+00:00"), 1,
            "posting horizon")


@pytest.mark.parametrize("seed", ["-1", str(2**32), BIG, "abc"])
def test_demo_seed_out_of_range_is_a_usage_error(crm, cli, seed):
    before = counts(crm)
    refused(cli("demo", "generate", "--customers", "3", "--transactions", "3", "--seed", seed), 2, "--seed")
    assert counts(crm) == before


def test_search_and_filters_are_capped(acme):
    refused(acme("customer", "list", "--search", "a" * 51000), 2, "too long", "at most 254")
    refused(acme("customer", "list", "--tag", "t" * 51000), 2, "too long")
    refused(acme("audit", "--entity", "e" * 51000), 2, "too long")
    assert ok(acme("customer", "list", "--search", "a" * 254)).output.count("(none)") == 1
    refused(acme("customer", "list", "--after", BIG), 2, "--after")


@pytest.mark.parametrize("args", [
    ("customer", "list", "--search", "caf\udce9"),
    ("customer", "list", "--tag", "\udcff"),
    ("customer", "show", "\udcff"),
    ("customer", "add", "X\udcff"),
    ("interaction", "log", "A1", "--channel", "email", "--subject", "s", "--by", "\udcff"),
    ("audit", "--entity", "\udcff"),
    ("audit", "--id", "\udcff"),
    ("--user", "\udcff", "customer", "add", "Y"),
    ("customer", "list", "--search", "nul\x00"),
    ("customer", "show", "A1\x1b[2J"),
])
def test_undecodable_bytes_and_control_characters_are_refused(crm, acme, args):
    """A non-UTF-8 argument arrives as lone surrogates (PEP 383); neither engine can take them."""
    before = counts(crm)
    res = acme(*args)
    assert res.exit_code in (1, 2), res.output
    refused(res, res.exit_code)
    assert counts(crm) == before


def test_acting_user_is_checked_before_anything_is_reported_done(acme, crm):
    before = counts(crm)
    refused(acme("--user", "u" * 200, "customer", "update", "A1", "--region", "North"), 2, "at most 64")
    assert counts(crm) == before
    with pytest.raises(InvalidInput, match="too long"), crm.unit_of_work("u" * 65) as uow:
        uow.customers.create_called = True  # never reached
    with pytest.raises(InvalidInput, match="control character"), crm.unit_of_work("bad\x1bname"):
        pass
    assert json.loads(ok(acme("customer", "show", "A1", "--json")).output)["customer"]["region"] is None


def test_a_text_file_given_as_the_database_is_one_line(cli, tmp_path):
    f = tmp_path / "notes.db"
    f.write_text("hello, I am not a database\n" * 100)
    refused(cli("customer", "list", database=f"sqlite:///{f}"), 2, "file is not a database")
    refused(cli("init", database=f"sqlite:///{f}"), 2, "file is not a database")
    assert f.read_text().startswith("hello")


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://u:s3cr3t@host:notaport/db",
    "postgresql://u:s3cr3t@[::1",
    "postgresql+psycopg://u:s3cr3t@127.0.0.1:5432/db?connect_timeout=abc",
    "postgresql+psycopg://u:pa@s3cr3t@127.0.0.1:1/db",
    "postgresql+psycopg://u:s3cr3t@127.0.0.1:99999/db",
    "mysql://u:s3cr3t@h/db",
    "::::",
])
def test_malformed_database_urls_exit_2_without_the_password(cli, url):
    res = refused(cli("customer", "list", database=url), 2)
    assert "s3cr3t" not in res.output


def test_stored_terminal_escapes_are_printed_escaped(cli, crm_url, crm):
    ok(cli("customer", "add", "Bidi \u202eevil\u202c name", "--ref", "B1", "--region", "[/x] [bold]North"))
    ok(cli("customer", "add", "Plain", "--ref", "E1"))
    ok(cli("contact", "add", "E1", "Jane"))
    # text that reached the database another way (an older version, a plugin, a SQL console)
    nasty = "Evil\x1b[31mRED\x1b]0;pwned\x07\x9b2J\x00end"
    with crm.engine.begin() as conn:
        if crm.engine.dialect.name == "postgresql":
            nasty = nasty.replace("\x00", "")  # PostgreSQL cannot store NUL at all
        conn.execute(text("UPDATE customers SET name = :n, industry = :n WHERE external_ref = 'E1'"), {"n": nasty})
        conn.execute(text("UPDATE contacts SET name = :n"), {"n": nasty})
    for args in (("customer", "list"), ("customer", "show", "E1"), ("contact", "list", "E1"), ("customer", "show", "B1"),
                 ("customer", "list", "--search", "evil")):
        out = ok(cli(*args)).output
        for raw in ("\x1b", "\x07", "\x9b", "\x00", "\u202e", "\u202c"):
            assert raw not in out, (args, out)
    listed = ok(cli("customer", "list")).output
    assert "\\x1b[31mRED" in listed and "\\u202eevil" in listed
    show = ok(cli("customer", "show", "B1")).output
    assert "[/x] [bold]North" in show  # rich markup in stored text is printed as written
    exact = json.loads(ok(cli("customer", "show", "E1", "--json")).output)
    assert exact["customer"]["name"] == nasty and exact["contacts"][0]["name"] == nasty


def test_messages_naming_stored_text_are_escaped(cli, crm):
    ok(cli("customer", "add", "Plain", "--ref", "E1"))
    with crm.engine.begin() as conn:
        conn.execute(text("UPDATE customers SET name = :n"), {"n": "Evil\x1b]0;x\x07"})
    res = ok(cli("contact", "add", "E1", "Jane \u202eX"))
    assert "\u202e" not in res.output and "\\u202e" in res.output


def test_safe_escapes_every_control_and_bidi_character():
    for c in [*map(chr, range(0x20)), "\x7f", *map(chr, range(0x80, 0xA0)), "\u061c", "\u200e", "\u200f",
              *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A)), "\u2028", "\ufeff", "\ud800"]:
        assert c not in safe(f"a{c}b"), repr(c)
    assert safe("Müller & Söhne — 東京 [b]") == "Müller & Söhne — 東京 [b]"


def test_crm_subprocess_edge_input_exits_cleanly(crm_url, tmp_path):
    """The real entry point: undecodable bytes from the shell and an out-of-range id."""
    code = "from crmcore.cli import main; main()"
    env_cmd = [sys.executable, "-c", code, "--database", crm_url]
    for args in ([b"customer", b"show", b"\xff\xfe"], [b"customer", b"show", f"#{BIG}".encode()],
                 [b"account", b"statement", str(2**31).encode()]):
        r = subprocess.run([*(a.encode() for a in env_cmd), *args], check=False, capture_output=True, timeout=120)
        err = r.stderr.decode("utf-8", "replace")
        assert r.returncode == 2 and "Traceback" not in err and len(ERROR_LINE.findall(err)) == 1, err


def test_edge_dates_do_not_reach_the_services_unchecked(uow):
    """The schema path (API, import) refuses what would overflow once converted to UTC."""
    from pydantic import ValidationError

    from crmcore.schemas import InteractionCreate

    for at in (dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5))),
               dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-5)))):
        with pytest.raises(ValidationError):
            InteractionCreate(channel="email", subject="s", occurred_at=at)


def test_services_refuse_what_no_engine_can_take(uow):
    """Found by tests/test_property_services.py: each reached the driver before."""
    from crmcore.schemas import CustomerCreate, CustomerUpdate, TransactionCreate

    c = uow.customers.create(CustomerCreate(name="Acme", external_ref="A1"))
    entry, _ = uow.accounts.post(c.id, TransactionCreate(kind="invoice", amount="10", reference="INV-1"))
    for search in ("\ud800", "a\x00b", "x" * 51000):
        with pytest.raises(InvalidInput):
            uow.customers.list(search=search)
    with pytest.raises(InvalidInput):
        uow.customers.list(tag="\udcff")
    for limit, offset in ((0, 0), (2**63, 0), (5, -1), (5, 2**63)):
        with pytest.raises(InvalidInput):
            uow.customers.list(limit=limit, offset=offset)
    with pytest.raises(NotFound):
        uow.customers.update(2**31, CustomerUpdate(region="x"))
    utc_plus_1 = dt.timezone(dt.timedelta(hours=1))
    with pytest.raises(InvalidInput, match="out of range"):
        uow.accounts.statement(entry.account_id, until=dt.datetime(1, 1, 1, tzinfo=utc_plus_1))
    with pytest.raises(InvalidInput, match="out of range"):
        uow.accounts.statement(entry.account_id, since=dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(-dt.timedelta(hours=5))))
    assert uow.accounts.statement(entry.account_id, since=dt.datetime(1, 1, 1, 2, tzinfo=utc_plus_1)).closing_balance == 10
    for entity, entity_id, limit in (("\x00", None, 5), (None, "\ud800", 5), (None, None, -1), (None, None, 2**63)):
        with pytest.raises(InvalidInput):
            uow.audit.list(entity, entity_id, limit)
    assert [c.name for c in uow.customers.list(search="ACME")] == ["Acme"]


@pytest.mark.parametrize("command", ["roles", "deactivate", "activate"])
def test_user_commands_refuse_undecodable_names(cli, command):
    ok(cli("user", "add", "tester", "--name", "The Tester", "--role", "admin"))
    extra = ("sales",) if command == "roles" else ()
    refused(cli("user", command, "\udcff", *extra), 1, "not found")
    refused(cli("user", command, "x" * 5000, *extra), 1, "not found")
