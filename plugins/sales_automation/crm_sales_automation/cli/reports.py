"""``crm sales forecast`` and ``crm sales report …``: forecasts, funnel, performance, stale, probabilities."""
from __future__ import annotations

from typing import Any

import click

from crm_sales_automation import analytics
from crm_sales_automation.cli._common import _date, _json, _money, _per_currency, _rate_options
from crmcore.sdk import AppContext, CRMGroup, emit_json, pass_app, table


@click.command("forecast")
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


@click.group(cls=CRMGroup)
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
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="idle, past close and overdue as of noon UTC of this day (default: now)")
@_json
@pass_app
def report_stale(app: AppContext, days: int | None, as_of: str | None, as_json: bool) -> None:
    """Open deals with no activity for N days, deals past their close date, overdue activities."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        out = analytics.stale(uow, days, as_of=_date("as-of", as_of))
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
