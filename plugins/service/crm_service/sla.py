"""SLA: due times in business time, the pause while waiting on the customer, breaches, escalation.

Due times are computed when a ticket opens, on its team's calendar, from the policy of its
priority. While a ticket waits on the customer the clock stops: on resume, each due time not
yet met moves on by the business time that elapsed during the pause. :func:`check` marks
breaches (with the instant the target was missed, i.e. the due time) and escalates, set-based:
ONE ``UPDATE ... FROM (SELECT ... FOR UPDATE)`` over the running tickets writes each late ticket
once (both breaches and the escalation in the same row version) and returns what changed; the
notes and audit entries follow from it (PostgreSQL: in the same statement, as data-modifying
CTEs). Every change is guarded by "not yet marked" on the locked, current row, so running it
again, or from several processes at once, marks and escalates each ticket exactly once.
"""
from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace
from typing import Any

from sqlalchemy import String, and_, case, cast, func, insert, literal, select, text, update

from crm_service.models import RUNNING, Priority, Ticket, TicketNote
from crm_service.settings import PRIORITIES, ServiceSettings, settings
from crmcore.models import AuditEntry, User
from crmcore.sdk import UTCDateTime, utcnow
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


def check(uow: UnitOfWork) -> dict[str, Any]:
    """Mark breaches and escalate, once per ticket; returns the ids touched by this run."""
    uow.require("service.sla.check")
    cfg, now = settings(uow), uow.now()
    rows = _check_rows(uow, cfg, now)
    escalated = sorted((_row(r) for r in rows if r.e), key=lambda r: r["id"])
    return {"checked_at": now, "first_response_breaches": sorted(r.id for r in rows if r.f),
            "resolution_breaches": sorted(r.id for r in rows if r.r), "escalated": escalated}


def _manager_ids(uow: UnitOfWork, cfg: ServiceSettings) -> dict[str, int]:
    names = {t: team.manager for t, team in cfg.teams.items() if team.manager}
    ids = dict(uow.session.execute(select(User.username, User.id).where(User.username.in_(set(names.values())))).all())
    return {t: ids[m] for t, m in names.items() if m in ids}


def _check_rows(uow: UnitOfWork, cfg: ServiceSettings, now: dt.datetime) -> list[Any]:
    """One UPDATE over the running tickets that are newly late or breached and not yet escalated:
    the breaches are marked at their due times; an unescalated one goes to the team's manager
    and/or one priority up (``[service] escalate_to``), noted and audited. Rows: (id, f, r, e,
    priority, assignee_id, team) with f/r/e = first response / resolution marked, escalated now."""
    fr = (Ticket.first_response_at.is_(None) & Ticket.first_response_breached_at.is_(None)
          & (Ticket.first_response_due < now))
    res = Ticket.resolved_at.is_(None) & Ticket.resolution_breached_at.is_(None) & (Ticket.resolution_due < now)
    unescalated = Ticket.escalated_at.is_(None)
    breached = Ticket.first_response_breached_at.is_not(None) | Ticket.resolution_breached_at.is_not(None)
    late = and_(Ticket.status.in_(RUNNING), fr | res | (unescalated & breached))
    old = select(Ticket.id, fr.label("f"), res.label("r"), unescalated.label("e")).where(late)
    managers = _manager_ids(uow, cfg) if "manager" in cfg.escalate_to else {}
    body = "escalated: SLA breached (" + ", ".join(cfg.escalate_to) + ")"
    if uow.session.get_bind().dialect.name == "postgresql":  # the flags come from the locked current rows
        o = old.with_for_update().subquery("old")
        stmt = (update(Ticket).where(Ticket.id == o.c.id).values(_values(cfg, managers, now, o.c.f, o.c.r, o.c.e))
                .returning(Ticket.id, o.c.f, o.c.r, o.c.e, Ticket.priority, Ticket.assignee_id, Ticket.team))
        return _escalate_pg(uow, stmt, body, now)
    # SQLite: the write transaction holds the database lock, so the flags read first stay true for
    # the UPDATE (whose SET expressions see the old row); RETURNING cannot name an UPDATE FROM table
    conn = uow.session.connection()
    flags = {r.id: r for r in conn.execute(old)}
    if not flags:  # nothing late (a run after a run): no second pass over the running tickets
        return []
    stmt = (update(Ticket).where(late).values(_values(cfg, managers, now, fr, res, unescalated))
            .returning(Ticket.id, Ticket.priority, Ticket.assignee_id, Ticket.team))
    rows = [SimpleNamespace(id=r.id, f=flags[r.id].f, r=flags[r.id].r, e=flags[r.id].e, priority=r.priority,
                            assignee_id=r.assignee_id, team=r.team) for r in conn.execute(stmt)]
    _note_rows(uow, [r for r in rows if r.e], body, now)
    return rows


