"""The plugin's HTTP routes (``crm serve``): the latest run's reports and one customer's value."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request

from crm_value_analysis import services
from crmcore.sdk import MAX_ID, jsonable, unit, visible_customer

Id = Annotated[int, Path(ge=1, le=MAX_ID)]


def register(router: APIRouter) -> None:
    from crm_value_analysis import routes_reads, routes_run

    routes_run.register(router)
    routes_reads.register(router)
    @router.get("/value/rfm", tags=["value"])
    def rfm(request: Request) -> Any:
        with unit(request, write=False) as uow:
            return jsonable(services.rfm_report(uow))

    @router.get("/value/pyramid", tags=["value"])
    def pyramid(request: Request, limit: Annotated[int, Query(ge=0, le=1000)] = 20) -> Any:
        """VIP / key / normal / small: counts, value shares, moves since the previous run."""
        with unit(request, write=False) as uow:
            return jsonable(services.pyramid_report(uow, limit=limit))

    @router.get("/value/clv", tags=["value"])
    def clv(request: Request, limit: Annotated[int, Query(ge=0, le=1000)] = 20,
            by: Literal["probabilistic", "deterministic"] = "probabilistic") -> Any:
        """Customer lifetime value, ranked by ``by`` (``crm value clv --json``)."""
        with unit(request, write=False) as uow:
            return jsonable(services.clv_report(uow, limit=limit, by=by))

    @router.get("/value/customers/{customer_id}", tags=["value"])
    def customer_value(request: Request, customer_id: Id) -> Any:
        """One customer's RFM, tier, lifecycle, churn risk, loyalty and CLV from the latest run."""
        with unit(request, write=False) as uow:
            visible_customer(uow, customer_id)
            return jsonable(services.customer_value(uow, customer_id))
