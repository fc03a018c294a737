"""The core's remaining writes over HTTP, so every ``crm`` command that writes has a route (see
tests/test_api_parity.py): contacts, accounts, users, and a customer found by its external reference.

Thin adapters: each route calls the same service method as its command; permissions and
visibility are the services'.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from crmcore.api.app import ApiSettings, Id, IdemKey, _body, _json, idempotent, remember, unit, visible_customer
from crmcore.enums import AccountStatus
from crmcore.errors import NotFound
from crmcore.schemas import AccountCreate, AccountRead, ContactRead, ContactUpdate, CustomerRead, UserRead

Username = Annotated[str, Path(min_length=1, max_length=64)]


class AccountStatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: AccountStatus = Field(description="open (release a hold), on_hold or closed")


class RolesChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=20)


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description="a public http(s) target, or a host in [webhooks] allow_hosts")
    events: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(min_length=1, max_length=100,
                                                                             description="event types, or '*' for all")
    secret: str | None = Field(None, min_length=16, max_length=128, description="HMAC secret (default: a new random one)")


def register(r: APIRouter, settings: ApiSettings) -> None:
    _customers_and_contacts(r)
    _accounts(r)
    _users(r)
    _webhooks(r)


def _customers_and_contacts(r: APIRouter) -> None:
    @r.get("/customers/by-ref/{external_ref}", response_model=CustomerRead, tags=["customers"])
    def customer_by_ref(request: Request, response: Response,
                        external_ref: Annotated[str, Path(min_length=1, max_length=100)]) -> Any:
        """The customer holding this external reference (404 when none you may see holds it)."""
        with unit(request, write=False) as uow:
            c = uow.customers.visible(external_ref)
            if c.external_ref != external_ref:  # resolve() falls back to ids; this route is references only
                raise NotFound("customer", external_ref)
            out = _json(CustomerRead.model_validate(c))
        response.headers["ETag"] = f'"{out["version"]}"'
        return out

    @r.patch("/contacts/{contact_id}", response_model=ContactRead, tags=["contacts"])
    def update_contact(request: Request, contact_id: Id, data: ContactUpdate) -> Any:
        """Change a contact (``crm contact update``)."""
        with unit(request, write=True) as uow:
            return _json(ContactRead.model_validate(uow.contacts.update(contact_id, data)))

    @r.delete("/contacts/{contact_id}", status_code=204, tags=["contacts"])
    def remove_contact(request: Request, contact_id: Id) -> Response:
        """Remove a contact (``crm contact remove``); the audit log keeps the whole row."""
        with unit(request, write=True) as uow:
            uow.contacts.remove(contact_id)
        return Response(status_code=204)


def _accounts(r: APIRouter) -> None:
    @r.post("/customers/{customer_id}/accounts", status_code=201, response_model=AccountRead, tags=["accounts"])
    def open_account(request: Request, customer_id: Id, data: AccountCreate, idempotency_key: IdemKey = None) -> Any:
        """Open an account (``crm account open``)."""
        with unit(request, write=True) as uow:
            replay = idempotent(request, uow, idempotency_key, _body(request))
            if replay is not None:
                return replay
            visible_customer(uow, customer_id)
            out = _json(AccountRead.model_validate(uow.accounts.open(customer_id, data)))
            remember(request, uow, 201, out)
            return out

    @r.post("/accounts/{account_id}/status", response_model=AccountRead, tags=["accounts"])
    def account_status(request: Request, account_id: Id, data: AccountStatusChange) -> Any:
        """Put an account on hold, release it or close it (``crm account status``)."""
        with unit(request, write=True) as uow:
            return _json(AccountRead.model_validate(uow.accounts.set_status(account_id, data.status)))


def _users(r: APIRouter) -> None:
    @r.put("/users/{username}/roles", response_model=UserRead, tags=["users"])
    def set_roles(request: Request, username: Username, data: RolesChange) -> Any:
        """Replace a user's roles (``crm user roles``)."""
        with unit(request, write=True) as uow:
            return _json(UserRead.model_validate(uow.users.set_roles(username, data.roles)))

    @r.post("/users/{username}/deactivate", response_model=UserRead, tags=["users"])
    def deactivate(request: Request, username: Username) -> Any:
        """Stop a user from acting (``crm user deactivate``)."""
        with unit(request, write=True) as uow:
            return _json(UserRead.model_validate(uow.users.set_active(username, False)))

    @r.post("/users/{username}/activate", response_model=UserRead, tags=["users"])
    def activate(request: Request, username: Username) -> Any:
        """Let a deactivated user act again (``crm user activate``)."""
        with unit(request, write=True) as uow:
            return _json(UserRead.model_validate(uow.users.set_active(username, True)))


def _webhooks(r: APIRouter) -> None:
    @r.post("/webhooks", status_code=201, tags=["webhooks"])
    def add_webhook(request: Request, data: WebhookIn) -> Any:
        """Subscribe a URL to events (``crm webhooks add``); the secret is returned once."""
        from crmcore.webhooks import subscriptions

        with unit(request, write=True) as uow:
            sub, secret = subscriptions.add(uow, data.url, data.events, data.secret)
            return {"id": sub.id, "url": sub.url, "events": sorted(set(sub.events)), "secret": secret}

    @r.delete("/webhooks/{subscription_id}", status_code=204, tags=["webhooks"])
    def remove_webhook(request: Request, subscription_id: Id) -> Response:
        """Stop a subscription (``crm webhooks remove``); its undelivered events are dropped."""
        from crmcore.webhooks import subscriptions

        with unit(request, write=True) as uow:
            subscriptions.remove(uow, subscription_id)
        return Response(status_code=204)
