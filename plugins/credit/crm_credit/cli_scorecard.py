"""``crm credit scorecard …``: train, evaluate, show, apply and monitor trained scorecards.

Bad input is one ``error:`` line with exit code 1 (the core's CRMGroup prints crmcore errors);
``monitor`` also exits 1 when the population drifted past ``--fail-above`` (for cron).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from crm_credit import monitoring
from crm_credit import scorecard as sc_svc
from crm_credit import scorecard_apply as applying
from crm_credit.scorecard_train import TRENDS, TrainSettings
from crmcore.errors import InvalidInput
from crmcore.sdk import AppContext, CRMGroup, emit_json, pass_app, table


def _json_option(f: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")(f)


def _floats(text: str, option: str) -> tuple[float, ...]:
    try:
        return tuple(sorted({float(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        raise InvalidInput(f"invalid input: {option}: expected numbers separated by commas, got {text!r}") from None


@click.group(cls=CRMGroup)
def scorecard() -> None:
    """Train, evaluate, show, apply and monitor WoE/logistic scorecards."""


@scorecard.command("train")
@click.argument("data", metavar="DATA.csv")
@click.option("--target", required=True, help="the outcome column")
@click.option("--bad", required=True, help="the outcome value that means bad")
@click.option("--pdo", type=float, default=20, show_default=True, help="points to double the odds")
@click.option("--base-score", type=float, default=600, show_default=True)
@click.option("--base-odds", type=float, default=50, show_default=True, help="good:bad odds at the base score")
@click.option("--features", help="comma-separated feature columns (default: every column but the target)")
@click.option("--iv-min", default="0,0.01,0.02,0.05", show_default=True,
              help="information-value thresholds; cross-validation picks one (give one to fix it)")
@click.option("--iv-max", type=float, help="drop features above this IV (suspiciously strong)")
@click.option("--min-bin-size", type=float, default=0.05, show_default=True, help="smallest bin, a share of the rows")
@click.option("--monotonic-trend", type=click.Choice(TRENDS), default="auto_asc_desc", show_default=True,
              help="WoE trend of numeric features")
@click.option("--max-missing", type=float, default=0.95, show_default=True, help="drop features missing in more rows")
@click.option("--max-identical", type=float, default=0.95, show_default=True, help="drop features with one value in more rows")
@click.option("--folds", type=int, default=5, show_default=True, help="cross-validation folds")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--output", required=True, metavar="MODEL", help="the model file to write (JSON)")
@_json_option
def sc_train(data: str, target: str, bad: str, pdo: float, base_score: float, base_odds: float, features: str | None,
             iv_min: str, iv_max: float | None, min_bin_size: float, monotonic_trend: str, max_missing: float,
             max_identical: float, folds: int, seed: int, output: str, as_json: bool) -> None:
    """Screen, bin (monotonic WoE), choose the IV threshold and C by cross-validation, scale to points."""
    feats = [f.strip() for f in features.split(",") if f.strip()] if features else None
    s = TrainSettings(iv_thresholds=_floats(iv_min, "--iv-min"), iv_max=iv_max, min_bin_size=min_bin_size,
                      monotonic_trend=monotonic_trend, max_missing=max_missing, max_identical=max_identical, folds=folds, seed=seed)
    model = sc_svc.train(data, target, bad, pdo=pdo, base_score=base_score, base_odds=base_odds, features=feats,
                         name=Path(output).stem, settings=s)
    sha = sc_svc.save(model, output)
    iv = {f.name: round(f.iv, 4) for f in model.features}
    if as_json:
        emit_json({"model": output, "sha256": sha, "rows": model.n_rows, "bad_rate": model.bad_rate, "iv": iv,
                   "train": model.train_metrics, "cv": model.cv, "dropped": model.dropped})
        return
    table("Kept features", ["feature", "type", "bins", "IV"],
          [[f.name, f.type, len(f.points), round(f.iv, 4)] for f in sorted(model.features, key=lambda f: -f.iv)])
    if model.dropped:
        table("Dropped features", ["feature", "why"], [[d["feature"], d["reason"]] for d in model.dropped])
    m, cv = model.train_metrics, model.cv
    click.echo(f"cross-validated AUC {cv['auc']:.3f} ± {cv['auc_std']:.3f} ({cv['folds']} folds of the training data; "
               f"chosen: IV >= {cv['iv_min']:g}, C = {cv['c']:.3g})")
    click.echo(f"trained on {model.n_rows:,} rows (bad rate {model.bad_rate:.1%}): AUC {m['auc']:.3f}, Gini {m['gini']:.3f}, "
               f"KS {m['ks']:.3f} (training data); model written to {output}")


@scorecard.command("evaluate")
@click.argument("model", metavar="MODEL")
@click.argument("data", metavar="DATA.csv")
@click.option("--target", required=True)
@click.option("--bad", required=True)
@click.option("--bootstrap", "resamples", type=int, default=1000, show_default=True, help="resamples (0: no interval)")
@click.option("--level", type=float, default=0.95, show_default=True, help="confidence level of the intervals")
@click.option("--seed", type=int, default=0, show_default=True)
@_json_option
def sc_evaluate(model: str, data: str, target: str, bad: str, resamples: int, level: float, seed: int, as_json: bool) -> None:
    """AUC, Gini and KS of the model on (held-out) data, with bootstrap confidence intervals."""
    res = sc_svc.evaluate(model, data, target, bad, resamples=resamples, level=level, seed=seed)
    if as_json:
        emit_json(res)
        return
    ci = res.get("ci")

    def fmt(k: str) -> str:
        return f"{k.upper() if k != 'gini' else 'Gini'} {res[k]:.3f}" + (f" [{ci[k][0]:.3f}, {ci[k][1]:.3f}]" if ci else "")

    click.echo(f"{res['model']} on {res['rows']:,} rows (bad rate {res['bad_rate']:.1%}): "
               + ", ".join(fmt(k) for k in ("auc", "gini", "ks"))
               + (f" ({level:.0%} bootstrap intervals, {resamples} resamples)" if ci else ""))
    for d in res["dropped"]:
        click.echo(f"dropped in training: {d['feature']}: {d['reason']}")


@scorecard.command("show")
@click.argument("model", metavar="MODEL")
@_json_option
def sc_show(model: str, as_json: bool) -> None:
    """The points table of a model."""
    m, sha = sc_svc.load(model)
    rows = sc_svc.points_table(m)
    if as_json:
        emit_json({"name": m.name, "sha256": sha, "trained_at": m.trained_at, "pdo": m.pdo, "base_score": m.base_score,
                   "base_odds": m.base_odds, "target": m.target, "bad": m.bad, "train": m.train_metrics, "cv": m.cv,
                   "dropped": m.dropped, "points": rows})
        return
    table(f"Scorecard {m.name} (pdo {m.pdo:g}, {m.base_score:g} points at odds {m.base_odds:g}:1)", ["feature", "bin", "points", "IV"],
          [[r["feature"], r["bin"], r["points"], r["iv"]] for r in rows])


@scorecard.command("apply")
@click.argument("model", metavar="MODEL")
@click.option("--reasons", "top", type=int, default=4, show_default=True, help="reason codes kept per customer")
@_json_option
@pass_app
def sc_apply(app: AppContext, model: str, top: int, as_json: bool) -> None:
    """Score every active customer with the model, with reason codes, and record it (versioned by name)."""
    with app.crm().unit_of_work(app.actor) as uow:
        res = applying.apply(uow, model, top=top)
    if as_json:
        emit_json(res)
        return
    if res["lowest"]:
        table("Lowest scores", ["customer", "score", "lowered by (points lost against the best bin)"],
              [[r["customer_id"], r["score"], applying.reason_line(r["reasons"])] for r in res["lowest"]])
    if res["first_reasons"]:
        click.echo("first reason: " + ", ".join(f"{k} {v:,}" for k, v in res["first_reasons"].items()))
    click.echo(f"applied {res['name']} v{res['version']} (sha256 {res['sha256'][:12]}): {res['scored']:,} customer(s) scored, "
               f"mean {res['mean_score']}")


@scorecard.command("monitor")
@click.argument("model", metavar="MODEL")
@click.option("--file", "file", metavar="DATA.csv", help="compare this file's rows (default: the active customers)")
@click.option("--fail-above", type=float, default=monitoring.WATCH, show_default=True,
              help="exit 1 when the score's or a feature's PSI is above this")
@_json_option
@pass_app
def sc_monitor(app: AppContext, model: str, file: str | None, fail_above: float, as_json: bool) -> None:
    """Population stability index of the score and of each feature against the training population
    (< 0.1 stable, 0.1-0.25 watch, > 0.25 retrain). Exit 1 past --fail-above: fit for cron."""
    if file is not None:
        res = monitoring.monitor(model, file=file, fail_above=fail_above)
    else:
        with app.crm().unit_of_work(app.actor, read_only=True) as uow:
            res = monitoring.monitor(model, uow=uow, fail_above=fail_above)
    if as_json:
        emit_json(res)
    else:
        table(f"Stability of {res['model']}: {res['source']} ({res['rows']:,} rows) vs training ({res['training_rows']:,} rows)",
              ["feature", "PSI", "status"], [[f["feature"], f["psi"], f["status"]] for f in res["features"]])
        click.echo(f"score PSI {res['psi']:.4f}: {res['status']}")
    if res["exceeded"]:
        if not as_json:
            click.echo(f"drift: PSI above {fail_above:g}", err=True)
        click.get_current_context().exit(1)
