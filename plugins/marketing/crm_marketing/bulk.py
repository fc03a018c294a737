"""Responses through the core bulk path: ``crm import marketing_responses FILE`` / ``crm export marketing_responses``.

The core reads the file, validates each row with :class:`ResponseRow`, batches, reports; this
module writes a batch with set-based statements: one look-up of the campaigns, one of the
customers, one of the audience rows, one of the existing references, one INSERT.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy import insert, select, tuple_

from crm_marketing import services
from crm_marketing.models import Campaign, Response, Target
from crmcore.db.types import utcnow
from crmcore.models import Customer
from crmcore.schemas.fields import Line, Multiline, Ref, UTCDatetime
from crmcore.sdk import BatchOutcome, BulkEntity
from crmcore.uow import UnitOfWork

COLUMNS = ("external_ref", "campaign", "customer_ref", "type", "at", "note")


class ResponseRow(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_ref: Ref
    campaign: Annotated[Line, StringConstraints(min_length=1, max_length=100)]
    customer_ref: Ref
    type: Annotated[Line, StringConstraints(min_length=1, max_length=20)]
    at: UTCDatetime | None = None
    note: Annotated[Multiline, StringConstraints(max_length=500)] | None = None


def write_batch(uow: UnitOfWork, rows: list[tuple[int, Any]]) -> BatchOutcome:
    out = BatchOutcome()
    s = uow.session
    types = set(services.settings(uow).response_types)
    campaigns = {c.name: c for c in s.scalars(select(Campaign).where(Campaign.name.in_({r.campaign for _, r in rows})))}
    customers = dict(s.execute(select(Customer.external_ref, Customer.id).where(
        Customer.external_ref.in_({r.customer_ref for _, r in rows}))).all())
    pairs = {(campaigns[r.campaign].id, customers[r.customer_ref]) for _, r in rows
             if r.campaign in campaigns and r.customer_ref in customers}
    groups = {(c, k): g for c, k, g in s.execute(select(Target.campaign_id, Target.customer_id, Target.grp).where(
        tuple_(Target.campaign_id, Target.customer_id).in_(pairs)))} if pairs else {}
    existing = {(c, ref): (cust, t) for c, ref, cust, t in s.execute(
        select(Response.campaign_id, Response.external_ref, Response.customer_id, Response.type).where(
            Response.external_ref.in_({r.external_ref for _, r in rows})))}
    new: list[dict[str, Any]] = []
    now = utcnow()
    for line, r in rows:
        c = campaigns.get(r.campaign)
        if c is None:
            out.reject(line, "campaign", f"unknown campaign {r.campaign!r}", r.external_ref)
            continue
        cust = customers.get(r.customer_ref)
        if cust is None:
            out.reject(line, "customer_ref", f"unknown customer {r.customer_ref!r}", r.external_ref)
            continue
        if r.type not in types:
            out.reject(line, "type", f"unknown response type {r.type!r}", r.external_ref)
            continue
        grp = groups.get((c.id, cust))
        if grp is None or grp == "suppressed":
            out.reject(line, "customer_ref", f"customer {r.customer_ref!r} " +
                       ("is not in campaign" if grp is None else "was suppressed in campaign") + f" {c.name!r}", r.external_ref)
            continue
        seen = existing.get((c.id, r.external_ref))
        if seen is not None:
            if seen == (cust, r.type):
                out.unchanged += 1
            else:
                out.reject(line, "external_ref", f"response {r.external_ref!r} is already recorded as {seen[1]} "
                           "of another customer or type", r.external_ref)
            continue
        new.append({"campaign_id": c.id, "customer_id": cust, "type": r.type, "at": r.at or now, "source": "import",
                    "external_ref": r.external_ref, "note": r.note})
    if new:
        s.execute(insert(Response), new)
        out.inserted += len(new)
        _after_insert(uow, new, campaigns)
        uow.audit.record("import_responses", "marketing_response", None,
                         after={"responses": [(x["campaign_id"], x["customer_id"], x["type"], x["external_ref"]) for x in new]})
    return out


def _after_insert(uow: UnitOfWork, new: list[dict[str, Any]], campaigns: dict[str, Campaign]) -> None:
    """What recording a response does besides the row, the same as ``responses.record``: an
    unsubscribe withdraws the consent (unless the customer said something newer), and the
    ``marketing_response_recorded`` hook fires for each response."""
    from crm_marketing.models import Consent
    from crm_marketing.schemas import ConsentSet

    by_id = {c.id: c for c in campaigns.values()}
    rows = uow.session.scalars(select(Response).where(
        Response.campaign_id.in_({x["campaign_id"] for x in new}), Response.external_ref.in_([x["external_ref"] for x in new])))
    for r in rows:
        campaign = by_id[r.campaign_id]
        if r.type == "unsubscribed":
            current = uow.session.get(Consent, (r.customer_id, campaign.channel))
            if current is None or current.at <= r.at:
                services.set_consent(uow, r.customer_id, ConsentSet(channel=campaign.channel, status="unsubscribed",
                                                                    source=f"campaign {campaign.name} (import)", at=r.at))
        uow.hooks.call("marketing_response_recorded", uow=uow, response=r)


def export_rows(uow: UnitOfWork) -> Iterator[dict[str, Any]]:
    q = (select(Response.external_ref, Campaign.name, Customer.external_ref, Response.type, Response.at, Response.note)
         .join(Campaign, Campaign.id == Response.campaign_id).join(Customer, Customer.id == Response.customer_id)
         .order_by(Response.id).execution_options(yield_per=2000))
    for ref, campaign, customer, rtype, at, note in uow.session.execute(q):
        yield {"external_ref": ref, "campaign": campaign, "customer_ref": customer, "type": rtype,
               "at": at.isoformat() if isinstance(at, dt.datetime) else at, "note": note}


ENTITY = BulkEntity(
    name="marketing_responses", columns=COLUMNS, required=("external_ref", "campaign", "customer_ref", "type"),
    key="external_ref", schema=ResponseRow, write_batch=write_batch, export_rows=export_rows,
    permission="marketing.response.write",
    doc="campaign responses; campaign by name, customer by external_ref; the same external_ref again is a no-op",
)
