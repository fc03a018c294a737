"""``crm sales activity …``, ``quota …``, ``handover`` and ``demo``: the reps' daily work."""
from __future__ import annotations

import click

from crm_sales_automation import services
from crm_sales_automation.cli._common import _activity_table, _choice, _date, _json, _money
from crm_sales_automation.enums import ActivityKind
from crm_sales_automation.schemas import (
    ActivityCreate,
    QuotaSet,
)
from crmcore.sdk import ID, AppContext, CRMGroup, emit_json, pass_app, resolve_customer, table, validate


@click.group(cls=CRMGroup)
def activity() -> None:
    """Activities and tasks on leads, opportunities and customers."""


@activity.command("add")
@click.argument("kind", type=_choice(ActivityKind))
@click.argument("subject")
@click.option("--lead", "lead_id", type=ID)
@click.option("--opp", "opp_id", type=ID)
@click.option("--customer", "customer_key", metavar="CUSTOMER")
@click.option("--due", metavar="YYYY-MM-DD[THH:MM]")
@click.option("--owner")
@click.option("--notes")
@click.option("--contact", "contact_id", type=ID, help="the person it is with: id of one of the customer's contacts")
@_json
@pass_app
def activity_add(app: AppContext, kind: str, subject: str, lead_id: int | None, opp_id: int | None,
                 customer_key: str | None, due: str | None, owner: str | None, notes: str | None,
                 contact_id: int | None, as_json: bool) -> None:
    """Plan an activity (call, visit, email, meeting, demo, other) on one lead, opportunity or customer."""
    data = validate(ActivityCreate, kind=kind, subject=subject, due_at=due, owner=owner, notes=notes, contact_id=contact_id)
    with app.crm().unit_of_work(app.actor) as uow:
        cid = resolve_customer(uow, customer_key).id if customer_key else None
        a = services.add_activity(uow, data, lead_id=lead_id, opportunity_id=opp_id, customer_id=cid)
        aid = a.id
    if as_json:
        emit_json({"id": aid})
    else:
        click.echo(f"added activity {aid}: {kind} {subject}")


@activity.command("done")
@click.argument("activity_id", type=ID)
@click.option("--outcome")
@pass_app
def activity_done(app: AppContext, activity_id: int, outcome: str | None) -> None:
    """Complete an activity; it is logged as an interaction on the customer's timeline."""
    with app.crm().unit_of_work(app.actor) as uow:
        a = services.complete_activity(uow, activity_id, outcome)
        iid = a.interaction_id
    click.echo(f"activity {activity_id} done" + (f", logged as interaction {iid}" if iid else " (lead not yet a customer: no interaction)"))


@activity.command("due")
@click.option("--owner")
@click.option("--until", metavar="YYYY-MM-DD", help="due up to this day (default: today)")
@_json
@pass_app
def activity_due(app: AppContext, owner: str | None, until: str | None, as_json: bool) -> None:
    """Open activities due by a day (overdue ones first)."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = services.due_activities(uow, owner=owner, until=_date("until", until))
    if as_json:
        emit_json(rows)
    else:
        _activity_table("activities due", rows)



@click.group(cls=CRMGroup)
def quota() -> None:
    """Sales quotas per rep and month."""


@quota.command("set")
@click.argument("owner")
@click.argument("period", metavar="YYYY-MM")
@click.argument("amount")
@click.option("--currency", help="ISO 4217 (default: the setting default_currency)")
@pass_app
def quota_set(app: AppContext, owner: str, period: str, amount: str, currency: str | None) -> None:
    """Set a rep's quota for a month."""
    with app.crm().unit_of_work(app.actor) as uow:
        data = validate(QuotaSet, owner=owner, period=period, amount=amount,
                        currency=currency or services.settings_for(uow).default_currency)
        services.set_quota(uow, data)
    click.echo(f"quota of {owner} for {data.period:%Y-%m}: {data.amount:,.2f} {data.currency}")


@quota.command("list")
@_json
@pass_app
def quota_list(app: AppContext, as_json: bool) -> None:
    """Quotas per rep and month (an "own" user sees their own)."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = services.list_quotas(uow)
    if as_json:
        emit_json(rows)
    else:
        table("quotas", ["owner", "month", "currency", "amount"], [[r["owner"], r["period"], r["currency"], _money(r["amount"])] for r in rows])


@click.command("handover")
@click.argument("from_user", metavar="FROM")
@click.argument("to_user", metavar="TO")
@_json
@pass_app
def handover_cmd(app: AppContext, from_user: str, to_user: str, as_json: bool) -> None:
    """Reassign FROM's open leads, open opportunities and open activities to TO."""
    with app.crm().unit_of_work(app.actor) as uow:
        counts = services.handover(uow, from_user, to_user)
    if as_json:
        emit_json({"from": from_user, "to": to_user, **counts})
    else:
        click.echo(f"handed over from {from_user} to {to_user}: {counts['leads']} leads, "
                   f"{counts['opportunities']} opportunities, {counts['activities']} activities")



@click.command("demo")
@click.option("--deals", default=200, show_default=True, type=click.IntRange(0, 100000))
@click.option("--leads", default=60, show_default=True, type=click.IntRange(0, 100000))
@click.option("--seed", default=42, show_default=True, type=click.IntRange(0, 2**32 - 1))
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="the demo's today: deals span the year before it (default: today)")
@pass_app
def demo_cmd(app: AppContext, deals: int, leads: int, seed: int, as_of: str | None) -> None:
    """Create demo leads and a year of deals on the existing customers and reps (for `make demo`)."""
    from crm_sales_automation import demo

    r = demo.generate(app.crm(), deals=deals, leads=leads, seed=seed, actor=app.actor, as_of=_date("as-of", as_of))
    click.echo(f"demo: {r.leads} leads ({r.converted} converted), {r.deals} deals ({r.won} won, {r.lost} lost"
               + (f", {r.refused} wins refused by other plugins" if r.refused else "") + ")")
