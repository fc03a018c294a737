"""``crm sales opp …`` and ``crm sales pipeline …``: deals through their stages, the board."""
from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from crm_sales_automation import services
from crm_sales_automation.cli._common import _activity_table, _choice, _date, _json, _money, _per_currency
from crm_sales_automation.enums import ObjectionKind
from crm_sales_automation.schemas import (
    ObjectionCreate,
    OpportunityCreate,
    OpportunityUpdate,
    PipelineCreate,
)
from crmcore.errors import InvalidInput
from crmcore.sdk import ID, TEXT, AppContext, CRMGroup, console, emit_json, fields, pass_app, resolve_customer, table, validate

_METHOD_HELP = "how it was handled: a word of crm.toml [vocabularies] objection_methods, e.g. compare_value"


@click.group(cls=CRMGroup)
def opp() -> None:
    """Opportunities: add, move through stages, win, lose, reopen, invoice, objections."""


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
        "next_step", "status", "lost_reason", "lost_reason_code", "won_reason", "invoiced")})
    table("Stage history", ["when", "who", "from", "to"],
          [[h["at"].strftime("%Y-%m-%d %H:%M"), h["by"], h["from"] or "(created)", h["to"]] for h in d["history"]])
    if d["objections"]:
        table("Objections", ["id", "kind", "objection", "method", "handling", "resolved"],
              [[o["id"], o["kind"], o["description"], o["method"], o["handling"], "yes" if o["resolved"] else "no"]
               for o in d["objections"]])
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
@click.option("--reason", metavar="WORD", help="why it was won: a word of crm.toml [vocabularies] won_reasons")
@pass_app
def opp_win(app: AppContext, opp_id: int, reason: str | None) -> None:
    """Win an opportunity (other plugins may refuse it, e.g. credit)."""
    with app.crm().unit_of_work(app.actor) as uow:
        o = services.win(uow, opp_id, reason=reason)
        msg = f"opportunity {opp_id} won: {o.amount:,.2f} {o.currency}" + (f", invoiced as {o.invoice_ref}" if o.invoice_ref else "")
    click.echo(msg)


@opp.command("lose")
@click.argument("opp_id", type=ID)
@click.option("--reason", required=True, type=TEXT, help="why the deal was lost")
@click.option("--code", metavar="WORD", help="the reason as a word of crm.toml [vocabularies] lost_reasons")
@pass_app
def opp_lose(app: AppContext, opp_id: int, reason: str, code: str | None) -> None:
    """Lose an opportunity (a reason is required)."""
    with app.crm().unit_of_work(app.actor) as uow:
        services.lose(uow, opp_id, reason, code=code)
    click.echo(f"opportunity {opp_id} lost: {reason.strip()}")


@opp.command("reopen")
@click.argument("opp_id", type=ID)
@click.option("--reason", required=True, type=TEXT, help="why the deal is reopened")
@click.option("--stage", help="the open stage it goes back to (default: the one it was lost from)")
@pass_app
def opp_reopen(app: AppContext, opp_id: int, reason: str, stage: str | None) -> None:
    """Reopen a lost opportunity (winning it later is checked again, e.g. by credit)."""
    with app.crm().unit_of_work(app.actor) as uow:
        services.reopen(uow, opp_id, reason, stage=stage)
        now_in = services.opportunity_detail(uow, opp_id)["stage"]
    click.echo(f"opportunity {opp_id} reopened in stage {now_in}")


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
@click.option("--method", metavar="WORD", help=_METHOD_HELP)
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
@click.option("--method", metavar="WORD", help=_METHOD_HELP)
@click.option("--unresolved", is_flag=True, help="mark it open again")
@pass_app
def opp_resolve(app: AppContext, objection_id: int, handling: str | None, method: str | None, unresolved: bool) -> None:
    """Mark an objection resolved (with how it was handled)."""
    with app.crm().unit_of_work(app.actor) as uow:
        services.resolve_objection(uow, objection_id, handling, resolved=not unresolved, method=method)
    click.echo(f"objection {objection_id} {'reopened' if unresolved else 'resolved'}")


# =============================================================================================
# pipelines
# =============================================================================================

@click.group(cls=CRMGroup)
def pipeline() -> None:
    """Pipelines and their stages; `show` draws the board."""


@pipeline.command("list")
@_json
@pass_app
def pipeline_list(app: AppContext, as_json: bool) -> None:
    """Pipelines with their ordered stages and default probabilities."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:  # the default pipeline is stored at first write
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
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
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
        specs.append({"name": n.strip(), "probability": p.strip()})
    data = validate(PipelineCreate, name=name, stages=specs)  # a bad name: "stages.N.name: 'X' is not a valid name (...)"
    with app.crm().unit_of_work(app.actor) as uow:
        services.create_pipeline(uow, data)
    click.echo(f"added pipeline {name} with {len(specs)} stages (+ won, lost)")
