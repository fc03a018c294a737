"""The marketing plugin's part of the web console: segments (with a live count while the rule is
typed), campaigns and the campaign report.

Hook implementations only, importing the console lazily; handlers are in
:mod:`crm_marketing.console_pages`.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from crmcore import hookimpl

HERE = Path(__file__).parent


@hookimpl
def crm_console_register(register: Callable[[Any], None]) -> None:
    from crm_marketing import console_pages as pages
    from crmcore.console import ConsoleCatalog, ConsolePage, ConsoleTemplates, NavEntry

    register(NavEntry("Marketing", "/marketing/segments", "customer.read", order=40))
    register(ConsoleTemplates(HERE / "templates"))
    register(ConsoleCatalog(HERE / "locale"))
    for path, handler, methods in pages.ROUTES:
        register(ConsolePage(path, handler, methods=methods, permission="customer.read"))
