"""``crm sales …``: leads, opportunities, pipelines (with a board view), activities, forecasts, reports.

Every read command takes ``--json``. Bad input is one ``error:`` line with exit code 1
(usage mistakes that click catches, such as an unknown --by value, exit 2).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import click
from rich.table import Table

from crm_sales_automation import analytics, services
from crm_sales_automation.enums import ActivityKind, Factor, LeadSource, LeadStatus, ObjectionKind
from crm_sales_automation.schemas import (
    ActivityCreate,
    FactorScore,
    LeadCreate,
    ObjectionCreate,
    OpportunityCreate,
    OpportunityUpdate,
    PipelineCreate,
    QuotaSet,
    StageSpec,
)
from crmcore.errors import InvalidInput
from crmcore.sdk import ID, TEXT, AppContext, CRMGroup, console, emit_json, fields, pass_app, resolve_customer, table, validate


def _choice(enum: type) -> click.Choice:
    return click.Choice([m.value for m in enum])


def _json(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")(f)


def _date(name: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"invalid input: {name}: {value!r} is not a date (use YYYY-MM-DD)", [(name, "not a date")]) from None


def _money(v: Any) -> str:
    return "" if v is None else f"{v:,.2f}"


def _per_currency(d: dict[str, Any]) -> str:
    return ", ".join(f"{_money(v)} {c}" for c, v in sorted(d.items())) or "–"


@click.group(cls=CRMGroup)
def sales() -> None:
    """Sales: leads, opportunities, pipelines, activities, forecasts and reports."""


# =============================================================================================
# leads
# =============================================================================================

@sales.group(cls=CRMGroup)
def lead() -> None:
    """Leads: add, assess (five factors), qualify, convert into customers."""


@lead.command("add")
@click.argument("name")
@click.option("--company")
@click.option("--email")
@click.option("--phone")
@click.option("--country", help="ISO 3166 alpha-2 code (for national phone numbers)")
@click.option("--source", type=_choice(LeadSource), default="other", show_default=True)
@click.option("--owner", help="username of the responsible rep (default: you)")
@click.option("--notes")
@click.option("--ref", "external_ref", help="external reference (unique)")
@_json
@pass_app
def lead_add(app: AppContext, name: str, as_json: bool, **opts: Any) -> None:
    """Add a lead."""
    data = validate(LeadCreate, name=name, **opts)
    with app.crm().unit_of_work(app.actor) as uow:
        x = services.add_lead(uow, data)
        out = {"id": x.id, "ref": x.external_ref, "name": x.name}
    if as_json:
        emit_json(out)
    else:
        click.echo(f"added lead {out['id']}: {out['name']}")


@lead.command("list")
@click.option("--status", type=_choice(LeadStatus))
@click.option("--owner")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000))
@_json
@pass_app
def lead_list(app: AppContext, status: str | None, owner: str | None, limit: int, as_json: bool) -> None:
    """List leads with their five-factor score (and learned score, when fitted)."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = services.list_leads(uow, status=status, owner=owner, limit=limit)
    if as_json:
        emit_json(rows)
        return
    table("leads", ["id", "name", "company", "source", "status", "owner", "score", "learned"],
          [[r["id"], r["name"], r["company"], r["source"], r["status"], r["owner"], r["score"], r["learned_score"]] for r in rows])


