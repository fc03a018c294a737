"""Recomputing the rule scorecard as one service call, so ``crm credit score`` and
``POST /credit/scores`` share the permission, the visibility and the downgrade alerts."""
from __future__ import annotations

import datetime as dt
from typing import Any

from crm_credit import control, ledger, reports, scoring, services
from crm_credit.settings import settings
from crmcore.errors import InvalidInput
from crmcore.uow import UnitOfWork


def score_customers(uow: UnitOfWork, customer_id: int | None = None, *, all_: bool = False,
                    as_of: dt.date | None = None) -> dict[str, Any]:
    """Score one customer (already resolved through visibility by the caller) or, with ``all_``,
    every customer the actor sees; returns ``{"scored", "grades"}`` and, for one customer, its
    score, grade, suggested limit, reasons and points per factor."""
    if (customer_id is None) != all_:
        raise InvalidInput("give a CUSTOMER or --all (not both)")
    uow.require("credit.score")
    s = settings(uow)
    day = as_of or services.today()
    ids = reports.visible_ids(uow, None if all_ else [customer_id])  # type: ignore[list-item]
    res = None
    if all_ and ids is None:  # everyone: streamed by ranges of customers (bounded memory)
        n, grades = scoring.score_all(uow.session, s, day, on_range=lambda old, r: (
            control.record_downgrades(uow, s, old, r.ids, r.grades, r.score)), uow=uow)
    else:
        res = scoring.score(uow.session, s, day, ids, uow=uow)
        old = control.previous_grades(uow, res.ids.tolist())
        # an "own" user's --all scores (and counts) only the customers they see; others' scores stay
        n = scoring.store(uow.session, s, res, replace_all=False)
        control.record_downgrades(uow, s, old, res.ids, res.grades, res.score)
        grades = {}
        for g in res.grades:
            grades[g] = grades.get(g, 0) + 1
    uow.audit.record("score", "credit_scores", None if all_ else customer_id, after={"customers": n})
    # in the scorecard's grade order (best first), as the CLI prints them
    out: dict[str, Any] = {"scored": n, "grades": {x.grade: grades[x.grade] for x in s.grades if grades.get(x.grade)}}
    if res is not None and not all_ and n:
        out["customer"] = {"customer_id": int(res.ids[0]), "score": int(res.score[0]), "grade": res.grades[0],
                           "suggested_limit": ledger.money(int(res.suggested_cents[0])), "currency": res.currency[0],
                           "reasons": res.reasons(0, s.factors),
                           "factors": {f: (None if v[0] != v[0] else round(float(v[0]), 4)) for f, v in res.features.items()},
                           "points": {f: int(v[0]) for f, v in res.points.items()},
                           "max_points": {f: s.factors[f].max_points for f in res.points}}
    return out
