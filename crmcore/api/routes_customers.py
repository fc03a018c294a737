"""Customer, contact and interaction routes: thin adapters over ``uow.customers``, ``uow.profiles``,
``uow.contacts`` and ``uow.interactions`` (permissions and visibility are the services')."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field, ValidationError

from crmcore.api.app import (
    _TITLES,
    ApiSettings,
    CustomerPatch,
    Id,
    IdemKey,
    IfMatch,
    MergeRequest,
    Page,
    _body,
    _json,
    idempotent,
    problem,
    remember,
    unit,
    visible_customer,
)
from crmcore.enums import LifecycleStage
from crmcore.errors import InvalidInput, invalid_input
from crmcore.limits import MAX_ID, MAX_SEARCH
from crmcore.schemas import (
    ContactCreate,
    ContactRead,
    CustomerCreate,
    CustomerQuery,
    CustomerRead,
    InteractionCreate,
    InteractionRead,
)
from crmcore.schemas.fields import Ref


class InteractionLog(InteractionCreate):
    """The body of a logged interaction: the touchpoint and, optionally, the person spoken with."""

    contact: Annotated[int, Field(ge=1, le=MAX_ID)] | Ref | None = Field(
        None, description="id or external reference of one of this customer's contacts (another's is a 422)")


class InteractionOut(InteractionRead):
    """An interaction as the API returns it (``contact_id``: its contact person, null when none)."""


def register(r: APIRouter, settings: ApiSettings) -> None:
    _list_and_show(r, settings)
    _changes(r)
    _contacts_and_interactions(r)


def _list_and_show(r: APIRouter, settings: ApiSettings) -> None:
    @r.get("/customers", response_model=Page, tags=["customers"])
    def list_customers(request: Request, search: Annotated[str | None, Query(max_length=MAX_SEARCH)] = None,
                       tag: Annotated[str | None, Query(max_length=64)] = None,
                       owner: Annotated[str | None, Query(max_length=64, description="username of the owner")] = None,
                       country: Annotated[str | None, Query(max_length=2, description="ISO 3166 alpha-2")] = None,
                       stage: Annotated[LifecycleStage | None, Query(description="lifecycle stage")] = None,
                       archived: Annotated[bool, Query(description="include archived customers")] = False,
                       after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
                       limit: Annotated[int, Query(ge=1, le=10_000, description=(
                           "page size, at most crm.toml [api] max_page_size (200 by default); above it: 422"))] = 50) -> Any:
        """The customers you may see, by id (keyset pages: pass the page's ``next_after`` as ``after``).

        ``search`` matches part of the name, email or external reference, case-insensitively.
        """
        if limit > settings.max_page_size:  # refused, not clamped: a client must not think it got everything
            raise InvalidInput(f"invalid input: limit: at most {settings.max_page_size} ([api] max_page_size)",
                               [("limit", f"at most {settings.max_page_size}")])
        given = {"search": search, "tag": tag, "owner": owner, "country": country, "stage": stage}
        try:
            query = CustomerQuery(**{k: v for k, v in given.items() if v is not None}, archived=archived,
                                  after=after, limit=limit)
        except ValidationError as e:
            raise invalid_input(e) from None
        with unit(request, write=False) as uow:
            page = uow.customers.search(query)
            items = [_json(CustomerRead.model_validate(c)) for c in page.items]
        return {"items": items, "next_after": page.next_after}

    @r.get("/customers/{customer_id}", tags=["customers"])
    def get_customer(request: Request, response: Response, customer_id: Id,
                     interactions: Annotated[int, Query(ge=0, le=1000)] = 10) -> Any:
        """The customer's 360° view: customer, contacts, timeline, accounts, plugin sections."""
        with unit(request, write=False) as uow:
            data = uow.profiles.get(customer_id, interactions=interactions)
            response.headers["ETag"] = f'"{data["customer"]["version"]}"'
        return data


def _changes(r: APIRouter) -> None:
    @r.post("/customers", status_code=201, response_model=CustomerRead, tags=["customers"])
    def create_customer(request: Request, response: Response, data: CustomerCreate,
                        idempotency_key: IdemKey = None, force: Annotated[bool, Query()] = False) -> Any:
        """A likely duplicate of an active customer is refused (409) unless ``?force=true``."""
        with unit(request, write=True) as uow:
            replay = idempotent(request, uow, idempotency_key, _body(request))
            if replay is not None:
                return replay
            c = uow.customers.create(data, force=force)
            out = _json(CustomerRead.model_validate(c))
            remember(request, uow, 201, out)
        response.headers["ETag"] = f'"{out["version"]}"'
        response.headers["Location"] = f"/customers/{out['id']}"
        return out

    @r.patch("/customers/{customer_id}", response_model=CustomerRead, tags=["customers"])
    def update_customer(request: Request, response: Response, customer_id: Id, data: CustomerPatch,
                        if_match: IfMatch = None) -> Any:
        """Change fields; ``If-Match`` with the ETag you read is required (412 when someone changed it since)."""
        if if_match is None:
            return problem(428, _TITLES[428], "If-Match is required: send the ETag of the customer you read")
        version = if_match.strip().removeprefix("W/").strip('"')
        if not (version.isascii() and version.isdigit()) or len(version) > 12:
            return problem(412, _TITLES[412], f"If-Match {if_match!r} is not an ETag of this API")
        with unit(request, write=True) as uow:
            visible_customer(uow, customer_id)
            c = uow.customers.update(customer_id, data.model_copy(update={"version": int(version)}))
            out = _json(CustomerRead.model_validate(c))
        response.headers["ETag"] = f'"{out["version"]}"'
        return out

    @r.post("/customers/{customer_id}/archive", response_model=CustomerRead, tags=["customers"])
    def archive_customer(request: Request, customer_id: Id) -> Any:
        with unit(request, write=True) as uow:
            visible_customer(uow, customer_id)
            return _json(CustomerRead.model_validate(uow.customers.archive(customer_id)))

    @r.post("/customers/{customer_id}/merge", tags=["customers"])
    def merge_customer(request: Request, customer_id: Id, data: MergeRequest) -> Any:
        """Merge this customer into ``into``; returns the rows moved per table."""
        with unit(request, write=True) as uow:
            visible_customer(uow, customer_id)
            visible_customer(uow, data.into)
            return {"merged": customer_id, "into": data.into, "moved": uow.customers.merge(customer_id, data.into)}


def _contacts_and_interactions(r: APIRouter) -> None:
    @r.get("/customers/{customer_id}/contacts", response_model=list[ContactRead], tags=["contacts"])
    def list_contacts(request: Request, customer_id: Id) -> Any:
        with unit(request, write=False) as uow:
            return [_json(ContactRead.model_validate(x)) for x in uow.contacts.list(customer_id)]

    @r.post("/customers/{customer_id}/contacts", status_code=201, response_model=ContactRead, tags=["contacts"])
    def add_contact(request: Request, customer_id: Id, data: ContactCreate, idempotency_key: IdemKey = None) -> Any:
        with unit(request, write=True) as uow:
            replay = idempotent(request, uow, idempotency_key, _body(request))
            if replay is not None:
                return replay
            visible_customer(uow, customer_id)
            out = _json(ContactRead.model_validate(uow.contacts.add(customer_id, data)))
            remember(request, uow, 201, out)
            return out

    @r.get("/customers/{customer_id}/interactions", response_model=list[InteractionOut], tags=["interactions"])
    def list_interactions(request: Request, customer_id: Id, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> Any:
        with unit(request, write=False) as uow:
            return [_json(InteractionOut.model_validate(x)) for x in uow.interactions.list(customer_id, limit=limit)]

    @r.post("/customers/{customer_id}/interactions", status_code=201, response_model=InteractionOut, tags=["interactions"])
    def log_interaction(request: Request, customer_id: Id, data: InteractionLog, idempotency_key: IdemKey = None) -> Any:
        with unit(request, write=True) as uow:
            replay = idempotent(request, uow, idempotency_key, _body(request))
            if replay is not None:
                return replay
            visible_customer(uow, customer_id)
            fields = data.model_dump(exclude={"contact"}, exclude_unset=True)
            logged = uow.interactions.log(customer_id, InteractionCreate.model_validate(fields), contact=data.contact)
            out = _json(InteractionOut.model_validate(logged))
            remember(request, uow, 201, out)
            return out