@lead.command("show")
@click.argument("lead_id", type=ID)
@_json
@pass_app
def lead_show(app: AppContext, lead_id: int, as_json: bool) -> None:
    """A lead, its score explained factor by factor, its learned score and conversion history."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        d = services.lead_detail(uow, lead_id)
    if as_json:
        emit_json(d)
        return
    fields(f"Lead {d['id']}: {d['name']}", {k: d[k] for k in ("company", "email", "phone", "source", "status", "owner",
                                                               "customer_id", "notes", "ref")})
    table(f"Five-factor assessment: score {d['score']} / 100", ["factor", "points (0-5)", "weight", "contribution", "of max", "note"],
          [[a["label"], "not assessed" if a["points"] is None else a["points"], f"{a['weight']:g}", a["contribution"],
            a["max"], a["note"]] for a in d["assessment"]])
    if d["learned"]:
        ln = d["learned"]
        table(f"Learned score: {ln['score']} / 100 (naive Bayes on {ln['n_samples']} closed leads; prior log-odds "
              f"{ln['prior_log_odds']:+.3f})", ["field", "value", "log-odds"],
              [[c["field"], c["value"], f"{c['log_odds']:+.3f}"] for c in ln["contributions"]])
    if d["conversions"]:
        table("Conversions", ["customer", "contact", "opportunity", "matched by", "by", "at"],
              [[c["customer_id"], c["contact_id"], c["opportunity_id"], c["matched_by"], c["by"],
                c["at"].strftime("%Y-%m-%d %H:%M")] for c in d["conversions"]])


@lead.command("update")
@click.argument("lead_id", type=ID)
@click.option("--status", type=click.Choice([s.value for s in LeadStatus if s is not LeadStatus.CONVERTED]))
@click.option("--owner")
@click.option("--notes")
@pass_app
def lead_update(app: AppContext, lead_id: int, status: str | None, owner: str | None, notes: str | None) -> None:
    """Qualify or disqualify a lead, change its owner or notes."""
    if status is None and owner is None and notes is None:
        raise InvalidInput("nothing to update: give --status, --owner or --notes")
    with app.crm().unit_of_work(app.actor) as uow:
        if status is not None:
            services.set_lead_status(uow, lead_id, status)
        if owner is not None or notes is not None:
            services.update_lead(uow, lead_id, owner=owner, notes=notes)
    click.echo(f"updated lead {lead_id}")


def _factor_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for factor in reversed(list(Factor)):
        f = click.option(f"--{factor.value}", type=click.IntRange(0, 5), help=f"{factor.value}: 0..5")(f)
    return f


@lead.command("assess")
@click.argument("lead_id", type=ID)
@_factor_options
@click.option("--note", "notes", multiple=True, metavar="FACTOR=TEXT", help="a note on a factor, e.g. need='new kitchen'")
@pass_app
def lead_assess(app: AppContext, lead_id: int, notes: tuple[str, ...], **points: int | None) -> None:
    """Score the five factors 0..5: --need --volume --power --credibility --authority."""
    note_of: dict[str, str] = {}
    for n in notes:
        k, sep, v = n.partition("=")
        if not sep or k.strip() not in {f.value for f in Factor}:
            raise InvalidInput(f"invalid input: note: {n!r} (use FACTOR=TEXT with a factor of {', '.join(f.value for f in Factor)})")
        note_of[k.strip()] = v
    missing = sorted(set(note_of) - {k for k, v in points.items() if v is not None})
    if missing:
        raise InvalidInput(f"invalid input: note: give the points of {', '.join(missing)} with its note")
    scores = [validate(FactorScore, factor=k, points=v, note=note_of.get(k)) for k, v in points.items() if v is not None]
    with app.crm().unit_of_work(app.actor) as uow:
        services.assess(uow, lead_id, scores)
        d = services.lead_detail(uow, lead_id)
    click.echo(f"lead {lead_id}: score {d['score']} / 100")


@lead.command("convert")
@click.argument("lead_id", type=ID)
@click.option("--customer", "customer_key", metavar="CUSTOMER", help="use this existing customer (id or reference)")
@click.option("--new", is_flag=True, help="create a new customer even if existing ones match")
@click.option("--opportunity", "title", metavar="TITLE", help="also open an opportunity with this title")
@click.option("--amount", help="amount of the opportunity")
@click.option("--currency")
@click.option("--pipeline")
@click.option("--stage")
@click.option("--close", "expected_close", metavar="YYYY-MM-DD", help="expected close date")
@_json
@pass_app
def lead_convert(app: AppContext, lead_id: int, customer_key: str | None, new: bool, title: str | None, amount: str | None,
                 currency: str | None, pipeline: str | None, stage: str | None, expected_close: str | None, as_json: bool) -> None:
    """Convert a qualified lead into a customer (matched by email, phone or name; --new forces a new one)."""
    opp = None
    if title is not None:
        opp = validate(OpportunityCreate, title=title, amount=amount if amount is not None else "0", currency=currency,
                       pipeline=pipeline, stage=stage, expected_close=_date("close", expected_close))
    elif any(v is not None for v in (amount, currency, pipeline, stage, expected_close)):
        raise InvalidInput("invalid input: --amount/--currency/--pipeline/--stage/--close need --opportunity TITLE")
    with app.crm().unit_of_work(app.actor) as uow:
        cid = resolve_customer(uow, customer_key).id if customer_key else None
        r = services.convert(uow, lead_id, customer_id=cid, new=new, opportunity=opp)
        out = {"lead_id": r.lead_id, "customer_id": r.customer_id, "customer_created": r.customer_created,
               "matched_by": r.matched_by, "contact_id": r.contact_id, "opportunity_id": r.opportunity_id}
    if as_json:
        emit_json(out)
        return
    how = "new customer" if r.customer_created else f"existing customer (matched by {r.matched_by})"
    extra = f", opportunity {r.opportunity_id}" if r.opportunity_id else ""
    click.echo(f"converted lead {lead_id} into {how} {r.customer_id}{extra}")


@lead.command("learn")
@_json
@pass_app
def lead_learn(app: AppContext, as_json: bool) -> None:
    """Fit the learned lead score (naive Bayes on converted vs disqualified leads) and score open leads."""
    with app.crm().unit_of_work(app.actor) as uow:
        out = services.learn_lead_scores(uow)
    if as_json:
        emit_json(out)
    else:
        click.echo(f"learned from {out['samples']} closed leads ({out['converted']} converted, {out['disqualified']} "
                   f"disqualified); scored {out['scored']} open leads")


# =============================================================================================
# opportunities
# =============================================================================================

@sales.group(cls=CRMGroup)
def opp() -> None:
    """Opportunities: add, move through stages, win, lose, invoice, objections."""


@opp.command("add")
@click.argument("customer_key", metavar="CUSTOMER")
@click.argument("title")
@click.option("--amount", required=True)
@click.option("--currency", help="ISO 4217 (default: the setting default_currency)")
@click.option("--pipeline")
@click.option("--stage", help="first stage (default: the pipeline's first)")
@click.option("--probability", type=click.IntRange(0, 100), help="win probability in percent (default: the stage's)")
@click.option("--close", "expected_close", metavar="YYYY-MM-DD")
@click.option("--owner")
@click.option("--next-step")
@_json
@pass_app
def opp_add(app: AppContext, customer_key: str, title: str, expected_close: str | None, as_json: bool, **opts: Any) -> None:
    """Open an opportunity for a customer."""
    data = validate(OpportunityCreate, title=title, expected_close=_date("close", expected_close), **opts)
    with app.crm().unit_of_work(app.actor) as uow:
        o = services.add_opportunity(uow, resolve_customer(uow, customer_key).id, data)
        out = {"id": o.id, "title": o.title}
    if as_json:
        emit_json(out)
    else:
        click.echo(f"added opportunity {out['id']}: {out['title']}")


@opp.command("list")
@click.option("--status", type=click.Choice(["open", "won", "lost", "all"]), default="open", show_default=True)
@click.option("--owner")
@click.option("--pipeline")
@click.option("--stage")
@click.option("--customer", "customer_key", metavar="CUSTOMER")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000))
@_json
@pass_app
def opp_list(app: AppContext, status: str, owner: str | None, pipeline: str | None, stage: str | None,
             customer_key: str | None, limit: int, as_json: bool) -> None:
    """List opportunities (open ones by default)."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        cid = resolve_customer(uow, customer_key).id if customer_key else None
        rows = services.list_opportunities(uow, status=None if status == "all" else status, owner=owner, pipeline=pipeline,
                                           stage=stage, customer_id=cid, limit=limit)
    if as_json:
        emit_json(rows)
        return
    table("opportunities", ["id", "title", "customer", "stage", "amount", "cur", "prob.", "weighted", "close", "owner", "status"],
          [[r["id"], r["title"], r["customer"], r["stage"], _money(r["amount"]), r["currency"], f"{r['probability']}%",
            _money(r["weighted"]), r["expected_close"], r["owner"], r["status"]] for r in rows])


