"""``crm credit …``: profiles, scores, the credit check, holds, ageing, DSO, dunning, write-offs, scorecards.

Every read takes ``--json``; bad input is one ``error:`` line with exit code 1 (the core's
CRMGroup prints crmcore errors), usage mistakes exit 2 (click).
"""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import click

from crm_credit import dunning as dunning_svc
from crm_credit import ledger, reports, score_service, services
from crm_credit.cli_scorecard import scorecard
from crm_credit.cli_terms import review, warnings_cmd
from crm_credit.schemas import ProfileUpdate, ReleaseRequest, TradeReference, WriteOffRequest
from crmcore.errors import InvalidInput
from crmcore.sdk import (  # the core's parsing of amounts and ISO 4217 codes
    TEXT,
    AppContext,
    CRMGroup,
    emit_json,
    fields,
    jsonable,
    parse_currency,
    parse_money,
    pass_app,
    resolve_customer,
    table,
    validate,
)


class _Date(click.ParamType):
    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            n = param.name if param and param.name else "date"
            raise InvalidInput(f"invalid input: {n.replace('_', '-')}: expected a date YYYY-MM-DD, got {value!r}") from None


class _Amount(click.ParamType):
    name = "amount"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Decimal:
        try:
            return parse_money(value)
        except ValueError as e:
            n = param.name if param and param.name else "amount"
            raise InvalidInput(f"invalid input: {n}: {e}") from None


DATE, AMOUNT = _Date(), _Amount()


