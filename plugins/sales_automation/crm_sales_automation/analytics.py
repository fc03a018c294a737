"""Sales analytics, each one a few GROUP BY queries over whole tables (never a query per deal).

* :func:`weighted_pipeline` -- sum of amount x probability by stage, owner or pipeline;
* :func:`forecast` -- open deals by month of expected close (and owner or pipeline), quota
  attainment per owner and month, optionally with probabilities learned from history;
* :func:`learned_probabilities` -- win rates by stage and age of the deal, with the Brier score
  of the stage defaults and of the learned rates on closed deals;
* :func:`funnel`, :func:`performance`, :func:`stale` -- conversion from each stage to the next,
  win rate, cycle time, rep performance, stale deals and overdue work.

Currencies are never added together: every amount is per currency, unless the caller gives
exchange rates (``rates={"USD": Decimal("0.92")}`` with ``to="EUR"``), in which case every
currency present must have a rate. Probabilities are whole percents, so weighted values are
summed in SQL as ``amount * probability`` and divided by 100 once, exactly, in Decimal.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from crm_sales_automation import visibility as visible
from crm_sales_automation.enums import OpportunityStatus, StageKind
from crm_sales_automation.models import Activity, Opportunity, Pipeline, Quota, Stage, StageChange
from crm_sales_automation.services._common import moment, settings_for
from crmcore.db.dates import days_between
from crmcore.errors import InvalidInput
from crmcore.models import Customer, User
from crmcore.uow import UnitOfWork

CENT = Decimal("0.01")
#: Age of a deal (days since creation) when it entered a stage: the buckets learned rates use.
AGE_BUCKETS: tuple[tuple[int, int | None, str], ...] = ((0, 30, "0-29d"), (30, 90, "30-89d"), (90, 180, "90-179d"),
                                                        (180, None, "180d+"))
#: Strength of the stage default as a prior (pseudo-deals) when learning a stage's win rate.
PRIOR_STRENGTH = 5.0
GROUPS = ("stage", "owner", "pipeline")


def _money(v: Any) -> Decimal:
    return Decimal(v or 0).quantize(CENT)


def _dialect(uow: UnitOfWork) -> str:
    return uow.session.get_bind().dialect.name


def month_of(uow: UnitOfWork, col: Any) -> ColumnElement[str]:
    """'YYYY-MM' of a date or timestamp column, in SQL."""
    if _dialect(uow) == "postgresql":
        return func.to_char(col, "YYYY-MM")
    return func.strftime("%Y-%m", col)


def _probability() -> ColumnElement[int]:
    """A deal's probability: set by hand, else its stage's default."""
    return func.coalesce(Opportunity.probability, Stage.probability)


@dataclass(frozen=True)
class Conversion:
    """Exchange rates given by the user: 1 unit of a currency = rate units of ``to``."""

    to: str
    rates: Mapping[str, Decimal]

    def apply(self, amount: Decimal, currency: str) -> Decimal:
        if currency == self.to:
            return amount
        if currency not in self.rates:
            raise InvalidInput(f"invalid input: rate: no exchange rate for {currency} -> {self.to} (give --rate {currency}=...)",
                               [("rate", f"missing for {currency}")])
        return (amount * self.rates[currency]).quantize(CENT)


def parse_rates(pairs: tuple[str, ...] | list[str], to: str | None) -> Conversion | None:
    """``("USD=0.92", "GBP=1.17")`` + ``to="EUR"`` -> a :class:`Conversion` (None without rates)."""
    if not pairs and not to:
        return None
    if not to:
        raise InvalidInput("invalid input: --rate needs --to CURRENCY (the currency to convert into)")
    from crmcore.sdk import parse_currency  # the core's ISO 4217 check

    try:
        target = parse_currency(to)
    except ValueError as e:
        raise InvalidInput(f"invalid input: to: {e}") from None
    rates: dict[str, Decimal] = {}
    for p in pairs:
        code, sep, value = p.partition("=")
        try:
            cur = parse_currency(code)
            rate = Decimal(value.strip()) if sep else Decimal("nan")
        except (ValueError, ArithmeticError) as e:
            raise InvalidInput(f"invalid input: rate: {p!r}: {e if isinstance(e, ValueError) else 'not a number'} (use CUR=RATE)") from None
        if not rate.is_finite() or rate <= 0:
            raise InvalidInput(f"invalid input: rate: {p!r}: a rate must be a positive number (use CUR=RATE)")
        rates[cur] = rate
    return Conversion(target, rates)


def _total(rows: list[dict[str, Any]], conversion: Conversion | None, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows per currency, or converted into one currency and summed per group."""
    if conversion is None:
        return rows
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        k = tuple(r[x] for x in keys)
        m = merged.setdefault(k, {**{x: r[x] for x in keys}, "currency": conversion.to, "deals": 0,
                                  "amount": Decimal("0.00"), "weighted": Decimal("0.00")})
        m["deals"] += r["deals"]
        for f in ("amount", "weighted"):
            m[f] += conversion.apply(r[f], r["currency"])
        for f in ("quota", "won", "forecast"):
            if f in r and r[f] is not None:
                m[f] = m.get(f) or Decimal("0.00")
                m[f] += conversion.apply(r[f], r["currency"])
    return list(merged.values())


