"""Build the console: a Starlette app mounted by ``crm serve`` at ``/console``."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from crmcore.console import extensions, i18n
from crmcore.console.auth import ConsoleSettings
from crmcore.console.extensions import NavEntry, Registry
from crmcore.console.web import SecurityHeaders, View, human_ref, page

if TYPE_CHECKING:
    from crmcore.app import CRM

HERE = Path(__file__).parent
HTMX = "htmx-2.0.11.min.js"

#: the core's navigation (plugins add theirs through crm_console_register)
CORE_NAV = (NavEntry("Home", "/", None, 0), NavEntry("Customers", "/customers", "customer.read", 10),
            NavEntry("Admin", "/admin", "user.manage", 90))  # pages/admin.py


class Console:
    """The console's shared state: the CRM, settings, templates and the plugins' contributions."""

    def __init__(self, crm: CRM, prefix: str = "/console", settings: ConsoleSettings | None = None) -> None:
        self.crm = crm
        self.prefix = prefix.rstrip("/")
        self.settings = settings or ConsoleSettings.of(crm)
        self.registry: Registry = extensions.collect(crm)
        for _plugin, directory in self.registry.catalogs:
            i18n.add_catalog_dir(directory)
        loaders: list[Any] = [FileSystemLoader(HERE / "templates")]
        if self.registry.templates:
            loaders.append(PrefixLoader({pid: FileSystemLoader(d) for pid, d in self.registry.templates}))
        self.templates = Environment(loader=ChoiceLoader(loaders), autoescape=select_autoescape(default=True),
                                     trim_blocks=True, lstrip_blocks=True)
        self.templates.globals.update(htmx=HTMX, human_ref=human_ref)

    def navigation(self, view: View) -> list[dict[str, Any]]:
        """The entries the signed-in user may use: the core's, then the active plugins'."""
        if view.me is None:
            return []
        entries = [("core", e) for e in CORE_NAV] + [(p, e) for p, e in self.registry.nav if p in view.active]
        allowed = self._allowed(view)
        path = view.request.url.path.removeprefix(self.prefix) or "/"
        out = []
        for _plugin, e in sorted(entries, key=lambda pe: pe[1].order):
            if e.permission and e.permission not in allowed:
                continue
            current = path == e.path if e.path == "/" else path.startswith(e.path)
            out.append({"label": view._(e.label), "href": view.url(e.path), "current": current})
        return out

    def nav_permissions(self) -> set[str]:
        """Every permission a navigation entry needs (checked once per request, see ``View.unit``)."""
        return {e.permission for e in CORE_NAV if e.permission} | {e.permission for _, e in self.registry.nav if e.permission}

    def _allowed(self, view: View) -> set[str]:
        """The navigation's permissions the user holds: usually noted by the page's own unit of
        work; a page that used none (an error page) asks in a unit of its own."""
        if view.allowed is None:
            try:
                with view.unit():
                    pass
            except Exception:  # noqa: BLE001 - no navigation rather than no page
                view.allowed = set()
        return view.allowed or set()


def create_console(crm: CRM, prefix: str = "/console", settings: ConsoleSettings | None = None) -> Starlette:
    """The console as an ASGI app; mount it at ``prefix`` (``crmcore.console.mount`` does)."""
    from crmcore.console.pages import admin, customers, home, profile, signin

    console = Console(crm, prefix, settings)
    routes: list[Any] = [Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static")]
    for module in (signin, home, customers, profile, admin):
        routes.extend(module.routes())
    for plugin_id, p in console.registry.pages:
        routes.append(Route(p.path, page(p.endpoint, permission=p.permission, plugin=plugin_id),
                            methods=list(p.methods), name=p.name))
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.console = console
    return SecurityHeaders(app)  # type: ignore[return-value]


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods: the console's error page, in the user's language."""
    code = getattr(exc, "status_code", 500)
    prefix = request.app.state.console.prefix
    if code == 404 and request.url.path.rstrip("/") == prefix:
        return RedirectResponse(prefix + "/", status_code=307)
    return await run_in_threadpool(_error_page, request, code)


def _error_page(request: Request, code: int) -> Response:
    view = View(request.app.state.console, request, None)
    try:
        view.identify()  # the user's language, and the navigation when signed in
    except Exception:  # noqa: BLE001 - the page then comes in the browser's language, without navigation
        view.me = None
    _ = view._
    if code == 404:
        message, hint = _("There is no page at this address."), _("Check the address, or start again from the home page.")
    elif code == 405:
        message, hint = _("This page cannot be used that way."), _("Go back and try again.")
    else:
        message, hint = _("Something went wrong on our side; nothing was changed. Try again, and tell your administrator "
                          "if it happens again."), _("Go back and try again.")
    return view.render("error.html", status=code, status_code=code, message=message, hint=hint)


def with_console(api: Any, crm: CRM, prefix: str = "/console") -> Starlette:
    """The API app with the console beside it at ``prefix`` (what ``crm serve`` runs).

    Beside, not inside: the API's middleware (bearer tokens, body limits, problem details)
    must not see the console's requests, which carry a session cookie instead.
    ``/console`` without the slash redirects to the home page.
    """
    async def to_home(request: Request) -> Response:
        return RedirectResponse(prefix + "/", status_code=307)

    app = Starlette(routes=[Route(prefix, to_home), Mount(prefix, app=create_console(crm, prefix)), Mount("", app=api)])
    app.state.crm = crm
    return app
