"""The service pages of the console: the queue (SLA countdowns), one ticket (moves, notes) and
the return visits due. Handlers map forms onto :mod:`crm_service.tickets`,
:mod:`crm_service.visits` and :mod:`crm_service.queue`; the services check permissions,
visibility and the status machine (an illegal move is their one-line refusal).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from crm_service import queue, tickets, visits
from crmcore.console import View
from crmcore.console.web import status_for
from crmcore.errors import CRMError, NotFound
from crmcore.models import Customer
from crmcore.sdk import MAX_ID


def _tid(view: View) -> int:
    tid = int(view.request.path_params["tid"])
    if not 0 < tid <= MAX_ID:
        raise NotFound("ticket", tid)
    return tid


def ticket_queue(view: View) -> Response:
    with view.unit() as uow:
        rows = queue.queue(uow, limit=200)
    return view.render("service/queue.html", rows=rows)


def ticket(view: View, errors: dict[str, dict[str, str]] | None = None, status: int = 200) -> Response:
    tid = _tid(view)
    with view.unit() as uow:
        t = tickets.get(uow, tid)
        data = tickets.as_dict(uow, t, notes=True)
        sla = queue.clock(t, uow.now())
        moves = t.state_machine.allowed(t.status.value)
        customer = uow.session.scalar(select(Customer.name).where(Customer.id == t.customer_id))
        can_write = uow.can("service.ticket.write")
    raw = {"reason": view.field("reason"), "body": view.field("body")} if view.form is not None else {}
    return view.render("service/ticket.html", status=status, t=data, sla=sla, moves=moves, customer=customer,
                       can_write=can_write, errors=errors or {"move": {}, "note": {}}, raw=raw)


def move(view: View) -> Response:
    tid = _tid(view)
    to = view.field("status")
    try:
        with view.unit(write=True) as uow:
            tickets.change_status(uow, tid, to, view.field("reason") or None)
    except NotFound:
        raise
    except CRMError as e:
        return ticket(view, {"move": {"_": str(e)}, "note": {}}, status=status_for(e))
    return view.redirect(f"/service/tickets/{tid}", flash=view._("Ticket %(id)s is now %(status)s.", id=tid, status=view._(to)))


def note(view: View) -> Response:
    tid = _tid(view)
    body = view.field("body")
    if not body:
        return ticket(view, {"move": {}, "note": {"body": view._("Write the note first.")}}, status=422)
    try:
        with view.unit(write=True) as uow:
            tickets.add_note(uow, tid, body, reply=view.field("reply") == "yes")
    except NotFound:
        raise
    except CRMError as e:
        return ticket(view, {"move": {}, "note": {"_": str(e)}}, status=status_for(e))
    return view.redirect(f"/service/tickets/{tid}", flash=view._("Note added."))


def visits_due(view: View) -> Response:
    with view.unit() as uow:
        rows = visits.due(uow, within_days=7)
        ids = sorted({r["customer_id"] for r in rows})
        names = dict(uow.session.execute(select(Customer.id, Customer.name).where(Customer.id.in_(ids))).all()) if ids else {}
    return view.render("service/visits.html", rows=rows, names=names)


ROUTES: list[tuple[str, Any, tuple[str, ...]]] = [
    ("/service/tickets", ticket_queue, ("GET",)),
    ("/service/tickets/{tid:int}", ticket, ("GET",)),
    ("/service/tickets/{tid:int}/move", move, ("POST",)),
    ("/service/tickets/{tid:int}/notes", note, ("POST",)),
    ("/service/visits", visits_due, ("GET",)),
]