@opp.command("show")
@click.argument("opp_id", type=ID)
@_json
@pass_app
def opp_show(app: AppContext, opp_id: int, as_json: bool) -> None:
    """An opportunity with its stage history, objections and activities."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        d = services.opportunity_detail(uow, opp_id)
    if as_json:
        emit_json(d)
        return
    fields(f"Opportunity {d['id']}: {d['title']}", {k: d[k] for k in (
        "customer", "amount", "currency", "pipeline", "stage", "probability", "weighted", "expected_close", "owner",
        "next_step", "status", "lost_reason", "invoiced")})
    table("Stage history", ["when", "who", "from", "to"],
          [[h["at"].strftime("%Y-%m-%d %H:%M"), h["by"], h["from"] or "(created)", h["to"]] for h in d["history"]])
    if d["objections"]:
        table("Objections", ["id", "kind", "objection", "handling", "resolved"],
              [[o["id"], o["kind"], o["description"], o["handling"], "yes" if o["resolved"] else "no"] for o in d["objections"]])
    if d["activities"]:
        _activity_table("Activities", d["activities"])


@opp.command("update")
@click.argument("opp_id", type=ID)
@click.option("--title")
@click.option("--amount")
@click.option("--probability", type=click.IntRange(0, 100))
@click.option("--close", "expected_close", metavar="YYYY-MM-DD")
@click.option("--next-step")
@click.option("--owner")
@pass_app
def opp_update(app: AppContext, opp_id: int, expected_close: str | None, **opts: Any) -> None:
    """Change an open opportunity's title, amount, probability, close date, next step or owner."""
    given = {k: v for k, v in opts.items() if v is not None}
    if expected_close is not None:
        given["expected_close"] = _date("close", expected_close)
    data = validate(OpportunityUpdate, **given)
    with app.crm().unit_of_work(app.actor) as uow:
        o = services.update_opportunity(uow, opp_id, data)
        click.echo(f"updated opportunity {o.id}")


