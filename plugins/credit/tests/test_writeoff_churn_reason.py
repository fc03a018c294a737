"""A write-off tells value_analysis, through its published hook, that the customer left owing
money ("malicious" churn reason); without value_analysis, or with that reason configured away,
the write-off works the same and records nothing."""
from __future__ import annotations

from decimal import Decimal

import crm_credit.plugin as CREDIT
import crm_value_analysis.plugin as VALUE
import pytest
from crm_credit import services
from crm_credit.schemas import WriteOffRequest
from crm_credit.testing import Book
from crm_value_analysis.models import ChurnReason
from sqlalchemy import select

from crmcore import CRM


def _customer_with_an_old_invoice(crm: CRM) -> None:
    book = Book(crm)
    book.invoice(book.customer("ACME"), "300", "INV-1", days_ago=200)


def _write_off(crm: CRM, amount: str) -> None:
    with crm.unit_of_work("test") as uow:
        target = uow.customers.get_by_ref("ACME").id
        services.write_off(uow, target, WriteOffRequest(invoice="INV-1", amount=Decimal(amount), reason="bankrupt"))


def _reasons(crm: CRM) -> list[tuple[str, str]]:
    with crm.unit_of_work(read_only=True) as uow:
        return [(r.reason, r.source) for r in uow.session.scalars(select(ChurnReason))]


def test_a_write_off_records_the_customer_lost_owing_money(make_crm) -> None:
    crm = make_crm(plugins=[CREDIT, VALUE])
    _customer_with_an_old_invoice(crm)
    _write_off(crm, "100")
    assert _reasons(crm) == [("malicious", "credit.write_off")]
    _write_off(crm, "50")  # a second write-off the same day: still one record
    assert _reasons(crm) == [("malicious", "credit.write_off")]


@pytest.mark.parametrize("config", [{"value_analysis": {"churn_reasons": ["natural", "competitive"]}}])
def test_a_reason_configured_away_records_nothing_and_the_write_off_stands(make_crm, config) -> None:
    crm = make_crm(plugins=[CREDIT, VALUE], config=config)
    _customer_with_an_old_invoice(crm)
    _write_off(crm, "100")
    assert _reasons(crm) == []
    with crm.unit_of_work(read_only=True) as uow:
        assert uow.accounts.posted(uow.customers.get_by_ref("ACME").id, "WO-INV-1") is not None
