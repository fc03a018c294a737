"""The plugin's part of the web console: navigation, pages, templates, messages, the home card.

Only the hook implementations live here; the page handlers are in
:mod:`crm_sales_automation.console_pages`, imported when the console is built (the CLI does not
pay for Starlette and Jinja2).
"""
from __future__ import annotations

from typing import Any

from crmcore import hookimpl
from crmcore.console import ConsolePhrase, HomeCard, NavEntry, console_register

#: navigation, templates, messages and every route of console_pages.ROUTES (needing customer.read)
MONEY = r"-?[\d,]+\.\d\d [A-Z]{3}"
#: the lines of services.profile_section and services.timeline in the reader's language
PHRASES = (ConsolePhrase(r"(?P<n>\d+) \((?P<leads>\d+) leads, (?P<customers>\d+) customers\)",
                         "%(n)s (%(leads)s leads, %(customers)s customers)"),
           ConsolePhrase(rf"(?P<n>\d+) \((?P<amount>{MONEY})\)", "%(n)s (%(amount)s)"),
           ConsolePhrase(rf"(?P<one>{MONEY}), (?P<two>{MONEY})", "%(one)s, %(two)s"),
           ConsolePhrase(r"(?P<day>\d{4}-\d\d-\d\d) (?P<kind>[a-z_]+): (?P<subject_text>.*)", "%(day)s, %(kind)s: %(subject_text)s"),
           ConsolePhrase(r"(?P<kind>call|visit|email|meeting|demo|other): (?P<subject_text>.*)", "%(kind)s: %(subject_text)s"),
           ConsolePhrase(rf"(?P<title_text>.*): (?P<amount>{MONEY})", "%(title_text)s: %(amount)s", kind="opportunity won"),
           ConsolePhrase(r"(?P<title_text>.*): (?P<reason>.*)", "%(title_text)s: %(reason)s", kind="opportunity lost"),
           ConsolePhrase(r"Deal reopened: (?P<title_text>.*)", "Deal reopened: %(title_text)s", kind="interaction"))
crm_console_register = console_register(__name__, NavEntry("Sales", "/sales", "customer.read", order=20), phrases=PHRASES)


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
