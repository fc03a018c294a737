"""Reopening a lost deal: back to an open stage, audited, logged on the customer's timeline.

Only a lost deal is reopened (a won deal has been invoiced and its hooks have run; the sales
plugin has no "cancelled" status). Winning it afterwards is an ordinary :func:`win`, so every
guard of a win (credit's ``sales_before_opportunity_won``: a held customer, a limit) applies
again. The deal's row is locked first, so two people reopening (or reopening and winning) the
same deal at once are serialised: the second sees the first one's result.
"""
from __future__ import annotations

from sqlalchemy import select

from crm_sales_automation.enums import OpportunityStatus, StageKind
from crm_sales_automation.models import Opportunity, Pipeline, Stage, StageChange
from crm_sales_automation.schemas import PLUGIN_ID
from crm_sales_automation.services._common import _audit, _user_id
from crm_sales_automation.services.opportunities import _record_stage, get_opportunity
from crm_sales_automation.services.pipelines import stage_named, stages_of
from crmcore.db.types import utcnow
from crmcore.errors import Conflict, InvalidInput
from crmcore.schemas import InteractionCreate
from crmcore.sdk import clean_text
from crmcore.uow import UnitOfWork

#: the permission to reopen a lost deal (declared in plugin.py's PERMISSIONS)
REOPEN = "sales.opportunity.reopen"


def reopen_permission(uow: UnitOfWork) -> str:
    """The permission to reopen a lost deal (the console asks it to offer the form)."""
    return REOPEN


def _last_open_stage(uow: UnitOfWork, opp: Opportunity, stages: list[Stage]) -> Stage:
    """The open stage the deal was in when it was closed (its last stage change into a closing
    stage came from it); the pipeline's first stage when the history does not say."""
    by_id = {s.id: s for s in stages}
    for from_id in uow.session.scalars(select(StageChange.from_stage_id).where(StageChange.opportunity_id == opp.id)
                                       .order_by(StageChange.changed_at.desc(), StageChange.id.desc())):
        s = by_id.get(from_id) if from_id is not None else None
        if s is not None and s.kind is StageKind.OPEN:
            return s
    return next(s for s in stages if s.kind is StageKind.OPEN)


def reopen(uow: UnitOfWork, opp_id: int, reason: str, *, stage: str | None = None) -> Opportunity:
    """Reopen a lost deal with a ``reason``: back to ``stage`` (an open stage of its pipeline) or
    to the open stage it was lost from. The stage change, an audit entry and an interaction on
    the customer's timeline are written; ``sales_opportunity_stage_changed`` (from ``lost``)
    and ``sales_opportunity_reopened`` are called."""
    uow.require(reopen_permission(uow))
    if reason is None or (isinstance(reason, str) and not reason.strip()):
        raise InvalidInput("invalid input: reason: a reopened deal needs a reason", [("reason", "required")])
    reason = clean_text(reason, "reason", max_length=500, multiline=True, required=True) or ""
    opp = get_opportunity(uow, opp_id, lock=True)
    if opp.status is not OpportunityStatus.LOST:
        raise Conflict(f"opportunity {opp_id} is {opp.status.value}; only a lost deal can be reopened")
    pipeline = uow.session.get(Pipeline, opp.pipeline_id)
    assert pipeline is not None
    if stage is not None:
        to = stage_named(uow, pipeline, stage)
        if to.kind is not StageKind.OPEN:
            raise InvalidInput(f"invalid input: stage: a reopened deal goes back to an open stage, not {to.name!r}",
                               [("stage", "closed stage")])
    else:
        to = _last_open_stage(uow, opp, stages_of(uow, pipeline.id))
    frm = uow.session.get(Stage, opp.stage_id)
    assert frm is not None
    before = {"status": opp.status.value, "stage": frm.name, "lost_reason": opp.lost_reason,
              "lost_reason_code": opp.lost_reason_code, "closed_at": opp.closed_at}
    now = utcnow()
    opp.status, opp.stage_id, opp.closed_at, opp.updated_at = OpportunityStatus.OPEN, to.id, None, now
    opp.lost_reason = opp.lost_reason_code = None
    opp.reached_position = max(opp.reached_position, to.position)
    _record_stage(uow, opp, frm, to, now)
    uow.session.flush()
    interaction = uow.interactions.log(opp.customer_id, InteractionCreate(
        channel="other", direction="outbound", kind="sale", subject=f"Deal reopened: {opp.title}"[:200],
        notes=f"{reason}\n(lost before: {before['lost_reason']})", occurred_at=now, source=PLUGIN_ID,
        handled_by=uow.actor if _user_id(uow, None) is not None else None, source_ref=f"opportunity:{opp.id}"))
    _audit(uow, "reopen", "opportunity", opp_id, before=before,
           after={"status": "open", "stage": to.name, "reason": reason, "interaction_id": interaction.id})
    uow.hooks.call("sales_opportunity_stage_changed", uow=uow, opportunity=opp, from_stage=frm.name, to_stage=to.name)
    uow.hooks.call("sales_opportunity_reopened", uow=uow, opportunity=opp, reason=reason)
    return opp
