"""Why customers were lost, and how many stay: recorded churn reasons and observed retention.

* :func:`record_loss` -- a churn reason for a customer (natural, competitive, malicious -- left
  owing money --, negligent, or the configured list), from the CLI, the API, the console, or
  another plugin through our published ``value_customer_lost`` hook (credit's write-offs).
* :func:`churn_reasons_report` -- counts per reason and source, and the latest records.
* :func:`observed_retention` -- the share of customers buying in one year who buy again in the
  next, per cohort (year of first purchase) and period, from one ``GROUP BY`` of the entries
  (the run itself takes the latest pair of years from its one-pass statistics).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from sqlalchemy import case, func, literal, select, update

from crm_value_analysis import reads
from crm_value_analysis.models import ChurnReason
from crm_value_analysis.schemas import DATE_RANGE, ValueSettings
from crmcore.db.types import utcnow
from crmcore.errors import InvalidInput
from crmcore.models import Customer
from crmcore.uow import UnitOfWork

PERIOD_DAYS = 365


def _settings(uow: UnitOfWork) -> ValueSettings:
    from crm_value_analysis.run import settings_for  # the run module imports the analytics; keep this light

    return settings_for(uow)


def record_loss(uow: UnitOfWork, customer: int | str, reason: str, *, note: str | None = None, source: str = "manual",
                lost_on: dt.date | None = None) -> dict[str, Any]:
    """Record why a visible customer was lost (``customer.write``); InvalidInput for an unknown reason."""
    uow.require("customer.write")
    known = _settings(uow).churn_reasons
    key = (reason or "").strip().lower()
    if key not in known:
        raise InvalidInput(f"invalid input: reason: {reason!r} is not one of {', '.join(known)}", [("reason", "unknown")])
    if note is not None and len(note) > 500:
        raise InvalidInput("invalid input: note: at most 500 characters", [("note", "too long")])
    if not source or len(source) > 64:
        raise InvalidInput("invalid input: source: 1-64 characters", [("source", "invalid")])
    target = uow.customers.visible(customer)
    row = ChurnReason(customer_id=target.id, reason=key, note=note, source=source,
                      lost_on=lost_on or utcnow().date(), recorded_by=uow.actor[:64])
    uow.session.add(row)
    uow.session.flush()
    uow.audit.record("churn_reason", "customer", target.id, after={"reason": key, "source": source})
    return _row(row, target.name)


def record_loss_for_plugin(uow: UnitOfWork, customer_id: int, reason: str, note: str | None,
                           source: str) -> dict[str, Any] | None:
    """A loss another plugin reports (credit's write-off: "malicious", left owing money), under
    that plugin's own permission (its caller checked it, e.g. ``credit.writeoff``). A reason the
    integrator removed from ``churn_reasons`` records nothing: the plugin's own action must not
    fail for this plugin's configuration. One record per customer, reason and source and day."""
    key = (reason or "").strip().lower()
    if key not in _settings(uow).churn_reasons:
        return None
    customer = uow.customers.get(customer_id)
    today = utcnow().date()
    found = uow.session.scalar(select(ChurnReason).where(
        ChurnReason.customer_id == customer_id, ChurnReason.reason == key, ChurnReason.source == source[:64],
        ChurnReason.lost_on == today))
    if found is not None:
        return _row(found, customer.name)
    row = ChurnReason(customer_id=customer_id, reason=key, note=None if note is None else note[:500],
                      source=source[:64], lost_on=today, recorded_by=uow.actor[:64])
    uow.session.add(row)
    uow.session.flush()
    uow.audit.record("churn_reason", "customer", customer_id, after={"reason": key, "source": source[:64]})
    return _row(row, customer.name)


def _row(r: ChurnReason, name: str) -> dict[str, Any]:
    return {"id": r.id, "customer_id": r.customer_id, "name": name, "reason": r.reason, "note": r.note,
            "source": r.source, "lost_on": r.lost_on.isoformat(), "recorded_by": r.recorded_by}


def churn_reasons_report(uow: UnitOfWork, limit: int = 20) -> dict[str, Any]:
    """Lost customers per reason and source (the whole base needs ``value.report`` for an "own"
    user, like every value report), and the latest visible records."""
    uow.require("customer.read")
    if uow.visibility.own_only:
        uow.require("value.report")
    cr = ChurnReason
    counts: dict[str, dict[str, int]] = {}
    for reason, source, n in uow.session.execute(select(cr.reason, cr.source, func.count()).group_by(cr.reason, cr.source)):
        counts.setdefault(reason, {})[source] = int(n)
    latest = uow.session.execute(
        select(cr, Customer.name).join(Customer, Customer.id == cr.customer_id)
        .where(uow.visibility.customer_clause(Customer.owner_id)).order_by(cr.lost_on.desc(), cr.id.desc()).limit(limit)).all()
    return {"reasons": _settings(uow).churn_reasons,
            "by_reason": {k: {"total": sum(v.values()), "by_source": v} for k, v in sorted(counts.items())},
            "latest": [_row(r, name) for r, name in latest]}


def merge_rows(uow: UnitOfWork, source_id: int, target_id: int) -> int:
    """Re-point a merged customer's churn reasons (they stay history of the surviving customer)."""
    res: Any = uow.session.execute(update(ChurnReason).where(ChurnReason.customer_id == source_id)
                              .values(customer_id=target_id), execution_options={"synchronize_session": False})
    return int(res.rowcount or 0)


def observed_retention(session: Any, settings: ValueSettings, as_of: dt.date) -> dict[str, Any]:
    """Retention per cohort and yearly period counted back from ``as_of``: of the customers who
    bought in period k, the share who bought in period k+1 too. ``rate`` pools every pair of
    consecutive periods (None: fewer than two periods of history)."""
    cut = reads.day_of(as_of)
    # whole days since the entry, divided by 365 in integers: 0 = the latest year (never negative)
    period = (literal(cut) - reads.day_number(reads.Transaction.occurred_at)) // literal(PERIOD_DAYS)
    stmt = (select(reads._customer(), period).select_from(reads.Transaction)
            .where(*reads._where(session, settings, reads.Period.up_to(as_of), purchases_only=True)))
    m = reads._fetch_array(session, stmt.group_by(reads._customer(), period), 2)
    if m.size == 0:
        return {"rate": None, "periods": 0, "cohorts": []}
    key = np.unique(m[:, 0].astype(np.int64) * 100_000 + m[:, 1].astype(np.int64))  # distinct (customer, period)
    cust, per = key // 100_000, key % 100_000
    # keys sort by customer, then period ascending: a customer's last row is its oldest period (its cohort)
    starts = np.flatnonzero(np.r_[True, cust[1:] != cust[:-1]])
    ends = np.r_[starts[1:], cust.size]
    cohort = np.repeat(per[ends - 1], ends - starts)
    # bought in period p and in the next one (p - 1): the customer's previous row
    again = np.r_[False, cust[1:] == cust[:-1]] & (np.r_[-1, per[:-1]] == per - 1)
    rows, active, kept = [], 0, 0
    for c in np.unique(cohort)[::-1]:  # oldest cohort first
        for p in range(int(c), 0, -1):
            inside = (cohort == c) & (per == p)
            n, k = int(inside.sum()), int((inside & again).sum())
            active, kept = active + n, kept + k
            rows.append({"cohort": _label(as_of, int(c)), "period": _label(as_of, p), "customers": n,
                         "retained": k, "rate": k / n if n else None})
    return {"rate": kept / active if active else None, "periods": int(per.max()) + 1, "cohorts": rows}


def _label(as_of: dt.date, period: int) -> str:
    """A yearly period counted back from ``as_of`` as "start..end"."""
    end = as_of - dt.timedelta(days=PERIOD_DAYS * period)
    return f"{end - dt.timedelta(days=PERIOD_DAYS - 1)}..{end}"


def retention_report(uow: UnitOfWork, as_of: dt.date | None = None) -> dict[str, Any]:
    """Observed retention of the whole base (``value.report`` for an "own" user)."""
    uow.require("customer.read")
    if uow.visibility.own_only:
        uow.require("value.report")
    as_of = as_of or utcnow().date()
    if not DATE_RANGE[0] <= as_of <= DATE_RANGE[1]:  # counting yearly periods back from year 999 overflows
        raise InvalidInput(f"invalid input: as_of: {as_of} is outside {DATE_RANGE[0]}..{DATE_RANGE[1]}", [("as_of", "out of range")])
    settings = _settings(uow)
    return {"as_of": as_of.isoformat(), "assumed": settings.retention, **observed_retention(uow.session, settings, as_of)}


#: Lifecycle patterns over the snapshot history, each with the stages that define it.
PATTERNS = ("aborted_early", "died_midway", "left_early", "long_lasting", "ongoing")


def lifecycle_patterns(uow: UnitOfWork) -> dict[str, Any]:
    """Each customer's path over every stored snapshot (one GROUP BY): churned while still exploring
    (aborted early), churned after formation without reaching stability (died mid-way), churned
    after stability (left early), in stability now (long-lasting), else ongoing."""
    from crm_value_analysis.models import CustomerValue, ValueRun

    uow.require("customer.read")
    if uow.visibility.own_only:
        uow.require("value.report")
    cv = CustomerValue
    latest = select(func.max(ValueRun.id)).where(ValueRun.as_of == select(func.max(ValueRun.as_of)).scalar_subquery())
    flag = lambda stage: func.max(case((cv.lifecycle == stage, 1), else_=0))  # noqa: E731
    stmt = (select(cv.customer_id, flag("formation"), flag("stability"),
                   func.max(case((cv.run_id == latest.scalar_subquery(), cv.lifecycle))), func.count())
            .group_by(cv.customer_id).order_by(cv.customer_id))
    rows = reads.fetch_rows(uow.session, stmt)
    formed = np.array([bool(r[1]) for r in rows], dtype=bool)
    stable = np.array([bool(r[2]) for r in rows], dtype=bool)
    now = np.array([r[3] or "" for r in rows], dtype=object)
    churned = now == "churned"
    buyer = (now != "prospect") & (now != "")
    codes = np.select([churned & ~formed & ~stable, churned & formed & ~stable, churned & stable, stable & ~churned],
                      [0, 1, 2, 3], default=4)
    counts = {p: int(((codes == i) & buyer).sum()) for i, p in enumerate(PATTERNS)}
    runs = uow.session.scalar(select(func.count()).select_from(ValueRun))
    return {"runs": int(runs or 0), "customers": int(buyer.sum()), "patterns": counts}


__all__ = ["PATTERNS", "churn_reasons_report", "lifecycle_patterns", "merge_rows", "observed_retention", "record_loss",
           "retention_report"]
