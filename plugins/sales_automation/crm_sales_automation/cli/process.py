"""``crm sales report sources|reasons|objections|follow-up``: the selling process's reports (see
:mod:`crm_sales_automation.process`); every one takes ``--json``."""
from __future__ import annotations

from typing import Any

import click

from crm_sales_automation import process
from crm_sales_automation.cli._common import _date, _json, _per_currency
from crm_sales_automation.cli.reports import report
from crmcore.sdk import USERNAME, AppContext, emit_json, pass_app, table


def _rate(v: float | None) -> str:
    return "" if v is None else f"{v}%"


@report.command("sources")
@click.option("--by", type=click.Choice(list(process.SOURCE_BY)), default="source", show_default=True)
@_json
@pass_app
def report_sources(app: AppContext, by: str, as_json: bool) -> None:
    """Lead sources (or campaigns): conversion, win rate, cycle time and revenue."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = process.source_effectiveness(uow, by)
    if as_json:
        emit_json(rows)
        return
    table(f"lead {by}s", [by, "leads", "converted", "conversion", "deals", "won", "lost", "win rate", "cycle days", "revenue"],
          [[r[by], r["leads"], r["converted"], _rate(r["conversion_rate"]), r["deals"], r["won"], r["lost"],
            _rate(r["win_rate"]), "" if r["avg_cycle_days"] is None else r["avg_cycle_days"], _per_currency(r["revenue"])]
           for r in rows])


@report.command("reasons")
@_json
@pass_app
def report_reasons(app: AppContext, as_json: bool) -> None:
    """Won and lost deals by reason (the won_reasons and lost_reasons vocabularies)."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = process.reasons(uow)
    if as_json:
        emit_json(rows)
        return
    table("won and lost reasons", ["outcome", "reason", "deals", "share", "amount"],
          [[r["outcome"], r["reason"], r["deals"], _rate(r["share"]), _per_currency(r["amount"])] for r in rows])


@report.command("objections")
@_json
@pass_app
def report_objections(app: AppContext, as_json: bool) -> None:
    """Objection handling by method (objection_methods vocabulary) and kind: resolved, deals won."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        out = process.objections(uow)
    if as_json:
        emit_json(out)
        return
    cols = ["objections", "resolved", "deals closed", "won"]

    def cells(r: dict[str, Any]) -> list[Any]:
        return [r["objections"], _rate(r["resolved_share"]), r["closed_deals"], _rate(r["won_share"])]
    table("objection handling by method", ["method", *cols], [[r["method"], *cells(r)] for r in out["methods"]])
    table("by objection kind", ["kind", "method", *cols], [[r["kind"], r["method"], *cells(r)] for r in out["by_kind"]])


@report.command("follow-up")
@click.option("--days", type=click.IntRange(1, 3650), help="days without an action (default: the setting follow_up_days, 30)")
@click.option("--owner", type=USERNAME, help="only this rep's leads and deals")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="count idle days up to noon UTC of this day (default: now)")
@_json
@pass_app
def report_follow_up(app: AppContext, days: int | None, owner: str | None, as_of: str | None, as_json: bool) -> None:
    """Open leads and deals with no action for N days and nothing planned, by owner."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        out = process.follow_up(uow, days, owner, as_of=_date("as-of", as_of))
    if as_json:
        emit_json(out)
        return
    table(f"no action for {out['days']} days and nothing planned ({out['total']})",
          ["owner", "what", "id", "name", "last action", "idle days"],
          [[o["owner"] or "(nobody)", kind[:-1] if kind == "leads" else "opportunity", i["id"], i["name"],
            i["last_action"].strftime("%Y-%m-%d"), i["idle_days"]]
           for o in out["owners"] for kind in ("leads", "opportunities") for i in o[kind]])
