"""Sign-in, sign-out and the language switcher."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.responses import Response
from starlette.routing import Route

from crmcore.console import auth
from crmcore.console.extensions import first_answer
from crmcore.console.i18n import valid_language
from crmcore.console.web import LANG_COOKIE, SESSION_COOKIE, View, page
from crmcore.errors import Vetoed
from crmcore.models.user import User


def routes() -> list[Any]:
    return [Route("/signin", page(signin_form, public=True), methods=["GET"]),
            Route("/signin", page(signin, public=True, pre_csrf=True), methods=["POST"]),
            Route("/signout", page(signout, public=True), methods=["POST"]),
            Route("/language", page(language, public=True), methods=["POST"])]


def _next(view: View, value: str) -> str:
    """Only a path inside the console: never an open redirect to another site."""
    prefix = view.console.prefix + "/"
    if value.startswith(prefix) and not value.startswith("//") and "\\" not in value and len(value) < 2000:
        return value
    return prefix


def signin_form(view: View) -> Response:
    if view.me is not None:
        return view.redirect(_next(view, view.arg("next")))
    return view.render("signin.html", next=view.arg("next"), username="", error=None)


def _message(view: View, result: auth.SignInResult) -> str:
    if result.error == "locked":
        minutes = max(1, (result.retry_after + 59) // 60)
        return view.fmt.ngettext("Too many failed attempts: this account is locked for %(num)d minute. Try again later.",
                                 "Too many failed attempts: this account is locked for %(num)d minutes. Try again later.",
                                 minutes)
    return view._("Wrong user name or password.")


def signin(view: View) -> Response:
    """Plugins first (``crm_console_authenticate``), then the password with lockout."""
    username, password = view.field("username")[:200], (view.form.get("password") if view.form else "") or ""
    password = password if isinstance(password, str) else ""
    nxt = view.field("next")
    refused: str | None = None
    with view.crm.unit_of_work("console") as uow:  # commits the failure counter even when refused
        user: User | None = None
        try:
            answer = first_answer(uow, "crm_console_authenticate", request=view.request, username=username, password=password)
        except Vetoed as e:
            uow.failed = None  # a refusal is an answer, not a failure: the audit entry is kept
            uow.audit.record("signin_refused", "user", None, after={"username": username[:64], "plugin": e.plugin})
            answer, refused = None, e.reason
        if answer is not None:
            _plugin, name = answer
            user = uow.session.scalar(select(User).where(User.username == str(name), User.active.is_(True)))
            if user is None:
                refused = view._("Wrong user name or password.")
        elif refused is None:
            result = auth.verify_password(uow, username, password, view.console.settings)
            user = result.user
            if user is None:
                refused = _message(view, result)
        token = auth.start_session(uow, user, view.console.settings, view.request.headers.get("user-agent")) \
            if user is not None and refused is None else None
        lang = user.language if user is not None else None
    if token is None:
        return view.render("signin.html", status=401, error=refused, username=username[:64], next=nxt)
    view.set_cookie(SESSION_COOKIE, token, max_age=int(view.console.settings.session_hours * 3600))
    if lang is None and valid_language(view.request.cookies.get(LANG_COOKIE)):
        _store_language(view, username, view.request.cookies[LANG_COOKIE])
    return view.redirect(_next(view, nxt))


def signout(view: View) -> Response:
    from sqlalchemy.orm import Session

    with Session(view.crm.engine) as db:
        auth.end_session(db, view.request.cookies.get(SESSION_COOKIE))
    view.set_cookie(SESSION_COOKIE, "")
    view.me = None
    return view.redirect("/signin", flash=view._("You have signed out."))


def _store_language(view: View, username: str, lang: str) -> None:
    with view.crm.unit_of_work(username) as uow:
        me = uow.users.get_by_username(username)
        if me.language != lang:
            uow.audit.record("language", "user", me.id, before={"language": me.language}, after={"language": lang})
            me.language = lang


def language(view: View) -> Response:
    """The switcher: stored on the user once signed in, in a cookie before."""
    lang = valid_language(view.field("language"))
    nxt = _next(view, view.field("next"))
    if lang is None:
        return view.redirect(nxt)
    view.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400)
    if view.me is not None:
        _store_language(view, view.me.username, lang)
    from crmcore.console.i18n import Formatter

    view.fmt = Formatter(lang)
    return view.redirect(nxt, flash=view._("Language changed."))
