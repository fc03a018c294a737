"""The ledger's links, charges and costs (core, no plugin): ``applies_to`` names the invoice an
entry settles, through every face (service, CLI, API, import); a name that is unknown, another
customer's, on another account or of the wrong kind is refused with one line and nothing
written; ``charge`` entries count in balances and statements; ``cost`` is kept as given."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.bulk.importer import run_import
from crmcore.bulk.readers import SourceRow
from crmcore.errors import InvalidInput
from crmcore.models import Transaction
from crmcore.schemas import AccountCreate, CustomerCreate, TransactionCreate

AT = "2026-01-05T10:00:00+00:00"


def _customers(crm: CRM, *names: str) -> list[int]:
    with crm.unit_of_work() as uow:
        return [uow.customers.create(CustomerCreate(name=n, external_ref=n)).id for n in names]


def _post(crm: CRM, cid: int, **kw: object) -> Transaction:
    with crm.unit_of_work() as uow:
        e, _ = uow.accounts.post(cid, TransactionCreate(occurred_at=AT, **kw))  # type: ignore[arg-type]
        return e


def _count(crm: CRM) -> int:
    with crm.unit_of_work(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Transaction)) or 0)


def _links(crm: CRM) -> dict[str, str | None]:
    with crm.unit_of_work(read_only=True) as uow:
        return {t.reference: t.applies_to for t in uow.session.scalars(select(Transaction))}


def test_a_payment_names_its_invoice_and_every_read_shows_it(crm: CRM, cli) -> None:
    a, = _customers(crm, "A")
    _post(crm, a, kind="invoice", amount=Decimal(100), reference="INV-1", cost=Decimal("61.50"))
    res = cli("account", "post", "A", "payment", "40", "--ref", "P1", "--applies-to", "INV-1", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["entry"]["applies_to"] == "INV-1" and out["balance"] == "60.00"
    _post(crm, a, kind="credit_note", amount=Decimal(10), reference="CN1", applies_to="INV-1", cost=Decimal(6))
    _post(crm, a, kind="write_off", amount=Decimal(5), reference="WO1", applies_to="INV-1")
    _post(crm, a, kind="charge", amount=Decimal("7.50"), reference="FEE1", applies_to="INV-1")
    _post(crm, a, kind="payment", amount=Decimal("7.50"), reference="P2", applies_to="FEE1")  # a credit settles a charge
    assert _links(crm) == {"INV-1": None, "P1": "INV-1", "CN1": "INV-1", "WO1": "INV-1", "FEE1": "INV-1", "P2": "FEE1"}
    with crm.unit_of_work(read_only=True) as uow:
        acc = uow.accounts.list(a)[0]
        st = uow.accounts.statement(acc.id)
        assert acc.balance == Decimal("45.00") == st.closing_balance  # 100 - 40 - 10 - 5 + 7.50 - 7.50
        assert [(ln.entry.reference, ln.effect) for ln in st.lines if ln.entry.kind.value == "charge"] == [("FEE1", Decimal("7.50"))]
        assert uow.accounts.verify_balance(acc.id) == (Decimal("45.00"), Decimal("45.00"))
        acc_id = acc.id
    res = cli("account", "statement", str(acc_id), "--json")
    lines = {ln["reference"]: ln for ln in json.loads(res.output)["lines"]}
    assert lines["CN1"]["applies_to"] == "INV-1" and lines["CN1"]["cost"] == "6.00" and lines["INV-1"]["cost"] == "61.50"


@pytest.mark.parametrize("case", ["unknown", "other_customer", "a_payment", "other_account", "invoice_names", "negative_cost"])
def test_a_bad_name_is_refused_by_the_service_and_the_cli_with_nothing_written(crm: CRM, cli, case: str) -> None:
    a, b = _customers(crm, "A", "B")
    _post(crm, a, kind="invoice", amount=Decimal(100), reference="INV-A")
    _post(crm, b, kind="invoice", amount=Decimal(100), reference="INV-B")
    _post(crm, a, kind="payment", amount=Decimal(1), reference="PAY-A")
    with crm.unit_of_work() as uow:
        second = uow.accounts.open(a, AccountCreate(currency="EUR")).id
    before = _count(crm)
    args, said = {
        "unknown": ([ "payment", "10", "--applies-to", "NOPE"], "customer 1 has no charge or invoice 'NOPE'"),
        "other_customer": (["payment", "10", "--applies-to", "INV-B"], "customer 1 has no charge or invoice 'INV-B'"),
        "a_payment": (["credit_note", "10", "--applies-to", "PAY-A"], "'PAY-A' is a payment, not a charge or invoice"),
        "other_account": (["payment", "10", "--applies-to", "INV-A", "--account", str(second)],
                          f"'INV-A' is on account 1, not on account {second}"),
        "invoice_names": (["invoice", "10", "--applies-to", "INV-A"], "an invoice settles nothing"),
        "negative_cost": (["invoice", "10", "--cost", "-1"], "cost must not be negative"),
    }[case]
    res = cli("account", "post", "A", args[0], args[1], "--ref", "X1", *args[2:])
    assert res.exit_code == 1 and said in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert _count(crm) == before
    if case in ("unknown", "other_customer", "a_payment"):
        with pytest.raises(InvalidInput, match="nothing was posted"):
            _post(crm, a, kind=args[0], amount=Decimal(args[1]), reference="X2", applies_to=args[3])
        assert _count(crm) == before


def test_the_api_takes_and_shows_applies_to_and_cost_and_refuses_a_bad_name(crm: CRM, api_client) -> None:
    a, b = _customers(crm, "A", "B")
    _post(crm, b, kind="invoice", amount=Decimal(100), reference="INV-B")
    client = api_client("admin")
    r = client.post(f"/customers/{a}/transactions", json={"kind": "invoice", "amount": "80", "reference": "I1", "cost": "50.25"})
    assert r.status_code == 201 and r.json()["cost"] == "50.25" and r.json()["applies_to"] is None, r.text
    r = client.post(f"/customers/{a}/transactions", json={"kind": "payment", "amount": "80", "reference": "P1", "applies_to": "I1"})
    assert r.status_code == 201 and r.json()["applies_to"] == "I1", r.text
    before = _count(crm)
    r = client.post(f"/customers/{a}/transactions", json={"kind": "payment", "amount": "5", "reference": "P2", "applies_to": "INV-B"})
    assert 400 <= r.status_code < 500 and "has no charge or invoice 'INV-B'" in r.text, r.text
    r = client.post(f"/customers/{a}/transactions", json={"kind": "adjustment", "amount": "5", "reference": "P3", "applies_to": "I1"})
    assert r.status_code == 422 and "settles nothing" in r.text, r.text
    assert _count(crm) == before
    acc = client.get(f"/customers/{a}/accounts").json()[0]["id"]
    lines = client.get(f"/accounts/{acc}/statement").json()["lines"]
    assert [(ln["entry"]["reference"], ln["entry"]["applies_to"]) for ln in lines] == [("I1", None), ("P1", "I1")]


def _rows(*rows: str) -> list[SourceRow]:
    cols = ("customer_ref", "kind", "amount", "occurred_at", "reference", "applies_to", "cost")
    return [SourceRow(i + 2, {k: (v or None) for k, v in zip(cols, r.split(","))}) for i, r in enumerate(rows)]


def test_import_links_within_a_batch_in_any_order_and_refuses_bad_names(crm: CRM) -> None:
    _customers(crm, "A", "B")
    res = run_import(crm, "transactions", _rows(
        f"A,payment,30,{AT},P1,I1,",  # before its invoice in the same batch
        f"A,invoice,100,{AT},I1,,70.5",
        f"A,charge,5,{AT},F1,I1,",
        f"A,credit_note,5,{AT},C1,F1,",
        f"B,invoice,100,{AT},IB,,",
        f"A,payment,10,{AT},P2,IB,",  # B's invoice
        f"A,payment,10,{AT},P3,NOPE,",
        f"A,payment,10,{AT},P4,P1,",  # a payment settles nothing
        f"A,invoice,10,{AT},I2,I1,",  # an invoice names nothing
    ), batch_size=100)
    assert (res.inserted, res.rejected) == (5, 4), res.first_errors
    reasons = {e.line: e.reason for e in res.first_errors}
    assert "customer 1 has no charge or invoice 'IB'" in reasons[7] and "'NOPE'" in reasons[8]
    assert "'P1' is a payment" in reasons[9] and "settles nothing" in reasons[10]
    assert _links(crm) == {"P1": "I1", "I1": None, "F1": "I1", "C1": "F1", "IB": None}
    with crm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(Transaction.cost).where(Transaction.reference == "I1")) == Decimal("70.50")
    # a later file names what an earlier one posted
    res = run_import(crm, "transactions", _rows(f"A,payment,20,{AT},P5,I1,"), batch_size=100)
    assert res.inserted == 1 and _links(crm)["P5"] == "I1"


def test_an_entry_naming_a_refused_row_of_its_batch_is_refused_too(make_crm, testplug) -> None:
    crm = make_crm(plugins=[("testplug", testplug)])
    testplug.VETO_REFS.add("I1")
    _customers(crm, "A")
    res = run_import(crm, "transactions", _rows(f"A,invoice,100,{AT},I1,,", f"A,payment,30,{AT},P1,I1,",
                                                f"A,invoice,50,{AT},I2,,"), batch_size=100)
    assert (res.inserted, res.rejected) == (1, 2), res.first_errors
    assert _links(crm) == {"I2": None}


def test_processes_posting_and_importing_links_at_once_keep_every_link_valid(crm: CRM, crm_url: str, tmp_path) -> None:
    """An invoice posted while other processes post and import payments naming it: each payment
    is either refused with one line (its invoice was not committed yet) or stored with a valid
    link; the import's own invoice and payment always link; the balance is the sum of what stayed."""
    from crmcore.testing_concurrency import run_cli_in_processes

    a, = _customers(crm, "A")
    path = tmp_path / "t.csv"
    path.write_text(f"customer_ref,kind,amount,occurred_at,reference,applies_to\nA,invoice,50,{AT},I2,\n"
                    f"A,payment,20,{AT},IP1,I2\nA,payment,5,{AT},IP2,INV-1\n", encoding="utf-8")
    commands = [["account", "post", "A", "invoice", "100", "--ref", "INV-1"],
                *[["account", "post", "A", "payment", "10", "--ref", f"P{i}", "--applies-to", "INV-1"] for i in range(2)],
                ["import", "transactions", str(path)]]
    results = run_cli_in_processes(crm_url, commands)
    assert results[0].code == 0, results[0]
    for r in results[1:]:
        assert r.code in (0, 1), (r.argv, r.code, r.output, r.stderr)
        if r.code == 1:
            assert "no charge or invoice 'INV-1'" in r.output + r.stderr, (r.argv, r.output, r.stderr)
    links = _links(crm)
    assert links["IP1"] == "I2" and all(links[p] == "INV-1" for p in ("P0", "P1", "IP2") if p in links)
    with crm.unit_of_work(read_only=True) as uow:
        acc = uow.accounts.list(a)[0]
        assert uow.accounts.verify_balance(acc.id)[0] == uow.accounts.verify_balance(acc.id)[1]

