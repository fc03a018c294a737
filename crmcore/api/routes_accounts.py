"""Account routes: thin adapters over ``uow.accounts`` (permissions and visibility are the service's)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from crmcore.api.app import ApiSettings, Id, IdemKey, _body, _json, idempotent, remember, unit, visible_customer
from crmcore.schemas import AccountRead, TransactionCreate, TransactionRead


def register(r: APIRouter, settings: ApiSettings) -> None:
    @r.get("/customers/{customer_id}/accounts", response_model=list[AccountRead], tags=["accounts"])
    def list_accounts(request: Request, customer_id: Id) -> Any:
        with unit(request, write=False) as uow:
            return [_json(AccountRead.model_validate(a)) for a in uow.accounts.list(customer_id)]

    @r.get("/accounts/{account_id}/statement", tags=["accounts"])
    def statement(request: Request, account_id: Id) -> Any:
        """Every entry with its running balance (an account of a customer you may not see is 404)."""
        with unit(request, write=False) as uow:
            st = uow.accounts.statement(account_id)
            return {"account": _json(AccountRead.model_validate(st.account)), "opening_balance": str(st.opening_balance),
                    "lines": [{"entry": _json(TransactionRead.model_validate(line.entry)), "effect": str(line.effect),
                               "running_balance": str(line.running_balance)} for line in st.lines],
                    "closing_balance": str(st.closing_balance)}

    @r.post("/customers/{customer_id}/transactions", status_code=201, response_model=TransactionRead, tags=["accounts"])
    def post_transaction(request: Request, response: Response, customer_id: Id, data: TransactionCreate,
                         idempotency_key: IdemKey = None) -> Any:
        """Post an entry to the customer's default account; the same reference again is a no-op (200)."""
        with unit(request, write=True) as uow:
            replay = idempotent(request, uow, idempotency_key, _body(request))
            if replay is not None:
                return replay
            visible_customer(uow, customer_id)
            entry, created = uow.accounts.post(customer_id, data)
            out = _json(TransactionRead.model_validate(entry))
            remember(request, uow, 201 if created else 200, out)
        response.status_code = 201 if created else 200
        return out