# =============================================================================================
# weighted pipeline
# =============================================================================================

def weighted_pipeline(uow: UnitOfWork, by: str = "stage", conversion: Conversion | None = None) -> list[dict[str, Any]]:
    """Open deals' count, amount and weighted amount (amount x probability) per group and currency."""
    if by not in GROUPS:
        raise InvalidInput(f"invalid input: by: {by!r} (choose {', '.join(GROUPS)})")
    columns: dict[str, list[Any]] = {"stage": [Pipeline.name, Stage.position, Stage.name], "owner": [User.username],
                                     "pipeline": [Pipeline.name]}
    key = columns[by]
    q = (select(*key, Opportunity.currency, func.count(), func.sum(Opportunity.amount),
                func.sum(Opportunity.amount * _probability()))
         .select_from(Opportunity).join(Stage, Stage.id == Opportunity.stage_id)
         .join(Pipeline, Pipeline.id == Opportunity.pipeline_id).outerjoin(User, User.id == Opportunity.owner_id)
         .where(Opportunity.status == OpportunityStatus.OPEN, visible.deals(uow))
         .group_by(*key, Opportunity.currency).order_by(*key, Opportunity.currency))
    rows = []
    for r in uow.session.execute(q):
        row: dict[str, Any] = {"stage": {"pipeline": r[0], "stage": r[2]}, "owner": {"owner": r[0]},
                               "pipeline": {"pipeline": r[0]}}[by]
        n = len(key)
        rows.append({**row, "currency": r[n], "deals": r[n + 1], "amount": _money(r[n + 2]),
                     "weighted": (Decimal(r[n + 3] or 0) / 100).quantize(CENT)})
    keys = {"stage": ("pipeline", "stage"), "owner": ("owner",), "pipeline": ("pipeline",)}[by]
    return _total(rows, conversion, keys)


# =============================================================================================
# learned probabilities (stage x age) and their Brier score
# =============================================================================================

def _bucket(age: ColumnElement[float]) -> ColumnElement[int]:
    whens = [(age < hi, i) for i, (_, hi, _) in enumerate(AGE_BUCKETS) if hi is not None]
    return case(*whens, else_=len(AGE_BUCKETS) - 1)


