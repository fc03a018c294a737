"""Credit writes over HTTP: the profile (limit, terms, status, registry data), write-offs and the
dunning run, each the service call of its ``crm credit`` command (``credit.*`` permissions are
the services')."""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crm_credit import dunning, reports, score_service, services
from crm_credit.schemas import ProfileUpdate, WriteOffRequest
from crmcore.sdk import MAX_ID, jsonable, unit, visible_customer

Id = Annotated[int, Path(ge=1, le=MAX_ID)]


class DunningRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: dt.date | None = None


class ScoreIn(BaseModel):
    """One customer or everyone the user sees (``crm credit score CUSTOMER | --all``)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: int | None = Field(None, ge=1, le=MAX_ID)
    all: bool = False
    as_of: dt.date | None = Field(None, ge=dt.date(1970, 1, 1), le=dt.date(9998, 12, 31))

    @model_validator(mode="after")
    def _one_way(self) -> ScoreIn:
        if (self.customer_id is None) != self.all:
            raise ValueError("give customer_id or all (not both)")
        return self


def register(router: APIRouter) -> None:
    @router.post("/credit/scores", tags=["credit"])
    def score(request: Request, data: ScoreIn) -> Any:
        """Recompute the rule scorecard (``crm credit score``): ``scored``, ``grades`` and, for one
        customer, its score, grade, suggested limit (a decimal string) and reasons."""
        with unit(request, write=True) as uow:
            if data.customer_id is not None:
                visible_customer(uow, data.customer_id)
            return jsonable(score_service.score_customers(uow, data.customer_id, all_=data.all, as_of=data.as_of))

    @router.patch("/credit/customers/{customer_id}/profile", tags=["credit"])
    def set_profile(request: Request, customer_id: Id, data: ProfileUpdate) -> Any:
        """Create or change the credit profile; only the fields given change (``crm credit profile set``)."""
        with unit(request, write=True) as uow:
            visible_customer(uow, customer_id)
            services.set_profile(uow, customer_id, data)
            return jsonable(reports.profile_data(uow, customer_id))

    @router.post("/credit/customers/{customer_id}/writeoffs", status_code=201, tags=["credit"])
    def write_off(request: Request, customer_id: Id, data: WriteOffRequest) -> Any:
        """Write off bad debt on an invoice (a write-off entry naming it); needs ``credit.writeoff``."""
        with unit(request, write=True) as uow:
            visible_customer(uow, customer_id)
            e = services.write_off(uow, customer_id, data)
            return {"customer_id": customer_id, "invoice": data.invoice, "reference": e.reference,
                    "amount": str(e.amount), "currency": e.currency}

    @router.post("/credit/dunning/run", tags=["credit"])
    def dunning_run(request: Request, data: DunningRunIn) -> Any:
        """Raise each overdue invoice to its level, log the actions, hold at a flagged level."""
        with unit(request, write=True) as uow:
            return jsonable(dataclasses.asdict(dunning.run(uow, data.as_of)))
