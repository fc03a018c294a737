"""Campaigns addressed to contacts by buying-centre role: people are the targets, each with their own consent."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import crm_marketing.plugin as PLUGIN
import pytest
from crm_marketing import delivery, people, people_campaigns, services
from crm_marketing.models import ContactTarget, Target
from crm_marketing.schemas import CampaignCreate, ConsentSet
from crm_marketing.testing import Shop
from sqlalchemy import select

from crmcore import CRM
from crmcore.errors import Conflict, InvalidInput
from crmcore.models import Interaction
from crmcore.schemas import ContactCreate
from crmcore.testing_concurrency import run_in_processes


def add_contact(crm: CRM, customer_id: int, ref: str, role: str | None, email: str | None = "") -> int:
    with crm.unit_of_work("test") as uow:
        return uow.contacts.add(customer_id, ContactCreate(
            name=f"Person {ref}", role=role, external_ref=ref,
            email=f"{ref.lower()}@people.example" if email == "" else email)).id


@pytest.fixture
def fair(shop: Shop, mcrm: CRM) -> dict[str, int]:
    """Three exhibitors: ACME (decider Anna, user Ben, decider Dora without e-mail), BETA (decider Eva,
    unsubscribed), GAMMA (only a user)."""
    ids = {"ACME": shop.customer("ACME", kind="organization", country="DE"),
           "BETA": shop.customer("BETA", kind="organization", country="DE"),
           "GAMMA": shop.customer("GAMMA", kind="organization", country="DE")}
    ids |= {"ANNA": add_contact(mcrm, ids["ACME"], "ANNA", "decider"), "BEN": add_contact(mcrm, ids["ACME"], "BEN", "user"),
            "DORA": add_contact(mcrm, ids["ACME"], "DORA", "decider", email=None),
            "EVA": add_contact(mcrm, ids["BETA"], "EVA", "decider"), "GUS": add_contact(mcrm, ids["GAMMA"], "GUS", "user")}
    with mcrm.unit_of_work("test") as uow:
        for c in ("ACME", "BETA", "GAMMA"):
            services.set_consent(uow, ids[c], ConsentSet(channel="email", status="opt_in"))
        people.unsubscribe_contact(uow, ids["EVA"], "email")
        services.create_segment(uow, "de", rule='country = "DE"')
    return ids


def test_role_campaign_mails_people_with_their_consent(mcrm: CRM, fair: dict[str, int], tmp_path: Path) -> None:
    with mcrm.unit_of_work("test") as uow:
        c = services.create_campaign(uow, CampaignCreate(name="Fair", channel="email", segments=["de"],
                                                         to_roles=["decider", "gatekeeper"],
                                                         subject="Hi {{ contact.name }} of {{ customer.name }}"))
        assert c.to_roles == "decider,gatekeeper"
        counts = services.launch(uow, c)
    assert counts == {"targeted": 3, "contact": 1, "control": 0, "suppressed": 2, "people_contact": 1,
                      "people_control": 0, "people_suppressed": 2}
    with mcrm.unit_of_work("test", read_only=True) as uow:
        rows = {r.contact_id: (r.grp, r.reason, r.address) for r in uow.session.scalars(select(ContactTarget))}
        companies = {r.customer_id: (r.grp, r.reason) for r in uow.session.scalars(select(Target))}
    assert rows == {fair["ANNA"]: ("contact", None, "anna@people.example"), fair["DORA"]: ("suppressed", "no email", None),
                    fair["EVA"]: ("suppressed", "contact consent: unsubscribed", None)}
    assert companies[fair["BETA"]] == ("suppressed", "no contactable decider/gatekeeper")
    assert companies[fair["GAMMA"]] == ("suppressed", "no decider/gatekeeper contact")
    r = delivery.send(mcrm, "test", "Fair", "file", outbox=tmp_path)
    assert (r.sent, r.failed, r.pending) == (1, 0, 0)
    files = list((tmp_path / "campaign-1").glob("*.eml"))
    assert [f.name for f in files] == [f"customer-{fair['ACME']}-contact-{fair['ANNA']}.eml"]
    assert "To: anna@people.example" in files[0].read_text()
    assert "Subject: Hi Person ANNA of Customer ACME" in files[0].read_text()
    assert delivery.send(mcrm, "test", "Fair", "file", outbox=tmp_path).sent == 0  # never twice
    with mcrm.unit_of_work("test", read_only=True) as uow:
        assert uow.session.get(Target, (1, fair["ACME"])).status == "sent"  # type: ignore[union-attr]
        assert len(uow.session.scalars(select(Interaction).where(Interaction.source == "marketing")).all()) == 1


def test_withdrawal_after_launch_is_honoured_at_send(mcrm: CRM, fair: dict[str, int], tmp_path: Path) -> None:
    with mcrm.unit_of_work("test") as uow:
        services.launch(uow, services.create_campaign(uow, CampaignCreate(name="Late", channel="email", segments=["de"],
                                                                          to_roles=["decider"])))
        people.set_contact_consent(uow, fair["ANNA"], ConsentSet(channel="email", status="opt_out"))
    r = delivery.send(mcrm, "test", "Late", "file", outbox=tmp_path)
    assert (r.sent, r.skipped) == (0, 1)
    with mcrm.unit_of_work("test", read_only=True) as uow:
        t = uow.session.get(ContactTarget, (1, fair["ANNA"]))
        assert t is not None and (t.status, t.reason) == ("skipped", "contact consent: opt_out")
        assert uow.session.get(Target, (1, fair["ACME"])).status == "skipped"  # type: ignore[union-attr]


def test_campaign_without_roles_still_mails_the_company(mcrm: CRM, fair: dict[str, int], tmp_path: Path) -> None:
    with mcrm.unit_of_work("test") as uow:
        counts = services.launch(uow, services.create_campaign(uow, CampaignCreate(name="Co", channel="email", segments=["de"])))
    assert counts == {"targeted": 3, "contact": 3, "control": 0, "suppressed": 0}
    assert delivery.send(mcrm, "test", "Co", "file", outbox=tmp_path).sent == 3
    with mcrm.unit_of_work("test", read_only=True) as uow:
        assert uow.session.scalars(select(ContactTarget)).all() == []


def test_unknown_role_is_refused_naming_the_allowed(mcrm: CRM, fair: dict[str, int]) -> None:
    with pytest.raises(InvalidInput, match=r"'pope' is not allowed.*decider"), mcrm.unit_of_work("test") as uow:
        services.create_campaign(uow, CampaignCreate(name="X", channel="email", segments=["de"], to_roles=["pope"]))
    with mcrm.unit_of_work("test", read_only=True) as uow:
        assert services.list_campaigns(uow) == []


def test_roles_cannot_change_after_launch(mcrm: CRM, fair: dict[str, int]) -> None:
    with mcrm.unit_of_work("test") as uow:
        c = services.create_campaign(uow, CampaignCreate(name="R", channel="email", segments=["de"]))
        people_campaigns.address_to_roles(uow, c, "decider")
        services.launch(uow, c)
    with pytest.raises(Conflict, match="fixed at launch"), mcrm.unit_of_work("test") as uow:
        people_campaigns.address_to_roles(uow, services.get_campaign(uow, "R"), "user")


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def test_cli_address_launch_send(mcli: Callable[..., Any], fair: dict[str, int], tmp_path: Path) -> None:
    ok(mcli("marketing", "campaign", "create", "Cli", "--channel", "email", "--segment", "de"))
    assert "decider, user" in ok(mcli("marketing", "campaign", "address", "Cli", "--to-roles", "user,decider")).output
    launched = json.loads(ok(mcli("marketing", "campaign", "launch", "Cli", "--json")).output)
    assert launched["people_contact"] == 3 and launched["contact"] == 2  # Anna, Ben (ACME), Gus (GAMMA)
    r = mcli("marketing", "campaign", "address", "Cli", "--to-roles", "user")
    assert r.exit_code == 1 and "fixed at launch" in r.output and len(r.output.strip().splitlines()) == 1
    r = mcli("marketing", "campaign", "address", "Nope", "--to-roles", "user")
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1


def _send(i: int, url: str, outbox: str) -> int:
    crm = CRM.open(url, plugins=[PLUGIN], entry_points=False, config={"marketing": {"send_batch": 2}})
    try:
        return delivery.send(crm, f"w{i}", "Rush", "file", outbox=Path(outbox)).sent
    finally:
        crm.close()


def test_parallel_senders_mail_each_person_once(crm_url: str, mcrm: CRM, shop: Shop, tmp_path: Path) -> None:
    ids = [shop.customer(f"Q{i}", kind="organization", country="NL") for i in range(6)]
    for i, cid in enumerate(ids):
        for j in range(3):
            add_contact(mcrm, cid, f"Q{i}P{j}", "decider")
    with mcrm.unit_of_work("test") as uow:
        for cid in ids:
            services.set_consent(uow, cid, ConsentSet(channel="email", status="opt_in"))
        services.create_segment(uow, "nl", rule='country = "NL"')
        services.launch(uow, services.create_campaign(uow, CampaignCreate(name="Rush", channel="email", segments=["nl"],
                                                                          to_roles=["decider"])))
    results = run_in_processes(3, _send, crm_url, str(tmp_path))
    assert [r.error for r in results] == [None] * 3
    assert sum(r.value for r in results) == 18
    assert len(list((tmp_path / "campaign-1").glob("*.eml"))) == 18


def test_claims_left_by_a_killed_run_are_settled(mcrm: CRM, fair: dict[str, int], tmp_path: Path) -> None:
    """Anna's message was written before the crash (settled as sent, not resent); Ben's was not (sent now)."""
    import datetime as dt

    from sqlalchemy import update

    with mcrm.unit_of_work("test") as uow:
        people.set_contact_consent(uow, fair["BEN"], ConsentSet(channel="email", status="opt_in"))
        services.launch(uow, services.create_campaign(uow, CampaignCreate(name="Crash", channel="email", segments=["de"],
                                                                          to_roles=["decider", "user"])))
        uow.session.execute(update(ContactTarget).where(ContactTarget.contact_id.in_([fair["ANNA"], fair["BEN"]]))
                            .values(status="sending", claimed_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)))
    with mcrm.unit_of_work("test", read_only=True) as uow:
        campaign = services.get_campaign(uow, "Crash")
        campaign_id = campaign.id
        anna = uow.session.get(ContactTarget, (campaign.id, fair["ANNA"]))
        message = people_campaigns._person_message(uow, campaign, anna)  # type: ignore[arg-type]
    adapter = delivery.FileAdapter(tmp_path)
    adapter.open()
    adapter.send(message)
    r = delivery.send(mcrm, "test", "Crash", "file", outbox=tmp_path)
    assert (r.settled, r.sent, r.in_doubt) == (1, 2, 0)  # Ben (not delivered: sent now) and Gus; Anna settled
    with mcrm.unit_of_work("test", read_only=True) as uow:
        statuses = {t.contact_id: t.status for t in uow.session.scalars(select(ContactTarget))}
    assert statuses[fair["ANNA"]] == statuses[fair["BEN"]] == statuses[fair["GUS"]] == "sent"
    assert len(list((tmp_path / f"campaign-{campaign_id}").glob("*.eml"))) == 3  # Anna's once, not twice
