"""The plugin's HTTP routes (``crm serve``): segment previews, campaign reports, responses.

Each request is one unit of work as the authenticated user (``crmcore.api.app.unit``); the
services check the same ``marketing.*`` permissions as the CLI.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from crm_marketing import reporting, responses, segments, services
from crm_marketing.schemas import ATTRIBUTION_MODELS, ResponseCreate
from crmcore.errors import NotFound
from crmcore.schemas.fields import Line, Multiline, Ref, UTCDatetime
from crmcore.sdk import jsonable, unit

Name = Annotated[str, Path(min_length=1, max_length=100)]


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: Multiline = Field(min_length=1, max_length=10_000, description='e.g. country = "DE" and spend(days=365) > 1000')
    sample: int = Field(10, ge=0, le=1000)


class ResponseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer: Line = Field(min_length=1, max_length=100, description="external reference, or #id")
    type: Line = Field(min_length=1, max_length=20)
    at: UTCDatetime | None = None
    note: Multiline | None = Field(None, max_length=500)
    external_ref: Ref | None = None


def register(router: APIRouter) -> None:
    from crm_marketing import routes_campaigns, routes_consent, routes_people, routes_reads

    routes_campaigns.register(router)
    routes_reads.register(router)
    routes_consent.register(router)
    routes_people.register(router)
    @router.get("/marketing/segments", tags=["marketing"])
    def list_segments(request: Request) -> Any:
        with unit(request, write=False) as uow:
            return [{"name": s.name, "kind": s.kind, "rule": s.rule, "frozen_at": jsonable(s.frozen_at)}
                    for s in services.list_segments(uow)]

    @router.post("/marketing/segments/preview", tags=["marketing"])
    def preview_rule(request: Request, data: RuleIn) -> Any:
        """How many customers a rule matches, and a sample (nothing is saved)."""
        with unit(request, write=False) as uow:
            uow.require("customer.read")
            tree = segments.parse(data.rule)
            count, rows = services.preview(uow, services.rule_query(uow, tree), data.sample)
            return {"rule": segments.to_text(tree), "count": count, "sample": jsonable(rows)}

    @router.get("/marketing/segments/{name}/preview", tags=["marketing"])
    def preview_segment(request: Request, name: Name, sample: Annotated[int, Query(ge=0, le=1000)] = 10) -> Any:
        with unit(request, write=False) as uow:
            uow.require("customer.read")
            seg = services.get_segment(uow, name)
            count, rows = services.preview(uow, services.segment_query(uow, seg), sample)
            return {"segment": seg.name, "count": count, "sample": jsonable(rows)}

    @router.get("/marketing/campaigns", tags=["marketing"])
    def list_campaigns(request: Request) -> Any:
        with unit(request, write=False) as uow:
            return [{"id": c.id, "name": c.name, "channel": c.channel, "status": c.status,
                     "launched_at": jsonable(c.launched_at)} for c in services.list_campaigns(uow)]

    @router.get("/marketing/campaigns/{name}/report", tags=["marketing"])
    def campaign_report(request: Request, name: Name,
                        attribution: Annotated[str | None, Query(pattern="^(" + "|".join(ATTRIBUTION_MODELS) + ")$")] = None) -> Any:
        """Responses by type, attributed revenue, cost, ROI, lift against the control group, A/B."""
        with unit(request, write=False) as uow:
            return jsonable(reporting.report(uow, services.get_campaign(uow, name), attribution))

    @router.post("/marketing/campaigns/{name}/responses", status_code=201, tags=["marketing"])
    def record_response(request: Request, name: Name, data: ResponseIn) -> Any:
        with unit(request, write=True) as uow:
            campaign = services.get_campaign(uow, name)
            uow.require("marketing.response.write")  # first: the answer must not depend on whether the customer exists
            try:  # the core's resolver applies visibility
                customer = services.resolve_customer(uow, data.customer)
            except NotFound:  # invisible or missing: one answer, naming the reference as given (no id)
                raise NotFound("customer", repr(data.customer)) from None
            r, created = responses.record(uow, campaign, customer.id, ResponseCreate(
                type=data.type, at=data.at, note=data.note, external_ref=data.external_ref), source="api")
            return {"id": r.id, "campaign": campaign.name, "customer_id": customer.id, "type": r.type,
                    "at": jsonable(r.at), "created": created}
