"""A campaign's audience (contacted, control, suppressed with the reason) by service and CLI, per company and per person."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from crm_marketing import people, services
from crm_marketing.audience import campaign_audience
from crm_marketing.schemas import CampaignCreate, ConsentSet
from crm_marketing.testing import Shop

from crmcore import CRM
from crmcore.errors import InvalidInput, NotFound
from crmcore.schemas import ContactCreate


@pytest.fixture
def fair(shop: Shop, mcrm: CRM) -> dict[str, int]:
    ids = {r: shop.customer(r, kind="organization", country="DE") for r in ("ACME", "BETA", "GAMMA", "DELTA")}
    with mcrm.unit_of_work("test") as uow:
        for ref, cust, role in (("ANNA", "ACME", "decider"), ("BEN", "ACME", "decider"), ("EVA", "BETA", "decider"),
                                ("GUS", "GAMMA", "user"), ("DAN", "DELTA", "decider")):
            ids[ref] = uow.contacts.add(ids[cust], ContactCreate(name=ref.title(), external_ref=ref, role=role,
                                                                 email=f"{ref.lower()}@x.example")).id
        for c in ("ACME", "BETA", "GAMMA", "DELTA"):
            services.set_consent(uow, ids[c], ConsentSet(channel="email", status="opt_in"))
        people.unsubscribe_contact(uow, ids["BEN"], "email")
        people.unsubscribe_contact(uow, ids["EVA"], "email")
        services.create_segment(uow, "de", rule='country = "DE"')
    return ids


def test_role_campaign_audience_per_person(mcrm: CRM, fair: dict[str, int]) -> None:
    with mcrm.unit_of_work("test") as uow:
        services.launch(uow, services.create_campaign(uow, CampaignCreate(
            name="Fair", channel="email", segments=["de"], to_roles=["decider"], control_share=0.0)))
    with mcrm.unit_of_work("test", read_only=True) as uow:
        a = campaign_audience(uow, "Fair")
        sup = campaign_audience(uow, "Fair", group="suppressed")
        page = campaign_audience(uow, "Fair", limit=2, offset=1)
    got = [(r["customer_ref"], r["contact_ref"], r["grp"], r["reason"]) for r in a["rows"]]
    assert got == [("ACME", "ANNA", "contact", None), ("ACME", "BEN", "suppressed", "contact consent: unsubscribed"),
                   ("BETA", "EVA", "suppressed", "contact consent: unsubscribed"),
                   ("GAMMA", None, "suppressed", "no decider contact"), ("DELTA", "DAN", "contact", None)]
    assert a["counts"] == {"contact": 2, "control": 0, "suppressed": 3} and a["total"] == 5
    assert a["suppressed_reasons"] == {"contact consent: unsubscribed": 2, "no decider contact": 1}
    assert [r["contact_ref"] for r in sup["rows"]] == ["BEN", "EVA", None] and sup["counts"] == a["counts"]
    assert page["rows"] == a["rows"][1:3]


def test_company_campaign_audience_and_control(mcrm: CRM, fair: dict[str, int]) -> None:
    with mcrm.unit_of_work("test") as uow:
        services.set_consent(uow, fair["GAMMA"], ConsentSet(channel="email", status="opt_out"))
        c = services.create_campaign(uow, CampaignCreate(name="Co", channel="email", segments=["de"], control_share=0.5, seed=3))
        counts = services.launch(uow, c)
    with mcrm.unit_of_work("test", read_only=True) as uow:
        a = campaign_audience(uow, "Co")
    assert a["counts"] == {g: counts[g] for g in ("contact", "control", "suppressed")}
    assert {r["customer_ref"]: r["reason"] for r in a["rows"] if r["grp"] == "suppressed"} == {"GAMMA": "consent: opt_out"}
    assert all(r["contact_ref"] is None for r in a["rows"])


def test_bad_arguments(mcrm: CRM, fair: dict[str, int]) -> None:
    with mcrm.unit_of_work("test") as uow:
        services.create_campaign(uow, CampaignCreate(name="Draft", channel="email", segments=["de"]))
    with mcrm.unit_of_work("test", read_only=True) as uow:
        assert campaign_audience(uow, "Draft")["launched"] is False
        with pytest.raises(InvalidInput, match="group"):
            campaign_audience(uow, "Draft", group="vip")
        with pytest.raises(InvalidInput, match="limit"):
            campaign_audience(uow, "Draft", limit=5000)
        with pytest.raises(NotFound):
            campaign_audience(uow, "Nope")


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def test_cli_audience(mcli: Callable[..., Any], fair: dict[str, int]) -> None:
    ok(mcli("marketing", "campaign", "create", "Cli", "--channel", "email", "--segment", "de"))
    ok(mcli("marketing", "campaign", "address", "Cli", "--to-roles", "decider"))
    assert "audience is drawn at launch" in ok(mcli("marketing", "campaign", "audience", "Cli")).output
    ok(mcli("marketing", "campaign", "launch", "Cli"))
    data = json.loads(ok(mcli("marketing", "campaign", "audience", "Cli", "--json", "--group", "suppressed")).output)
    assert [r["contact_ref"] for r in data["rows"]] == ["BEN", "EVA", None]
    out = ok(mcli("marketing", "campaign", "audience", "Cli")).output
    assert "contact consent: unsubscribed" in out and "ANNA" in out
    for args, code in ((("Nope",), 1), (("Cli", "--group", "vip"), 2), (("Cli", "--limit", "0"), 2)):
        r = mcli("marketing", "campaign", "audience", *args)
        assert r.exit_code == code and "Traceback" not in r.output
        assert len([x for x in r.output.splitlines() if x.lower().startswith("error")]) == 1, r.output
