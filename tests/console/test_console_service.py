"""The service pages through the TestClient: the queue with SLA countdowns (time left, overdue,
stopped while waiting), a ticket's moves and notes (an illegal move refused in the page), return
visits due, visibility, and the "tickets near or past their SLA" card."""
from __future__ import annotations

import datetime as dt

from crm_service import tickets
from crm_service.schemas import TicketOpen
from crm_service.testing import FrozenClock

from tests.console.plugkit import ids, post, text_of

MONDAY = dt.datetime(2030, 6, 3, 9, 0, tzinfo=dt.UTC)  # 09:00 on a Monday, UTC business hours 09-17


def open_tickets(crm):
    crm.clock = FrozenClock(MONDAY)
    refs = ids(crm)
    with crm.unit_of_work("boss") as uow:
        late, _ = tickets.open_ticket(uow, refs["ALP"], TicketOpen(subject="Oven door broken", priority="urgent",
                                                                  opened_at=MONDAY - dt.timedelta(days=7)))
        soon, _ = tickets.open_ticket(uow, refs["ALP"], TicketOpen(subject="Invoice question", priority="urgent"))
        other, _ = tickets.open_ticket(uow, refs["SIB"], TicketOpen(subject="Окно не закрывается", priority="low"))
    return late.id, soon.id, other.id


def test_queue_shows_countdowns_and_only_visible_tickets(pclient, pcrm):
    _, _, other = open_tickets(pcrm)
    pcrm.clock.advance(minutes=20)
    boss = pclient("boss")
    q = text_of(boss.get("/console/service/tickets").text)
    assert "Oven door broken" in q and "overdue by" in q and "40 min left" in q and "Окно не закрывается" in q
    assert q.index("Oven door broken") < q.index("Invoice question") < q.index("Окно не закрывается")  # most urgent first
    anna = text_of(pclient("anna").get("/console/service/tickets").text)
    assert "Oven door broken" in anna and "Окно не закрывается" not in anna
    assert pclient("anna").get(f"/console/service/tickets/{other}").status_code == 404
    home = text_of(boss.get("/console/").text)
    assert "Tickets near or past their SLA" in home and "Oven door broken" in home and "Окно не закрывается" not in home


def test_moves_and_notes_through_forms(pclient, pcrm):
    _, soon, _ = open_tickets(pcrm)
    suzy = pclient("suzy")
    page = f"/console/service/tickets/{soon}"
    shown = suzy.get(page)
    assert shown.status_code == 200 and 'value="waiting"' in shown.text and 'value="closed"' not in shown.text
    r = post(suzy, f"{page}/move", page, status="closed", reason="done?")
    assert r.status_code == 409 and "closed" in r.text and 'value="done?"' in r.text  # the machine's refusal, input kept
    r = post(suzy, f"{page}/move", page, status="waiting", reason="asked for the invoice number")
    assert r.status_code == 303
    assert "clock stopped" in suzy.get(page).text
    r = post(suzy, f"{page}/notes", page, body="")
    assert r.status_code == 422 and 'id="e-body"' in r.text
    r = post(suzy, f"{page}/notes", page, body="Called the customer", reply="yes")
    assert r.status_code == 303 and "Called the customer" in suzy.get(page).text
    vic = pclient("vic")
    assert 'action="/console/service/tickets/' not in vic.get(page).text
    r = post(vic, f"{page}/move", page, status="open")
    assert r.status_code == 403 and "service.ticket.write" in r.text


def test_visits_due_page(pclient, pcrm):
    late, _, _ = open_tickets(pcrm)
    with pcrm.unit_of_work("boss") as uow:
        tickets.change_status(uow, late, "resolved", "door replaced")  # a visit 3 business days later
    r = pclient("boss").get("/console/service/visits")  # due in 3 business days: listed (a week ahead), not overdue
    assert r.status_code == 200 and "Alpine Kitchens GmbH" in r.text and "overdue" not in r.text
    pcrm.clock.advance(days=10)
    r = pclient("boss").get("/console/service/visits")
    assert r.status_code == 200 and "Alpine Kitchens GmbH" in r.text and f"#{late}" in r.text and "overdue" in r.text
    assert "Alpine Kitchens GmbH" not in pclient("sam").get("/console/service/visits").text
