"""The plugin's service layer: leads, conversion, pipelines, deals, objections, activities, quotas.

Every function takes the caller's unit of work, flushes and never commits, checks its
``sales.*`` permission before writing anything, and raises crmcore errors (InvalidInput,
NotFound, Conflict) that the CLI shows as one line. Writes to a deal lock its row first
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's writing units of work hold the database's
write lock from their first statement), so two people moving or winning the same deal at once
are serialised and the second one sees the first one's result.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import case, func, or_, select, update

from crm_sales_automation import scoring
from crm_sales_automation import visibility as visible
from crm_sales_automation.enums import (
    ACTIVITY_CHANNEL,
    LeadStatus,
    OpportunityStatus,
    StageKind,
)
from crm_sales_automation.models import (
    Activity,
    Assessment,
    Conversion,
    Lead,
    LearnedModel,
    Objection,
    Opportunity,
    Pipeline,
    Quota,
    Stage,
    StageChange,
)
from crm_sales_automation.schemas import (
    PLUGIN_ID,
    ActivityCreate,
    FactorScore,
    LeadCreate,
    ObjectionCreate,
    OpportunityCreate,
    OpportunityUpdate,
    PipelineCreate,
    QuotaSet,
    SalesSettings,
    StageSpec,
)
from crmcore.db.types import utcnow
from crmcore.enums import CustomerKind
from crmcore.errors import Conflict, InvalidInput, NotFound
from crmcore.models import Account, Contact, Customer, User
from crmcore.schemas import AccountCreate, ContactCreate, CustomerCreate, InteractionCreate, TransactionCreate
from crmcore.sdk import clean_text, new_ref
from crmcore.uow import UnitOfWork

DEFAULT_PIPELINE = "default"
#: The default pipeline follows the selling process (name, label, default win probability %).
DEFAULT_STAGES: tuple[tuple[str, str, int], ...] = (
    ("prospecting", "prospecting", 10),
    ("qualification", "qualification", 20),
    ("approach", "approach", 30),
    ("presentation", "presentation / demo", 50),
    ("objection_handling", "objection handling", 60),
    ("closing", "closing", 80),
)
WON, LOST = "won", "lost"
INVOICE_PREFIX = "SALES-OPP-"


# =============================================================================================
# plumbing
# =============================================================================================

def settings_for(uow: UnitOfWork) -> SalesSettings:
    """The plugin's validated settings (crmcore's settings registry, or crm.toml when the plugin
    is used without it being registered, e.g. from a script)."""
    try:
        return uow.crm.settings(PLUGIN_ID)  # type: ignore[attr-defined,no-any-return]
    except (AttributeError, NotFound):
        from crmcore.sdk import load_plugin_settings

        return load_plugin_settings(PLUGIN_ID, SalesSettings, uow.crm.config)[0]


def today() -> dt.date:
    return utcnow().date()


def _user_id(uow: UnitOfWork, username: str | None) -> int | None:
    """The id of ``username``; without one, the acting user when it is a user of this CRM."""
    if username is not None:
        return uow.users.id_for(username)
    return uow.session.scalar(select(User.id).where(User.username == uow.actor))


def _usernames(uow: UnitOfWork, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(uow.session.execute(select(User.id, User.username).where(User.id.in_(wanted))).all())


def _check_amount(amount: Decimal, currency: str, name: str = "amount") -> None:
    """The core's per-currency check: no more decimals than the currency has (JPY 0, EUR 2, KWD 3)."""
    from crmcore.schemas.account import check_amount

    try:
        check_amount(amount, currency)
    except ValueError as e:
        raise InvalidInput(f"invalid input: {name}: {e}", [(name, str(e))]) from None


def _audit(uow: UnitOfWork, action: str, entity: str, key: object, before: dict[str, Any] | None = None,
           after: dict[str, Any] | None = None) -> None:
    uow.audit.record(action, f"sales.{entity}", key, before=before, after=after)


# =============================================================================================
# pipelines and stages
# =============================================================================================

def _add_stages(uow: UnitOfWork, pipeline: Pipeline, specs: Sequence[StageSpec]) -> None:
    rows = [(s.name, s.label or s.name.replace("_", " "), s.probability, StageKind.OPEN) for s in specs]
    rows += [(WON, "won", 100, StageKind.WON), (LOST, "lost", 0, StageKind.LOST)]
    for pos, (name, label, prob, kind) in enumerate(rows, start=1):
        uow.session.add(Stage(pipeline_id=pipeline.id, name=name, label=label, position=pos, probability=prob, kind=kind))
    uow.session.flush()


def ensure_default_pipeline(uow: UnitOfWork) -> Pipeline:
    """The default pipeline, created on first use (two processes racing: the loser re-reads)."""
    p = uow.session.scalar(select(Pipeline).where(Pipeline.is_default))
    if p is not None:
        return p
    existing = uow.session.scalar(select(Pipeline).where(Pipeline.name == DEFAULT_PIPELINE))
    if existing is not None:
        return existing
    from sqlalchemy.exc import IntegrityError

    try:
        with uow.session.begin_nested():
            p = Pipeline(name=DEFAULT_PIPELINE, is_default=True)
            uow.session.add(p)
            uow.session.flush()
            _add_stages(uow, p, [StageSpec(name=n, label=lb, probability=pr) for n, lb, pr in DEFAULT_STAGES])
    except IntegrityError:
        p = uow.session.scalar(select(Pipeline).where(Pipeline.name == DEFAULT_PIPELINE))
        assert p is not None
    return p


