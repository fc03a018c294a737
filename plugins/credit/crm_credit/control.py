"""Control that fits each company: warn mode, credit reviews, downgrade alerts.

- **Warn mode** (``mode``, ``mode_by_group``, ``mode_by_grade``): a document that breaks the
  limit or the overdue rule passes when the customer's mode is ``warn`` *and* the actor holds
  ``credit.pass_warning``; the warning, its figures and who passed it are recorded
  (``credit_warnings``, the audit log, the timeline). Without the permission it is refused as in
  block mode, the message saying why. A hold or a block is a person's decision and is never
  passed by warn mode (a release is the way).
- **Reviews**: each profile has a next review date; ``review_due`` lists the files to review.
- **Downgrades**: a scoring run that lowers a customer's grade by one or more records it, puts
  it on the timeline and calls the published hook ``credit_downgraded`` (webhook
  ``credit.downgraded``).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import insert, or_, select

from crm_credit.models import CreditGradeChange, CreditProfile, CreditScore, CreditWarning
from crm_credit.settings import CreditSettings
from crmcore.db.types import utcnow
from crmcore.models import Customer
from crmcore.uow import UnitOfWork

PASS_PERMISSION = "credit.pass_warning"


def mode_for(uow: UnitOfWork, s: CreditSettings, profile: CreditProfile | None, customer_id: int) -> tuple[str, str]:
    """(mode, why): the credit group's mode, else the latest grade's, else the default."""
    if profile is not None and profile.credit_group and profile.credit_group in s.mode_by_group:
        return s.mode_by_group[profile.credit_group], f"group {profile.credit_group}"
    if s.mode_by_grade:
        grade = uow.session.scalar(select(CreditScore.grade).where(CreditScore.customer_id == customer_id))
        if grade is not None and grade in s.mode_by_grade:
            return s.mode_by_grade[grade], f"grade {grade}"
    return s.mode, "default"


def mode_report(uow: UnitOfWork, s: CreditSettings, profile: CreditProfile | None, chk: Any) -> dict[str, Any]:
    """What ``crm credit check`` says of the control mode: the customer's mode and why, the roles
    that may pass a warning, whether the actor may, and whether a failed check would pass
    (warn mode, the permission, a profile that is not on hold or blocked), as :func:`warn_pass` decides."""
    mode, why = mode_for(uow, s, profile, chk.customer_id)
    grants = uow.crm.permissions.grants()
    roles = sorted(r for r, names in grants.items() if PASS_PERMISSION in names)
    can = uow.can(PASS_PERMISSION)
    passable = mode == "warn" and can and profile is not None and profile.status not in ("hold", "blocked")
    return {"mode": mode, "mode_source": why, "may_pass": roles, "actor_may_pass": can,
            "would_pass": bool(chk.ok or passable)}


def warn_pass(uow: UnitOfWork, s: CreditSettings, profile: CreditProfile | None, chk: Any) -> str | None:
    """For a failed check: None when warn mode lets it pass (the warning is recorded), else the
    refusal message (the check's, with why warn mode did not pass it)."""
    if profile is None or profile.status in ("hold", "blocked"):
        return chk.message()
    mode, why = mode_for(uow, s, profile, chk.customer_id)
    if mode != "warn":
        return chk.message()
    if not uow.can(PASS_PERMISSION):
        return f"{chk.message()}; warn mode ({why}) lets it pass only for holders of {PASS_PERMISSION}, which {uow.actor} lacks"
    msg = chk.message().replace("credit check failed", "credit warning", 1)
    uow.session.add(CreditWarning(customer_id=chk.customer_id, reference=getattr(chk, "reference", None), amount=chk.amount,
                                  currency=chk.currency, message=msg[:1000], mode_source=why, actor=uow.actor, at=utcnow()))
    uow.audit.record("credit-warning", "credit_profile", chk.customer_id, after={
        "reference": getattr(chk, "reference", None), "amount": str(chk.amount), "currency": chk.currency,
        "mode": f"warn ({why})", "passed_by": uow.actor, "reasons": list(chk.reasons)})
    chk.ok, chk.warned = True, msg
    return None


def warnings(uow: UnitOfWork, customer_id: int | None = None, limit: int = 200) -> list[CreditWarning]:
    q = select(CreditWarning).where(uow.visibility.customer_filter(CreditWarning.customer_id))
    if customer_id is not None:
        uow.customers.get(customer_id)
        q = q.where(CreditWarning.customer_id == customer_id)
    return list(uow.session.scalars(q.order_by(CreditWarning.id.desc()).limit(limit)))


# -- reviews -----------------------------------------------------------------------------------------

@dataclass
class DueReview:
    customer_id: int
    name: str
    last_review: dt.date | None
    next_review: dt.date | None
    days_overdue: int | None  # None: never reviewed
    status: str


def review_due(uow: UnitOfWork, as_of: dt.date) -> list[DueReview]:
    """Profiles whose next review is on or before ``as_of``, and those never reviewed (visible
    customers only, active ones), most overdue first."""
    q = (select(CreditProfile, Customer.name).join(Customer, Customer.id == CreditProfile.customer_id)
         .where(Customer.archived.is_(False), uow.visibility.customer_filter(CreditProfile.customer_id),
                or_(CreditProfile.next_review <= as_of,
                    CreditProfile.next_review.is_(None) & CreditProfile.last_review.is_(None))))
    out = [DueReview(p.customer_id, name, p.last_review, p.next_review,
                     None if p.next_review is None else (as_of - p.next_review).days, p.status)
           for p, name in uow.session.execute(q)]
    out.sort(key=lambda r: (r.days_overdue is not None, -(r.days_overdue or 0), r.customer_id))
    return out


# -- downgrades --------------------------------------------------------------------------------------

def grade_rank(s: CreditSettings) -> dict[str, int]:
    return {g.grade: i for i, g in enumerate(s.grades)}


def record_downgrades(uow: UnitOfWork, s: CreditSettings, old: dict[int, tuple[str, int]], ids: np.ndarray,
                      grades: list[str], scores: np.ndarray) -> int:
    """Compare new grades with the previous run's; record and announce every fall of a grade or more."""
    rank = grade_rank(s)
    rows = []
    for cid, g, sc in zip(ids.tolist(), grades, scores.tolist()):
        prev = old.get(cid)
        if prev is None or prev[0] not in rank:
            continue
        steps = rank[g] - rank[prev[0]]
        if steps >= 1:
            rows.append({"customer_id": cid, "old_grade": prev[0], "new_grade": g, "old_score": prev[1],
                         "new_score": int(sc), "steps": steps, "at": utcnow(), "acknowledged": False})
    if not rows:
        return 0
    uow.session.execute(insert(CreditGradeChange), rows)
    for r in rows:
        uow.hooks.call("credit_downgraded", uow=uow, customer_id=r["customer_id"], old_grade=r["old_grade"],
                       new_grade=r["new_grade"], score=r["new_score"])
    return len(rows)


def previous_grades(uow: UnitOfWork, ids: list[int] | None) -> dict[int, tuple[str, int]]:
    """The stored grade and score of these customers (None: everyone), before a run replaces them."""
    q = select(CreditScore.customer_id, CreditScore.grade, CreditScore.score)
    out: dict[int, tuple[str, int]] = {}
    if ids is None:
        for cid, g, sc in uow.session.execute(q).yield_per(50_000):
            out[cid] = (g, sc)
        return out
    for i in range(0, len(ids), 2000):
        for cid, g, sc in uow.session.execute(q.where(CreditScore.customer_id.in_(ids[i:i + 2000]))):
            out[cid] = (g, sc)
    return out


def timeline(uow: UnitOfWork, customer_id: int) -> list[Any]:
    from crmcore import TimelineEntry

    out = [TimelineEntry(at=w.at, kind="credit warning", summary=f"{w.message} (passed by {w.actor}, {w.mode_source})",
                         reference=w.reference) for w in uow.session.scalars(
        select(CreditWarning).where(CreditWarning.customer_id == customer_id))]
    out += [TimelineEntry(at=d.at, kind="credit downgrade",
                          summary=f"grade {d.old_grade} → {d.new_grade} (score {d.old_score} → {d.new_score})")
            for d in uow.session.scalars(select(CreditGradeChange).where(CreditGradeChange.customer_id == customer_id))]
    return out