def learned_probabilities(uow: UnitOfWork) -> dict[str, Any]:
    """Win rates learned from closed deals by (stage, age of the deal when it entered the stage).

    Each visit of a closed deal to an open stage is one observation (won = 1). The learned rate
    of a cell is ``(wins + m * p0) / (n + m)``: the stage default ``p0`` acts as ``m`` =
    :data:`PRIOR_STRENGTH` pseudo-deals, so a cell with little history stays near the default.
    The Brier score of each forecast is the mean squared error over the same observations;
    the learned one is computed leave-one-out (each deal scored by the rate of the others),
    so it is not flattered by fitting its own data. Everything comes from one GROUP BY.
    """
    age = days_between(StageChange.changed_at, Opportunity.created_at)
    bucket = _bucket(age).label("bucket")
    won = func.sum(case((Opportunity.status == OpportunityStatus.WON, 1), else_=0))
    q = (select(Stage.id, Pipeline.name, Stage.name, Stage.position, Stage.probability, bucket, func.count(), won)
         .select_from(StageChange).join(Opportunity, Opportunity.id == StageChange.opportunity_id)
         .join(Stage, Stage.id == StageChange.to_stage_id).join(Pipeline, Pipeline.id == Stage.pipeline_id)
         .where(Opportunity.status.in_([OpportunityStatus.WON, OpportunityStatus.LOST]), Stage.kind == StageKind.OPEN,
                visible.deals(uow))
         .group_by(Stage.id, Pipeline.name, Stage.name, Stage.position, Stage.probability, bucket)
         .order_by(Pipeline.name, Stage.position, bucket))
    cells = []
    n_obs, sq_default, sq_learned = 0, 0.0, 0.0
    m = PRIOR_STRENGTH
    for stage_id, pipeline, stage, _pos, p0pct, b, n, wins in uow.session.execute(q):
        p0, n, wins = p0pct / 100.0, int(n), int(wins or 0)
        rate = (wins + m * p0) / (n + m)
        cells.append({"stage_id": stage_id, "pipeline": pipeline, "stage": stage, "age": AGE_BUCKETS[int(b)][2],
                      "bucket": int(b), "deals": n, "won": wins, "default": p0pct, "learned": round(100 * rate, 1)})
        loo_won = (wins - 1 + m * p0) / (n - 1 + m)  # a won deal, scored without itself
        loo_lost = (wins + m * p0) / (n - 1 + m)
        sq_default += wins * (1 - p0) ** 2 + (n - wins) * p0 ** 2
        sq_learned += wins * (1 - loo_won) ** 2 + (n - wins) * loo_lost ** 2
        n_obs += n
    brier = None if n_obs == 0 else {"stage_defaults": round(sq_default / n_obs, 4),
                                     "learned": round(sq_learned / n_obs, 4), "observations": n_obs}
    better = None if brier is None else ("learned" if brier["learned"] < brier["stage_defaults"] else "stage_defaults")
    return {"cells": cells, "brier": brier, "trust": better,
            "age_buckets": [b[2] for b in AGE_BUCKETS], "prior_strength": m}


def _learned_case(cells: list[dict[str, Any]], entered_age: ColumnElement[float]) -> ColumnElement[Any]:
    """SQL CASE: the learned rate (percent) of a deal's (stage, age bucket); the stage default elsewhere."""
    bucket = _bucket(entered_age)
    whens = [(and_(Opportunity.stage_id == c["stage_id"], bucket == c["bucket"]), literal(c["learned"])) for c in cells]
    return case(*whens, else_=cast(Stage.probability, Float)) if whens else cast(Stage.probability, Float)


# =============================================================================================
# forecast
# =============================================================================================

FORECAST_BY = ("month", "owner", "pipeline")


