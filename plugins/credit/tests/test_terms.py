"""Issue 23 §3: early-payment discounts and dunning charges as ledger entries, by every face."""
from __future__ import annotations

from decimal import Decimal

import pytest
from crm_credit import dunning, ledger, services, terms
from crm_credit.models import CreditCharge, CreditDiscount, CreditProfile
from crm_credit.testing import Book, ago
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.models import AuditEntry, Transaction

TX = "customer_ref,kind,amount,currency,occurred_at,reference,applies_to"


def entries(crm: CRM, cid: int) -> dict[str, tuple[str, Decimal]]:
    with crm.unit_of_work(read_only=True) as uow:
        return {r: (k.value, a) for r, k, a in uow.session.execute(
            select(Transaction.reference, Transaction.kind, Transaction.amount).where(Transaction.customer_id == cid))}


def open_on(crm: CRM, cid: int) -> Decimal:
    with crm.unit_of_work(read_only=True) as uow:
        items = ledger.open_items(uow.session, None, [cid])
        return ledger.money(int(items.open.sum()))


def balance(crm: CRM, cid: int) -> Decimal:
    with crm.unit_of_work(read_only=True) as uow:
        (acc,) = uow.accounts.list(cid)
        stored, total = uow.accounts.verify_balance(acc.id)
        assert stored == total
        return stored


# -- early-payment discounts --------------------------------------------------------------------------

def test_payment_within_the_window_earns_the_discount_as_an_audited_credit_note(ccrm: CRM, book: Book) -> None:
    a = book.customer("A")
    book.profile(a, discount_percent=Decimal(2), discount_days=10, payment_terms_days=30)
    inv = book.invoice(a, "1000.00", "INV-1", days_ago=5)
    book.pay(a, "980.00", "PAY-1", invoice="INV-1")
    e = entries(ccrm, a)
    assert e[f"DISC-{inv}"] == ("credit_note", Decimal("20.00"))
    assert balance(ccrm, a) == Decimal("0.00") and open_on(ccrm, a) == Decimal("0.00")
    with ccrm.unit_of_work(read_only=True) as uow:
        d = uow.session.scalar(select(CreditDiscount))
        assert (d.invoice_id, d.amount, d.percent) == (inv, Decimal("20.00"), Decimal("2.00"))
        audit = uow.session.scalar(select(AuditEntry).where(AuditEntry.action == "early-payment-discount"))
        assert audit.after["credit_note"] == f"DISC-{inv}" and audit.after["amount"] == "20.00"
        assert audit.actor == "test"


def test_no_discount_after_the_window_nor_for_a_partial_payment(ccrm: CRM, book: Book) -> None:
    a, b = book.customer("A"), book.customer("B")
    for c in (a, b):
        book.profile(c, discount_percent=Decimal(2), discount_days=10, payment_terms_days=30)
    book.invoice(a, "1000.00", "INV-A", days_ago=20)
    book.pay(a, "980.00", "PAY-A", invoice="INV-A")  # 20 days after the invoice: net, no discount
    book.invoice(b, "1000.00", "INV-B", days_ago=3)
    book.pay(b, "500.00", "PAY-B", invoice="INV-B")  # within the window, but not the discounted amount
    assert open_on(ccrm, a) == Decimal("20.00") and open_on(ccrm, b) == Decimal("500.00")
    assert not [r for r in {**entries(ccrm, a), **entries(ccrm, b)} if r.startswith("DISC-")]
    book.pay(b, "480.00", "PAY-B2", invoice="INV-B")  # the rest of the discounted amount, still in the window
    assert open_on(ccrm, b) == Decimal("0.00") and entries(ccrm, b)[next(r for r in entries(ccrm, b) if r.startswith("DISC-"))][1] == Decimal("20.00")


