"""Return visits (回访): scheduled N business days after a resolution, a won deal (sales_automation's
``sales_opportunity_won``) or an invoice of at least ``visit_after_invoice_amount`` (the core's
``crm_transaction_posted`` / ``crm_transactions_batch``); due/overdue per agent, completed with an
outcome and a satisfaction score; a visit that finds a problem opens a ticket."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from crm_service.models import Ticket, Visit
from crm_service.schemas import TicketOpen, VisitDone
from crm_service.settings import ServiceSettings, settings
from crmcore.errors import Conflict, NotFound
from crmcore.models import User
from crmcore.uow import UnitOfWork


def due_after(cfg: ServiceSettings, team: str | None, start: dt.datetime) -> dt.datetime:
    """The first working hour of the ``visit_after_days``-th working day after ``start``'s date
    on the team's calendar (``start`` itself with 0 days)."""
    cal = cfg.calendar_for(team)
    day = start.astimezone(cal.zone).date()
    for _ in range(cfg.visit_after_days):
        day += dt.timedelta(days=1)
        while not cal.is_working_day(day):
            day += dt.timedelta(days=1)
    intervals = cal.day_intervals(day)
    return intervals[0][0] if intervals and cfg.visit_after_days else start


def schedule_after_resolution(uow: UnitOfWork, cfg: ServiceSettings, ticket: Ticket) -> Visit | None:
    """One visit per ticket, ``visit_after_days`` business days (of the team's calendar) after
    the resolution; a ticket resolved again reschedules its visit if not yet done."""
    due = due_after(cfg, ticket.team, ticket.resolved_at or uow.now())
    visit = uow.session.scalar(select(Visit).where(Visit.ticket_id == ticket.id))
    if visit is None:
        visit = Visit(customer_id=ticket.customer_id, ticket_id=ticket.id, agent_id=ticket.assignee_id, due_at=due,
                      problem=False, reason="ticket")
        uow.session.add(visit)
    elif visit.done_at is None:
        visit.due_at = due
    uow.session.flush()
    return visit


def schedule_many(uow: UnitOfWork, reason: str, rows: Sequence[tuple[str, int, int | None, dt.datetime]]) -> int:
    """Visits after won deals or invoices: ``rows`` of (source, customer id, agent id, start).

    One INSERT ... ON CONFLICT (source) DO NOTHING for the whole batch, so the same deal or
    invoice never gets two visits, whoever schedules it and however often; returns how many
    were new. The agent is the deal's or the customer's owner.
    """
    if not rows:
        return 0
    cfg = settings(uow)
    values = [{"reason": reason, "source": src, "customer_id": cid, "agent_id": agent,
               "due_at": due_after(cfg, None, start), "problem": False} for src, cid, agent, start in rows]
    dialect = uow.session.get_bind().dialect.name
    ins = pg_insert(Visit) if dialect == "postgresql" else sqlite_insert(Visit)
    stmt = ins.on_conflict_do_nothing(index_elements=[Visit.source]).returning(Visit.id, Visit.source)
    created = uow.session.execute(stmt, values).all() if len(values) > 1 else uow.session.execute(stmt.values(values[0])).all()
    for vid, src in created:
        uow.audit.record("schedule", "service_visit", vid, after={"reason": reason, "source": src})
    return len(created)


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


def after_won_deal(uow: UnitOfWork, opportunity: Any) -> int:
    """A return visit after a won deal (``[service] visit_after_won_deal``), for the deal's owner."""
    if not settings(uow).visit_after_won_deal:
        return 0
    owner = getattr(opportunity, "owner", None)
    agent = uow.session.scalar(select(User.id).where(User.username == owner)) if owner else None
    return schedule_many(uow, "deal", [(f"deal:{opportunity.id}", opportunity.customer_id, agent, uow.now())])


def after_invoices(uow: UnitOfWork, transaction_ids: Sequence[int]) -> int:
    """Return visits after invoices of at least ``[service] visit_after_invoice_amount``: one query
    for the whole batch (the single post and the bulk import go the same way), for the customer's owner."""
    threshold = settings(uow).visit_after_invoice_amount
    if threshold is None or not transaction_ids:
        return 0
    from crmcore.enums import TransactionKind
    from crmcore.models import Customer, Transaction

    rows: list[tuple[str, int, int | None, dt.datetime]] = []
    ids = list(transaction_ids)
    for i in range(0, len(ids), 5000):
        q = (select(Transaction.id, Transaction.customer_id, Customer.owner_id, Transaction.occurred_at)
             .join(Customer, Customer.id == Transaction.customer_id)
             .where(Transaction.id.in_(ids[i:i + 5000]), Transaction.kind == TransactionKind.INVOICE,
                    Transaction.amount >= threshold))
        rows += [(f"invoice:{tid}", cid, owner, at) for tid, cid, owner, at in uow.session.execute(q)]
    return schedule_many(uow, "invoice", rows)
