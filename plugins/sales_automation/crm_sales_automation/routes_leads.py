"""Lead writes over HTTP (a badge-scan app or a web form): update, assess, convert, learn; referrals.

The same service calls as ``crm sales lead update|assess|convert|learn``; the services check
``sales.lead.*`` and visibility, so the rules are the CLI's.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crm_sales_automation import services
from crm_sales_automation.schemas import FactorScore, LeadUpdate, OpportunityCreate, Word
from crmcore.sdk import MAX_ID, InvalidInput, jsonable, unit, visible_customer

Id = Annotated[int, Path(ge=1, le=MAX_ID)]


class AssessIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scores: list[FactorScore] = Field(min_length=1, max_length=5, description="factors to set, 0..5 points each")


class ConvertIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: int | None = Field(None, ge=1, le=MAX_ID, description="use this existing customer")
    new: bool = Field(False, description="create a new customer even if existing ones match")
    opportunity: OpportunityCreate | None = Field(None, description="also open this opportunity")
    role: Word | None = Field(None, description="the new contact's role: a word of contact_roles (default: initiator)")

    @model_validator(mode="after")
    def _one_way(self) -> ConvertIn:
        if self.new and self.customer_id is not None:
            raise ValueError("give customer_id or new, not both")
        return self


class ReferralIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    referred_by: int | None = Field(ge=1, le=MAX_ID, description="id of the referring customer; null removes the referral")


def register(router: APIRouter) -> None:
    _referrals(router)

    @router.patch("/sales/leads/{lead_id}", tags=["sales"])
    def update_lead(request: Request, lead_id: Id, data: LeadUpdate) -> Any:
        """Qualify or disqualify a lead, change its owner or notes (conversion is its own route)."""
        given = data.model_dump(exclude_unset=True)
        if not any(v is not None for v in given.values()):
            raise InvalidInput("nothing to update: give status, owner, notes or referred_by")
        if data.status is not None and data.status.value == "converted":
            raise InvalidInput("status: use POST /sales/leads/{lead_id}/convert to convert a lead")
        with unit(request, write=True) as uow:
            if data.status is not None:
                services.set_lead_status(uow, lead_id, data.status)
            if data.owner is not None or data.notes is not None or data.referred_by is not None:
                services.update_lead(uow, lead_id, owner=data.owner, notes=data.notes, referred_by=data.referred_by)
            return jsonable(services.lead_detail(uow, lead_id))

    @router.post("/sales/leads/{lead_id}/assess", tags=["sales"])
    def assess_lead(request: Request, lead_id: Id, data: AssessIn) -> Any:
        """Score some of the five factors (need, volume, power, credibility, authority)."""
        with unit(request, write=True) as uow:
            services.assess(uow, lead_id, data.scores)
            return jsonable(services.lead_detail(uow, lead_id))

    @router.post("/sales/leads/{lead_id}/convert", tags=["sales"])
    def convert_lead(request: Request, lead_id: Id, data: ConvertIn) -> Any:
        """Convert a qualified lead into a customer (matched by e-mail, phone or name unless ``new``)."""
        with unit(request, write=True) as uow:
            if data.customer_id is not None:
                visible_customer(uow, data.customer_id)
            r = services.convert(uow, lead_id, customer_id=data.customer_id, new=data.new, opportunity=data.opportunity,
                                 contact_role=data.role)
            return {"lead_id": r.lead_id, "customer_id": r.customer_id, "customer_created": r.customer_created,
                    "matched_by": r.matched_by, "contact_id": r.contact_id, "opportunity_id": r.opportunity_id}

    @router.post("/sales/leads/learn", tags=["sales"])
    def learn(request: Request) -> Any:
        """Fit the learned lead score on closed leads and score the open ones."""
        with unit(request, write=True) as uow:
            return jsonable(services.learn_lead_scores(uow))


def _referrals(router: APIRouter) -> None:
    @router.get("/sales/customers/{customer_id}/referral", tags=["sales"])
    def show_referral(request: Request, customer_id: Id) -> Any:
        """Who referred the customer, and how many leads and customers it referred."""
        with unit(request, write=False) as uow:
            visible_customer(uow, customer_id)
            return jsonable(services.referral_detail(uow, customer_id))

    @router.put("/sales/customers/{customer_id}/referral", tags=["sales"])
    def set_referral(request: Request, customer_id: Id, data: ReferralIn) -> Any:
        """Record who referred the customer (``crm sales referral set``); an unknown or invisible
        referrer is 404, a customer referring itself 422."""
        with unit(request, write=True) as uow:
            visible_customer(uow, customer_id)
            services.set_referral(uow, customer_id, data.referred_by)
            return jsonable(services.referral_detail(uow, customer_id))
