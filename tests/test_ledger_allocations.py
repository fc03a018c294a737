"""A payment (credit note, write-off) settling several invoices: the core's allocations.

Through every face: ``crm account post --applies-to REF[=AMOUNT]`` (repeatable), the API's
``applies_to`` list, the import column ``REF1;REF2`` / ``REF1=100.00;REF2=50.00``, the export
(which writes the same column back). Refused with one line and nothing written: an unknown
invoice, another customer's, an allocation beyond the payment or beyond what is open on the
invoice, an invoice named twice, a kind that settles nothing. ``applies_to`` naming one invoice
keeps working as before (``applies_to_id``). The migration 0010 round trips.
"""
from __future__ import annotations

import csv
import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from crmcore import CRM
from crmcore.bulk.importer import run_import
from crmcore.bulk.readers import SourceRow
from crmcore.errors import InvalidInput
from crmcore.models import Allocation, Transaction
from crmcore.schemas import CustomerCreate, TransactionCreate

AT = "2026-01-05T10:00:00+00:00"


def _customers(crm: CRM, *names: str) -> list[int]:
    with crm.unit_of_work() as uow:
        return [uow.customers.create(CustomerCreate(name=n, external_ref=n)).id for n in names]


def _post(crm: CRM, cid: int, **kw: object) -> Transaction:
    with crm.unit_of_work() as uow:
        e, _ = uow.accounts.post(cid, TransactionCreate(occurred_at=AT, **kw))  # type: ignore[arg-type]
        return e


def _allocs(crm: CRM) -> dict[str, dict[str, Decimal]]:
    """{entry reference: {invoice reference: amount}} of every allocation."""
    with crm.unit_of_work(read_only=True) as uow:
        out: dict[str, dict[str, Decimal]] = {}
        for e in uow.session.scalars(select(Transaction).order_by(Transaction.id)):
            if e.allocations:
                out[e.reference] = {a.reference: a.amount for a in e.allocations}
        return out


def _counts(crm: CRM) -> tuple[int, int]:
    with crm.unit_of_work(read_only=True) as uow:
        return (int(uow.session.scalar(select(func.count()).select_from(Transaction)) or 0),
                int(uow.session.scalar(select(func.count()).select_from(Allocation)) or 0))


def _invoices(crm: CRM, cid: int, **amounts: int) -> None:
    for ref, amount in amounts.items():
        _post(crm, cid, kind="invoice", amount=Decimal(amount), reference=ref)


# -- CLI ---------------------------------------------------------------------------------------------

