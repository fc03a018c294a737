"""HTTP routes: the same functions as the commands, one request = one unit of work."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from crm_warranty import claims
from crmcore.sdk import MAX_ID, PROBLEMS, unit

router = APIRouter(responses=PROBLEMS, tags=["warranty"])
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/warranty/customers/{customer_id}/claims")
def list_claims(request: Request, customer_id: Id) -> list[dict[str, Any]]:
    with unit(request, write=False) as uow:
        return [claims.as_dict(c) for c in claims.claims_of(uow, customer_id)]


@router.post("/warranty/customers/{customer_id}/claims", status_code=201)
def open_claim(request: Request, customer_id: Id, data: claims.ClaimIn) -> dict[str, Any]:
    with unit(request, write=True) as uow:
        return claims.as_dict(claims.open_claim(uow, customer_id, data))