def forecast(uow: UnitOfWork, by: str = "month", *, learned: bool = False,
             conversion: Conversion | None = None) -> dict[str, Any]:
    """Open deals by month of expected close (lost deals never count, won ones are 'won').

    ``by="owner"`` adds each owner's quota, the deals won in the month and the attainment
    (won / quota) and forecast attainment ((won + weighted open) / quota) per month and currency.
    ``learned=True`` weights deals without a hand-set probability by the learned rate of their
    stage and age (see :func:`learned_probabilities`) instead of the stage default.
    """
    if by not in FORECAST_BY:
        raise InvalidInput(f"invalid input: by: {by!r} (choose {', '.join(FORECAST_BY)})")
    month = month_of(uow, Opportunity.expected_close).label("month")
    prob: ColumnElement[Any] = _probability()
    learned_info = None
    if learned:
        learned_info = learned_probabilities(uow)
        entered = (select(StageChange.opportunity_id, func.max(StageChange.changed_at).label("entered"))
                   .group_by(StageChange.opportunity_id).subquery())
        age = days_between(entered.c.entered, Opportunity.created_at)
        prob = func.coalesce(cast(Opportunity.probability, Float), _learned_case(learned_info["cells"], age))
    # one GROUP BY over the deals, keyed by ids (names are looked up for the few groups after);
    # by owner, the won deals ride along, grouped by the month they were won in
    extras: dict[str, list[Any]] = {"month": [], "owner": [Opportunity.owner_id], "pipeline": [Opportunity.pipeline_id]}
    extra = extras[by]
    status_col: list[Any] = [Opportunity.status] if by == "owner" else []
    if by == "owner":
        month = case((Opportunity.status == OpportunityStatus.WON, month_of(uow, Opportunity.closed_at)),
                     else_=month_of(uow, Opportunity.expected_close)).label("month")
        wanted: ColumnElement[bool] = Opportunity.status.in_([OpportunityStatus.OPEN, OpportunityStatus.WON])
    else:
        wanted = Opportunity.status == OpportunityStatus.OPEN
    q = (select(*extra, *status_col, month, Opportunity.currency, func.count(), func.sum(Opportunity.amount),
                func.sum(Opportunity.amount * prob))
         .select_from(Opportunity).join(Stage, Stage.id == Opportunity.stage_id))
    if learned:
        q = q.outerjoin(entered, entered.c.opportunity_id == Opportunity.id)
    q = q.where(wanted, visible.deals(uow)).group_by(*extra, *status_col, month, Opportunity.currency)
    names: dict[Any, Any] = {}
    if by == "owner":
        names = dict(uow.session.execute(select(User.id, User.username)).all())
    elif by == "pipeline":
        names = dict(uow.session.execute(select(Pipeline.id, Pipeline.name)).all())
    rows: list[dict[str, Any]] = []
    won: dict[tuple[Any, str, str], Decimal] = {}
    keyname = {"month": (), "owner": ("owner",), "pipeline": ("pipeline",)}[by]
    for g in uow.session.execute(q):
        key = [names.get(g[0]) for _ in keyname]
        k = len(extra) + len(status_col)
        if status_col and OpportunityStatus(g[1]) is OpportunityStatus.WON:
            won[(key[0], g[k], g[k + 1])] = won.get((key[0], g[k], g[k + 1]), Decimal("0.00")) + _money(g[k + 3])
            continue
        weighted = Decimal(str(g[k + 4] or 0)) / 100
        rows.append({**dict(zip(keyname, key)), "month": g[k] or "no date", "currency": g[k + 1],
                     "deals": g[k + 2], "amount": _money(g[k + 3]), "weighted": weighted.quantize(CENT)})
    if by == "owner":
        rows = _with_quotas(uow, rows, won)
    rows.sort(key=lambda x: tuple(str(x.get(n) or "") for n in (*keyname, "month", "currency")))
    rows = _total(rows, conversion, (*keyname, "month"))
    if by == "owner":
        for r in rows:
            q_ = r.get("quota")
            r["attainment"] = None if not q_ else round(float(r["won"] / q_) * 100, 1)
            r["forecast_attainment"] = None if not q_ else round(float((r["won"] + r["weighted"]) / q_) * 100, 1)
    totals: dict[str, dict[str, Decimal]] = {}
    for r in rows:
        t = totals.setdefault(r["currency"], {"amount": Decimal("0.00"), "weighted": Decimal("0.00")})
        t["amount"] += r["amount"]
        t["weighted"] += r["weighted"]
    out: dict[str, Any] = {"by": by, "probabilities": "learned" if learned else "stage defaults", "rows": rows,
                           "totals": totals}
    if learned_info is not None:
        out["brier"] = learned_info["brier"]
        out["trust"] = learned_info["trust"]
    return out


def _with_quotas(uow: UnitOfWork, rows: list[dict[str, Any]], won: dict[tuple[Any, str, str], Decimal]) -> list[dict[str, Any]]:
    """Add quota and won amount per (owner, month, currency); months with a quota but no open deal appear too."""
    qmonth = month_of(uow, Quota.period)
    quotas = {(u, m, c): _money(a) for u, m, c, a in uow.session.execute(  # an "own" user: their own quotas
        select(User.username, qmonth, Quota.currency, Quota.amount).join(User, User.id == Quota.owner_id)
        .where(uow.visibility.customer_clause(Quota.owner_id)))}
    index = {(r["owner"], r["month"], r["currency"]): r for r in rows}
    for key in set(quotas) | {k for k in won if k in quotas}:
        if key not in index:
            index[key] = {"owner": key[0], "month": key[1], "currency": key[2], "deals": 0,
                          "amount": Decimal("0.00"), "weighted": Decimal("0.00")}
    for key, r in index.items():
        r["quota"] = quotas.get(key)
        r["won"] = won.get(key, Decimal("0.00"))
    return list(index.values())


