"""Money round trips, generated: any amount a currency allows is stored and read back exactly, and
the balance stays the exact sum of the entries, on SQLite (doubles and scaled integers) and
PostgreSQL (NUMERIC) alike; anything beyond the currency's decimals or the limits is refused."""
from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import CRM
from crmcore.db.types import BALANCE_LIMIT
from crmcore.errors import Conflict, InvalidInput
from crmcore.schemas import AccountCreate, CustomerCreate, TransactionCreate
from crmcore.schemas.account import max_amount, minor_units

CURRENCIES = ["EUR", "JPY", "KWD", "CLF", "XAU"]
_refs = itertools.count()


@st.composite
def amounts(draw: st.DrawFn, currency: str) -> Decimal:
    """A valid amount of ``currency``: its decimals at most, 15 significant digits, below the limit."""
    digits = minor_units(currency)
    limit = int(max_amount(currency).scaleb(digits)) - 1
    units = draw(st.one_of(st.integers(1, 10**4), st.integers(1, limit)))
    return Decimal(units).scaleb(-digits)


@pytest.fixture
def ledgers(crm: CRM) -> dict[str, tuple[int, int]]:
    """One customer per currency, each with its default account: {currency: (customer, account)}."""
    out = {}
    with crm.unit_of_work() as uow:
        for cur in CURRENCIES:
            c = uow.customers.create(CustomerCreate(name=f"In {cur}"))
            out[cur] = (c.id, uow.accounts.open(c.id, AccountCreate(currency=cur)).id)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_amounts_round_trip_and_balances_stay_exact(crm, ledgers, data):
    currency = data.draw(st.sampled_from(CURRENCIES))
    cid, acc = ledgers[currency]
    amount = data.draw(amounts(currency))
    kind = data.draw(st.sampled_from(["invoice", "payment", "credit_note"]))
    ref = f"R{next(_refs)}"
    try:
        with crm.unit_of_work() as uow:
            _, created = uow.accounts.post(cid, TransactionCreate(kind=kind, amount=amount, reference=ref))
            assert created
    except Conflict as e:  # only ever the balance limit
        assert "beyond the limit" in str(e)
        return
    with crm.unit_of_work(read_only=True) as uow:
        stored = uow.accounts.posted(cid, ref)
        assert stored is not None and stored.amount == amount
        balance, summed = uow.accounts.verify_balance(acc)
        assert balance == summed and abs(balance) <= BALANCE_LIMIT


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(currency=st.sampled_from(["EUR", "JPY", "KWD"]), extra=st.integers(1, 9), scale=st.integers(0, 2))
def test_more_decimals_than_the_currency_has_are_refused(crm, ledgers, currency, extra, scale):
    cid, _ = ledgers[currency]
    digits = minor_units(currency)
    amount = Decimal(10**scale + extra).scaleb(-(digits + 1)) + Decimal(1)  # one decimal too many
    if amount == amount.quantize(Decimal(1).scaleb(-digits)):
        return
    with pytest.raises(InvalidInput, match="decimal places|whole number"), crm.unit_of_work() as uow:
        uow.accounts.post(cid, TransactionCreate(kind="invoice", amount=amount, reference=f"D{next(_refs)}"))
