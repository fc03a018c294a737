"""Service KPIs over whole tables, set-based: one aggregate pass over the tickets per report.

Response and resolution times are the business minutes stored on each ticket when the event
happened (pauses excluded), so the report is column arithmetic, never a calendar walk per row.
Per group (none, agent, team, category or opening month) ONE aggregate statement over the
tickets, grouped like a plain ``GROUP BY`` (one pass, hash or sort, never a sort per measure),
answers every count (backlog, ageing, SLA attainment, complaint handling, reopens) with
``count(*) FILTER (WHERE ...)``, and hands over each group's minutes as one string
(``group_concat``; on PostgreSQL the parallel-safe ``service_int_agg`` array of migration
service_0005, sent as ``array_send`` bytes, so the pass runs in parallel workers as the
baseline does, where ``string_agg`` would keep it in one process) that NumPy reads in C for the exact medians and p90
(linear interpolation, as ``percentile_cont``); the total is the sum and the concatenation of
the groups, so no second pass.

A second, small statement reads the CSAT answers (joined to their tickets for the group; on
PostgreSQL per group the aggregate statement's outer join to the answers brings them instead).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
from sqlalchemy import Text, cast, func, literal_column, select, text

from crm_service.models import ACTIVE, SurveyAnswer, Ticket, TicketKind, Visit
from crm_service.settings import settings
from crmcore.errors import InvalidInput
from crmcore.models import User
from crmcore.uow import UnitOfWork

BY = ("agent", "team", "category", "month")
AGES = (("under_1d", 1), ("1d_3d", 3), ("3d_7d", 7))  # backlog ageing buckets (days open); older: over_7d
# each reported count as a formula over the per-ticket facts of :func:`_facts`
_COUNTS: dict[str, Callable[[Any], Any]] = {
    "backlog": lambda b: b.active,
    "done": lambda b: ~b.active,
    "done_ok": lambda b: ~b.active & b.ok,
    "complaints": lambda b: b.complaint,
    "complaints_ok": lambda b: b.complaint & b.resolved & b.res_ok,
    "reopen_base": lambda b: b.resolved | ~b.active,
    "reopened": lambda b: (b.resolved | ~b.active) & b.reopened,
    "under_1d": lambda b: b.active & b.age1,
    "1d_3d": lambda b: b.active & b.age3 & ~b.age1,
    "3d_7d": lambda b: b.active & b.age7 & ~b.age3,
    "over_7d": lambda b: b.active & ~b.age7,
}
_FLAGS = ("tickets", *_COUNTS)


def _key(uow: UnitOfWork, by: str | None) -> Any:
    """The grouping expression; None in total (a constant label, nothing to group by)."""
    if by is None:
        return None
    if _pg(uow):
        if by == "month":
            return func.to_char(func.timezone("UTC", Ticket.opened_at), "YYYY-MM")
        return getattr(Ticket, "assignee_id" if by == "agent" else by)
    # SQLite groups by sorting; walking the assignee index instead costs a random row read per
    # ticket (5x slower at 1M), so the key is an expression; times are stored as UTC ISO text
    if by == "month":
        return func.substr(Ticket.opened_at, 1, 7)
    return Ticket.assignee_id + 0 if by == "agent" else getattr(Ticket, by)


def _pg(uow: UnitOfWork) -> bool:
    return uow.session.get_bind().dialect.name == "postgresql"


def _facts(now: dt.datetime) -> SimpleNamespace:
    """The per-ticket facts as SQL conditions (never NULL, so NOT and bit arithmetic are safe)."""
    return SimpleNamespace(
        active=Ticket.status.in_(ACTIVE),
        ok=Ticket.first_response_breached_at.is_(None) & Ticket.resolution_breached_at.is_(None),
        complaint=Ticket.kind == TicketKind.COMPLAINT,
        resolved=Ticket.resolution_minutes.is_not(None),
        res_ok=Ticket.resolution_breached_at.is_(None),
        reopened=Ticket.reopen_count > 0,
        **{f"age{d}": Ticket.opened_at > now - dt.timedelta(days=d) for _, d in AGES})


def _hours(values: np.ndarray) -> dict[str, float | None]:
    """(median, p90) of the minutes, in hours, rounded as printed."""
    med, p90 = _pcts(values) or (None, None)
    return {"median": None if med is None else round(float(med) / 60.0, 2),
            "p90": None if p90 is None else round(float(p90) / 60.0, 2)}


def _minutes_list(uow: UnitOfWork, column: Any, parallel: bool = False) -> Any:
    """The group's non-NULL minutes as one comma-separated string (parsed by NumPy in C). On
    PostgreSQL by ``service_int_agg`` (migration service_0005: parallel safe, so the pass runs
    in parallel workers like the baseline) when the database has it, else ``string_agg``."""
    if _pg(uow):
        if parallel:  # the array in its binary send format (bytea): read by NumPy without parsing text
            return func.array_send(func.service_int_agg(column).filter(column.is_not(None)))
        return func.string_agg(cast(column, Text), literal_column("','"))
    return func.group_concat(column)


def _has_int_agg(uow: UnitOfWork) -> bool:
    return _pg(uow) and uow.session.scalar(text("SELECT to_regprocedure('service_int_agg(integer)') IS NOT NULL")) is True


def _scan(uow: UnitOfWork, key: Any, now: dt.datetime) -> tuple[dict[Any, dict[str, Any]], dict[str, Any]]:
    """ONE aggregate statement over the tickets (grouped like the baseline ``GROUP BY``): every
    count FILTERed, and the minutes of each group aggregated into a string for the percentiles."""
    b, par = _facts(now), _has_int_agg(uow)
    cols = [func.count(), *(func.count().filter(f(b)) for f in _COUNTS.values()),
            _minutes_list(uow, Ticket.first_response_minutes, par), _minutes_list(uow, Ticket.resolution_minutes, par)]
    src: Any = Ticket.__table__
    fold = key is not None and _pg(uow)
    if fold and par:  # each group's ticket ids ride along; the CSAT answers are mapped to them in NumPy
        cols.append(_minutes_list(uow, Ticket.id, par))
    elif fold:  # the CSAT scores ride along: one hash join in this pass (a ticket has at most one CSAT
        # answer: the unique index of service_0004) instead of a second join of answers and tickets
        cols.append(_minutes_list(uow, SurveyAnswer.score, par))
        src = src.outerjoin(SurveyAnswer, (SurveyAnswer.ticket_id == Ticket.id) & (SurveyAnswer.kind == "csat"))
    q = (select(literal_column("0") if key is None else key, *cols).select_from(src)
         .where(uow.visibility.customer_filter(Ticket.customer_id)))
    if key is not None:
        q = q.group_by(key)
    groups: dict[Any, dict[str, Any]] = {}
    n = len(_FLAGS)
    for g, *row in uow.session.execute(q):
        counts = {f: int(v or 0) for f, v in zip(_FLAGS, row, strict=False)}
        groups[g] = {**counts, "frt": _parse(row[n]), "res": _parse(row[n + 1])}
        if fold and par:
            groups[g]["ids"] = _parse(row[n + 2])
        elif fold:
            scores, times = np.unique(_parse(row[n + 2]), return_counts=True)
            groups[g]["csat"] = [(int(v), int(c)) for v, c in zip(scores, times, strict=True)]
    if fold and par:
        _csat_by_ids(uow, groups)
    total: dict[str, Any] = {f: sum(a[f] for a in groups.values()) for f in _FLAGS}
    for m in ("frt", "res"):
        total[m] = np.concatenate([a[m] for a in groups.values()] or [np.empty(0)])
    return ({} if key is None else groups), total


def _csat_by_ids(uow: UnitOfWork, groups: dict[Any, dict[str, Any]]) -> None:
    """PostgreSQL per group: the CSAT answers of tickets (two int arrays, one small parallel scan)
    given to the groups by their tickets' ids (a label per ticket id, in NumPy): no join of the
    answers to the tickets in SQL. A ticket has one CSAT answer at most (service_0004)."""
    tids, scores = uow.session.execute(select(
        _minutes_list(uow, SurveyAnswer.ticket_id, True), _minutes_list(uow, SurveyAnswer.score, True))
        .where(SurveyAnswer.kind == "csat", SurveyAnswer.ticket_id.is_not(None))).one()
    t, v = _parse(tids), _parse(scores)
    names = list(groups)
    ids = [groups[g].pop("ids") for g in names]
    hits = _labels(ids, t)
    seen = hits >= 0  # answers of tickets outside the groups (not visible) are left out
    counts = np.bincount(hits[seen] * 6 + v[seen], minlength=6 * len(names)).reshape(len(names), 6)
    for i, g in enumerate(names):
        groups[g]["csat"] = [(score, int(c)) for score, c in enumerate(counts[i].tolist()) if c]


def _labels(ids: list[np.ndarray], wanted: np.ndarray) -> np.ndarray:
    """For each of ``wanted`` (ticket ids), the index of the id array holding it, or -1: a dense
    label per id when the ids are compact (the usual serial keys), else by binary search."""
    n = sum(a.size for a in ids)
    top = max([int(a.max()) for a in ids if a.size] + [int(wanted.max()) if wanted.size else 0])
    if top <= 4 * n + 1_000_000:
        label = np.full(top + 1, -1, dtype=np.int64)
        for i, a in enumerate(ids):
            label[a] = i
        return label[wanted]
    every = np.concatenate(ids) if ids else np.empty(0, dtype=np.int64)
    which = np.repeat(np.arange(len(ids)), [a.size for a in ids])
    order = np.argsort(every, kind="stable")
    every, which = every[order], which[order]
    pos = np.minimum(np.searchsorted(every, wanted), max(every.size - 1, 0))
    found = every.size > 0 and (every[pos] == wanted)
    return np.where(found, which[pos] if every.size else -1, -1)


def _parse(joined: str | bytes | None) -> np.ndarray:
    """The integers of a comma-separated string, or of an ``int4[]`` in PostgreSQL's binary send
    format (a 20-byte header for one dimension, then a 4-byte length and a 4-byte big-endian
    value per element; no NULLs: the aggregate FILTERs them out)."""
    if not joined:
        return np.empty(0, dtype=np.int64)
    if isinstance(joined, str):
        return np.fromstring(joined, dtype=np.int64, sep=",")
    if len(joined) <= 20:  # an empty array: ndim 0, a 12-byte header
        return np.empty(0, dtype=np.int64)
    return np.frombuffer(joined, dtype=">i4", offset=20)[1::2].astype(np.int64)


def _pcts(values: np.ndarray) -> list[float] | None:
    """Median and p90 with linear interpolation (``percentile_cont``)."""
    return None if values.size == 0 else [float(x) for x in np.percentile(values, [50, 90])]


def _csat(uow: UnitOfWork, key: Any) -> dict[Any, list[tuple[int, int]]]:
    """CSAT answers of tickets: (score, count) per group. In total the answers table alone (an
    answer's customer is its ticket's, :func:`crm_service.surveys.record` checks it); per group
    joined to the tickets for the label."""
    q: Any
    if key is None:
        q = (select(literal_column("'total'"), SurveyAnswer.score, func.count())
             .where(SurveyAnswer.kind == "csat", SurveyAnswer.ticket_id.is_not(None),
                    uow.visibility.customer_filter(SurveyAnswer.customer_id)).group_by(SurveyAnswer.score))
    else:
        q = (select(key, SurveyAnswer.score, func.count()).select_from(SurveyAnswer)
             .join(Ticket, Ticket.id == SurveyAnswer.ticket_id)
             .where(SurveyAnswer.kind == "csat", uow.visibility.customer_filter(Ticket.customer_id))
             .group_by(key, SurveyAnswer.score))
    out: dict[Any, list[tuple[int, int]]] = {}
    for g, v, c in uow.session.execute(q):
        out.setdefault(g, []).append((int(v), int(c)))
    return out


def _rate(num: int, den: int) -> float | None:
    return None if den == 0 else round(num / den, 4)


def _group(acc: dict[str, Any], csat: list[tuple[int, int]]) -> dict[str, Any]:
    dist = {str(k): 0 for k in range(1, 6)}
    for score, c in csat:
        dist[str(score)] = dist.get(str(score), 0) + c
    answers = sum(c for _, c in csat)
    return {
        "tickets": acc["tickets"], "backlog": acc["backlog"],
        "ageing": {a: acc[a] for a in (*(name for name, _ in AGES), "over_7d")},
        "first_response_hours": _hours(acc["frt"]), "resolution_hours": _hours(acc["res"]),
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
    key, now = _key(uow, by), uow.now()
    groups, acc = _scan(uow, key, now)
    folded = bool(groups) and all("csat" in a for a in groups.values())
    csat = {g: a["csat"] for g, a in groups.items()} if folded else _csat(uow, key)
    total = _group(acc, [(s, sum(c for pairs in csat.values() for v, c in pairs if v == s))
                         for s in sorted({v for pairs in csat.values() for v, _ in pairs})])
    due = Visit.due_at <= now  # a FILTER, not a WHERE: one pass over the visits, no index walk
    v_done, v_due = (int(x or 0) for x in uow.session.execute(
        select(func.count(Visit.done_at).filter(due), func.count().filter(due))
        .where(uow.visibility.customer_filter(Visit.customer_id))).one())
    total["return_visit_rate"] = _rate(v_done, v_due)
    out: dict[str, Any] = {"by": by, "total": total, "groups": []}
    if by:
        names = _agent_names(uow) if by == "agent" else {}
        labelled = [((names.get(g, "(unassigned)") if by == "agent" else g), _group(a, csat.get(g, [])))
                    for g, a in groups.items()]
        out["groups"] = [{by: label, **r} for label, r in sorted(labelled, key=lambda x: str(x[0]))]
    return out


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