def _values(cfg: ServiceSettings, managers: dict[str, int], now: dt.datetime, f: Any, r: Any, e: Any) -> dict[Any, Any]:
    """The SET of the check: each change only where its flag (computed on the old row) holds."""
    values: dict[Any, Any] = {
        Ticket.first_response_breached_at: case((f, Ticket.first_response_due), else_=Ticket.first_response_breached_at),
        Ticket.resolution_breached_at: case((r, Ticket.resolution_due), else_=Ticket.resolution_breached_at),
        Ticket.escalated_at: case((e, now), else_=Ticket.escalated_at)}
    if "priority" in cfg.escalate_to:
        up = case(*((Ticket.priority == p, PRIORITIES[min(i + 1, len(PRIORITIES) - 1)]) for i, p in enumerate(PRIORITIES)),
                  else_=Ticket.priority)
        values[Ticket.priority] = case((e, up), else_=Ticket.priority)
    if managers:
        to = case(*((Ticket.team == t, uid) for t, uid in managers.items()), else_=Ticket.assignee_id)
        values[Ticket.assignee_id] = case((e, to), else_=Ticket.assignee_id)
    return values


def _row(r: Any) -> dict[str, Any]:
    return {"id": r.id, "priority": Priority(r.priority).value, "assignee_id": r.assignee_id, "team": r.team}


def _escalate_pg(uow: UnitOfWork, stmt: Any, body: str, now: dt.datetime) -> list[Any]:
    """PostgreSQL: ONE statement, the UPDATE ... RETURNING feeding both INSERT ... SELECTs (CTEs)."""
    up = stmt.cte("checked")
    data = func.json_build_object("priority", up.c.priority, "assignee_id", up.c.assignee_id)
    notes = insert(TicketNote.__table__).from_select(
        ["ticket_id", "at", "author", "kind", "body", "data"],
        select(up.c.id, literal(now, UTCDateTime), literal(uow.actor), literal("escalation"), literal(body), data)
        .where(up.c.e)).cte("notes")
    audit = insert(AuditEntry.__table__).from_select(
        ["at", "actor", "action", "entity", "entity_id", "after"],
        select(func.now(), literal(uow.actor), literal("escalate"), literal("service_ticket"), cast(up.c.id, String),
               data).where(up.c.e)).cte("audit")
    conn = uow.session.connection()
    saved = conn.execute(text(_PLAN_OFF)).one()  # the settings as they were, then off for this statement
    rows = list(conn.execute(select(up).add_cte(notes, audit)))  # (an error aborts the transaction: its
    conn.execute(text(_PLAN_BACK), dict(zip(_PLAN, saved[:len(_PLAN)], strict=True)))  # rollback undoes the SET LOCAL)
    return rows


# The UPDATE joins the late rows (found and locked through the status index) back to the
# tickets by id. Left alone, the planner prices one primary-key probe per late row above a
# sequential scan of the WHOLE table into a hash join, so the statement grows with the table
# rather than with the late rows (EXPLAIN ANALYZE at 1M tickets, 68k late: 1M rows read and
# hashed for the join, 2.8 of 13.6 s; the first check was 3.85x its baseline there, 1.68x at
# 200k); at that size JIT also compiles the statement (~0.1 s). For this one statement only (SET LOCAL,
# put back after it) hash and merge joins and JIT are off: a nested loop over the locked rows
# with a pkey probe each, whose row versions the UPDATE re-checks (EvalPlanQual) as before.
_PLAN = ("enable_hashjoin", "enable_mergejoin", "jit")
_PLAN_OFF = ("SELECT " + ", ".join(f"current_setting('{g}')" for g in _PLAN) + ", "
             + ", ".join(f"set_config('{g}', 'off', true)" for g in _PLAN))
_PLAN_BACK = "SELECT " + ", ".join(f"set_config('{g}', :{g}, true)" for g in _PLAN)


def _note_rows(uow: UnitOfWork, rows: list[Any], body: str, now: dt.datetime) -> None:
    """SQLite (no data-modifying CTEs): the escalation notes and audit entries of exactly the rows
    this UPDATE escalated (the database lock is held since the flags were read), sent as two
    executemany INSERTs of plain tuples through the driver: no second walk over the tickets."""
    if not rows:
        return
    conn = uow.session.connection()
    stamp = UTCDateTime().bind_processor(conn.dialect)
    assert stamp is not None
    at, noted = stamp(utcnow()), stamp(now)
    data = [json.dumps({"priority": Priority(r.priority).value, "assignee_id": r.assignee_id}) for r in rows]
    conn.exec_driver_sql("INSERT INTO service_ticket_notes (ticket_id, at, author, kind, body, data) "
                         "VALUES (?, ?, ?, 'escalation', ?, ?)",
                         [(r.id, noted, uow.actor, body, d) for r, d in zip(rows, data, strict=True)])
    conn.exec_driver_sql("INSERT INTO audit_log (at, actor, action, entity, entity_id, after) "
                         "VALUES (?, ?, 'escalate', 'service_ticket', ?, ?)",
                         [(at, uow.actor, str(r.id), d) for r, d in zip(rows, data, strict=True)])