@opp.command("move")
@click.argument("opp_id", type=ID)
@click.argument("stage")
@pass_app
def opp_move(app: AppContext, opp_id: int, stage: str) -> None:
    """Move an open opportunity to another stage of its pipeline."""
    with app.crm().unit_of_work(app.actor) as uow:
        services.move(uow, opp_id, stage)
    click.echo(f"opportunity {opp_id} moved to {stage}")


@opp.command("win")
@click.argument("opp_id", type=ID)
@pass_app
def opp_win(app: AppContext, opp_id: int) -> None:
    """Win an opportunity (other plugins may refuse it, e.g. credit)."""
    with app.crm().unit_of_work(app.actor) as uow:
        o = services.win(uow, opp_id)
        msg = f"opportunity {opp_id} won: {o.amount:,.2f} {o.currency}" + (f", invoiced as {o.invoice_ref}" if o.invoice_ref else "")
    click.echo(msg)


@opp.command("lose")
@click.argument("opp_id", type=ID)
@click.option("--reason", required=True, type=TEXT, help="why the deal was lost")
@pass_app
def opp_lose(app: AppContext, opp_id: int, reason: str) -> None:
    """Lose an opportunity (a reason is required)."""
    with app.crm().unit_of_work(app.actor) as uow:
        services.lose(uow, opp_id, reason)
    click.echo(f"opportunity {opp_id} lost: {reason.strip()}")


@opp.command("invoice")
@click.argument("opp_id", type=ID)
@pass_app
def opp_invoice(app: AppContext, opp_id: int) -> None:
    """Post a won opportunity's invoice to the customer's account (through the core; idempotent)."""
    with app.crm().unit_of_work(app.actor) as uow:
        entry, created = services.invoice(uow, opp_id)
        ref, amount, cur = entry.reference, entry.amount, entry.currency
    click.echo(f"{'posted' if created else 'already posted'} invoice {ref}: {amount:,.2f} {cur}")


@opp.command("objection")
@click.argument("opp_id", type=ID)
@click.option("--kind", type=_choice(ObjectionKind), required=True)
@click.option("--description", required=True)
@click.option("--handling", help="how it was handled")
@click.option("--resolved", is_flag=True)
@pass_app
def opp_objection(app: AppContext, opp_id: int, **opts: Any) -> None:
    """Record an objection raised during the deal."""
    data = validate(ObjectionCreate, **opts)
    with app.crm().unit_of_work(app.actor) as uow:
        o = services.add_objection(uow, opp_id, data)
        click.echo(f"recorded objection {o.id} ({o.kind.value}) on opportunity {opp_id}")


@opp.command("resolve")
@click.argument("objection_id", type=ID)
@click.option("--handling", help="how it was handled")
@click.option("--unresolved", is_flag=True, help="mark it open again")
@pass_app
def opp_resolve(app: AppContext, objection_id: int, handling: str | None, unresolved: bool) -> None:
    """Mark an objection resolved (with how it was handled)."""
    with app.crm().unit_of_work(app.actor) as uow:
        services.resolve_objection(uow, objection_id, handling, resolved=not unresolved)
    click.echo(f"objection {objection_id} {'reopened' if unresolved else 'resolved'}")


# =============================================================================================
# pipelines
# =============================================================================================

