"""HTTP routes of credit reviews and warn-mode passes (issue 23 §4): one request = one unit of
work as the authenticated user; the reads and their visibility are :mod:`crm_credit.control`'s."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from crm_credit import control, services
from crmcore.sdk import MAX_ID, jsonable, unit, visible_customer


def register(router: APIRouter) -> None:
    @router.get("/credit/reviews/due", tags=["credit"])
    def reviews_due(request: Request, as_of: Annotated[dt.date | None, Query()] = None) -> Any:
        """Credit files due for review on ``as_of`` (default today), never reviewed ones included."""
        day = as_of or services.today()
        with unit(request, write=False) as uow:
            return jsonable({"as_of": day, "due": [r.__dict__ for r in control.review_due(uow, day)]})

    @router.get("/credit/warnings", tags=["credit"])
    def warnings(request: Request, customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> Any:
        """Documents that broke a credit rule and passed in warn mode, with who passed them."""
        with unit(request, write=False) as uow:
            if customer_id is not None:
                visible_customer(uow, customer_id)
            return jsonable([{"id": w.id, "customer_id": w.customer_id, "reference": w.reference, "amount": w.amount,
                              "currency": w.currency, "mode": w.mode_source, "passed_by": w.actor, "at": w.at,
                              "message": w.message} for w in control.warnings(uow, customer_id)])
