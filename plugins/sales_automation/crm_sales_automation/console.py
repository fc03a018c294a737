"""The plugin's part of the web console: navigation, pages, templates, messages, the home card.

Only the hook implementations live here, and they import the console lazily (the CLI does not
pay for Starlette and Jinja2); the page handlers are in :mod:`crm_sales_automation.console_pages`.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from crmcore import hookimpl

HERE = Path(__file__).parent


@hookimpl
def crm_console_register(register: Callable[[Any], None]) -> None:
    from crm_sales_automation import console_pages as pages
    from crmcore.console import ConsoleCatalog, ConsolePage, ConsoleTemplates, NavEntry

    register(NavEntry("Sales", "/sales", "customer.read", order=20))
    register(ConsoleTemplates(HERE / "templates"))
    register(ConsoleCatalog(HERE / "locale"))
    for path, handler, methods in pages.ROUTES:
        register(ConsolePage(path, handler, methods=methods, permission="customer.read"))


@hookimpl
def crm_console_home_cards(uow: Any, user: Any) -> Any:
    """"My open deals": the signed-in user's largest open deals (one query)."""
    from crm_sales_automation import services
    from crmcore.console import HomeCard

    if user is None or not uow.can("customer.read"):
        return None
    deals = services.list_opportunities(uow, status="open", owner=user.username, limit=200)
    deals.sort(key=lambda d: (-d["amount"], d["id"]))
    return HomeCard(title="My open deals", order=10,
                    template="sales_automation/card.html", context={"deals": deals[:8], "total": len(deals)})
