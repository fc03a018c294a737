"""Issue 23 §4: no path around the check — warn mode on a win, a lost deal never won after all,
a refused document re-posted meets the check again (a document release passes it once)."""
from __future__ import annotations

from decimal import Decimal

import crm_credit.plugin as CREDIT
import crm_sales_automation.plugin as sales_plugin  # installed by the project's set-up
import pytest
from crm_credit.models import CreditWarning
from crm_credit.schemas import ReleaseRequest
from crm_credit.testing import Book
from crm_sales_automation.testing import Sales
from sqlalchemy import select

from crmcore import CRM, Conflict, Vetoed


@pytest.fixture
def both(make_crm):
    def f(**credit: object) -> CRM:
        return make_crm(plugins=[sales_plugin, CREDIT], config={"credit": credit})
    return f


def test_warn_mode_passes_a_win_and_records_the_deal(both) -> None:
    crm = both(check_point="win", mode="warn")
    book, sales = Book(crm), Sales(crm)
    a = book.customer("ACME")
    book.profile(a, limit=Decimal(100))
    deal = sales.opp(a, "500", "big")
    sales.win(deal)
    with crm.unit_of_work(read_only=True) as uow:
        (w,) = uow.session.scalars(select(CreditWarning)).all()
        assert (w.reference, w.amount) == (f"opportunity:{deal}", Decimal("500.00"))


def test_a_lost_deal_cannot_be_won_so_no_win_skips_the_check(both) -> None:
    crm = both(check_point="both")
    book, sales = Book(crm), Sales(crm)
    a = book.customer("ACME")
    book.profile(a, limit=Decimal(100))
    deal = sales.opp(a, "500", "big")
    with pytest.raises(Vetoed, match="over the credit limit"):
        sales.win(deal)
    sales.lose(deal)
    with pytest.raises(Conflict, match="already lost"):
        sales.win(deal)


def test_a_refused_document_reposted_is_checked_again_and_a_document_release_passes_it_once(ccrm: CRM, book: Book) -> None:
    a = book.customer("A")
    book.profile(a, limit=Decimal(100))
    for _ in range(2):
        with pytest.raises(Vetoed, match="over the credit limit"):
            book.invoice(a, "500", "INV-1")
    from crm_credit import services

    with ccrm.unit_of_work("test") as uow:
        services.release(uow, a, ReleaseRequest(reason="director approved", reference="INV-1", days=1))
    book.invoice(a, "500", "INV-1")
    book.invoice(a, "500", "INV-1")  # the same document again: the core's no-op, nothing more owed
    with pytest.raises(Vetoed, match="over the credit limit"):  # the release was for that document only
        book.invoice(a, "1", "INV-2")
    with ccrm.unit_of_work(read_only=True) as uow:
        (acc,) = uow.accounts.list(a)
        assert acc.balance == Decimal("500.00")