def test_discount_by_import_of_a_payment(ccrm: CRM, book: Book, ccli, tmp_path) -> None:
    a = book.customer("A")
    book.profile(a, discount_percent=Decimal("1.5"), discount_days=14, payment_terms_days=30)
    inv = book.invoice(a, "333.33", "INV-1", days_ago=2)
    today = ago(0).date().isoformat()
    f = tmp_path / "pay.csv"
    f.write_text(f"{TX}\nA,payment,328.33,EUR,{today},PAY-1,INV-1\n", encoding="utf-8")
    res = ccli("import", "transactions", str(f))
    assert res.exit_code == 0, res.output
    # 1.5% of 333.33 = 4.99995 -> 5.00 (half-up); the customer paid 328.33 = 333.33 - 5.00
    assert entries(ccrm, a)[f"DISC-{inv}"] == ("credit_note", Decimal("5.00"))
    assert balance(ccrm, a) == Decimal("0.00")


@pytest.mark.parametrize(("args", "message"), [
    (["--discount", "2", "--discount-days", "0"], "already past"),
    (["--discount", "2", "--discount-days", "-3"], "already past"),
    (["--discount", "2", "--discount-days", "30"], "must end before the net terms (30 days)"),
    (["--discount", "2"], "needs both the percentage and the days"),
    (["--discount", "100", "--discount-days", "5"], "above 0 and below 100"),
    (["--discount", "2", "--discount-days", "5", "--no-discount"], "not both"),
    (["--review", "2026-01-10", "--next-review", "2026-01-01"], "not after the last review"),
])
def test_bad_terms_are_one_line_and_change_nothing(ccrm: CRM, book: Book, ccli, args: list[str], message: str) -> None:
    a = book.customer("A", terms=30)
    book.profile(a, limit=Decimal(100))
    res = ccli("credit", "profile", "set", "A", *args)
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], res.output
    with ccrm.unit_of_work(read_only=True) as uow:
        p = uow.session.get(CreditProfile, a)
        assert (p.discount_percent, p.discount_days, p.last_review, p.next_review) == (None, None, None, None)


def test_discount_terms_set_and_cleared_by_cli(ccrm: CRM, book: Book, ccli) -> None:
    a = book.customer("A", terms=30)
    assert ccli("credit", "profile", "set", "A", "--discount", "2", "--discount-days", "10").exit_code == 0
    with ccrm.unit_of_work(read_only=True) as uow:
        p = uow.session.get(CreditProfile, a)
        assert (p.discount_percent, p.discount_days) == (Decimal("2.00"), 10)
    assert ccli("credit", "profile", "set", "A", "--no-discount").exit_code == 0
    with ccrm.unit_of_work(read_only=True) as uow:
        assert uow.session.get(CreditProfile, a).discount_percent is None


# -- charges -------------------------------------------------------------------------------------------

def _overdue(book: Book, name: str) -> tuple[int, int]:
    a = book.customer(name, terms=30)
    inv = book.invoice(a, "1000.00", f"INV-{name}", days_ago=80, due_days_ago=45)
    return a, inv


def test_dunning_posts_fee_and_interest_as_ledger_entries(ccrm: CRM, book: Book) -> None:
    a, inv = _overdue(book, "A")
    with ccrm.unit_of_work("test") as uow:
        res = dunning.run(uow)
    assert res.charges == 2
    e = entries(ccrm, a)
    fee, interest = e[f"FEE-{inv}-L3"], e[f"INT-{inv}-L3"]
    # level 3 of the defaults: fee 40, 8% a year on 1000 for 45 days = 9.86
    assert fee == ("charge", Decimal("40.00")) and interest == ("charge", Decimal("9.86"))
    assert balance(ccrm, a) == Decimal("1049.86") and open_on(ccrm, a) == Decimal("1049.86")
    with ccrm.unit_of_work(read_only=True) as uow:  # each charge names its invoice; the statement shows them
        st = uow.accounts.statement(uow.accounts.list(a)[0].id)
        charged = {ln.entry.reference: ln.entry.applies_to for ln in st.lines if ln.entry.kind.value == "charge"}
        assert charged == {f"FEE-{inv}-L3": "INV-A", f"INT-{inv}-L3": "INV-A"} and st.closing_balance == Decimal("1049.86")
    with ccrm.unit_of_work(read_only=True) as uow:
        from crm_credit import reports

        rows = reports.ageing(uow, ago(0).date(), [a])
        assert Decimal(str(rows["customers"][0]["open"])) == Decimal("1049.86")
    with ccrm.unit_of_work("test") as uow:  # the same level again posts nothing new
        dunning.run(uow)
    assert len(entries(ccrm, a)) == 3
    # paying the invoice leaves the charges open (clear_charges_with_invoice is off by default)
    book.pay(a, "1000.00", "PAY-A", invoice="INV-A")
    assert open_on(ccrm, a) == Decimal("49.86")


