"""What the sales plugin adds to a customer: merge contract, 360° section, timeline."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select, update

from crm_sales_automation.enums import (
    OpportunityStatus,
)
from crm_sales_automation.models import (
    Activity,
    Conversion,
    Lead,
    Opportunity,
)
from crm_sales_automation.services.opportunities import list_opportunities
from crm_sales_automation.services.referrals import merge_referrals, referral_detail
from crmcore.models import Customer
from crmcore.uow import UnitOfWork


def merge_customer_rows(uow: UnitOfWork, source_id: int, target_id: int) -> dict[str, int]:
    """The merge contract: every sales row of the source customer now points at the target."""
    counts = {}
    for model in (Opportunity, Activity, Lead, Conversion):
        res = uow.session.execute(update(model).where(model.customer_id == source_id).values(customer_id=target_id),
                                  execution_options={"synchronize_session": False})
        counts[model.__tablename__] = int(getattr(res, "rowcount", 0))
    counts.update(merge_referrals(uow, source_id, target_id))
    return counts


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
    ref = referral_detail(uow, customer.id)
    if not opps and nxt is None and not won and ref["referred_by"] is None and not ref["referrals"]:
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
        "referred by": None if ref["referred_by"] is None else
        f"#{ref['referred_by']['customer_id']} {ref['referred_by']['name']}",
        "referrals": f"{ref['referrals']} ({ref['referred_leads']} leads, {ref['referred_customers']} customers)",
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
        if o.closed_at is None:  # excluded by the query; narrows the type
            continue
        if o.status is OpportunityStatus.WON:
            out.append(TimelineEntry(o.closed_at, "opportunity won", f"{o.title}: {o.amount:,.2f} {o.currency}", f"opp {o.id}"))
        else:
            out.append(TimelineEntry(o.closed_at, "opportunity lost", f"{o.title}: {o.lost_reason}", f"opp {o.id}"))
    return out
