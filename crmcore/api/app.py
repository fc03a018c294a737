"""The ASGI app: FastAPI over the same services and units of work as the CLI.

FastAPI because the request and response models ARE the core's pydantic schemas (one source of
truth for validation and for /openapi.json) and its OpenAPI output is what schemathesis fuzzes.

- Deny by default: every route needs ``Authorization: Bearer <token>``; a missing permission is
  403; a customer the user may not see is 404, exactly like one that does not exist.
- One request = one unit of work: GETs run read-only, writes commit once at the end, and a veto,
  a hook failure or any error rolls the whole request back.
- Errors are RFC 9457 problem details whose ``detail`` is the CLI's one-line message.
- Optimistic locking: customer responses carry ``ETag: "<version>"``; a PATCH needs ``If-Match``
  (428 without, 412 when stale). ``Idempotency-Key`` on POST: a retry gets the first response
  and writes nothing twice (the record is committed with the change itself).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from crmcore.api.auth import Unauthenticated, authenticate
from crmcore.app import CRM
from crmcore.errors import Conflict, CRMError, DatabaseError, InvalidInput, NotFound, StaleVersion, Vetoed
from crmcore.limits import MAX_ID
from crmcore.models import Customer, IdempotencyRecord
from crmcore.schemas import (
    AccountRead,
    ContactCreate,
    ContactRead,
    CustomerCreate,
    CustomerRead,
    CustomerUpdate,
    InteractionCreate,
    InteractionRead,
    TransactionCreate,
    TransactionRead,
    UserCreate,
    UserRead,
)
from crmcore.services._base import jsonable
from crmcore.uow import UnitOfWork

PROBLEM = "application/problem+json"
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=40)]


class ApiSettings(BaseModel):
    """``[api]`` in crm.toml."""

    model_config = ConfigDict(extra="forbid")

    max_body_bytes: int = Field(1_000_000, ge=1_000, le=100_000_000)
    max_page_size: int = Field(200, ge=1, le=10_000)
    cors_origins: list[str] = Field(default_factory=list)
    # role -> "all" | "own": which customers a role sees (the first "all" among a user's roles wins)
    visibility: dict[str, str] = Field(default_factory=dict)


def _status(e: CRMError) -> int:
    from crmcore.permissions import PermissionDenied, UnknownActor
    from crmcore.plugins import PluginUnavailable

    for cls, code in ((Unauthenticated, 401), (UnknownActor, 401), (PermissionDenied, 403), (NotFound, 404),
                      (StaleVersion, 412), (Vetoed, 409), (Conflict, 409), (InvalidInput, 422),
                      (PluginUnavailable, 503), (DatabaseError, 503)):
        if isinstance(e, cls):
            return code
    return 400


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"type": "about:blank", "title": title, "status": status, "detail": detail, **extra},
                        status_code=status, media_type=PROBLEM, headers=headers)


_TITLES = {400: "Bad Request", 401: "Unauthorized", 411: "Length Required", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 412: "Precondition Failed", 413: "Content Too Large", 415: "Unsupported Media Type",
           422: "Unprocessable Content", 428: "Precondition Required", 500: "Internal Server Error",
           503: "Service Unavailable"}


def etag(c: Customer | CustomerRead) -> str:
    return f'"{c.version}"'


class Problem(BaseModel):
    """RFC 9457 problem details; ``detail`` is the one-line message the CLI prints."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str


_PROBLEM_DOC = {"model": Problem, "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
#: every route may answer these (documented so clients, and schemathesis, know them)
PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {**_PROBLEM_DOC, "description": _TITLES[code]} for code in (400, 401, 403, 404, 409, 411, 412, 413, 422, 428, 503)}


class Page(BaseModel):
    items: list[CustomerRead]
    next_after: int | None = Field(None, description="pass as ?after= for the next page; null on the last page")


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    into: int = Field(ge=1, le=MAX_ID, description="id of the customer that keeps everything")