def test_charges_cleared_with_the_invoice_when_the_setting_says(make_ccrm) -> None:
    crm = make_ccrm(clear_charges_with_invoice=True)
    book = Book(crm)
    a, inv = _overdue(book, "A")
    with crm.unit_of_work("test") as uow:
        dunning.run(uow)
    book.pay(a, "1000.00", "PAY-A", invoice="INV-A")
    e = entries(crm, a)
    charges = _charge_ids(crm)
    assert len(charges) == 2 and all(e[f"CLR-{t}"][0] == "credit_note" and i == inv for t, i in charges)
    with crm.unit_of_work(read_only=True) as uow:  # each clearing credit note names the charge it clears
        named = {t.reference: t.applies_to for t in uow.session.scalars(select(Transaction).where(
            Transaction.reference.like("CLR-%")))}
        assert named == {f"CLR-{t}": f"{k}-{inv}-L3" for (t, _), k in zip(charges, ("FEE", "INT"))}
    assert open_on(crm, a) == Decimal("0.00") and balance(crm, a) == Decimal("0.00")
    with crm.unit_of_work(read_only=True) as uow:
        assert all(c.cleared_by_id is not None for c in uow.session.scalars(select(CreditCharge)))


def _charge_ids(crm: CRM) -> list[tuple[int, int]]:
    with crm.unit_of_work(read_only=True) as uow:
        return [(c.transaction_id, c.invoice_id) for c in uow.session.scalars(select(CreditCharge).order_by(CreditCharge.transaction_id))]


def test_charges_post_on_a_held_customer_but_a_user_adjustment_named_like_one_does_not(ccrm: CRM, book: Book, ccli) -> None:
    a, inv = _overdue(book, "A")
    with ccrm.unit_of_work("test") as uow:
        services.hold(uow, a, "cheque bounced")
        dunning.run(uow)
    assert f"FEE-{inv}-L3" in entries(ccrm, a)
    res = ccli("account", "post", "A", "adjustment", "40", "--ref", f"FEE-{inv}-L4")
    assert res.exit_code == 1 and "credit hold" in res.output
    from crmcore import Vetoed
    from crmcore.schemas import TransactionCreate

    # the Python API with the charge's source: still checked
    with pytest.raises(Vetoed, match="credit hold"), ccrm.unit_of_work("test") as uow:
        uow.accounts.post(a, TransactionCreate(kind="adjustment", amount=Decimal(40), reference=f"FEE-{inv}-L5",
                                               source="credit"))
    assert set(entries(ccrm, a)) == {"INV-A", f"FEE-{inv}-L3", f"INT-{inv}-L3"}


def test_posting_charges_can_be_switched_off(make_ccrm) -> None:
    crm = make_ccrm(post_charges=False)
    book = Book(crm)
    a, _ = _overdue(book, "A")
    with crm.unit_of_work("test") as uow:
        assert dunning.run(uow).charges == 0
    assert set(entries(crm, a)) == {"INV-A"}
    with crm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(CreditCharge)) == 0


