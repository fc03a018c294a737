"""Service KPIs over whole tables: one query per table, then NumPy by group.

Response and resolution times are the business minutes stored on each ticket when the event
happened (pauses excluded), so the report is column arithmetic, never a calendar walk per row.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, select

from crm_service.models import ACTIVE, SurveyAnswer, Ticket, TicketKind, TicketStatus, Visit
from crm_service.settings import settings
from crmcore.errors import InvalidInput
from crmcore.models import User
from crmcore.uow import UnitOfWork

BY = ("agent", "team", "category", "month")


def _pct(values: np.ndarray, q: float) -> float | None:
    v = values[~np.isnan(values)]
    return None if v.size == 0 else round(float(np.percentile(v, q)) / 60.0, 2)


def _load(uow: UnitOfWork) -> dict[str, np.ndarray]:
    vis = uow.visibility.customer_filter(Ticket.customer_id)
    rows = uow.session.execute(select(
        Ticket.id, Ticket.assignee_id, Ticket.team, Ticket.category, Ticket.opened_at, Ticket.status, Ticket.kind,
        Ticket.first_response_minutes, Ticket.resolution_minutes, Ticket.first_response_breached_at.is_(None),
        Ticket.resolution_breached_at.is_(None), Ticket.reopen_count).where(vis)).all()
    cols = list(zip(*rows, strict=True)) if rows else [()] * 12
    names = dict(uow.session.execute(select(User.id, User.username)).all())
    f = lambda c: np.array([np.nan if x is None else float(x) for x in c], dtype=float)
    return {"id": np.array(cols[0], dtype=np.int64),
            "agent": np.array([names.get(a, "(unassigned)") for a in cols[1]], dtype=object),
            "team": np.array(cols[2], dtype=object), "category": np.array(cols[3], dtype=object),
            "month": np.array([f"{t.year}-{t.month:02d}" for t in cols[4]], dtype=object),
            "active": np.array([TicketStatus(s) in ACTIVE for s in cols[5]], dtype=bool),
            "complaint": np.array([TicketKind(k) == TicketKind.COMPLAINT for k in cols[6]], dtype=bool),
            "frt": f(cols[7]), "res": f(cols[8]), "fr_ok": np.array(cols[9], dtype=bool),
            "res_ok": np.array(cols[10], dtype=bool), "reopened": np.array([(r or 0) > 0 for r in cols[11]], dtype=bool)}


def _csat(uow: UnitOfWork) -> tuple[np.ndarray, np.ndarray]:
    rows = uow.session.execute(select(SurveyAnswer.ticket_id, SurveyAnswer.score).where(
        SurveyAnswer.kind == "csat", SurveyAnswer.ticket_id.is_not(None),
        uow.visibility.customer_filter(SurveyAnswer.customer_id))).all()
    return (np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.int64))


def _group(t: dict[str, np.ndarray], m: np.ndarray, csat_ids: np.ndarray, csat: np.ndarray,
           visits: tuple[int, int]) -> dict[str, Any]:
    done = m & ~t["active"]
    resolved = m & ~np.isnan(t["res"])
    comp = m & t["complaint"]
    scores = csat[np.isin(csat_ids, t["id"][m])]
    return {
        "tickets": int(m.sum()), "backlog": int((m & t["active"]).sum()),
        "first_response_hours": {"median": _pct(t["frt"][m], 50), "p90": _pct(t["frt"][m], 90)},
        "resolution_hours": {"median": _pct(t["res"][resolved], 50), "p90": _pct(t["res"][resolved], 90)},
        "sla_attainment": None if not done.any() else round(float((t["fr_ok"] & t["res_ok"])[done].mean()), 4),
        "complaint_handling_rate": None if not comp.any() else round(float((comp & resolved & t["res_ok"]).sum() / comp.sum()), 4),
        "reopen_rate": None if not done.any() else round(float(t["reopened"][m & (resolved | ~t["active"])].mean()), 4),
        "csat": {"answers": int(scores.size), "avg": None if scores.size == 0 else round(float(scores.mean()), 2),
                 "distribution": {str(k): int((scores == k).sum()) for k in range(1, 6)}},
        "return_visit_rate": None if visits[1] == 0 else round(visits[0] / visits[1], 4),
    }


def report(uow: UnitOfWork, by: str | None = None) -> dict[str, Any]:
    """KPIs in total and per ``by`` group (agent, team, category or opening month)."""
    uow.require("service.report")
    if by is not None and by not in BY:
        raise InvalidInput(f"unknown grouping {by!r} (by: {', '.join(BY)})")
    t = _load(uow)
    csat_ids, csat = _csat(uow)
    now = uow.now()
    v_done, v_due = (int(x or 0) for x in uow.session.execute(select(
        func.count(Visit.done_at), func.count()).where(Visit.due_at <= now, uow.visibility.customer_filter(Visit.customer_id))).one())
    total = _group(t, np.ones(t["id"].size, dtype=bool), csat_ids, csat, (v_done, v_due))
    out: dict[str, Any] = {"by": by, "total": total, "groups": []}
    if by:
        for key in sorted(set(t[by].tolist())):
            out["groups"].append({by: key, **_group(t, t[by] == key, csat_ids, csat, (0, 0))})
            out["groups"][-1].pop("return_visit_rate")
    return out


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