class CustomerPatch(CustomerUpdate):
    """A customer update; the version comes from ``If-Match``, never from the body (refused there)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _no_version(cls, data: Any) -> Any:
        if isinstance(data, dict) and "version" in data:
            raise ValueError("version: not allowed in the body; send the ETag as If-Match")
        return data


def create_app(crm: CRM, settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings.model_validate(crm.config.get("api", {}) if isinstance(crm.config, dict) else {})
    app = FastAPI(title="crmcore API", version=_version(),
                  description="The crmcore HTTP API: the same services, rules and errors as the `crm` command.")
    app.state.crm = crm
    app.state.settings = settings
    _errors(app)
    _limits(app, settings)
    router = APIRouter(responses=PROBLEMS)
    _core_routes(router, settings)
    app.include_router(router)
    plugin_router = APIRouter(responses=PROBLEMS)
    crm.hooks.call("crm_register_routes", router=plugin_router)
    app.include_router(plugin_router)
    return app


def _version() -> str:
    from crmcore import __version__

    return __version__


# -- errors and limits ---------------------------------------------------------------------

def _errors(app: FastAPI) -> None:
    @app.exception_handler(CRMError)
    async def crm_error(request: Request, e: CRMError) -> JSONResponse:
        status = _status(e)
        return problem(status, _TITLES.get(status, "Error"), str(e))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        parts = []
        for err in e.errors()[:10]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header"))
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
        return problem(422, _TITLES[422], "invalid input: " + "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        return problem(e.status_code, _TITLES.get(e.status_code, "Error"), str(e.detail))

    @app.exception_handler(IntegrityError)
    async def integrity(request: Request, e: IntegrityError) -> JSONResponse:
        return problem(409, _TITLES[409], "the change conflicts with data stored at the same moment; retry")

    @app.exception_handler(OperationalError)
    async def operational(request: Request, e: OperationalError) -> JSONResponse:
        return problem(503, _TITLES[503], "the database is busy or unavailable; retry")

    @app.exception_handler(Exception)
    async def internal(request: Request, e: Exception) -> JSONResponse:
        return problem(500, _TITLES[500], f"internal error ({type(e).__name__}); the request was rolled back")


def _limits(app: FastAPI, settings: ApiSettings) -> None:
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["ETag", "Location"])

    @app.middleware("http")
    async def body_limit(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            return problem(413, _TITLES[413], f"request body larger than {settings.max_body_bytes} bytes")
        if request.method in ("POST", "PATCH", "PUT"):
            if length is None:  # a chunked body of unknown size could exhaust memory before it is checked
                return problem(411, _TITLES[411], "send the body with a Content-Length")
            body = await request.body()
            request.state.body = body  # for the Idempotency-Key check (request.state lives in the scope)
            if len(body) > settings.max_body_bytes:
                return problem(413, _TITLES[413], f"request body larger than {settings.max_body_bytes} bytes")
        return await call_next(request)


# -- units of work ---------------------------------------------------------------------------

@contextmanager
def unit(request: Request, *, write: bool) -> Iterator[UnitOfWork]:
    """Authenticate and open the request's unit of work (read-only for reads)."""
    crm: CRM = request.app.state.crm
    with crm.unit_of_work("api", read_only=not write) as uow:
        # authenticated inside the request's own transaction: one unit of work per request
        user = authenticate(uow.session, request.headers.get("authorization"))
        uow.actor = user.username  # before anything reads the actor (permissions, audit)
        uow.api_user_id = user.id  # type: ignore[attr-defined]
        yield uow


def _has_tag(uow: UnitOfWork, tag: str) -> Any:
    """``tags`` (a JSON list) contains ``tag``, in SQL on both engines (so pagination stays exact)."""
    from sqlalchemy import cast, exists, literal
    from sqlalchemy import func as sa_func
    from sqlalchemy.dialects.postgresql import JSONB

    if uow.session.get_bind().dialect.name == "postgresql":
        return cast(Customer.tags, JSONB).contains([tag])
    each = sa_func.json_each(Customer.tags).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value == tag))


def own_only(uow: UnitOfWork, settings: ApiSettings) -> bool:
    """Does the acting user see only the customers they own (the ``[api] visibility`` setting)?"""
    user = uow.user
    if user is None or "admin" in (user.roles or []):
        return False
    modes = [settings.visibility.get(r, "all") for r in (user.roles or [])] or ["all"]
    return "all" not in modes


def visible_customer(uow: UnitOfWork, settings: ApiSettings, customer_id: int) -> Customer:
    """The customer, or 404 when it does not exist or the user may not see it (no ID probing)."""
    uow.require("customer.read")  # first: the answer must not depend on whether the id exists
    c = uow.session.get(Customer, customer_id)
    if c is None or (own_only(uow, settings) and c.owner_id != getattr(uow, "api_user_id", None)):
        raise NotFound("customer", customer_id)
    return c


def _body(request: Request) -> bytes:
    return getattr(request.state, "body", b"")


def _request_hash(request: Request, body: bytes) -> str:
    return hashlib.sha256(request.method.encode() + b" " + request.url.path.encode() + b"\n" + body).hexdigest()


