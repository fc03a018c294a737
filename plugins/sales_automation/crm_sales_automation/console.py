"""The plugin's part of the web console: navigation, pages, templates, messages, the home card.

Only the hook implementations live here; the page handlers are in
:mod:`crm_sales_automation.console_pages`, imported when the console is built (the CLI does not
pay for Starlette and Jinja2).
"""
from __future__ import annotations

from typing import Any

from crmcore import hookimpl
from crmcore.console import HomeCard, NavEntry, console_register

#: navigation, templates, messages and every route of console_pages.ROUTES (needing customer.read)
crm_console_register = console_register(__name__, NavEntry("Sales", "/sales", "customer.read", order=20))


@hookimpl
def crm_console_home_cards(uow: Any, user: Any) -> Any:
    """"My open deals": the signed-in user's largest open deals (one query)."""
    from crm_sales_automation import services

    if user is None or not uow.can("customer.read"):
        return None
    deals = services.list_opportunities(uow, status="open", owner=user.username, limit=200)
    deals.sort(key=lambda d: (-d["amount"], d["id"]))
    labels = {name: label for name, label, _prob in services.DEFAULT_STAGES}
    for d in deals[:8]:  # a message id: the card shows it through the plugin's catalogue (fmt.label)
        d["stage_text"] = labels.get(d["stage"]) or d["stage"].replace("_", " ")
    return HomeCard(title="My open deals", order=10,
                    template="sales_automation/card.html", context={"deals": deals[:8], "total": len(deals)})
