"""Service KPIs over whole tables, set-based: SQL aggregates, histograms, NumPy on the small results.

Response and resolution times are the business minutes stored on each ticket when the event
happened (pauses excluded), so the report is column arithmetic, never a calendar walk per row.
Per group (none, agent, team, category or opening month) the database answers: one aggregate
query (``count(*) FILTER (WHERE ...)``), one histogram each of first-response and resolution
minutes (in total they are scans of their own indexes) and one of CSAT scores. Medians and p90
are exact (NumPy's linear interpolation) from those integer histograms, so no row is shipped to Python.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, literal_column, select

from crm_service.models import ACTIVE, SurveyAnswer, Ticket, TicketKind, Visit
from crm_service.settings import settings
from crmcore.errors import InvalidInput
from crmcore.models import User
from crmcore.uow import UnitOfWork

BY = ("agent", "team", "category", "month")
_FLAGS = ("tickets", "backlog", "done", "done_ok", "complaints", "complaints_ok", "reopen_base", "reopened")


def _key(uow: UnitOfWork, by: str | None) -> Any:
    """The grouping expression; None in total (a constant label, nothing to group by)."""
    if by is None:
        return None
    if by == "agent":
        return Ticket.assignee_id
    if by == "month":
        if uow.session.get_bind().dialect.name == "postgresql":
            return func.to_char(func.timezone("UTC", Ticket.opened_at), "YYYY-MM")
        return func.strftime("%Y-%m", Ticket.opened_at)
    return getattr(Ticket, by)


def percentile(values: np.ndarray, counts: np.ndarray, q: float) -> float | None:
    """``np.percentile(data, q)`` (linear) of the data given as sorted distinct values and counts."""
    n = int(counts.sum())
    if n == 0:
        return None
    pos = q / 100.0 * (n - 1)
    ends = np.cumsum(counts)
    lo, hi = int(np.floor(pos)), int(np.ceil(pos))
    v_lo, v_hi = values[np.searchsorted(ends, lo, side="right")], values[np.searchsorted(ends, hi, side="right")]
    return float(v_lo + (v_hi - v_lo) * (pos - lo))


def _hours(hist: dict[Any, list[tuple[int, int]]], key: Any) -> dict[str, float | None]:
    pairs = sorted(hist.get(key, []))
    values = np.array([p[0] for p in pairs], dtype=float)
    counts = np.array([p[1] for p in pairs], dtype=np.int64)
    out = {}
    for name, q in (("median", 50), ("p90", 90)):
        v = percentile(values, counts, q)
        out[name] = None if v is None else round(v / 60.0, 2)
    return out


def _grouped(q: Any, key: Any, *columns: Any) -> Any:
    """``q`` with the group label ``g`` first, grouped by it (when there is one) and ``columns``."""
    label = literal_column("'total'") if key is None else key
    q = q.with_only_columns(label.label("g"), *q.selected_columns, maintain_column_froms=True)
    return q.group_by(*([] if key is None else [key]), *columns)


def _aggregates(uow: UnitOfWork, key: Any) -> dict[Any, dict[str, int]]:
    """One pass (grouped like the baseline ``GROUP BY``): the ticket counts behind every rate."""
    active = Ticket.status.in_(ACTIVE)
    ok = Ticket.first_response_breached_at.is_(None) & Ticket.resolution_breached_at.is_(None)
    resolved = Ticket.resolution_minutes.is_not(None)
    complaint = Ticket.kind == TicketKind.COMPLAINT
    base = resolved | ~active
    conds = (active, ~active, ~active & ok, complaint, complaint & resolved & Ticket.resolution_breached_at.is_(None),
             base, base & (Ticket.reopen_count > 0))
    q = _grouped(select(func.count(), *(func.count().filter(c) for c in conds))
                 .where(uow.visibility.customer_filter(Ticket.customer_id)), key)
    return {g: dict(zip(_FLAGS, (int(c or 0) for c in counts), strict=True)) for g, *counts in uow.session.execute(q)}


def _histogram(uow: UnitOfWork, key: Any, column: Any, *where: Any, join: bool = False) -> dict[Any, list[tuple[int, int]]]:
    q = select(column, func.count())
    if join:
        q = q.select_from(SurveyAnswer).join(Ticket, Ticket.id == SurveyAnswer.ticket_id)
    q = _grouped(q.where(column.is_not(None), uow.visibility.customer_filter(Ticket.customer_id), *where), key, column)
    out: dict[Any, list[tuple[int, int]]] = {}
    for g, v, c in uow.session.execute(q):
        out.setdefault(g, []).append((int(v), int(c)))
    return out


def _rate(num: int, den: int) -> float | None:
    return None if den == 0 else round(num / den, 4)


def _group(acc: dict[str, int], frt: Any, res: Any, csat: list[tuple[int, int]]) -> dict[str, Any]:
    dist = {str(k): 0 for k in range(1, 6)}
    for score, c in csat:
        dist[str(score)] = dist.get(str(score), 0) + c
    answers = sum(c for _, c in csat)
    return {
        "tickets": acc["tickets"], "backlog": acc["backlog"],
        "first_response_hours": frt, "resolution_hours": res,
        "sla_attainment": _rate(acc["done_ok"], acc["done"]),
        "complaint_handling_rate": _rate(acc["complaints_ok"], acc["complaints"]),
        "reopen_rate": None if acc["done"] == 0 else _rate(acc["reopened"], acc["reopen_base"]),
        "csat": {"answers": answers, "avg": None if answers == 0 else round(sum(s * c for s, c in csat) / answers, 2),
                 "distribution": dist},
    }


def report(uow: UnitOfWork, by: str | None = None) -> dict[str, Any]:
    """KPIs in total and per ``by`` group (agent, team, category or opening month)."""
    uow.require("service.report")
    if by is not None and by not in BY:
        raise InvalidInput(f"unknown grouping {by!r} (by: {', '.join(BY)})")
    key = _key(uow, by)
    groups = _aggregates(uow, key)
    frt = _histogram(uow, key, Ticket.first_response_minutes)
    res = _histogram(uow, key, Ticket.resolution_minutes)
    csat = _histogram(uow, key, SurveyAnswer.score, SurveyAnswer.kind == "csat", join=True)
    rows = {g: _group(acc, _hours(frt, g), _hours(res, g), csat.get(g, [])) for g, acc in groups.items()}
    total = rows.pop("total") if by is None and "total" in rows else _total(groups, frt, res, csat)
    now = uow.now()
    v_done, v_due = (int(x or 0) for x in uow.session.execute(select(func.count(Visit.done_at), func.count()).where(
        Visit.due_at <= now, uow.visibility.customer_filter(Visit.customer_id))).one())
    total["return_visit_rate"] = _rate(v_done, v_due)
    out: dict[str, Any] = {"by": by, "total": total, "groups": []}
    if by:
        names = _agent_names(uow) if by == "agent" else {}
        labelled = [((names.get(g, "(unassigned)") if by == "agent" else g), r) for g, r in rows.items()]
        out["groups"] = [{by: label, **r} for label, r in sorted(labelled, key=lambda x: str(x[0]))]
    return out


def _total(groups: dict[Any, dict[str, int]], frt: Any, res: Any, csat: Any) -> dict[str, Any]:
    """The total from the per-group counts and histograms (no second pass over the table)."""
    acc = dict.fromkeys(_FLAGS, 0)
    for g in groups.values():
        for f in _FLAGS:
            acc[f] += g[f]

    def merged(hist: dict[Any, list[tuple[int, int]]]) -> dict[Any, list[tuple[int, int]]]:
        out: dict[int, int] = {}
        for pairs in hist.values():
            for v, c in pairs:
                out[v] = out.get(v, 0) + c
        return {None: list(out.items())}

    return _group(acc, _hours(merged(frt), None), _hours(merged(res), None), merged(csat)[None])


def _agent_names(uow: UnitOfWork) -> dict[int, str]:
    return dict(uow.session.execute(select(User.id, User.username)).all())


def cost_to_serve(uow: UnitOfWork, customer_ids: Sequence[int]) -> dict[int, float]:
    """Handling business hours (open to resolution, pauses out) × the team's ``hourly_rate``."""
    rates = {name: team.hourly_rate for name, team in settings(uow).teams.items()}
    ids = list(customer_ids)
    out = dict.fromkeys(ids, 0.0)
    for i in range(0, len(ids), 5000):
        for cid, team, minutes in uow.session.execute(select(Ticket.customer_id, Ticket.team, func.sum(Ticket.resolution_minutes))
                                                      .where(Ticket.customer_id.in_(ids[i:i + 5000]))
                                                      .group_by(Ticket.customer_id, Ticket.team)):
            out[cid] += float(minutes or 0) / 60.0 * rates.get(team, 0.0)
    return {c: round(v, 2) for c, v in out.items()}