def create_pipeline(uow: UnitOfWork, data: PipelineCreate) -> Pipeline:
    uow.require("sales.pipeline.manage")
    ensure_default_pipeline(uow)
    if uow.session.scalar(select(Pipeline.id).where(Pipeline.name == data.name)) is not None:
        raise Conflict(f"pipeline {data.name!r} already exists")
    p = Pipeline(name=data.name, is_default=False)
    uow.session.add(p)
    uow.session.flush()
    _add_stages(uow, p, data.stages)
    _audit(uow, "create", "pipeline", p.id, after=data.model_dump())
    return p


def get_pipeline(uow: UnitOfWork, name: str | None = None) -> Pipeline:
    if name is None:
        return ensure_default_pipeline(uow)
    p = uow.session.scalar(select(Pipeline).where(Pipeline.name == name))
    if p is None:
        if name == DEFAULT_PIPELINE:
            return ensure_default_pipeline(uow)
        known = ", ".join(uow.session.scalars(select(Pipeline.name).order_by(Pipeline.name))) or DEFAULT_PIPELINE
        raise NotFound("pipeline", f"{name!r} (pipelines: {known})")
    return p


def stages_of(uow: UnitOfWork, pipeline_id: int) -> list[Stage]:
    return list(uow.session.scalars(select(Stage).where(Stage.pipeline_id == pipeline_id).order_by(Stage.position)))


def stage_named(uow: UnitOfWork, pipeline: Pipeline, name: str) -> Stage:
    stage = uow.session.scalar(select(Stage).where(Stage.pipeline_id == pipeline.id, Stage.name == name))
    if stage is None:
        names = ", ".join(s.name for s in stages_of(uow, pipeline.id))
        raise InvalidInput(f"invalid input: stage: unknown stage {name!r} in pipeline {pipeline.name!r} (stages: {names})",
                           [("stage", "unknown stage")])
    return stage


def list_pipelines(uow: UnitOfWork) -> list[dict[str, Any]]:
    ensure_default_pipeline(uow) if not uow.session.scalar(select(Pipeline.id).limit(1)) else None
    out = []
    for p in uow.session.scalars(select(Pipeline).order_by(Pipeline.is_default.desc(), Pipeline.name)):
        out.append({"id": p.id, "name": p.name, "default": p.is_default,
                    "stages": [{"name": s.name, "label": s.label, "position": s.position, "probability": s.probability,
                                "kind": s.kind.value} for s in stages_of(uow, p.id)]})
    return out


def board(uow: UnitOfWork, name: str | None = None, per_stage: int = 10) -> dict[str, Any]:
    """The pipeline as columns: per stage its open deals (largest first), count and values per currency."""
    p = get_pipeline(uow, name)
    stages = stages_of(uow, p.id)
    prob = func.coalesce(Opportunity.probability, Stage.probability)
    totals = uow.session.execute(
        select(Opportunity.stage_id, Opportunity.currency, func.count(), func.sum(Opportunity.amount),
               func.sum(Opportunity.amount * prob))
        .join(Stage, Stage.id == Opportunity.stage_id)
        .where(Opportunity.pipeline_id == p.id, Opportunity.status == OpportunityStatus.OPEN, visible.deals(uow))
        .group_by(Opportunity.stage_id, Opportunity.currency)).all()
    rank = func.row_number().over(partition_by=Opportunity.stage_id,
                                  order_by=(Opportunity.amount.desc(), Opportunity.id)).label("rank")
    ranked = (select(Opportunity.id, Opportunity.stage_id, Opportunity.title, Opportunity.amount, Opportunity.currency,
                     Opportunity.owner_id, Customer.name.label("customer"), rank)
              .join(Customer, Customer.id == Opportunity.customer_id)
              .where(Opportunity.pipeline_id == p.id, Opportunity.status == OpportunityStatus.OPEN, visible.deals(uow))
              .subquery())
    cards = uow.session.execute(select(ranked).where(ranked.c.rank <= per_stage).order_by(ranked.c.stage_id, ranked.c.rank)).all()
    names = _usernames(uow, [c.owner_id for c in cards])
    columns = []
    for s in stages:
        if s.kind is not StageKind.OPEN:
            continue
        t = [r for r in totals if r[0] == s.id]
        columns.append({
            "stage": s.name, "label": s.label, "probability": s.probability,
            "count": sum(r[2] for r in t),
            "value": {r[1]: Decimal(r[3]).quantize(Decimal("0.01")) for r in t},
            "weighted": {r[1]: (Decimal(r[4]) / 100).quantize(Decimal("0.01")) for r in t},
            "deals": [{"id": c.id, "title": c.title, "customer": c.customer, "amount": Decimal(c.amount).quantize(Decimal("0.01")),
                       "currency": c.currency, "owner": names.get(c.owner_id)} for c in cards if c.stage_id == s.id],
        })
    return {"pipeline": p.name, "columns": columns}


# =============================================================================================
# leads and the five-factor assessment
# =============================================================================================

def get_lead(uow: UnitOfWork, lead_id: int) -> Lead:
    lead = uow.session.get(Lead, lead_id)
    if lead is None:
        raise NotFound("lead", lead_id)
    return visible.check_lead(uow, lead)  # an "own" user's lead, or not found like a missing one


def lead_by_email(uow: UnitOfWork, email: str) -> Lead | None:
    return uow.session.scalar(select(Lead).where(func.lower(Lead.email) == email.lower()).order_by(Lead.id).limit(1))