@sales.group(cls=CRMGroup)
def pipeline() -> None:
    """Pipelines and their stages; `show` draws the board."""


@pipeline.command("list")
@_json
@pass_app
def pipeline_list(app: AppContext, as_json: bool) -> None:
    """Pipelines with their ordered stages and default probabilities."""
    with app.crm().unit_of_work(app.actor) as uow:  # creates the default pipeline on first use
        rows = services.list_pipelines(uow)
    if as_json:
        emit_json(rows)
        return
    table("pipelines", ["pipeline", "default", "stages (default probability)"],
          [[p["name"], "yes" if p["default"] else "", " → ".join(f"{s['label']} {s['probability']}%" for s in p["stages"])]
           for p in rows])


@pipeline.command("show")
@click.argument("name", required=False)
@click.option("--per-stage", default=8, show_default=True, type=click.IntRange(1, 1000), help="deals shown per column")
@_json
@pass_app
def pipeline_show(app: AppContext, name: str | None, per_stage: int, as_json: bool) -> None:
    """The board: one column per stage with its open deals (largest first) and totals."""
    with app.crm().unit_of_work(app.actor) as uow:
        b = services.board(uow, name, per_stage)
    if as_json:
        emit_json(b)
        return
    t = Table(title=f"pipeline {b['pipeline']}", show_lines=True, expand=False)
    for col in b["columns"]:
        t.add_column(f"{col['label']} ({col['probability']}%)\n{col['count']} deals\n{_per_currency(col['weighted'])} weighted",
                     overflow="fold", min_width=14)
    depth = max((len(c["deals"]) for c in b["columns"]), default=0)
    for i in range(depth):
        cells = []
        for col in b["columns"]:
            if i < len(col["deals"]):
                d = col["deals"][i]
                cells.append(f"#{d['id']} {d['title']}\n{d['customer']}\n{_money(d['amount'])} {d['currency']}"
                             + (f"\n@{d['owner']}" if d["owner"] else ""))
            else:
                cells.append("")
        t.add_row(*cells)
    console().print(t)
    hidden = sum(c["count"] - len(c["deals"]) for c in b["columns"])
    if hidden:
        click.echo(f"(+{hidden} more deals; --per-stage N shows more)")
    if depth == 0:
        click.echo("(no open deals)")


@pipeline.command("add")
@click.argument("name")
@click.option("--stage", "stages", multiple=True, required=True, metavar="NAME=PROBABILITY",
              help="an open stage in order, e.g. --stage intake=10 --stage offer=60 (won and lost are added)")
@pass_app
def pipeline_add(app: AppContext, name: str, stages: tuple[str, ...]) -> None:
    """Create a pipeline with ordered stages and their default win probabilities."""
    specs = []
    for s in stages:
        n, sep, p = s.partition("=")
        if not sep:
            raise InvalidInput(f"invalid input: stage: {s!r} (use NAME=PROBABILITY, e.g. offer=60)")
        specs.append(validate(StageSpec, name=n.strip(), probability=p.strip()))
    data = validate(PipelineCreate, name=name, stages=specs)
    with app.crm().unit_of_work(app.actor) as uow:
        services.create_pipeline(uow, data)
    click.echo(f"added pipeline {name} with {len(specs)} stages (+ won, lost)")


# =============================================================================================
# activities
# =============================================================================================

def _activity_table(title: str, rows: list[dict[str, Any]]) -> None:
    table(title, ["id", "kind", "subject", "due", "done", "on", "owner"],
          [[a["id"], a["kind"], a["subject"], "" if a["due_at"] is None else a["due_at"].strftime("%Y-%m-%d %H:%M")
            + (" OVERDUE" if a["overdue"] else ""), "" if a["done_at"] is None else a["done_at"].strftime("%Y-%m-%d"),
            f"lead {a['lead_id']}" if a["lead_id"] else f"opp {a['opportunity_id']}" if a["opportunity_id"]
            else f"customer {a['customer_id']}", a["owner"]] for a in rows])


@sales.group(cls=CRMGroup)
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
@_json
@pass_app
def activity_add(app: AppContext, kind: str, subject: str, lead_id: int | None, opp_id: int | None,
                 customer_key: str | None, due: str | None, owner: str | None, notes: str | None, as_json: bool) -> None:
    """Plan an activity (call, visit, email, meeting, demo, other) on one lead, opportunity or customer."""
    data = validate(ActivityCreate, kind=kind, subject=subject, due_at=due, owner=owner, notes=notes)
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


