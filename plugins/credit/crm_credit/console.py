"""The credit plugin's part of the web console: the section on the 360° page, the customer's
credit page (profile, hold, release), the ageing page and the "customers on credit hold" card.

Hook implementations only, importing the console lazily; handlers are in
:mod:`crm_credit.console_pages`.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from crmcore import hookimpl

HERE = Path(__file__).parent


@hookimpl
def crm_console_register(register: Callable[[Any], None]) -> None:
    from crm_credit import console_pages as pages
    from crmcore.console import ConsoleCatalog, ConsolePage, ConsoleTemplates, NavEntry

    register(NavEntry("Credit", "/credit/ageing", "customer.read", order=30))
    register(ConsoleTemplates(HERE / "templates"))
    register(ConsoleCatalog(HERE / "locale"))
    for path, handler, methods in pages.ROUTES:
        register(ConsolePage(path, handler, methods=methods, permission="customer.read"))


@hookimpl
def crm_console_home_cards(uow: Any, user: Any) -> Any:
    from crm_credit import reports
    from crmcore.console import HomeCard

    if not uow.can("customer.read"):
        return None
    return HomeCard(title="Customers on credit hold", order=30, template="credit/card.html",
                    context={"holds": reports.on_hold(uow, limit=8)})


@hookimpl
def crm_console_customer_sections(uow: Any, customer: Any, profile: dict[str, Any]) -> Any:
    """The credit block of the 360° page, built from the figures the profile already carries
    (the core called the plugin's profile section) plus the releases and the user's rights."""
    from crm_credit import console_pages as pages

    return pages.section(uow, customer, profile)