def add_lead(uow: UnitOfWork, data: LeadCreate) -> Lead:
    uow.require("sales.lead.write")
    if data.external_ref and uow.session.scalar(select(Lead.id).where(Lead.external_ref == data.external_ref)):
        raise Conflict(f"lead reference {data.external_ref!r} already exists")
    if data.email:
        other = lead_by_email(uow, data.email)
        if other is not None:
            raise Conflict(f"lead {other.id} ({other.name}) already has the email {data.email}; not duplicated")
    lead = Lead(name=data.name, company=data.company, email=data.email, phone=data.phone, country=data.country,
                source=data.source, notes=data.notes, status=LeadStatus.NEW,
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


def update_lead(uow: UnitOfWork, lead_id: int, *, owner: str | None = None, notes: str | None = None) -> Lead:
    """Change a lead's owner (a username) or notes (an empty string clears them)."""
    uow.require("sales.lead.write")
    lead = get_lead(uow, lead_id)
    before: dict[str, Any] = {}
    if owner is not None:
        before["owner_id"], lead.owner_id = lead.owner_id, uow.users.id_for(owner)
    if notes is not None:
        before["notes"], lead.notes = lead.notes, notes.strip()[:10000] or None
    uow.session.flush()
    _audit(uow, "update", "lead", lead_id, before=before, after={"owner": owner, "notes": notes})
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
            "phone": lead.phone, "country": lead.country, "source": lead.source.value, "status": lead.status.value,
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
        row = scoring.encode(lead.source.value, bool(lead.company), bool(lead.email), bool(lead.phone), pts)
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


# -- conversion --------------------------------------------------------------------------------------

_LEGAL = {"gmbh", "ag", "kg", "ohg", "ug", "ltd", "limited", "inc", "llc", "plc", "corp", "co", "company", "sa", "sas",
          "sarl", "srl", "spa", "bv", "nv", "oy", "ab", "as", "kft", "sro", "the", "und", "and"}


def normalise_name(name: str) -> str:
    """Lower case, accents and punctuation removed, legal forms dropped: 'Alpine Kitchens GmbH' -> 'alpine kitchens'."""
    s = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower().replace("&", " ")
    words = [w for w in re.split(r"[^a-z0-9]+", s) if w and w not in _LEGAL]
    return " ".join(words)


@dataclass
class Match:
    customer_id: int
    name: str
    ref: str | None
    by: list[str]


def find_matches(uow: UnitOfWork, lead: Lead) -> list[Match]:
    """Existing customers that may be this lead: same email, same phone, or same normalised name.

    Email and phone are compared in SQL; names are narrowed in SQL by their longest word, then
    compared normalised.
    """
    target = normalise_name(lead.company or lead.name)
    conds = []
    if lead.email:
        conds.append(func.lower(Customer.email) == lead.email.lower())
    if lead.phone:
        conds.append(Customer.phone == lead.phone)
    words = sorted(target.split(), key=len, reverse=True)
    if words:
        esc = words[0].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conds.append(func.lower(Customer.name).like(f"%{esc}%", escape="\\"))
    if not conds:
        return []
    found: dict[int, Match] = {}
    q = select(Customer).where(or_(*conds), Customer.archived.is_(False)).order_by(Customer.id).limit(500)
    for c in uow.session.scalars(q):
        by = []
        if lead.email and c.email and c.email.lower() == lead.email.lower():
            by.append("email")
        if lead.phone and c.phone == lead.phone:
            by.append("phone")
        if target and normalise_name(c.name) == target:
            by.append("name")
        if by:
            found[c.id] = Match(c.id, c.name, c.external_ref, by)
    return list(found.values())


@dataclass
class ConversionResult:
    lead_id: int
    customer_id: int
    customer_created: bool
    matched_by: str
    contact_id: int | None
    opportunity_id: int | None
    matches: list[Match] = field(default_factory=list)


def convert(uow: UnitOfWork, lead_id: int, *, customer_id: int | None = None, new: bool = False,
            opportunity: OpportunityCreate | None = None) -> ConversionResult:
    """Turn a qualified lead into a customer (with its contact), or match it to an existing one.

    - ``customer_id``: use this customer (the user chose among the matches);
    - ``new``: create a new customer even if some match (``--new``);
    - otherwise one customer with the same email or phone is used (shown as the match); a match
      by name only, or several candidates, is refused with the list, so nothing is duplicated
      silently and nothing is merged by guess.
    """
    uow.require("sales.lead.write")
    lead = get_lead(uow, lead_id)
    # lock the lead and re-read it (PostgreSQL FOR NO KEY UPDATE; SQLite's writing units of work hold the
    # write lock): conversions of one lead at the same instant queue here, and the later ones see
    # it converted. UNIQUE(sales_conversions.lead_id) backs this up.
    uow.session.flush()
    uow.session.refresh(lead, with_for_update={"key_share": True})
    if lead.status is LeadStatus.CONVERTED:
        raise Conflict(f"lead {lead_id} is already converted (customer {lead.customer_id})")
    if lead.status is LeadStatus.DISQUALIFIED:
        raise Conflict(f"lead {lead_id} is disqualified; requalify it (`crm sales lead update {lead_id} --status qualified`) to convert it")
    if lead.status is not LeadStatus.QUALIFIED:
        raise Conflict(f"lead {lead_id} is {lead.status.value}; only a qualified lead is converted "
                       f"(`crm sales lead update {lead_id} --status qualified`)")
    if customer_id is not None and new:
        raise InvalidInput("give either --customer or --new, not both")
    matches = [] if (new or customer_id is not None) else find_matches(uow, lead)
    created = False
    if customer_id is not None:
        customer = uow.customers.get(customer_id)
        if customer.archived:
            raise Conflict(f"customer {customer_id} is archived")
        matched_by = "chosen"
    elif new or not matches:
        org = bool(lead.company)
        customer = uow.customers.create(CustomerCreate(
            name=lead.company or lead.name, kind=CustomerKind.ORGANIZATION if org else CustomerKind.PERSON,
            email=None if org else lead.email, phone=None if org else lead.phone, country=lead.country,
            owner=_username(uow, lead.owner_id)))
        created, matched_by = True, "new"
    else:
        strong = [m for m in matches if {"email", "phone"} & set(m.by)]
        if len(matches) == 1 and strong:
            customer = uow.customers.get(strong[0].customer_id)
            matched_by = strong[0].by[0]
        else:
            listed = "; ".join(f"#{m.customer_id} {m.name} (same {', '.join(m.by)})" for m in matches[:10])
            raise Conflict(f"lead {lead_id} may already be a customer: {listed}; convert with --customer ID to use one, "
                           "or --new to create a new customer")
    contact_id = None
    if customer.kind is not CustomerKind.PERSON and (lead.company or customer.name != lead.name):
        same = None
        if lead.email:
            same = uow.session.scalar(select(Contact.id).where(Contact.customer_id == customer.id,
                                                               func.lower(Contact.email) == lead.email.lower()))
        contact_id = same or uow.contacts.add(customer.id, ContactCreate(name=lead.name, email=lead.email, phone=lead.phone)).id
    opp_id = None
    if opportunity is not None:
        opp_id = add_opportunity(uow, customer.id, opportunity, lead_id=lead.id).id
    lead.status, lead.customer_id = LeadStatus.CONVERTED, customer.id
    uow.session.add(Conversion(lead_id=lead.id, customer_id=customer.id, contact_id=contact_id, opportunity_id=opp_id,
                               matched_by=matched_by, converted_by=uow.actor))
    uow.session.flush()
    _audit(uow, "convert", "lead", lead.id, after={"customer_id": customer.id, "matched_by": matched_by,
                                                   "contact_id": contact_id, "opportunity_id": opp_id})
    uow.hooks.call("sales_lead_converted", uow=uow, lead=lead, customer_id=customer.id, opportunity_id=opp_id)
    return ConversionResult(lead.id, customer.id, created, matched_by, contact_id, opp_id, matches)


def _username(uow: UnitOfWork, user_id: int | None) -> str | None:
    return None if user_id is None else uow.session.scalar(select(User.username).where(User.id == user_id))


# =============================================================================================
# opportunities
# =============================================================================================

def get_opportunity(uow: UnitOfWork, opp_id: int, *, lock: bool = False) -> Opportunity:
    q = select(Opportunity).where(Opportunity.id == opp_id)
    if lock:
        q = q.with_for_update().execution_options(populate_existing=True)
    opp = uow.session.scalar(q)
    if opp is None:
        raise NotFound("opportunity", opp_id)
    return visible.check_deal(uow, opp)  # a deal of an invisible customer is not found, like a missing one


def _record_stage(uow: UnitOfWork, opp: Opportunity, from_stage: Stage | None, to_stage: Stage, at: dt.datetime) -> None:
    uow.session.add(StageChange(opportunity_id=opp.id, from_stage_id=None if from_stage is None else from_stage.id,
                                to_stage_id=to_stage.id, changed_by=uow.actor, changed_at=at))


def add_opportunity(uow: UnitOfWork, customer_id: int, data: OpportunityCreate, *, lead_id: int | None = None) -> Opportunity:
    uow.require("sales.opportunity.write")
    customer = uow.customers.get(customer_id)
    if customer.archived:
        raise Conflict(f"customer {customer_id} is archived")
    pipeline = get_pipeline(uow, data.pipeline)
    stages = stages_of(uow, pipeline.id)
    stage = stage_named(uow, pipeline, data.stage) if data.stage else stages[0]
    if stage.kind is not StageKind.OPEN:
        raise InvalidInput(f"invalid input: stage: a new opportunity starts in an open stage, not {stage.name!r}",
                           [("stage", "closed stage")])
    now = utcnow()
    currency = data.currency or settings_for(uow).default_currency
    _check_amount(data.amount, currency)
    opp = Opportunity(customer_id=customer_id, title=data.title, amount=data.amount,
                      currency=currency, pipeline_id=pipeline.id,
                      stage_id=stage.id, probability=data.probability, expected_close=data.expected_close,
                      owner_id=_user_id(uow, data.owner), next_step=data.next_step, status=OpportunityStatus.OPEN,
                      lead_id=lead_id, created_at=now, updated_at=now, reached_position=stage.position)
    uow.session.add(opp)
    uow.session.flush()
    _record_stage(uow, opp, None, stage, now)
    uow.session.flush()
    _audit(uow, "create", "opportunity", opp.id, after={"customer_id": customer_id, **data.model_dump()})
    return opp


def update_opportunity(uow: UnitOfWork, opp_id: int, data: OpportunityUpdate) -> Opportunity:
    uow.require("sales.opportunity.write")
    given = data.model_dump(exclude_unset=True)
    if not given:
        raise InvalidInput("nothing to update: give at least one field")
    opp = get_opportunity(uow, opp_id, lock=True)
    if opp.status is not OpportunityStatus.OPEN:
        raise Conflict(f"opportunity {opp_id} is {opp.status.value}; a closed deal is not changed")
    if data.amount is not None:
        _check_amount(data.amount, opp.currency)
    before = {k: getattr(opp, "owner_id" if k == "owner" else k) for k in given}
    for k, v in given.items():
        if k == "owner":
            opp.owner_id = _user_id(uow, v)
        else:
            setattr(opp, k, v)
    uow.session.flush()
    _audit(uow, "update", "opportunity", opp_id, before=before, after=given)
    return opp


def _stage(uow: UnitOfWork, stage_id: int) -> Stage:
    s = uow.session.get(Stage, stage_id)
    assert s is not None
    return s


def _closing_stage(uow: UnitOfWork, pipeline_id: int, kind: StageKind) -> Stage:
    s = uow.session.scalar(select(Stage).where(Stage.pipeline_id == pipeline_id, Stage.kind == kind))
    if s is None:
        raise Conflict(f"pipeline {pipeline_id} has no {kind.value} stage")
    return s


def _require_open(opp: Opportunity, verb: str) -> None:
    if opp.status is not OpportunityStatus.OPEN:
        raise Conflict(f"opportunity {opp.id} is already {opp.status.value}; a closed deal cannot be {verb}")


def move(uow: UnitOfWork, opp_id: int, stage_name: str) -> Opportunity:
    """Move an open deal to another open stage of its pipeline; the change is recorded."""
    uow.require("sales.opportunity.move")
    opp = get_opportunity(uow, opp_id, lock=True)
    _require_open(opp, "moved")
    pipeline = uow.session.get(Pipeline, opp.pipeline_id)
    assert pipeline is not None
    to = stage_named(uow, pipeline, stage_name)
    if to.kind is StageKind.WON:
        raise InvalidInput(f"invalid input: stage: use `crm sales opp win {opp_id}` to win a deal (other plugins may check it)",
                           [("stage", "won")])
    if to.kind is StageKind.LOST:
        raise InvalidInput(f"invalid input: stage: use `crm sales opp lose {opp_id} --reason ...` to lose a deal",
                           [("stage", "lost")])
    frm = _stage(uow, opp.stage_id)
    if frm.id == to.id:
        raise Conflict(f"opportunity {opp_id} is already in stage {to.name!r}")
    now = utcnow()
    opp.stage_id, opp.updated_at = to.id, now
    opp.reached_position = max(opp.reached_position, to.position)
    _record_stage(uow, opp, frm, to, now)
    uow.session.flush()
    _audit(uow, "move", "opportunity", opp_id, before={"stage": frm.name}, after={"stage": to.name})
    uow.hooks.call("sales_opportunity_stage_changed", uow=uow, opportunity=opp, from_stage=frm.name, to_stage=to.name)
    return opp


def win(uow: UnitOfWork, opp_id: int) -> Opportunity:
    """Win a deal: the published guard ``sales_before_opportunity_won`` may refuse it (nothing is
    written then); otherwise the win is recorded, and with ``invoice_on_win`` the invoice posted."""
    uow.require("sales.opportunity.win")
    opp = get_opportunity(uow, opp_id, lock=True)
    _require_open(opp, "won")
    uow.hooks.call("sales_before_opportunity_won", uow=uow, opportunity=opp)
    frm, to = _stage(uow, opp.stage_id), _closing_stage(uow, opp.pipeline_id, StageKind.WON)
    now = utcnow()
    opp.status, opp.stage_id, opp.closed_at, opp.updated_at = OpportunityStatus.WON, to.id, now, now
    opp.reached_position = to.position
    _record_stage(uow, opp, frm, to, now)
    uow.session.flush()
    _audit(uow, "win", "opportunity", opp_id, before={"stage": frm.name}, after={"status": "won", "amount": opp.amount,
                                                                                 "currency": opp.currency})
    uow.hooks.call("sales_opportunity_stage_changed", uow=uow, opportunity=opp, from_stage=frm.name, to_stage=to.name)
    uow.hooks.call("sales_opportunity_won", uow=uow, opportunity=opp)
    if settings_for(uow).invoice_on_win:
        invoice(uow, opp_id)
    return opp


def lose(uow: UnitOfWork, opp_id: int, reason: str) -> Opportunity:
    uow.require("sales.opportunity.move")
    if reason is None or (isinstance(reason, str) and not reason.strip()):
        raise InvalidInput("invalid input: reason: a lost deal needs a reason", [("reason", "required")])
    reason = clean_text(reason, "reason", max_length=500, multiline=True, required=True) or ""  # no control characters
    opp = get_opportunity(uow, opp_id, lock=True)
    _require_open(opp, "lost")
    frm, to = _stage(uow, opp.stage_id), _closing_stage(uow, opp.pipeline_id, StageKind.LOST)
    now = utcnow()
    opp.status, opp.stage_id, opp.closed_at, opp.updated_at, opp.lost_reason = OpportunityStatus.LOST, to.id, now, now, reason
    _record_stage(uow, opp, frm, to, now)
    uow.session.flush()
    _audit(uow, "lose", "opportunity", opp_id, before={"stage": frm.name}, after={"status": "lost", "reason": reason})
    uow.hooks.call("sales_opportunity_stage_changed", uow=uow, opportunity=opp, from_stage=frm.name, to_stage=to.name)
    uow.hooks.call("sales_opportunity_lost", uow=uow, opportunity=opp, reason=reason)
    return opp


def invoice(uow: UnitOfWork, opp_id: int) -> tuple[Any, bool]:
    """Post the won deal's invoice to the customer's account through the core (its posting guard
    applies). Idempotent: the reference ``SALES-OPP-<id>`` makes a second call a no-op."""
    uow.require("sales.opportunity.win")
    opp = get_opportunity(uow, opp_id, lock=True)
    if opp.status is not OpportunityStatus.WON:
        raise Conflict(f"opportunity {opp_id} is {opp.status.value}; only a won deal is invoiced")
    if opp.amount <= 0:
        raise Conflict(f"opportunity {opp_id} has no amount to invoice")
    account_id = uow.session.scalar(select(Account.id).where(Account.customer_id == opp.customer_id,
                                                             Account.currency == opp.currency)
                                    .order_by(Account.is_default.desc(), Account.id).limit(1))
    if account_id is None and uow.session.scalar(select(Account.id).where(Account.customer_id == opp.customer_id).limit(1)):
        account_id = uow.accounts.open(opp.customer_id, AccountCreate(currency=opp.currency)).id
    if opp.invoiced_at is None:
        # marked invoiced before posting, so a credit check run by the posting guard does not count
        # the deal twice (as won-not-invoiced exposure and as the new invoice); a refusal rolls both back
        opp.invoiced_at, opp.invoice_ref = utcnow(), f"{INVOICE_PREFIX}{opp.id}"
        uow.session.flush()
    entry, created = uow.accounts.post(opp.customer_id, TransactionCreate(
        kind="invoice", amount=opp.amount, currency=opp.currency, reference=f"{INVOICE_PREFIX}{opp.id}",
        description=opp.title[:500], source=PLUGIN_ID), account_id=account_id)
    return entry, created


def uninvoiced_won(uow: UnitOfWork, customer_id: int, currency: str) -> Decimal:
    total = uow.session.scalar(select(func.coalesce(func.sum(Opportunity.amount), 0)).where(
        Opportunity.customer_id == customer_id, Opportunity.currency == currency,
        Opportunity.status == OpportunityStatus.WON, Opportunity.invoiced_at.is_(None)))
    return Decimal(total or 0).quantize(Decimal("0.01"))


def effective_probability(opp: Opportunity, stage: Stage) -> int:
    return stage.probability if opp.probability is None else opp.probability


def opportunity_rows(uow: UnitOfWork, q: Any) -> list[dict[str, Any]]:
    rows = uow.session.execute(q.add_columns(Stage.name, Stage.probability, Pipeline.name, Customer.name)
                               .join(Stage, Stage.id == Opportunity.stage_id)
                               .join(Pipeline, Pipeline.id == Opportunity.pipeline_id)
                               .join(Customer, Customer.id == Opportunity.customer_id)
                               .where(uow.visibility.customer_clause(Customer.owner_id))).all()
    names = _usernames(uow, [r[0].owner_id for r in rows])
    out = []
    for opp, stage, stage_prob, pipeline, customer in rows:
        prob = stage_prob if opp.probability is None else opp.probability
        out.append({"id": opp.id, "title": opp.title, "customer_id": opp.customer_id, "customer": customer,
                    "amount": opp.amount, "currency": opp.currency, "pipeline": pipeline, "stage": stage,
                    "probability": prob, "probability_set": opp.probability is not None,
                    "weighted": (opp.amount * prob / 100).quantize(Decimal("0.01")),
                    "expected_close": opp.expected_close, "owner": names.get(opp.owner_id), "next_step": opp.next_step,
                    "status": opp.status.value, "lost_reason": opp.lost_reason, "closed_at": opp.closed_at,
                    "invoiced": opp.invoice_ref, "created_at": opp.created_at, "version": opp.version})
    return out


def list_opportunities(uow: UnitOfWork, *, status: str | None = "open", owner: str | None = None,
                       pipeline: str | None = None, stage: str | None = None, customer_id: int | None = None,
                       limit: int = 50) -> list[dict[str, Any]]:
    q = select(Opportunity).order_by(Opportunity.id).limit(limit)
    if status:
        q = q.where(Opportunity.status == OpportunityStatus(status))
    if owner:
        q = q.where(Opportunity.owner_id == uow.users.id_for(owner))
    if pipeline or stage:
        p = get_pipeline(uow, pipeline)
        q = q.where(Opportunity.pipeline_id == p.id)
        if stage:
            q = q.where(Opportunity.stage_id == stage_named(uow, p, stage).id)
    if customer_id is not None:
        q = q.where(Opportunity.customer_id == customer_id)
    return opportunity_rows(uow, q)


def opportunity_detail(uow: UnitOfWork, opp_id: int) -> dict[str, Any]:
    get_opportunity(uow, opp_id)
    out = opportunity_rows(uow, select(Opportunity).where(Opportunity.id == opp_id))[0]
    frm = Stage.__table__.alias("frm")
    to = Stage.__table__.alias("to_")
    hist = uow.session.execute(
        select(StageChange.changed_at, StageChange.changed_by, frm.c.name, to.c.name)
        .outerjoin(frm, frm.c.id == StageChange.from_stage_id).join(to, to.c.id == StageChange.to_stage_id)
        .where(StageChange.opportunity_id == opp_id).order_by(StageChange.changed_at, StageChange.id)).all()
    out["history"] = [{"at": at, "by": by, "from": f, "to": t} for at, by, f, t in hist]
    out["objections"] = [{"id": o.id, "kind": o.kind.value, "description": o.description, "handling": o.handling,
                          "resolved": o.resolved, "by": o.raised_by, "at": o.raised_at}
                         for o in uow.session.scalars(select(Objection).where(Objection.opportunity_id == opp_id).order_by(Objection.id))]
    out["activities"] = activity_rows(uow, select(Activity).where(Activity.opportunity_id == opp_id))
    return out


# -- objections ------------------------------------------------------------------------------------

def add_objection(uow: UnitOfWork, opp_id: int, data: ObjectionCreate) -> Objection:
    uow.require("sales.opportunity.write")
    opp = get_opportunity(uow, opp_id)
    _require_open(opp, "changed")
    o = Objection(opportunity_id=opp_id, kind=data.kind, description=data.description, handling=data.handling,
                  resolved=data.resolved, raised_by=uow.actor)
    uow.session.add(o)
    uow.session.flush()
    _audit(uow, "objection", "opportunity", opp_id, after=data.model_dump())
    return o


def resolve_objection(uow: UnitOfWork, objection_id: int, handling: str | None, resolved: bool = True) -> Objection:
    uow.require("sales.opportunity.write")
    o = uow.session.get(Objection, objection_id)
    if o is None:
        raise NotFound("objection", objection_id)
    before = {"handling": o.handling, "resolved": o.resolved}
    if handling is not None:
        o.handling = handling.strip()[:500] or None
    o.resolved = resolved
    uow.session.flush()
    _audit(uow, "update", "objection", objection_id, before=before, after={"handling": o.handling, "resolved": resolved})
    return o


# =============================================================================================
# activities
# =============================================================================================

def add_activity(uow: UnitOfWork, data: ActivityCreate, *, lead_id: int | None = None, opportunity_id: int | None = None,
                 customer_id: int | None = None) -> Activity:
    uow.require("sales.activity.write")
    if sum(x is not None for x in (lead_id, opportunity_id, customer_id)) != 1:
        raise InvalidInput("an activity is on exactly one of --lead, --opp or --customer")
    owner_id = _user_id(uow, data.owner)
    if lead_id is not None:
        lead = get_lead(uow, lead_id)
        owner_id = owner_id or lead.owner_id
    if opportunity_id is not None:
        opp = get_opportunity(uow, opportunity_id)
        owner_id = owner_id or opp.owner_id
        customer_id = None
    if customer_id is not None and uow.customers.get(customer_id).archived:
        raise Conflict(f"customer {customer_id} is archived")
    a = Activity(kind=data.kind, subject=data.subject, notes=data.notes, due_at=data.due_at, lead_id=lead_id,
                 opportunity_id=opportunity_id, customer_id=customer_id, owner_id=owner_id, created_by=uow.actor)
    uow.session.add(a)
    uow.session.flush()
    _audit(uow, "create", "activity", a.id, after={**data.model_dump(), "lead_id": lead_id,
                                                   "opportunity_id": opportunity_id, "customer_id": customer_id})
    return a


def complete_activity(uow: UnitOfWork, activity_id: int, outcome: str | None = None, at: dt.datetime | None = None) -> Activity:
    """Mark an activity done and log it as a core interaction on the customer behind it.

    A lead that is not yet a customer has no timeline: its activity is marked done only.
    """
    uow.require("sales.activity.write")
    a = uow.session.scalar(select(Activity).where(Activity.id == activity_id).with_for_update())
    if a is None:
        raise NotFound("activity", activity_id)
    if a.done_at is not None:
        raise Conflict(f"activity {activity_id} was already done at {a.done_at:%Y-%m-%d %H:%M}")
    customer_id = a.customer_id
    if a.opportunity_id is not None:
        customer_id = get_opportunity(uow, a.opportunity_id).customer_id
    elif a.lead_id is not None:
        customer_id = get_lead(uow, a.lead_id).customer_id
    a.done_at = at or utcnow()
    a.outcome = outcome.strip()[:200] if outcome else None
    if customer_id is not None:
        interaction = uow.interactions.log(customer_id, InteractionCreate(
            channel=ACTIVITY_CHANNEL[a.kind], direction="outbound",
            kind="sale" if a.opportunity_id is not None else "follow_up", subject=a.subject, notes=a.notes,
            occurred_at=a.done_at, handled_by=_username(uow, a.owner_id), outcome=a.outcome, source=PLUGIN_ID,
            source_ref=f"activity:{a.id}"))
        a.interaction_id = interaction.id
    uow.session.flush()
    _audit(uow, "done", "activity", activity_id, after={"outcome": a.outcome, "interaction_id": a.interaction_id})
    return a


def activity_rows(uow: UnitOfWork, q: Any) -> list[dict[str, Any]]:
    acts = list(uow.session.scalars(q.order_by(Activity.due_at, Activity.id)))
    names = _usernames(uow, [a.owner_id for a in acts])
    now = utcnow()
    return [{"id": a.id, "kind": a.kind.value, "subject": a.subject, "due_at": a.due_at, "done_at": a.done_at,
             "overdue": a.done_at is None and a.due_at is not None and a.due_at < now,
             "lead_id": a.lead_id, "opportunity_id": a.opportunity_id, "customer_id": a.customer_id,
             "owner": names.get(a.owner_id), "outcome": a.outcome, "interaction_id": a.interaction_id} for a in acts]


def due_activities(uow: UnitOfWork, *, owner: str | None = None, until: dt.date | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Open activities due up to ``until`` (default: today), overdue first."""
    end = dt.datetime.combine((until or today()) + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    q = select(Activity).where(Activity.done_at.is_(None), Activity.due_at < end, visible.activities(uow)).limit(limit)
    if owner:
        q = q.where(Activity.owner_id == uow.users.id_for(owner))
    return activity_rows(uow, q)


# =============================================================================================
# quotas, handover, merge
# =============================================================================================

def set_quota(uow: UnitOfWork, data: QuotaSet) -> Quota:
    uow.require("sales.quota.manage")
    _check_amount(data.amount, data.currency)
    owner_id = uow.users.id_for(data.owner)
    assert owner_id is not None
    q = uow.session.scalar(select(Quota).where(Quota.owner_id == owner_id, Quota.period == data.period,
                                               Quota.currency == data.currency))
    before = None if q is None else {"amount": q.amount}
    if q is None:
        q = Quota(owner_id=owner_id, period=data.period, currency=data.currency, amount=data.amount)
        uow.session.add(q)
    else:
        q.amount = data.amount
    uow.session.flush()
    _audit(uow, "quota", "quota", q.id, before=before, after=data.model_dump())
    return q


def handover(uow: UnitOfWork, from_user: str, to_user: str) -> dict[str, int]:
    """Give one rep's open leads, open deals and open activities to another, in one transaction."""
    uow.require("sales.handover")
    src, dst = uow.users.get_by_username(from_user), uow.users.get_by_username(to_user)
    if src.id == dst.id:
        raise InvalidInput("handover to the same user: nothing to do")
    if not dst.active:
        raise Conflict(f"user {to_user} is deactivated")
    counts = {}
    open_leads = [LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.QUALIFIED]
    for name, stmt in (
        ("leads", update(Lead).where(Lead.owner_id == src.id, Lead.status.in_(open_leads)).values(owner_id=dst.id)),
        ("opportunities", update(Opportunity).where(Opportunity.owner_id == src.id, Opportunity.status == OpportunityStatus.OPEN)
         .values(owner_id=dst.id, version=Opportunity.version + 1)),
        ("activities", update(Activity).where(Activity.owner_id == src.id, Activity.done_at.is_(None)).values(owner_id=dst.id)),
    ):
        counts[name] = uow.session.execute(stmt, execution_options={"synchronize_session": False}).rowcount
    uow.session.expire_all()
    _audit(uow, "handover", "user", dst.id, before={"from": from_user}, after={"to": to_user, **counts})
    return counts


def merge_customer_rows(uow: UnitOfWork, source_id: int, target_id: int) -> dict[str, int]:
    """The merge contract: every sales row of the source customer now points at the target."""
    counts = {}
    for model in (Opportunity, Activity, Lead, Conversion):
        res = uow.session.execute(update(model).where(model.customer_id == source_id).values(customer_id=target_id),
                                  execution_options={"synchronize_session": False})
        counts[model.__tablename__] = res.rowcount
    return counts


# =============================================================================================
# the customer's 360° view and timeline
# =============================================================================================

def profile_section(uow: UnitOfWork, customer: Customer) -> Any:
    from crmcore.profile import ProfileSection, ProfileTable

    opps = list_opportunities(uow, status="open", customer_id=customer.id, limit=1000)
    nxt = uow.session.execute(
        select(Activity.id, Activity.kind, Activity.subject, Activity.due_at)
        .outerjoin(Opportunity, Opportunity.id == Activity.opportunity_id)
        .outerjoin(Lead, Lead.id == Activity.lead_id)
        .where(Activity.done_at.is_(None), or_(Activity.customer_id == customer.id, Opportunity.customer_id == customer.id,
                                               Lead.customer_id == customer.id))
        .order_by(Activity.due_at.is_(None), Activity.due_at, Activity.id).limit(1)).first()
    won = uow.session.execute(select(Opportunity.currency, func.count(), func.sum(Opportunity.amount))
                              .where(Opportunity.customer_id == customer.id, Opportunity.status == OpportunityStatus.WON)
                              .group_by(Opportunity.currency)).all()
    if not opps and nxt is None and not won:
        return None
    weighted: dict[str, Decimal] = {}
    for o in opps:
        weighted[o["currency"]] = weighted.get(o["currency"], Decimal("0.00")) + o["weighted"]
    fields = {
        "open opportunities": len(opps),
        "weighted value": ", ".join(f"{v:,.2f} {c}" for c, v in sorted(weighted.items())) or "0",
        "next activity": None if nxt is None else
        f"{nxt.due_at:%Y-%m-%d} {nxt.kind.value}: {nxt.subject}" if nxt.due_at else f"{nxt.kind.value}: {nxt.subject}",
        "won deals": ", ".join(f"{n} ({Decimal(s):,.2f} {c})" for c, n, s in won) or "none",
    }
    table = ProfileTable("Open opportunities", ["id", "title", "stage", "amount", "currency", "probability", "expected close", "owner"],
                         [[o["id"], o["title"], o["stage"], str(o["amount"]), o["currency"], o["probability"],
                           None if o["expected_close"] is None else o["expected_close"].isoformat(), o["owner"]] for o in opps])
    return ProfileSection(title="Sales", fields=fields, tables=[table] if opps else [])


def timeline(uow: UnitOfWork, customer: Customer) -> list[Any]:
    from crmcore.profile import TimelineEntry

    rows = uow.session.execute(select(Opportunity).where(Opportunity.customer_id == customer.id,
                                                         Opportunity.status != OpportunityStatus.OPEN,
                                                         Opportunity.closed_at.is_not(None))).scalars()
    out = []
    for o in rows:
        if o.status is OpportunityStatus.WON:
            out.append(TimelineEntry(o.closed_at, "opportunity won", f"{o.title}: {o.amount:,.2f} {o.currency}", f"opp {o.id}"))
        else:
            out.append(TimelineEntry(o.closed_at, "opportunity lost", f"{o.title}: {o.lost_reason}", f"opp {o.id}"))
    return out


__all__ = [
    "DEFAULT_STAGES",
    "ConversionResult",
    "Match",
    "add_activity",
    "add_lead",
    "add_objection",
    "add_opportunity",
    "assess",
    "board",
    "complete_activity",
    "convert",
    "create_pipeline",
    "due_activities",
    "find_matches",
    "handover",
    "invoice",
    "lead_detail",
    "learn_lead_scores",
    "list_leads",
    "list_opportunities",
    "list_pipelines",
    "lose",
    "merge_customer_rows",
    "move",
    "normalise_name",
    "opportunity_detail",
    "set_lead_status",
    "set_quota",
    "uninvoiced_won",
    "update_opportunity",
    "win",
]