# -- money arithmetic ------------------------------------------------------------------------------------

CURRENCIES = st.sampled_from(["EUR", "JPY", "KWD"])


@settings(max_examples=300, deadline=None)
@given(cents=st.integers(min_value=1, max_value=10**12), pct=st.integers(min_value=1, max_value=9999), cur=CURRENCIES)
def test_discount_is_exact_half_up_and_settles_to_zero(cents: int, pct: int, cur: str) -> None:
    digits = terms.minor_units(cur)
    amount = Decimal(cents).scaleb(-digits)
    percent = Decimal(pct).scaleb(-2)
    d = terms.discount_amount(amount, percent, cur)
    exact = amount * percent / 100
    assert d == d.quantize(Decimal(1).scaleb(-digits))
    assert abs(d - exact) <= Decimal(5).scaleb(-digits - 1)  # at most half a minor unit
    assert Decimal(0) <= d <= amount
    # paid = amount - discount, then the discount credit note: nothing is left open, to the unit
    assert ledger.cents(amount) - ledger.cents(amount - d) - ledger.cents(d) == 0


@settings(max_examples=200, deadline=None)
@given(units=st.integers(min_value=1, max_value=10**10), days=st.integers(min_value=1, max_value=3650),
       rate=st.integers(min_value=0, max_value=10000))
def test_interest_is_decimal_rounded_and_monotonic(units: int, days: int, rate: int) -> None:
    from crm_credit.settings import DunningLevel

    lv = DunningLevel(level=1, days_overdue=1, action="reminder", interest_percent=Decimal(rate).scaleb(-2))
    i = dunning._interest(units * 100, days, lv)
    assert i == i.quantize(Decimal("0.01")) and i >= 0
    assert i <= dunning._interest(units * 100, days + 1, lv)
    assert terms.round_money(i, "EUR") == i


# -- settlements naming another customer's invoice -----------------------------------------------------

def test_a_payment_naming_another_customers_invoice_is_refused_by_every_face(ccrm: CRM, book: Book, ccli, tmp_path) -> None:
    from fastapi.testclient import TestClient

    from crmcore import InvalidInput
    from crmcore.api import create_app
    from crmcore.schemas import TransactionCreate

    a, b = book.customer("A"), book.customer("B")
    book.invoice(a, "100", "INV-A")
    book.invoice(b, "100", "INV-B")
    said = f"customer {b} has no charge or invoice 'INV-A'"
    with pytest.raises(InvalidInput, match=said), ccrm.unit_of_work("test") as uow:
        uow.accounts.post(b, TransactionCreate(kind="payment", amount=Decimal(100), reference="PY", applies_to="INV-A"))
    res = ccli("account", "post", "B", "payment", "100", "--ref", "CLI", "--applies-to", "INV-A")
    assert res.exit_code == 1 and said in res.output and len(res.output.strip().splitlines()) == 1, res.output
    f = tmp_path / "p.csv"
    f.write_text(f"{TX}\nB,payment,100,EUR,{ago(0).date().isoformat()},IMP,INV-A\n", encoding="utf-8")
    res = ccli("import", "transactions", str(f))
    assert res.exit_code == 1 and said in res.output, res.output
    from crmcore.api.auth import TokenService

    book.users(test=["admin"])
    with ccrm.unit_of_work("test") as uow:
        token = TokenService(uow).create("test", "t")[1]
    r = TestClient(create_app(ccrm), raise_server_exceptions=False).post(
        f"/customers/{b}/transactions", json={"kind": "payment", "amount": "100", "reference": "API", "applies_to": "INV-A"},
        headers={"Authorization": f"Bearer {token}"})
    assert 400 <= r.status_code < 500 and said in r.text, r.text
    assert set(entries(ccrm, b)) == {"INV-B"} and open_on(ccrm, a) == Decimal("100.00")
