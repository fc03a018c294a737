"""Credit reads over HTTP that had only a command: ``crm credit dso`` and ``crm credit dunning list``.

Each route is the service call of its command and answers exactly its ``--json`` object; the
services apply the actor's visibility (an "own" user's customers only, totals too).
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from crm_credit import dunning, reports, services
from crmcore.errors import InvalidInput
from crmcore.sdk import MAX_ID, jsonable, unit, visible_customer

CustomerId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
#: ``--limit`` of ``crm credit aging``/``dso``: it limits the table; the JSON (and so this route) lists every customer
Limit = Annotated[int, Query(ge=0, le=1_000_000, description="as the command's --limit: rows of its table; "
                                                            "the JSON lists every customer")]


def register(router: APIRouter) -> None:
    @router.get("/credit/dso", tags=["credit"])
    def dso(request: Request, start: Annotated[dt.date | None, Query(alias="from")] = None,
            end: Annotated[dt.date | None, Query(alias="to")] = None, customer_id: CustomerId = None,
            limit: Limit = 50) -> Any:
        """Days sales outstanding and average days to pay (``crm credit dso --json``)."""
        end = end or services.today()
        if start is None and end < dt.date.min + dt.timedelta(days=89):
            raise InvalidInput(f"invalid input: --to {end} leaves no 90-day period before it (give --from)")
        start = start or end - dt.timedelta(days=89)
        if start > end:
            raise InvalidInput(f"invalid input: --from {start} is after --to {end}")
        with unit(request, write=False) as uow:
            ids = None if customer_id is None else [visible_customer(uow, customer_id).id]
            return jsonable(reports.dso(uow, start, end, ids))

    @router.get("/credit/dunning", tags=["credit"])
    def dunning_list(request: Request, include_resolved: Annotated[bool, Query(alias="all")] = False) -> Any:
        """Invoices in dunning, highest level first (``crm credit dunning list --json``; ``all``: resolved too)."""
        with unit(request, write=False) as uow:
            return jsonable(dunning.listing(uow, include_resolved))
