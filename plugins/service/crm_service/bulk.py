"""Tickets through the core bulk path: ``crm import service_tickets FILE`` / ``crm export service_tickets``.

The key is the ticket's ``reference``: a row whose reference is stored is unchanged (a re-import
is a no-op) or, with other content, rejected. Customers are looked up once per batch by their
reference; the new rows are checked, given their SLA due times and assigned exactly as
:func:`crm_service.tickets.open_ticket` does, but written set-based: one INSERT per batch, one
UPDATE for the assignments, the notes and audit entries in bulk (never a service call per row).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import bindparam, func, insert, select, update

from crm_service import sla
from crm_service.models import ACTIVE, Priority, Ticket, TicketKind, TicketNote, TicketStatus
from crm_service.settings import ServiceSettings, settings
from crm_service.tickets import check_category, check_team
from crm_service.tiers import tiers_of
from crmcore.enums import Channel
from crmcore.errors import CRMError
from crmcore.models import AuditEntry, Customer, User
from crmcore.sdk import (
    BatchOutcome,
    BulkEntity,
    LongText,
    Ref,
    ShortText,
    Text,
    UTCDatetime,
    keyed_upsert,
    unknown_customer,
)
from crmcore.uow import UnitOfWork

COLUMNS = ("reference", "customer", "subject", "description", "kind", "category", "priority", "channel", "team",
           "opened_at", "status")


class TicketRow(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reference: Ref
    customer: Ref
    subject: Text
    description: LongText | None = None
    kind: TicketKind = TicketKind.INQUIRY
    category: ShortText = "other"
    priority: Priority = Priority.NORMAL
    channel: Channel = Channel.OTHER
    team: ShortText | None = None
    opened_at: UTCDatetime | None = None
    status: ShortText | None = None  # exported for reading; an import always opens as new


def write_batch(uow: UnitOfWork, rows: list[tuple[int, TicketRow]]) -> BatchOutcome:
    """One batch, set-based: a few lookups, the SLA due times computed in memory, one INSERT of
    the new tickets (:func:`keyed_upsert`), the assignments of the whole batch in bulk. The
    tickets are the ones :func:`crm_service.tickets.open_ticket` would open one by one."""
    uow.require("service.ticket.write")
    cfg = settings(uow)
    out = BatchOutcome()
    stored = {ref: (cid, subject) for ref, cid, subject in uow.session.execute(
        select(Ticket.external_ref, Ticket.customer_id, Ticket.subject).where(
            Ticket.external_ref.in_([r.reference for _, r in rows])))}
    customers = _customer_ids(uow, {r.customer for _, r in rows})
    fresh: list[tuple[int, TicketRow, int]] = []
    for line, r in rows:
        cid = customers.get(r.customer)
        if cid is None:
            out.reject(line, "customer", unknown_customer(r.customer), r.reference)
        elif r.reference in stored:
            if stored[r.reference] == (cid, r.subject):
                out.unchanged += 1
            else:
                out.reject(line, "reference", "a ticket has this reference with other content", r.reference)
        else:
            try:
                check_category(cfg, r.category), check_team(cfg, r.team)
            except CRMError as e:
                out.reject(line, "row", str(e).splitlines()[0], r.reference)
                continue
            fresh.append((line, r, cid))
    if fresh:
        tiers = tiers_of(uow, cfg, {cid for _, _, cid in fresh})
        now = uow.now()
        values = [(line, _values(cfg, r, cid, tiers.get(cid), now)) for line, r, cid in fresh]
        done, created, _ = keyed_upsert(uow, Ticket, values, audit_entity="service_ticket")
        out.inserted += done.inserted
        assign_new(uow, cfg, list(zip(created, [v["team"] for _, v in values], strict=True)))
    return out


def _customer_ids(uow: UnitOfWork, refs: set[str]) -> dict[str, int]:
    """Active customers the actor sees, by reference (as ``customer_ids_by_ref``, chunked)."""
    wanted, found = sorted(refs), dict[str, int]()
    for i in range(0, len(wanted), 2000):
        found.update((str(ref), cid) for ref, cid in uow.session.execute(select(Customer.external_ref, Customer.id).where(
            Customer.external_ref.in_(wanted[i:i + 2000]), Customer.archived.is_(False),
            uow.visibility.customer_filter(Customer.id))))
    return found


def _values(cfg: ServiceSettings, r: TicketRow, cid: int, tier: str | None, now: Any) -> dict[str, Any]:
    category, team = check_category(cfg, r.category), check_team(cfg, r.team)
    opened = r.opened_at or now
    first_due, res_due, rule = sla.dues(cfg, team, r.priority.value, opened, category, tier)
    return {"external_ref": r.reference, "customer_id": cid, "channel": r.channel, "kind": r.kind, "category": category,
            "priority": r.priority, "subject": r.subject, "description": r.description, "team": team,
            "status": TicketStatus.NEW, "opened_at": opened, "first_response_due": first_due, "resolution_due": res_due,
            "sla_rule": rule, "paused_minutes": 0, "reopen_count": 0, "created_at": now}


def assign_new(uow: UnitOfWork, cfg: ServiceSettings, new: list[tuple[int, str]]) -> None:
    """Assign a batch of new tickets (id, team), in order, by their teams' rules, as one by one
    would: round robin goes on after the team's latest assigned ticket, least loaded counts
    every ticket given so far in the batch; then one UPDATE, the notes and audit entries in bulk."""
    rules = {t: cfg.teams[t] for t in {t for _, t in new}}
    wanted = {m for team in rules.values() if team.assignment != "manual" for m in team.members}
    users = dict(uow.session.execute(select(User.username, User.id).where(User.username.in_(wanted),
                                                                          User.active.is_(True))).all())
    names = {v: k for k, v in users.items()}
    members = {t: [users[m] for m in team.members if m in users] for t, team in rules.items() if team.assignment != "manual"}
    load = dict(uow.session.execute(select(Ticket.assignee_id, func.count()).where(
        Ticket.assignee_id.in_(list(names)), Ticket.status.in_(ACTIVE)).group_by(Ticket.assignee_id)).all()) if names else {}
    turn: dict[str, int] = {}
    for team_name, order in members.items():
        if order and rules[team_name].assignment == "round_robin":
            last = uow.session.scalar(select(Ticket.assignee_id).where(
                Ticket.team == team_name, Ticket.id < min(i for i, t in new if t == team_name),
                Ticket.assignee_id.in_(order)).order_by(Ticket.id.desc()).limit(1))
            turn[team_name] = order.index(last) + 1 if last in order else 0
    chosen: dict[int, tuple[int, str]] = {}
    for tid, team_name in new:
        order = members.get(team_name) or []
        if not order:
            continue
        if team_name in turn:
            uid = order[turn[team_name] % len(order)]
            turn[team_name] += 1
        else:
            uid = min(order, key=lambda u: (load.get(u, 0), order.index(u)))
        load[uid] = load.get(uid, 0) + 1
        chosen[tid] = (uid, names[uid])
    if not chosen:
        return
    table = Ticket.__table__
    uow.session.connection().execute(update(table).where(table.c.id == bindparam("tid")).values(
        assignee_id=bindparam("uid")), [{"tid": t, "uid": u} for t, (u, _) in chosen.items()])
    now = uow.now()
    uow.session.execute(insert(TicketNote), [
        {"ticket_id": t, "at": now, "author": uow.actor, "kind": "assignment", "body": f"assigned to {name}",
         "data": {"from": None, "to": u}} for t, (u, name) in chosen.items()])
    uow.session.execute(insert(AuditEntry), [
        {"actor": uow.actor, "action": "assign", "entity": "service_ticket", "entity_id": str(t),
         "before": {"assignee_id": None}, "after": {"assignee_id": u}} for t, (u, _) in chosen.items()])


def export_rows(uow: UnitOfWork) -> Iterator[dict[str, Any]]:
    q = (select(Ticket, Customer.external_ref).join(Customer, Customer.id == Ticket.customer_id)
         .where(uow.visibility.customer_filter(Ticket.customer_id)).order_by(Ticket.id).execution_options(yield_per=2000))
    for t, cref in uow.session.execute(q):
        yield {"reference": t.external_ref, "customer": cref, "subject": t.subject, "description": t.description,
               "kind": t.kind.value, "category": t.category, "priority": t.priority.value, "channel": t.channel.value,
               "team": t.team, "opened_at": t.opened_at.isoformat(), "status": t.status.value}


TICKETS = BulkEntity(name="service_tickets", columns=COLUMNS, required=("reference", "customer", "subject"),
                     key="reference", schema=TicketRow, write_batch=write_batch, export_rows=export_rows,
                     permission="service.ticket.write", doc="customer-service tickets (re-import is a no-op)")
