"""The credit check on invoice posting: limit + overshoot, hold, overdue beyond grace, releases, batches."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from crm_credit import services
from crm_credit.models import CreditProfileChange, CreditRelease
from crm_credit.schemas import ReleaseRequest
from crm_credit.testing import Book
from sqlalchemy import func, select

from crmcore import CRM, PermissionDenied, Vetoed
from crmcore.errors import Conflict, InvalidInput
from crmcore.models import AuditEntry, Transaction


def count(crm: CRM, model: type) -> int:
    with crm.unit_of_work(read_only=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(model))


def test_invoice_over_the_limit_is_refused_with_figures_and_nothing_written(book: Book, ccrm: CRM) -> None:
    a = book.customer("ACME")
    book.profile(a, limit=Decimal(1000))
    book.invoice(a, "800", "I1")
    before = count(ccrm, Transaction)
    with pytest.raises(Vetoed) as e:
        book.invoice(a, "200.01", "I2")
    msg = str(e.value)
    assert "over the credit limit by 0.01 EUR" in msg and "exposure 1,000.01 EUR = open 800.00 + new 200.01" in msg
    assert "limit 1,000.00" in msg
    assert count(ccrm, Transaction) == before
    book.invoice(a, "200", "I3")  # exactly at the limit passes


def test_overshoot_percent_is_allowed(make_ccrm) -> None:
    crm = make_ccrm(overshoot_percent="10")
    b = Book(crm)
    a = b.customer("A")
    b.profile(a, limit=Decimal(1000))
    b.invoice(a, "1100", "I1")
    with pytest.raises(Vetoed, match=r"allowed with overshoot 1,100.00"):
        b.invoice(a, "0.01", "I2")


def available(crm: CRM, customer_id: int) -> tuple[Decimal, Decimal]:
    """(open receivable, available credit) as the credit check sees them."""
    with crm.unit_of_work(read_only=True) as uow:
        chk = services.check(uow, customer_id, Decimal("0.01"), lock=False)
    assert chk.limit is not None
    return chk.open_receivable, chk.limit - chk.open_receivable - chk.uninvoiced_won


def test_payments_free_the_limit(book: Book, ccrm: CRM) -> None:
    a = book.customer("A")
    book.profile(a, limit=Decimal(1000))
    book.invoice(a, "1000", "I1")
    assert available(ccrm, a) == (Decimal("1000.00"), Decimal("0.00"))
    before = count(ccrm, Transaction)
    with pytest.raises(Vetoed, match=r"over the credit limit by 400\.00 EUR"):
        book.invoice(a, "400", "I2")  # the limit is used up: refused, nothing written
    assert count(ccrm, Transaction) == before
    book.pay(a, "400", "P1")
    assert available(ccrm, a) == (Decimal("600.00"), Decimal("400.00"))
    book.invoice(a, "400", "I2")  # the same document passes once the payment freed the limit
    assert available(ccrm, a) == (Decimal("1000.00"), Decimal("0.00"))
    assert count(ccrm, Transaction) == before + 2
    with pytest.raises(Vetoed, match=r"over the credit limit by 0\.01 EUR"):
        book.invoice(a, "0.01", "I3")


def test_no_profile_means_no_check_unless_required(book: Book, make_ccrm) -> None:
    a = book.customer("A")
    book.invoice(a, "999999", "I1")
    strict = Book(make_ccrm(require_profile=True))
    with pytest.raises(Vetoed, match="no credit profile"):
        strict.invoice(a, "1", "I2")


def test_hold_refuses_every_invoice_and_is_audited(book: Book, ccrm: CRM) -> None:
    a = book.customer("A")
    book.profile(a, limit=Decimal(100000))
    with ccrm.unit_of_work("carl") as uow:
        services.hold(uow, a, "bounced cheque")
    with pytest.raises(Vetoed, match=r"on credit hold \(bounced cheque\)"):
        book.invoice(a, "1", "I1")
    with ccrm.unit_of_work(read_only=True) as uow:
        ch = uow.session.scalars(select(CreditProfileChange).where(CreditProfileChange.action == "hold")).one()
        assert (ch.actor, ch.before["status"], ch.after["status"], ch.reason) == ("carl", "good", "hold", "bounced cheque")
        assert uow.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.entity == "credit_profile",
                                                                                     AuditEntry.action == "hold")) == 1
    with ccrm.unit_of_work() as uow, pytest.raises(Conflict, match="already on credit hold"):
        services.hold(uow, a, "again")


def test_release_customer_lifts_the_hold_until_expiry(book: Book, ccrm: CRM) -> None:
    a = book.customer("A")
    book.profile(a, limit=Decimal(100))
    with ccrm.unit_of_work() as uow:
        services.hold(uow, a, "review")
    with ccrm.unit_of_work("carl") as uow:
        r = services.release(uow, a, ReleaseRequest(reason="director approved", days=3))
        assert r.expires_at - r.created_at == dt.timedelta(days=3)
    # the customer release also lets it over the limit while it lasts
    book.invoice(a, "150", "I1")
    with ccrm.unit_of_work() as uow:
        assert services.get_profile(uow, a).status == "watch"
        uow.session.execute(CreditRelease.__table__.update().values(expires_at=services.utcnow() - dt.timedelta(seconds=1)))
    with pytest.raises(Vetoed, match="over the credit limit"):
        book.invoice(a, "1", "I2")


def test_release_of_one_document(book: Book, ccrm: CRM) -> None:
    a = book.customer("A")
    book.profile(a, limit=Decimal(100))
    with ccrm.unit_of_work() as uow:
        services.hold(uow, a, "review")
        services.release(uow, a, ReleaseRequest(reason="urgent order", reference="I-OK"))
    book.invoice(a, "50", "I-OK")
    with pytest.raises(Vetoed, match="on credit hold"):
        book.invoice(a, "50", "I-OTHER")
    with ccrm.unit_of_work() as uow:
        assert services.get_profile(uow, a).status == "hold"


def test_a_new_hold_ends_a_customer_release(book: Book, ccrm: CRM) -> None:
    a = book.customer("A")
    book.profile(a, limit=Decimal(100))
    with ccrm.unit_of_work() as uow:
        services.release(uow, a, ReleaseRequest(reason="season peak", days=30))
        services.hold(uow, a, "fraud alert")
    with pytest.raises(Vetoed, match="fraud alert"):
        book.invoice(a, "1", "I1")


def test_release_needs_the_permission(book: Book, ccrm: CRM) -> None:
    a = book.customer("A")
    book.users(test=["admin"], anna=["sales"], mia=["manager"], carl=["credit_controller"])
    with ccrm.unit_of_work("mia") as uow:
        services.hold(uow, a, "review")  # managers may hold ...
    for who in ("anna", "mia"):  # ... but only credit controllers (and admins) release
        with pytest.raises(PermissionDenied, match=f"user {who} lacks credit.release"), ccrm.unit_of_work(who) as uow:
            services.release(uow, a, ReleaseRequest(reason="please"))
    assert count(ccrm, CreditRelease) == 0
    with ccrm.unit_of_work("carl") as uow:
        services.release(uow, a, ReleaseRequest(reason="paid in cash"))
    assert count(ccrm, CreditRelease) == 1


def test_blocked_cannot_be_released(book: Book, ccrm: CRM) -> None:
    a = book.customer("A")
    book.profile(a, status="blocked", reason="insolvency")
    with pytest.raises(Vetoed, match=r"blocked \(insolvency\)"):
        book.invoice(a, "1", "I1")
    with ccrm.unit_of_work() as uow, pytest.raises(Conflict, match="is blocked"):
        services.release(uow, a, ReleaseRequest(reason="x"))


def test_overdue_beyond_grace_is_refused(make_ccrm) -> None:
    crm = make_ccrm(overdue_grace_days=10)
    b = Book(crm)
    a = b.customer("A")
    b.profile(a, limit=Decimal(100000))
    b.invoice(a, "100", "OLD", days_ago=50, due_days_ago=10)  # 10 days past due: within grace
    b.invoice(a, "100", "I2")
    with crm.unit_of_work() as uow:  # backdate the due date one more day
        uow.session.execute(Transaction.__table__.update().where(Transaction.reference == "OLD")
                            .values(due_date=(services.utcnow() - dt.timedelta(days=11)).date()))
    with pytest.raises(Vetoed, match=r"1 invoice\(s\) overdue beyond the 10-day grace \(oldest 11 days past due\)"):
        b.invoice(a, "1", "I3")
    b.pay(a, "100", "P1", invoice="OLD")
    b.invoice(a, "1", "I3")


def test_limit_in_another_currency(book: Book, ccrm: CRM) -> None:
    a = book.customer("A", currency="EUR")
    with pytest.raises(InvalidInput, match="a limit in USD cannot be checked: the accounts of customer 1 are kept in EUR"):
        book.profile(a, limit=Decimal(1000), currency="USD")
    # a second account in USD: the EUR limit cannot cover a USD invoice
    from crmcore.schemas import AccountCreate, TransactionCreate
    book.profile(a, limit=Decimal(1000))
    with ccrm.unit_of_work() as uow:
        usd = uow.accounts.open(a, AccountCreate(currency="USD")).id
    with pytest.raises(Vetoed, match="the credit limit is in EUR; a document in USD cannot be checked against it"), \
            ccrm.unit_of_work() as uow:
        uow.accounts.post(a, TransactionCreate(kind="invoice", amount=Decimal(1), reference="U1"), account_id=usd)


def test_payment_larger_than_what_is_open(book: Book, ccrm: CRM, make_ccrm) -> None:
    a = book.customer("A")
    book.invoice(a, "100", "I1")
    book.invoice(a, "50", "I2")
    with pytest.raises(Vetoed, match=r"payment of 60\.00 is larger than the 50\.00 still open on invoice I2"):
        book.pay(a, "60", "P1", invoice="I2")
    with pytest.raises(Vetoed, match=r"payment of 150\.01 is larger than the 150\.00 open on account"):
        book.pay(a, "150.01", "P2")
    with pytest.raises(InvalidInput, match="customer 1 has no charge or invoice 'NOPE'; nothing was posted"):
        book.pay(a, "1", "P3", invoice="NOPE")  # the core refuses it (applies_to), before any guard
    assert count(ccrm, Transaction) == 2
    book.pay(a, "150", "P4")
    Book(make_ccrm(allow_overpayment=True)).pay(a, "10", "P5")  # a credit balance, when allowed


def test_check_command_figures(book: Book, ccrm: CRM) -> None:
    a = book.customer("A")
    book.profile(a, limit=Decimal(1000))
    book.invoice(a, "600", "I1")
    with ccrm.unit_of_work(read_only=True) as uow:
        ok = services.check(uow, a, Decimal(400))
        bad = services.check(uow, a, Decimal("400.01"))
        with pytest.raises(InvalidInput):
            services.check(uow, a, Decimal(0))
    assert ok.ok and ok.exposure == Decimal("1000.00") and ok.open_receivable == Decimal("600.00")
    assert not bad.ok and bad.reasons == ["over the credit limit by 0.01 EUR"]


def test_bulk_import_refuses_rows_over_the_limit_counting_the_batch(book: Book, ccrm: CRM, ccli, tmp_path) -> None:
    a = book.customer("A")
    book.profile(a, limit=Decimal(1000))
    book.invoice(a, "500", "I0")
    csv = tmp_path / "t.csv"
    now = services.utcnow().strftime("%Y-%m-%dT%H:%M:%S")
    csv.write_text("customer_ref,kind,amount,occurred_at,reference,applies_to\n"
                   f"A,invoice,300,{now},B1,\nA,invoice,300,{now},B2,\nA,payment,100,{now},B3,I0\n"
                   f"A,payment,900,{now},B4,\nA,payment,50,{now},B5,NOPE\n")
    res = ccli("import", "transactions", str(csv))
    out = res.output
    # B2 would make 500 + 300 + 300 = 1100 > 1000; B4 pays more than is open; B5 names no invoice
    assert set(_refs(ccrm)) == {"I0", "B1", "B3"}, out
    assert "over the credit limit" in out and "larger than" in out and "has no charge or invoice 'NOPE'" in out


def _refs(crm: CRM) -> list:
    with crm.unit_of_work(read_only=True) as uow:
        return list(uow.session.scalars(select(Transaction.reference)))


def test_merge_repoints_credit_rows(book: Book, ccrm: CRM) -> None:
    a, b = book.customer("A"), book.customer("B")
    book.profile(b, limit=Decimal(10))
    with ccrm.unit_of_work() as uow:
        services.hold(uow, b, "x")
        uow.customers.merge(b, a)
    with ccrm.unit_of_work(read_only=True) as uow:
        assert services.get_profile(uow, a).status == "hold"
        assert uow.session.scalar(select(func.count()).select_from(CreditProfileChange)
                                  .where(CreditProfileChange.customer_id == b)) == 0