def idempotent(request: Request, uow: UnitOfWork, key: str | None, body: bytes) -> JSONResponse | None:
    """The stored response of an earlier request with this key, or None (then remember this one)."""
    if key is None:
        return None
    if not 1 <= len(key) <= 200:
        raise InvalidInput("invalid Idempotency-Key: 1 to 200 characters")
    user_id = getattr(uow, "api_user_id", 0) or 0
    rec = uow.session.get(IdempotencyRecord, (user_id, key))
    digest = _request_hash(request, body)
    if rec is None:
        request.state.idempotency = (user_id, key, digest)
        return None
    if rec.request_hash != digest:
        raise InvalidInput(f"Idempotency-Key {key!r} was used for a different request")
    return JSONResponse(json.loads(rec.body), status_code=rec.status_code, headers={"Idempotent-Replayed": "true"})


def remember(request: Request, uow: UnitOfWork, status: int, payload: Any) -> None:
    """Store the response with the change (same transaction): committed together or not at all."""
    pending = getattr(request.state, "idempotency", None)
    if pending is not None:
        user_id, key, digest = pending
        uow.session.add(IdempotencyRecord(user_id=user_id, key=key, method=request.method, path=request.url.path,
                                          request_hash=digest, status_code=status, body=json.dumps(jsonable(payload))))
        uow.session.flush()


def _json(model: BaseModel) -> Any:
    return model.model_dump(mode="json")


# -- core routes -----------------------------------------------------------------------------