# =============================================================================================
# funnel, performance, stale
# =============================================================================================

def funnel(uow: UnitOfWork, pipeline: str | None = None) -> list[dict[str, Any]]:
    """Per pipeline: deals that reached each stage, conversion to the next, win rate, cycle time.

    A deal "reached" every stage up to the furthest one it got to (``reached_position``, kept
    on every move); won deals reached all open stages. One GROUP BY over the deals (furthest
    stage x status, with the won deals' cycle days summed), then cumulative sums over the few
    stages in Python.
    """
    cycle = days_between(Opportunity.closed_at, Opportunity.created_at)
    reached: dict[tuple[int, int], int] = {}
    closed: dict[int, list[float]] = {}  # pipeline -> [won, lost, sum of won cycle days]
    for pid, pos, status, n, cyc in uow.session.execute(
            select(Opportunity.pipeline_id, Opportunity.reached_position, Opportunity.status, func.count(),
                   func.sum(case((Opportunity.status == OpportunityStatus.WON, cycle))))
            .where(visible.deals(uow))
            .group_by(Opportunity.pipeline_id, Opportunity.reached_position, Opportunity.status)):
        reached[(pid, pos)] = reached.get((pid, pos), 0) + n
        acc = closed.setdefault(pid, [0, 0, 0.0])
        st = OpportunityStatus(status)
        if st is OpportunityStatus.WON:
            acc[0] += n
            acc[2] += float(cyc or 0)
        elif st is OpportunityStatus.LOST:
            acc[1] += n
    q = select(Pipeline).order_by(Pipeline.is_default.desc(), Pipeline.name)
    if pipeline:
        from crm_sales_automation.services.pipelines import check_pipeline_name

        check_pipeline_name(pipeline)
        q = q.where(Pipeline.name == pipeline)
    pipes = list(uow.session.scalars(q))
    if pipeline and not pipes:
        from crmcore.errors import NotFound

        raise NotFound("pipeline", repr(pipeline))
    out = []
    for p in pipes:
        stages = [s for s in uow.session.scalars(select(Stage).where(Stage.pipeline_id == p.id).order_by(Stage.position))
                  if s.kind is not StageKind.LOST]
        counts = [sum(n for (pid, pos), n in reached.items() if pid == p.id and pos >= s.position) for s in stages]
        rows = []
        for i, s in enumerate(stages):
            nxt = counts[i + 1] if i + 1 < len(stages) else None
            rows.append({"stage": s.name, "reached": counts[i],
                         "to_next": None if nxt is None or counts[i] == 0 else round(100 * nxt / counts[i], 1)})
        w, lo, cyc = closed.get(p.id, [0, 0, 0.0])
        w, lo = int(w), int(lo)
        out.append({"pipeline": p.name, "stages": rows, "won": w, "lost": lo,
                    "win_rate": None if w + lo == 0 else round(100 * w / (w + lo), 1),
                    "avg_cycle_days": None if w == 0 else round(cyc / w, 1)})
    return out


