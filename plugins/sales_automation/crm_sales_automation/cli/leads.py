"""``crm sales lead …``: add, list, show, update, assess (five factors), convert, learn."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from crm_sales_automation import services
from crm_sales_automation.cli._common import _choice, _date, _json
from crm_sales_automation.enums import Factor, LeadStatus
from crm_sales_automation.schemas import (
    FactorScore,
    LeadCreate,
    OpportunityCreate,
)
from crmcore.errors import InvalidInput
from crmcore.sdk import ID, AppContext, CRMGroup, emit_json, fields, pass_app, resolve_customer, table, validate


@click.group(cls=CRMGroup)
def lead() -> None:
    """Leads: add, assess (five factors), qualify, convert into customers."""


@lead.command("add")
@click.argument("name")
@click.option("--company")
@click.option("--email")
@click.option("--phone")
@click.option("--country", help="ISO 3166 alpha-2 code (for national phone numbers)")
@click.option("--source", default="other", show_default=True, metavar="WORD",
              help="where it came from: a word of crm.toml [vocabularies] lead_sources")
@click.option("--campaign", metavar="REF", help="reference of the campaign it responded to")
@click.option("--referred-by", "referred_by", metavar="CUSTOMER", help="the customer who referred it (id or reference)")
@click.option("--owner", help="username of the responsible rep (default: you)")
@click.option("--notes")
@click.option("--ref", "external_ref", help="external reference (unique)")
@_json
@pass_app
def lead_add(app: AppContext, name: str, referred_by: str | None, as_json: bool, **opts: Any) -> None:
    """Add a lead."""
    with app.crm().unit_of_work(app.actor) as uow:
        referrer = resolve_customer(uow, referred_by).id if referred_by else None
        data = validate(LeadCreate, name=name, referred_by=referrer, **opts)
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
    fields(f"Lead {d['id']}: {d['name']}", {k: d[k] for k in ("company", "email", "phone", "source", "campaign", "referred_by",
                                                               "status", "owner", "customer_id", "notes", "ref")})
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
@click.option("--referred-by", "referred_by", metavar="CUSTOMER", help="the customer who referred it (id or reference)")
@pass_app
def lead_update(app: AppContext, lead_id: int, status: str | None, owner: str | None, notes: str | None,
                referred_by: str | None) -> None:
    """Qualify or disqualify a lead, change its owner, notes or referring customer."""
    if status is None and owner is None and notes is None and referred_by is None:
        raise InvalidInput("nothing to update: give --status, --owner, --notes or --referred-by")
    with app.crm().unit_of_work(app.actor) as uow:
        if status is not None:
            services.set_lead_status(uow, lead_id, status)
        if owner is not None or notes is not None or referred_by is not None:
            referrer = resolve_customer(uow, referred_by).id if referred_by else None
            services.update_lead(uow, lead_id, owner=owner, notes=notes, referred_by=referrer)
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
@click.option("--role", metavar="WORD", help="the new contact's role: a word of contact_roles (default: initiator)")
@_json
@pass_app
def lead_convert(app: AppContext, lead_id: int, customer_key: str | None, new: bool, title: str | None, amount: str | None,
                 currency: str | None, pipeline: str | None, stage: str | None, expected_close: str | None, role: str | None,
                 as_json: bool) -> None:
    """Convert a qualified lead into a customer (matched by email, phone or name; --new forces a new one)."""
    opp = None
    if title is not None:
        opp = validate(OpportunityCreate, title=title, amount=amount if amount is not None else "0", currency=currency,
                       pipeline=pipeline, stage=stage, expected_close=_date("close", expected_close))
    elif any(v is not None for v in (amount, currency, pipeline, stage, expected_close)):
        raise InvalidInput("invalid input: --amount/--currency/--pipeline/--stage/--close need --opportunity TITLE")
    with app.crm().unit_of_work(app.actor) as uow:
        cid = resolve_customer(uow, customer_key).id if customer_key else None
        r = services.convert(uow, lead_id, customer_id=cid, new=new, opportunity=opp, contact_role=role)
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
