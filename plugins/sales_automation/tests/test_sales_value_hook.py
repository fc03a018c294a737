"""value_analysis's loyalty index counts referrals (factor A31) from sales through its published
``value_loyalty_signals`` hook: used when sales records referrals, "no data" when none are."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import crm_sales_automation.plugin as SALES
import crm_value_analysis.plugin as VALUE
import numpy as np
from crm_sales_automation import services
from crm_sales_automation.models import Lead
from crm_sales_automation.schemas import LeadCreate
from crm_value_analysis import services as value
from crm_value_analysis.models import CustomerValue
from crm_value_analysis.testing import bulk_load, d
from sqlalchemy import select, update

from crmcore import CRM

N = 12
AS_OF = d(729)
ONLY_REFERRALS = {"duration": 0, "frequency": 0, "frequency_trend": 0, "spend": 0, "cross_buying": 0, "satisfaction": 0,
                  "share_of_wallet": 0, "referrals": 1, "price_sensitivity": 0, "voluntariness": 0}


def _at(day: int) -> dt.datetime:
    return dt.datetime.combine(d(day), dt.time(12), tzinfo=dt.UTC)


def _crm(make_crm: Callable[..., CRM], weights: dict[str, float] | None = None) -> tuple[CRM, np.ndarray]:
    config = {"value_analysis": {"loyalty_weights": weights}} if weights else {}
    crm = make_crm(plugins=[SALES, VALUE], config=config)
    c = np.repeat(np.arange(N), 3)
    ids = bulk_load(crm, c, (np.arange(c.size) * 37) % 700, np.full(c.size, 100.0), N)
    return crm, ids


def test_the_loyalty_index_uses_the_referrals_sales_records(make_crm: Callable[..., CRM]) -> None:
    crm, ids = _crm(make_crm, ONLY_REFERRALS)
    a, b, c = (int(x) for x in ids[:3])
    with crm.unit_of_work() as uow:
        for referred in ids[3:6]:  # a referred three customers inside the window
            services.set_referral(uow, int(referred), a, at=_at(400))
        services.set_referral(uow, int(ids[6]), b, at=_at(500))  # b one customer and one lead
        lead = services.add_lead(uow, LeadCreate(name="Lena", referred_by=b))
        uow.session.execute(update(Lead).where(Lead.id == lead.id).values(created_at=_at(600)))
        services.set_referral(uow, int(ids[7]), c, at=_at(800))  # after the window: not counted
    with crm.unit_of_work() as uow:
        out = value.run_analysis(uow, as_of=AS_OF)
        run = value.latest_run(uow)
        got = dict(uow.session.execute(select(CustomerValue.customer_id, CustomerValue.loyalty_referrals)
                                       .where(CustomerValue.run_id == run.id)).all())
    assert "referrals" in out.summary["loyalty"]["used"]
    assert out.summary["loyalty"]["weights"] == {"referrals": 1.0}
    # percentile ranks: a (3) first, b (2) next, everybody else (0, c's referral is after the window) tied
    assert got[a] == 1.0 and 0 < got[b] < 1.0
    assert len({got[int(x)] for x in ids[2:]}) == 1 and got[c] < got[b]


def test_without_referrals_the_factor_is_left_out(make_crm: Callable[..., CRM]) -> None:
    crm, _ = _crm(make_crm)
    with crm.unit_of_work() as uow:
        out = value.run_analysis(uow, as_of=AS_OF)
    assert out.summary["loyalty"]["left_out"].get("referrals") in ("no data", "weight 0")
    assert "referrals" not in out.summary["loyalty"]["used"]
