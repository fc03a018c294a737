"""The request side of the console: the ``View`` every page gets, the ``page`` wrapper that
authenticates, checks CSRF and turns every failure into a page, and the security headers.

A page handler is a plain function ``handler(view) -> Response``; it runs in a worker thread
(the services are synchronous) and reads and writes only through ``view.unit()``, a unit of
work acting as the signed-in user, so permissions, visibility and guards are the services'.
"""
from __future__ import annotations

import hmac
import logging
import re
import secrets
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crmcore.console import auth
from crmcore.console.extensions import Failed, active_plugins, say
from crmcore.console.i18n import Formatter, negotiate, valid_language
from crmcore.db.engine import READ_ONLY
from crmcore.errors import Conflict, CRMError, DatabaseError, InvalidInput, NotFound, StaleVersion, Vetoed
from crmcore.uow import UnitOfWork

if TYPE_CHECKING:
    from crmcore.console.app import Console

log = logging.getLogger(__name__)

SESSION_COOKIE = "crm_session"
PRE_COOKIE = "crm_pre"  # CSRF of the forms shown before signing in (double submit)
LANG_COOKIE = "crm_lang"
FLASH_COOKIE = "crm_flash"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
MAX_FORM_BYTES = 1_000_000

#: a reference the core made up for a record created without one (``u-`` and 16 hex digits):
#: kept for export and import, meaningless to a person, so the pages do not show it
MACHINE_REF = re.compile(r"u-[0-9a-f]{16}")


def human_ref(ref: str | None) -> str:
    """``ref`` as a person gave it; "" for none or a machine-made one."""
    return "" if not ref or MACHINE_REF.fullmatch(ref) else ref


SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


