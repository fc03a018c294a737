"""The credit plugin's part of the web console: the section on the 360° page, the customer's
credit page (profile, hold, release), the ageing page and the "customers on credit hold" card.

Hook implementations only; the page handlers are in :mod:`crm_credit.console_pages`, imported
when the console is built (the CLI does not pay for Starlette and Jinja2).
"""
from __future__ import annotations

from typing import Any

from crmcore import hookimpl
from crmcore.console import HomeCard, NavEntry, console_register

#: navigation, templates, messages and every route of console_pages.ROUTES (needing customer.read)
crm_console_register = console_register(__name__, NavEntry("Credit", "/credit/ageing", "customer.read", order=30))


@hookimpl
def crm_console_home_cards(uow: Any, user: Any) -> Any:
    from crm_credit import reports

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