def _core_routes(r: APIRouter, settings: ApiSettings) -> None:

    @r.get("/customers", response_model=Page, tags=["customers"])
    def list_customers(request: Request, search: Annotated[str | None, Query(max_length=200)] = None,
                       tag: Annotated[str | None, Query(max_length=64)] = None,
                       after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
                       limit: Annotated[int, Query(ge=1, le=10_000)] = 50) -> Any:
        """Customers by id (keyset pagination: pass the page's ``next_after`` as ``after``)."""
        limit = min(limit, settings.max_page_size)
        with unit(request, write=False) as uow:
            uow.require("customer.read")
            q = select(Customer).where(Customer.id > after, Customer.archived.is_(False)).order_by(Customer.id).limit(limit + 1)
            if search:
                from crmcore.models.customer import fold

                q = q.where(Customer.search_name.contains(fold(search), autoescape=True))
            if own_only(uow, settings):
                q = q.where(Customer.owner_id == uow.api_user_id)  # type: ignore[attr-defined]
            if tag:
                q = q.where(_has_tag(uow, tag))
            rows = list(uow.session.scalars(q))
            items = [CustomerRead.model_validate(c) for c in rows[:limit]]
            more = len(rows) > limit
        return {"items": [_json(i) for i in items], "next_after": items[-1].id if more and items else None}

    @r.post("/customers", status_code=201, response_model=CustomerRead, tags=["customers"])
    def create_customer(request: Request, response: Response, data: CustomerCreate,
                        idempotency_key: IdemKey = None) -> Any:
        with unit(request, write=True) as uow:
            replay = idempotent(request, uow, idempotency_key, _body(request))
            if replay is not None:
                return replay
            c = uow.customers.create(data)
            out = _json(CustomerRead.model_validate(c))
            remember(request, uow, 201, out)
        response.headers["ETag"] = f'"{out["version"]}"'
        response.headers["Location"] = f"/customers/{out['id']}"
        return out

    @r.get("/customers/{customer_id}", tags=["customers"])
    def get_customer(request: Request, response: Response, customer_id: Id) -> Any:
        """The customer's 360° view: customer, contacts, timeline, accounts, plugin sections."""
        from crmcore.cli.customers import profile

        with unit(request, write=False) as uow:
            c = visible_customer(uow, settings, customer_id)
            data = jsonable(profile(uow, c))
            response.headers["ETag"] = etag(c)
        return data

    @r.patch("/customers/{customer_id}", response_model=CustomerRead, tags=["customers"])
    def update_customer(request: Request, response: Response, customer_id: Id, data: CustomerPatch,
                        if_match: IfMatch = None) -> Any:
        """Change fields; ``If-Match`` with the ETag you read is required (412 when someone changed it since)."""
        if if_match is None:
            return problem(428, _TITLES[428], "If-Match is required: send the ETag of the customer you read")
        version = if_match.strip().removeprefix("W/").strip('"')
        if not version.isdigit() or len(version) > 12:
            return problem(412, _TITLES[412], f"If-Match {if_match!r} is not an ETag of this API")
        with unit(request, write=True) as uow:
            visible_customer(uow, settings, customer_id)
            c = uow.customers.update(customer_id, data.model_copy(update={"version": int(version)}))
            out = _json(CustomerRead.model_validate(c))
        response.headers["ETag"] = f'"{out["version"]}"'
        return out

    @r.post("/customers/{customer_id}/archive", response_model=CustomerRead, tags=["customers"])
    def archive_customer(request: Request, customer_id: Id) -> Any:
        with unit(request, write=True) as uow:
            visible_customer(uow, settings, customer_id)
            return _json(CustomerRead.model_validate(uow.customers.archive(customer_id)))

    @r.post("/customers/{customer_id}/merge", tags=["customers"])
    def merge_customer(request: Request, customer_id: Id, data: MergeRequest) -> Any:
        """Merge this customer into ``into``; returns the rows moved per table."""
        with unit(request, write=True) as uow:
            visible_customer(uow, settings, customer_id)
            visible_customer(uow, settings, data.into)
            return {"merged": customer_id, "into": data.into, "moved": uow.customers.merge(customer_id, data.into)}

    @r.get("/customers/{customer_id}/contacts", response_model=list[ContactRead], tags=["contacts"])
    def list_contacts(request: Request, customer_id: Id) -> Any:
        with unit(request, write=False) as uow:
            visible_customer(uow, settings, customer_id)
            return [_json(ContactRead.model_validate(x)) for x in uow.contacts.list(customer_id)]

    @r.post("/customers/{customer_id}/contacts", status_code=201, response_model=ContactRead, tags=["contacts"])
    def add_contact(request: Request, customer_id: Id, data: ContactCreate, idempotency_key: IdemKey = None) -> Any:
        with unit(request, write=True) as uow:
            replay = idempotent(request, uow, idempotency_key, _body(request))
            if replay is not None:
                return replay
            visible_customer(uow, settings, customer_id)
            out = _json(ContactRead.model_validate(uow.contacts.add(customer_id, data)))
            remember(request, uow, 201, out)
            return out

    @r.get("/customers/{customer_id}/interactions", response_model=list[InteractionRead], tags=["interactions"])
    def list_interactions(request: Request, customer_id: Id, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> Any:
        with unit(request, write=False) as uow:
            visible_customer(uow, settings, customer_id)
            return [_json(InteractionRead.model_validate(x)) for x in uow.interactions.list(customer_id, limit=limit)]

    @r.post("/customers/{customer_id}/interactions", status_code=201, response_model=InteractionRead, tags=["interactions"])
    def log_interaction(request: Request, customer_id: Id, data: InteractionCreate, idempotency_key: IdemKey = None) -> Any:
        with unit(request, write=True) as uow:
            replay = idempotent(request, uow, idempotency_key, _body(request))
            if replay is not None:
                return replay
            visible_customer(uow, settings, customer_id)
            out = _json(InteractionRead.model_validate(uow.interactions.log(customer_id, data)))
            remember(request, uow, 201, out)
            return out

    @r.get("/customers/{customer_id}/accounts", response_model=list[AccountRead], tags=["accounts"])
    def list_accounts(request: Request, customer_id: Id) -> Any:
        with unit(request, write=False) as uow:
            visible_customer(uow, settings, customer_id)
            return [_json(AccountRead.model_validate(a)) for a in uow.accounts.list(customer_id)]

    @r.get("/accounts/{account_id}/statement", tags=["accounts"])
    def statement(request: Request, account_id: Id) -> Any:
        with unit(request, write=False) as uow:
            account = uow.accounts.get(account_id)
            try:
                visible_customer(uow, settings, account.customer_id)
            except NotFound:
                raise NotFound("account", account_id) from None  # the same answer as a missing account
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
            visible_customer(uow, settings, customer_id)
            entry, created = uow.accounts.post(customer_id, data)
            out = _json(TransactionRead.model_validate(entry))
            remember(request, uow, 201 if created else 200, out)
        response.status_code = 201 if created else 200
        return out

    @r.get("/users", response_model=list[UserRead], tags=["users"])
    def list_users(request: Request) -> Any:
        with unit(request, write=False) as uow:
            uow.require("user.manage")
            return [_json(UserRead.model_validate(u)) for u in uow.users.list()]

    @r.post("/users", status_code=201, response_model=UserRead, tags=["users"])
    def add_user(request: Request, data: UserCreate) -> Any:
        with unit(request, write=True) as uow:
            uow.require("user.manage")
            return _json(UserRead.model_validate(uow.users.add(data)))

