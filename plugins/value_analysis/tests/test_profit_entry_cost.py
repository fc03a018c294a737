"""Cost of goods from the entry itself (``transactions.cost``): the entry's cost when it has one,
else the category's margin, else the uniform margin; worked out by hand on a small base."""
from __future__ import annotations

from typing import Any

import pytest
from crm_value_analysis import services
from crm_value_analysis.models import CustomerValue
from crm_value_analysis.testing import Base, d
from sqlalchemy import select

from crmcore import CRM


def _profits(crm: CRM) -> dict[int, tuple[float, float]]:
    with crm.unit_of_work() as uow:
        rows = uow.session.execute(select(CustomerValue.customer_id, CustomerValue.gross_margin, CustomerValue.profit)).all()
    return {int(c): (float(g), float(p)) for c, g, p in rows}


def _run(crm: CRM, **overrides: Any) -> dict[str, Any]:
    with crm.unit_of_work() as uow:
        out = services.run_analysis(uow, as_of=d(100), settings=services.settings_for(uow, overrides))
    return out.summary


def test_entry_cost_wins_over_the_margins(vcrm: CRM, base: Base) -> None:
    a, b, c = base.customer("A"), base.customer("B"), base.customer("C")
    base.buy(a, 10, "1000", category="hw", cost="900")   # own cost: margin 100
    base.buy(a, 20, "200", category="hw")                # no cost: hw margin 10% -> 20
    base.buy(b, 15, "500", category="sw", cost="100")    # own cost: margin 400
    base.buy(b, 30, "100", kind="credit_note", category="sw", cost="20")  # returned: -(100 - 20) = -80
    base.buy(c, 40, "300")                               # no category, no cost: uniform 30% -> 90
    summary = _run(vcrm, category_margins={"hw": 0.10, "sw": 0.60}, margin=0.30)
    got = _profits(vcrm)
    assert got[a][0] == pytest.approx(120.0)
    assert got[b][0] == pytest.approx(320.0)
    assert got[c][0] == pytest.approx(90.0)
    assert summary["profit"]["margins"] == "per_entry"
    assert summary["profit"]["total_gross_margin"] == "530.00"
    assert summary["value_basis"] == "profit"
    assert got[b][1] > got[a][1]  # by revenue A (1,200 against 500) leads; by profit B does


def test_entry_costs_without_category_margins(vcrm: CRM, base: Base) -> None:
    a, b = base.customer("A"), base.customer("B")
    base.buy(a, 10, "1000", cost="990")  # big revenue, margin 10
    base.buy(b, 10, "100")               # small revenue, uniform 25% -> 25
    summary = _run(vcrm, margin=0.25)
    got = _profits(vcrm)
    assert (got[a][0], got[b][0]) == (pytest.approx(10.0), pytest.approx(25.0))
    assert summary["profit"]["margins"] == "per_entry" and summary["value_basis"] == "profit"


def test_no_entry_cost_keeps_the_uniform_margin(vcrm: CRM, base: Base) -> None:
    a = base.customer("A")
    base.buy(a, 10, "1000")
    summary = _run(vcrm, margin=0.25)
    assert _profits(vcrm)[a][0] == pytest.approx(250.0)
    assert summary["profit"]["margins"] == "uniform" and summary["value_basis"] == "revenue"
