"""Credit reads the core's allocations: a payment settling several invoices settles each by its
allocated amount in open-item matching (ageing, the credit position), the rest oldest first;
the posting guard allocates no more to an invoice than credit sees open on it (one by one and
in a batch); the ageing report names each customer (reference and name, table and JSON)."""
from __future__ import annotations

import csv
import json
from decimal import Decimal

from crm_credit.testing import Book

from crmcore import CRM
from crmcore.schemas import AccountCreate, CustomerCreate


def _acme(ccrm: CRM) -> int:
    with ccrm.unit_of_work("test") as uow:
        c = uow.customers.create(CustomerCreate(name="Acme Kitchens GmbH", external_ref="ACME"))
        uow.accounts.open(c.id, AccountCreate(currency="EUR", is_default=True))
        return c.id


def test_ageing_settles_each_allocated_invoice_and_names_the_customer(ccrm: CRM, ccli) -> None:
    book = Book(ccrm)
    a = _acme(ccrm)
    book.invoice(a, "100", "A1", days_ago=80, due_days_ago=50)
    book.invoice(a, "40", "A2", days_ago=2)
    book.invoice(a, "50", "A3", days_ago=1)
    book.post(a, "payment", "80", "P1", applies_to="A2=40;A3=30")  # 10 left: settles A1, the oldest
    j = json.loads(ccli("credit", "aging", "--json").output)
    row, = j["customers"]
    assert row["buckets"]["31-60"] == "90.00" and row["buckets"]["current"] == "20.00", row  # FIFO alone: 0 / 110
    assert (row["customer_id"], row["customer_ref"], row["customer_name"]) == (a, "ACME", "Acme Kitchens GmbH")
    assert set(j["totals"][0]) == {"customer_id", "currency", "buckets", "open", "unapplied"}  # totals unchanged
    out = ccli("credit", "aging").output
    assert "ACME" in out and "Acme Kitchens GmbH" in out, out
    d = json.loads(ccli("credit", "dso", "--json").output)
    assert d["customers"][0]["customer_ref"] == "ACME"


def test_the_guard_allocates_no_more_than_credit_sees_open(ccrm: CRM, ccli, tmp_path) -> None:
    book = Book(ccrm)
    a = _acme(ccrm)
    book.invoice(a, "100", "A1", days_ago=20)
    book.invoice(a, "100", "A2", days_ago=10)
    book.pay(a, "80", "P0", days_ago=5)  # unnamed: settles 80 of A1, oldest first
    res = ccli("account", "post", "ACME", "payment", "60", "--ref", "P1", "--applies-to", "A1=50", "--applies-to", "A2")
    assert res.exit_code == 1 and "50.00 allocated to invoice A1 is larger than the 20.00 still open on it" in res.output, \
        res.output
    path = tmp_path / "t.csv"
    path.write_text("customer_ref,kind,amount,occurred_at,reference,applies_to\n"
                    "ACME,payment,30,2026-01-10,P2,A1=20;A2=10\n"
                    "ACME,payment,30,2026-01-10,P3,A1=1;A2\n", encoding="utf-8")
    res = ccli("import", "transactions", str(path))
    assert res.exit_code == 1, res.output
    report = {int(r["line"]): r["reason"] for r in csv.DictReader((tmp_path / "t.csv.errors.csv").open(encoding="utf-8"))}
    assert list(report) == [3] and "1.00 allocated to invoice A1 is larger than the 0.00 still open" in report[3], report
    with ccrm.unit_of_work("test", read_only=True) as uow:
        from crm_credit import ledger

        items = ledger.open_items(uow.session, None, [a])
        assert dict(zip(items.reference.tolist(), map(ledger.money, items.open.tolist()))) == {
            "A1": Decimal("0.00"), "A2": Decimal("90.00")}


def test_a_payment_of_several_invoices_within_the_window_earns_each_discount(ccrm: CRM) -> None:
    from crm_credit.models import CreditDiscount
    from sqlalchemy import select

    from crmcore.models import Transaction

    book = Book(ccrm)
    a = book.customer("A")
    book.profile(a, discount_percent=Decimal(2), discount_days=10, payment_terms_days=30)
    i1 = book.invoice(a, "1000.00", "INV-1", days_ago=5)
    i2 = book.invoice(a, "500.00", "INV-2", days_ago=4)
    book.invoice(a, "300.00", "INV-0", days_ago=40)  # older, unpaid: FIFO alone would have taken the payment
    book.post(a, "payment", "1470.00", "PAY-1", applies_to="INV-1=980.00;INV-2=490.00")
    with ccrm.unit_of_work(read_only=True) as uow:
        disc = {d.invoice_id: d.amount for d in uow.session.scalars(select(CreditDiscount))}
        assert disc == {i1: Decimal("20.00"), i2: Decimal("10.00")}
        balance = uow.accounts.list(a)[0].balance
        assert balance == Decimal("300.00")
        kinds = dict(uow.session.execute(select(Transaction.reference, Transaction.kind)).all())
        assert kinds[f"DISC-{i1}"].value == "credit_note" and kinds[f"DISC-{i2}"].value == "credit_note"