# =============================================================================================
# forecast, reports, quotas, handover
# =============================================================================================

def _rate_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--to", "to", metavar="CUR", help="convert every amount into this currency (needs --rate)")(f)
    return click.option("--rate", "rates", multiple=True, metavar="CUR=RATE",
                        help="1 CUR = RATE units of --to, e.g. --rate USD=0.92 --to EUR")(f)


@sales.command("forecast")
@click.option("--by", type=click.Choice(list(analytics.FORECAST_BY)), default="month", show_default=True)
@click.option("--learned", is_flag=True, help="weight by win rates learned from history (stage and age) instead of stage defaults")
@_rate_options
@_json
@pass_app
def forecast_cmd(app: AppContext, by: str, learned: bool, rates: tuple[str, ...], to: str | None, as_json: bool) -> None:
    """Open deals by month of expected close (by owner with quota attainment, or by pipeline)."""
    conversion = analytics.parse_rates(rates, to)
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        out = analytics.forecast(uow, by, learned=learned, conversion=conversion)
    if as_json:
        emit_json(out)
        return
    cols = {"month": [], "owner": ["owner"], "pipeline": ["pipeline"]}[by] + ["month", "currency", "deals", "amount", "weighted"]
    if by == "owner":
        cols += ["quota", "won", "attainment", "forecast attainment"]
    rows = []
    for r in out["rows"]:
        row = [r.get(c) for c in cols[:-4]] if by == "owner" else [r.get(c) for c in cols]
        if by == "owner":
            row += [_money(r["quota"]), _money(r["won"]), "" if r["attainment"] is None else f"{r['attainment']}%",
                    "" if r["forecast_attainment"] is None else f"{r['forecast_attainment']}%"]
        rows.append([_money(v) if c in ("amount", "weighted") else v for c, v in zip(cols, row)])
    table(f"forecast by {by} ({out['probabilities']})", cols, rows)
    for cur, t in sorted(out["totals"].items()):
        click.echo(f"total {cur}: {_money(t['amount'])} open, {_money(t['weighted'])} weighted")
    if learned and out.get("brier"):
        b = out["brier"]
        click.echo(f"Brier score on {b['observations']} closed stage visits: stage defaults {b['stage_defaults']}, "
                   f"learned {b['learned']} (lower is better: trust {out['trust'].replace('_', ' ')})")
    elif learned:
        click.echo("no closed deals yet: the learned probabilities equal the stage defaults")


@sales.group(cls=CRMGroup)
def report() -> None:
    """Reports: funnel, performance, stale, pipeline (weighted), probabilities (learned)."""


@report.command("funnel")
@click.option("--pipeline")
@_json
@pass_app
def report_funnel(app: AppContext, pipeline: str | None, as_json: bool) -> None:
    """Conversion from each stage to the next, win rate and average cycle time per pipeline."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = analytics.funnel(uow, pipeline)
    if as_json:
        emit_json(rows)
        return
    for p in rows:
        table(f"funnel: {p['pipeline']}", ["stage", "reached", "to next"],
              [[s["stage"], s["reached"], "" if s["to_next"] is None else f"{s['to_next']}%"] for s in p["stages"]])
        click.echo(f"won {p['won']}, lost {p['lost']}, win rate "
                   f"{'–' if p['win_rate'] is None else str(p['win_rate']) + '%'}, average cycle "
                   f"{'–' if p['avg_cycle_days'] is None else str(p['avg_cycle_days']) + ' days'}")


@report.command("performance")
@_json
@pass_app
def report_performance(app: AppContext, as_json: bool) -> None:
    """Per rep: won, lost, win rate, cycle time, activities done, open and weighted pipeline."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = analytics.performance(uow)
    if as_json:
        emit_json(rows)
        return
    table("rep performance", ["owner", "won", "lost", "win rate", "avg cycle (d)", "activities", "open deals", "pipeline",
                              "weighted"],
          [[r["owner"] or "(none)", r["won"], r["lost"], "" if r["win_rate"] is None else f"{r['win_rate']}%",
            r["avg_cycle_days"], r["activities_done"], r["open_deals"], _per_currency(r["pipeline"]),
            _per_currency(r["weighted"])] for r in rows])


