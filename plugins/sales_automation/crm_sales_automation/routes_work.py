"""The rest of the selling work over HTTP: deal updates, invoices, objections, pipelines,
activities, quotas and handovers, each the service call of its ``crm sales`` command."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crm_sales_automation import services
from crm_sales_automation.schemas import (
    ActivityCreate,
    Note,
    ObjectionCreate,
    OpportunityUpdate,
    PipelineCreate,
    QuotaSet,
    Username,
    Word,
)
from crmcore.sdk import MAX_ID, jsonable, unit, visible_customer

Id = Annotated[int, Path(ge=1, le=MAX_ID)]


class ActivityIn(ActivityCreate):
    lead_id: int | None = Field(None, ge=1, le=MAX_ID)
    opportunity_id: int | None = Field(None, ge=1, le=MAX_ID)
    customer_id: int | None = Field(None, ge=1, le=MAX_ID)

    @model_validator(mode="after")
    def _one_target(self) -> ActivityIn:
        if sum(x is not None for x in (self.lead_id, self.opportunity_id, self.customer_id)) != 1:
            raise ValueError("an activity is on exactly one of lead_id, opportunity_id or customer_id")
        return self


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Note | None = None


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handling: Note | None = None
    method: Word | None = None  # a word of crm.toml [vocabularies] objection_methods
    resolved: bool = True


class HandoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_user: Username
    to_user: Username


def _objection(o: Any) -> dict[str, Any]:
    return {"id": o.id, "opportunity_id": o.opportunity_id, "kind": o.kind.value, "method": o.method,
            "handling": o.handling, "resolved": o.resolved}


def register(router: APIRouter) -> None:
    _deals(router)
    _work(router)


def _deals(router: APIRouter) -> None:
    @router.patch("/sales/opportunities/{opp_id}", tags=["sales"])
    def update_opportunity(request: Request, opp_id: Id, data: OpportunityUpdate) -> Any:
        with unit(request, write=True) as uow:
            services.update_opportunity(uow, opp_id, data)
            return jsonable(services.opportunity_detail(uow, opp_id))

    @router.post("/sales/opportunities/{opp_id}/invoice", tags=["sales"])
    def invoice(request: Request, opp_id: Id) -> Any:
        """Post the won deal's invoice (idempotent: ``created`` is false the second time)."""
        with unit(request, write=True) as uow:
            entry, created = services.invoice(uow, opp_id)
            return {"created": created, "reference": entry.reference, "amount": str(entry.amount),
                    "currency": entry.currency, "account_id": entry.account_id}

    @router.post("/sales/opportunities/{opp_id}/objections", status_code=201, tags=["sales"])
    def add_objection(request: Request, opp_id: Id, data: ObjectionCreate) -> Any:
        with unit(request, write=True) as uow:
            o = services.add_objection(uow, opp_id, data)
            return _objection(o)

    @router.post("/sales/objections/{objection_id}/resolve", tags=["sales"])
    def resolve_objection(request: Request, objection_id: Id, data: ResolveIn) -> Any:
        with unit(request, write=True) as uow:
            o = services.resolve_objection(uow, objection_id, data.handling, resolved=data.resolved, method=data.method)
            return _objection(o)

    @router.post("/sales/pipelines", status_code=201, tags=["sales"])
    def add_pipeline(request: Request, data: PipelineCreate) -> Any:
        """Create a pipeline with ordered open stages (won and lost are added)."""
        with unit(request, write=True) as uow:
            p = services.create_pipeline(uow, data)
            return {"id": p.id, "name": p.name}


def _work(router: APIRouter) -> None:
    @router.post("/sales/activities", status_code=201, tags=["sales"])
    def add_activity(request: Request, data: ActivityIn) -> Any:
        """Plan an activity on one lead, opportunity or customer."""
        with unit(request, write=True) as uow:
            if data.customer_id is not None:
                visible_customer(uow, data.customer_id)
            a = services.add_activity(uow, ActivityCreate(**data.model_dump(include=set(ActivityCreate.model_fields))),
                                      lead_id=data.lead_id, opportunity_id=data.opportunity_id,
                                      customer_id=data.customer_id)
            return {"id": a.id}

    @router.post("/sales/activities/{activity_id}/done", tags=["sales"])
    def complete_activity(request: Request, activity_id: Id, data: OutcomeIn) -> Any:
        """Complete an activity; it is logged as an interaction on the customer's timeline."""
        with unit(request, write=True) as uow:
            a = services.complete_activity(uow, activity_id, data.outcome)
            return {"id": a.id, "interaction_id": a.interaction_id}

    @router.put("/sales/quotas", tags=["sales"])
    def set_quota(request: Request, data: QuotaSet) -> Any:
        """Set a rep's quota for a month (the same owner and month again replaces it)."""
        with unit(request, write=True) as uow:
            q = services.set_quota(uow, data)
            return {"owner": data.owner, "period": q.period.isoformat(), "amount": str(q.amount), "currency": q.currency}

    @router.post("/sales/handover", tags=["sales"])
    def handover(request: Request, data: HandoverIn) -> Any:
        """Give one rep's open leads, deals and activities to another, in one transaction."""
        with unit(request, write=True) as uow:
            return {"from": data.from_user, "to": data.to_user, **services.handover(uow, data.from_user, data.to_user)}
