"""The `crm` command: every read has --json; bad input is one line and a non-zero exit code."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from crmcore.db.engine import resolve_database_url


def ok(res):
    assert res.exit_code == 0, res.output
    return res


def fails(res, code, text):
    assert res.exit_code == code, res.output
    assert text in res.output, res.output
    assert "Traceback" not in res.output
    return res


def test_customer_lifecycle_via_cli(cli):
    out = json.loads(ok(cli("customer", "add", "Acme GmbH", "--email", "info@acme.de", "--country", "de", "--phone",
                            "030 1234567", "--tag", "trade", "--ref", "ACME", "--json")).output)
    assert (out["id"], out["phone"], out["country"]) == (1, "+49301234567", "DE")
    ok(cli("customer", "update", "ACME", "--industry", "Kitchens", "--stage", "active", "--version", "1"))
    listed = json.loads(ok(cli("customer", "list", "--stage", "active", "--json")).output)
    assert [c["external_ref"] for c in listed] == ["ACME"]
    assert "Acme GmbH" in ok(cli("customer", "list", "--search", "acme")).output
    ok(cli("contact", "add", "ACME", "Jane Roe", "--role", "decider", "--email", "jane@acme.de"))
    assert json.loads(ok(cli("contact", "list", "ACME", "--json")).output)[0]["role"] == "decider"
    ok(cli("interaction", "log", "ACME", "--channel", "phone", "--subject", "Quote", "--satisfaction", "4",
           "--at", "2024-05-01T10:00:00"))
    assert json.loads(ok(cli("interaction", "list", "--customer", "ACME", "--json")).output)[0]["satisfaction"] == 4
    ok(cli("account", "post", "ACME", "invoice", "250.00", "--ref", "INV-1"))
    res = ok(cli("account", "post", "ACME", "invoice", "250.00", "--ref", "INV-1"))
    assert "already posted (no change)" in res.output
    accounts = json.loads(ok(cli("account", "list", "--customer", "ACME", "--json")).output)
    assert accounts[0]["balance"] == "250.00"
    st = json.loads(ok(cli("account", "statement", str(accounts[0]["id"]), "--json")).output)
    assert st["closing_balance"] == "250.00"
    show = ok(cli("customer", "show", "ACME")).output
    for text in ("Acme GmbH", "Jane Roe", "Quote", "250.00"):
        assert text in show
    ok(cli("customer", "add", "Acme Duplicate", "--ref", "ACME2"))
    res = ok(cli("customer", "merge", "ACME2", "--into", "ACME", "--json"))
    assert json.loads(res.output)["moved"] == {"contacts": 0, "interactions": 0, "accounts": 0}
    ok(cli("customer", "archive", "ACME"))
    assert json.loads(ok(cli("customer", "list", "--json")).output) == []


def test_users_and_audit(cli):
    ok(cli("user", "add", "tester", "--name", "The Tester", "--role", "admin"))  # the first user is an admin
    ok(cli("user", "add", "anna", "--name", "Anna Berg", "--role", "sales", "--role", "manager"))
    users = json.loads(ok(cli("user", "list", "--json")).output)
    assert users[0]["username"] == "anna" and users[0]["roles"] == ["sales", "manager"]
    ok(cli("customer", "add", "Acme", "--owner", "anna"))
    log = json.loads(ok(cli("audit", "--json")).output)
    assert log[0]["actor"] == "tester" and log[0]["entity"] == "customer"


@pytest.mark.parametrize("args,code,text", [
    (("customer", "show", "99"), 1, "error: customer 99 not found"),
    (("customer", "show", "NOPE"), 1, "customer 'NOPE' not found"),
    (("customer", "add", "X", "--email", "bad@"), 1, "error: invalid input: email: invalid email"),
    (("customer", "add", "X", "--country", "Germany"), 1, "unknown country code"),
    (("customer", "add", "X", "--kind", "alien"), 2, "Invalid value for '--kind'"),
    (("customer", "add", "X", "--attr", "novalue"), 1, "--attr takes key=value"),
    (("customer", "add", "X", "--attr", "colour=red"), 1, "unknown custom field"),
    (("customer", "update", "1"), 1, "nothing to update"),
    (("account", "post", "1", "invoice", "-5", "--ref", "X"), 1, "must be positive"),
    (("account", "post", "1", "invoice", "10", "--ref", "X", "--currency", "XYZ"), 1, "unknown currency"),
    (("account", "post", "1", "refund", "10", "--ref", "X"), 2, "Invalid value for"),
    (("account", "statement", "7"), 1, "account 7 not found"),
    (("account", "statement", "1", "--since", "last week"), 2, "Invalid value for '--since': 'last week' is not an ISO date"),
    (("interaction", "log", "1", "--channel", "phone", "--subject", "x", "--satisfaction", "9"), 1, "satisfaction"),
    (("user", "add", "Bad Name", "--name", "x"), 1, "username"),
    (("customer", "merge", "1", "--into", "1"), 1, "cannot merge a customer into itself"),
])
def test_bad_input_is_one_line_and_exit_code(cli, args, code, text):
    ok(cli("customer", "add", "Acme"))
    fails(cli(*args), code, text)


def test_stale_version_on_update(cli):
    ok(cli("customer", "add", "Acme"))
    ok(cli("customer", "update", "1", "--industry", "A"))
    fails(cli("customer", "update", "1", "--industry", "B", "--version", "1"), 1, "was changed by someone else")


def test_wrong_currency_on_existing_account(cli):
    ok(cli("customer", "add", "Acme"))
    ok(cli("account", "post", "1", "invoice", "10", "--ref", "A"))
    fails(cli("account", "post", "1", "invoice", "10", "--ref", "B", "--currency", "USD"), 1, "wrong currency USD")


def test_missing_database_and_bad_urls(cli, tmp_path):
    fails(cli("customer", "list", database=f"sqlite:///{tmp_path / 'none.db'}"), 2, "no CRM database at")
    fails(cli("customer", "list", database="mysql://x/y"), 2, "unsupported database 'mysql'")
    fails(cli("customer", "list", database="not a url"), 2, "not a database URL")
    fails(cli("customer", "list", database="postgresql+psycopg://postgres@127.0.0.1:1/none"), 2, "cannot open the database")
    fails(cli("init", database=f"sqlite:///{tmp_path / 'nodir' / 'x.db'}"), 2, "does not exist")


def test_url_resolution_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    assert resolve_database_url() == "sqlite:///crm.db"
    (tmp_path / "crm.toml").write_text('[database]\nurl = "sqlite:///from-toml.db"\n')
    assert resolve_database_url() == "sqlite:///from-toml.db"
    monkeypatch.setenv("CRM_DATABASE_URL", "sqlite:///from-env.db")
    assert resolve_database_url() == "sqlite:///from-env.db"
    assert resolve_database_url("sqlite:///explicit.db") == "sqlite:///explicit.db"


def test_bad_crm_toml_is_one_line(tmp_path):
    (tmp_path / "crm.toml").write_text("[database\nurl=")
    proc = subprocess.run([sys.executable, "-c", "from crmcore.cli import main; main()", "customer", "list"],
                          cwd=tmp_path, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=False)
    assert proc.returncode == 2
    assert "crm.toml is not valid TOML" in proc.stderr and "Traceback" not in proc.stderr


def test_default_database_in_working_directory(tmp_path):
    def run(*a):
        return subprocess.run([sys.executable, "-c", "from crmcore.cli import main; main()", *a], cwd=tmp_path,
                              capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=False)
    assert run("init").returncode == 0
    assert (tmp_path / "crm.db").exists()
    assert run("customer", "add", "Acme").returncode == 0
    assert "Acme" in run("customer", "list").stdout


def test_every_read_command_has_json():
    from crmcore.cli import build_cli

    reads = {("customer", "list"), ("customer", "show"), ("contact", "list"), ("interaction", "list"), ("account", "list"),
             ("account", "statement"), ("user", "list"), ("plugins", "list"), ("db", "current")}
    root = build_cli()
    for group, cmd in reads:
        params = {p.name for p in root.commands[group].commands[cmd].params}
        assert "as_json" in params, f"crm {group} {cmd} has no --json"


def test_unexpected_errors_are_one_line(cli, monkeypatch):
    from crmcore.services.customers import CustomerService

    def broken(self, *a, **k):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(CustomerService, "search", broken)
    fails(cli("customer", "list"), 3, "error: internal error: ZeroDivisionError: oops (set CRM_DEBUG=1")
    monkeypatch.setenv("CRM_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        cli("customer", "list")


def test_reference_wins_over_id(cli):
    ok(cli("customer", "add", "A", "--ref", "2"))
    ok(cli("customer", "add", "B"))
    ok(cli("account", "post", "2", "invoice", "100", "--ref", "X"))  # "2" is A's reference
    assert json.loads(ok(cli("customer", "show", "2", "--json")).output)["customer"]["name"] == "A"
    assert json.loads(ok(cli("customer", "show", "#2", "--json")).output)["customer"]["name"] == "B"
    fails(cli("customer", "show", "²"), 1, "customer '²' not found")


def test_too_long_and_too_large_values_are_refused_on_every_engine(cli):
    fails(cli("customer", "add", "X", "--region", "r" * 150), 1, "region")
    ok(cli("customer", "add", "X"))
    fails(cli("account", "post", "1", "invoice", "12345678901234.00", "--ref", "BIG"), 1, "too large")
    ok(cli("account", "post", "1", "invoice", "9999999999999.99", "--ref", "MAX"))
    accounts = json.loads(ok(cli("account", "list", "--json")).output)
    assert accounts[0]["balance"] == "9999999999999.99"  # exact to the cent on SQLite too


def test_concurrent_posting_never_double_posts(cli, crm_url, tmp_path):
    """Two processes posting the same documents at once: each document is posted once."""
    for i in range(8):
        ok(cli("customer", "add", f"R{i}", "--ref", f"R{i}"))
    code = "from crmcore.cli import main; main()"
    procs = [subprocess.Popen([sys.executable, "-c", code, "--database", crm_url, "account", "post", f"R{i}", "invoice", "10",
                               "--ref", f"INV-{i}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(8) for _ in range(2)]
    for p in procs:
        p.wait(timeout=120)
    accounts = json.loads(ok(cli("account", "list", "--json")).output)
    assert len(accounts) == 8  # one default account each
    assert sorted(a["balance"] for a in accounts) == ["10.00"] * 8
