"""``crm marketing …``: segments, consent, campaigns, sending, responses, reports, cross-sell.

Every read command takes ``--json``; bad input is one ``error:`` line and exit code 1 (2 for
usage and configuration), never a traceback.
"""
from __future__ import annotations

import dataclasses
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from crm_marketing import delivery, reporting, responses, segments, services
from crm_marketing.schemas import ATTRIBUTION_MODELS, CHANNELS, CampaignCreate, ConsentSet, CostCreate, ResponseCreate, VariantIn
from crmcore.errors import InvalidInput
from crmcore.sdk import AppContext, CRMGroup, emit_json, fields, pass_app, table, validate


def _json_option(f: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")(f)


def _decimal(name: str, value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        d = Decimal(value.strip())
    except (InvalidOperation, AttributeError):
        raise InvalidInput(f"invalid input: {name}: {value!r} is not a number", [(name, "not a number")]) from None
    if not d.is_finite():
        raise InvalidInput(f"invalid input: {name}: must be a finite number", [(name, "not finite")])
    return d


def _share(name: str, value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise InvalidInput(f"invalid input: {name}: {value!r} is not a number", [(name, "not a number")]) from None
    return f


@click.group(cls=CRMGroup)
def marketing() -> None:
    """Marketing: segments, campaigns, consent, delivery, responses, attribution, ROI and lift."""


# -- segments ------------------------------------------------------------------------------

@marketing.group(cls=CRMGroup)
def segment() -> None:
    """Saved rules over customers (compiled to one SQL query) and static lists."""


@segment.command("create")
@click.argument("name")
@click.option("--rule", help='Rule, e.g. \'country = "DE" and spend(days=365) > 1000\', or the same as JSON.')
@click.option("--rule-file", type=click.Path(dir_okay=False), help="Read the rule from a file.")
@click.option("--static", "static", is_flag=True, help="A static list (add members with `segment add`).")
@click.option("--member", "members", multiple=True, metavar="CUSTOMER", help="Member of a static list (repeatable).")
@click.option("--description")
@pass_app
def segment_create(app: AppContext, name: str, rule: str | None, rule_file: str | None, static: bool,
                   members: tuple[str, ...], description: str | None) -> None:
    """Create a rule segment or a static list."""
    if rule_file is not None:
        if rule is not None:
            raise click.UsageError("give --rule or --rule-file, not both")
        try:
            rule = Path(rule_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidInput(f"cannot read rule file {rule_file}: {getattr(e, 'strerror', None) or e}") from None
    if (rule is None) != (static or bool(members)):
        if rule is None:
            raise click.UsageError("give --rule (a rule segment) or --static/--member (a static list)")
        raise click.UsageError("a segment is a rule or a static list, not both")
    with app.crm().unit_of_work(app.actor) as uow:
        seg = services.create_segment(uow, name, rule=rule, members=members, description=description)
        count, _ = services.preview(uow, services.segment_query(uow, seg), sample=0)
    click.echo(f"segment {seg.name!r} created ({seg.kind}): {count:,} customers match now")


@segment.command("add")
@click.argument("name")
@click.argument("customers", nargs=-1, required=True)
@pass_app
def segment_add(app: AppContext, name: str, customers: tuple[str, ...]) -> None:
    """Add customers to a static list."""
    with app.crm().unit_of_work(app.actor) as uow:
        n = services.add_members(uow, services.get_segment(uow, name), customers)
    click.echo(f"{n} customer(s) added to {name!r}")


@segment.command("preview")
@click.argument("name", required=False)
@click.option("--rule", help="Preview a rule without saving it.")
@click.option("--sample", type=click.IntRange(0, 1000), default=10, show_default=True)
@_json_option
@pass_app
def segment_preview(app: AppContext, name: str | None, rule: str | None, sample: int, as_json: bool) -> None:
    """How many customers a segment (or a rule) matches, and a sample of them."""
    if (name is None) == (rule is None):
        raise click.UsageError("give a segment NAME or --rule, one of them")
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        if name is not None:
            seg = services.get_segment(uow, name)
            query, text = services.segment_query(uow, seg), seg.rule or f"static list {seg.name}"
        else:
            tree = segments.parse(rule or "")
            query, text = services.rule_query(uow, tree), segments.to_text(tree)
        count, rows = services.preview(uow, query, sample)
        sql = str(query.compile(uow.session.get_bind(), compile_kwargs={"literal_binds": False}))
    if as_json:
        emit_json({"rule": text, "count": count, "sample": rows, "sql": sql})
        return
    click.echo(f"{count:,} customers match: {text}")
    table(None, ["id", "ref", "name", "country", "email"],
          [[r["id"], r["external_ref"], r["name"], r["country"], r["email"]] for r in rows])


@segment.command("list")
@_json_option
@pass_app
def segment_list(app: AppContext, as_json: bool) -> None:
    """Every segment with its rule and whether it is frozen."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = [{"name": s.name, "kind": s.kind, "rule": s.rule, "frozen_at": s.frozen_at, "description": s.description}
                for s in services.list_segments(uow)]
    if as_json:
        emit_json(rows)
        return
    table("Segments", ["name", "kind", "rule", "frozen at"], [[r["name"], r["kind"], r["rule"], r["frozen_at"]] for r in rows])


@segment.command("freeze")
@click.argument("name")
@pass_app
def segment_freeze(app: AppContext, name: str) -> None:
    """Snapshot a rule segment's members; campaigns then use the snapshot."""
    with app.crm().unit_of_work(app.actor) as uow:
        n = services.freeze(uow, services.get_segment(uow, name))
    click.echo(f"segment {name!r} frozen with {n:,} members")


# -- consent -------------------------------------------------------------------------------

@marketing.group(cls=CRMGroup)
def consent() -> None:
    """Per customer and channel: opt-in, opt-out, unsubscribed (with date and source)."""


@consent.command("set")
@click.argument("customer")
@click.argument("channel", type=click.Choice(CHANNELS))
@click.argument("status", type=click.Choice(["opt_in", "opt_out", "unsubscribed"]))
@click.option("--source", default="cli", show_default=True, help="Where the statement came from (form, call, ...).")
@click.option("--at", help="When it was given (ISO date/time; default now).")
@pass_app
def consent_set(app: AppContext, customer: str, channel: str, status: str, source: str, at: str | None) -> None:
    """Record a customer's consent for a channel."""
    data = validate(ConsentSet, channel=channel, status=status, source=source, at=at)
    with app.crm().unit_of_work(app.actor) as uow:
        c = services.resolve_customer(uow, customer)
        services.set_consent(uow, c.id, data)
    click.echo(f"customer {c.id}: {channel} consent is {status}")


@consent.command("show")
@click.argument("customer")
@_json_option
@pass_app
def consent_show(app: AppContext, customer: str, as_json: bool) -> None:
    """A customer's consent per channel."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        c = services.resolve_customer(uow, customer)
        cid, name = c.id, c.name
        rows = [{"channel": x.channel, "status": x.status, "at": x.at, "source": x.source} for x in services.consents(uow, cid)]
    if as_json:
        emit_json({"customer_id": cid, "consent": rows})
        return
    table(f"Consent of {name}", ["channel", "status", "at", "source"], [list(r.values()) for r in rows])


# -- campaigns -----------------------------------------------------------------------------

@marketing.group(cls=CRMGroup)
def campaign() -> None:
    """Campaigns: create, launch, send, report."""


def _variant(text: str) -> VariantIn:
    name, sep, share = text.partition("=")
    if not sep:
        raise InvalidInput(f"invalid input: variant {text!r}: write NAME=SHARE, e.g. A=0.5", [("variant", "format")])
    return validate(VariantIn, name=name, share=_share("variant share", share))


@campaign.command("create")
@click.argument("name")
@click.option("--channel", required=True, type=click.Choice(CHANNELS))
@click.option("--segment", "segment_names", multiple=True, required=True, help="Target segment (repeatable).")
@click.option("--objective")
@click.option("--budget")
@click.option("--currency")
@click.option("--starts")
@click.option("--ends")
@click.option("--control", "control_share", default="0", show_default=True, help="Holdout share not contacted (0..1).")
@click.option("--seed", default="0", show_default=True, help="Seed of the holdout and A/B draws.")
@click.option("--subject", help="Subject template, e.g. 'Hello {{ customer.name }}'.")
@click.option("--body", help="Body template.")
@click.option("--body-file", type=click.Path(dir_okay=False), help="Read the body template from a file.")
@click.option("--window", "attribution_days", help="Attribution window in days (default: the setting).")
@click.option("--variant", "variants", multiple=True, metavar="NAME=SHARE", help="A/B variant (repeatable; shares add up to 1).")
@click.option("--variant-subject", "variant_subjects", multiple=True, metavar="NAME=TEMPLATE")
@click.option("--price-offer", is_flag=True, default=None,
              help="A price offer (discount, sale, coupon): purchases in response count as bought on price.")
@pass_app
def campaign_create(app: AppContext, name: str, channel: str, segment_names: tuple[str, ...], body_file: str | None,
                    variants: tuple[str, ...], variant_subjects: tuple[str, ...], control_share: str, seed: str,
                    **kw: Any) -> None:
    """Create a draft campaign."""
    if body_file is not None:
        try:
            kw["body"] = Path(body_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidInput(f"cannot read body file {body_file}: {getattr(e, 'strerror', None) or e}") from None
    vs = [_variant(v) for v in variants]
    subjects = dict(s.partition("=")[::2] for s in variant_subjects)
    unknown = set(subjects) - {v.name for v in vs}
    if unknown:
        raise InvalidInput(f"invalid input: --variant-subject names unknown variant(s) {', '.join(sorted(unknown))}")
    vs = [v.model_copy(update={"subject": subjects.get(v.name)}) for v in vs]
    try:
        seed_n = int(seed)
    except ValueError:
        raise InvalidInput(f"invalid input: seed: {seed!r} is not a whole number", [("seed", "not a number")]) from None
    data = validate(CampaignCreate, name=name, channel=channel, segments=list(segment_names), variants=vs,
                    control_share=_share("control", control_share), seed=seed_n,
                    **{k: v for k, v in kw.items() if v is not None})
    with app.crm().unit_of_work(app.actor) as uow:
        c = services.create_campaign(uow, data)
    click.echo(f"campaign {c.name!r} created (id {c.id}, draft): launch it with `crm marketing campaign launch {c.name!r}`")


@campaign.command("cost")
@click.argument("campaign_key", metavar="CAMPAIGN")
@click.argument("amount")
@click.option("--ref", "reference", required=True, help="The cost document's reference (counted once).")
@click.option("--currency")
@click.option("--description")
@pass_app
def campaign_cost(app: AppContext, campaign_key: str, amount: str, reference: str, currency: str | None,
                  description: str | None) -> None:
    """Record actual spend on a campaign."""
    data = validate(CostCreate, amount=_decimal("amount", amount), reference=reference,
                    currency=currency.upper() if currency else None, description=description)
    with app.crm().unit_of_work(app.actor) as uow:
        c = services.get_campaign(uow, campaign_key)
        line, created = services.add_cost(uow, c, data)
    click.echo(f"cost {line.reference} {line.amount} {line.currency} " + ("recorded" if created else "already recorded (no change)"))


@campaign.command("launch")
@click.argument("campaign_key", metavar="CAMPAIGN")
@_json_option
@pass_app
def campaign_launch(app: AppContext, campaign_key: str, as_json: bool) -> None:
    """Materialise the audience (contact, control, suppressed) and start the campaign."""
    with app.crm().unit_of_work(app.actor) as uow:
        c = services.get_campaign(uow, campaign_key)
        counts = services.launch(uow, c)
    if as_json:  # the same fields as POST /marketing/campaigns/{name}/launch
        emit_json({"campaign": c.name, "status": c.status, **counts})
        return
    click.echo(f"campaign {c.name!r} running: {counts['targeted']:,} targeted, {counts['contact']:,} to contact, "
               f"{counts['control']:,} control, {counts['suppressed']:,} suppressed")


@campaign.command("send")
@click.argument("campaign_key", metavar="CAMPAIGN")
@click.option("--adapter", default="file", show_default=True, help="Channel adapter: file, smtp, or one a plugin adds.")
@click.option("--outbox", type=click.Path(file_okay=False), help="Folder of the file adapter (default: the setting).")
@click.option("--limit", type=click.IntRange(1, 10_000_000), help="Send at most N messages now.")
@click.option("--resend-in-doubt", is_flag=True, help="Resend messages a killed run may or may not have sent.")
@_json_option
@pass_app
def campaign_send(app: AppContext, campaign_key: str, adapter: str, outbox: str | None, limit: int | None,
                  resend_in_doubt: bool, as_json: bool) -> None:
    """Deliver the pending messages; a re-run resumes and never contacts anyone twice."""
    res = delivery.send(app.crm(), app.actor, campaign_key, adapter, outbox=Path(outbox) if outbox else None,
                        limit=limit, resend_in_doubt=resend_in_doubt)
    if as_json:  # exit code 1 when a message failed, as without --json
        emit_json(dataclasses.asdict(res))
        if res.failed:
            raise click.exceptions.Exit(1)
        return
    line = f"sent {res.sent:,}, failed {res.failed:,}, pending {res.pending:,}"
    if res.skipped:
        line += f", {res.skipped:,} skipped (suppressed since the launch)"
    if res.settled:
        line += f", {res.settled:,} in-doubt found delivered"
    if res.in_doubt:
        line += f", {res.in_doubt:,} in doubt (maybe sent by a killed run; --resend-in-doubt sends them again)"
    if res.failed_before:
        line += f", {res.failed_before:,} failed in earlier runs"
    click.echo(line)
    for e in res.errors[:10]:
        click.echo(f"  {e}", err=True)
    if res.failed:
        raise click.exceptions.Exit(1)


@campaign.command("status")
@click.argument("campaign_key", metavar="CAMPAIGN")
@click.argument("status", type=click.Choice(["scheduled", "draft", "completed", "cancelled"]))
@pass_app
def campaign_status(app: AppContext, campaign_key: str, status: str) -> None:
    """Schedule, complete or cancel a campaign."""
    with app.crm().unit_of_work(app.actor) as uow:
        c = services.set_status(uow, services.get_campaign(uow, campaign_key), status)
    click.echo(f"campaign {c.name!r} is {c.status}")


@campaign.command("list")
@_json_option
@pass_app
def campaign_list(app: AppContext, as_json: bool) -> None:
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = [{"id": c.id, "name": c.name, "channel": c.channel, "status": c.status, "budget": c.budget,
                 "currency": c.currency, "launched_at": c.launched_at} for c in services.list_campaigns(uow)]
    if as_json:
        emit_json(rows)
        return
    table("Campaigns", list(rows[0]) if rows else ["id", "name"], [list(r.values()) for r in rows])


@campaign.command("show")
@click.argument("campaign_key", metavar="CAMPAIGN")
@_json_option
@pass_app
def campaign_show(app: AppContext, campaign_key: str, as_json: bool) -> None:
    """A campaign's settings and segments."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        c = services.get_campaign(uow, campaign_key)
        data = {"id": c.id, "name": c.name, "objective": c.objective, "channel": c.channel, "status": c.status,
                "budget": c.budget, "currency": c.currency, "starts_at": c.starts_at, "ends_at": c.ends_at,
                "control_share": c.control_share, "seed": c.seed, "segments": services.campaign_segments(uow, c),
                "attribution_days": c.attribution_days, "price_offer": c.price_offer, "subject": c.subject,
                "launched_at": c.launched_at}
    if as_json:
        emit_json(data)
        return
    fields(f"Campaign {data['name']}", data)


@campaign.command("report")
@click.argument("campaign_key", metavar="CAMPAIGN")
@click.option("--attribution", type=click.Choice(ATTRIBUTION_MODELS), help="Attribution model (default: the setting).")
@_json_option
@pass_app
def campaign_report(app: AppContext, campaign_key: str, attribution: str | None, as_json: bool) -> None:
    """Targeted, suppressed, delivered, responses by type, conversions, revenue, cost, ROI, lift, A/B."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        data = reporting.report(uow, services.get_campaign(uow, campaign_key), attribution)
    if as_json:
        emit_json(data)
        return
    fields(f"Campaign {data['campaign']} ({data['status']}, {data['channel']})", {
        "targeted": data["targeted"], "suppressed": f"{data['suppressed']} " + json.dumps(data["suppressed_by_reason"]),
        "contacted / control": f"{data['contacted']} / {data['control']}",
        "delivered": data["delivered"], "failed / pending / in doubt": f"{data['failed']} / {data['pending']} / {data['in_doubt']}",
        "responders": data["responders"], "conversions": data["conversions"],
        f"attributed revenue ({data['attribution']}, {data['window_days']} days)": data["attributed_revenue"] or "none",
        "cost": f"{data['cost']} {data['currency']}", "cost per response": data["cost_per_response"],
        "ROI": data["roi"] if data["roi"] is not None else data["roi_note"],
        "lift": data["lift"]["verdict"],
    })
    table("Responses", ["type", "customers", "rate"],
          [[t, v["customers"], f"{100 * v['rate']:.1f}%" if v["rate"] is not None else "–"] for t, v in data["responses"].items()])
    if data["ab"]:
        table(f"A/B: {data['ab']['verdict']}", ["variant", "share", "sent", "converted", "rate"],
              [[v["variant"], v["share"], v["sent"], v["converted"], "–" if v["rate"] is None else f"{100 * v['rate']:.1f}%"]
               for v in data["ab"]["variants"]])


# -- responses -----------------------------------------------------------------------------

@marketing.group(cls=CRMGroup)
def response() -> None:
    """Classified responses: record, derive from interactions (bulk: `crm import marketing_responses FILE`)."""


@response.command("record")
@click.argument("campaign_key", metavar="CAMPAIGN")
@click.argument("customer")
@click.argument("rtype", metavar="TYPE")
@click.option("--at", help="When (ISO date/time; default now).")
@click.option("--note")
@click.option("--ref", "external_ref", help="The response's reference (recording it again is a no-op).")
@pass_app
def response_record(app: AppContext, campaign_key: str, customer: str, rtype: str, at: str | None, note: str | None,
                    external_ref: str | None) -> None:
    """Record how a customer responded to a campaign."""
    data = validate(ResponseCreate, type=rtype, at=at, note=note, external_ref=external_ref)
    with app.crm().unit_of_work(app.actor) as uow:
        c = services.get_campaign(uow, campaign_key)
        cust = services.resolve_customer(uow, customer)
        r, created = responses.record(uow, c, cust.id, data)
    click.echo(f"response {r.type} of customer {cust.id} to {c.name!r} " + ("recorded" if created else "already recorded (no change)"))


@response.command("import", context_settings={"ignore_unknown_options": True})
@click.argument("file", metavar="FILE")
@click.argument("options", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def response_import(ctx: click.Context, file: str, options: tuple[str, ...]) -> None:
    """Import responses in bulk: the same as `crm import marketing_responses FILE [OPTIONS]`
    (columns external_ref, campaign, customer_ref, type, at, note; idempotent, per-row errors)."""
    from crmcore.sdk import import_command as import_cmd

    sub = import_cmd.make_context("import", ["marketing_responses", file, *options], parent=ctx)
    with sub:
        import_cmd.invoke(sub)


@response.command("derive")
@click.argument("campaign_key", metavar="CAMPAIGN")
@pass_app
def response_derive(app: AppContext, campaign_key: str) -> None:
    """Turn inbound interactions after the contact into responses (replied, complained)."""
    with app.crm().unit_of_work(app.actor) as uow:
        n = responses.derive(uow, services.get_campaign(uow, campaign_key))
    click.echo(f"{n} response(s) derived from interactions")


# -- cross-sell ----------------------------------------------------------------------------

@marketing.command("cross-sell")
@click.option("--bought", required=True, help="Product group the customers bought (transaction category).")
@click.option("--not-bought", required=True, help="Product group they never bought.")
@click.option("--limit", type=click.IntRange(0, 100_000), default=20, show_default=True)
@_json_option
@pass_app
def cross_sell(app: AppContext, bought: str, not_bought: str, limit: int, as_json: bool) -> None:
    """Cross-sell candidates: bought in one product group and not in another."""
    if bought == not_bought:
        raise InvalidInput("invalid input: --bought and --not-bought must differ")
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        total, rows = reporting.cross_sell(uow, bought, not_bought, limit)
    if as_json:
        emit_json({"bought": bought, "not_bought": not_bought, "count": total, "customers": rows})
        return
    click.echo(f"{total:,} customers bought {bought!r} but never {not_bought!r}")
    table(None, ["id", "ref", "name", "purchases", "spend"],
          [[r["id"], r["external_ref"], r["name"], r["purchases"], r["spend"]] for r in rows])

