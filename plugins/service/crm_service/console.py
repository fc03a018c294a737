"""The service plugin's part of the web console: the ticket queue with SLA countdowns, a ticket
with its moves and notes, the return visits due, and the "tickets near or past SLA" home card.

Hook implementations only, importing the console lazily; handlers are in
:mod:`crm_service.console_pages`.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from crmcore import hookimpl

HERE = Path(__file__).parent


@hookimpl
def crm_console_register(register: Callable[[Any], None]) -> None:
    from crm_service import console_pages as pages
    from crmcore.console import ConsoleCatalog, ConsolePage, ConsoleTemplates, NavEntry

    register(NavEntry("Service", "/service/tickets", "customer.read", order=35))
    register(ConsoleTemplates(HERE / "templates"))
    register(ConsoleCatalog(HERE / "locale"))
    for path, handler, methods in pages.ROUTES:
        register(ConsolePage(path, handler, methods=methods, permission="customer.read"))


@hookimpl
def crm_console_home_cards(uow: Any, user: Any) -> Any:
    import datetime as dt

    from crm_service import queue
    from crmcore.console import HomeCard

    if not uow.can("customer.read"):
        return None
    return HomeCard(title="Tickets near or past their SLA", order=20, template="service/card.html",
                    context={"tickets": queue.queue(uow, within=dt.timedelta(hours=4), limit=8)})
