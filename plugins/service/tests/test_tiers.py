"""SLA overrides by customer tier: the tier comes from value_analysis's latest snapshot (its
documented ``select_customers`` service API), asked once per named tier for a batch of customers;
no value_analysis, no snapshot, or a tier it does not know: the priority's policy."""
from __future__ import annotations

import datetime as dt
from typing import Any

import crm_service.plugin as PLUGIN
import crm_value_analysis.plugin as VALUE
import pytest
from crm_service import tickets
from crm_service.schemas import TicketOpen
from crm_service.settings import settings
from crm_service.testing import FrozenClock
from crm_service.tiers import tiers_of
from crm_value_analysis.services import run_analysis, select_customers
from crm_value_analysis.testing import Base

from crmcore import CRM

MONDAY = dt.datetime(2030, 6, 3, 10, 0, tzinfo=dt.UTC)  # calendar: Mon-Fri 09:00-17:00 UTC


def config(tier: str = "vip") -> dict[str, Any]:
    return {"service": {"sla_overrides": [
                {"tier": tier, "first_response_hours": 1, "resolution_hours": 2},
                {"tier": tier, "category": "billing", "first_response_hours": 0.5, "resolution_hours": 1}]},
            "value_analysis": {"pyramid": {"vip": 0.25, "rest": 0.75}}}


def build(make_crm: Any, cfg: dict[str, Any], *, value: bool = True, analyse: bool = True) -> tuple[CRM, dict[str, int]]:
    crm = make_crm(plugins=[PLUGIN, VALUE] if value else [PLUGIN], config=cfg)
    crm.clock = FrozenClock(MONDAY)
    base = Base(crm)
    ids = {name: base.customer(name) for name in ("big", "mid", "low", "tiny")}
    for name, amount in (("big", 5000), ("mid", 300), ("low", 100), ("tiny", 20)):
        base.buys(ids[name], [dt.date(2026, 5, d) for d in (4, 11, 18)], amount)
    if value and analyse:
        with crm.unit_of_work("test") as uow:
            run_analysis(uow, as_of=dt.date(2026, 6, 1))
    return crm, ids


def open_for(crm: CRM, customer_id: int, category: str = "other") -> dict[str, Any]:
    with crm.unit_of_work("test") as uow:
        t, _ = tickets.open_ticket(uow, customer_id, TicketOpen(subject="help", category=category))
        return {"rule": t.sla_rule, "first": t.first_response_due, "resolution": t.resolution_due}


def test_a_vip_customer_gets_the_tier_policy_and_the_most_specific_override(make_crm: Any) -> None:
    crm, ids = build(make_crm, config())
    with crm.unit_of_work("test", read_only=True) as uow:
        assert select_customers(uow, tiers=["vip"]) == [ids["big"]]  # the snapshot the lookup reads
    assert open_for(crm, ids["big"]) == {"rule": "tier vip", "first": MONDAY + dt.timedelta(hours=1),
                                         "resolution": MONDAY + dt.timedelta(hours=2)}
    assert open_for(crm, ids["big"], "billing") == {"rule": "category billing, tier vip",
                                                    "first": MONDAY + dt.timedelta(minutes=30),
                                                    "resolution": MONDAY + dt.timedelta(hours=1)}
    other = open_for(crm, ids["mid"])  # not vip: normal priority, 8 / 40 business hours
    assert other == {"rule": "priority normal", "first": dt.datetime(2030, 6, 4, 10, 0, tzinfo=dt.UTC),
                     "resolution": dt.datetime(2030, 6, 10, 10, 0, tzinfo=dt.UTC)}


def test_the_lookup_is_one_batch_for_many_customers(make_crm: Any) -> None:
    crm, ids = build(make_crm, config())
    with crm.unit_of_work("test", read_only=True) as uow:
        assert tiers_of(uow, settings(uow), ids.values()) == {ids["big"]: "vip"}
        assert tiers_of(uow, settings(uow), []) == {}


@pytest.mark.parametrize("case", ["no value_analysis", "no snapshot yet", "unknown tier"])
def test_without_a_tier_the_priority_policy_applies(make_crm: Any, case: str) -> None:
    crm, ids = build(make_crm, config("platinum" if case == "unknown tier" else "vip"),
                     value=case != "no value_analysis", analyse=case != "no snapshot yet")
    with crm.unit_of_work("test", read_only=True) as uow:
        assert tiers_of(uow, settings(uow), ids.values()) == {}
    assert open_for(crm, ids["big"])["rule"] == "priority normal"


def test_no_tier_override_means_no_lookup(make_crm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    crm, ids = build(make_crm, {"value_analysis": {"pyramid": {"vip": 0.25, "rest": 0.75}}})

    def forbidden(*a: Any, **k: Any) -> None:
        raise AssertionError("value_analysis was asked although no override names a tier")
    monkeypatch.setattr("crm_value_analysis.services.select_customers", forbidden)
    assert open_for(crm, ids["big"])["rule"] == "priority normal"
