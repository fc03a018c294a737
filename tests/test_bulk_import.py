"""Bulk import and export: idempotency, round trips, bad input, batch hooks, kill-and-rerun."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from select import select as wait_readable

import pytest
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.bulk.importer import run_import
from crmcore.bulk.readers import SourceRow
from crmcore.models import AuditEntry, Customer, Transaction

CUSTOMERS = """external_ref,name,kind,email,phone,country,industry,tags
C1,Acme GmbH,organization,info@acme.de,030 1234567,DE,construction,"trade,vip"
C2,Bob Builder,person,bob@example.com,+442079460958,GB,,
C3,City Council,government,,,,public sector,
"""
TRANSACTIONS = """customer_ref,kind,amount,currency,occurred_at,reference,description,category
C1,invoice,1000.00,EUR,2024-01-10,INV-1,Kitchen,kitchens
C1,payment,400.00,EUR,2024-02-01T09:30:00+01:00,PAY-1,,
C2,invoice,99.99,EUR,2024-03-05,INV-2,,tools
C1,credit_note,50.00,EUR,2024-03-06,CN-1,returned tiles,
"""


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def ok(res):
    assert res.exit_code == 0, res.output
    return res


def count(crm_url, model) -> int:
    crm = CRM.open(crm_url, entry_points=False, config={})
    try:
        # read-only: on SQLite a writing unit of work would queue for the write lock behind a
        # running import and only count once it is done
        with crm.unit_of_work(read_only=True) as uow:
            return uow.session.scalar(select(func.count()).select_from(model))
    finally:
        crm.close()


@pytest.fixture
def loaded(cli, tmp_path):
    ok(cli("import", "customers", str(write(tmp_path / "c.csv", CUSTOMERS))))
    ok(cli("import", "transactions", str(write(tmp_path / "t.csv", TRANSACTIONS))))
    return tmp_path


def test_import_validates_normalises_and_posts_balances(loaded, cli):
    shown = json.loads(ok(cli("customer", "show", "C1", "--json")).output)
    c = shown["customer"]
    assert (c["phone"], c["email"], c["tags"]) == ("+49301234567", "info@acme.de", ["trade", "vip"])
    assert shown["accounts"][0]["balance"] == "550.00"  # 1000 - 400 - 50
    st = json.loads(ok(cli("account", "statement", str(shown["accounts"][0]["id"]), "--json")).output)
    assert [line["reference"] for line in st["lines"]] == ["INV-1", "PAY-1", "CN-1"]
    assert st["lines"][1]["occurred_at"].startswith("2024-02-01T08:30:00")  # converted to UTC
    assert st["lines"][0]["due_date"] == "2024-02-09"  # date + 30 days of payment terms


def test_reimport_is_a_noop(loaded, cli, crm_url):
    audits = count(crm_url, AuditEntry)
    res = ok(cli("import", "customers", str(loaded / "c.csv")))
    assert "0 inserted, 0 updated, 3 unchanged, 0 rejected" in res.output
    res = ok(cli("import", "transactions", str(loaded / "t.csv")))
    assert "0 inserted, 0 updated, 4 unchanged, 0 rejected" in res.output
    assert count(crm_url, AuditEntry) == audits
    assert count(crm_url, Transaction) == 4


def test_reimport_updates_only_changed_fields(loaded, cli, crm_url):
    changed = CUSTOMERS.replace("info@acme.de", "sales@acme.de").replace(",public sector,", ",government services,")
    res = ok(cli("import", "customers", str(write(loaded / "c2.csv", changed))))
    assert "0 inserted, 2 updated, 1 unchanged" in res.output
    c = json.loads(ok(cli("customer", "show", "C1", "--json")).output)["customer"]
    assert (c["email"], c["version"], c["industry"]) == ("sales@acme.de", 2, "construction")
    log = json.loads(ok(cli("audit", "--entity", "customer", "--id", str(c["id"]), "--json")).output)
    assert log[0]["action"] == "import-update"
    assert log[0]["before"] == {"email": "info@acme.de"} and log[0]["after"] == {"email": "sales@acme.de"}


def test_bad_rows_are_reported_with_line_field_reason(loaded, cli, crm_url):
    bad = """customer_ref,kind,amount,currency,occurred_at,reference