class SecurityHeaders:
    """Pure ASGI middleware: the headers above on every console response (static files too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in SECURITY_HEADERS.items():
                    if k == "cache-control" and scope["path"].startswith(("/static", scope.get("root_path", "") + "/static")):
                        continue
                    headers.setdefault(k, v)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class View:
    """One console request: who is signed in, the form, the language, rendering and units of work."""

    def __init__(self, console: Console, request: Request, form: FormData | None) -> None:
        self.console = console
        self.crm = console.crm
        self.request = request
        self.form = form
        self.me: auth.SignedIn | None = None
        self.active: set[str] = set()
        self.cookies: list[tuple[str, str, dict[str, Any]]] = []  # set on the response
        self.allowed: set[str] | None = None  # the navigation's permissions the user holds
        self.fmt = Formatter(negotiate(request.headers.get("accept-language")))

    # -- identity ------------------------------------------------------------------------------
    def identify(self) -> None:
        """Find the session (in its own short transaction) and the plugins active now."""
        with Session(self.crm.engine) as db:
            db.connection(execution_options={READ_ONLY: True})  # SQLite: no write lock for a page view
            self.me = auth.lookup_session(db, self.request.cookies.get(SESSION_COOKIE), self.console.settings)
            self.active = active_plugins(self.crm, db)
        if self.me is not None and self.me.stale:
            with Session(self.crm.engine) as db:
                auth.touch_session(db, self.me.session_id)
        lang = (self.me and valid_language(self.me.language)) or valid_language(self.request.cookies.get(LANG_COOKIE))
        if lang:
            self.fmt = Formatter(lang)

    @property
    def csrf(self) -> str:
        if self.me is not None:
            return self.me.csrf
        token = self.request.cookies.get(PRE_COOKIE)
        if not token or len(token) > 100:
            token = getattr(self, "_pre", None) or secrets.token_urlsafe(24)
            self._pre = token
            self.set_cookie(PRE_COOKIE, token)
        return token

    def csrf_ok(self, pre: bool = False) -> bool:
        """The form's (or htmx header's) token is the session's; ``pre``: the sign-in form's cookie."""
        sent = (self.form.get(CSRF_FIELD) if self.form is not None else None) or self.request.headers.get(CSRF_HEADER)
        expected = self.me.csrf if self.me is not None and not pre else self.request.cookies.get(PRE_COOKIE)
        return isinstance(sent, str) and bool(expected) and hmac.compare_digest(sent.encode(), str(expected).encode())

    @contextmanager
    def unit(self, write: bool = False) -> Iterator[UnitOfWork]:
        """A unit of work acting as the signed-in user (read-only unless ``write``)."""
        assert self.me is not None, "unit() needs a signed-in user"
        with self.crm.unit_of_work(self.me.username, read_only=not write) as uow:
            yield uow
            if self.allowed is None:  # the navigation's permissions, while the user's row is at hand
                try:
                    self.allowed = {p for p in self.console.nav_permissions() if uow.can(p)}
                except Exception:  # noqa: BLE001 - the navigation then asks in its own unit
                    self.allowed = None

    # -- input -----------------------------------------------------------------------------------
    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else default

    def arg(self, name: str, default: str = "") -> str:
        value = self.request.query_params.get(name)
        return value.strip()[:500] if value is not None else default

    @property
    def is_htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true" and self.request.headers.get("hx-boosted") != "true"

    # -- output ----------------------------------------------------------------------------------
    def _(self, msgid: str, /, **values: Any) -> str:
        return self.fmt.gettext(msgid, **values)

    def say(self, text: Any, kind: str | None = None) -> Any:
        """A plugin's machine-made English line (a hold's reason written by dunning, a timeline
        summary) in the reader's language through the enabled plugins' :class:`ConsolePhrase`;
        anything else as it is."""
        if not isinstance(text, str) or not text:
            return text
        return say(self.fmt, self.console.registry.phrases, text, plugins=self.active, kind=kind) or text

    def url(self, path: str, **query: Any) -> str:
        """A console URL (``path`` under /console) with the non-empty query values."""
        q = {k: v for k, v in query.items() if v not in (None, "")}
        return self.console.prefix + path + ("?" + urllib.parse.urlencode(q) if q else "")

    def set_cookie(self, name: str, value: str, **kw: Any) -> None:
        self.cookies.append((name, value, kw))

    def _apply_cookies(self, response: Response) -> Response:
        secure = self.console.settings.secure_cookies == "always" or self.request.url.scheme == "https"
        for name, value, kw in self.cookies:
            if value == "":
                response.delete_cookie(name, path=self.console.prefix or "/")
            else:
                response.set_cookie(name, value, httponly=True, samesite="lax", secure=secure,
                                    path=self.console.prefix or "/", **kw)
        return response

    def render(self, template: str, status: int = 200, partial: str | None = None, **ctx: Any) -> Response:
        """The template in the layout; for an htmx request with ``partial``, only that block."""
        flash = self.request.cookies.get(FLASH_COOKIE)
        if flash:
            self.set_cookie(FLASH_COOKIE, "")
        from crmcore.console.field_errors import errors_in_words

        ctx = {k: errors_in_words(self._, v) if k == "errors" or k.endswith("_errors") else v for k, v in ctx.items()}
        context = {"view": self, "me": self.me, "_": self._, "fmt": self.fmt, "say": self.say, "csrf": self.csrf,
                   "nav": self.console.navigation(self), "flash": urllib.parse.unquote(flash)[:300] if flash else None,
                   "prefix": self.console.prefix, "url": self.url, "lang": self.fmt.lang, **ctx}
        tmpl = self.console.templates.get_template(template)
        partial_only = partial and self.is_htmx
        body = "".join(tmpl.blocks[partial](tmpl.new_context(context))) if partial_only else tmpl.render(context)  # type: ignore[index]
        return self._apply_cookies(HTMLResponse(body, status_code=status))

    def redirect(self, path: str, flash: str | None = None) -> Response:
        """303 to a console path (after a successful POST), with a message for the next page."""
        if flash:
            self.set_cookie(FLASH_COOKIE, urllib.parse.quote(flash[:300]), max_age=60)
        target = path if path.startswith(self.console.prefix + "/") else self.url(path)
        return self._apply_cookies(RedirectResponse(target, status_code=303))

    def error(self, e: BaseException, status: int | None = None) -> Response:
        """A failure as a page in the layout: the one-line message and what to do."""
        status = status or status_for(e)
        if isinstance(e, CRMError):
            message = message_for(self, e)
        else:
            message = self._("Something went wrong on our side; nothing was changed. Try again, "
                             "and tell your administrator if it happens again.")
        hint = hint_for(self, e)
        return self.render("error.html", status=status, message=message, hint=hint, status_code=status)

    def failed_box(self, failure: Failed) -> dict[str, str]:
        return {"plugin": failure.plugin, "message": failure.message}


def status_for(e: BaseException) -> int:
    from crmcore.permissions import PermissionDenied, UnknownActor
    from crmcore.plugins import PluginUnavailable

    for cls, code in ((UnknownActor, 401), (PermissionDenied, 403), (NotFound, 404), (StaleVersion, 409),
                      (Vetoed, 409), (Conflict, 409), (InvalidInput, 422), (PluginUnavailable, 503),
                      (DatabaseError, 503), (CRMError, 400)):
        if isinstance(e, cls):
            return code
    return 500


#: the entities a "not found" names, as message ids (others are shown as the service named them)
ENTITIES = {"customer": "customer", "contact": "contact", "account": "account", "page": "page", "user": "user",
            "interaction": "interaction", "transaction": "transaction"}


def message_for(view: View, e: CRMError) -> str:
    """The service's one line, in the user's language where it has a known shape (the English
    text is the service's own, word for word)."""
    from crmcore.permissions import PermissionDenied

    _ = view._
    if isinstance(e, NotFound) and type(e) is NotFound:
        entity = _(ENTITIES[e.entity]) if e.entity in ENTITIES else e.entity
        return _("%(entity)s %(key)s not found", entity=entity, key=e.key)
    if isinstance(e, PermissionDenied):
        return _("user %(user)s lacks %(permission)s", user=e.user, permission=e.permission)
    return str(e)


def hint_for(view: View, e: BaseException) -> str:
    from crmcore.permissions import PermissionDenied

    _ = view._
    if isinstance(e, PermissionDenied):
        return _("Ask an administrator for this permission if you need it.")
    if isinstance(e, NotFound):
        return _("It may have been merged or you may not have access to it. Search for it in the customer list.")
    if isinstance(e, StaleVersion):
        return _("Reload the page to see the current values, then make your change again.")
    if isinstance(e, Vetoed):
        return _("The change was refused by a rule of the CRM; nothing was written.")
    if isinstance(e, DatabaseError):
        return _("The database is unavailable or busy. Try again in a moment.")
    if isinstance(e, InvalidInput):
        return _("Correct the input and try again.")
    return _("Go back and try again.")


Handler = Callable[[View], Response]


def page(handler: Handler, *, public: bool = False, permission: str | None = None,
         plugin: str | None = None, pre_csrf: bool = False) -> Callable[[Request], Any]:
    """Wrap a page handler into a Starlette endpoint: sign-in, CSRF, plugin state, errors."""

    async def endpoint(request: Request) -> Response:
        form = None
        if request.method == "POST":
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > MAX_FORM_BYTES:
                return HTMLResponse("the form is too large", status_code=413)
            try:
                form = await request.form(max_files=0, max_fields=500)
            except Exception:  # noqa: BLE001 - a malformed body is the client's problem, shown as one
                form = FormData()
        return await run_in_threadpool(_run, request, form)

    def _run(request: Request, form: FormData | None) -> Response:
        view = View(request.app.state.console, request, form)
        try:
            view.identify()
            if view.me is None and not public:
                if request.method == "GET":
                    nxt = request.url.path + ("?" + request.url.query if request.url.query else "")
                    return view.redirect(view.url("/signin", next=nxt))
                return view.render("signin.html", status=401, error=view._("Your session has ended; sign in again."),
                                   next="", username="")
            if request.method == "POST" and not view.csrf_ok(pre=pre_csrf):
                return view.render("error.html", status=403, status_code=403,
                                   message=view._("The form was refused because its security token is missing or out of date."),
                                   hint=view._("Reload the page and submit the form again."))
            if plugin is not None and plugin not in view.active:
                raise NotFound("page", request.url.path)
            if permission is not None:
                with view.unit() as uow:
                    uow.require(permission)
            return handler(view)
        except Exception as e:
            if not isinstance(e, CRMError):
                log.exception("console: %s %s failed", request.method, request.url.path)
            return view.error(e)

    endpoint.__name__ = getattr(handler, "__name__", "page")
    return endpoint
