"""Property-based: the ``crm`` command under generated, hostile input.

Every core command gets random option values — text from every Unicode category (controls, NUL,
bidi overrides, lone surrogates as a non-UTF-8 shell argument arrives), huge and tiny numbers,
NaN/Infinity, dates at the calendar's edges with offsets, ids beyond the column — and must:

- exit 0, 1 or 2 (never 3 "internal error", never an exception);
- print no traceback, and on failure exactly one ``error:``/``Error:`` line;
- write nothing when it fails (row counts, balances and the audit log before == after);
- never put a raw terminal escape or bidi override on a human-readable screen.

Reproducible in CI through the "ci" hypothesis profile (tests/conftest.py); HYPOTHESIS_PROFILE=dev
explores new examples. Runs on SQLite and, with CRM_TEST_DATABASE_URL, on PostgreSQL.
"""
from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Integer, func, select, text

from crmcore.db.engine import create_crm_engine
from crmcore.models import Account, AuditEntry, Contact, Customer, Interaction, Transaction, User
from crmcore.schemas import ContactCreate, CustomerCreate, TransactionCreate, UserCreate
from crmcore.testing import is_postgres

ERROR_LINE = re.compile(r"^(error|Error): ", re.MULTILINE)
RAW_ESCAPES = ("\x1b", "\x9b", "\u202e", "\u2066", "\x00")
BIG = "99999999999999999999999"

NASTY = [
    "", " ", "#", "#0", "#1", "#2", "#-1", f"#{2**31}", str(2**31), f"#{BIG}", BIG, str(2**63), f"#{2**64}", str(2**64 - 1), "-1", "0", "1", "2", "3", "1e308",
    "-1e308", "1e-400", "NaN", "-Infinity", "0.001", "12.345", "9" * 400, "a" * 300, "\x00", "x\x00y", "\x1b[31mred",
    "\x1b]0;title\x07", "\x9b2J", "\u202eevil", "[/x]", "[bold]b", "\ud800", "caf\udce9", "%", "_", "\\", "'; DROP TABLE customers; --",
    "=1+1", "A1", "B2", "C3", "2024-02-30", "0001-01-01T00:00+05:00", "9999-12-31T23:00-05:00", "9999-12-31", "1899-12-31",
    "1900-01-01", "9000-12-31T23:59:59Z", "2024-06-01T10:00:00+14:00", "DE", "EUR", "JPY", "KWD", "xx", "de", "a@b.de",
    "not-an-email", "+49301234567", "030 1234567", "ÖZTÜRK BAU", "東京", "\u0000\u0001\u007f\u0085",
]

# every Unicode category, surrogates (Cs), private use (Co) and unassigned (Cn) included
any_text = st.text(st.characters(exclude_categories=()), max_size=40)
numbers = st.one_of(
    st.integers(-(2**80), 2**80).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)
offsets = st.one_of(st.none(), st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: dt.timezone(dt.timedelta(minutes=m))))
datetimes = st.builds(lambda d, tz: d.replace(tzinfo=tz).isoformat(), st.datetimes(), offsets)
edge_dates = st.sampled_from([dt.date.min, dt.date.max, dt.date(1900, 1, 1), dt.date(9000, 12, 31)]).map(str)
value = st.one_of(st.sampled_from(NASTY), any_text, numbers, datetimes, edge_dates)


def choice(*vals: str) -> st.SearchStrategy[str]:
    """Mostly one of ``vals`` (so commands get past their first check), sometimes anything."""
    valid = st.sampled_from(vals)
    return st.one_of(valid, valid, valid, value)


# the boundaries of each class, drawn as often as valid values: ids around the 32/64-bit edges,
# dates whose UTC form leaves the calendar
EDGE_IDS = ["0", "-1", str(2**31 - 1), str(2**31), str(2**63 - 1), str(2**63), str(2**64), BIG, "9" * 400]
EDGE_DATES = ["0001-01-01T00:00:00+05:00", "0001-01-01", "9999-12-31T23:00:00-05:00", "9999-12-31", "1899-12-31T23:59:59",
              "9000-12-31T23:59:59-00:01", "1900-01-01T00:30+01:00", "2024-02-29T12:00+14:00"]
keys = st.one_of(choice("A1", "B2", "C3", "#1", "#2", "#3"), st.sampled_from([f"#{i}" for i in EDGE_IDS] + EDGE_IDS))
ids = st.one_of(choice("1", "2", "3"), st.sampled_from(EDGE_IDS))
when = st.one_of(datetimes, st.sampled_from(EDGE_DATES), value)
amounts = st.one_of(st.decimals(min_value="0.01", max_value="9999999999999.99", places=2).map(str), numbers, value)
usernames = st.one_of(st.from_regex(r"[a-z][a-z0-9_.-]{1,70}", fullmatch=True), value)