def _json_option(f: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")(f)


def _money_s(v: Any) -> str:
    return "–" if v is None else f"{Decimal(v):,.2f}"


@click.group(cls=CRMGroup)
def credit() -> None:
    """Credit management: limits, scores, holds, receivables ageing, DSO, dunning, scorecards."""


# -- profiles ----------------------------------------------------------------------------------------

@credit.group(cls=CRMGroup)
def profile() -> None:
    """Show or change a customer's credit profile."""


_profile_data = reports.profile_data  # moved to crm_credit.reports (the routes share it)


@profile.command("show")
@click.argument("customer_key", metavar="CUSTOMER")
@click.option("--history", "with_history", is_flag=True, help="Also list every change (who, when, before, after).")
@_json_option
@pass_app
def profile_show(app: AppContext, customer_key: str, with_history: bool, as_json: bool) -> None:
    """The credit profile, latest score with its reasons, and releases."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        c = resolve_customer(uow, customer_key)
        cid, cname = c.id, c.name
        data = _profile_data(uow, c.id)
        if with_history:
            data["history"] = [{"at": h.at, "actor": h.actor, "action": h.action, "before": h.before, "after": h.after,
                                "reason": h.reason} for h in services.history(uow, c.id)]
    if as_json:
        emit_json(data)
        return
    p = data["profile"]
    if p is None:
        click.echo(f"customer {cid} ({cname}) has no credit profile; set one with `crm credit profile set`")
    else:
        shown = {k: v for k, v in p.items() if v not in (None, [], "")}
        if "limit_amount" in shown:
            shown["limit_amount"] = f"{_money_s(p['limit_amount'])} {p['currency']}"
        if p.get("trade_references"):
            shown["trade_references"] = "; ".join(f"{r['name']} ({r.get('rating') or 'unrated'})" for r in p["trade_references"])
        fields(f"Credit profile of customer {cid}: {cname}", shown)
    s = data["score"]
    if s is not None:
        click.echo(f"score {s['score']} grade {s['grade']}, suggested limit {_money_s(s['suggested_limit'])} {s['currency']} "
                   f"(scored {s['scored_at']:%Y-%m-%d %H:%M})")
        click.echo("lowered by: " + (", ".join(s["reasons"].get("lowered", [])) or "nothing"))
        click.echo("raised by: " + (", ".join(s["reasons"].get("raised", [])) or "nothing"))
    active = [r for r in data["releases"] if r["ended_at"] is None and r["expires_at"] > services.utcnow()]
    for r in active:
        click.echo(f"released {'document ' + r['reference'] if r['reference'] else 'customer'} until "
                   f"{r['expires_at']:%Y-%m-%d %H:%M} by {r['by']}: {r['reason']}")
    if with_history:
        table("History", ["when", "who", "action", "before", "after", "reason"],
              [[h["at"].strftime("%Y-%m-%d %H:%M"), h["actor"], h["action"], json.dumps(jsonable(h["before"])),
                json.dumps(jsonable(h["after"])), h["reason"]] for h in data["history"]])


def _reference(value: str) -> TradeReference:
    parts = [x.strip() or None for x in value.split("|")]
    keys = ("name", "contact", "years_known", "rating", "note")
    if len(parts) > len(keys):
        raise InvalidInput(f"invalid input: --reference: at most {len(keys)} '|'-separated parts (name|contact|years|rating|note)")
    return validate(TradeReference, **dict(zip(keys, parts)))


@profile.command("set")
@click.argument("customer_key", metavar="CUSTOMER")
@click.option("--limit", type=AMOUNT, help="credit limit (in --currency, default the profile's / default account's)")
@click.option("--no-limit", "clear_limit", is_flag=True, help="remove the limit (no limit check)")
@click.option("--currency")
@click.option("--terms", "payment_terms_days", type=int, help="payment terms in days")
@click.option("--status", type=click.Choice(["good", "watch", "blocked"]))
@click.option("--reason", help="why (kept in the history)")
@click.option("--review", "last_review", type=DATE, help="date of the last credit review")
@click.option("--registry-id")
@click.option("--registry-name", help="e.g. Companies House, Handelsregister Munich")
@click.option("--legal-form")
@click.option("--founded", "founded_on", type=DATE)
@click.option("--employees", type=int)
@click.option("--financials-year", type=int)
@click.option("--revenue", "annual_revenue", type=AMOUNT)
@click.option("--equity", type=AMOUNT)
@click.option("--net-income", type=AMOUNT)
@click.option("--reference", "references", multiple=True, metavar="NAME|CONTACT|YEARS|RATING|NOTE",
              help="a trade reference (repeat; replaces the list)")
@click.option("--notes", "investigation_notes")
@click.option("--investigated", "investigated_on", type=DATE)
@click.option("--next-review", "next_review", type=DATE, help="date of the next credit review (default: last review + interval)")
@click.option("--group", "credit_group", help="credit group (its control mode: [credit.mode_by_group])")
@click.option("--discount", "discount_percent", type=AMOUNT, help="early-payment discount in percent (with --discount-days)")
@click.option("--discount-days", "discount_days", type=int, help="the discount's window in days from the invoice date")
@click.option("--no-discount", "clear_discount", is_flag=True, help="remove the early-payment discount terms")
@pass_app
def profile_set(app: AppContext, customer_key: str, references: tuple[str, ...], clear_limit: bool, clear_discount: bool,
                **opts: Any) -> None:
    """Create or change the credit profile (only the options given change)."""
    data = {k: v for k, v in opts.items() if v is not None}
    if references:
        data["trade_references"] = [_reference(r) for r in references]
    if clear_limit:
        data["clear_limit"] = True
    if clear_discount:
        data["clear_discount"] = True
    update = validate(ProfileUpdate, **data)
    with app.crm().unit_of_work(app.actor) as uow:
        c = resolve_customer(uow, customer_key)
        p = services.set_profile(uow, c.id, update)
        line = (f"credit profile of customer {c.id} ({c.name}): limit "
                f"{'none' if p.limit_amount is None else _money_s(p.limit_amount) + ' ' + p.currency}, status {p.status}")
    click.echo(line)


# -- score, check ------------------------------------------------------------------------------------

@credit.command("score")
@click.argument("customer_key", metavar="[CUSTOMER]", required=False)
@click.option("--all", "all_", is_flag=True, help="score every active customer")
@click.option("--as-of", type=DATE, help="score as of this date (default today)")
@_json_option
@pass_app
def score_cmd(app: AppContext, customer_key: str | None, all_: bool, as_of: dt.date | None, as_json: bool) -> None:
    """Recompute the rule scorecard for one customer or (--all) everyone, set-based."""
    if bool(customer_key) == all_:
        raise InvalidInput("give a CUSTOMER or --all (not both)")
    with app.crm().unit_of_work(app.actor) as uow:
        cid = None if all_ else resolve_customer(uow, customer_key).id  # type: ignore[arg-type]
        out = score_service.score_customers(uow, cid, all_=all_, as_of=as_of)
    if as_json:
        if "customer" in out:
            out["customer"] = {k: v for k, v in out["customer"].items() if k != "max_points"}
        emit_json(out)
        return
    c = out.get("customer")
    if c is not None:
        table(f"Customer {c['customer_id']}: score {c['score']}, grade {c['grade']}, suggested limit "
              f"{_money_s(c['suggested_limit'])} {c['currency']}",
              ["factor", "value", "points", "of"],
              [[f, "–" if c["factors"].get(f) is None else round(c["factors"][f], 2), p, c["max_points"][f]]
               for f, p in c["points"].items()])
        click.echo("lowered by: " + (", ".join(c["reasons"]["lowered"]) or "nothing"))
    click.echo(f"scored {out['scored']:,} customer(s): " + ", ".join(f"{g} {k:,}" for g, k in out["grades"].items()))


@credit.command("check")
@click.argument("customer_key", metavar="CUSTOMER")
@click.argument("amount", type=AMOUNT)
@click.option("--currency")
@click.option("--document", "reference", help="the document's reference (a release of it counts)")
@_json_option
@pass_app
def check_cmd(app: AppContext, customer_key: str, amount: Decimal, currency: str | None, reference: str | None, as_json: bool) -> None:
    """Would a new document of AMOUNT pass the credit check? Exit 1 when it would be refused.

    Says the customer's control mode (block or warn, and why), who may pass a warning, and
    whether you may: a document refused by the rules passes in warn mode for a holder of
    credit.pass_warning (exit 0, "warning:"). Writes nothing."""
    if currency is not None:
        try:
            currency = parse_currency(currency)
        except ValueError as e:
            raise InvalidInput(f"invalid input: currency: {e}") from None
    from crm_credit import control
    from crm_credit.settings import settings as credit_settings

    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        c = resolve_customer(uow, customer_key)
        chk = services.check(uow, c.id, amount, currency, reference, lock=False)
        mode = control.mode_report(uow, credit_settings(uow), services.get_profile(uow, c.id), chk)
    who = (f"mode {mode['mode']} ({mode['mode_source']}); {control.PASS_PERMISSION} is held by "
           f"{', '.join(mode['may_pass']) or 'no role'}; {app.actor} {'holds' if mode['actor_may_pass'] else 'lacks'} it")
    if as_json:
        emit_json({**chk.as_dict(), **mode})
    elif chk.ok:
        limit = "no limit" if chk.limit is None else f"limit {_money_s(chk.limit)}"
        extra = f"; released by {chk.released_by}" if chk.released_by else ""
        click.echo(f"ok: exposure {_money_s(chk.exposure)} {chk.currency} ({limit}){extra}; {who}")
    elif mode["would_pass"]:
        click.echo(f"warning: {chk.message()}; it would pass with the warning recorded: {who}")
    else:
        click.echo(f"refused: {chk.message()}; {who}")
    if not mode["would_pass"]:
        click.get_current_context().exit(1)


# -- hold and release -------------------------------------------------------------------------------

@credit.command("hold")
@click.argument("customer_key", metavar="CUSTOMER")
@click.option("--reason", required=True, type=TEXT)
@pass_app
def hold_cmd(app: AppContext, customer_key: str, reason: str) -> None:
    """Put the customer on credit hold (new invoices / wins are refused)."""
    with app.crm().unit_of_work(app.actor) as uow:
        c = resolve_customer(uow, customer_key)
        services.hold(uow, c.id, reason.strip() or "-")
        line = f"customer {c.id} ({c.name}) is on credit hold: {reason.strip()}"
    click.echo(line)


@credit.command("release")
@click.argument("customer_key", metavar="CUSTOMER")
@click.option("--reason", required=True)
@click.option("--document", "reference", help="release only this document (its reference)")
@click.option("--days", type=int, default=7, show_default=True, help="the release expires after N days")
@pass_app
def release_cmd(app: AppContext, customer_key: str, reason: str, reference: str | None, days: int) -> None:
    """Release the customer (lifts a hold) or one document, until the expiry. Needs credit.release."""
    req = validate(ReleaseRequest, reason=reason, reference=reference, days=days)
    with app.crm().unit_of_work(app.actor) as uow:
        c = resolve_customer(uow, customer_key)
        r = services.release(uow, c.id, req)
        what = f"document {r.reference} of customer {c.id}" if r.reference else f"customer {c.id} ({c.name})"
        line = f"released {what} until {r.expires_at:%Y-%m-%d %H:%M} UTC: {r.reason}"
    click.echo(line)


# -- receivables ---------------------------------------------------------------------------------------

@credit.command("aging")
@click.option("--customer", "customer_key", metavar="CUSTOMER")
@click.option("--as-of", type=DATE)
@click.option("--limit", type=click.IntRange(0), default=50, show_default=True, help="customers listed (largest first)")
@_json_option
@pass_app
def aging_cmd(app: AppContext, customer_key: str | None, as_of: dt.date | None, limit: int, as_json: bool) -> None:
    """Open receivables in buckets (current, 1-30, 31-60, 61-90, over 90 days past due), per customer and in total."""
    as_of = as_of or services.today()
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        ids = None if customer_key is None else [resolve_customer(uow, customer_key).id]
        report = reports.ageing(uow, as_of, ids)
    if as_json:
        emit_json(report)
        return
    rows = sorted(report["customers"], key=lambda r: (-r["open"], r["customer_id"]))[:limit]
    cols = ["customer", "ref", "name", "currency", *ledger.BUCKETS, "open", "unapplied"]
    table(f"Ageing as of {as_of}", cols, [[r["customer_id"], r["customer_ref"] or "", r["customer_name"] or "", r["currency"],
                                            *[_money_s(r["buckets"][b]) for b in ledger.BUCKETS], _money_s(r["open"]),
                                            _money_s(r["unapplied"])] for r in rows])
    table("Total", cols, [["all", "", "", r["currency"], *[_money_s(r["buckets"][b]) for b in ledger.BUCKETS],
                           _money_s(r["open"]), _money_s(r["unapplied"])] for r in report["totals"]])


@credit.command("dso")
@click.option("--from", "start", type=DATE, help="period start (default: 90 days before --to)")
@click.option("--to", "end", type=DATE, help="period end (default today)")
@click.option("--customer", "customer_key", metavar="CUSTOMER")
@click.option("--limit", type=click.IntRange(0), default=50, show_default=True)
@_json_option
@pass_app
def dso_cmd(app: AppContext, start: dt.date | None, end: dt.date | None, customer_key: str | None, limit: int, as_json: bool) -> None:
    """Days sales outstanding (receivables ÷ credit sales × days) and average days to pay."""
    end = end or services.today()
    start = start or end - dt.timedelta(days=89)
    if start > end:
        raise InvalidInput(f"invalid input: --from {start} is after --to {end}")
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        ids = None if customer_key is None else [resolve_customer(uow, customer_key).id]
        report = reports.dso(uow, start, end, ids)
    if as_json:
        emit_json(report)
        return
    rows = [ledger.DsoRow(**{k: v for k, v in r.items() if k not in reports.NAME_FIELDS}) for r in report["customers"]]
    totals = [ledger.DsoRow(**r) for r in report["totals"]]
    cols = ["customer", "currency", "receivables", "credit sales", "DSO", "avg days to pay", "paid"]
    rows = sorted(rows, key=lambda r: -(r.dso or 0))[:limit]
    table(f"DSO {start} – {end} ({(end - start).days + 1} days)", cols,
          [[r.customer_id, r.currency, _money_s(r.receivables), _money_s(r.credit_sales), r.dso, r.avg_days_to_pay, r.paid_invoices]
           for r in rows])
    table("Total", cols, [["all", r.currency, _money_s(r.receivables), _money_s(r.credit_sales), r.dso, r.avg_days_to_pay,
                           r.paid_invoices] for r in totals])


# -- dunning -------------------------------------------------------------------------------------------

@credit.group(cls=CRMGroup)
def dunning() -> None:
    """Raise overdue invoices through the dunning levels; list the current levels."""


@dunning.command("run")
@click.option("--as-of", type=DATE)
@_json_option
@pass_app
def dunning_run(app: AppContext, as_of: dt.date | None, as_json: bool) -> None:
    """Raise each overdue invoice to its level, log the actions, hold at a flagged level."""
    with app.crm().unit_of_work(app.actor) as uow:
        res = dunning_svc.run(uow, as_of)
    if as_json:
        emit_json(res.__dict__)
        return
    levels = ", ".join(f"level {k}: {v}" for k, v in sorted(res.by_level.items())) or "none raised"
    click.echo(f"dunning as of {res.as_of}: {res.overdue} overdue invoice(s), {res.raised} raised ({levels}), "
               f"{res.interactions} interaction(s) logged, {res.resolved} resolved, {len(res.held)} customer(s) put on hold")


@dunning.command("list")
@click.option("--all", "include_resolved", is_flag=True, help="include resolved items")
@_json_option
@pass_app
def dunning_list(app: AppContext, include_resolved: bool, as_json: bool) -> None:
    """Invoices in dunning, highest level first."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = dunning_svc.listing(uow, include_resolved)
    if as_json:
        emit_json(rows)
        return
    table("Dunning", ["customer", "invoice", "level", "action", "due", "days overdue", "open", "currency", "resolved"],
          [[r["customer_id"], r["invoice"], r["level"], r["action"], r["due_date"], r["days_overdue"], _money_s(r["open"]),
            r["currency"], r["resolved_at"] and r["resolved_at"].strftime("%Y-%m-%d")] for r in rows])


# -- write-off -----------------------------------------------------------------------------------------

@credit.command("writeoff")
@click.argument("customer_key", metavar="CUSTOMER")
@click.argument("invoice")
@click.option("--amount", type=AMOUNT, help="default: everything still open on the invoice")
@click.option("--reason", required=True)
@pass_app
def writeoff_cmd(app: AppContext, customer_key: str, invoice: str, amount: Decimal | None, reason: str) -> None:
    """Write off bad debt on an invoice (posts a write-off entry naming it). Needs credit.writeoff."""
    req = validate(WriteOffRequest, invoice=invoice, amount=amount, reason=reason)
    with app.crm().unit_of_work(app.actor) as uow:
        c = resolve_customer(uow, customer_key)
        e = services.write_off(uow, c.id, req)
    click.echo(f"wrote off {_money_s(e.amount)} {e.currency} of invoice {req.invoice} (entry {e.reference})")


# -- trained scorecards (crm_credit.cli_scorecard) -----------------------------------------------------

credit.add_command(scorecard)
credit.add_command(review)  # crm_credit.cli_terms
credit.add_command(warnings_cmd)
