"""The selling process's reports and the pipelines over HTTP (``crm sales report
sources|reasons|objections|follow-up|funnel``, ``crm sales pipeline list|show``): the same service calls, so an
"own" user sees only their leads and their customers' deals. Reads: they write nothing (the
default pipeline is stored by the first write that needs it)."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request

from crm_sales_automation import analytics, process, services
from crm_sales_automation.schemas import Username
from crmcore.sdk import jsonable, unit


def register(router: APIRouter) -> None:
    @router.get("/sales/reports/sources", tags=["sales"])
    def sources(request: Request, by: Literal["source", "campaign"] = "source") -> Any:
        """Per lead source (or campaign): conversion, win rate, cycle days and won revenue per
        currency (decimal strings)."""
        with unit(request, write=False) as uow:
            return jsonable(process.source_effectiveness(uow, by))

    @router.get("/sales/reports/reasons", tags=["sales"])
    def reasons(request: Request) -> Any:
        """Won and lost deals by reason word, with their share and amount per currency."""
        with unit(request, write=False) as uow:
            return jsonable(process.reasons(uow))

    @router.get("/sales/reports/objections", tags=["sales"])
    def objections(request: Request) -> Any:
        """``crm sales report objections --json``: per objection-handling method, and per method and
        objection kind, the objections, the share resolved and the share won of their deals closed."""
        with unit(request, write=False) as uow:
            return jsonable(process.objections(uow))

    @router.get("/sales/reports/follow-up", tags=["sales"])
    def follow_up(request: Request, days: Annotated[int | None, Query(ge=1, le=3650)] = None,
                  owner: Annotated[Username | None, Query()] = None, as_of: dt.date | None = None) -> Any:
        """Open leads and deals with no action for ``days`` (setting ``follow_up_days``) and
        nothing planned, by owner; ``as_of`` (YYYY-MM-DD) counts up to noon UTC of that day."""
        with unit(request, write=False) as uow:
            return jsonable(process.follow_up(uow, days, owner, as_of=as_of))

    @router.get("/sales/funnel", tags=["sales"])
    def funnel(request: Request, pipeline: Annotated[str | None, Query(min_length=1, max_length=64)] = None) -> Any:
        """``crm sales report funnel --json``: per pipeline the deals that reached each stage,
        conversion to the next, won, lost, win rate and average cycle days (an "own" user counts
        only the deals of the customers they see); ``pipeline`` limits it to one (404 if unknown)."""
        with unit(request, write=False) as uow:
            return jsonable(analytics.funnel(uow, pipeline))

    @router.get("/sales/pipelines", tags=["sales"])
    def pipelines(request: Request) -> Any:
        """Pipelines with their ordered stages (the default one's ``id`` is null until first used)."""
        with unit(request, write=False) as uow:
            return jsonable(services.list_pipelines(uow))

    @router.get("/sales/pipelines/{name}", tags=["sales"])
    def board(request: Request, name: Annotated[str, Path(min_length=1, max_length=64)],
              per_stage: Annotated[int, Query(ge=1, le=1000)] = 8) -> Any:
        """The board: per open stage its deals (largest first), count, value and weighted value
        per currency (decimal strings)."""
        with unit(request, write=False) as uow:
            return jsonable(services.board(uow, name, per_stage))
