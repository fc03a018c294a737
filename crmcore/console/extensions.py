"""What plugins contribute to the console, and how a failing contribution is contained.

Static contributions (navigation entries, pages, template folders, catalogues) are registered
once, when the console is built, through ``crm_console_register(register)``. Per-request ones
(home cards, 360° sections) come from ``crm_console_home_cards`` and
``crm_console_customer_sections``; each plugin's answer is computed in its own savepoint, so a
plugin that raises (even one that breaks the transaction on PostgreSQL) becomes an error box
naming it, and the rest of the page is drawn.

A plugin that is disabled (``crm plugins disable``) contributes nothing: every request reads the
enabled set (one small query) and drops the contributions of the others.
"""
from __future__ import annotations

import importlib
import logging
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from crmcore.errors import CRMError
from crmcore.models import PluginState

if TYPE_CHECKING:
    from crmcore.app import CRM
    from crmcore.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NavEntry:
    """A link in the console's navigation. ``label`` is an English message id (translated through
    the catalogues); ``path`` is under ``/console``; shown only to holders of ``permission``."""

    label: str
    path: str
    permission: str | None = None
    order: int = 100


@dataclass(frozen=True)
class ConsolePage:
    """A route of the console (``path`` under ``/console``). ``endpoint(view)`` gets a
    :class:`crmcore.console.web.View` and returns ``view.render(...)``, ``view.redirect(...)``
    or any Starlette response. POSTs are CSRF-checked before the endpoint runs; an exception
    becomes an error box in the layout (a ``CRMError``: its one-line message)."""

    path: str
    endpoint: Callable[..., Any]
    methods: tuple[str, ...] = ("GET",)
    permission: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class ConsoleTemplates:
    """A folder of Jinja2 templates, referred to as ``"<plugin id>/<file>"`` (they may extend
    ``"layout.html"`` and use the core's macros from ``"macros.html"``)."""

    directory: Path


@dataclass(frozen=True)
class ConsoleCatalog:
    """A ``locale`` folder with ``<lang>/LC_MESSAGES/messages.po`` for the plugin's own messages."""

    directory: Path


@dataclass(frozen=True)
class ConsolePhrase:
    """A line a plugin's services write in English for the CLI (a timeline entry's summary, the
    value of a 360° field), shown in the reader's language: when ``pattern`` (a regular
    expression, matched in full) matches the line, the console shows ``message`` (a message id of
    the plugin's catalogue, with ``%(group)s`` placeholders) filled with the named groups. A group
    is formatted as a value (numbers, dates and "12.50 EUR" for the locale, a code in words)
    unless its name ends in ``_text`` (a subject, a name: shown as written). ``kind``: only for
    the timeline entries of that kind (None: any line of the plugin). A line no phrase matches is
    shown as it is."""

    pattern: str
    message: str
    kind: str | None = None


@dataclass
class HomeCard:
    """A card on the home page: either ``items`` (text, link or None) and an optional ``link``,
    or a plugin ``template`` rendered with ``context``. ``title`` is a message id."""

    title: str
    items: list[tuple[str, str | None]] = field(default_factory=list)
    link: str | None = None
    template: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    order: int = 100
    empty: str = "Nothing here."


@dataclass
class ConsoleSection:
    """A section of the 360° page drawn by the plugin's ``template`` with ``context``.
    ``replaces``: the title of the plugin's ``ProfileSection`` it supersedes on the page
    (else that section is drawn generically too)."""

    title: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    replaces: str | None = None
    order: int = 100


@dataclass
class Failed:
    """A plugin contribution that raised: drawn as an error box naming the plugin."""

    plugin: str
    hook: str
    message: str


@dataclass
class Registry:
    """The static contributions, each tagged with its plugin id."""

    nav: list[tuple[str, NavEntry]] = field(default_factory=list)
    pages: list[tuple[str, ConsolePage]] = field(default_factory=list)
    templates: list[tuple[str, Path]] = field(default_factory=list)
    catalogs: list[tuple[str, Path]] = field(default_factory=list)
    phrases: list[tuple[str, ConsolePhrase, re.Pattern[str]]] = field(default_factory=list)
    errors: list[Failed] = field(default_factory=list)


def console_register(module: str, *nav: NavEntry, pages: str = "console_pages", permission: str | None = "customer.read",
                     phrases: Iterable[ConsolePhrase] = ()) -> Callable[[Callable[[Any], None]], None]:
    """The usual ``crm_console_register`` of a plugin package, as a ready hook implementation.

    It registers ``nav``, the package's ``templates`` and ``locale`` folders (when they exist) and
    a :class:`ConsolePage` for each entry of ``<package>.<pages>.ROUTES``: a ``ConsolePage`` as it
    is, or a ``(path, handler, methods)`` tuple needing ``permission``; and ``phrases``
    (:class:`ConsolePhrase`: the plugin's timeline and 360° lines in the reader's language). The pages module (which
    loads Starlette and Jinja2) is imported only when the console is built::

        crm_console_register = console_register(__name__, NavEntry("Credit", "/credit/ageing", order=30))
    """
    from crmcore import hookimpl

    package = module.rpartition(".")[0] or module
    source = getattr(sys.modules.get(package), "__file__", None)
    if source is None:
        raise CRMError(f"console_register({module!r}): call it from a module of an imported plugin package")
    here = Path(source).parent
    for entry in nav:
        if not isinstance(entry, NavEntry):
            raise CRMError(f"console_register({module!r}): {entry!r} is not a NavEntry")
    phrases = tuple(phrases)

    def crm_console_register(register: Callable[[Any], None]) -> None:
        routes: Iterable[Any] = importlib.import_module(f"{package}.{pages}").ROUTES
        for entry in nav:
            register(entry)
        if (here / "templates").is_dir():
            register(ConsoleTemplates(here / "templates"))
        if (here / "locale").is_dir():
            register(ConsoleCatalog(here / "locale"))
        for phrase in phrases:
            register(phrase)
        for route in routes:
            if isinstance(route, ConsolePage):
                register(route)
            else:
                path, handler, methods = route
                register(ConsolePage(path, handler, methods=tuple(methods), permission=permission))

    crm_console_register.__module__ = module
    crm_console_register.__qualname__ = "crm_console_register"
    return hookimpl(crm_console_register)


