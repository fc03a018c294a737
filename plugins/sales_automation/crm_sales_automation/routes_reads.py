"""Sales reads over HTTP with every option of their commands: ``crm sales lead list``, ``opp list``,
``forecast``, ``activity due``, ``quota list`` and ``report performance|pipeline|probabilities|stale``.

Each route is its command's service call and answers exactly its ``--json`` document (money as
decimal strings); the services apply the actor's visibility (``crm_sales_automation.visibility``:
an "own" user's leads, their customers' deals and activities, their quotas; totals of those only).
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from crm_sales_automation import analytics, services
from crmcore.sdk import MAX_ID, jsonable, unit, visible_customer

Owner = Annotated[str | None, Query(min_length=1, max_length=64, description="username of the owner")]
Word = Annotated[str | None, Query(min_length=1, max_length=64)]
Limit = Annotated[int, Query(ge=1, le=100_000)]
Rates = Annotated[list[str] | None, Query(max_length=50, description="CUR=RATE: 1 CUR = RATE units of `to` (repeat)")]
To = Annotated[str | None, Query(min_length=3, max_length=3, description="convert every amount into this currency")]


def _lists(router: APIRouter) -> None:
    @router.get("/sales/leads", tags=["sales"])
    def list_leads(request: Request, status: Annotated[str | None, Query(pattern="^(new|contacted|qualified|disqualified|converted)$")] = None,
                   owner: Owner = None, limit: Annotated[int, Query(ge=1, le=100_000)] = 50) -> Any:
        """Leads with their score (``crm sales lead list --json``)."""
        with unit(request, write=False) as uow:
            uow.require("customer.read")
            return jsonable(services.list_leads(uow, status=status, owner=owner, limit=limit))

    @router.get("/sales/opportunities", tags=["sales"])
    def list_opportunities(request: Request, status: Annotated[str, Query(pattern="^(open|won|lost|all)$")] = "open",
                           owner: Owner = None, pipeline: Word = None, stage: Word = None,
                           customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None, limit: Limit = 50) -> Any:
        """Opportunities, open ones by default (``crm sales opp list --json``)."""
        with unit(request, write=False) as uow:
            uow.require("customer.read")
            cid = None if customer_id is None else visible_customer(uow, customer_id).id
            return jsonable(services.list_opportunities(uow, status=None if status == "all" else status, owner=owner,
                                                        pipeline=pipeline, stage=stage, customer_id=cid, limit=limit))

    @router.get("/sales/activities/due", tags=["sales"])
    def activities_due(request: Request, owner: Owner = None, until: dt.date | None = None) -> Any:
        """Open activities due by a day, overdue first (``crm sales activity due --json``)."""
        with unit(request, write=False) as uow:
            return jsonable(services.due_activities(uow, owner=owner, until=until))

    @router.get("/sales/quotas", tags=["sales"])
    def quotas(request: Request) -> Any:
        """Quotas per rep and month (``crm sales quota list --json``)."""
        with unit(request, write=False) as uow:
            return jsonable(services.list_quotas(uow))


def _reports(router: APIRouter) -> None:
    @router.get("/sales/forecast", tags=["sales"])
    def forecast(request: Request, by: Annotated[str, Query(pattern="^(month|owner|pipeline)$")] = "month",
                 learned: bool = False, rate: Rates = None, to: To = None) -> Any:
        """Open deals by month of expected close (``crm sales forecast --json``)."""
        conversion = analytics.parse_rates(rate or [], to)
        with unit(request, write=False) as uow:
            uow.require("customer.read")
            return jsonable(analytics.forecast(uow, by, learned=learned, conversion=conversion))

    @router.get("/sales/reports/performance", tags=["sales"])
    def performance(request: Request) -> Any:
        """Per rep: won, lost, win rate, cycle, activities, pipeline (``crm sales report performance --json``)."""
        with unit(request, write=False) as uow:
            return jsonable(analytics.performance(uow))

    @router.get("/sales/reports/pipeline", tags=["sales"])
    def pipeline(request: Request, by: Literal["stage", "owner", "pipeline"] = "stage", rate: Rates = None, to: To = None) -> Any:
        """Weighted pipeline per currency (``crm sales report pipeline --json``)."""
        conversion = analytics.parse_rates(rate or [], to)
        with unit(request, write=False) as uow:
            return jsonable(analytics.weighted_pipeline(uow, by, conversion))

    @router.get("/sales/reports/probabilities", tags=["sales"])
    def probabilities(request: Request) -> Any:
        """Win rates learned by stage and age, Brier scores (``crm sales report probabilities --json``)."""
        with unit(request, write=False) as uow:
            return jsonable(analytics.learned_probabilities(uow))

    @router.get("/sales/reports/stale", tags=["sales"])
    def stale(request: Request, days: Annotated[int | None, Query(ge=1, le=3650)] = None, as_of: dt.date | None = None) -> Any:
        """Idle deals, deals past their close date, overdue activities (``crm sales report stale --json``)."""
        with unit(request, write=False) as uow:
            return jsonable(analytics.stale(uow, days, as_of=as_of))


def register(router: APIRouter) -> None:
    _lists(router)
    _reports(router)
