"""The ``value_segment_columns`` hook: the latest run's segment fields as a selectable other plugins join."""
from __future__ import annotations

import datetime as dt

from crm_value_analysis import services
from crm_value_analysis.models import CustomerValue, ValueRun
from crm_value_analysis.published import SEGMENT_COLUMNS
from crm_value_analysis.testing import Base, d
from sqlalchemy import Select, select

from crmcore import CRM

COLUMNS = ["customer_id", "rfm_segment", "value_tier", "churn_risk", "p_alive", "clv", "loyalty"]


def published(crm: CRM) -> list[tuple[object, ...]]:
    with crm.unit_of_work(read_only=True) as uow:
        query = uow.hooks.call("value_segment_columns", uow=uow)
        assert isinstance(query, Select)
        assert list(query.selected_columns.keys()) == COLUMNS
        return sorted(tuple(r) for r in uow.session.execute(query))


def stored(crm: CRM, as_of: dt.date) -> list[tuple[object, ...]]:
    with crm.unit_of_work(read_only=True) as uow:
        run_id = uow.session.scalar(select(ValueRun.id).where(ValueRun.as_of == as_of))
        rows = uow.session.scalars(select(CustomerValue).where(CustomerValue.run_id == run_id))
        return sorted((r.customer_id, r.segment, r.tier, r.churn_risk, r.p_alive, r.clv_probabilistic, r.loyalty)
                      for r in rows)


def test_the_published_names_are_the_contract() -> None:
    assert list(SEGMENT_COLUMNS) == COLUMNS[1:]


def test_no_run_yet_publishes_no_rows(vcrm: CRM, base: Base) -> None:
    base.buys(base.customer("A"), [10, 20], "100")
    assert published(vcrm) == []


def test_it_answers_the_latest_run_only(vcrm: CRM, base: Base) -> None:
    ids = [base.customer(f"C{i}") for i in range(25)]
    for n, cid in enumerate(ids):
        base.buys(cid, [10 + n, 60 + n, 120 + (n % 5) * 7][: 1 + n % 3], str(50 + 10 * n))
    with vcrm.unit_of_work("analyst") as uow:
        services.run_analysis(uow, as_of=d(200))
    late = base.customer("Late")  # only in the later run
    base.buys(late, [210, 220], "900")
    with vcrm.unit_of_work("analyst") as uow:  # the later as_of is the latest, whatever the run order
        services.run_analysis(uow, as_of=d(250))
    with vcrm.unit_of_work("analyst") as uow:
        services.run_analysis(uow, as_of=d(150))
    rows = published(vcrm)
    assert rows == stored(vcrm, d(250)) and rows != stored(vcrm, d(200))
    assert {r[0] for r in rows} == {*ids, late}
    assert len({r[2] for r in rows}) > 1  # several tiers: real values, not a constant
