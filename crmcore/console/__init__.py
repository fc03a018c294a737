"""The web console: server-rendered pages over the same services as the CLI and the HTTP API.

``crm serve`` serves it at ``/console``, beside the HTTP API (:func:`with_console`). Every page is a plain function
``handler(view)`` that reads and writes only through ``view.unit()``, a unit of work acting as the
signed-in user, so permissions, visibility and guards are the services' own; the console adds no
business rule. Sign-in, sessions, CSRF and the security headers live in :mod:`.auth` and
:mod:`.web`; languages and formatting in :mod:`.i18n`.

Extension points (hooks in :mod:`crmcore.hookspecs`, objects from this package):

- ``crm_console_register(register)``, once when the console is built (``console_register(
  __name__, NavEntry(...))`` makes the usual one from a package's ``console_pages.ROUTES``), with
  :class:`NavEntry` (a navigation link), :class:`ConsolePage` (a route with its handler),
  :class:`ConsoleTemplates` (a folder of Jinja2 templates named ``"<plugin id>/<file>"``) and
  :class:`ConsoleCatalog` (a ``locale`` folder of ``.po`` files) and :class:`ConsolePhrase` (a
  plugin's machine-made English line, a timeline summary or a 360° value, in the reader's language);
- ``crm_console_home_cards(uow, user)`` -> :class:`HomeCard` (or a list), per home page view;
- ``crm_console_customer_sections(uow, customer, profile)`` -> :class:`ConsoleSection` (or a
  list), per 360° page view;
- ``crm_console_authenticate(uow, request, username, password)`` -> a username or None: single
  sign-on or a directory instead of the console password.

A disabled plugin contributes nothing (the enabled set is read on every request); a plugin
page, card or section that raises is drawn as an error box naming the plugin. A plugin page
handler gets the same :class:`View` as the core's: ``view.unit(write=...)``, ``view.render(
"<plugin id>/page.html", **context)`` (templates extend ``"layout.html"`` and may import
``"macros.html"``), ``view.redirect(path, flash=...)``, ``view.field(name)`` / ``view.arg(name)``,
``view._(msgid)`` and ``view.fmt`` (dates, numbers, money for the user's language). See the
"Console" section of docs/plugin-guide.md.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> module: imported on first use (PEP 562), so a plugin's console.py may import the
# extension objects at its top without loading Starlette and Jinja2 into every `crm` command
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("ConsoleCatalog", "ConsolePage", "ConsolePhrase", "ConsoleSection", "ConsoleTemplates", "HomeCard", "NavEntry",
                     "console_register"), "crmcore.console.extensions"),
    "View": "crmcore.console.web", "create_console": "crmcore.console.app", "with_console": "crmcore.console.app",
}

__all__ = ["ConsoleCatalog", "ConsolePage", "ConsolePhrase", "ConsoleSection", "ConsoleTemplates", "HomeCard", "NavEntry", "View",
           "console_register", "create_console", "with_console"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'crmcore.console' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from crmcore.console.app import create_console, with_console
    from crmcore.console.extensions import (
        ConsoleCatalog,
        ConsolePage,
        ConsolePhrase,
        ConsoleSection,
        ConsoleTemplates,
        HomeCard,
        NavEntry,
        console_register,
    )
    from crmcore.console.web import View
