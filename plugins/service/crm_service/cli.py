"""``crm service …``: tickets, SLA check, return visits, surveys, NPS, the KPI report, mail piping.

Thin: parse, call a service in one unit of work, print a table or ``--json``. Bad input is one
``error:`` line with exit 1 (the core's CRMGroup prints crmcore errors) or 2 (usage), and
nothing is written because the unit of work rolls back.
"""
from __future__ import annotations

import sys
from typing import Any

import click

from crm_service import report as report_svc
from crm_service import sla, surveys, tickets, visits
from crm_service.models import Priority, TicketKind
from crm_service.schemas import ComplaintStep, SurveyIn, TicketOpen, VisitDone
from crmcore.enums import Channel
from crmcore.sdk import CUSTOMER, DATETIME, ID, AppContext, CRMGroup, echo, emit_json, pass_app, table, validate


def _json(f: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(f)


def _show(uow: Any, t: Any, as_json: bool, notes: bool = False) -> None:
    data = tickets.as_dict(uow, t, notes=notes)
    if as_json:
        emit_json(data)
        return
    table(f"ticket {t.id}", ["field", "value"],
          [[k, v] for k, v in data.items() if k not in ("notes", "complaint", "description")])
    if data.get("description"):  # its own lines under the table (each escaped), not \x0a in a cell
        echo("description:")
        for line in str(data["description"]).splitlines():
            echo(f"  {line}")
    for n in data.get("notes", []):
        echo(f"  {n['at']:%Y-%m-%d %H:%M} {n['author']} [{n['kind']}] {n['body']}")


@click.group(cls=CRMGroup)
def service() -> None:
    """Customer service: tickets and complaints, SLAs, return visits, CSAT/NPS surveys, KPIs."""


@service.group(cls=CRMGroup)
def ticket() -> None:
    """Open, list, show, assign, move, note, resolve, close and reopen tickets."""


@ticket.command("open")
@click.argument("customer", type=CUSTOMER)
@click.option("--subject", required=True)
@click.option("--priority", type=click.Choice([p.value for p in Priority]), default="normal", show_default=True)
@click.option("--kind", type=click.Choice([k.value for k in TicketKind]), default="inquiry", show_default=True)
@click.option("--category", default="other", show_default=True, help="one of [service] categories")
@click.option("--channel", type=click.Choice([c.value for c in Channel]), default="other", show_default=True)
@click.option("--team", default=None)
@click.option("--assignee", default=None, help="username (else the team's assignment rule)")
@click.option("--description", default=None)
@click.option("--ref", "external_ref", default=None, help="your reference; opening it again is a no-op")
@click.option("--at", "opened_at", type=DATETIME, default=None, help="when the customer asked (ISO 8601)")
@_json
@pass_app
def ticket_open(app: AppContext, customer: str, as_json: bool, **opts: Any) -> None:
    """Open a ticket for CUSTOMER; the SLA due times come from its priority and team calendar."""
    data = validate(TicketOpen, **opts)
    with app.crm().unit_of_work(app.actor) as uow:
        c = uow.customers.resolve(customer)
        t, created = tickets.open_ticket(uow, c.id, data)
        if as_json:
            emit_json(tickets.as_dict(uow, t))
        else:
            echo(f"{'opened' if created else 'already open:'} ticket {t.id} ({t.priority.value}), first response due "
                 f"{t.first_response_due.isoformat()}, resolution due {t.resolution_due.isoformat()}")


@ticket.command("list")
@click.option("--status", multiple=True)
@click.option("--team", default=None)
@click.option("--assignee", default=None)
@click.option("--customer", type=CUSTOMER, default=None)
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@_json
@pass_app
def ticket_list(app: AppContext, status: tuple[str, ...], team: str | None, assignee: str | None, customer: str | None,
                limit: int, as_json: bool) -> None:
    """Tickets, newest first, with their SLA state."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        cid = uow.customers.resolve(customer).id if customer else None
        rows = [tickets.as_dict(uow, t) for t in tickets.list_tickets(uow, status=status, team=team, assignee=assignee,
                                                                      customer_id=cid, limit=limit)]
    if as_json:
        emit_json(rows)
        return
    table("tickets", ["id", "customer", "status", "priority", "category", "assignee", "SLA", "resolution due", "subject"],
          [[r["id"], r["customer_id"], r["status"], r["priority"], r["category"], r["assignee"], r["sla_state"],
            r["resolution_due"], r["subject"]] for r in rows])


@ticket.command("show")
@click.argument("ticket_id", type=ID)
@_json
@pass_app
def ticket_show(app: AppContext, ticket_id: int, as_json: bool) -> None:
    """A ticket with its notes, complaint steps and SLA state."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        uow.require("customer.read")
        _show(uow, tickets.get(uow, ticket_id), as_json, notes=True)


@ticket.command("assign")
@click.argument("ticket_id", type=ID)
@click.argument("username", required=False)
@click.option("--auto", is_flag=True, help="by the team's rule (round robin / least loaded)")
@click.option("--nobody", is_flag=True, help="unassign")
@_json
@pass_app
def ticket_assign(app: AppContext, ticket_id: int, username: str | None, auto: bool, nobody: bool, as_json: bool) -> None:
    """Assign TICKET_ID to USERNAME (or --auto, or --nobody); reassignment is audited."""
    if sum(bool(x) for x in (username, auto, nobody)) != 1:
        raise click.UsageError("give USERNAME, --auto or --nobody")
    with app.crm().unit_of_work(app.actor) as uow:
        t = tickets.assign(uow, ticket_id, username, auto=auto)
        _show(uow, t, as_json) if as_json else echo(f"ticket {t.id} assigned to {tickets.as_dict(uow, t)['assignee'] or 'nobody'}")


def _move(app: AppContext, ticket_id: int, to: str, reason: str | None, as_json: bool) -> None:
    with app.crm().unit_of_work(app.actor) as uow:
        t = tickets.change_status(uow, ticket_id, to, reason)
        _show(uow, t, as_json) if as_json else echo(f"ticket {t.id} is {t.status.value}")


@ticket.command("move")
@click.argument("ticket_id", type=ID)
@click.argument("status", type=click.Choice(["new", "open", "waiting", "resolved", "closed"]))
@click.option("--reason", default=None)
@_json
@pass_app
def ticket_move(app: AppContext, ticket_id: int, status: str, reason: str | None, as_json: bool) -> None:
    """Move a ticket (waiting pauses the SLA clock)."""
    _move(app, ticket_id, status, reason, as_json)


for _name, _to, _doc in (("resolve", "resolved", "Resolve a ticket (schedules the return visit)."),
                         ("close", "closed", "Close a resolved ticket."),
                         ("reopen", "open", "Reopen a resolved or closed ticket within [service] reopen_days.")):
    def _make(to: str, doc: str) -> Any:
        @click.argument("ticket_id", type=ID)
        @click.option("--reason", default=None)
        @_json
        @pass_app
        def cmd(app: AppContext, ticket_id: int, reason: str | None, as_json: bool) -> None:
            _move(app, ticket_id, to, reason, as_json)
        cmd.__doc__ = doc
        return cmd
    ticket.command(_name)(_make(_to, _doc))


@ticket.command("note")
@click.argument("ticket_id", type=ID)
@click.argument("text")
@click.option("--reply", is_flag=True, help="a reply to the customer (the first one is the first response)")
@pass_app
def ticket_note(app: AppContext, ticket_id: int, text: str, reply: bool) -> None:
    """Add an internal note or a reply."""
    with app.crm().unit_of_work(app.actor) as uow:
        n = tickets.add_note(uow, ticket_id, text, reply=reply)
        echo(f"{n.kind} added to ticket {ticket_id}")


@ticket.command("complaint")
@click.argument("ticket_id", type=ID)
@click.option("--facts", default=None)
@click.option("--solution", default=None)
@click.option("--accepted/--rejected", default=None)
@click.option("--apology", default=None)
@click.option("--compensation", default=None, help="an amount: posted as a credit note (needs account.post)")
@click.option("--currency", default=None)
@_json
@pass_app
def ticket_complaint(app: AppContext, ticket_id: int, as_json: bool, **opts: Any) -> None:
    """Record complaint handling: facts found, solution, acceptance, apology, compensation."""
    step = validate(ComplaintStep, **opts)
    with app.crm().unit_of_work(app.actor) as uow:
        t = tickets.complaint_step(uow, ticket_id, step)
        _show(uow, t, as_json) if as_json else echo(f"complaint handling recorded on ticket {t.id}")


@service.group(cls=CRMGroup, name="sla")
def sla_group() -> None:
    """SLA breaches and escalation."""


@sla_group.command("check")
@_json
@pass_app
def sla_check(app: AppContext, as_json: bool) -> None:
    """Mark breaches and escalate (set-based, idempotent, safe to run from several processes)."""
    with app.crm().unit_of_work(app.actor) as uow:
        out = sla.check(uow)
    if as_json:
        emit_json(out)
        return
    echo(f"first response breaches: {len(out['first_response_breaches'])}, resolution breaches: "
         f"{len(out['resolution_breaches'])}, escalated: {len(out['escalated'])}")


@service.group(cls=CRMGroup)
def visit() -> None:
    """Return visits after resolutions."""


@visit.command("due")
@click.option("--agent", default=None)
@click.option("--within-days", type=click.IntRange(0, 365), default=0)
@_json
@pass_app
def visit_due(app: AppContext, agent: str | None, within_days: int, as_json: bool) -> None:
    """Open visits due (overdue flagged), per agent."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = visits.due(uow, agent=agent, within_days=within_days)
    if as_json:
        emit_json(rows)
        return
    table("return visits due", ["id", "customer", "ticket", "agent", "due", "overdue"],
          [[r["id"], r["customer_id"], r["ticket_id"], r["agent"], r["due_at"], "yes" if r["overdue"] else ""] for r in rows])


@visit.command("done")
@click.argument("visit_id", type=ID)
@click.option("--outcome", required=True)
@click.option("--satisfaction", type=int, required=True, help="1-5")
@click.option("--problem", is_flag=True, help="a problem was found: opens a ticket")
@click.option("--at", "done_at", type=DATETIME, default=None)
@_json
@pass_app
def visit_done(app: AppContext, visit_id: int, as_json: bool, **opts: Any) -> None:
    """Complete a return visit with its outcome and satisfaction."""
    data = validate(VisitDone, **opts)
    with app.crm().unit_of_work(app.actor) as uow:
        v = visits.done(uow, visit_id, data)
        out = {"id": v.id, "done_at": v.done_at, "satisfaction": v.satisfaction, "follow_up_ticket_id": v.follow_up_ticket_id}
    emit_json(out) if as_json else echo(f"visit {v.id} done" + (f"; opened ticket {v.follow_up_ticket_id}"
                                                                 if v.follow_up_ticket_id else ""))


@service.group(cls=CRMGroup)
def survey() -> None:
    """Survey answers (CSAT, NPS)."""


@survey.command("record")
@click.argument("customer", type=CUSTOMER)
@click.option("--nps", type=int, default=None, help="0-10")
@click.option("--csat", type=int, default=None, help="1-5")
@click.option("--ticket", "ticket_id", type=ID, default=None)
@click.option("--at", "answered_at", type=DATETIME, default=None)
@_json
@pass_app
def survey_record(app: AppContext, customer: str, as_json: bool, **opts: Any) -> None:
    """Record one answer (each customer answers each survey once)."""
    data = validate(SurveyIn, **opts)
    with app.crm().unit_of_work(app.actor) as uow:
        a, created = surveys.record(uow, uow.customers.resolve(customer).id, data)
        out = {"id": a.id, "customer_id": a.customer_id, "kind": a.kind, "score": a.score, "ticket_id": a.ticket_id,
               "answered_at": a.answered_at, "created": created}
    emit_json(out) if as_json else echo(f"{'recorded' if created else 'already recorded:'} {a.kind} {a.score} (answer {a.id})")


@survey.command("send-nps")
@_json
@pass_app
def survey_send_nps(app: AppContext, as_json: bool) -> None:
    """Send this period's NPS survey through marketing (consent checked), once per customer and period."""
    with app.crm().unit_of_work(app.actor) as uow:
        out = surveys.send_nps(uow)
    emit_json(out) if as_json else echo(f"NPS {out['period']}: {out['queued']} queued, {out['suppressed']} suppressed, "
                                        f"{out['already_answered']} already answered, {out['already_sent']} already sent")


@service.command("nps")
@click.option("--period", type=click.Choice(["month", "quarter", "year"]), default="quarter", show_default=True)
@_json
@pass_app
def nps_cmd(app: AppContext, period: str, as_json: bool) -> None:
    """Net promoter score per period and in total."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        out = surveys.nps(uow, period)
    if as_json:
        emit_json(out)
        return
    rows = [*out["periods"], {"period": "total", **out["total"]}]
    table("NPS", ["period", "nps", "promoters", "passives", "detractors", "answers"],
          [[r["period"], r["nps"], r["promoters"], r["passives"], r["detractors"], r["answers"]] for r in rows])


@service.command("report")
@click.option("--by", type=click.Choice(list(report_svc.BY)), default=None)
@_json
@pass_app
def report_cmd(app: AppContext, by: str | None, as_json: bool) -> None:
    """Service KPIs: response/resolution times (business hours), SLA attainment, backlog, rates, CSAT."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        out = report_svc.report(uow, by)
    if as_json:
        emit_json(out)
        return
    rows = [{"group": "total", **out["total"]}, *({"group": g[by], **g} for g in out["groups"])]
    table("service report", ["group", "tickets", "backlog", "FRT median h", "res. median h", "res. p90 h", "SLA",
                             "complaints handled", "reopen", "CSAT"],
          [[r["group"], r["tickets"], r["backlog"], r["first_response_hours"]["median"], r["resolution_hours"]["median"],
            r["resolution_hours"]["p90"], r["sla_attainment"], r["complaint_handling_rate"], r["reopen_rate"],
            r["csat"]["avg"]] for r in rows])


@service.command("mail")
@click.option("--kind", type=click.Choice([k.value for k in TicketKind]), default=None,
              help="kind of a new ticket (e.g. complaint for a complaints@ address)")
@click.option("--category", default=None, help="category of a new ticket")
@click.option("--priority", type=click.Choice([p.value for p in Priority]), default=None)
@click.option("--team", default=None)
@_json
@pass_app
def mail_cmd(app: AppContext, as_json: bool, **defaults: Any) -> None:
    """Read one e-mail (RFC 5322) on stdin: a new ticket, or a note on the ticket it replies to."""
    from crm_service import mail

    with app.crm().unit_of_work(app.actor) as uow:
        raw = mail.read_capped(sys.stdin.buffer, mail.limit(uow))
        out = mail.receive(uow, raw, defaults)
    emit_json(out) if as_json else echo(("already received: " if out["duplicate"] else "opened " if out["created"]
                                         else "added to ") + f"ticket {out['ticket_id']}")
