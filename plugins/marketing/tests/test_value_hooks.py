"""Marketing answers value_analysis's published hooks: the cost per contact (``value_customer_costs``),
and the share of purchases attributed to campaigns and of spend in response to price offers
(``value_loyalty_signals``), each checked against an answer worked out by hand."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import crm_marketing.plugin as PLUGIN
import crm_value_analysis.plugin as VALUE
import pytest
from crm_marketing import services, value_hooks
from crm_marketing.models import Target
from crm_marketing.schemas import CampaignCreate, ConsentSet, CostCreate
from crm_marketing.testing import Shop
from crm_value_analysis import services as value
from sqlalchemy import update

from crmcore import CRM

SENT = dt.datetime(2025, 3, 3, 9, tzinfo=dt.UTC)
END = dt.date(2026, 1, 1)


def _send(crm: CRM, name: str, ids: list[int], at: dt.datetime) -> None:
    with crm.unit_of_work("test") as uow:
        c = services.get_campaign(uow, name)
        uow.session.execute(update(Target).where(Target.campaign_id == c.id, Target.customer_id.in_(ids))
                            .values(status="sent", sent_at=at))


def _campaign(crm: CRM, name: str, ids: list[int], **kw: Any) -> None:
    with crm.unit_of_work("test") as uow:
        services.create_segment(uow, f"seg-{name}", members=[f"#{i}" for i in ids])
        c = services.create_campaign(uow, CampaignCreate(name=name, channel="email", segments=[f"seg-{name}"],
                                                         attribution_days=30, subject="Hi", **kw))
        services.launch(uow, c, now=SENT)


@pytest.fixture
def world(make_crm: Callable[..., CRM]) -> tuple[CRM, list[int]]:
    """Spring (300 EUR, 4 delivered: 75 each) and Sale (a price offer without a cost: the setting's
    0.50 per contact, delivered to K0 and K1 40 days later); invoices placed around their windows."""
    crm = make_crm(plugins=[PLUGIN, VALUE], config={"marketing": {"cost_per_contact": "0.50"}})
    shop = Shop(crm)
    ids = [shop.customer(f"K{i}", country="DE") for i in range(5)]
    with crm.unit_of_work("test") as uow:
        for i in ids:
            services.set_consent(uow, i, ConsentSet(channel="email", status="opt_in"))
    _campaign(crm, "Spring", ids[:4])
    _campaign(crm, "Sale", ids[:2], price_offer=True)
    with crm.unit_of_work("test") as uow:
        spring = services.get_campaign(uow, "Spring")
        services.add_cost(uow, spring, CostCreate(amount="300.00", reference="AGENCY"))
        services.add_cost(uow, spring, CostCreate(amount="10.00", reference="US-ADS", currency="USD"))  # not the house currency
    _send(crm, "Spring", ids[:4], SENT)
    _send(crm, "Sale", ids[:2], SENT + dt.timedelta(days=40))
    k0, k1, k2, _, k4 = ids
    shop.invoice(k0, "100.00", SENT + dt.timedelta(days=2))     # Spring's window
    shop.invoice(k0, "300.00", SENT + dt.timedelta(days=45))    # Sale's window: on price
    shop.invoice(k0, "100.00", SENT + dt.timedelta(days=100))   # no campaign
    shop.invoice(k1, "200.00", SENT - dt.timedelta(days=1), currency="USD")  # before any contact
    shop.invoice(k1, "50.00", SENT + dt.timedelta(days=41), currency="USD")  # Sale's window, another currency
    shop.invoice(k2, "80.00", SENT + dt.timedelta(days=29))     # the last day of Spring's window
    shop.invoice(k4, "70.00", SENT + dt.timedelta(days=3))      # never contacted
    return crm, ids


def _answers(crm: CRM, hook: Callable[..., None], ids: list[int], start: dt.date | None) -> dict[str, Mapping[int, float]]:
    got: dict[str, Mapping[int, float]] = {}
    with crm.unit_of_work("test", read_only=True) as uow:
        hook(uow=uow, customer_ids=ids, start=start, end=END, register=got.__setitem__)
    return got


def test_cost_per_contact(world: tuple[CRM, list[int]]) -> None:
    crm, ids = world
    k0, k1, k2, k3, _ = ids
    got = _answers(crm, value_hooks.value_customer_costs, ids, None)
    assert got == {"marketing.contacts": pytest.approx({k0: 75.5, k1: 75.5, k2: 75.0, k3: 75.0})}
    later = _answers(crm, value_hooks.value_customer_costs, ids, (SENT + dt.timedelta(days=35)).date())
    assert later == {"marketing.contacts": pytest.approx({k0: 0.5, k1: 0.5})}  # only Sale's deliveries
    assert _answers(crm, value_hooks.value_customer_costs, [k2, k3], None) == {
        "marketing.contacts": pytest.approx({k2: 75.0, k3: 75.0})}


def test_campaign_and_discounted_shares(world: tuple[CRM, list[int]]) -> None:
    crm, ids = world
    k0, k1, k2, _, k4 = ids
    got = _answers(crm, value_hooks.value_loyalty_signals, ids, None)
    assert got["campaign_share"] == pytest.approx({k0: 2 / 3, k1: 1 / 2, k2: 1.0, k4: 0.0})
    # spend in EUR only: k1 bought in USD (on the price offer too), so it has no share
    assert got["discounted_share"] == pytest.approx({k0: 0.6, k2: 0.0, k4: 0.0})
    window = _answers(crm, value_hooks.value_loyalty_signals, ids, (SENT + dt.timedelta(days=30)).date())
    assert window["campaign_share"] == pytest.approx({k0: 1 / 2, k1: 1.0})


def test_value_run_counts_marketing_costs_and_factors(world: tuple[CRM, list[int]]) -> None:
    crm, _ = world
    with crm.unit_of_work("test") as uow:
        out = value.run_analysis(uow, as_of=END - dt.timedelta(days=1))
    assert "marketing.contacts" in out.summary["profit"]["cost_sources"]
    assert {"price_sensitivity", "voluntariness"} <= set(out.summary["loyalty"]["used"])


def test_without_campaigns_nothing_is_answered(make_crm: Callable[..., CRM]) -> None:
    crm = make_crm(plugins=[PLUGIN])
    shop = Shop(crm)
    k = shop.customer("K", country="DE")
    shop.invoice(k, "10.00", SENT)
    assert _answers(crm, value_hooks.value_customer_costs, [k], None) == {}
    assert _answers(crm, value_hooks.value_loyalty_signals, [k], None) == {}
