"""The value_analysis plugin's part of the web console: the pyramid, Pareto curve and RFM grid as
server-rendered SVG (with tables for screen readers), the customers per tier, and a home card
with the last run's headline numbers.

Hook implementations only, importing the console lazily; handlers are in
:mod:`crm_value_analysis.console_pages`.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from crmcore import hookimpl

HERE = Path(__file__).parent


@hookimpl
def crm_console_register(register: Callable[[Any], None]) -> None:
    from crm_value_analysis import console_pages as pages
    from crmcore.console import ConsoleCatalog, ConsolePage, ConsoleTemplates, NavEntry

    register(NavEntry("Value", "/value", "customer.read", order=50))
    register(ConsoleTemplates(HERE / "templates"))
    register(ConsoleCatalog(HERE / "locale"))
    for path, handler, methods in pages.ROUTES:
        register(ConsolePage(path, handler, methods=methods, permission="customer.read"))


@hookimpl
def crm_console_home_cards(uow: Any, user: Any) -> Any:
    """The latest run: date, customers, purchasers, revenue, the top 20 %'s share (none for a
    user who may not see base-wide figures)."""
    from crm_value_analysis import services
    from crmcore import PermissionDenied
    from crmcore.console import HomeCard

    try:
        p = services.pareto_report(uow)
    except services.NoRunYet:
        return HomeCard(title="Customer value", order=50, template="value_analysis/card.html", context={"p": None})
    except PermissionDenied:
        return None
    return HomeCard(title="Customer value", order=50, template="value_analysis/card.html", context={"p": p})
