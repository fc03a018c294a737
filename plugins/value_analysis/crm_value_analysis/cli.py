"""``crm value …``: run the analyses, read the reports, fit and validate the CLV models.

Every read command takes ``--json``. Option values are validated by the plugin (dates, numbers,
time units), so bad input is reported as one ``error:`` line with a non-zero exit code.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from crm_value_analysis import services
from crm_value_analysis.purchase_models import TITLES
from crm_value_analysis.schemas import parse_date
from crmcore.errors import InvalidInput
from crmcore.sdk import AppContext, CRMGroup, emit_json, fields, pass_app, table
from crmcore.uow import UnitOfWork


class _Date(click.ParamType):
    """YYYY-MM-DD; a bad value is a CRM error (one line), not a click usage error."""

    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        return parse_date(param.name if param and param.name else "date", value)  # type: ignore[return-value]


class _Count(click.ParamType):
    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        name = param.name if param and param.name else "value"
        try:
            n = int(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"invalid input: {name}: {value!r} is not a whole number", [(name, "not a number")]) from None
        if n < 0:
            raise InvalidInput(f"invalid input: {name}: must be >= 0, got {n}", [(name, "negative")])
        return n


DATE = _Date()
COUNT = _Count()


def _resolve(uow: UnitOfWork, key: str) -> int:
    """The id of a visible customer: the core's resolver (the reference wins; ``#12`` is id 12)."""
    return uow.customers.visible(key).id


