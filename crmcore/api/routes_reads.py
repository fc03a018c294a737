"""The core's reads that had a command but no route: every interaction and every account the user
may see (``crm interaction list`` / ``crm account list`` without ``--customer``), the webhook
subscriptions (``crm webhooks list``) and the audit log (``crm audit``).

Thin adapters: each route calls the same service as its command and answers the command's
``--json`` document; permissions and visibility are the services' ("own" users see only their
customers' interactions and accounts; the audit log and the webhooks take ``user.manage``).
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from crmcore.api.app import ApiSettings, _json, unit
from crmcore.limits import MAX_ID
from crmcore.schemas import AccountRead, InteractionRead
from crmcore.services._base import jsonable
from crmcore.webhooks.subscriptions import webhooks_overview

Filter = Annotated[str | None, Query(min_length=1, max_length=254)]


def register(r: APIRouter, settings: ApiSettings) -> None:
    _customer_data(r)
    _admin(r)


def _customer_data(r: APIRouter) -> None:
    @r.get("/interactions", response_model=list[InteractionRead], tags=["interactions"])
    def all_interactions(request: Request, limit: Annotated[int, Query(ge=1, le=10_000)] = 50) -> Any:
        """The latest interactions of every customer you may see, newest first (``crm interaction list``)."""
        with unit(request, write=False) as uow:
            return [_json(InteractionRead.model_validate(x)) for x in uow.interactions.list(None, limit)]

    @r.get("/accounts", response_model=list[AccountRead], tags=["accounts"])
    def all_accounts(request: Request) -> Any:
        """The accounts of every customer you may see, with their balances (``crm account list``)."""
        with unit(request, write=False) as uow:
            return [_json(AccountRead.model_validate(a)) for a in uow.accounts.list(None)]


def _admin(r: APIRouter) -> None:
    @r.get("/audit", tags=["audit"])
    def audit_log(request: Request, entity: Filter = None, entity_id: Filter = None,
                  limit: Annotated[int, Query(ge=1, le=10_000)] = 50, actor: Filter = None, action: Filter = None,
                  before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> Any:
        """The audit log, newest first (``crm audit``; ``before``: the next page). Needs ``user.manage``."""
        with unit(request, write=False) as uow:
            return jsonable([audit_row(e) for e in uow.audit.list(entity, entity_id, limit, actor=actor, action=action,
                                                                   before=before)])

    @r.get("/webhooks", tags=["webhooks"])
    def list_webhooks(request: Request) -> Any:
        """Subscriptions with their pending, delivered and dead deliveries, and the latest dead letters
        (``crm webhooks list``). Needs ``user.manage``, like adding or removing one."""
        with unit(request, write=False) as uow:
            return jsonable(webhooks_overview(uow))


def audit_row(e: Any) -> dict[str, Any]:
    """One audit entry as ``crm audit --json`` shows it."""
    return {"at": e.at, "actor": e.actor, "action": e.action, "entity": e.entity, "id": e.entity_id,
            "before": e.before, "after": e.after}


