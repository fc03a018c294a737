"""Consent per person over HTTP (a preference centre, an unsubscribe link) and addressing a
campaign to buying-centre roles: the service calls of ``crm marketing contact-consent
set|unsubscribe|show`` and ``crm marketing campaign address|audience`` (their permissions and
the contact's customer visibility are the services')."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from crm_marketing import people, people_campaigns, services
from crm_marketing.schemas import CHANNELS, Channel, ConsentSet
from crmcore.schemas.fields import Line
from crmcore.sdk import jsonable, unit

Contact = Annotated[str, Path(min_length=1, max_length=100, description="the contact's external reference, or #id")]
Name = Annotated[str, Path(min_length=1, max_length=100)]


class UnsubscribeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channel: Channel
    source: Line = Field("unsubscribe", min_length=1, max_length=100)


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_roles: list[Line] | None = Field(None, max_length=20, description="contact roles; null or [] addresses the company")


def _consent(uow: Any, contact_id: int) -> dict[str, Any]:
    """The person's own statement and the effective answer per channel (as the CLI shows them)."""
    own = {x.channel: x for x in people.contact_consents(uow, contact_id)}
    rows = []
    for ch in CHANNELS:
        v, x = people.effective_consent(uow, contact_id, ch), own.get(ch)
        rows.append({"channel": ch, "status": x and x.status, "at": x and jsonable(x.at), "source": x and x.source,
                     "allowed": v.allowed, "reason": v.reason})
    return {"contact_id": contact_id, "consent": rows}


def register(router: APIRouter) -> None:
    @router.get("/marketing/contacts/{contact}/consent", tags=["marketing"])
    def show_contact_consent(request: Request, contact: Contact) -> Any:
        """A person's consent per channel, and whether they may be contacted on it (and why not)."""
        with unit(request, write=False) as uow:
            return _consent(uow, people.resolve_contact(uow, contact).id)

    @router.put("/marketing/contacts/{contact}/consent", tags=["marketing"])
    def set_contact_consent(request: Request, contact: Contact, data: ConsentSet) -> Any:
        """Record a person's statement for a channel; an older one never replaces a newer one (409)."""
        if "source" not in data.model_fields_set:
            data = data.model_copy(update={"source": "api"})
        with unit(request, write=True) as uow:
            cid = people.resolve_contact(uow, contact).id
            people.set_contact_consent(uow, cid, data)
            return _consent(uow, cid)

    @router.post("/marketing/contacts/{contact}/unsubscribe", tags=["marketing"])
    def unsubscribe_contact(request: Request, contact: Contact, data: UnsubscribeIn) -> Any:
        """The person withdraws from a channel now (their company's consent stays as it is)."""
        with unit(request, write=True) as uow:
            cid = people.resolve_contact(uow, contact).id
            people.unsubscribe_contact(uow, cid, data.channel, data.source)
            return _consent(uow, cid)

    @router.post("/marketing/campaigns/{name}/address", tags=["marketing"])
    def address_campaign(request: Request, name: Name, data: AddressIn) -> Any:
        """Address a draft campaign to the contacts holding these roles (or back to the company)."""
        with unit(request, write=True) as uow:
            c = people_campaigns.address_to_roles(uow, services.get_campaign(uow, name), data.to_roles or None)
            return {"name": c.name, "to_roles": c.to_roles.split(",") if c.to_roles else []}

    @router.get("/marketing/campaigns/{name}/audience", tags=["marketing"])
    def campaign_audience(request: Request, name: Name,
                          group: Literal["contact", "control", "suppressed"] | None = None,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                          offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> Any:
        """Who a launched campaign reached: contacted, control, suppressed with the reason (per person
        for a role campaign); the counts are whole, ``group`` filters the rows."""
        from crm_marketing.audience import campaign_audience as read

        with unit(request, write=False) as uow:
            return jsonable(read(uow, name, group, limit, offset))
