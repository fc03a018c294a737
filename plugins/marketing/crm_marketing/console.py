"""The marketing plugin's part of the web console: segments (with a live count while the rule is
typed), campaigns and the campaign report.

Hook implementations only; the page handlers are in :mod:`crm_marketing.console_pages`, imported
when the console is built (the CLI does not pay for Starlette and Jinja2).
"""
from __future__ import annotations

from crmcore.console import ConsolePhrase, NavEntry, console_register

#: navigation, templates, messages and every route of console_pages.ROUTES (needing customer.read)
#: the timeline line of views.timeline in the reader's language
PHRASES = (ConsolePhrase(r"(?P<response>[a-z_]+) to campaign (?P<name_text>.*)", "%(response)s: campaign %(name_text)s",
                         kind="campaign response"),)
crm_console_register = console_register(__name__, NavEntry("Marketing", "/marketing/segments", "customer.read", order=40),
                                        phrases=PHRASES)
