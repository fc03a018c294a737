"""Tickets: open, assign, note, move through the status machine, complaint handling, reopen.

Every function takes the unit of work, checks its permission first and flushes; the CLI, the
HTTP routes, the bulk import and the mail piping all call these, so the rules hold everywhere.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from crm_service import sla
from crm_service.models import ACTIVE, Ticket, TicketKind, TicketNote, TicketStatus
from crm_service.schemas import ComplaintStep, TicketOpen
from crm_service.settings import ServiceSettings, settings
from crm_service.tiers import tiers_of
from crmcore.enums import TransactionKind
from crmcore.errors import Conflict, InvalidInput, NotFound
from crmcore.models import User
from crmcore.sdk import new_ref
from crmcore.statemachine import move
from crmcore.uow import UnitOfWork


def check_category(cfg: ServiceSettings, category: str) -> str:
    c = category.strip().lower()
    if c not in cfg.categories:
        raise InvalidInput(f"unknown category {category!r} (categories: {', '.join(cfg.categories)})", [("category", category)])
    return c


def check_team(cfg: ServiceSettings, team: str | None) -> str:
    t = team or cfg.default_team
    if t not in cfg.teams:
        raise InvalidInput(f"unknown team {t!r} (teams: {', '.join(cfg.teams)})", [("team", t)])
    return t


def get(uow: UnitOfWork, ticket_id: int, *, lock: bool = False) -> Ticket:
    """A ticket whose customer the actor may see (NotFound otherwise)."""
    q = select(Ticket).where(Ticket.id == ticket_id)
    ticket = uow.session.scalar(q.with_for_update() if lock else q)
    if ticket is None:
        raise NotFound("ticket", ticket_id)
    try:  # the actor's visibility (customers.get does not apply it): an invisible one is "not found"
        uow.customers.visible(ticket.customer_id)
    except NotFound:
        raise NotFound("ticket", ticket_id) from None
    return ticket


def note(uow: UnitOfWork, ticket: Ticket, kind: str, body: str, data: dict[str, Any] | None = None) -> TicketNote:
    n = TicketNote(ticket_id=ticket.id, at=uow.now(), author=uow.actor, kind=kind, body=body[:10000], data=data)
    uow.session.add(n)
    return n


def open_ticket(uow: UnitOfWork, customer_id: int, data: TicketOpen) -> tuple[Ticket, bool]:
    """Open a ticket (due times from the SLA of its priority on its team's calendar); returns
    (ticket, created). The same ``external_ref`` again returns the stored ticket (imports)."""
    uow.require("service.ticket.write")
    cfg = settings(uow)
    category, team = check_category(cfg, data.category), check_team(cfg, data.team)
    if data.external_ref:
        existing = uow.session.scalar(select(Ticket).where(Ticket.external_ref == data.external_ref))
        if existing is not None:
            if existing.customer_id != customer_id or existing.subject != data.subject:
                raise Conflict(f"ticket reference {data.external_ref!r} is already ticket {existing.id} with other content")
            return existing, False
    customer = uow.customers.get(customer_id)
    if customer.archived:
        raise Conflict(f"customer {customer_id} is archived")
    if data.contact_id is not None and data.contact_id not in {c.id for c in uow.contacts.list(customer_id)}:
        raise InvalidInput(f"contact {data.contact_id} does not belong to customer {customer_id}")
    opened = data.opened_at or uow.now()
    tier = tiers_of(uow, cfg, [customer_id]).get(customer_id)
    first_due, res_due, rule = sla.dues(cfg, team, data.priority.value, opened, category, tier)
    ticket = Ticket(customer_id=customer_id, contact_id=data.contact_id, channel=data.channel, kind=data.kind,
                    category=category, priority=data.priority, subject=data.subject, description=data.description,
                    team=team, status=TicketStatus.NEW, external_ref=data.external_ref or new_ref(),
                    opened_at=opened, first_response_due=first_due, resolution_due=res_due, sla_rule=rule, paused_minutes=0,
                    reopen_count=0)
    uow.session.add(ticket)
    uow.session.flush()
    uow.audit.record("create", "service_ticket", ticket.id, after={"customer_id": customer_id, "subject": data.subject,
                                                                   "priority": data.priority.value, "category": category})
    if data.assignee:
        _assign_to(uow, ticket, data.assignee)
    else:
        auto_assign(uow, cfg, ticket)
    return ticket, True


def _user_id(uow: UnitOfWork, username: str) -> int:
    user = uow.users.get_by_username(username)
    if not user.active:
        raise Conflict(f"user {username} is deactivated")
    return user.id


def _assign_to(uow: UnitOfWork, ticket: Ticket, username: str | None) -> None:
    before = ticket.assignee_id
    after = None if username is None else _user_id(uow, username)
    if before == after:
        return
    ticket.assignee_id = after
    uow.session.flush()
    uow.audit.record("assign", "service_ticket", ticket.id, before={"assignee_id": before}, after={"assignee_id": after})
    note(uow, ticket, "assignment", f"assigned to {username or 'nobody'}", {"from": before, "to": after})


def auto_assign(uow: UnitOfWork, cfg: ServiceSettings, ticket: Ticket) -> None:
    """Round-robin (after the member who got the team's latest ticket) or least-loaded (fewest
    active tickets, ties in member order) within the ticket's team; manual teams: nobody."""
    team = cfg.teams[ticket.team]
    if team.assignment == "manual" or not team.members:
        return
    ids = dict(uow.session.execute(select(User.username, User.id).where(User.username.in_(team.members),
                                                                        User.active.is_(True))).all())
    members = [m for m in team.members if m in ids]
    if not members:
        return
    if team.assignment == "round_robin":
        last = uow.session.scalar(select(Ticket.assignee_id).where(Ticket.team == ticket.team, Ticket.id != ticket.id,
                                                                   Ticket.assignee_id.in_(ids.values()))
                                  .order_by(Ticket.id.desc()).limit(1))
        order = [ids[m] for m in members]
        chosen = order[(order.index(last) + 1) % len(order)] if last in order else order[0]
    else:
        load = dict(uow.session.execute(select(Ticket.assignee_id, func.count()).where(
            Ticket.assignee_id.in_(ids.values()), Ticket.status.in_(ACTIVE), Ticket.id != ticket.id)
            .group_by(Ticket.assignee_id)).all())
        order_least = min(range(len(members)), key=lambda n: (load.get(ids[members[n]], 0), n))
        chosen = ids[members[order_least]]
    _assign_to(uow, ticket, next(k for k, v in ids.items() if v == chosen))


def assign(uow: UnitOfWork, ticket_id: int, username: str | None, *, auto: bool = False) -> Ticket:
    """Assign to a user (yourself with ``service.ticket.write``, anyone with ``service.ticket.assign``)
    or by the team's rule (``auto``); audited."""
    ticket = get(uow, ticket_id, lock=True)
    if auto or username != uow.actor or ticket.assignee_id is not None:
        uow.require("service.ticket.assign")
    else:
        uow.require("service.ticket.write")
    if ticket.status not in ACTIVE:
        raise Conflict(f"ticket {ticket_id} is {ticket.status.value}; reopen it first")
    if auto:
        ticket.assignee_id = None
        auto_assign(uow, settings(uow), ticket)
    else:
        _assign_to(uow, ticket, username)
    return ticket


def add_note(uow: UnitOfWork, ticket_id: int, body: str, *, reply: bool = False) -> TicketNote:
    """An internal note, or a reply to the customer (the first reply is the first response)."""
    uow.require("service.ticket.write")
    body = body.strip()
    if not body:
        raise InvalidInput("the note is empty")
    ticket = get(uow, ticket_id, lock=True)
    if reply:
        respond(uow, ticket)
    return note(uow, ticket, "reply" if reply else "note", body)


def respond(uow: UnitOfWork, ticket: Ticket) -> None:
    """Record the first response (once) with its business time; a new ticket becomes open."""
    now = uow.now()
    if ticket.first_response_at is None:
        ticket.first_response_at = now
        ticket.first_response_minutes = sla.handled_minutes(settings(uow), ticket, now)
        sla.mark_late_event(ticket, "first_response", now)
    if ticket.status == TicketStatus.NEW:
        change_status(uow, ticket.id, "open", reason="first response")


def change_status(uow: UnitOfWork, ticket_id: int, to: str, reason: str | None = None) -> Ticket:
    """Move a ticket; pauses the SLA clock while waiting, keeps resolution facts, checks the reopen window."""
    uow.require("service.ticket.write")
    cfg, now = settings(uow), uow.now()
    ticket = get(uow, ticket_id, lock=True)
    old = ticket.status
    t = ticket.state_machine.transition(old, to, ticket.id)
    if t.target == "open" and old in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        _check_reopen_window(cfg, ticket, now)
    if old == TicketStatus.WAITING:
        sla.resume(cfg, ticket, now)
    move(uow, ticket, t.target, reason=reason)
    if t.target == "waiting":
        sla.pause(ticket, now)
    elif t.target == "resolved":
        _on_resolved(uow, cfg, ticket, now)
    elif t.target == "closed":
        ticket.closed_at = now
    elif old in (TicketStatus.RESOLVED, TicketStatus.CLOSED):  # reopened
        ticket.reopen_count = (ticket.reopen_count or 0) + 1
        ticket.resolved_at = ticket.closed_at = ticket.resolution_minutes = None
        if ticket.resolution_breached_at is None and ticket.resolution_due < now:
            ticket.resolution_breached_at = ticket.resolution_due
    uow.session.flush()
    return ticket


def _check_reopen_window(cfg: ServiceSettings, ticket: Ticket, now: dt.datetime) -> None:
    limit = (ticket.resolved_at or now) + dt.timedelta(days=cfg.reopen_days)
    if now > limit:
        raise Conflict(f"ticket {ticket.id} was resolved on {ticket.resolved_at:%Y-%m-%d}, more than {cfg.reopen_days} days "
                       "ago; open a new ticket instead")


def _on_resolved(uow: UnitOfWork, cfg: ServiceSettings, ticket: Ticket, now: dt.datetime) -> None:
    from crm_service import surveys, visits

    if ticket.first_response_at is None:  # resolving answers the customer
        ticket.first_response_at = now
        ticket.first_response_minutes = sla.handled_minutes(cfg, ticket, now)
        sla.mark_late_event(ticket, "first_response", now)
    ticket.resolved_at = now
    ticket.resolution_minutes = sla.handled_minutes(cfg, ticket, now)
    sla.mark_late_event(ticket, "resolution", now)
    uow.session.flush()
    visits.schedule_after_resolution(uow, cfg, ticket)
    surveys.send_csat(uow, ticket)


def complaint_step(uow: UnitOfWork, ticket_id: int, step: ComplaintStep) -> Ticket:
    """Record complaint handling; money compensation is a credit note through the core's ledger
    (``account.post`` needed), posted once per ticket under reference ``SVC-<id>-COMP``."""
    uow.require("service.ticket.write")
    ticket = get(uow, ticket_id, lock=True)
    if ticket.kind != TicketKind.COMPLAINT:
        raise Conflict(f"ticket {ticket_id} is a {ticket.kind.value}, not a complaint")
    changed: dict[str, Any] = {}
    for f in ("facts", "solution", "accepted", "apology"):
        value = getattr(step, f)
        if value is not None and value != getattr(ticket, f):
            changed[f] = value
            setattr(ticket, f, value)
    if step.compensation is not None:
        if ticket.compensation is not None:
            raise Conflict(f"ticket {ticket_id} already has a compensation of {ticket.compensation} ({ticket.compensation_ref})")
        from crmcore.schemas import TransactionCreate

        ref = f"SVC-{ticket.id}-COMP"
        uow.accounts.post(ticket.customer_id, TransactionCreate(
            kind=TransactionKind.CREDIT_NOTE, amount=step.compensation, reference=ref,
            currency=step.currency or settings(uow).compensation_currency, description=f"compensation, ticket {ticket.id}"))
        ticket.compensation, ticket.compensation_ref = step.compensation, ref
        changed["compensation"] = step.compensation
    if not changed:
        raise InvalidInput("nothing to record: give facts, solution, accepted, apology or compensation")
    uow.session.flush()
    uow.audit.record("complaint", "service_ticket", ticket.id, after=changed)
    note(uow, ticket, "complaint", "; ".join(f"{k}: {v}" for k, v in changed.items()), {"fields": sorted(changed)})
    return ticket


def list_tickets(uow: UnitOfWork, *, status: Sequence[str] = (), team: str | None = None, assignee: str | None = None,
                 customer_id: int | None = None, limit: int = 100) -> list[Ticket]:
    uow.require("customer.read")
    q = select(Ticket).order_by(Ticket.id.desc()).limit(max(1, min(limit, 10_000)))
    if status:
        bad = [s for s in status if s not in TicketStatus.__members__.values()]
        if bad:
            raise InvalidInput(f"unknown status {bad[0]!r} (statuses: {', '.join(s.value for s in TicketStatus)})")
        q = q.where(Ticket.status.in_(list(status)))
    if team:
        q = q.where(Ticket.team == team)
    if assignee:
        q = q.where(Ticket.assignee_id == uow.users.get_by_username(assignee).id)
    if customer_id is not None:
        uow.customers.get(customer_id)
        q = q.where(Ticket.customer_id == customer_id)
    return list(uow.session.scalars(q.where(uow.visibility.customer_filter(Ticket.customer_id))))


def as_dict(uow: UnitOfWork, t: Ticket, *, notes: bool = False) -> dict[str, Any]:
    """The ticket as JSON-ready data, with its SLA state."""
    now = uow.now()
    names = dict(uow.session.execute(select(User.id, User.username).where(User.id == t.assignee_id)).all()) if t.assignee_id else {}
    out: dict[str, Any] = {"id": t.id, "customer_id": t.customer_id, "contact_id": t.contact_id, "status": t.status.value,
           "kind": t.kind.value, "category": t.category, "priority": t.priority.value, "channel": t.channel.value,
           "subject": t.subject, "description": t.description, "team": t.team,
           "assignee": names.get(t.assignee_id or 0), "reference": t.external_ref,
           "opened_at": t.opened_at, "first_response_due": t.first_response_due, "resolution_due": t.resolution_due,
           "first_response_at": t.first_response_at, "resolved_at": t.resolved_at, "closed_at": t.closed_at,
           "first_response_breached_at": t.first_response_breached_at, "resolution_breached_at": t.resolution_breached_at,
           "escalated_at": t.escalated_at, "sla_rule": t.sla_rule, "sla_state": sla_state(t, now), "reopen_count": t.reopen_count,
           "first_response_minutes": t.first_response_minutes, "resolution_minutes": t.resolution_minutes}
    if t.kind == TicketKind.COMPLAINT:
        out["complaint"] = {"facts": t.facts, "solution": t.solution, "accepted": t.accepted, "apology": t.apology,
                            "compensation": t.compensation, "compensation_ref": t.compensation_ref}
    if notes:
        out["notes"] = [{"at": n.at, "author": n.author, "kind": n.kind, "body": n.body} for n in uow.session.scalars(
            select(TicketNote).where(TicketNote.ticket_id == t.id).order_by(TicketNote.id))]
    return out


def sla_state(t: Ticket, now: dt.datetime) -> str:
    """``breached``, ``paused``, ``at_risk`` (due within the hour), ``on_track`` or ``done``."""
    if t.first_response_breached_at or t.resolution_breached_at:
        return "breached"
    if t.status not in ACTIVE:
        return "done"
    if t.status == TicketStatus.WAITING:
        return "paused"
    due = t.resolution_due if t.first_response_at else min(t.first_response_due, t.resolution_due)
    if due < now:
        return "breached"
    return "at_risk" if due - now < dt.timedelta(hours=1) else "on_track"