@st.composite
def opts(draw: Callable[..., Any], spec: dict[str, st.SearchStrategy[str] | None]) -> list[str]:
    """A random subset of the options in ``spec`` (None = a flag), in random order, random values."""
    out: list[str] = []
    for name in draw(st.lists(st.sampled_from(sorted(spec)), unique=True, max_size=len(spec))):
        strategy = spec[name]
        # --opt=value: a value starting with "-" is a value, not an unknown option
        out.append(name if strategy is None else f"{name}={draw(strategy)}")
    return out


CUSTOMER_FIELDS = {
    "--kind": choice("organization", "person", "government"), "--email": value, "--phone": value, "--country": value,
    "--region": value, "--industry": value, "--stage": choice("prospect", "active", "lost"), "--owner": choice("tester"),
    "--tag": value, "--ref": keys, "--attr": value,
}


def cmd(*parts: Any) -> st.SearchStrategy[list[str]]:
    """A command line from fixed words and strategies (lists of options are spliced in)."""
    strategies = [p if isinstance(p, st.SearchStrategy) else st.just(p) for p in parts]
    return st.tuples(*strategies).map(lambda xs: [w for x in xs for w in (x if isinstance(x, list) else [x])])


COMMANDS = {
    "customer add": cmd("customer", "add", value, opts({**CUSTOMER_FIELDS, "--json": None})),
    "customer update": cmd("customer", "update", keys, opts({**CUSTOMER_FIELDS, "--name": value, "--version": ids})),
    "customer list": cmd("customer", "list", opts({"--search": value, "--stage": value, "--tag": value, "--archived": None,
                                                   "--limit": numbers, "--after": numbers, "--json": None})),
    "customer show": cmd("customer", "show", keys, opts({"--interactions": numbers, "--json": None})),
    "customer archive": cmd("customer", "archive", keys),
    "customer merge": cmd("customer", "merge", keys, "--into", keys),
    "contact add": cmd("contact", "add", keys, value, opts({"--role": choice("decider", "user"), "--title": value,
                                                           "--email": value, "--phone": value, "--ref": value})),
    "contact update": cmd("contact", "update", ids, opts({"--name": value, "--role": value, "--email": value})),
    "contact remove": cmd("contact", "remove", ids),
    "contact list": cmd("contact", "list", keys, opts({"--json": None})),
    "interaction log": cmd("interaction", "log", keys, "--channel", choice("email", "phone", "visit"), "--subject", value,
                           opts({"--direction": choice("inbound", "outbound"), "--kind": value, "--notes": value,
                                 "--at": when, "--by": choice("tester"), "--outcome": value,
                                 "--satisfaction": choice("1", "5"), "--ref": value})),
    "interaction list": cmd("interaction", "list", opts({"--customer": keys, "--limit": numbers, "--json": None})),
    "account open": cmd("account", "open", keys, opts({"--currency": value, "--terms": numbers, "--default": None})),
    "account post": cmd("account", "post", keys, choice("invoice", "payment", "credit_note", "adjustment", "write_off"),
                        amounts, "--ref", value,
                        opts({"--currency": value, "--at": when, "--due": when,
                              "--description": value, "--account": ids})),
    "account statement": cmd("account", "statement", ids, opts({"--since": when,
                                                                "--until": when, "--json": None})),
    "account status": cmd("account", "status", ids, choice("open", "on_hold", "closed")),
    "account list": cmd("account", "list", opts({"--customer": keys, "--json": None})),
    "user add": cmd("user", "add", usernames, "--name", value, opts({"--email": value, "--role": choice("sales", "viewer")})),
    "user roles": cmd("user", "roles", st.one_of(usernames, st.just("tester")), choice("sales", "admin", "viewer")),
    "user deactivate": cmd("user", "deactivate", usernames),
    "audit": cmd("audit", opts({"--entity": value, "--id": value, "--limit": numbers, "--json": None})),
    "export": cmd("export", choice("customers", "contacts", "interactions", "transactions"),
                  opts({"--format": choice("csv", "jsonl"), "-o": any_text.map(lambda s: "out-" + s.replace("/", "_"))})),
    "import": cmd("import", choice("customers", "transactions"), st.sampled_from(["bad.csv", "missing.csv", "bad.jsonl"]),
                  "--strict", opts({"--format": choice("csv", "jsonl"), "--map": value, "--batch-size": numbers,
                                    "--encoding": choice("utf-8", "latin-1"),
                                    "--report": st.sampled_from(["nodir/r.csv", "r.csv"])})),
}


