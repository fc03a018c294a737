"""One bad row never aborts an import or costs the good rows of its batch; bad options and
hostile files are one clean line; the same on SQLite and PostgreSQL."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from decimal import Decimal
from typing import ClassVar

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, text

from crmcore import CRM, Veto, hookimpl
from crmcore.bulk.importer import run_import
from crmcore.bulk.readers import SourceRow
from crmcore.customfields import FieldDefinition
from crmcore.db.engine import create_crm_engine
from crmcore.models import Account, Customer, Interaction, Transaction
from crmcore.schemas import ContactCreate, CustomerCreate, InteractionCreate, TransactionCreate

CUSTOMERS = "external_ref,name,kind\nC1,Acme GmbH,organization\nC2,Bob Builder,person\n"
TX = "customer_ref,kind,amount,currency,occurred_at,reference"


def ok(res):
    assert res.exit_code == 0, res.output
    return res


def scalar(crm_url, query):
    crm = CRM.open(crm_url, entry_points=False, config={})
    try:
        with crm.unit_of_work(read_only=True) as uow:
            return uow.session.scalar(query)
    finally:
        crm.close()


def report(path) -> dict[int, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return {int(r["line"]): r for r in csv.DictReader(f)}


@pytest.fixture
def base(cli, tmp_path):
    (tmp_path / "c.csv").write_text(CUSTOMERS, encoding="utf-8")
    ok(cli("import", "customers", str(tmp_path / "c.csv")))
    return tmp_path


def test_out_of_range_dates_are_rejected_rows(base, cli, crm_url):
    path = base / "t.csv"
    path.write_text(f"{TX},due_date\nC1,invoice,10,EUR,9999-12-31,X1,\nC1,invoice,10,EUR,2024-01-01,X2,\n"
                    "C1,invoice,10,EUR,9999-12-31T23:00:00-05:00,X3,\nC1,invoice,11,EUR,0001-01-01,X4,\n"
                    "C1,invoice,12,EUR,2024-01-01,X5,2024-02-01\n", encoding="utf-8")
    res = cli("import", "transactions", str(path), "--batch-size", "10")
    assert res.exit_code == 1, res.output
    assert "2 inserted, 0 updated, 0 unchanged, 3 rejected" in res.output
    bad = report(f"{path}.errors.csv")
    assert sorted(bad) == [2, 4, 5] and all(b["field"] == "occurred_at" for b in bad.values())
    assert "9999-12-31 is more than 366 days ahead (the posting horizon" in bad[2]["reason"]
    assert "out of range once converted to UTC" in bad[4]["reason"]
    assert "0001-01-01 is before 1900-01-01" in bad[5]["reason"]
    assert scalar(crm_url, select(func.count()).select_from(Transaction)) == 2


def test_huge_and_deeply_nested_json_values_are_rejected_rows(base, cli, crm_url):
    lines = [
        {"customer_ref": "C1", "kind": "invoice", "amount": "AMOUNT_1E400", "occurred_at": "2024-01-01", "reference": "J1"},
        {"customer_ref": "C1", "kind": "invoice", "amount": "AMOUNT_1E27", "occurred_at": "2024-01-01", "reference": "J2"},
        {"customer_ref": "C1", "kind": "invoice", "amount": 5, "occurred_at": "2024-01-01", "reference": "J3"},
        {"customer_ref": "C1", "kind": "invoice", "amount": 1e-400, "occurred_at": "2024-01-01", "reference": "J4"},
    ]
    text_lines = [json.dumps(r).replace('"AMOUNT_1E400"', "1e400").replace('"AMOUNT_1E27"', "1e27") for r in lines]
    deep = '{"customer_ref": "C1", "kind": "invoice", "amount": 1, "reference": "J5", "description": ' + "[" * 5000 + "]" * 5000 + "}"
    path = base / "t.jsonl"
    path.write_text(deep + "\n" + "\n".join(text_lines) + "\n" + deep + "\n", encoding="utf-8")
    res = cli("import", "transactions", str(path))
    assert res.exit_code == 1, res.output
    assert "1 inserted, 0 updated, 0 unchanged, 5 rejected" in res.output
    bad = report(f"{path}.errors.csv")
    assert bad[1]["reason"] == bad[6]["reason"] == "JSON value nested more than 32 levels deep"
    assert "too large" in bad[2]["reason"] and "too large" in bad[3]["reason"]
    assert bad[5]["field"] == "amount"  # 1e-400 is not a positive amount in cents
    assert scalar(crm_url, select(Account.balance)) == Decimal("5.00")


CONTROL = ["\x00", "\x01", "\x1b[31m", "\x7f", "\x9b"]


@pytest.mark.parametrize("ch", CONTROL, ids=[f"U+{ord(c[0]):04X}" for c in CONTROL])
def test_control_characters_are_refused_in_every_text_field(base, cli, crm_url, ch):
    rows = [
        ("customers", {"external_ref": "N1", "name": f"Na{ch}me"}),
        ("customers", {"external_ref": f"N{ch}2", "name": "Name"}),
        ("customers", {"external_ref": "N3", "name": "Name", "region": f"r{ch}"}),
        ("customers", {"external_ref": "N4", "name": "Name", "tags": f"a,b{ch}"}),
        ("customers", {"external_ref": "N5", "name": "Name", "email": f"a{ch}@example.com"}),
        ("contacts", {"external_ref": "P1", "customer_ref": "C1", "name": f"Jane{ch}"}),
        ("contacts", {"external_ref": "P2", "customer_ref": f"C1{ch}", "name": "Jane"}),
        ("interactions", {"customer_ref": "C1", "channel": "phone", "subject": f"s{ch}", "occurred_at": "2024-01-01"}),
        ("interactions", {"customer_ref": "C1", "channel": "phone", "subject": "s", "notes": f"n{ch}", "occurred_at": "2024-01-01"}),
        ("transactions", {"customer_ref": "C1", "kind": "invoice", "amount": "1", "occurred_at": "2024-01-01", "reference": f"R{ch}"}),
        ("transactions", {"customer_ref": "C1", "kind": "invoice", "amount": "1", "occurred_at": "2024-01-01", "reference": "R2",
                          "description": f"d{ch}"}),
        ("transactions", {"customer_ref": f"C{ch}1", "kind": "invoice", "amount": "1", "occurred_at": "2024-01-01", "reference": "R3"}),
    ]
    for entity, row in rows:
        path = base / f"{entity}.jsonl"
        path.write_text(json.dumps(row) + "\n", encoding="utf-8")
        res = cli("import", entity, str(path))
        assert res.exit_code == 1, (entity, row, res.output)
        assert "0 inserted, 0 updated, 0 unchanged, 1 rejected" in res.output, (entity, row, res.output)
        assert "control character" in res.output, res.output
        assert "\x00" not in res.output and "\x1b" not in res.output  # escaped when shown
    assert scalar(crm_url, select(func.count()).select_from(Customer)) == 2
    assert scalar(crm_url, select(func.count()).select_from(Transaction)) == 0


def test_tab_and_line_breaks_stay_allowed_in_free_text(base, cli, crm_url):
    path = base / "i.jsonl"
    path.write_text(json.dumps({"customer_ref": "C1", "channel": "phone", "subject": "Call", "occurred_at": "2024-01-01",
                                "notes": "line one\n\tline two\r\nend"}) + "\n", encoding="utf-8")
    ok(cli("import", "interactions", str(path)))
    assert scalar(crm_url, select(Interaction.notes)) == "line one\n\tline two\r\nend"


def test_the_api_refuses_control_characters_too():
    for make in (lambda: CustomerCreate(name="a\x00b"), lambda: ContactCreate(name="x", title="t\x1b"),
                 lambda: InteractionCreate(channel="phone", subject="s", handled_by="a\x00"),
                 lambda: TransactionCreate(kind="invoice", amount="1", reference="r", category="c\x07"),
                 lambda: CustomerCreate(name="ok", tags=["vip\x00"]), lambda: CustomerCreate(name="lone \ud800")):
        with pytest.raises(ValidationError, match="control character|lone surrogate|unicode string"):
            make()
    assert InteractionCreate(channel="phone", subject="s", notes="a\tb\nc").notes == "a\tb\nc"


def test_the_cli_refuses_them_in_one_line(cli):
    res = cli("customer", "add", "Evil\x1b[2J Corp")
    assert res.exit_code in (1, 2) and len(res.output.strip().splitlines()) == 1 and "control character" in res.output


@pytest.fixture
def refusing_trigger(crm_url):
    """A rule only the database knows, on customers and transactions."""
    engine = create_crm_engine(crm_url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("CREATE TRIGGER r2_refuse_c BEFORE INSERT ON customers WHEN NEW.name = 'REFUSE ME' "
                              "BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"))
            conn.execute(text("CREATE TRIGGER r2_refuse_t BEFORE INSERT ON transactions WHEN NEW.reference = 'REFUSE-ME' "
                              "BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"))
        else:
            for t, col, value in (("customers", "name", "REFUSE ME"), ("transactions", "reference", "REFUSE-ME")):
                conn.execute(text(f"CREATE OR REPLACE FUNCTION r2_refuse_{t[0]}() RETURNS trigger AS $$ BEGIN "
                                  f"IF NEW.{col} = '{value}' THEN RAISE EXCEPTION 'refused by trigger'; END IF; "
                                  "RETURN NEW; END $$ LANGUAGE plpgsql"))
                conn.execute(text(f"CREATE TRIGGER r2_refuse_{t[0]} BEFORE INSERT ON {t} FOR EACH ROW "
                                  f"EXECUTE FUNCTION r2_refuse_{t[0]}()"))
    yield
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER IF EXISTS r2_refuse_c"))
            conn.execute(text("DROP TRIGGER IF EXISTS r2_refuse_t"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS r2_refuse_c ON customers"))
            conn.execute(text("DROP TRIGGER IF EXISTS r2_refuse_t ON transactions"))
            conn.execute(text("DROP FUNCTION IF EXISTS r2_refuse_c()"))
            conn.execute(text("DROP FUNCTION IF EXISTS r2_refuse_t()"))
    engine.dispose()


@pytest.mark.parametrize("strict", [False, True])
def test_a_batch_the_database_refuses_is_written_row_by_row(crm, refusing_trigger, crm_url, strict):
    names = ["A", "B", "REFUSE ME", "D", "E"]
    res = run_import(crm, "customers", [SourceRow(i + 2, {"external_ref": f"K{i}", "name": n}) for i, n in enumerate(names)],
                     batch_size=5, strict=strict)
    assert res.rejected == 1 and res.first_errors[0].line == 4
    assert "refused by the database" in res.first_errors[0].reason and "refused by trigger" in res.first_errors[0].reason
    assert res.inserted == (0 if strict else 4) and res.committed is (not strict)
    assert scalar(crm_url, select(func.count()).select_from(Customer)) == (0 if strict else 4)
    if strict:
        return
    refs = ["T1", "T2", "REFUSE-ME", "T4"]
    tx = [SourceRow(i + 2, {"customer_ref": "K0", "kind": "invoice", "amount": f"{10 + i}.00", "occurred_at": "2024-01-01",
                            "reference": r}) for i, r in enumerate(refs)]
    res = run_import(crm, "transactions", tx, batch_size=10)
    assert (res.inserted, res.rejected) == (3, 1)
    # the balance counts exactly the entries that were written
    assert scalar(crm_url, select(Account.balance)) == Decimal("10.00") + Decimal("11.00") + Decimal("13.00")
    assert scalar(crm_url, select(func.sum(Transaction.amount))) == Decimal("34.00")


def test_input_without_line_breaks_stops_with_the_line_named(base, crm_url):
    cmd = [sys.executable, "-c", "from crmcore.cli import main; main()", "--database", crm_url]
    env = {**os.environ, "CRM_DISABLE_PLUGINS": ""}
    for fmt in ("csv", "jsonl"):
        res = subprocess.run([*cmd, "import", "customers", "/dev/zero", "--format", fmt, "--report", str(base / "r.csv")],
                             capture_output=True, text=True, env=env, timeout=60, check=False)
        assert res.returncode == 1, res.stderr
        assert res.stderr.strip() == ("error: /dev/zero: line 1 is longer than 1,000,000 characters (a file without line "
                                      "breaks, or not a CSV/JSON Lines file?); it was not read further. (nothing was imported)")
    path = base / "long.csv"
    path.write_text("external_ref,name\nL1,ok\nL2," + "x" * 1_000_001 + "\nL3,never read\n", encoding="utf-8")
    res = subprocess.run([*cmd, "import", "customers", str(path), "--batch-size", "1"], capture_output=True, text=True, check=False,
                         env=env, timeout=60)
    assert res.returncode == 1 and "line 3 is longer than 1,000,000 characters" in res.stderr
    assert "1 rows before the problem were imported" in res.stderr


@pytest.mark.parametrize("args,message,code", [
    (("--map", "name=foo"), "'foo' is not a known field", 1),
    (("--map", "name"), "expected COLUMN=FIELD", 1),
    (("--map", "=name"), "both the column name and the field name", 1),
    (("--map", "a=name", "--map", "b=name"), "target of two columns", 1),
    (("--batch-size", "0"), "--batch-size must be between 1 and 1,000,000, got 0", 2),
    (("--batch-size", "-1"), "--batch-size must be between 1 and 1,000,000, got -1", 2),
    (("--report", "/no/such/folder/r.csv"), "directory /no/such/folder does not exist", 2),
])
def test_bad_options_are_one_line(base, cli, crm_url, args, message, code):
    res = cli("import", "customers", str(base / "c.csv"), *args)
    assert res.exit_code == code, res.output
    assert len(res.output.strip().splitlines()) == 1 and message in res.output, res.output
    assert scalar(crm_url, select(func.count()).select_from(Customer)) == 2


def test_the_report_never_overwrites_the_input(base, cli):
    res = cli("import", "customers", str(base / "c.csv"), "--report", str(base / "c.csv"))
    assert res.exit_code == 2 and "would overwrite the file being imported" in res.output
    assert (base / "c.csv").read_text(encoding="utf-8") == CUSTOMERS


class PerEntryGuardOnly:
    """A plugin with the single-entry guard only: the bulk path must still apply its rule."""

    seen: ClassVar[list[str]] = []

    @hookimpl
    def crm_before_transaction_post(self, uow, account, entry):
        self.seen.append(f"{type(account).__name__}:{entry.reference}")
        if entry.amount > 1000:
            raise Veto(f"credit limit of account {account.id} (balance {account.balance})")


def test_the_bulk_path_calls_a_per_entry_guard(make_crm, crm_url):
    guard = PerEntryGuardOnly()
    crm = make_crm(plugins=[("limits", guard)])
    run_import(crm, "customers", [SourceRow(2, {"external_ref": "G", "name": "G"})])
    rows = [SourceRow(i + 2, {"customer_ref": "G", "kind": "invoice", "amount": a, "occurred_at": "2024-01-01",
                              "reference": f"G{i}"}) for i, a in enumerate(["10", "5000", "20"])]
    res = run_import(crm, "transactions", rows)
    assert (res.inserted, res.rejected) == (2, 1)
    assert res.first_errors[0].reason == "refused by plugin 'limits': credit limit of account 1 (balance 0.00)"
    assert guard.seen == ["Account:G0", "Account:G1", "Account:G2"]  # the real account row, as for a single post
    assert scalar(crm_url, select(Account.balance)) == Decimal("30.00")


def test_reimported_interaction_changes_fire_the_updated_batch_hook(make_crm):
    calls: list[list[int]] = []

    class Watch:
        @hookimpl
        def crm_interactions_updated_batch(self, uow, interaction_ids):
            calls.append(list(interaction_ids))

    crm = make_crm(plugins=[("watch", Watch())])
    run_import(crm, "customers", [SourceRow(2, {"external_ref": "W", "name": "W"})])
    row = {"external_ref": "I1", "customer_ref": "W", "channel": "phone", "subject": "Call", "occurred_at": "2024-01-01"}
    run_import(crm, "interactions", [SourceRow(2, row)])
    run_import(crm, "interactions", [SourceRow(2, row)])
    assert calls == []  # unchanged: no event
    res = run_import(crm, "interactions", [SourceRow(2, {**row, "subject": "Call back"})])
    assert res.updated == 1 and calls == [[1]]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-inf", "1e400", "sNaN", "1e15"])
def test_custom_decimal_fields_refuse_non_finite_and_huge_numbers(make_crm, value):
    with pytest.raises(ValueError, match="finite|below 10\\^15|expected a number"):
        FieldDefinition(name="budget", type="decimal").coerce(value)
    crm = make_crm(config={"custom_fields": {"budget": {"type": "decimal"}}})
    res = run_import(crm, "customers", [SourceRow(2, {"external_ref": "X", "name": "X", "attr.budget": value})])
    assert res.rejected == 1 and "attributes.budget" in res.first_errors[0].reason
    assert FieldDefinition(name="budget", type="decimal").coerce("1234.5") == "1234.5"


def test_a_carriage_return_in_free_text_survives_a_csv_round_trip(base, cli, crm_url):
    path = base / "i.jsonl"
    path.write_text(json.dumps({"external_ref": "CR1", "customer_ref": "C1", "channel": "phone", "subject": "Call",
                                "occurred_at": "2024-01-01", "notes": "old mac\rline"}) + "\n", encoding="utf-8")
    ok(cli("import", "interactions", str(path)))
    ok(cli("export", "interactions", "-o", str(base / "i.csv")))
    raw = (base / "i.csv").read_bytes()
    assert b'"old mac\rline"' in raw and raw.count(b"\n") == 2  # quoted; rows end in a line feed
    res = ok(cli("import", "interactions", str(base / "i.csv")))
    assert "0 inserted, 0 updated, 1 unchanged, 0 rejected" in res.output
