"""The service plugin's part of the web console: the ticket queue with SLA countdowns, a ticket
with its moves and notes, the return visits due, and the "tickets near or past SLA" home card.

Hook implementations only; the page handlers are in :mod:`crm_service.console_pages`, imported
when the console is built (the CLI does not pay for Starlette and Jinja2).
"""
from __future__ import annotations

from typing import Any

from crmcore import hookimpl
from crmcore.console import ConsolePhrase, HomeCard, NavEntry, console_register

#: navigation, templates, messages and every route of console_pages.ROUTES (needing customer.read)
#: the timeline lines of views.timeline in the reader's language
PHRASES = (ConsolePhrase(r"ticket (?P<id_text>\d+) opened: (?P<subject_text>.*)", "Ticket %(id_text)s opened: %(subject_text)s",
                         kind="ticket"),
           ConsolePhrase(r"return visit (?P<id_text>\d+): satisfaction (?P<score_text>\d+)",
                         "Return visit %(id_text)s: satisfaction %(score_text)s", kind="return visit"),
           ConsolePhrase(r"return visit (?P<id_text>\d+)", "Return visit %(id_text)s", kind="return visit"),
           ConsolePhrase(r"Problem found on return visit (?P<id_text>\d+)", "Problem found on return visit %(id_text)s",
                         kind="interaction"),  # visits.py: the complaint a failed visit logs
           # the notes tickets.assign and surveys.send write on a ticket (ticket.html)
           ConsolePhrase(r"assigned to nobody", "Unassigned", kind="note"),
           ConsolePhrase(r"assigned to (?P<user_text>\S+)", "Assigned to %(user_text)s", kind="note"),
           ConsolePhrase(r"CSAT survey (?P<status>[a-z_]+) via marketing \((?P<channel>[a-z_]+), (?P<adapter_text>[a-z_]+)\)",
                         "CSAT survey %(status)s via marketing (%(channel)s, %(adapter_text)s)", kind="note"))
crm_console_register = console_register(__name__, NavEntry("Service", "/service/tickets", "customer.read", order=35),
                                        phrases=PHRASES)


@hookimpl
def crm_console_home_cards(uow: Any, user: Any) -> Any:
    import datetime as dt

    from crm_service import queue

    if not uow.can("customer.read"):
        return None
    return HomeCard(title="Tickets near or past their SLA", order=20, template="service/card.html",
                    context={"tickets": queue.queue(uow, within=dt.timedelta(hours=4), limit=8)})
