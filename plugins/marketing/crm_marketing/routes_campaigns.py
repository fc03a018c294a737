"""Segment and campaign writes over HTTP, each the service call of its ``crm marketing`` command
(the ``marketing.*`` permissions are the services')."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crm_marketing import responses, services
from crm_marketing.schemas import CampaignCreate, CostCreate
from crmcore.schemas.fields import Line, Multiline
from crmcore.sdk import jsonable, unit

Name = Annotated[str, Path(min_length=1, max_length=100)]
Key = Annotated[Line, Field(min_length=1, max_length=100)]


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Key
    rule: Multiline | None = Field(None, min_length=1, max_length=10_000)
    static: bool = Field(False, description="a static list (members below or added later)")
    members: list[Key] = Field(default_factory=list, max_length=10_000, description="customer references or #ids")
    description: Multiline | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _rule_or_list(self) -> SegmentIn:
        if (self.rule is None) != (self.static or bool(self.members)):
            raise ValueError("give rule (a rule segment) or static/members (a static list), not both or neither")
        return self


class MembersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customers: list[Key] = Field(min_length=1, max_length=10_000, description="customer references or #ids")


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["scheduled", "draft", "completed", "cancelled"]


def _campaign(c: Any) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "channel": c.channel, "status": c.status,
            "budget": None if c.budget is None else str(c.budget), "currency": c.currency,
            "launched_at": jsonable(c.launched_at)}


def register(router: APIRouter) -> None:
    _segments(router)
    _campaigns(router)


def _segments(router: APIRouter) -> None:
    @router.post("/marketing/segments", status_code=201, tags=["marketing"])
    def create_segment(request: Request, data: SegmentIn) -> Any:
        """Create a rule segment or a static list; answers how many customers match now."""
        with unit(request, write=True) as uow:
            seg = services.create_segment(uow, data.name, rule=data.rule, members=data.members,
                                          description=data.description)
            count, _ = services.preview(uow, services.segment_query(uow, seg), sample=0)
            return {"name": seg.name, "kind": seg.kind, "count": count}

    @router.post("/marketing/segments/{name}/members", tags=["marketing"])
    def add_members(request: Request, name: Name, data: MembersIn) -> Any:
        with unit(request, write=True) as uow:
            return {"segment": name, "added": services.add_members(uow, services.get_segment(uow, name), data.customers)}

    @router.post("/marketing/segments/{name}/freeze", tags=["marketing"])
    def freeze(request: Request, name: Name) -> Any:
        """Snapshot a rule segment's members; campaigns then use the snapshot."""
        with unit(request, write=True) as uow:
            return {"segment": name, "members": services.freeze(uow, services.get_segment(uow, name))}


def _campaigns(router: APIRouter) -> None:
    @router.post("/marketing/campaigns", status_code=201, tags=["marketing"])
    def create_campaign(request: Request, data: CampaignCreate) -> Any:
        """Create a draft campaign."""
        with unit(request, write=True) as uow:
            return _campaign(services.create_campaign(uow, data))

    @router.post("/marketing/campaigns/{name}/costs", tags=["marketing"])
    def add_cost(request: Request, name: Name, data: CostCreate) -> Any:
        """Record actual spend; the same reference again is a no-op (``created`` false)."""
        with unit(request, write=True) as uow:
            line, created = services.add_cost(uow, services.get_campaign(uow, name), data)
            return {"reference": line.reference, "amount": str(line.amount), "currency": line.currency,
                    "created": created}

    @router.post("/marketing/campaigns/{name}/launch", tags=["marketing"])
    def launch(request: Request, name: Name) -> Any:
        """Materialise the audience (contact, control, suppressed) and start the campaign."""
        with unit(request, write=True) as uow:
            c = services.get_campaign(uow, name)
            counts = services.launch(uow, c)
            return {"campaign": c.name, "status": c.status, **counts}

    @router.post("/marketing/campaigns/{name}/status", tags=["marketing"])
    def set_status(request: Request, name: Name, data: StatusIn) -> Any:
        """Schedule, complete or cancel a campaign."""
        with unit(request, write=True) as uow:
            return _campaign(services.set_status(uow, services.get_campaign(uow, name), data.status))

    @router.post("/marketing/campaigns/{name}/responses/derive", tags=["marketing"])
    def derive(request: Request, name: Name) -> Any:
        """Turn inbound interactions after the contact into responses (replied, complained)."""
        with unit(request, write=True) as uow:
            return {"campaign": name, "derived": responses.derive(uow, services.get_campaign(uow, name))}
