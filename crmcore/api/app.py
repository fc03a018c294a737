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

from fastapi import APIRouter, FastAPI, Header, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from crmcore.api.auth import Unauthenticated, authenticate
from crmcore.api.gate import install_auth, install_docs
from crmcore.app import CRM
from crmcore.errors import Conflict, CRMError, DatabaseError, InvalidInput, NotFound, StaleVersion, Vetoed
from crmcore.limits import MAX_ID
from crmcore.models import Customer, IdempotencyRecord
from crmcore.schemas import (
    CustomerRead,
    CustomerUpdate,
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
    # /openapi.json, /docs and /redoc without a token (off: /openapi.json needs one, the pages are not served)
    public_docs: bool = False
    # `crm serve` logs each request (method, path, status) on stderr; --no-access-log turns it off
    access_log: bool = True
    # the older home of crm.toml's [visibility] table: still read (by crmcore.visibility), for every face
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
    app = FastAPI(title="crmcore API", version=_version(), docs_url=None, redoc_url=None,
                  description="The crmcore HTTP API: the same services, rules and errors as the `crm` command.")
    _same_visibility(crm, settings)
    app.state.crm = crm
    app.state.settings = settings
    _errors(app)
    _limits(app, settings)
    install_docs(app, settings.public_docs)
    router = APIRouter(responses=PROBLEMS)
    _core_routes(router, settings)
    app.include_router(router)
    plugin_router = APIRouter(responses=PROBLEMS)
    crm.hooks.register_routes(plugin_router)
    app.include_router(plugin_router)
    return app


def _same_visibility(crm: CRM, settings: ApiSettings) -> None:
    """``ApiSettings(visibility=...)`` given in code stands for crm.toml's ``[api] visibility``:
    it is folded into the CRM's one visibility table (``[visibility]`` still wins), so the CLI,
    the Python API and the HTTP API over this CRM keep agreeing."""
    if settings.visibility:
        from crmcore.visibility import visibility_modes

        config = crm.config if isinstance(crm.config, dict) else {}
        crm._visibility_modes = visibility_modes(  # type: ignore[attr-defined]
            {"api": {"visibility": settings.visibility}, "visibility": visibility_modes(config)})


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
    """Middleware, outermost first: CORS (a preflight carries no token), the token, the body size."""

    @app.middleware("http")
    async def body_limit(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length is not None and (not (length.isascii() and length.isdigit()) or int(length) > settings.max_body_bytes):
            return problem(413, _TITLES[413], f"request body larger than {settings.max_body_bytes} bytes")
        if request.method in ("POST", "PATCH", "PUT"):
            if length is None:  # a chunked body of unknown size could exhaust memory before it is checked
                return problem(411, _TITLES[411], "send the body with a Content-Length")
            body = await request.body()
            request.state.body = body  # for the Idempotency-Key check (request.state lives in the scope)
            if len(body) > settings.max_body_bytes:
                return problem(413, _TITLES[413], f"request body larger than {settings.max_body_bytes} bytes")
        return await call_next(request)

    install_auth(app, settings.public_docs)  # added later = runs earlier: no token, no body read
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["ETag", "Location"])


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


def own_only(uow: UnitOfWork, settings: Any = None) -> bool:
    """Deprecated: use ``uow.visibility.own_only`` (the rule lives in :mod:`crmcore.visibility`)."""
    return uow.visibility.own_only


def visible_customer(uow: UnitOfWork, *args: Any) -> Customer:
    """The customer for a route, or 404 when it does not exist or the user may not see it (no
    id probing): ``uow.customers.visible`` (``customer.read`` first, then visibility).

    Call it as ``visible_customer(uow, customer_id)``; the older ``(uow, settings, customer_id)``
    form is still accepted (the settings are ignored: visibility is configured once, in crm.toml).
    """
    if len(args) not in (1, 2):
        raise TypeError("visible_customer(uow, customer_id)")
    return uow.customers.visible(args[-1])


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
    """The core's routes, one module per area (crmcore/api/routes_*.py)."""
    from crmcore.api import routes_accounts, routes_customers, routes_duplicates, routes_more, routes_reads, routes_users

    routes_duplicates.register(r, settings)  # first: /customers/duplicates before /customers/{customer_id}
    routes_more.register(r, settings)  # /customers/by-ref/... before /customers/{customer_id} too

    routes_customers.register(r, settings)
    routes_accounts.register(r, settings)
    routes_users.register(r, settings)
    routes_reads.register(r, settings)