def _n(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, (float, Decimal)):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _short(value: Any) -> Any:
    """Floats rounded for reading: cents for amounts, four significant digits for ratios."""
    if isinstance(value, float):
        return round(value, 2) if abs(value) >= 100 else float(f"{value:.4g}")
    return value


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _json_option(f: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")(f)


def _limit_option(f: Any) -> Any:
    return click.option("--limit", type=COUNT, default=20, show_default=True, help="Customers to list.")(f)


@click.group(cls=CRMGroup)
def value() -> None:
    """Customer value: RFM, pyramid, Pareto, dependency, lifecycle, churn, loyalty, CLV.

    `crm value run` stores a dated snapshot; the report commands read the latest one.
    """


# -- run ----------------------------------------------------------------------------------------

@value.command("run")
@click.option("--as-of", type=DATE, help="Analysis date (default: today, UTC); a run of the same date is replaced.")
@click.option("--window-days", metavar="N", help="RFM/pyramid/Pareto window in days (default: all history).")
@click.option("--time-unit", metavar="auto|days|weeks|months", help="Time unit of the model fits (auto: from the data).")
@click.option("--model", metavar="auto|bg_nbd|mbg_nbd|pareto_nbd", help="Purchase model of churn and CLV (default: setting).")
@click.option("--currency", metavar="CODE", help="Analyse this currency (default: the only one, or the majority).")
@click.option("--margin", metavar="0..1")
@click.option("--discount-rate", metavar="RATE", help="Annual discount rate (>= 0).")
@click.option("--horizon-months", metavar="N")
@click.option("--retention", metavar="0..1", help="Annual retention rate (deterministic CLV).")
@click.option("--acquisition-cost", metavar="AMOUNT")
@click.option("--churn-threshold", metavar="0..1", help="P(alive) below this flags churn risk.")
@click.option("--churn-gap-factor", metavar="X", help="Gap rule: silent for more than X times the usual gap -> at risk.")
@click.option("--by", "value_by", metavar="auto|profit|revenue",
              help="Rank pyramid, Pareto and dependency by (auto: profit once any cost is configured).")
@click.option("--no-lifecycle", is_flag=True, help="Do not update the customers' lifecycle stage.")
@_json_option
@pass_app
def run_cmd(app: AppContext, as_of: dt.date | None, no_lifecycle: bool, as_json: bool, **overrides: Any) -> None:
    """Analyse every customer in one pass and store the snapshot."""
    with app.crm().unit_of_work(app.actor) as uow:
        settings = services.settings_for(uow, overrides)
        if no_lifecycle:
            settings = settings.model_copy(update={"lifecycle": settings.lifecycle.model_copy(update={"update_core": False})})
        out = services.run_analysis(uow, as_of=as_of, settings=settings)
    summary = {**out.summary, "pareto": {k: v for k, v in (out.summary["pareto"] or {}).items() if k != "curve"} or None}
    data = {"run": out.run.model_dump(), "summary": summary}
    if as_json:
        emit_json(data)
        return
    r, s = out.run, out.summary
    click.echo(f"value analysis as of {r.as_of}: {r.n_customers:,} customers, {r.n_purchasers:,} with purchases, "
               f"revenue {_n(r.total_revenue)}")
    p = s["profit"]
    profit = None if p["total_profit"] is None else Decimal(str(p["total_profit"]))
    click.echo(f"ranked by {s['value_basis']}; profit {_n(profit)} (margins {p['margins']}, costs counted: "
               f"{', '.join(p['cost_sources']) or 'none'}); unprofitable: {p['unprofitable']:,}")
    if s["pareto"]:
        click.echo(f"top 20% of purchasers: {_pct(s['pareto']['top_shares']['20%'])} of {s['value_basis']}, "
                   f"Gini {s['pareto']['gini']:.3f}")
    click.echo("tiers: " + ", ".join(f"{k} {v:,}" for k, v in s["tiers"].items()))
    if s["moves"]:
        m = s["moves"]
        click.echo(f"since {m['previous_as_of']}: {m['up']:,} up, {m['down']:,} down, {m['new']:,} new, {m['gone']:,} gone")
    flagged = {k: v for k, v in s["dependency"].items() if k != "none" and v}
    click.echo("dependency: " + (", ".join(f"{v} {k}" for k, v in flagged.items()) or "no key accounts"))
    m = s["models"]
    click.echo(f"time unit {m['time_unit']} ({m.get('time_unit_choice', {}).get('why', 'set')}); "
               f"model {m['model']} ({(m.get('model_choice') or {}).get('why', 'set')})")
    c = s["churn"]
    click.echo(f"churn risk: {c['at_risk']:,} customers, by {c.get('method', 'model')} ({c.get('reason')})")
    for note in c.get("notes", []):
        click.echo(f"note: {note}")
    click.echo(f"lifecycle stages updated: {out.lifecycle_updated:,}")
    for w in s["warnings"]:
        click.echo(f"warning: {w}", err=True)


@value.command("runs")
@_json_option
@pass_app
def runs_cmd(app: AppContext, as_json: bool) -> None:
    """List the stored snapshots, latest first."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = [r.model_dump() for r in services.list_runs(uow)]
    if as_json:
        emit_json(rows)
        return
    table("value analysis runs", ["as of", "customers", "purchasers", "revenue", "by", "at"],
          [[r["as_of"], r["n_customers"], r["n_purchasers"], _n(r["total_revenue"]), r["created_by"],
            r["created_at"].strftime("%Y-%m-%d %H:%M")] for r in rows])


# -- reports ------------------------------------------------------------------------------------

def _report(app: AppContext, fn: Any, *args: Any, **kw: Any) -> dict[str, Any]:
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        return fn(uow, *args, **kw)


def _title(data: dict[str, Any], what: str) -> str:
    return f"{what} (as of {data['run']['as_of']})"


def _group_table(title: str, groups: list[dict[str, Any]]) -> None:
    table(title, ["", "customers", "% cust.", "revenue", "% rev.", "profit", "% profit", "avg recency (d)", "avg freq."],
          [[g["name"], _n(g["customers"]), _pct(g["customer_share"]), _n(g["revenue"]), _pct(g["revenue_share"]),
            _n(g.get("profit")), _pct(g.get("profit_share")), _n(g.get("avg_recency_days"), 0),
            _n(g.get("avg_frequency"), 1)] for g in groups])


def _by_option(f: Any) -> Any:
    return click.option("--by", metavar="profit|revenue", help="Rank by profit or revenue (default: as the run did).")(f)


@value.command("rfm")
@_json_option
@pass_app
def rfm_cmd(app: AppContext, as_json: bool) -> None:
    """RFM segments: size, revenue and mean recency/frequency/monetary."""
    data = _report(app, services.rfm_report)
    if as_json:
        emit_json(data)
        return
    _group_table(_title(data, "RFM segments"), data["segments"])
    click.echo(f"customers who changed segment since the previous run: {data['changed_segment']:,}")


_plot_option = click.option("--plot", type=click.Path(path_type=Path), help="Also write a PNG plot to this file.")


@value.command("pyramid")
@_limit_option
@_plot_option
@_by_option
@_json_option
@pass_app
def pyramid_cmd(app: AppContext, limit: int, plot: Path | None, by: str | None, as_json: bool) -> None:
    """Value pyramid (by profit or revenue): tiers, and upgrades/downgrades since the previous run; optional PNG."""
    data = _report(app, services.pyramid_report, limit=limit, plot=plot, by=by)
    if as_json:
        emit_json(data)
        return
    _group_table(_title(data, f"Value pyramid by {data['by']}"), data["tiers"])
    if data.get("note"):
        click.echo(f"note: {data['note']}")
    if data["plot"]:
        click.echo(f"plot written to {data['plot']}")
    m = data["moves"]
    if not m:
        click.echo("no previous run to compare with")
        return
    click.echo(f"since {m['previous_as_of']}: {m['up']:,} up, {m['down']:,} down, {m['new']:,} new, {m['gone']:,} gone")
    for key in ("upgrades", "downgrades"):
        table(key.capitalize(), ["id", "name", "from", "to", "revenue"],
              [[r["customer_id"], r["name"], r["from_tier"], r["to_tier"], _n(r["monetary"])] for r in data[key]])


@value.command("pareto")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write the Pareto curve to this PNG file.")
@_by_option
@_json_option
@pass_app
def pareto_cmd(app: AppContext, plot: Path | None, by: str | None, as_json: bool) -> None:
    """Concentration of revenue or profit: share of the top x% of purchasers (80/20), Gini, optional PNG."""
    data = _report(app, services.pareto_report, plot=plot, by=by)
    if as_json:
        emit_json(data)
        return
    table(_title(data, f"{data['by'].capitalize()} concentration"), ["top customers", f"share of {data['by']}"],
          [[k, _pct(v)] for k, v in (data["top_shares"] or {}).items()])
    click.echo(f"Gini {_n(data['gini'], 3)} over {data['n_customers']:,} purchasers")
    if data["plot"]:
        click.echo(f"plot written to {data['plot']}")


@value.command("dependency")
@_by_option
@_json_option
@pass_app
def dependency_cmd(app: AppContext, by: str | None, as_json: bool) -> None:
    """Key-account dependency: customers above 10% (key), 20% (critical), 50% (mono-client) of revenue or profit."""
    data = _report(app, services.dependency_report, by=by)
    if as_json:
        emit_json(data)
        return
    t = data["thresholds"]
    click.echo(f"thresholds: key > {_pct(t['key'])}, critical > {_pct(t['critical'])}, mono-client > {_pct(t['mono'])}")
    table(_title(data, f"Key-account dependency by {data['by']}"), ["id", "name", "level", "share", "revenue", "profit"],
          [[r["customer_id"], r["name"], r["level"].upper(), _pct(r["share"]), _n(r["monetary"]), _n(r["profit"])]
           for r in data["flagged"]])
    click.echo(f"overall: {data['level']}")


@value.command("unprofitable")
@_limit_option
@_json_option
@pass_app
def unprofitable_cmd(app: AppContext, limit: int, as_json: bool) -> None:
    """Customers who cost more than they bring (profit below zero), worst first, and the costs counted."""
    data = _report(app, services.unprofitable_report, limit=limit)
    if as_json:
        emit_json(data)
        return
    p = data["profit"] or {}
    click.echo(f"margins {p.get('margins')}; costs counted: {', '.join(p.get('cost_sources') or []) or 'none'}")
    click.echo(f"unprofitable customers: {data['customers_unprofitable']:,}, loss {_n(data['total_loss'])} "
               f"on revenue {_n(data['their_revenue'])}")
    table(_title(data, "Unprofitable customers"), ["id", "name", "tier", "revenue", "gross margin", "cost to serve", "profit"],
          [[r["customer_id"], r["name"], r["tier"], _n(r["monetary"]), _n(r["gross_margin"]), _n(r["cost_to_serve"]),
            _n(r["profit"])] for r in data["customers"]])


@value.command("lost")
@click.argument("customer")
@click.option("--reason", required=True, help="Why: natural, competitive, malicious, negligent (or the configured list).")
@click.option("--note", help="Free text (at most 500 characters).")
@click.option("--on", "lost_on", type=DATE, help="When the customer was lost (default: today).")
@_json_option
@pass_app
def lost_cmd(app: AppContext, customer: str, reason: str, note: str | None, lost_on: dt.date | None, as_json: bool) -> None:
    """Record why a customer was lost."""
    from crm_value_analysis import churn_reasons

    with app.crm().unit_of_work(app.actor) as uow:
        out = churn_reasons.record_loss(uow, customer, reason, note=note, lost_on=lost_on)
    if as_json:
        emit_json(out)
        return
    click.echo(f"recorded: {out['name']} (#{out['customer_id']}) lost on {out['lost_on']}, {out['reason']}")


@value.command("reasons")
@_limit_option
@_json_option
@pass_app
def reasons_cmd(app: AppContext, limit: int, as_json: bool) -> None:
    """Lost customers per churn reason and source, and the latest records."""
    from crm_value_analysis import churn_reasons

    data = _report(app, churn_reasons.churn_reasons_report, limit=limit)
    if as_json:
        emit_json(data)
        return
    table("Churn reasons", ["reason", "customers", "by source"],
          [[k, v["total"], ", ".join(f"{s} {n}" for s, n in v["by_source"].items())] for k, v in data["by_reason"].items()])
    table("Latest", ["id", "name", "reason", "lost on", "source", "note"],
          [[r["customer_id"], r["name"], r["reason"], r["lost_on"], r["source"], r["note"] or ""] for r in data["latest"]])


@value.command("retention")
@click.option("--as-of", type=DATE, help="Count yearly periods back from this date (default: today).")
@_json_option
@pass_app
def retention_cmd(app: AppContext, as_of: dt.date | None, as_json: bool) -> None:
    """Observed retention: of the customers buying in a year, the share buying again the next, per cohort."""
    from crm_value_analysis import churn_reasons

    data = _report(app, churn_reasons.retention_report, as_of=as_of)
    if as_json:
        emit_json(data)
        return
    click.echo(f"observed retention {_pct(data['rate'])} per year over {data['periods']} periods "
               f"(setting: {_pct(data['assumed']) if data['assumed'] is not None else 'observed'})")
    table("Retention by cohort", ["cohort", "period", "customers", "retained", "rate"],
          [[r["cohort"], r["period"], r["customers"], r["retained"], _pct(r["rate"])] for r in data["cohorts"]])


@value.command("patterns")
@_json_option
@pass_app
def patterns_cmd(app: AppContext, as_json: bool) -> None:
    """Lifecycle patterns over the stored snapshots: aborted early, died mid-way, left early, long-lasting."""
    from crm_value_analysis import churn_reasons

    data = _report(app, churn_reasons.lifecycle_patterns)
    if as_json:
        emit_json(data)
        return
    table(f"Lifecycle patterns over {data['runs']} runs", ["pattern", "customers"],
          [[k, f"{v:,}"] for k, v in data["patterns"].items()])


@value.command("churn")
@_limit_option
@_json_option
@pass_app
def churn_cmd(app: AppContext, limit: int, as_json: bool) -> None:
    """Churn risk (BG/NBD probability alive below the threshold), most valuable first."""
    data = _report(app, services.churn_report, limit=limit)
    if as_json:
        emit_json(data)
        return
    click.echo(f"churn risk: {data['at_risk']:,} customers, by {data['method']} ({data['reason']})")
    if data["with_model"]:
        click.echo(f"P(alive) < {data['threshold']}: {data['with_model']:,} customers with a model estimate "
                   f"(mean P(alive) {_n(data['avg_p_alive'], 3)})")
    click.echo("lifecycle: " + ", ".join(f"{k} {v:,}" for k, v in (data["lifecycle"] or {}).items()))
    for note in data["notes"]:
        click.echo(f"note: {note}")
    table(_title(data, "Customers at risk"), ["id", "name", "P(alive)", "stage", "days since", "revenue", "CLV"],
          [[r["customer_id"], r["name"], _n(r["p_alive"], 3), r["lifecycle"], r["recency_days"], _n(r["monetary"]),
            _n(r["clv_probabilistic"])] for r in data["customers"]])
    for w in data["warnings"]:
        click.echo(f"warning: {w}", err=True)


@value.command("loyalty")
@_limit_option
@_json_option
@pass_app
def loyalty_cmd(app: AppContext, limit: int, as_json: bool) -> None:
    """Loyalty index 0..100: distribution and the most loyal customers with the points of each part."""
    data = _report(app, services.loyalty_report, limit=limit)
    if as_json:
        emit_json(data)
        return
    click.echo(f"{data['customers_with_index']:,} customers, mean index {_n(data['mean'], 1)}; "
               + ", ".join(f"{k}: {v:,}" for k, v in data["histogram"].items()))
    parts = list(data["weights"])
    table(_title(data, "Most loyal customers"), ["id", "name", "index", *parts],
          [[r["customer_id"], r["name"], _n(r["loyalty"], 1), *(_n(r["contributions"][p], 1) for p in parts)]
           for r in data["top"]])


@value.command("clv")
@click.option("--by", default="probabilistic", show_default=True, metavar="probabilistic|deterministic")
@_limit_option
@_plot_option
@_json_option
@pass_app
def clv_cmd(app: AppContext, by: str, limit: int, plot: Path | None, as_json: bool) -> None:
    """Customer lifetime value, deterministic and probabilistic (purchase model + Gamma-Gamma); optional PNG."""
    data = _report(app, services.clv_report, limit=limit, by=by, plot=plot)
    if as_json:
        emit_json(data)
        return
    if data["plot"]:
        click.echo(f"plot written to {data['plot']}")
    s = data["settings"]
    click.echo(f"margin {_pct(s['margin'])}, discount {_pct(s['discount_rate'])}/year, horizon {s['horizon_months']} months, "
               f"retention {_pct(s['retention'])}/year, acquisition cost {_n(s['acquisition_cost'])}")
    for kind in ("deterministic", "probabilistic"):
        d = data[kind]
        click.echo(f"{kind}: total {_n(d['total'])}, mean {_n(d['mean'])} over {d['customers']:,} customers")
    if data["note"]:
        click.echo(data["note"])
    table(_title(data, f"Top customers by {data['by']} CLV"), ["id", "name", "tier", "CLV prob.", "CLV det.", "exp. purchases", "P(alive)"],
          [[r["customer_id"], r["name"], r["tier"], _n(r["clv_probabilistic"]), _n(r["clv_deterministic"]),
            _n(r["expected_purchases"], 1), _n(r["p_alive"], 3)] for r in data["top"]])
    for w in data["warnings"]:
        click.echo(f"warning: {w}", err=True)


@value.command("show")
@click.argument("customer_key", metavar="CUSTOMER")
@_json_option
@pass_app
def show_cmd(app: AppContext, customer_key: str, as_json: bool) -> None:
    """One customer's values from the latest run and its history (CUSTOMER: id or external ref)."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        data = services.customer_value(uow, _resolve(uow, customer_key))
    if as_json:
        emit_json(data)
        return
    c = data["customer"]
    if data["values"] is None:
        click.echo(f"customer {c['id']} ({c['name']}) is not in the run of {data['run']['as_of']}")
    else:
        fields(f"Customer {c['id']}: {c['name']} (as of {data['run']['as_of']})",
               {k: _short(v) for k, v in data["values"].items() if k != "customer_id" and not k.startswith("loyalty_")})
        fields("Loyalty index parts (points)", {k: _n(v, 1) for k, v in data["loyalty_contributions"].items()})
    table("History", ["as of", "tier", "segment", "lifecycle", "revenue", "CLV"],
          [[h["as_of"], h["tier"], h["segment"], h["lifecycle"], _n(h["monetary"]), _n(h["clv_probabilistic"])]
           for h in data["history"]])


# -- models -------------------------------------------------------------------------------------

def _require(name: str, value: Any) -> Any:
    if value is None:
        raise InvalidInput(f"invalid input: --{name.replace('_', '-')} is required", [(name, "required")])
    return value


@value.command("fit")
@click.option("--calibration-end", type=DATE, help="Last day of the calibration period (required).")
@click.option("--model", metavar="auto|bg_nbd|mbg_nbd|pareto_nbd", help="Purchase model (default: the model setting).")
@click.option("--time-unit", metavar="auto|days|weeks|months")
@click.option("--currency", metavar="CODE", help="Fit on this currency (default: the only one, or the majority).")
@_json_option
@pass_app
def fit_cmd(app: AppContext, calibration_end: dt.date | None, model: str | None, time_unit: str | None,
            currency: str | None, as_json: bool) -> None:
    """Fit a purchase model and Gamma-Gamma by maximum likelihood; print parameters and log-likelihoods."""
    cal = _require("calibration_end", calibration_end)
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        settings = services.settings_for(uow, {"time_unit": time_unit, "currency": currency})
        data = services.fit_models(uow, cal, settings, model=model)
    if as_json:
        emit_json(data)
        return
    click.echo(f"calibration up to {data['calibration_end']} ({data['time_unit']}): {data['customers']:,} customers, "
               f"{data['repeat_customers']:,} with repeat purchases; fitted in {data['seconds']:.2f} s")
    for name, params in ((TITLES[data["model"]], data["purchase"]), ("Gamma-Gamma", data["gamma_gamma"])):
        if params is None:
            continue
        shown = {k: (_n(v, 4) if isinstance(v, float) else v) for k, v in params.items()}
        fields(name, shown)
        if params.get("failure"):
            click.echo(f"warning: {name}: {params['failure']}", err=True)
    for w in data["warnings"]:
        click.echo(f"warning: {w}", err=True)


@value.command("validate")
@click.option("--calibration-end", type=DATE, help="Last day of the calibration period (required).")
@click.option("--holdout-end", type=DATE, help="Last day of the holdout period (required).")
@click.option("--model", metavar="bg_nbd|mbg_nbd|pareto_nbd|all", help="Model(s) to compare (default: the model setting; auto: all).")
@click.option("--time-unit", metavar="auto|days|weeks|months")
@click.option("--currency", metavar="CODE")
@click.option("--top", type=COUNT, default=20, show_default=True, help="Customers to list (--json lists all).")
@_plot_option
@_json_option
@pass_app
def validate_cmd(app: AppContext, calibration_end: dt.date | None, holdout_end: dt.date | None, model: str | None,
                 time_unit: str | None, currency: str | None, top: int, plot: Path | None, as_json: bool) -> None:
    """Predicted vs actual repeat purchases in the holdout, per model; names the best (lowest RMSE)."""
    cal = _require("calibration_end", calibration_end)
    hold = _require("holdout_end", holdout_end)
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        settings = services.settings_for(uow, {"time_unit": time_unit, "currency": currency})
        data = services.validate_models(uow, cal, hold, settings, model=model, plot=plot)
    if as_json:
        emit_json(data)
        return
    click.echo(f"holdout {data['calibration_end']} .. {data['holdout_end']} ({_n(data['holdout_length'], 1)} "
               f"{data['time_unit']}), {data['total']['customers']:,} customers")
    rows = []
    for name, m in data["models"].items():
        if "error" in m:
            rows.append([name, "–", "–", "–", "–", "–", "–", m["error"]])
            continue
        t = m["total"]
        rows.append([name, _n(m["purchase"]["log_likelihood"], 1), _n(t["predicted"], 1), _n(t["actual"], 0),
                     _n(t["error_pct"], 1), _n(t["mae"], 3), _n(t["rmse"], 3), m["purchase"]["failure"] or "converged"])
    table("Models on the holdout", ["model", "log-lik.", "predicted", "actual", "error %", "MAE", "RMSE", "fit"], rows)
    names = list(data["by_frequency"][0]["predicted_means"]) if data["by_frequency"] else []
    table("Mean holdout repeat purchases by calibration repeats", ["repeats", "customers", "actual", *names],
          [[b["frequency"], b["customers"], _n(b["actual_mean"], 3), *(_n(b["predicted_means"][k], 3) for k in names)]
           for b in data["by_frequency"]])
    table(f"Top {top} customers by prediction ({data['listed_model']})", ["id", "x", "t_x", "T", "predicted", "actual"],
          [[c["customer_id"], c["frequency"], _n(c["recency"], 1), _n(c["T"], 1), _n(c["predicted"], 2), c["actual"]]
           for c in data["customers"][:top]])
    if data["best"]:
        click.echo(f"best model on this holdout: {data['best']} ({data['best_reason']})")
    else:
        click.echo(data["best_reason"])
    if data["plot"]:
        click.echo(f"plot written to {data['plot']}")
    for w in data["warnings"]:
        click.echo(f"warning: {w}", err=True)
