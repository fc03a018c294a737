"""Leads and the five-factor assessment: add, assess, list, show, learn the weights."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import case, func, select, update

from crm_sales_automation import scoring
from crm_sales_automation import visibility as visible
from crm_sales_automation.enums import (
    LeadStatus,
)
from crm_sales_automation.models import (
    Activity,
    Assessment,
    Conversion,
    Lead,
    LearnedModel,
)
from crm_sales_automation.schemas import (
    FactorScore,
    LeadCreate,
)
from crm_sales_automation.services._common import _audit, _user_id, _usernames, activity_rows, settings_for
from crm_sales_automation.services.referrals import check_referrer
from crm_sales_automation.vocabulary import words
from crmcore.db.types import utcnow
from crmcore.errors import Conflict, InvalidInput, NotFound
from crmcore.sdk import new_ref
from crmcore.uow import UnitOfWork


def get_lead(uow: UnitOfWork, lead_id: int) -> Lead:
    lead = uow.session.get(Lead, lead_id)
    if lead is None:
        raise NotFound("lead", lead_id)
    return visible.check_lead(uow, lead)  # an "own" user's lead, or not found like a missing one


def lead_by_email(uow: UnitOfWork, email: str) -> Lead | None:
    return uow.session.scalar(select(Lead).where(func.lower(Lead.email) == email.lower()).order_by(Lead.id).limit(1))


def add_lead(uow: UnitOfWork, data: LeadCreate) -> Lead:
    uow.require("sales.lead.write")
    source = words(uow).check("lead_sources", data.source, "source")
    if data.external_ref and uow.session.scalar(select(Lead.id).where(Lead.external_ref == data.external_ref)):
        raise Conflict(f"lead reference {data.external_ref!r} already exists")
    if data.email:
        other = lead_by_email(uow, data.email)
        if other is not None:
            raise Conflict(f"lead {other.id} ({other.name}) already has the email {data.email}; not duplicated")
    if data.referred_by is not None:
        check_referrer(uow, data.referred_by)
    lead = Lead(name=data.name, company=data.company, email=data.email, phone=data.phone, country=data.country,
                source=source, campaign_ref=data.campaign, notes=data.notes, status=LeadStatus.NEW,
                referred_by_id=data.referred_by,
                # an "own" user's new lead is theirs unless they name an owner (else they could not see it)
                owner_id=_user_id(uow, data.owner) if data.owner else (uow.visibility.user_id if uow.visibility.own_only else None),
                external_ref=data.external_ref or new_ref())
    uow.session.add(lead)
    uow.session.flush()
    _audit(uow, "create", "lead", lead.id, after=data.model_dump())
    return lead


def set_lead_status(uow: UnitOfWork, lead_id: int, status: LeadStatus | str) -> Lead:
    """Move a lead through new / contacted / qualified / disqualified (conversion is its own step)."""
    uow.require("sales.lead.write")
    status = LeadStatus(status)
    lead = get_lead(uow, lead_id)
    if status is LeadStatus.CONVERTED:
        raise InvalidInput("a lead becomes converted through `crm sales lead convert`, not by setting its status")
    if lead.status is LeadStatus.CONVERTED:
        raise Conflict(f"lead {lead_id} is converted (customer {lead.customer_id}); its status is final")
    before = lead.status
    lead.status = status
    uow.session.flush()
    _audit(uow, "status", "lead", lead_id, before={"status": before}, after={"status": status})
    return lead


def update_lead(uow: UnitOfWork, lead_id: int, *, owner: str | None = None, notes: str | None = None,
                referred_by: int | None = None) -> Lead:
    """Change a lead's owner (a username), notes (an empty string clears them) or referring customer."""
    uow.require("sales.lead.write")
    lead = get_lead(uow, lead_id)
    before: dict[str, Any] = {}
    if referred_by is not None and referred_by != lead.referred_by_id:
        if lead.status is LeadStatus.CONVERTED:
            raise Conflict(f"lead {lead_id} is converted; set the referral of customer {lead.customer_id} "
                           f"(`crm sales referral set {lead.customer_id} --by {referred_by}`)")
        check_referrer(uow, referred_by)
        before["referred_by_id"], lead.referred_by_id = lead.referred_by_id, referred_by
    if owner is not None:
        before["owner_id"], lead.owner_id = lead.owner_id, uow.users.id_for(owner)
    if notes is not None:
        before["notes"], lead.notes = lead.notes, notes.strip()[:10000] or None
    uow.session.flush()
    _audit(uow, "update", "lead", lead_id, before=before, after={"owner": owner, "notes": notes, "referred_by": referred_by})
    return lead


