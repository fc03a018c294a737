"""The value_analysis plugin's part of the web console: the pyramid, Pareto curve and RFM grid as
server-rendered SVG (with tables for screen readers), the customers per tier, and a home card
with the last run's headline numbers.

Hook implementations only; the page handlers are in :mod:`crm_value_analysis.console_pages`, imported
when the console is built (the CLI does not pay for Starlette and Jinja2).
"""
from __future__ import annotations

from typing import Any

from crmcore import hookimpl
from crmcore.console import HomeCard, NavEntry, console_register

#: navigation, templates, messages and every route of console_pages.ROUTES (needing customer.read)
crm_console_register = console_register(__name__, NavEntry("Value", "/value", "customer.read", order=50))


@hookimpl
def crm_console_home_cards(uow: Any, user: Any) -> Any:
    """The latest run: date, customers, purchasers, revenue, the top 20 %'s share (none for a
    user who may not see base-wide figures)."""
    from crm_value_analysis import services
    from crm_value_analysis.console_pages import run_currency
    from crmcore import PermissionDenied

    try:
        p = services.pareto_report(uow)
    except services.NoRunYet:
        return HomeCard(title="Customer value", order=50, template="value_analysis/card.html", context={"p": None})
    except PermissionDenied:
        return None
    currency = run_currency(uow, services.latest_run(uow))
    return HomeCard(title="Customer value", order=50, template="value_analysis/card.html",
                    context={"p": p, "currency": currency})
