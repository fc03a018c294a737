"""The plugin's HTTP routes (``crm serve``): leads, opportunities (move, win, lose, reopen), forecast, funnel.

Each request is one unit of work as the authenticated user; the services check the same
``sales.*`` permissions as the CLI, and a win refused by a guard (credit) is a 409 with
nothing written.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from crm_sales_automation import services
from crm_sales_automation.schemas import LeadCreate, OpportunityCreate, Word
from crmcore.schemas.fields import Line, Multiline
from crmcore.sdk import MAX_ID, jsonable, unit, visible_customer

Id = Annotated[int, Path(ge=1, le=MAX_ID)]


class OpportunityIn(OpportunityCreate):
    customer_id: int = Field(ge=1, le=MAX_ID)


class MoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: Line = Field(min_length=1, max_length=64)


class LoseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Multiline = Field(min_length=1, max_length=500)
    code: Word | None = Field(None, description="the reason as a word of the lost_reasons vocabulary (crm.toml)")


class ReopenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Multiline = Field(min_length=1, max_length=500)
    stage: Line | None = Field(None, min_length=1, max_length=64,
                               description="the open stage it goes back to (default: the one it was lost from)")


class WinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Word | None = Field(None, description="why it was won: a word of the won_reasons vocabulary (crm.toml)")


def _visible_deal(request: Request, uow: Any, opp_id: int) -> None:
    """A deal of a customer the user may not see is 404, like one that does not exist (the
    service applies visibility: ``crm_sales_automation.visibility``)."""
    uow.require("customer.read")
    services.get_opportunity(uow, opp_id)


def _reopen(router: APIRouter) -> None:
    @router.post("/sales/opportunities/{opp_id}/reopen", tags=["sales"])
    def reopen(request: Request, opp_id: Id, data: ReopenIn) -> Any:
        """Reopen a lost deal (permission ``sales.opportunity.reopen``); a deal that is open or
        won is a 409. Winning it later runs every win guard again (a credit hold: 409)."""
        with unit(request, write=True) as uow:
            _visible_deal(request, uow, opp_id)
            services.reopen(uow, opp_id, data.reason, stage=data.stage)
            return jsonable(services.opportunity_detail(uow, opp_id))


def register(router: APIRouter) -> None:
    from crm_sales_automation import routes_leads, routes_process, routes_reads, routes_work

    routes_leads.register(router)  # first: /sales/leads/learn before /sales/leads/{lead_id}
    routes_reads.register(router)
    routes_work.register(router)
    routes_process.register(router)
    _reopen(router)
    @router.post("/sales/leads", status_code=201, tags=["sales"])
    def add_lead(request: Request, data: LeadCreate) -> Any:
        with unit(request, write=True) as uow:
            lead = services.add_lead(uow, data)
            return jsonable(services.lead_detail(uow, lead.id))

    @router.get("/sales/leads/{lead_id}", tags=["sales"])
    def show_lead(request: Request, lead_id: Id) -> Any:
        with unit(request, write=False) as uow:
            uow.require("customer.read")
            return jsonable(services.lead_detail(uow, lead_id))

    @router.post("/sales/opportunities", status_code=201, tags=["sales"])
    def add_opportunity(request: Request, data: OpportunityIn) -> Any:
        with unit(request, write=True) as uow:
            visible_customer(uow, data.customer_id)
            opp = services.add_opportunity(uow, data.customer_id, OpportunityCreate(**data.model_dump(exclude={"customer_id"})))
            return jsonable(services.opportunity_detail(uow, opp.id))

    @router.get("/sales/opportunities/{opp_id}", tags=["sales"])
    def show_opportunity(request: Request, opp_id: Id) -> Any:
        with unit(request, write=False) as uow:
            _visible_deal(request, uow, opp_id)
            return jsonable(services.opportunity_detail(uow, opp_id))

    @router.post("/sales/opportunities/{opp_id}/move", tags=["sales"])
    def move(request: Request, opp_id: Id, data: MoveIn) -> Any:
        with unit(request, write=True) as uow:
            _visible_deal(request, uow, opp_id)
            services.move(uow, opp_id, data.stage)
            return jsonable(services.opportunity_detail(uow, opp_id))

    @router.post("/sales/opportunities/{opp_id}/win", tags=["sales"])
    def win(request: Request, opp_id: Id, data: Annotated[WinIn | None, Body()] = None) -> Any:
        """Win the deal (optionally with a ``reason`` word); another plugin's guard (a credit
        check) may refuse it: 409, nothing written."""
        with unit(request, write=True) as uow:
            _visible_deal(request, uow, opp_id)
            services.win(uow, opp_id, reason=data.reason if data else None)
            return jsonable(services.opportunity_detail(uow, opp_id))

    @router.post("/sales/opportunities/{opp_id}/lose", tags=["sales"])
    def lose(request: Request, opp_id: Id, data: LoseIn) -> Any:
        with unit(request, write=True) as uow:
            _visible_deal(request, uow, opp_id)
            services.lose(uow, opp_id, data.reason, code=data.code)
            return jsonable(services.opportunity_detail(uow, opp_id))

