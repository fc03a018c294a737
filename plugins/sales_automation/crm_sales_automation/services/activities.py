"""Activities (calls, meetings, demos), quotas and the handover of a rep's work."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update

from crm_sales_automation import visibility as visible
from crm_sales_automation.enums import (
    ACTIVITY_CHANNEL,
    LeadStatus,
    OpportunityStatus,
)
from crm_sales_automation.models import (
    Activity,
    Lead,
    Opportunity,
    Quota,
)
from crm_sales_automation.schemas import (
    PLUGIN_ID,
    ActivityCreate,
    QuotaSet,
)
from crm_sales_automation.services._common import _audit, _check_amount, _user_id, _username, activity_rows, today
from crm_sales_automation.services.leads import get_lead
from crm_sales_automation.services.opportunities import get_opportunity
from crmcore.db.types import utcnow
from crmcore.errors import Conflict, InvalidInput, NotFound
from crmcore.models import Contact
from crmcore.schemas import InteractionCreate
from crmcore.uow import UnitOfWork


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
    if data.contact_id is not None:
        _check_contact(uow, data.contact_id, customer_id if opportunity_id is None else opp.customer_id,
                       lead if lead_id is not None else None)
    a = Activity(kind=data.kind, subject=data.subject, notes=data.notes, due_at=data.due_at, lead_id=lead_id,
                 opportunity_id=opportunity_id, customer_id=customer_id, owner_id=owner_id, created_by=uow.actor,
                 contact_id=data.contact_id)
    uow.session.add(a)
    uow.session.flush()
    _audit(uow, "create", "activity", a.id, after={**data.model_dump(), "lead_id": lead_id,
                                                   "opportunity_id": opportunity_id, "customer_id": customer_id})
    return a


def _check_contact(uow: UnitOfWork, contact_id: int, customer_id: int | None, lead: Lead | None) -> None:
    """The person an activity is with must be a contact of the activity's customer (of its deal,
    or of the customer its lead was converted into)."""
    if lead is not None:
        if lead.customer_id is None:
            raise InvalidInput(f"invalid input: contact: lead {lead.id} is not a customer yet and has no contacts",
                               [("contact_id", "lead not converted")])
        customer_id = lead.customer_id
    owner = uow.session.scalar(select(Contact.customer_id).where(Contact.id == contact_id))
    if owner is None:
        raise NotFound("contact", contact_id)
    if owner != customer_id:
        raise InvalidInput(f"invalid input: contact: contact {contact_id} is not a contact of customer {customer_id}",
                           [("contact_id", "another customer's contact")])


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
        # the person goes along once the core's interactions take one (``contact_id``)
        person = {"contact_id": a.contact_id} if a.contact_id and "contact_id" in InteractionCreate.model_fields else {}
        interaction = uow.interactions.log(customer_id, InteractionCreate(
            channel=ACTIVITY_CHANNEL[a.kind], direction="outbound",
            kind="sale" if a.opportunity_id is not None else "follow_up", subject=a.subject, notes=a.notes,
            occurred_at=a.done_at, handled_by=_username(uow, a.owner_id), outcome=a.outcome, source=PLUGIN_ID,
            source_ref=f"activity:{a.id}", **person))
        a.interaction_id = interaction.id
    uow.session.flush()
    _audit(uow, "done", "activity", activity_id, after={"outcome": a.outcome, "interaction_id": a.interaction_id})
    return a


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


def list_quotas(uow: UnitOfWork) -> list[dict[str, Any]]:
    """Quotas per rep and month (``crm sales quota list``), as the forecast counts them: an "own"
    user sees their own quotas only (other reps' targets are not theirs to see)."""
    from crmcore.models import User

    return [{"owner": u, "period": p.strftime("%Y-%m"), "currency": c, "amount": a} for u, p, c, a in uow.session.execute(
        select(User.username, Quota.period, Quota.currency, Quota.amount).join(User, User.id == Quota.owner_id)
        .where(uow.visibility.customer_clause(Quota.owner_id)).order_by(Quota.period, User.username))]


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
        res = uow.session.execute(stmt, execution_options={"synchronize_session": False})
        counts[name] = int(getattr(res, "rowcount", 0))
    uow.session.expire_all()
    _audit(uow, "handover", "user", dst.id, before={"from": from_user}, after={"to": to_user, **counts})
    return counts
