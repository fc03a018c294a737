"""Marketing reads over HTTP that had only a command: ``crm marketing campaign show`` and
``crm marketing cross-sell``, each answering its command's ``--json`` object (the services apply
permissions and the actor's visibility: an "own" user's candidates are their customers only)."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from crm_marketing import reporting, services
from crmcore.errors import InvalidInput
from crmcore.sdk import jsonable, unit

Name = Annotated[str, Path(min_length=1, max_length=100)]
Group = Annotated[str, Query(min_length=1, max_length=100)]


def register(router: APIRouter) -> None:
    @router.get("/marketing/campaigns/{name}", tags=["marketing"])
    def show_campaign(request: Request, name: Name) -> Any:
        """A campaign's settings and segments (``crm marketing campaign show --json``)."""
        with unit(request, write=False) as uow:
            c = services.get_campaign(uow, name)
            return jsonable({"id": c.id, "name": c.name, "objective": c.objective, "channel": c.channel, "status": c.status,
                             "budget": c.budget, "currency": c.currency, "starts_at": c.starts_at, "ends_at": c.ends_at,
                             "control_share": c.control_share, "seed": c.seed, "segments": services.campaign_segments(uow, c),
                             "attribution_days": c.attribution_days, "price_offer": c.price_offer, "subject": c.subject,
                             "launched_at": c.launched_at})

    @router.get("/marketing/cross-sell", tags=["marketing"])
    def cross_sell(request: Request, bought: Group, not_bought: Group,
                   limit: Annotated[int, Query(ge=0, le=100_000)] = 20) -> Any:
        """Customers who bought in one product group and never in another (``crm marketing cross-sell --json``)."""
        if bought == not_bought:
            raise InvalidInput("invalid input: --bought and --not-bought must differ")
        with unit(request, write=False) as uow:
            total, rows = reporting.cross_sell(uow, bought, not_bought, limit)
            return jsonable({"bought": bought, "not_bought": not_bought, "count": total, "customers": rows})
