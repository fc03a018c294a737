"""``POST /value/runs``: the analysis run over HTTP, the service call of ``crm value run``
(same settings overrides, same permission check in the service)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from crm_value_analysis import services
from crmcore.sdk import jsonable, unit


class RunIn(BaseModel):
    """Overrides of the ``[value_analysis]`` settings for this run, as ``crm value run`` takes them."""

    model_config = ConfigDict(extra="forbid")

    as_of: dt.date | None = Field(None, description="analysis date (default today, UTC); a run of the same date is replaced")
    update_lifecycle: bool = Field(True, description="false: do not update the customers' lifecycle stage")
    window_days: int | None = None
    time_unit: str | None = Field(None, max_length=10)
    model: str | None = Field(None, max_length=20)
    currency: str | None = Field(None, max_length=3)
    margin: str | None = Field(None, max_length=40)
    discount_rate: str | None = Field(None, max_length=40)
    horizon_months: int | None = None
    retention: str | None = Field(None, max_length=40)
    acquisition_cost: str | None = Field(None, max_length=40)
    churn_threshold: str | None = Field(None, max_length=40)
    churn_gap_factor: str | None = Field(None, max_length=40)


def register(router: APIRouter) -> None:
    @router.post("/value/runs", tags=["value"])
    def run(request: Request, data: RunIn) -> Any:
        """Analyse every customer in one pass and store the snapshot (the reports read the latest)."""
        overrides = data.model_dump(exclude={"as_of", "update_lifecycle"}, exclude_none=True)
        with unit(request, write=True) as uow:
            settings = services.settings_for(uow, {k: str(v) for k, v in overrides.items()})
            if not data.update_lifecycle:
                settings = settings.model_copy(update={"lifecycle": settings.lifecycle.model_copy(update={"update_core": False})})
            out = services.run_analysis(uow, as_of=data.as_of, settings=settings)
            summary = {**out.summary, "pareto": {k: v for k, v in (out.summary["pareto"] or {}).items() if k != "curve"} or None}
            return jsonable({"run": out.run.model_dump(), "summary": summary})