_KINDS = {NavEntry: "nav", ConsolePage: "pages"}


def collect(crm: CRM) -> Registry:
    """Run every plugin's ``crm_console_register``; a plugin that raises or registers something
    else is left out of the console (reported on the home page), never a failed start."""
    reg = Registry()
    for impl in _impls(crm, "crm_console_register"):
        mine: list[Any] = []
        try:
            impl.function(register=mine.append)
            for item in mine:
                if isinstance(item, (NavEntry, ConsolePage)):
                    if not item.path.startswith("/") or "//" in item.path:
                        raise CRMError(f"console path {item.path!r} must start with one /")
                elif isinstance(item, ConsolePhrase):
                    re.compile(item.pattern)  # a bad pattern is the plugin's registration error
                elif not isinstance(item, (ConsoleTemplates, ConsoleCatalog)):
                    raise CRMError(f"registered {item!r}, which is not a console contribution")
        except Exception as e:  # noqa: BLE001 - a plugin's registration may raise anything
            reg.errors.append(Failed(impl.plugin_name, "crm_console_register", f"{type(e).__name__}: {e}"))
            continue
        for item in mine:
            if isinstance(item, ConsoleTemplates):
                reg.templates.append((impl.plugin_name, Path(item.directory)))
            elif isinstance(item, ConsoleCatalog):
                reg.catalogs.append((impl.plugin_name, Path(item.directory)))
            elif isinstance(item, ConsolePhrase):
                reg.phrases.append((impl.plugin_name, item, re.compile(item.pattern)))
            else:
                getattr(reg, _KINDS[type(item)]).append((impl.plugin_name, item))
    return reg


def _word(fmt: Any, value: str) -> str:
    """A group of a phrase for a reader: a value (number, date, money, code); words in lower case
    ("final notice") through the catalogues."""
    shown = str(fmt.value(value))
    return fmt.label(value, capital=False) if shown == value and re.fullmatch(r"[a-z][a-z ]*", value) else shown


def say(fmt: Any, phrases: Iterable[tuple[str, ConsolePhrase, re.Pattern[str]]], text: str, *,
        plugins: Iterable[str], kind: str | None = None) -> str | None:
    """``text`` in the reader's language through the first phrase of ``plugins`` that matches it
    (of ``kind``, for a timeline entry), or None when none does."""
    wanted = set(plugins)
    for plugin, phrase, pattern in phrases:
        if plugin not in wanted or (phrase.kind is not None and phrase.kind != kind):
            continue
        m = pattern.fullmatch(text)
        if m is not None:
            values = {k: "" if v is None else v if k.endswith("_text") else _word(fmt, v) for k, v in m.groupdict().items()}
            return str(fmt.gettext(phrase.message, **values) if values else fmt.gettext(phrase.message))
    return None


def _impls(crm: CRM, hook_name: str) -> list[Any]:
    if not crm.hooks.has_spec(hook_name):
        return []
    impls = getattr(crm.hooks.pm.hook, hook_name).get_hookimpls()
    return [i for i in reversed(impls) if not (i.hookwrapper or i.wrapper)]


def active_plugins(crm: CRM, db: Any) -> set[str]:
    """Plugins that may contribute now: registered in code, or enabled in the database."""
    code = {pid for pid, info in crm.hooks.plugins.items() if info.source == "code"}
    enabled = set(db.scalars(select(PluginState.plugin_id).where(PluginState.enabled)))
    return code | (enabled & set(crm.hooks.plugins))


def call_each(uow: UnitOfWork, hook_name: str, active: set[str], **kwargs: Any) -> list[tuple[str, Any]]:
    """Call each active plugin's implementation in its own savepoint; a failure becomes
    :class:`Failed`. Results may be one object or a list of them; None is dropped."""
    kwargs = {"uow": uow, **kwargs}
    out: list[tuple[str, Any]] = []
    for impl in _impls(uow.crm, hook_name):
        if impl.plugin_name not in active:
            continue
        try:
            with uow.session.begin_nested():
                res = impl.function(**{a: kwargs[a] for a in impl.argnames if a in kwargs})
        except Exception as e:
            log.warning("console: plugin %r failed in %s", impl.plugin_name, hook_name, exc_info=True)
            message = str(e) if isinstance(e, CRMError) else f"{type(e).__name__}: {e}"
            out.append((impl.plugin_name, Failed(impl.plugin_name, hook_name, message)))
            continue
        for item in res if isinstance(res, (list, tuple)) else [res]:
            if item is not None:
                out.append((impl.plugin_name, item))
    return out


def first_answer(uow: UnitOfWork, hook_name: str, **kwargs: Any) -> tuple[str, Any] | None:
    """The first non-None answer of a hook (sign-in), errors raised and attributed as usual."""
    for plugin, result in uow.hooks.call_with_names(hook_name, uow=uow, **kwargs):
        return plugin, result
    return None
