"""The win guard with sales_automation enabled, and credit without it."""
from __future__ import annotations

from decimal import Decimal

import crm_credit.plugin as CREDIT
import crm_sales_automation.plugin as sales_plugin  # installed by the project's set-up: a missing plugin is a failure
import pytest
from crm_credit import services
from crm_credit.testing import Book
from crm_sales_automation.testing import Sales

from crmcore import CRM, Vetoed


@pytest.fixture
def both(make_crm):
    def f(**credit: object) -> CRM:
        return make_crm(plugins=[sales_plugin, CREDIT], config={"credit": credit})
    return f


def _setup(crm: CRM, limit: str = "1000") -> tuple[Book, Sales, int]:
    book, sales = Book(crm), Sales(crm)
    a = book.customer("ACME")
    book.profile(a, limit=Decimal(limit))
    return book, sales, a


def test_win_over_the_limit_is_refused_when_checking_on_win(both) -> None:
    crm = both(check_point="win")
    book, sales, a = _setup(crm)
    book.invoice(a, "700", "I1")
    small, big = sales.opp(a, "300", "small"), sales.opp(a, "301", "big")
    with pytest.raises(Vetoed, match=r"credit.*sales_before_opportunity_won.*over the credit limit by 1.00 EUR"):
        sales.win(big)
    sales.win(small)  # 700 + 300 = limit
    # the won deal is exposure now (sales_uninvoiced_won): nothing more fits, not even on win
    with pytest.raises(Vetoed, match=r"won not invoiced 300\.00"):
        sales.win(sales.opp(a, "1", "tiny"))
    # checking on win only: invoices are not checked
    book.invoice(a, "5000", "I2")


def test_hold_refuses_the_win_and_a_release_lets_it_through(both) -> None:
    crm = both(check_point="both")
    book, sales, a = _setup(crm, "100000")
    deal = sales.opp(a, "10", "deal")
    with crm.unit_of_work() as uow:
        services.hold(uow, a, "review")
    with pytest.raises(Vetoed, match="on credit hold"):
        sales.win(deal)
    with pytest.raises(Vetoed, match="on credit hold"):
        book.invoice(a, "1", "I1")
    from crm_credit.schemas import ReleaseRequest
    with crm.unit_of_work() as uow:
        services.release(uow, a, ReleaseRequest(reason="deal approved", reference=f"opportunity:{deal}"))
    sales.win(deal)
    with pytest.raises(Vetoed, match="on credit hold"):
        book.invoice(a, "1", "I1")


def test_invoice_check_counts_won_deals_not_yet_invoiced(both) -> None:
    crm = both(check_point="invoice")
    book, sales, a = _setup(crm)
    sales.win(sales.opp(a, "5000", "huge"))  # not checked on win
    with pytest.raises(Vetoed, match=r"exposure 5,001.00 EUR = open 0.00 \+ won not invoiced 5,000.00 \+ new 1.00"):
        book.invoice(a, "1", "I1")


def test_credit_alone_ignores_the_win_hook(make_crm) -> None:
    crm = make_crm(plugins=[CREDIT], config={"credit": {"check_point": "both"}})
    assert crm.hooks.call("sales_uninvoiced_won", uow=None, customer_id=1, currency="EUR") == []
    book = Book(crm)
    a = book.customer("ACME")
    book.profile(a, limit=Decimal(10))
    with pytest.raises(Vetoed, match="over the credit limit"):
        book.invoice(a, "11", "I1")


def test_invoice_on_win_is_not_counted_twice(make_crm) -> None:
    """With invoice_on_win and checks at both points, the deal's invoice is checked once as exposure:
    the won-not-invoiced amount is cleared before the invoice's own posting guard runs."""
    crm = make_crm(plugins=[sales_plugin, CREDIT], config={"credit": {"check_point": "both"},
                                                             "sales_automation": {"invoice_on_win": True}})
    _book, sales, a = _setup(crm, "10000")
    deal = sales.opp(a, "8000", "kitchen")
    sales.win(deal)  # 8,000 against 10,000 once; counted twice it would be refused as 16,000
    with crm.unit_of_work() as uow:
        assert uow.accounts.posted(a, f"SALES-OPP-{deal}") is not None  # the invoice was posted on win
        check = services.check(uow, a, Decimal(2000), lock=False)  # 8,000 open + 2,000 fits exactly
    assert check.ok