def test_the_cli_settles_several_invoices_with_amounts_and_in_order(crm: CRM, cli) -> None:
    a, = _customers(crm, "A")
    _invoices(crm, a, I1=100, I2=80, I3=30)
    res = cli("account", "post", "A", "payment", "150", "--ref", "P1", "--applies-to", "I1=100", "--applies-to", "I2", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["entry"]["applies_to"] is None and out["balance"] == "60.00"
    assert out["entry"]["allocations"] == [{"reference": "I1", "amount": "100.00"}, {"reference": "I2", "amount": "50.00"}]
    # text output names them; a single name without an amount is the short form (applies_to), as before
    res = cli("account", "post", "A", "payment", "20", "--ref", "P2", "--applies-to", "I2=10", "--applies-to", "I3")
    assert res.exit_code == 0 and "(applies to I2 10.00, I3 10.00)" in res.output, res.output
    res = cli("account", "post", "A", "credit_note", "5", "--ref", "C1", "--applies-to", "I3", "--json")
    assert json.loads(res.output)["entry"]["applies_to"] == "I3" and json.loads(res.output)["entry"]["allocations"] == []
    assert _allocs(crm) == {"P1": {"I1": Decimal(100), "I2": Decimal(50)}, "P2": {"I2": Decimal(10), "I3": Decimal(10)}}
    acc = json.loads(cli("account", "list", "--json").output)[0]["id"]
    st = json.loads(cli("account", "statement", str(acc), "--json").output)
    assert {ln["reference"]: len(ln["allocations"]) for ln in st["lines"]}["P1"] == 2


@pytest.mark.parametrize(("args", "says"), [
    (["--applies-to", "I1=60", "--applies-to", "NOPE"], "customer 1 has no charge or invoice 'NOPE'"),
    (["--applies-to", "I1=10", "--applies-to", "IB"], "customer 1 has no charge or invoice 'IB'"),  # B's
    (["--applies-to", "I1=101"], "101.00 allocated to 'I1' exceeds what is open on it (100.00)"),
    (["--applies-to", "I1=100", "--applies-to", "I2=60"], "the amounts allocated (160.00) exceed the payment amount (150.00)"),
    (["--applies-to", "I1", "--applies-to", "I1=5"], "'I1' is named twice"),
    (["--applies-to", "I1=-5", "--applies-to", "I2"], "an allocated amount must be positive"),
    (["--applies-to", "I1=1.005", "--applies-to", "I2"], "more than 2 decimal places"),
    (["--applies-to", "I1=100", "--applies-to", "I2=50", "--applies-to", "I3"], "nothing of the payment is left for 'I3'"),
])
def test_the_cli_refuses_a_bad_allocation_with_one_line(crm: CRM, cli, args: list[str], says: str) -> None:
    a, b = _customers(crm, "A", "B")
    _invoices(crm, a, I1=100, I2=80, I3=30)
    _invoices(crm, b, IB=50)
    before = _counts(crm)
    res = cli("account", "post", "A", "payment", "150", "--ref", "P1", *args)
    assert res.exit_code == 1, res.output
    assert says in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert _counts(crm) == before


def test_an_invoice_cannot_name_several_and_a_charge_names_one(crm: CRM, cli) -> None:
    a, = _customers(crm, "A")
    _invoices(crm, a, I1=100, I2=80)
    for kind in ("invoice", "charge", "adjustment"):
        res = cli("account", "post", "A", kind, "5", "--ref", "X", "--applies-to", "I1=5", "--applies-to", "I2")
        assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, (kind, res.output)
        assert "names at most one entry" in res.output or "settles nothing" in res.output, res.output
    assert _counts(crm) == (2, 0)


def test_what_is_open_counts_allocations_and_single_names(crm: CRM) -> None:
    a, = _customers(crm, "A")
    _invoices(crm, a, I1=100, I2=10)
    _post(crm, a, kind="payment", amount=Decimal(30), reference="P1", applies_to="I1")  # the short form claims 30
    _post(crm, a, kind="payment", amount=Decimal(50), reference="P2", applies_to="I1=50")
    with pytest.raises(InvalidInput, match=r"exceeds what is open on it \(20.00\)"):
        _post(crm, a, kind="payment", amount=Decimal(21), reference="P3", applies_to=["I1=21"])
    _post(crm, a, kind="write_off", amount=Decimal(20), reference="W1", applies_to=[{"reference": "I1", "amount": "20"}])
    with pytest.raises(InvalidInput, match="'I1' has nothing open to settle"):
        _post(crm, a, kind="payment", amount=Decimal(1), reference="P4", applies_to="I1;I2")


# -- API ---------------------------------------------------------------------------------------------

def test_the_api_takes_a_list_and_refuses_bad_allocations(crm: CRM, api_client) -> None:
    a, b = _customers(crm, "A", "B")
    _invoices(crm, a, I1=100, I2=80)
    _invoices(crm, b, IB=50)
    client = api_client("admin")
    r = client.post(f"/customers/{a}/transactions", json={"kind": "payment", "amount": "120", "reference": "P1",
                                                          "applies_to": ["I1=100", {"reference": "I2", "amount": "20"}]})
    assert r.status_code == 201, r.text
    assert r.json()["allocations"] == [{"reference": "I1", "amount": "100.00"}, {"reference": "I2", "amount": "20.00"}]
    before = _counts(crm)
    for body, says in [
        ({"applies_to": ["I2=10", "IB=10"]}, "customer 1 has no charge or invoice 'IB'"),
        ({"applies_to": ["I1=1"]}, "exceeds what is open on it (0.00)"),
        ({"applies_to": ["I2=61"], "amount": "100"}, "exceeds what is open on it (60.00)"),
        ({"applies_to": ["I2=30", "I1=1"], "amount": "20"}, "exceed the payment amount"),
        ({"applies_to": 5}, "applies_to"),
    ]:
        r = client.post(f"/customers/{a}/transactions", json={"kind": "payment", "amount": "40", "reference": "P2", **body})
        assert 400 <= r.status_code < 500 and says in r.text, (body, r.status_code, r.text)
    assert _counts(crm) == before
    acc = client.get(f"/customers/{a}/accounts").json()[0]["id"]
    lines = {ln["entry"]["reference"]: ln["entry"] for ln in client.get(f"/accounts/{acc}/statement").json()["lines"]}
    assert [x["reference"] for x in lines["P1"]["allocations"]] == ["I1", "I2"]


# -- import ------------------------------------------------------------------------------------------

def _rows(*rows: str) -> list[SourceRow]:
    cols = ("customer_ref", "kind", "amount", "occurred_at", "reference", "applies_to")
    return [SourceRow(i + 2, {k: (v or None) for k, v in zip(cols, r.split(","))}) for i, r in enumerate(rows)]


def test_import_reads_the_column_in_both_forms_and_refuses_bad_rows(crm: CRM) -> None:
    _customers(crm, "A", "B")
    res = run_import(crm, "transactions", _rows(
        f"A,payment,150,{AT},P1,I1=100.00;I2=50.00",  # before its invoices, in the same batch
        f"A,invoice,100,{AT},I1,",
        f"A,invoice,80,{AT},I2,",
        f"A,invoice,40,{AT},I3,",
        f"A,payment,50,{AT},P2,I2;I3",  # I2 has 30 left, I3 takes the other 20
        f"A,payment,10,{AT},P3,I2=1",  # I2 is settled by now
        f"B,invoice,10,{AT},IB,",
        f"A,payment,10,{AT},P4,I3=5;IB=5",  # B's invoice
        f"A,payment,10,{AT},P5,I3=6;I3=4",  # named twice
        f"A,payment,10,{AT},P6,I3=11",  # beyond the payment
    ), batch_size=100)
    assert (res.inserted, res.rejected) == (6, 4), res.first_errors
    reasons = {e.line: e.reason for e in res.first_errors}
    assert "exceeds what is open on it (0.00)" in reasons[7] and "customer 1 has no charge or invoice 'IB'" in reasons[9]
    assert "named twice" in reasons[10] and "exceed the payment amount" in reasons[11]
    assert _allocs(crm) == {"P1": {"I1": Decimal(100), "I2": Decimal(50)}, "P2": {"I2": Decimal(30), "I3": Decimal(20)}}
    # a later file sees what the earlier one allocated
    res = run_import(crm, "transactions", _rows(f"A,payment,30,{AT},P7,I3=21"), batch_size=100)
    assert res.rejected == 1 and "exceeds what is open on it (20.00)" in res.first_errors[0].reason


def test_export_writes_allocations_and_a_fresh_database_reads_them_back(crm: CRM, cli, tmp_path, empty_database_url) -> None:
    a, = _customers(crm, "A")
    _invoices(crm, a, I1=100, I2=80)
    _post(crm, a, kind="payment", amount=Decimal("130.50"), reference="P1", applies_to="I1=100;I2=30.5")
    _post(crm, a, kind="credit_note", amount=Decimal(10), reference="C1", applies_to="I2")
    for entity in ("customers", "transactions"):
        assert cli("export", entity, "-o", str(tmp_path / f"{entity}.csv")).exit_code == 0
    rows = {r["reference"]: r for r in csv.DictReader((tmp_path / "transactions.csv").open(encoding="utf-8"))}
    assert rows["C1"]["applies_to"] == "I2"
    assert {p.split("=")[0]: Decimal(p.split("=")[1]) for p in rows["P1"]["applies_to"].split(";")} == {
        "I1": Decimal(100), "I2": Decimal("30.5")}
    assert cli("init", database=empty_database_url).exit_code == 0
    assert cli("import", "customers", str(tmp_path / "customers.csv"), database=empty_database_url).exit_code == 0
    res = cli("import", "transactions", str(tmp_path / "transactions.csv"), "--batch-size", "2", database=empty_database_url)
    assert res.exit_code == 0 and "4 inserted" in res.output, res.output
    assert cli("export", "transactions", "-o", str(tmp_path / "again.csv"), database=empty_database_url).exit_code == 0
    assert (tmp_path / "again.csv").read_text(encoding="utf-8") == (tmp_path / "transactions.csv").read_text(encoding="utf-8")


def test_an_import_error_report_names_the_allocation_problem(crm: CRM, cli, tmp_path) -> None:
    a, = _customers(crm, "A")
    _invoices(crm, a, I1=100)
    path = tmp_path / "t.csv"
    path.write_text(f"customer_ref,kind,amount,occurred_at,reference,applies_to\nA,payment,60,{AT},P1,I1=60\n"
                    f"A,payment,60,{AT},P2,I1=60\nA,payment,5,{AT},P3,I1=abc;I9\n", encoding="utf-8")
    res = cli("import", "transactions", str(path))
    assert res.exit_code == 1, res.output
    report = {int(r["line"]): r for r in csv.DictReader((tmp_path / "t.csv.errors.csv").open(encoding="utf-8"))}
    assert sorted(report) == [3, 4], report
    assert "exceeds what is open on it (40.00)" in report[3]["reason"] and report[3]["field"] == "applies_to"
    assert "'I1=abc'" in report[4]["reason"] or "I9" in report[4]["reason"], report[4]
    assert _allocs(crm) == {"P1": {"I1": Decimal(60)}}


# -- migration ---------------------------------------------------------------------------------------

def test_0010_creates_the_table_and_the_downgrade_keeps_the_first_link(empty_database_url: str) -> None:
    from tests.test_ledger_links_migration import _to

    crm = CRM.open(empty_database_url, entry_points=False, create=True, config={})
    try:
        _to(crm, "heads")
        a, = _customers(crm, "A")
        _invoices(crm, a, I1=100, I2=80)
        _post(crm, a, kind="payment", amount=Decimal(150), reference="P1", applies_to="I1=100;I2=50")
        _to(crm, "0009_interaction_contacts", down=True)
        with crm.engine.connect() as conn:
            assert conn.execute(text("SELECT n.reference FROM transactions t JOIN transactions n ON n.id = t.applies_to_id "
                                     "WHERE t.reference = 'P1'")).scalar_one() == "I1"
            assert "transaction_allocations" not in {r[0] for r in conn.execute(text(
                "SELECT table_name FROM information_schema.tables" if crm.engine.dialect.name == "postgresql"
                else "SELECT name FROM sqlite_master WHERE type = 'table'"))}
        _to(crm, "heads")
        _post(crm, a, kind="payment", amount=Decimal(10), reference="P2", applies_to="I2=10")
        assert _allocs(crm) == {"P2": {"I2": Decimal(10)}}
    finally:
        crm.close()
