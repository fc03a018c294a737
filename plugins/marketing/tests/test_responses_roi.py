"""Responses, attribution, ROI (each cost once), lift against the control group, A/B winners."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from crm_marketing import delivery, reporting, responses, services
from crm_marketing.models import Target
from crm_marketing.schemas import CampaignCreate, ConsentSet, CostCreate, ResponseCreate
from crm_marketing.testing import Shop
from sqlalchemy import select, update

from crmcore import CRM, Conflict, InvalidInput
from crmcore.db.types import utcnow
from crmcore.schemas import InteractionCreate

SENT = dt.datetime(2025, 3, 3, 9, tzinfo=dt.UTC)


def setup_campaign(crm: CRM, shop: Shop, n: int, name: str = "C", control: float = 0.0, seed: int = 1,
                   variants: list[dict] | None = None, prefix: str = "K") -> list[int]:
    ids = [shop.customer(f"{prefix}{i}", country="DE") for i in range(n)]
    with crm.unit_of_work("test") as uow:
        for i in ids:
            services.set_consent(uow, i, ConsentSet(channel="email", status="opt_in"))
        services.create_segment(uow, f"seg-{name}", members=[f"#{i}" for i in ids])
        c = services.create_campaign(uow, CampaignCreate(name=name, channel="email", segments=[f"seg-{name}"],
                                                         control_share=control, seed=seed, variants=variants or [],
                                                         attribution_days=30, subject="Hi"))
        services.launch(uow, c, now=SENT)
    return ids


def mark_sent(crm: CRM, name: str, at: dt.datetime = SENT) -> None:
    """Delivery without an adapter: the tests of attribution care about when, not how."""
    with crm.unit_of_work("test") as uow:
        c = services.get_campaign(uow, name)
        uow.session.execute(update(Target).where(Target.campaign_id == c.id, Target.grp == "contact")
                            .values(status="sent", sent_at=at))


def report(crm: CRM, name: str, model: str | None = None) -> dict:
    with crm.unit_of_work("test", read_only=True) as uow:
        return reporting.report(uow, services.get_campaign(uow, name), model)


def test_roi_counts_each_cost_once_with_several_won_deals(mcrm: CRM, shop: Shop) -> None:
    ids = setup_campaign(mcrm, shop, 5)
    mark_sent(mcrm, "C")
    with mcrm.unit_of_work("test") as uow:
        c = services.get_campaign(uow, "C")
        services.add_cost(uow, c, CostCreate(amount="300.00", reference="AGENCY"))
        services.add_cost(uow, c, CostCreate(amount="200.00", reference="PRINT"))
    shop.invoice(ids[0], "1000.00", SENT + dt.timedelta(days=2))
    shop.invoice(ids[0], "500.00", SENT + dt.timedelta(days=5))
    shop.invoice(ids[1], "250.00", SENT + dt.timedelta(days=29))
    shop.invoice(ids[2], "999.00", SENT + dt.timedelta(days=31))  # outside the 30-day window
    shop.invoice(ids[3], "777.00", SENT - dt.timedelta(days=1))  # before the contact
    shop.invoice(ids[4], "40.00", SENT + dt.timedelta(days=3), currency="USD")  # another currency: apart
    r = report(mcrm, "C")
    assert r["attributed_revenue"] == {"EUR": "1750.00", "USD": "40.00"}
    assert r["cost"] == "500.00" and r["attributed_invoices"] == 4
    assert r["roi"] == "2.5000"  # (1750 - 500) / 500: costs once, however many deals
    assert r["conversions"] == 3


def test_attribution_models_with_two_campaigns(mcrm: CRM, shop: Shop) -> None:
    ids = setup_campaign(mcrm, shop, 2, name="First")
    with mcrm.unit_of_work("test") as uow:
        services.create_segment(uow, "again", members=[f"#{i}" for i in ids])
        c2 = services.create_campaign(uow, CampaignCreate(name="Second", channel="email", segments=["again"]))
        services.launch(uow, c2, now=SENT)
    mark_sent(mcrm, "First", SENT)
    mark_sent(mcrm, "Second", SENT + dt.timedelta(days=3))
    shop.invoice(ids[0], "100.00", SENT + dt.timedelta(days=5))  # both touches live
    shop.invoice(ids[1], "60.00", SENT + dt.timedelta(days=1))  # only the first touch
    assert report(mcrm, "First", "last_touch")["attributed_revenue"] == {"EUR": "60.00"}
    assert report(mcrm, "Second", "last_touch")["attributed_revenue"] == {"EUR": "100.00"}
    assert report(mcrm, "First", "first_touch")["attributed_revenue"] == {"EUR": "160.00"}
    assert report(mcrm, "Second", "first_touch")["attributed_revenue"] == {}
    assert report(mcrm, "First", "linear")["attributed_revenue"] == {"EUR": "110.00"}
    assert report(mcrm, "Second", "linear")["attributed_revenue"] == {"EUR": "50.00"}


def test_responses_are_classified_and_checked(mcrm: CRM, shop: Shop) -> None:
    ids = setup_campaign(mcrm, shop, 3)
    outsider = shop.customer("OUT", country="FR")
    mark_sent(mcrm, "C")
    with mcrm.unit_of_work("test") as uow:
        c = services.get_campaign(uow, "C")
        r, created = responses.record(uow, c, ids[0], ResponseCreate(type="clicked", at=SENT + dt.timedelta(hours=2), external_ref="E1"))
        assert created
        assert responses.record(uow, c, ids[0], ResponseCreate(type="clicked", external_ref="E1"))[1] is False
        responses.record(uow, c, ids[1], ResponseCreate(type="purchased", at=SENT + dt.timedelta(days=1)))
        responses.record(uow, c, ids[2], ResponseCreate(type="unsubscribed"))  # now: newer than the opt-in
    with mcrm.unit_of_work("test") as uow:
        c = services.get_campaign(uow, "C")
        with pytest.raises(InvalidInput, match="is not in campaign 'C'"):
            responses.record(uow, c, outsider, ResponseCreate(type="clicked"))
    with mcrm.unit_of_work("test") as uow:
        c = services.get_campaign(uow, "C")
        with pytest.raises(InvalidInput, match="invalid response type 'liked'"):
            responses.record(uow, c, ids[0], ResponseCreate(type="liked"))
    with mcrm.unit_of_work("test") as uow:
        c = services.get_campaign(uow, "C")
        with pytest.raises(Conflict, match="already recorded for customer"):
            responses.record(uow, c, ids[1], ResponseCreate(type="opened", external_ref="E1"))
    with mcrm.unit_of_work("test", read_only=True) as uow:
        assert [(x.status, x.source) for x in services.consents(uow, ids[2])] == [("unsubscribed", "campaign C")]
    r = report(mcrm, "C")
    assert r["responses"]["clicked"]["customers"] == 1 and r["responses"]["clicked"]["rate"] == pytest.approx(1 / 3)
    assert r["responders"] == 2 and r["conversions"] == 1  # unsubscribing is not a response; purchasing converts


def test_response_of_a_suppressed_customer_is_refused(mcrm: CRM, shop: Shop) -> None:
    ids = setup_campaign(mcrm, shop, 2)
    late = shop.customer("LATE", country="DE")
    with mcrm.unit_of_work("test") as uow:
        services.create_segment(uow, "all-de", rule='country = "DE"')
        c = services.create_campaign(uow, CampaignCreate(name="D", channel="email", segments=["all-de"]))
        services.launch(uow, c)
        with pytest.raises(InvalidInput, match="was suppressed"):
            responses.record(uow, c, late, ResponseCreate(type="clicked"))
    assert ids


def test_derive_responses_from_interactions(mcrm: CRM, shop: Shop) -> None:
    ids = setup_campaign(mcrm, shop, 3)
    mark_sent(mcrm, "C")
    with mcrm.unit_of_work("test") as uow:
        uow.interactions.log(ids[0], InteractionCreate(channel="email", direction="inbound", subject="Re: offer",
                                                       occurred_at=SENT + dt.timedelta(days=1)))
        uow.interactions.log(ids[1], InteractionCreate(channel="phone", direction="inbound", kind="complaint",
                                                       subject="stop mailing me", occurred_at=SENT + dt.timedelta(days=2)))
        uow.interactions.log(ids[2], InteractionCreate(channel="phone", direction="inbound", subject="old",
                                                       occurred_at=SENT - dt.timedelta(days=2)))
    with mcrm.unit_of_work("test") as uow:
        assert responses.derive(uow, services.get_campaign(uow, "C")) == 2
    with mcrm.unit_of_work("test") as uow:
        assert responses.derive(uow, services.get_campaign(uow, "C")) == 0  # idempotent
    assert set(report(mcrm, "C")["responses"]) == {"replied", "complained"}


def _simulate(crm: CRM, shop: Shop, n: int, p_contact: float, p_control: float, seed: int) -> dict:
    ids = setup_campaign(crm, shop, n, control=0.5, seed=seed)
    mark_sent(crm, "C")
    rng = np.random.default_rng(seed)
    with crm.unit_of_work("test", read_only=True) as uow:
        c = services.get_campaign(uow, "C")
        groups = dict(uow.session.execute(select(Target.customer_id, Target.grp).where(Target.campaign_id == c.id)).all())
    for cid in ids:
        p = p_contact if groups[cid] == "contact" else p_control
        if rng.random() < p:
            shop.invoice(cid, "80.00", SENT + dt.timedelta(days=int(rng.integers(1, 25))))
    return report(crm, "C")["lift"]


def test_lift_found_when_there_is_an_effect(mcrm: CRM, shop: Shop) -> None:
    lift = _simulate(mcrm, shop, 400, p_contact=0.30, p_control=0.08, seed=3)
    assert lift["significant"] is True and lift["p_value"] < 0.001
    assert lift["contacted_rate"] > lift["control_rate"] and "significant lift" in lift["verdict"]


def test_lift_not_claimed_when_there_is_none(mcrm: CRM, shop: Shop) -> None:
    lift = _simulate(mcrm, shop, 300, p_contact=0.15, p_control=0.15, seed=5)
    assert lift["significant"] is False and "no significant difference" in lift["verdict"]


def test_ab_winner_only_when_significant(mcrm: CRM, shop: Shop) -> None:
    ids = setup_campaign(mcrm, shop, 400, variants=[{"name": "A", "share": 0.5}, {"name": "B", "share": 0.5}])
    mark_sent(mcrm, "C")
    with mcrm.unit_of_work("test", read_only=True) as uow:
        c = services.get_campaign(uow, "C")
        variant = dict(uow.session.execute(select(Target.customer_id, Target.variant_id).where(Target.campaign_id == c.id)).all())
    rng = np.random.default_rng(9)
    for cid in ids:
        if rng.random() < (0.35 if variant[cid] == 2 else 0.10):
            shop.invoice(cid, "20.00", SENT + dt.timedelta(days=3))
    ab = report(mcrm, "C")["ab"]
    assert ab["winner"] == "B" and ab["p_value"] < 0.01


def test_ab_no_winner_without_difference(mcrm: CRM, shop: Shop) -> None:
    ids = setup_campaign(mcrm, shop, 200, variants=[{"name": "A", "share": 0.5}, {"name": "B", "share": 0.5}])
    mark_sent(mcrm, "C")
    rng = np.random.default_rng(2)
    for cid in ids:
        if rng.random() < 0.2:
            shop.invoice(cid, "20.00", SENT + dt.timedelta(days=3))
    ab = report(mcrm, "C")["ab"]
    assert ab["winner"] is None and "no significant difference" in ab["verdict"]


def test_cross_sell_candidates(mcrm: CRM, shop: Shop) -> None:
    a, b, c = (shop.customer(r) for r in ("A", "B", "CC"))
    now = utcnow()
    shop.invoice(a, "100.00", now, category="kitchens")
    shop.invoice(b, "100.00", now, category="kitchens")
    shop.invoice(b, "30.00", now, category="tiles")
    shop.invoice(c, "10.00", now, category="tiles")
    with mcrm.unit_of_work("test", read_only=True) as uow:
        total, rows = reporting.cross_sell(uow, "kitchens", "tiles")
    assert total == 1 and rows[0]["id"] == a and Decimal(rows[0]["spend"]) == Decimal(100)


def test_report_without_cost_or_control(mcrm: CRM, shop: Shop, tmp_path: Path) -> None:
    setup_campaign(mcrm, shop, 2)
    delivery.send(mcrm, "test", "C", "file", outbox=tmp_path)
    r = report(mcrm, "C")
    assert r["delivered"] == 2 and r["roi"] is None and r["roi_note"] == "not computed: no cost recorded"
    assert r["lift"]["verdict"] == "no control group"