def snapshot(engine: Any) -> tuple[Any, ...]:
    """What a failed command must leave untouched: row counts, balances, versions, archived flags,
    the audit log. One round trip (it runs twice per example)."""
    counts = [select(func.count()).select_from(m).scalar_subquery() for m in
              (Customer, Contact, Interaction, Account, Transaction, User, AuditEntry)]
    sums = [select(func.coalesce(func.sum(col), 0)).scalar_subquery() for col in
            (Account.balance, Customer.version, Customer.archived.cast(Integer))]
    with engine.connect() as conn:
        return tuple(conn.execute(select(*counts, *sums)).one())


@pytest.fixture
def world(cli, crm, crm_url, tmp_path):
    """A small database to aim at (customers A1, B2, C3 with an account each, an admin `tester`),
    import files with hostile rows, and a fast state snapshot."""
    with crm.unit_of_work("tester") as uow:  # through the services: the CLI is what is under test
        uow.users.add(UserCreate(username="tester", display_name="The Tester", roles=["admin"]))
        for ref in ("A1", "B2", "C3"):
            c = uow.customers.create(CustomerCreate(name=f"Customer {ref}", external_ref=ref))
            uow.accounts.post(c.id, TransactionCreate(kind="invoice", amount="100", reference=f"INV-{ref}"))
        uow.contacts.add(1, ContactCreate(name="Jane"))
    (tmp_path / "bad.csv").write_text("name,external_ref,email\nGood,G1,g@x.de\n\x1b[31m,G2,\nX,G3,not-an-email\n")
    (tmp_path / "bad.jsonl").write_text('{"name": "J", "external_ref": "J1"}\n{"amount": 1e400}\n' + "[" * 5000 + "\n")
    engine = create_crm_engine(crm_url)
    yield cli, engine
    engine.dispose()


def check(cli: Callable[..., Any], engine: Any, argv: list[str]) -> None:
    before = snapshot(engine)
    res = cli(*argv)
    out = res.output
    shown = " ".join(repr(a)[:60] for a in argv)
    assert res.exit_code in (0, 1, 2), f"{shown}\n{out}"
    assert "Traceback" not in out and "internal error" not in out, f"{shown}\n{out}"
    assert "invalid input for the database" not in out, f"a value reached the database unchecked: {shown}\n{out}"
    if res.exit_code != 0:
        import_report = argv[0] == "import" and res.exit_code == 1 and " rejected " in out.splitlines()[0]
        assert len(ERROR_LINE.findall(out)) == (0 if import_report else 1), f"{shown}\n{out}"
        assert snapshot(engine) == before, f"a failed command wrote something: {shown}\n{out}"
    if "--json" not in argv:
        for raw in RAW_ESCAPES:
            assert raw not in out, f"raw {raw!r} on screen: {shown}\n{out}"


def _property(name: str, examples: int) -> Callable[..., Any]:
    @settings(max_examples=examples)
    @given(argv=COMMANDS[name])
    def test(world: Any, argv: list[str]) -> None:
        check(*world, argv)

    test.__name__ = f"test_{name.replace(' ', '_')}_never_crashes"
    return test


# examples per command; PostgreSQL opens a connection per invocation and gets fewer, to stay
# within a minute per module on a shared CI machine
EXAMPLES = {"customer add": 40, "customer update": 40, "customer list": 30, "account post": 40, "interaction log": 30,
            "import": 12, "export": 10}
SCALE = 0.4 if is_postgres() else 1.0
for _name in COMMANDS:
    _test = _property(_name, max(5, int(EXAMPLES.get(_name, 15) * SCALE)))
    globals()[_test.__name__] = _test


@settings(max_examples=5)
@given(customers=choice("0", "1", "3", "-1"), transactions=choice("0", "5", "-1"), seed=st.one_of(numbers, value))
def test_demo_generate_never_crashes(world: Any, customers: str, transactions: str, seed: str) -> None:
    check(*world, ["demo", "generate", "--customers", customers, "--transactions", transactions,
                   "--interactions", "2", "--seed", seed])