C1,invoice,-5,EUR,2024-01-01,B-1
C9,invoice,10,EUR,2024-01-01,B-2
C1,invoice,10,USD,2024-01-01,B-3
C1,invoice,10,EUR,not a date,B-4
C1,invoice,12.345,EUR,2024-01-01,B-5
C1,payment,10,EUR,2024-01-01,B-6
C1,invoice,999,EUR,2024-01-10,INV-1
"""
    res = cli("import", "transactions", str(write(loaded / "bad.csv", bad)))
    assert res.exit_code == 1
    assert "1 inserted, 0 updated, 0 unchanged, 6 rejected" in res.output
    with open(loaded / "bad.csv.errors.csv", newline="") as f:
        report = list(csv.DictReader(f))
    by_line = {int(r["line"]): r for r in report}
    assert sorted(by_line) == [2, 3, 4, 5, 6, 8]
    assert "must be positive" in by_line[2]["reason"]
    assert by_line[3]["field"] == "customer_ref" and "unknown customer 'C9'" in by_line[3]["reason"]
    assert by_line[4]["field"] == "currency" and "kept in EUR" in by_line[4]["reason"]
    assert by_line[5]["field"] == "occurred_at"
    assert "2 decimal places" in by_line[6]["reason"]
    assert by_line[8]["field"] == "reference" and "already posted as invoice 1000.00" in by_line[8]["reason"]
    assert count(crm_url, Transaction) == 5  # the 4 good ones before, plus B-6


def test_strict_writes_nothing(loaded, cli, crm_url):
    bad = "customer_ref,kind,amount,currency,occurred_at,reference\nC1,invoice,10,EUR,2024-05-01,S-1\nC1,invoice,-1,EUR,2024-05-01,S-2\n"
    res = cli("import", "transactions", str(write(loaded / "s.csv", bad)), "--strict", "--batch-size", "1")
    assert res.exit_code == 1 and "rolled back, nothing imported" in res.output
    assert count(crm_url, Transaction) == 4


@pytest.mark.parametrize("content,message", [
    ("", "is empty"),
    ("external_ref,name,colour\nC1,A,red\n", "colour"),
    ("name,kind\nA,person\n", "external_ref"),
    ("external_ref,name,name\nC1,A,B\n", "uplicate"),
])
def test_whole_file_problems_get_one_clear_line(cli, tmp_path, content, message, crm_url):
    res = cli("import", "customers", str(write(tmp_path / "x.csv", content)))
    assert res.exit_code == 1
    assert message in res.output
    assert "Traceback" not in res.output
    assert count(crm_url, Customer) == 0


def test_wrong_encoding(cli, tmp_path, crm_url):
    path = write(tmp_path / "latin.csv", "external_ref,name\nC1,Müller AG\n", encoding="latin-1")
    res = cli("import", "customers", str(path))
    assert res.exit_code == 1 and "not valid UTF-8" in res.output and "--encoding" in res.output
    ok(cli("import", "customers", str(path), "--encoding", "latin-1"))
    assert json.loads(ok(cli("customer", "show", "C1", "--json")).output)["customer"]["name"] == "Müller AG"


def test_truncated_last_line(cli, tmp_path, crm_url):
    path = write(tmp_path / "t.csv", "external_ref,name,kind\nC1,A,person\nC2,B")
    res = cli("import", "customers", str(path))
    assert res.exit_code == 1
    assert "line 3: row: truncated last line" in res.output
    assert count(crm_url, Customer) == 1


def test_missing_file_and_unknown_extension(cli, tmp_path):
    res = cli("import", "customers", str(tmp_path / "nope.csv"))
    assert res.exit_code == 1 and "nope.csv" in res.output
    res = cli("import", "customers", str(write(tmp_path / "x.xlsx", "x")))
    assert res.exit_code == 1 and "--format" in res.output


def test_mapping_and_stdin_jsonl(cli, tmp_path):
    lines = "\n".join(json.dumps(r) for r in [{"id": "J1", "company": "Jay Ltd", "kind": "organization"},
                                                 {"id": "J2", "company": "Kay Ltd"}])
    res = ok(cli("import", "customers", "-", "--format", "jsonl", "--map", "id=external_ref", "--map", "company=name",
                 input=lines + "\n"))
    assert "2 inserted" in res.output
    assert json.loads(ok(cli("customer", "show", "J2", "--json")).output)["customer"]["name"] == "Kay Ltd"


def test_contacts_and_interactions_import(loaded, cli):
    contacts = "external_ref,customer_ref,name,role,email\nP1,C1,Jane Roe,decider,jane@acme.de\nP2,C2,Bob Jr,user,\n"
    res = cli("import", "contacts", str(write(loaded / "p.csv", contacts)))
    assert res.exit_code == 1 and "is a person" in res.output  # P2's customer is a person
    inter = ("customer_ref,channel,subject,occurred_at,satisfaction\nC1,phone,Quote,2024-01-02T10:00:00Z,4\n"
             "C1,email,Follow-up,2024-01-03,\n")
    path = write(loaded / "i.csv", inter)
    assert "2 inserted" in ok(cli("import", "interactions", str(path))).output
    assert "2 unchanged" in ok(cli("import", "interactions", str(path))).output  # derived references
    shown = json.loads(ok(cli("customer", "show", "C1", "--json")).output)
    assert [c["name"] for c in shown["contacts"]] == ["Jane Roe"]
    assert [i["subject"] for i in shown["interactions"]] == ["Follow-up", "Quote"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_round_trip_export_import_export_is_identical(loaded, cli, tmp_path, fmt, empty_database_url):
    tricky = ('external_ref,name,kind,email,tags\nC4,"=HYPERLINK(""http://x"")",person,,"@risk"\n'
              "C5,'=already quoted,person,,\nC6,-12.50,person,,\n")
    ok(cli("import", "customers", str(write(loaded / "tricky.csv", tricky))))
    ok(cli("import", "interactions", str(write(loaded / "i.csv", "customer_ref,channel,subject,occurred_at\nC1,web,+1 signup,2024-01-01\n"))))
    ok(cli("import", "contacts", str(write(loaded / "p.csv", "external_ref,customer_ref,name,role\nP1,C1,Jane,decider\n"))))
    first = {}
    for entity in ("customers", "contacts", "interactions", "transactions"):
        ok(cli("export", entity, "--format", fmt, "-o", str(tmp_path / f"{entity}.1.{fmt}")))
        first[entity] = (tmp_path / f"{entity}.1.{fmt}").read_text(encoding="utf-8")
    assert cli("init", database=empty_database_url).exit_code == 0
    for entity in ("customers", "contacts", "interactions", "transactions"):
        ok(cli("import", entity, str(tmp_path / f"{entity}.1.{fmt}"), database=empty_database_url))
        ok(cli("export", entity, "--format", fmt, "-o", str(tmp_path / f"{entity}.2.{fmt}"), database=empty_database_url))
        assert (tmp_path / f"{entity}.2.{fmt}").read_text(encoding="utf-8") == first[entity], entity
    if fmt == "csv":
        cells = first["customers"]
        assert "'=HYPERLINK" in cells and "'=already quoted" in cells and "'@risk" in cells
        assert ",-12.50," in cells  # plain numbers stay numbers


def test_formula_cells_are_inert_after_invisible_characters(cli, tmp_path):
    # control characters themselves are refused (test_bulk_reliability); zero-width and
    # no-break spaces are text a spreadsheet skips too
    payload = [{"external_ref": "F1", "name": " \t=cmd|' /C calc'!A0"}, {"external_ref": "F2", "name": "\u200b+SUM(1)"},
               {"external_ref": "F3", "name": "＝1+1"}, {"external_ref": "F4", "name": "\u00a0@SUM(1)"}]
    ok(cli("import", "customers", "-", "--format", "jsonl", input="\n".join(json.dumps(p) for p in payload) + "\n"))
    out = ok(cli("export", "customers")).output
    rows = list(csv.DictReader(out.splitlines()))
    for r in rows:
        assert r["name"].startswith("'"), r["name"]


def test_batch_hooks_receive_batches_not_rows(make_crm, testplug, tmp_path):
    crm = make_crm(plugins=[("testplug", testplug)])
    rows = [SourceRow(i + 2, {"external_ref": f"C{i}", "name": f"N{i}"}) for i in range(5)]
    res = run_import(crm, "customers", rows, batch_size=2)
    assert res.inserted == 5 and res.batches == 3
    batches = [p for h, p in testplug.CALLS if h == "crm_customers_batch"]
    assert [len(created) for created, _ in batches] == [2, 2, 1]
    with crm.unit_of_work() as uow:  # the ids handed to the hook are the rows' real ids
        got = dict(uow.session.execute(select(Customer.id, Customer.external_ref)).all())
    assert [got[i] for created, _ in batches for i in created] == [f"C{i}" for i in range(5)]
    assert [h for h, _ in testplug.CALLS if h == "crm_customer_created"] == []  # never per row

    testplug.CALLS.clear()
    testplug.VETO_REFS.add("T2")
    tx = [SourceRow(i + 2, {"customer_ref": "C0", "kind": "invoice", "amount": "10", "occurred_at": "2024-01-01",
                            "reference": f"T{i}"}) for i in range(4)]
    res = run_import(crm, "transactions", tx, batch_size=4)
    assert (res.inserted, res.rejected) == (3, 1)
    assert res.first_errors[0].reason == "refused by plugin 'testplug': credit hold"
    assert [p for h, p in testplug.CALLS if h == "crm_before_transactions_batch"] == [4]
    posted = [p for h, p in testplug.CALLS if h == "crm_transactions_batch"]
    assert len(posted) == 1 and len(posted[0]) == 3

    inter = [SourceRow(2, {"customer_ref": "C1", "channel": "phone", "subject": "x", "occurred_at": "2024-01-01"})]
    run_import(crm, "interactions", inter)
    assert len([p for h, p in testplug.CALLS if h == "crm_interactions_batch"][0]) == 1


def test_hook_failure_in_a_batch_rolls_back_that_batch_only(make_crm, testplug):
    crm = make_crm(plugins=[("testplug", testplug)])
    run_import(crm, "customers", [SourceRow(2, {"external_ref": "A", "name": "A"})])
    testplug.FAIL_IN = "crm_customers_batch"
    from crmcore import PluginError

    with pytest.raises(PluginError, match="crm_customers_batch"):
        run_import(crm, "customers", [SourceRow(2, {"external_ref": "B", "name": "B"})])
    with crm.unit_of_work() as uow:
        assert uow.session.scalars(select(Customer.external_ref)).all() == ["A"]


def test_demo_generate_is_reproducible(cli, empty_database_url, crm_url):
    ok(cli("demo", "generate", "--customers", "50", "--transactions", "400", "--seed", "7"))
    assert cli("init", database=empty_database_url).exit_code == 0
    ok(cli("demo", "generate", "--customers", "50", "--transactions", "400", "--seed", "7", database=empty_database_url))
    a = ok(cli("export", "transactions")).output
    b = ok(cli("export", "transactions", database=empty_database_url)).output
    assert a == b and a.count("\n") == 401
    # skewed: the top 20% of customers hold well over half of the invoiced value
    totals = {}
    for r in csv.DictReader(a.splitlines()):
        if r["kind"] == "invoice":
            totals[r["customer_ref"]] = totals.get(r["customer_ref"], 0) + float(r["amount"])
    values = sorted(totals.values(), reverse=True)
    assert sum(values[: len(values) // 5]) / sum(values) > 0.5


def _state(url: str) -> tuple:
    crm = CRM.open(url, entry_points=False, config={})
    try:
        with crm.unit_of_work() as uow:
            tx = uow.session.execute(select(Transaction.reference, Transaction.amount).order_by(Transaction.reference)).all()
            from crmcore.models import Account

            bal = uow.session.execute(select(Customer.external_ref, Account.balance).join(Account, Account.customer_id == Customer.id)
                                      .order_by(Customer.external_ref)).all()
            return tx, bal
    finally:
        crm.close()


_STOP_AFTER_10_BATCHES = """
import os, signal
import crmcore.bulk.importer as importer

