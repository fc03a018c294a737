"""Return visits (回访): scheduled N business days after a resolution, due/overdue per agent,
completed with an outcome and a satisfaction score; a visit that finds a problem opens a ticket."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from crm_service.models import Ticket, Visit
from crm_service.schemas import TicketOpen, VisitDone
from crm_service.settings import ServiceSettings, settings
from crmcore.errors import Conflict, NotFound
from crmcore.models import User
from crmcore.uow import UnitOfWork


def schedule_after_resolution(uow: UnitOfWork, cfg: ServiceSettings, ticket: Ticket) -> Visit | None:
    """One visit per ticket, ``visit_after_days`` business days (of the team's calendar) after
    the resolution; a ticket resolved again reschedules its visit if not yet done."""
    cal = cfg.calendar_for(ticket.team)
    start = ticket.resolved_at or uow.now()
    day = start.astimezone(cal.zone).date()
    for _ in range(cfg.visit_after_days):  # the Nth working day after the resolution's date
        day += dt.timedelta(days=1)
        while not cal.is_working_day(day):
            day += dt.timedelta(days=1)
    intervals = cal.day_intervals(day)
    due = intervals[0][0] if intervals and cfg.visit_after_days else start
    visit = uow.session.scalar(select(Visit).where(Visit.ticket_id == ticket.id))
    if visit is None:
        visit = Visit(customer_id=ticket.customer_id, ticket_id=ticket.id, agent_id=ticket.assignee_id, due_at=due,
                      problem=False)
        uow.session.add(visit)
    elif visit.done_at is None:
        visit.due_at = due
    uow.session.flush()
    return visit


def due(uow: UnitOfWork, *, agent: str | None = None, within_days: int = 0) -> list[dict[str, Any]]:
    """Open visits due by now (+ ``within_days``), oldest first, flagged overdue."""
    uow.require("customer.read")
    now = uow.now()
    q = (select(Visit, User.username).outerjoin(User, User.id == Visit.agent_id)
         .where(Visit.done_at.is_(None), Visit.due_at <= now + dt.timedelta(days=within_days),
                uow.visibility.customer_filter(Visit.customer_id)).order_by(Visit.due_at, Visit.id))
    if agent:
        q = q.where(Visit.agent_id == uow.users.get_by_username(agent).id)
    return [{"id": v.id, "customer_id": v.customer_id, "ticket_id": v.ticket_id, "agent": name, "due_at": v.due_at,
             "overdue": v.due_at < now} for v, name in uow.session.execute(q)]


def done(uow: UnitOfWork, visit_id: int, data: VisitDone) -> Visit:
    """Complete a visit; with ``problem`` a follow-up ticket is opened for the customer."""
    uow.require("service.visit.write")
    visit = uow.session.scalar(select(Visit).where(Visit.id == visit_id).with_for_update())
    if visit is None:
        raise NotFound("visit", visit_id)
    uow.customers.get(visit.customer_id)
    if visit.done_at is not None:
        raise Conflict(f"visit {visit_id} was already done on {visit.done_at:%Y-%m-%d}")
    visit.done_at = data.done_at or uow.now()
    visit.outcome, visit.satisfaction, visit.problem = data.outcome, data.satisfaction, data.problem
    if data.problem:
        from crm_service import tickets

        team = None
        if visit.ticket_id:
            team = uow.session.scalar(select(Ticket.team).where(Ticket.id == visit.ticket_id))
        t, _ = tickets.open_ticket(uow, visit.customer_id, TicketOpen(
            subject=f"Problem found on return visit {visit.id}", description=data.outcome, kind="complaint",
            category="other", channel="visit", team=team if team in settings(uow).teams else None))
        visit.follow_up_ticket_id = t.id
    uow.session.flush()
    uow.audit.record("done", "service_visit", visit.id, after={"satisfaction": data.satisfaction, "problem": data.problem,
                                                               "follow_up_ticket_id": visit.follow_up_ticket_id})
    return visit