def assess(uow: UnitOfWork, lead_id: int, scores: Sequence[FactorScore]) -> Lead:
    """Set some factors of the five-factor assessment (0..5 each, with an optional note)."""
    uow.require("sales.lead.write")
    if not scores:
        raise InvalidInput("give at least one factor score, e.g. --need 4")
    lead = get_lead(uow, lead_id)
    if lead.status is LeadStatus.CONVERTED:
        raise Conflict(f"lead {lead_id} is converted; its assessment is part of its history")
    existing = {a.factor.value: a for a in uow.session.scalars(select(Assessment).where(Assessment.lead_id == lead_id))}
    before = {f: a.points for f, a in existing.items()}
    now = utcnow()
    for s in scores:
        row = existing.get(s.factor.value)
        if row is None:
            uow.session.add(Assessment(lead_id=lead_id, factor=s.factor, points=s.points, note=s.note,
                                       assessed_by=uow.actor, assessed_at=now))
        else:
            row.points, row.assessed_by, row.assessed_at = s.points, uow.actor, now
            if s.note is not None:
                row.note = s.note
    lead.updated_at = now
    uow.session.flush()
    _audit(uow, "assess", "lead", lead_id, before=before, after={s.factor.value: s.points for s in scores})
    return lead


def _assessments(uow: UnitOfWork, lead_ids: Sequence[int]) -> dict[int, dict[str, tuple[int, str | None]]]:
    out: dict[int, dict[str, tuple[int, str | None]]] = {}
    if not lead_ids:
        return out
    for a in uow.session.scalars(select(Assessment).where(Assessment.lead_id.in_(lead_ids))):
        out.setdefault(a.lead_id, {})[a.factor.value] = (a.points, a.note)
    return out


def lead_row(lead: Lead, owner: str | None, score: float) -> dict[str, Any]:
    return {"id": lead.id, "ref": lead.external_ref, "name": lead.name, "company": lead.company, "email": lead.email,
            "phone": lead.phone, "country": lead.country, "source": lead.source, "campaign": lead.campaign_ref,
            "referred_by": lead.referred_by_id, "status": lead.status.value,
            "owner": owner, "score": score,
            "learned_score": None if lead.learned_score is None else round(lead.learned_score, 1),
            "customer_id": lead.customer_id, "notes": lead.notes, "created_at": lead.created_at}


