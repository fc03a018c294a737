"""The plugin's HTTP routes (``crm serve``): profile, check, hold/release, ageing.

Each request is one unit of work as the authenticated user; the services check the same
``credit.*`` permissions as the CLI (a release without ``credit.release`` is a 403).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from crm_credit import reports, services
from crm_credit.schemas import ReleaseRequest
from crmcore.schemas.fields import Multiline
from crmcore.sdk import MAX_ID, jsonable, unit, visible_customer

Id = Annotated[int, Path(ge=1, le=MAX_ID)]


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Decimal = Field(gt=0, max_digits=19, decimal_places=4, allow_inf_nan=False)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    document: str | None = Field(None, min_length=1, max_length=100,
                                 description="the document's reference (a release of it counts)")


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: Multiline = Field(min_length=1, max_length=500)


def register(router: APIRouter) -> None:
    from crm_credit import routes_reads, routes_writes

    routes_writes.register(router)
    routes_reads.register(router)
    @router.get("/credit/customers/{customer_id}", tags=["credit"])
    def profile(request: Request, customer_id: Id, history: bool = False) -> Any:
        """Limit, status, grade with its reasons, releases; ``history``: every change too
        (``crm credit profile show [--history] --json``)."""
        with unit(request, write=False) as uow:
            data = reports.profile_data(uow, customer_id)
            if history:
                data["history"] = [{"at": h.at, "actor": h.actor, "action": h.action, "before": h.before, "after": h.after,
                                    "reason": h.reason} for h in services.history(uow, customer_id)]
            return jsonable(data)

    @router.get("/credit/customers/{customer_id}/model-scores", tags=["credit"])
    def model_scores(request: Request, customer_id: Id) -> Any:
        """The customer's score under each applied trained scorecard, with its reason codes."""
        from crm_credit.scorecard_apply import customer_model_scores

        with unit(request, write=False) as uow:
            visible_customer(uow, customer_id)
            return jsonable(customer_model_scores(uow, customer_id))

    @router.post("/credit/customers/{customer_id}/check", tags=["credit"])
    def check(request: Request, customer_id: Id, data: CheckIn) -> Any:
        """Would a new document of this amount pass? The figures behind the answer and the control
        mode, as ``crm credit check --json``; nothing is written."""
        from crm_credit import control
        from crm_credit.settings import settings as credit_settings

        with unit(request, write=False) as uow:
            visible_customer(uow, customer_id)
            chk = services.check(uow, customer_id, data.amount, data.currency, data.document, lock=False)
            mode = control.mode_report(uow, credit_settings(uow), services.get_profile(uow, customer_id), chk)
            return jsonable({**chk.as_dict(), **mode})

    @router.post("/credit/customers/{customer_id}/hold", tags=["credit"])
    def hold(request: Request, customer_id: Id, data: HoldIn) -> Any:
        with unit(request, write=True) as uow:
            visible_customer(uow, customer_id)
            p = services.hold(uow, customer_id, data.reason)
            return {"customer_id": customer_id, "status": jsonable(p.status), "reason": data.reason}

    @router.post("/credit/customers/{customer_id}/release", tags=["credit"])
    def release(request: Request, customer_id: Id, data: ReleaseRequest) -> Any:
        """Release the customer (or one document, ``reference``) until the release expires."""
        with unit(request, write=True) as uow:
            visible_customer(uow, customer_id)
            r = services.release(uow, customer_id, data)
            return {"customer_id": customer_id, "reference": r.reference, "reason": r.reason,
                    "expires_at": jsonable(r.expires_at)}

    @router.get("/credit/aging", tags=["credit"])
    def aging(request: Request, as_of: Annotated[dt.date | None, Query()] = None,
              customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
              limit: Annotated[int, Query(ge=0, le=1_000_000)] = 50) -> Any:
        """Open receivables in buckets (current, 1-30, 31-60, 61-90, over 90 days past due) and totals
        (``crm credit aging --json``; ``limit``, as the command's, sizes its table: the JSON lists every customer)."""
        day = as_of or services.today()
        with unit(request, write=False) as uow:
            ids = None if customer_id is None else [visible_customer(uow, customer_id).id]
            return jsonable(reports.ageing(uow, day, ids))  # an "own" user's customers only, totals too
