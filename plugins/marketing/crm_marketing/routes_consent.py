"""Consent over HTTP (a web form, a preference centre): per customer and channel, as it is
stored today (a later change adds consent per person). The same service calls as
``crm marketing consent set|show``; ``marketing.consent.write`` is the service's check."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from crm_marketing import services
from crm_marketing.schemas import ConsentSet
from crmcore.sdk import jsonable, unit

Customer = Annotated[str, Path(min_length=1, max_length=100, description="external reference, or #id")]


def _rows(uow: Any, customer_id: int) -> list[dict[str, Any]]:
    return [{"channel": x.channel, "status": x.status, "at": jsonable(x.at), "source": x.source}
            for x in services.consents(uow, customer_id)]


def register(router: APIRouter) -> None:
    @router.get("/marketing/customers/{customer}/consent", tags=["marketing"])
    def show_consent(request: Request, customer: Customer) -> Any:
        """The customer's consent per channel (opt_in, opt_out, unsubscribed), with date and source."""
        with unit(request, write=False) as uow:
            c = services.resolve_customer(uow, customer)  # the core's resolver: visibility applies
            return {"customer_id": c.id, "consent": _rows(uow, c.id)}

    @router.put("/marketing/customers/{customer}/consent", tags=["marketing"])
    def set_consent(request: Request, customer: Customer, data: ConsentSet) -> Any:
        """Record a consent statement for one channel; an older statement never replaces a newer one (409)."""
        if "source" not in data.model_fields_set:
            data = data.model_copy(update={"source": "api"})
        with unit(request, write=True) as uow:
            c = services.resolve_customer(uow, customer)
            services.set_consent(uow, c.id, data)
            return {"customer_id": c.id, "consent": _rows(uow, c.id)}
