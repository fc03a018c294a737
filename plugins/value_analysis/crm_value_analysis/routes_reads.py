"""Value reads over HTTP that had only a command: ``crm value churn|loyalty|runs|fit|validate``.

Each route is its command's service call and answers exactly its ``--json`` document. The
services check the permissions: every one of these is about the whole customer base, so a user
who sees only their own customers (``[visibility]`` "own") needs ``value.report``, by every face.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from crm_value_analysis import services
from crmcore.sdk import jsonable, unit

Limit = Annotated[int, Query(ge=0, le=1000)]
TimeUnit = Literal["auto", "days", "weeks", "months"]
Currency = Annotated[str | None, Query(pattern=r"^[A-Za-z]{3}$")]


def _fits(router: APIRouter) -> None:
    @router.get("/value/fit", tags=["value"])
    def fit(request: Request, calibration_end: dt.date, model: Literal["auto", "bg_nbd", "mbg_nbd", "pareto_nbd"] | None = None,
            time_unit: TimeUnit | None = None, currency: Currency = None) -> Any:
        """A purchase model and Gamma-Gamma fitted on the purchases up to ``calibration_end`` (``crm value fit --json``)."""
        with unit(request, write=False) as uow:
            settings = services.settings_for(uow, {"time_unit": time_unit, "currency": currency})
            return jsonable(services.fit_models(uow, calibration_end, settings, model=model))

    @router.get("/value/validate", tags=["value"])
    def validate(request: Request, calibration_end: dt.date, holdout_end: dt.date,
                 model: Literal["auto", "all", "bg_nbd", "mbg_nbd", "pareto_nbd"] | None = None,
                 time_unit: TimeUnit | None = None, currency: Currency = None,
                 top: Annotated[int, Query(ge=0, le=1000, description="as the command's --top: its table; the JSON lists all")] = 20,
                 ) -> Any:
        """Predicted vs actual repeat purchases in the holdout, per model (``crm value validate --json``)."""
        with unit(request, write=False) as uow:
            settings = services.settings_for(uow, {"time_unit": time_unit, "currency": currency})
            return jsonable(services.validate_models(uow, calibration_end, holdout_end, settings, model=model))


def register(router: APIRouter) -> None:
    _fits(router)

    @router.get("/value/runs", tags=["value"])
    def runs(request: Request) -> Any:
        """The stored snapshots, latest first (``crm value runs --json``)."""
        with unit(request, write=False) as uow:
            return jsonable([r.model_dump() for r in services.list_runs(uow)])

    @router.get("/value/churn", tags=["value"])
    def churn(request: Request, limit: Limit = 20) -> Any:
        """Churn risk, most valuable first (``crm value churn --json``)."""
        with unit(request, write=False) as uow:
            return jsonable(services.churn_report(uow, limit=limit))

    @router.get("/value/loyalty", tags=["value"])
    def loyalty(request: Request, limit: Limit = 20) -> Any:
        """Loyalty index: distribution and the most loyal customers (``crm value loyalty --json``)."""
        with unit(request, write=False) as uow:
            return jsonable(services.loyalty_report(uow, limit=limit))
