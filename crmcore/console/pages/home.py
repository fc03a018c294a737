"""The home page: the core's cards and every active plugin's (``crm_console_home_cards``)."""
from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from crmcore.console.extensions import Failed, HomeCard, call_each
from crmcore.console.web import View, page
from crmcore.schemas import CustomerQuery


def routes() -> list[Any]:
    return [Route("/", page(home), methods=["GET"])]


def home(view: View) -> Response:
    assert view.me is not None
    cards: list[HomeCard] = []
    failures: list[Failed] = []
    with view.unit() as uow:
        if uow.can("customer.read"):
            mine = uow.customers.search(CustomerQuery(owner=view.me.username, limit=8)).items
            cards.append(HomeCard(title=view._("My customers"), order=0, empty=view._("You own no customers yet."),
                                  items=[(c.name, view.url(f"/customers/{c.id}")) for c in mine],
                                  link=view.url("/customers", owner=view.me.username)))
        for _plugin, card in call_each(uow, "crm_console_home_cards", view.active, user=uow.user):
            if isinstance(card, Failed):
                failures.append(card)
            elif isinstance(card, HomeCard):
                cards.append(card)
            else:
                failures.append(Failed(_plugin, "crm_console_home_cards", f"returned {type(card).__name__}, not a HomeCard"))
        rendered = [_card_html(view, c) for c in sorted(cards, key=lambda c: c.order)]
        can_write = uow.can("customer.write")
    failures += view.console.registry.errors
    return view.render("home.html", cards=rendered, failures=failures, can_write=can_write)


def _card_html(view: View, card: HomeCard) -> dict[str, Any]:
    """A card as the template needs it; a plugin template is rendered here, inside the unit of work."""
    body = None
    if card.template:
        body = view.console.templates.get_template(card.template).render(
            {"_": view._, "fmt": view.fmt, "say": view.say, "url": view.url, "csrf": view.csrf, **card.context})
    return {"title": view._(card.title), "entries": card.items, "link": card.link, "body": body,
            "empty": view._(card.empty)}

