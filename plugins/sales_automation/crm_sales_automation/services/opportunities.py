"""Opportunities (deals): add, move, win, lose, invoice; their objections."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from crm_sales_automation import visibility as visible
from crm_sales_automation.enums import (
    OpportunityStatus,
    StageKind,
)
from crm_sales_automation.models import (
    Activity,
    Objection,
    Opportunity,
    Pipeline,
    Stage,
    StageChange,
)
from crm_sales_automation.schemas import (
    PLUGIN_ID,
    ObjectionCreate,
    OpportunityCreate,
    OpportunityUpdate,
)
from crm_sales_automation.services._common import (
    INVOICE_PREFIX,
    _audit,
    _check_amount,
    _user_id,
    _usernames,
    activity_rows,
    settings_for,
)
from crm_sales_automation.services.pipelines import get_pipeline, stage_named, stages_of
from crm_sales_automation.vocabulary import words
from crmcore.db.types import utcnow
from crmcore.errors import Conflict, InvalidInput, NotFound
from crmcore.models import Account, Customer
from crmcore.schemas import AccountCreate, TransactionCreate
from crmcore.sdk import clean_text
from crmcore.uow import UnitOfWork


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


def win(uow: UnitOfWork, opp_id: int, *, reason: str | None = None) -> Opportunity:
    """Win a deal: the published guard ``sales_before_opportunity_won`` may refuse it (nothing is
    written then); otherwise the win is recorded, and with ``invoice_on_win`` the invoice posted.
    ``reason`` is a word of the ``won_reasons`` vocabulary (for the won/lost report)."""
    uow.require("sales.opportunity.win")
    reason = words(uow).check("won_reasons", reason, "reason")
    opp = get_opportunity(uow, opp_id, lock=True)
    _require_open(opp, "won")
    uow.hooks.call("sales_before_opportunity_won", uow=uow, opportunity=opp)
    frm, to = _stage(uow, opp.stage_id), _closing_stage(uow, opp.pipeline_id, StageKind.WON)
    now = utcnow()
    opp.status, opp.stage_id, opp.closed_at, opp.updated_at = OpportunityStatus.WON, to.id, now, now
    opp.won_reason = reason
    opp.reached_position = to.position
    _record_stage(uow, opp, frm, to, now)
    uow.session.flush()
    _audit(uow, "win", "opportunity", opp_id, before={"stage": frm.name}, after={"status": "won", "amount": opp.amount,
                                                                                 "currency": opp.currency, "reason": reason})
    uow.hooks.call("sales_opportunity_stage_changed", uow=uow, opportunity=opp, from_stage=frm.name, to_stage=to.name)
    uow.hooks.call("sales_opportunity_won", uow=uow, opportunity=opp)
    if settings_for(uow).invoice_on_win:
        invoice(uow, opp_id)
    return opp


def lose(uow: UnitOfWork, opp_id: int, reason: str, *, code: str | None = None) -> Opportunity:
    """Lose a deal with a free-text ``reason`` and optionally a word of the ``lost_reasons``
    vocabulary (``code``, what the won/lost report counts)."""
    uow.require("sales.opportunity.move")
    code = words(uow).check("lost_reasons", code, "code")
    if reason is None or (isinstance(reason, str) and not reason.strip()):
        raise InvalidInput("invalid input: reason: a lost deal needs a reason", [("reason", "required")])
    reason = clean_text(reason, "reason", max_length=500, multiline=True, required=True) or ""  # no control characters
    opp = get_opportunity(uow, opp_id, lock=True)
    _require_open(opp, "lost")
    frm, to = _stage(uow, opp.stage_id), _closing_stage(uow, opp.pipeline_id, StageKind.LOST)
    now = utcnow()
    opp.status, opp.stage_id, opp.closed_at, opp.updated_at, opp.lost_reason = OpportunityStatus.LOST, to.id, now, now, reason
    opp.lost_reason_code = code
    _record_stage(uow, opp, frm, to, now)
    uow.session.flush()
    _audit(uow, "lose", "opportunity", opp_id, before={"stage": frm.name}, after={"status": "lost", "reason": reason, "code": code})
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
                    "status": opp.status.value, "lost_reason": opp.lost_reason,
                    "lost_reason_code": opp.lost_reason_code, "won_reason": opp.won_reason, "closed_at": opp.closed_at,
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
        p = get_pipeline(uow, pipeline, create=False)  # a read: the default pipeline unsaved has no deals
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
                          "method": o.method, "resolved": o.resolved, "by": o.raised_by, "at": o.raised_at}
                         for o in uow.session.scalars(select(Objection).where(Objection.opportunity_id == opp_id).order_by(Objection.id))]
    out["activities"] = activity_rows(uow, select(Activity).where(Activity.opportunity_id == opp_id))
    return out


# -- objections ------------------------------------------------------------------------------------

def add_objection(uow: UnitOfWork, opp_id: int, data: ObjectionCreate) -> Objection:
    """Record an objection on an open deal; ``data.method`` (how it was handled) is a word of the
    ``objection_methods`` vocabulary."""
    uow.require("sales.opportunity.write")
    method = words(uow).check("objection_methods", data.method, "method")
    opp = get_opportunity(uow, opp_id)
    _require_open(opp, "changed")
    o = Objection(opportunity_id=opp_id, kind=data.kind, description=data.description, handling=data.handling,
                  method=method, resolved=data.resolved, raised_by=uow.actor)
    uow.session.add(o)
    uow.session.flush()
    _audit(uow, "objection", "opportunity", opp_id, after={**data.model_dump(), "method": method})
    return o


def resolve_objection(uow: UnitOfWork, objection_id: int, handling: str | None, resolved: bool = True, *,
                      method: str | None = None) -> Objection:
    """Mark an objection resolved (or open again), with how it was handled: free text
    (``handling``) and a word of ``objection_methods`` (``method``); either left as is when None.
    An objection on a deal the actor cannot see is not found, like a missing one."""
    uow.require("sales.opportunity.write")
    method = words(uow).check("objection_methods", method, "method")
    o = uow.session.get(Objection, objection_id)
    if o is None:
        raise NotFound("objection", objection_id)
    try:
        get_opportunity(uow, o.opportunity_id)
    except NotFound:
        raise NotFound("objection", objection_id) from None
    before = {"handling": o.handling, "method": o.method, "resolved": o.resolved}
    if handling is not None:
        o.handling = handling.strip()[:500] or None
    if method is not None:
        o.method = method
    o.resolved = resolved
    uow.session.flush()
    _audit(uow, "update", "objection", objection_id, before=before,
           after={"handling": o.handling, "method": o.method, "resolved": resolved})
    return o
