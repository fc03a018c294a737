"""The ticket queue as people work it: active tickets ordered by the SLA target that comes first,
each with its countdown (minutes left, negative when overdue). Used by the web console's queue
page and home card; visibility is the customers' (an "own" user sees their customers' tickets).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import case, select

from crm_service.models import ACTIVE, Ticket, TicketStatus
from crm_service.tickets import sla_state
from crmcore.models import Customer, User
from crmcore.uow import UnitOfWork


def target(t: Ticket) -> tuple[str, dt.datetime]:
    """The SLA target the ticket is running against now: first response until answered, then resolution."""
    if t.first_response_at is None and t.first_response_due <= t.resolution_due:
        return "first_response", t.first_response_due
    return "resolution", t.resolution_due


def clock(t: Ticket, now: dt.datetime) -> dict[str, Any]:
    """State (:func:`crm_service.tickets.sla_state`), which target, when it is due and the minutes
    left (negative: overdue by that much). A waiting ticket's clock is stopped: no countdown."""
    kind, due = target(t)
    state = sla_state(t, now)
    left = None if state in ("paused", "done") else int((due - now).total_seconds() // 60)
    return {"state": state, "target": kind, "due": due, "minutes_left": left}


def queue(uow: UnitOfWork, *, within: dt.timedelta | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Active tickets, the most urgent first; ``within``: only those due within that time (or past it).
    Three columns of names come with the one query (customer, assignee): no query per ticket."""
    uow.require("customer.read")
    now = uow.now()
    due = case((Ticket.first_response_at.is_(None), Ticket.first_response_due), else_=Ticket.resolution_due)
    q = (select(Ticket, Customer.name, User.username).join(Customer, Customer.id == Ticket.customer_id)
         .outerjoin(User, User.id == Ticket.assignee_id)
         .where(Ticket.status.in_(list(ACTIVE)), uow.visibility.customer_filter(Ticket.customer_id))
         .order_by(case((Ticket.status == TicketStatus.WAITING, 1), else_=0), due, Ticket.id).limit(max(1, min(limit, 1000))))
    if within is not None:
        q = q.where(Ticket.status != TicketStatus.WAITING, due <= now + within)
    return [{"id": t.id, "subject": t.subject, "customer_id": t.customer_id, "customer": name, "assignee": user,
             "status": t.status.value, "priority": t.priority.value, "team": t.team, "kind": t.kind.value,
             "reference": t.external_ref, **clock(t, now)} for t, name, user in uow.session.execute(q)]