def list_leads(uow: UnitOfWork, *, status: str | None = None, owner: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    q = select(Lead).where(visible.leads(uow)).order_by(Lead.id).limit(limit)
    if status:
        q = q.where(Lead.status == LeadStatus(status))
    if owner:
        q = q.where(Lead.owner_id == uow.users.id_for(owner))
    leads = list(uow.session.scalars(q))
    weights = settings_for(uow).weights
    marks = _assessments(uow, [x.id for x in leads])
    names = _usernames(uow, [x.owner_id for x in leads])
    out = []
    for lead in leads:
        pts = {f: p for f, (p, _) in marks.get(lead.id, {}).items()}
        out.append(lead_row(lead, names.get(lead.owner_id), scoring.five_factor(pts, weights)[0]))
    return out


def lead_detail(uow: UnitOfWork, lead_id: int) -> dict[str, Any]:
    """Everything about a lead, with its score explained factor by factor (and the learned one)."""
    lead = get_lead(uow, lead_id)
    weights = settings_for(uow).weights
    marks = _assessments(uow, [lead_id]).get(lead_id, {})
    pts = {f: p for f, (p, _) in marks.items()}
    score, lines = scoring.five_factor(pts, weights, {f: n for f, (_, n) in marks.items()})
    out = lead_row(lead, _usernames(uow, [lead.owner_id]).get(lead.owner_id), score)
    out["assessment"] = [{"factor": x.factor, "label": x.label, "points": x.points, "weight": x.weight,
                          "contribution": round(x.contribution, 1), "max": round(x.max_contribution, 1), "note": x.note}
                         for x in lines]
    model = uow.session.scalar(select(LearnedModel).where(LearnedModel.kind == "lead_nb"))
    out["learned"] = None
    if model is not None:
        row = scoring.encode(lead.source, bool(lead.company), bool(lead.email), bool(lead.phone), pts)
        out["learned"] = {**scoring.explain(model.params, row), "fitted_at": model.fitted_at, "n_samples": model.n_samples,
                          "stored_score": out["learned_score"]}
    out["conversions"] = [{"customer_id": c.customer_id, "contact_id": c.contact_id, "opportunity_id": c.opportunity_id,
                           "matched_by": c.matched_by, "by": c.converted_by, "at": c.converted_at}
                          for c in uow.session.scalars(select(Conversion).where(Conversion.lead_id == lead_id).order_by(Conversion.id))]
    out["activities"] = activity_rows(uow, select(Activity).where(Activity.lead_id == lead_id))
    return out


# -- learned lead score ----------------------------------------------------------------------------

def _lead_features(uow: UnitOfWork, statuses: Sequence[LeadStatus]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, encoded features, status) of the leads with these statuses, one query with a pivot."""
    from crm_sales_automation.enums import Factor

    pivots = [func.max(case((Assessment.factor == f, Assessment.points))).label(f.value) for f in Factor]
    q = (select(Lead.id, Lead.source, Lead.company, Lead.email, Lead.phone, Lead.status, *pivots)
         .outerjoin(Assessment, Assessment.lead_id == Lead.id)
         .where(Lead.status.in_(list(statuses)))
         .group_by(Lead.id, Lead.source, Lead.company, Lead.email, Lead.phone, Lead.status)
         .order_by(Lead.id))
    ids, rows, status = [], [], []
    for r in uow.session.execute(q):
        pts = {f.value: getattr(r, f.value) for f in Factor}
        ids.append(r.id)
        rows.append(scoring.encode(_value(r.source), bool(r.company), bool(r.email), bool(r.phone), pts))
        status.append(LeadStatus(r.status).value)
    X = np.asarray(rows, dtype=np.int64).reshape(len(rows), len(scoring.FIELDS))
    return np.asarray(ids, dtype=np.int64), X, np.asarray(status)


def _value(v: Any) -> str:
    """An enum's value (raw SQL rows may give the plain string)."""
    return v.value if hasattr(v, "value") else str(v)


def learn_lead_scores(uow: UnitOfWork, alpha: float = 1.0) -> dict[str, Any]:
    """Fit the naive Bayes lead model on closed leads and score every open lead.

    Writes only ``sales_leads.learned_score`` / ``learned_at`` and the stored model; the
    hand-set assessment and statuses are never changed.
    """
    uow.require("sales.lead.write")
    _, X, status = _lead_features(uow, [LeadStatus.CONVERTED, LeadStatus.DISQUALIFIED])
    y = (status == LeadStatus.CONVERTED.value).astype(np.int64)
    try:
        params = scoring.fit(X, y, alpha=alpha)
    except ValueError as e:
        raise InvalidInput(f"cannot learn lead scores: {e}") from None
    model = uow.session.scalar(select(LearnedModel).where(LearnedModel.kind == "lead_nb"))
    now = utcnow()
    if model is None:
        model = LearnedModel(kind="lead_nb", fitted_by=uow.actor, n_samples=int(X.shape[0]), params=params, fitted_at=now)
        uow.session.add(model)
    else:
        model.params, model.n_samples, model.fitted_by, model.fitted_at = params, int(X.shape[0]), uow.actor, now
    ids, Xo, _ = _lead_features(uow, [LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.QUALIFIED])
    scored = 0
    if ids.size:
        p, _ = scoring.predict(params, Xo)
        from sqlalchemy import bindparam

        stmt = update(Lead.__table__).where(Lead.__table__.c.id == bindparam("lid")).values(
            learned_score=bindparam("score"), learned_at=bindparam("at"))
        uow.session.execute(stmt, [{"lid": int(i), "score": float(100 * s), "at": now} for i, s in zip(ids, p)])
        scored = int(ids.size)
        uow.session.expire_all()
    uow.session.flush()
    _audit(uow, "learn", "lead_model", "lead_nb", after={"samples": int(X.shape[0]), "scored": scored})
    return {"samples": int(X.shape[0]), "converted": int(y.sum()), "disqualified": int((1 - y).sum()),
            "scored": scored, "fields": list(scoring.FIELDS)}
