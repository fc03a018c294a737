"""The marketing part of the customer 360° view: campaigns, responses, consent, timeline entries."""
from __future__ import annotations

from sqlalchemy import select

from crm_marketing import responses
from crm_marketing.models import Campaign, Consent, Target
from crmcore import ProfileSection, ProfileTable, TimelineEntry
from crmcore.models import Customer
from crmcore.uow import UnitOfWork


def profile_section(uow: UnitOfWork, customer: Customer) -> ProfileSection | None:
    campaigns = uow.session.execute(
        select(Campaign.name, Campaign.channel, Target.grp, Target.status, Target.sent_at)
        .join(Target, Target.campaign_id == Campaign.id).where(Target.customer_id == customer.id)
        .order_by(Campaign.id.desc()).limit(20)).all()
    resp = responses.for_customer(uow, customer.id)
    consent = list(uow.session.scalars(select(Consent).where(Consent.customer_id == customer.id).order_by(Consent.channel)))
    if not campaigns and not resp and not consent:
        return None
    return ProfileSection(
        title="Marketing",
        fields={"consent": {c.channel: c.status for c in consent} or "none recorded",
                "campaigns": len(campaigns), "responses": len(resp)},
        tables=[
            ProfileTable("Campaigns", ["campaign", "channel", "group", "status", "sent at"],
                         [[n, ch, g, st, at.isoformat() if at else None] for n, ch, g, st, at in campaigns]),
            ProfileTable("Responses", ["campaign", "type", "at"],
                         [[name, r.type, r.at.isoformat()] for r, name in resp]),
        ],
    )


def timeline(uow: UnitOfWork, customer: Customer) -> list[TimelineEntry]:
    return [TimelineEntry(at=r.at, kind="campaign response", summary=f"{r.type} to campaign {name}",
                          reference=r.external_ref) for r, name in responses.for_customer(uow, customer.id, limit=100)]
