"""Classified responses: recorded by hand, imported in bulk, or derived from logged interactions.

A response belongs to a customer who was in the campaign's audience (contacted or control:
control customers can still buy, which is what the lift compares). Each has an external
reference, so recording or importing the same response again changes nothing.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert, select

from crm_marketing import services
from crm_marketing.models import Campaign, Consent, Response, Target
from crm_marketing.schemas import ConsentSet, ResponseCreate
from crmcore.db.types import utcnow
from crmcore.errors import Conflict, InvalidInput
from crmcore.models import Interaction
from crmcore.uow import UnitOfWork


def _check_type(uow: UnitOfWork, rtype: str) -> None:
    types = services.settings(uow).response_types
    if rtype not in types:
        raise InvalidInput(f"invalid response type {rtype!r} (configured: {', '.join(types)})", [("type", "unknown")])


def _membership(uow: UnitOfWork, campaign: Campaign, customer_id: int) -> Target:
    target = uow.session.get(Target, (campaign.id, customer_id))
    if target is None:
        raise InvalidInput(f"customer {customer_id} is not in campaign {campaign.name!r}", [("customer", "not targeted")])
    if target.grp == "suppressed":
        raise InvalidInput(f"customer {customer_id} was suppressed in campaign {campaign.name!r} ({target.reason}); "
                           "they were not contacted", [("customer", "suppressed")])
    return target


def record(uow: UnitOfWork, campaign: Campaign, customer_id: int, data: ResponseCreate, source: str = "cli") -> tuple[Response, bool]:
    """Record one response; returns (response, created). Same reference again = no-op."""
    uow.require("marketing.response.write")
    _check_type(uow, data.type)
    _membership(uow, campaign, customer_id)
    at = data.at or utcnow()
    if campaign.launched_at is not None and at < campaign.launched_at - dt.timedelta(days=1):
        raise InvalidInput(f"response at {at:%Y-%m-%d} is before the campaign was launched ({campaign.launched_at:%Y-%m-%d})",
                           [("at", "before launch")])
    ref = data.external_ref or f"{data.type}-{customer_id}-{at:%Y%m%dT%H%M%S}"
    existing = uow.session.scalar(select(Response).where(Response.campaign_id == campaign.id, Response.external_ref == ref))
    if existing is not None:
        if (existing.customer_id, existing.type) != (customer_id, data.type):
            raise Conflict(f"response {ref!r} is already recorded for customer {existing.customer_id} as {existing.type}")
        return existing, False
    resp = Response(campaign_id=campaign.id, customer_id=customer_id, type=data.type, at=at, source=source,
                    external_ref=ref, note=data.note)
    uow.session.add(resp)
    uow.session.flush()
    if data.type == "unsubscribed":
        current = uow.session.get(Consent, (customer_id, campaign.channel))
        if current is None or current.at <= at:  # a newer statement of the customer's stands
            services.set_consent(uow, customer_id, ConsentSet(channel=campaign.channel, status="unsubscribed",
                                                              source=f"campaign {campaign.name}", at=at))
    uow.audit.record("response", "marketing_campaign", campaign.id,
                     after={"customer_id": customer_id, "type": data.type, "at": at, "reference": ref})
    uow.hooks.call("marketing_response_recorded", uow=uow, response=resp)
    return resp, True


def derive(uow: UnitOfWork, campaign: Campaign) -> int:
    """Inbound interactions of contacted customers within the window after their contact become
    responses: a complaint is ``complained``, anything else ``replied``. Set-based; idempotent."""
    uow.require("marketing.response.write")
    window = dt.timedelta(days=campaign.attribution_days)
    rows = uow.session.execute(
        select(Interaction.id, Interaction.customer_id, Interaction.kind, Interaction.occurred_at, Target.sent_at)
        .join(Target, (Target.customer_id == Interaction.customer_id) & (Target.campaign_id == campaign.id))
        .where(Target.grp == "contact", Target.status == "sent", Interaction.direction == "inbound",
               Interaction.occurred_at >= Target.sent_at)
    ).all()
    have = set(uow.session.scalars(select(Response.external_ref).where(Response.campaign_id == campaign.id,
                                                                        Response.source == "derived")))
    types = set(services.settings(uow).response_types)
    new: list[dict[str, Any]] = []
    for iid, cust, kind, at, sent in rows:
        if sent is None or at >= sent + window:
            continue
        rtype = "complained" if str(kind) == "complaint" else "replied"
        ref = f"interaction-{iid}"
        if rtype in types and ref not in have:
            new.append({"campaign_id": campaign.id, "customer_id": cust, "type": rtype, "at": at, "source": "derived",
                        "external_ref": ref, "note": None})
            have.add(ref)
    if new:
        uow.session.execute(insert(Response), new)
        uow.audit.record("derive_responses", "marketing_campaign", campaign.id, after={"responses": len(new)})
    return len(new)


def for_customer(uow: UnitOfWork, customer_id: int, limit: int = 20) -> list[tuple[Response, str]]:
    return list(uow.session.execute(
        select(Response, Campaign.name).join(Campaign, Campaign.id == Response.campaign_id)
        .where(Response.customer_id == customer_id).order_by(Response.at.desc()).limit(limit)))