commit, done = importer._commit_batch, []

def stop_after_10(*args, **kwargs):
    outcome = commit(*args, **kwargs)  # returns once the batch is committed
    done.append(outcome.inserted)
    if len(done) == 10:
        os.write(int(os.environ["KILL_POINT_FD"]), f"committed {sum(done)}".encode())
        signal.pause()  # wait here for the SIGKILL
    return outcome

importer._commit_batch = stop_after_10
from crmcore.cli import main
main()
"""


def test_killed_import_rerun_ends_in_the_clean_state(cli, tmp_path, crm_url, empty_database_url):
    from crmcore.bulk import generate
    from crmcore.bulk.specs import SPECS

    cols = SPECS["transactions"].columns
    path = tmp_path / "tx.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in generate.transaction_rows(6000, 30, seed=3):
            w.writerow([r.get(c) or "" for c in cols])
    cust = tmp_path / "c.csv"
    with cust.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(SPECS["customers"].columns)
        for r in generate.customer_rows(30, seed=3):
            w.writerow([r.get(c) or "" for c in SPECS["customers"].columns])
    ok(cli("import", "customers", str(cust)))

    # The child stops itself right after its 10th batch committed: it reports the rows committed so
    # far on a pipe and blocks, and is killed there; no polling, no timing.
    reader, writer = os.pipe()
    env = {**os.environ, "CRM_DISABLE_PLUGINS": "", "KILL_POINT_FD": str(writer)}
    proc = subprocess.Popen([sys.executable, "-c", _STOP_AFTER_10_BATCHES, "--database", crm_url, "import", "transactions",
                             str(path), "--batch-size", "20"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, pass_fds=(writer,))
    os.close(writer)
    try:
        ready, _, _ = wait_readable([reader], [], [], 300)
        message = os.read(reader, 100).decode() if ready else ""
    finally:
        os.close(reader)
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
    assert message.startswith("committed "), (message, err.decode()[-2000:])
    partial = count(crm_url, Transaction)
    assert partial == int(message.split()[1]) == 200  # killed mid-way: exactly the 10 committed batches
    assert proc.returncode == -signal.SIGKILL

    ok(cli("import", "transactions", str(path)))
    assert cli("init", database=empty_database_url).exit_code == 0
    ok(cli("import", "customers", str(cust), database=empty_database_url))
    ok(cli("import", "transactions", str(path), database=empty_database_url))
    assert _state(crm_url) == _state(empty_database_url)


def test_records_made_by_hand_round_trip_too(cli, tmp_path):
    ok(cli("customer", "add", "Walk-in", "--kind", "organization"))
    ok(cli("contact", "add", "1", "Jane"))
    ok(cli("interaction", "log", "1", "--channel", "visit", "--subject", "Visit"))
    for entity in ("customers", "contacts", "interactions"):
        path = tmp_path / f"{entity}.csv"
        ok(cli("export", entity, "-o", str(path)))
        res = ok(cli("import", entity, str(path)))
        assert "0 inserted, 0 updated, 1 unchanged, 0 rejected" in res.output, (entity, res.output)


def test_key_repeated_in_a_file_is_rejected_in_every_batch(cli, tmp_path):
    path = write(tmp_path / "c.csv", "external_ref,name\nK1,First\nK2,Other\nK1,Second\n")
    res = cli("import", "customers", str(path), "--batch-size", "2")
    assert res.exit_code == 1 and "duplicate external_ref 'K1' (also on line 2)" in res.output
    res = cli("import", "customers", str(path), "--batch-size", "2")
    assert "0 inserted, 0 updated, 2 unchanged, 1 rejected" in res.output  # a re-run changes nothing


def test_import_merges_custom_attributes(make_crm, cli, tmp_path, monkeypatch):
    (tmp_path / "crm.toml").write_text('[custom_fields.vip]\ntype = "bool"\n[custom_fields.budget]\ntype = "decimal"\n'
                                       'required = true\n')
    ok(cli("customer", "add", "A", "--ref", "A", "--attr", "vip=yes", "--attr", "budget=100"))
    ok(cli("import", "customers", str(write(tmp_path / "a.csv", "external_ref,name,attr.vip\nA,A,no\n"))))
    attrs = json.loads(ok(cli("customer", "show", "A", "--json")).output)["customer"]["attributes"]
    assert attrs == {"vip": False, "budget": "100"}  # budget kept, vip changed
    res = cli("import", "customers", str(write(tmp_path / "b.csv", "external_ref,name\nB,B\n")))
    assert res.exit_code == 1 and "budget: required custom field is missing" in res.output
    ok(cli("import", "customers", str(write(tmp_path / "c.csv", "external_ref,name,industry\nA,A,retail\n"))))


def test_contacts_and_interactions_refused_for_archived_customers(loaded, cli):
    ok(cli("customer", "archive", "C1"))
    res = cli("import", "interactions", str(write(loaded / "i.csv", "customer_ref,channel,subject,occurred_at\nC1,web,x,2024-01-01\n")))
    assert res.exit_code == 1 and "customer 'C1' is archived" in res.output
