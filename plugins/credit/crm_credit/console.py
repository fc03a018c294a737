"""The credit plugin's part of the web console: the section on the 360° page, the customer's
credit page (profile, hold, release), the ageing page and the "customers on credit hold" card.

Hook implementations only; the page handlers are in :mod:`crm_credit.console_pages`, imported
when the console is built (the CLI does not pay for Starlette and Jinja2).
"""
from __future__ import annotations

from typing import Any

from crmcore import hookimpl
from crmcore.console import ConsolePhrase, HomeCard, NavEntry, console_register

#: navigation, templates, messages and every route of console_pages.ROUTES (needing customer.read)
#: the timeline lines of services.timeline and control.timeline in the reader's language
PHRASES = (ConsolePhrase(r"level (?P<level_text>\d+): (?P<amount>-?[\d,]+(?:\.\d+)? [A-Z]{3}) (?P<days>-?\d+) days overdue",
                         "Level %(level_text)s: %(amount)s, %(days)s days overdue"),
           ConsolePhrase(r"grade (?P<old_text>\S+) → (?P<new_text>\S+) \(score (?P<old_score>\S+) → (?P<new_score>\S+)\)",
                         "Grade %(old_text)s → %(new_text)s (score %(old_score)s → %(new_score)s)", kind="credit downgrade"),
           ConsolePhrase(r"(?P<message_text>.*) \(passed by (?P<actor_text>[^,()]+), (?P<source>[a-z_ ]+)\)",
                         "%(message_text)s (passed by %(actor_text)s, %(source)s)", kind="credit warning"),
           ConsolePhrase(r"(?P<grade_text>[A-Z][+-]?) \(score (?P<score>-?[\d.]+)\)", "%(grade_text)s (score %(score)s)"),
           # dunning.py: the reason of a hold it puts, and the subject of the letter it logs
           ConsolePhrase(r"dunning level (?P<level_text>\d+): (?P<n>\d+) invoice\(s\) over (?P<days>\d+) days overdue",
                         "Dunning level %(level_text)s: %(n)s invoice(s) over %(days)s days overdue"),
           ConsolePhrase(r"Dunning level (?P<level_text>\d+) \((?P<action>[a-z ]+)\): (?P<n>\d+) invoice\(s\), (?P<amounts_text>.*) overdue",
                         "Dunning level %(level_text)s (%(action)s): %(n)s invoice(s), %(amounts_text)s overdue", kind="interaction"))
crm_console_register = console_register(__name__, NavEntry("Credit", "/credit/ageing", "customer.read", order=30),
                                        phrases=PHRASES)


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