@report.command("stale")
@click.option("--days", type=click.IntRange(1, 3650), help="idle days (default: the setting stale_days, 30)")
@_json
@pass_app
def report_stale(app: AppContext, days: int | None, as_json: bool) -> None:
    """Open deals with no activity for N days, deals past their close date, overdue activities."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        out = analytics.stale(uow, days)
    if as_json:
        emit_json(out)
        return
    cols = ["id", "title", "customer", "owner", "stage", "amount", "cur", "close", "idle days"]

    def rows(items: list[dict[str, Any]]) -> list[list[Any]]:
        return [[d["id"], d["title"], d["customer"], d["owner"], d["stage"], _money(d["amount"]), d["currency"],
                 d["expected_close"], d["idle_days"]] for d in items]
    table(f"stale deals (no activity for {out['stale_days']} days)", cols, rows(out["stale"]))
    table("deals past their expected close", cols, rows(out["overdue_deals"]))
    table("overdue activities", ["id", "kind", "subject", "due", "owner"],
          [[a["id"], a["kind"], a["subject"], a["due_at"].strftime("%Y-%m-%d %H:%M"), a["owner"]] for a in out["overdue_activities"]])


@report.command("pipeline")
@click.option("--by", type=click.Choice(list(analytics.GROUPS)), default="stage", show_default=True)
@_rate_options
@_json
@pass_app
def report_pipeline(app: AppContext, by: str, rates: tuple[str, ...], to: str | None, as_json: bool) -> None:
    """Weighted pipeline (amount x probability) by stage, owner or pipeline, per currency."""
    conversion = analytics.parse_rates(rates, to)
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = analytics.weighted_pipeline(uow, by, conversion)
    if as_json:
        emit_json(rows)
        return
    keys = {"stage": ["pipeline", "stage"], "owner": ["owner"], "pipeline": ["pipeline"]}[by]
    table(f"weighted pipeline by {by}", [*keys, "currency", "deals", "amount", "weighted"],
          [[*(r[k] for k in keys), r["currency"], r["deals"], _money(r["amount"]), _money(r["weighted"])] for r in rows])


@report.command("probabilities")
@_json
@pass_app
def report_probabilities(app: AppContext, as_json: bool) -> None:
    """Win rates learned by stage and deal age, and the Brier score of stage defaults vs learned."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        out = analytics.learned_probabilities(uow)
    if as_json:
        emit_json(out)
        return
    table("learned win probabilities (closed deals)", ["pipeline", "stage", "age at entry", "deals", "won", "default", "learned"],
          [[c["pipeline"], c["stage"], c["age"], c["deals"], c["won"], f"{c['default']}%", f"{c['learned']}%"] for c in out["cells"]])
    if out["brier"]:
        b = out["brier"]
        click.echo(f"Brier score: stage defaults {b['stage_defaults']}, learned (leave-one-out) {b['learned']} "
                   f"on {b['observations']} observations; trust {out['trust'].replace('_', ' ')}")


@sales.group(cls=CRMGroup)
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
    """Quotas per rep and month."""
    from sqlalchemy import select

    from crm_sales_automation.models import Quota
    from crmcore.models import User

    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = [{"owner": u, "period": p.strftime("%Y-%m"), "currency": c, "amount": a} for u, p, c, a in uow.session.execute(
            select(User.username, Quota.period, Quota.currency, Quota.amount).join(User, User.id == Quota.owner_id)
            .order_by(Quota.period, User.username))]
    if as_json:
        emit_json(rows)
    else:
        table("quotas", ["owner", "month", "currency", "amount"], [[r["owner"], r["period"], r["currency"], _money(r["amount"])] for r in rows])


@sales.command("handover")
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



@sales.command("demo")
@click.option("--deals", default=200, show_default=True, type=click.IntRange(0, 100000))
@click.option("--leads", default=60, show_default=True, type=click.IntRange(0, 100000))
@click.option("--seed", default=42, show_default=True, type=click.IntRange(0, 2**32 - 1))
@pass_app
def demo_cmd(app: AppContext, deals: int, leads: int, seed: int) -> None:
    """Create demo leads and a year of deals on the existing customers and reps (for `make demo`)."""
    from crm_sales_automation import demo

    r = demo.generate(app.crm(), deals=deals, leads=leads, seed=seed, actor=app.actor)
    click.echo(f"demo: {r.leads} leads ({r.converted} converted), {r.deals} deals ({r.won} won, {r.lost} lost"
               + (f", {r.refused} wins refused by other plugins" if r.refused else "") + ")")
