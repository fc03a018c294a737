"""The API's front door: the bearer token is checked before anything else, and the docs pages.

Authentication before validation: FastAPI validates a route's path, query and body before the
route runs, so a check inside the route would answer a request without a token with a 422 that
describes the route's parameters. This middleware checks the token first, for every path (core
and plugin routes, and paths that do not exist), in a read-only unit of work of its own; the
route then authenticates again in the request's own unit of work (``crmcore.api.app.unit``), so
a token revoked in between is still refused.

The docs (``[api] public_docs``): when false (the default) ``/openapi.json`` needs a token like
any route and the ``/docs`` and ``/redoc`` pages are not served (a browser cannot send the token);
when true the three answer without a token, and the pages load Swagger UI and ReDoc from the
``fastapi-offline`` package (no CDN: they work on a network without internet access).
"""
from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from crmcore.api.auth import Unauthenticated, authenticate, check_header
from crmcore.errors import CRMError

DOCS, REDOC, ASSETS = "/docs", "/redoc", "/docs/assets"


def public_paths(app: FastAPI, public_docs: bool) -> frozenset[str]:
    """The paths that answer without a token: the docs when the setting says so, nothing else."""
    return frozenset((app.openapi_url or "", DOCS, REDOC)) if public_docs else frozenset()


def install_auth(app: FastAPI, public_docs: bool) -> None:
    """Refuse a request without a valid token (401) before routing and validation."""
    from crmcore.api.app import _TITLES, _status, problem

    public = public_paths(app, public_docs)

    def check(header: str | None) -> None:
        check_header(header)  # no token at all: no database round trip
        with app.state.crm.unit_of_work("api", read_only=True) as uow:
            authenticate(uow.session, header)

    @app.middleware("http")
    async def authenticate_first(request: Request, call_next: Any) -> Any:
        path = request.url.path
        if path in public or (public_docs and path.startswith(ASSETS + "/")):
            return await call_next(request)
        try:
            await run_in_threadpool(check, request.headers.get("authorization"))
        except Unauthenticated as e:
            return problem(401, _TITLES[401], str(e))
        except CRMError as e:  # the database is missing or not initialised
            status = _status(e)
            return problem(status, _TITLES.get(status, "Error"), str(e))
        except SQLAlchemyError:
            return problem(503, _TITLES[503], "the database is busy or unavailable; retry")
        return await call_next(request)


def _assets() -> Path:
    spec = find_spec("fastapi_offline")
    if spec is None or spec.origin is None:  # a dependency of crmcore: only a broken install lacks it
        raise RuntimeError("the fastapi-offline package is missing: pip install fastapi-offline")
    return Path(spec.origin).parent / "static"


def install_docs(app: FastAPI, public_docs: bool) -> None:
    """Serve ``/docs`` (Swagger UI) and ``/redoc`` from local files, when the docs are public."""
    if not public_docs:
        return
    from starlette.staticfiles import StaticFiles

    app.mount(ASSETS, StaticFiles(directory=_assets()), name="docs-assets")
    openapi = app.openapi_url or "/openapi.json"

    @app.get(DOCS, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(openapi_url=root + openapi, title=f"{app.title} - Swagger UI",
                                   swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{ASSETS}/favicon.png")

    @app.get(REDOC, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=root + openapi, title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{root}{ASSETS}/favicon.png", with_google_fonts=False)