def test_property_run_through_the_real_entry_point(crm_url: str, tmp_path: Any) -> None:
    """A few runs as a shell would: bytes that are not UTF-8, huge ids, edge dates."""
    base = [sys.executable, "-c", "from crmcore.cli import main; main()", "--database", crm_url, "--user", "tester"]
    engine = create_crm_engine(crm_url)
    try:
        runs = [[b"customer", b"add", b"\xff\xfe\x00"[:2], b"--ref", b"R\xc3"],
                [b"customer", b"list", b"--search", b"\x80" * 60000],
                [b"account", b"statement", BIG.encode()],
                [b"interaction", b"log", b"#1", b"--channel", b"email", b"--subject", b"s", b"--at", b"9999-12-31T23:00-05:00"]]
        for args in runs:
            before = snapshot(engine)
            r = subprocess.run([*(a.encode() for a in base), *args], check=False, capture_output=True, timeout=120)
            err = r.stderr.decode("utf-8", "replace")
            assert r.returncode in (1, 2) and "Traceback" not in err, err
            assert len(ERROR_LINE.findall(err)) == 1, err
            assert snapshot(engine) == before
    finally:
        engine.dispose()


def test_the_world_is_what_the_properties_aim_at(world: Any) -> None:
    """Guards the suite itself: the fixture's records exist, so generated commands hit real rows."""
    cli, engine = world
    with engine.connect() as conn:
        refs = set(conn.scalars(text("SELECT external_ref FROM customers")))
    assert {"A1", "B2", "C3"} <= refs
    assert cli("customer", "update", "A1", "--region", "North").exit_code == 0


# Each class's boundaries, every command that takes one: drawn at random they are rare, so they
# are also swept deterministically (an id at 2^63 overflows SQLite's driver, 2^31 PostgreSQL's INTEGER).
SWEEP_IDS = ["0", str(2**31), str(2**63), str(2**64), BIG, "9" * 400]
SWEEP_KEYS = [f"#{i}" for i in SWEEP_IDS] + [str(2**63), "\udcff", "A1\x00", "k" * 300]
SWEEP_DATES = ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00", "9999-12-31", "1899-12-31T23:59:59", "0001-01-01"]
SWEEP_TEXT = ["\udcff", "\x00", "a" * 51000, "\x1b[2J", "%_\\"]
TEMPLATES = [
    ("customer", "show", "{key}"), ("customer", "update", "{key}", "--region=x"), ("customer", "update", "A1", "--version={id}", "--region=y"),
    ("customer", "archive", "{key}"), ("customer", "merge", "{key}", "--into", "A1"), ("customer", "merge", "B2", "--into", "{key}"),
    ("customer", "list", "--after={id}"), ("customer", "list", "--limit={id}"), ("customer", "list", "--search={text}"),
    ("customer", "list", "--tag={text}"), ("contact", "add", "{key}", "Jane"), ("contact", "update", "{id}", "--name=x"),
    ("contact", "remove", "{id}"), ("contact", "list", "{key}"),
    ("interaction", "log", "{key}", "--channel", "email", "--subject", "s"),
    ("interaction", "log", "A1", "--channel", "email", "--subject", "s", "--at={date}"), ("interaction", "list", "--customer={key}"),
    ("interaction", "list", "--limit={id}"), ("account", "open", "{key}"), ("account", "post", "{key}", "invoice", "10", "--ref", "R"),
    ("account", "post", "A1", "invoice", "10", "--ref", "R", "--account={id}"),
    ("account", "post", "A1", "invoice", "10", "--ref", "R", "--at={date}"), ("account", "post", "A1", "invoice", "10", "--ref", "R", "--due={date}"),
    ("account", "statement", "{id}"), ("account", "statement", "1", "--since={date}"), ("account", "statement", "1", "--until={date}"),
    ("account", "status", "{id}", "on_hold"), ("account", "list", "--customer={key}"), ("audit", "--id={text}"), ("audit", "--limit={id}"),
    ("user", "deactivate", "{text}"), ("demo", "generate", "--customers", "1", "--transactions", "0", "--seed={id}"),
]


def _sweep() -> list[list[str]]:
    out = []
    for template in TEMPLATES:
        slot = next(w for w in template if "{" in w)
        kind = slot[slot.index("{") + 1:slot.index("}")]
        for v in {"id": SWEEP_IDS, "key": SWEEP_KEYS, "date": SWEEP_DATES, "text": SWEEP_TEXT}[kind]:
            out.append([w.replace("{" + kind + "}", v) for w in template])
    return out


def test_every_command_at_the_boundaries_of_each_class(world: Any) -> None:
    for argv in _sweep():
        check(*world, argv)
