"""The service plugin's part of the web console: the ticket queue with SLA countdowns, a ticket
with its moves and notes, the return visits due, and the "tickets near or past SLA" home card.

Hook implementations only; the page handlers are in :mod:`crm_service.console_pages`, imported
when the console is built (the CLI does not pay for Starlette and Jinja2).
"""
from __future__ import annotations

from typing import Any

from crmcore import hookimpl
from crmcore.console import HomeCard, NavEntry, console_register

#: navigation, templates, messages and every route of console_pages.ROUTES (needing customer.read)
crm_console_register = console_register(__name__, NavEntry("Service", "/service/tickets", "customer.read", order=35))


@hookimpl
def crm_console_home_cards(uow: Any, user: Any) -> Any:
    import datetime as dt

    from crm_service import queue

    if not uow.can("customer.read"):
        return None
    return HomeCard(title="Tickets near or past their SLA", order=20, template="service/card.html",
                    context={"tickets": queue.queue(uow, within=dt.timedelta(hours=4), limit=8)})
