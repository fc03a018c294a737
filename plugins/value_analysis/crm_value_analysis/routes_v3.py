"""HTTP routes of value_analysis 3: rankings by profit or revenue, unprofitable customers, churn
reasons and observed retention. Thin: one request = one unit of work over the services."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from crm_value_analysis import churn_reasons, services
from crmcore.sdk import MAX_ID, jsonable, unit

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=0, le=1000)]


class LossIn(BaseModel):
    """Why a customer was lost (one of the configured reasons)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=32)
    note: str | None = Field(None, max_length=500)
    lost_on: dt.date | None = None


def register(router: APIRouter) -> None:
    @router.get("/value/ranking/pyramid", tags=["value"])
    def pyramid(request: Request, by: Literal["profit", "revenue"] | None = None, limit: Limit = 20) -> Any:
        """Tiers ranked by profit or revenue (default: as the latest run ranked)."""
        with unit(request, write=False) as uow:
            return jsonable(services.pyramid_report(uow, limit=limit, by=by))

    @router.get("/value/ranking/pareto", tags=["value"])
    def pareto(request: Request, by: Literal["profit", "revenue"] | None = None) -> Any:
        with unit(request, write=False) as uow:
            return jsonable(services.pareto_report(uow, by=by))

    @router.get("/value/ranking/dependency", tags=["value"])
    def dependency(request: Request, by: Literal["profit", "revenue"] | None = None) -> Any:
        with unit(request, write=False) as uow:
            return jsonable(services.dependency_report(uow, by=by))

    @router.get("/value/unprofitable", tags=["value"])
    def unprofitable(request: Request, limit: Limit = 20) -> Any:
        """Customers who cost more than they bring, and which costs were counted."""
        with unit(request, write=False) as uow:
            return jsonable(services.unprofitable_report(uow, limit=limit))

    @router.post("/value/customers/{customer_id}/lost", tags=["value"], status_code=201)
    def lost(request: Request, customer_id: Id, body: LossIn) -> Any:
        """Record why the customer was lost."""
        with unit(request, write=True) as uow:
            return jsonable(churn_reasons.record_loss(uow, customer_id, body.reason, note=body.note, source="api",
                                                      lost_on=body.lost_on))

    @router.get("/value/churn-reasons", tags=["value"])
    def reasons(request: Request, limit: Limit = 20) -> Any:
        with unit(request, write=False) as uow:
            return jsonable(churn_reasons.churn_reasons_report(uow, limit=limit))

    @router.get("/value/lifecycle-patterns", tags=["value"])
    def patterns(request: Request) -> Any:
        """Aborted early, died mid-way, left early, long-lasting: over the stored snapshots."""
        with unit(request, write=False) as uow:
            return jsonable(churn_reasons.lifecycle_patterns(uow))

    @router.get("/value/retention", tags=["value"])
    def retention(request: Request, as_of: dt.date | None = None) -> Any:
        """Observed retention per cohort and yearly period."""
        with unit(request, write=False) as uow:
            return jsonable(churn_reasons.retention_report(uow, as_of=as_of))
