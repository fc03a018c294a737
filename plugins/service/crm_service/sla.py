"""SLA: due times in business time, the pause while waiting on the customer, breaches, escalation.

Due times are computed when a ticket opens, on its team's calendar, from the policy of its
priority. While a ticket waits on the customer the clock stops: on resume, each due time not
yet met moves on by the business time that elapsed during the pause. :func:`check` marks
breaches (with the instant the target was missed, i.e. the due time) and escalates, set-based:
three UPDATE statements over the open tickets, each guarded by "not yet marked", so running
it again, or from several processes at once, marks and escalates each ticket exactly once.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, case, insert, select, update

from crm_service.models import RUNNING, Priority, Ticket, TicketNote
from crm_service.settings import PRIORITIES, ServiceSettings, settings
from crmcore.models import AuditEntry, User
from crmcore.uow import UnitOfWork

MINUTE = dt.timedelta(minutes=1)


def minutes(td: dt.timedelta) -> int:
    return int(td.total_seconds() // 60)


def dues(cfg: ServiceSettings, team: str, priority: str, opened_at: dt.datetime, category: str = "other",
         tier: str | None = None) -> tuple[dt.datetime, dt.datetime, str]:
    """(first response due, resolution due, rule) for a ticket opened at ``opened_at``: the policy
    of its priority, or the most specific ``sla_overrides`` entry for its category / customer tier."""
    policy, rule = cfg.policy_for(priority, category, tier)
    cal = cfg.calendar_for(team)
    return (cal.add_business_time(opened_at, dt.timedelta(hours=policy.first_response_hours)),
            cal.add_business_time(opened_at, dt.timedelta(hours=policy.resolution_hours)), rule)


def pause(ticket: Ticket, now: dt.datetime) -> None:
    ticket.paused_at = now


def resume(cfg: ServiceSettings, ticket: Ticket, now: dt.datetime) -> None:
    """Move the due times still open by the business time the pause lasted."""
    if ticket.paused_at is None:
        return
    cal = cfg.calendar_for(ticket.team)
    paused = cal.business_time_between(ticket.paused_at, now)
    ticket.paused_minutes = (ticket.paused_minutes or 0) + minutes(paused)
    if ticket.first_response_at is None and ticket.first_response_breached_at is None:
        ticket.first_response_due = _shift(cal, ticket.paused_at, ticket.first_response_due, now)
    if ticket.resolved_at is None and ticket.resolution_breached_at is None:
        ticket.resolution_due = _shift(cal, ticket.paused_at, ticket.resolution_due, now)
    ticket.paused_at = None


def _shift(cal: Any, paused_at: dt.datetime, due: dt.datetime, now: dt.datetime) -> dt.datetime:
    if due <= paused_at:  # already late when the pause began: stays late
        return due
    return cal.add_business_time(now, cal.business_time_between(paused_at, due))


def handled_minutes(cfg: ServiceSettings, ticket: Ticket, until: dt.datetime) -> int:
    """Business minutes from opening to ``until`` with the pauses taken out."""
    cal = cfg.calendar_for(ticket.team)
    return max(0, minutes(cal.business_time_between(ticket.opened_at, until)) - (ticket.paused_minutes or 0))


def mark_late_event(ticket: Ticket, field: str, at: dt.datetime) -> None:
    """When a response or resolution comes after its due time, the breach is recorded at the due time."""
    due = getattr(ticket, f"{field}_due")
    if at > due and getattr(ticket, f"{field}_breached_at") is None:
        setattr(ticket, f"{field}_breached_at", due)


def _breach(uow: UnitOfWork, field: str, done: Any, now: dt.datetime) -> list[int]:
    """Mark the running tickets whose ``field`` target passed; returns the ids this call marked."""
    col_due, col_breach = getattr(Ticket, f"{field}_due"), getattr(Ticket, f"{field}_breached_at")
    stmt = (update(Ticket).where(Ticket.status.in_(RUNNING), done.is_(None), col_due < now, col_breach.is_(None))
            .values({col_breach: col_due}).returning(Ticket.id).execution_options(synchronize_session=False))
    return list(uow.session.scalars(stmt))


def check(uow: UnitOfWork) -> dict[str, Any]:
    """Mark breaches and escalate, once per ticket; returns the ids touched by this run."""
    uow.require("service.sla.check")
    cfg, now = settings(uow), uow.now()
    first = _breach(uow, "first_response", Ticket.first_response_at, now)
    resolution = _breach(uow, "resolution", Ticket.resolved_at, now)
    escalated = escalate(uow, cfg, now)
    return {"checked_at": now, "first_response_breaches": sorted(first), "resolution_breaches": sorted(resolution),
            "escalated": escalated}


def _manager_ids(uow: UnitOfWork, cfg: ServiceSettings) -> dict[str, int]:
    names = {t: team.manager for t, team in cfg.teams.items() if team.manager}
    ids = dict(uow.session.execute(select(User.username, User.id).where(User.username.in_(set(names.values())))).all())
    return {t: ids[m] for t, m in names.items() if m in ids}


def escalate(uow: UnitOfWork, cfg: ServiceSettings, now: dt.datetime) -> list[dict[str, Any]]:
    """One UPDATE over breached, not yet escalated, still open tickets: to the team's manager
    and/or one priority up (``[service] escalate_to``); each escalation is noted and audited."""
    values: dict[Any, Any] = {Ticket.escalated_at: now}
    if "priority" in cfg.escalate_to:
        values[Ticket.priority] = case(*((Ticket.priority == p, PRIORITIES[min(i + 1, len(PRIORITIES) - 1)])
                                         for i, p in enumerate(PRIORITIES)), else_=Ticket.priority)
    managers = _manager_ids(uow, cfg) if "manager" in cfg.escalate_to else {}
    if managers:
        values[Ticket.assignee_id] = case(*((Ticket.team == t, uid) for t, uid in managers.items()),
                                          else_=Ticket.assignee_id)
    breached = (Ticket.first_response_breached_at.is_not(None)) | (Ticket.resolution_breached_at.is_not(None))
    stmt = (update(Ticket).where(and_(Ticket.status.in_(RUNNING), Ticket.escalated_at.is_(None), breached))
            .values(values).returning(Ticket.id, Ticket.priority, Ticket.assignee_id, Ticket.team)
            .execution_options(synchronize_session=False))
    rows = [{"id": r.id, "priority": Priority(r.priority).value, "assignee_id": r.assignee_id, "team": r.team}
            for r in uow.session.execute(stmt)]
    if rows:
        body = "escalated: SLA breached (" + ", ".join(cfg.escalate_to) + ")"
        uow.session.execute(insert(TicketNote), [
            {"ticket_id": r["id"], "at": now, "author": uow.actor, "kind": "escalation", "body": body,
             "data": {"priority": r["priority"], "assignee_id": r["assignee_id"]}} for r in rows])
        uow.session.execute(insert(AuditEntry), [
            {"actor": uow.actor, "action": "escalate", "entity": "service_ticket", "entity_id": str(r["id"]),
             "after": {"priority": r["priority"], "assignee_id": r["assignee_id"]}} for r in rows])
    return sorted(rows, key=lambda r: r["id"])