def performance(uow: UnitOfWork) -> list[dict[str, Any]]:
    """Per rep: won, lost, win rate, average cycle (days) of won deals, activities done, open and
    weighted pipeline per currency."""
    cycle = days_between(Opportunity.closed_at, Opportunity.created_at)
    reps: dict[str | None, dict[str, Any]] = {}

    def rep(name: str | None) -> dict[str, Any]:
        return reps.setdefault(name, {"owner": name, "won": 0, "lost": 0, "win_rate": None, "avg_cycle_days": None,
                                      "activities_done": 0, "open_deals": 0, "pipeline": {}, "weighted": {}, "won_amount": {}})
    for name, w, lo, c in uow.session.execute(
            select(User.username, func.sum(case((Opportunity.status == OpportunityStatus.WON, 1), else_=0)),
                   func.sum(case((Opportunity.status == OpportunityStatus.LOST, 1), else_=0)),
                   func.avg(case((Opportunity.status == OpportunityStatus.WON, cycle))))
            .select_from(Opportunity).outerjoin(User, User.id == Opportunity.owner_id)
            .where(Opportunity.status != OpportunityStatus.OPEN, visible.deals(uow)).group_by(User.username)):
        r = rep(name)
        r["won"], r["lost"] = int(w or 0), int(lo or 0)
        r["win_rate"] = None if r["won"] + r["lost"] == 0 else round(100 * r["won"] / (r["won"] + r["lost"]), 1)
        r["avg_cycle_days"] = None if c is None else round(float(c), 1)
    for name, cur, status, n, amount, weighted in uow.session.execute(
            select(User.username, Opportunity.currency, Opportunity.status, func.count(), func.sum(Opportunity.amount),
                   func.sum(Opportunity.amount * _probability()))
            .select_from(Opportunity).join(Stage, Stage.id == Opportunity.stage_id)
            .outerjoin(User, User.id == Opportunity.owner_id)
            .where(Opportunity.status != OpportunityStatus.LOST, visible.deals(uow))
            .group_by(User.username, Opportunity.currency, Opportunity.status)):
        r = rep(name)
        if OpportunityStatus(status) is OpportunityStatus.OPEN:
            r["open_deals"] += n
            r["pipeline"][cur] = _money(amount)
            r["weighted"][cur] = (Decimal(weighted or 0) / 100).quantize(CENT)
        else:
            r["won_amount"][cur] = _money(amount)
    for name, n in uow.session.execute(
            select(User.username, func.count()).select_from(Activity).outerjoin(User, User.id == Activity.owner_id)
            .where(Activity.done_at.is_not(None), visible.activities(uow)).group_by(User.username)):
        rep(name)["activities_done"] = n
    return sorted(reps.values(), key=lambda r: (r["owner"] is None, r["owner"] or ""))


def stale(uow: UnitOfWork, days: int | None = None, as_of: dt.date | None = None) -> dict[str, Any]:
    """Open deals with no activity for ``days`` (setting ``stale_days``), deals past their
    expected close, and open activities past due; as of noon UTC of ``as_of`` (default: now)."""
    days = settings_for(uow).stale_days if days is None else days
    if days < 1:
        raise InvalidInput(f"invalid input: days: must be >= 1, got {days}")
    now = moment(as_of)
    last_done = (select(Activity.opportunity_id, func.max(Activity.done_at).label("last"))
                 .where(Activity.done_at.is_not(None), Activity.opportunity_id.is_not(None))
                 .group_by(Activity.opportunity_id).subquery())
    last = func.coalesce(last_done.c.last, Opportunity.created_at)
    cutoff = now - dt.timedelta(days=days)
    base = (select(Opportunity.id, Opportunity.title, Customer.name, User.username, Stage.name, Opportunity.amount,
                   Opportunity.currency, Opportunity.expected_close, last.label("last"))
            .select_from(Opportunity).join(Customer, Customer.id == Opportunity.customer_id)
            .join(Stage, Stage.id == Opportunity.stage_id).outerjoin(User, User.id == Opportunity.owner_id)
            .outerjoin(last_done, last_done.c.opportunity_id == Opportunity.id)
            .where(Opportunity.status == OpportunityStatus.OPEN, visible.deals(uow)))

    def rows(q: Any) -> list[dict[str, Any]]:
        out = []
        for i, t, c, o, s, a, cur, ec, la in uow.session.execute(q.order_by(Opportunity.id)):
            la = la if isinstance(la, dt.datetime) else dt.datetime.fromisoformat(str(la))
            la = la if la.tzinfo else la.replace(tzinfo=dt.UTC)
            out.append({"id": i, "title": t, "customer": c, "owner": o, "stage": s, "amount": _money(a), "currency": cur,
                        "expected_close": ec, "last_activity": la, "idle_days": (now - la).days})
        return out
    overdue_acts = (select(Activity.id, Activity.kind, Activity.subject, Activity.due_at, User.username)
                    .outerjoin(User, User.id == Activity.owner_id)
                    .where(Activity.done_at.is_(None), Activity.due_at < now, visible.activities(uow))
                    .order_by(Activity.due_at, Activity.id))
    return {
        "stale_days": days,
        "stale": rows(base.where(last < cutoff)),
        "overdue_deals": rows(base.where(Opportunity.expected_close < now.date())),
        "overdue_activities": [{"id": i, "kind": k.value if hasattr(k, "value") else k, "subject": s, "due_at": d,
                                "owner": o} for i, k, s, d, o in uow.session.execute(overdue_acts)],
    }
