"""Who a launched campaign reached: contacted, control and suppressed (with the reason), per
company or, for a campaign addressed by role, per person. One read for the CLI and the API.

An "own" user sees only the rows of their own customers (the core's visibility clause); the
group counts are of those rows too, so nobody learns about customers they may not see.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, String, and_, cast, exists, func, null, select, union_all

from crm_marketing.models import Campaign, ContactTarget, Target
from crm_marketing.services import get_campaign
from crmcore.errors import InvalidInput
from crmcore.models import Contact, Customer
from crmcore.sdk import jsonable
from crmcore.uow import UnitOfWork

GROUPS = ("contact", "control", "suppressed")
MAX_LIMIT = 1000


def _rows_query(uow: UnitOfWork, c: Campaign) -> Any:
    """A subquery of audience rows: people of a role campaign (and companies with nobody in the
    roles), or the companies of a campaign addressed to the company."""
    vis = uow.visibility.customer_clause(Customer.owner_id)
    company = (select(Target.customer_id.label("customer_id"), Customer.external_ref.label("customer_ref"),
                      Customer.name.label("customer"), cast(null(), Integer).label("contact_id"), cast(null(), String).label("contact_ref"),
                      cast(null(), String).label("contact"), Target.grp.label("grp"), Target.reason.label("reason"),
                      Target.status.label("status"), Target.address.label("address"), Target.sent_at.label("sent_at"))
               .join(Customer, Customer.id == Target.customer_id).where(Target.campaign_id == c.id, vis))
    if not c.to_roles:
        return company.subquery()
    nobody = ~exists().where(and_(ContactTarget.campaign_id == c.id, ContactTarget.customer_id == Target.customer_id))
    cols = (ContactTarget.customer_id, Customer.external_ref, Customer.name, ContactTarget.contact_id, Contact.external_ref,
            Contact.name, ContactTarget.grp, ContactTarget.reason, ContactTarget.status, ContactTarget.address,
            ContactTarget.sent_at)
    person = (select(*[col.label(name) for col, name in zip(cols, company.selected_columns.keys(), strict=True)])
              .join(Customer, Customer.id == ContactTarget.customer_id).join(Contact, Contact.id == ContactTarget.contact_id)
              .where(ContactTarget.campaign_id == c.id, vis))
    return union_all(person, company.where(nobody)).subquery()


def campaign_audience(uow: UnitOfWork, campaign: str | int, group: str | None = None, limit: int = 100,
                      offset: int = 0) -> dict[str, Any]:
    """The campaign's audience rows (ordered by customer, then contact), the counts per group and
    the suppression reasons; ``group`` filters the rows (the counts stay whole)."""
    uow.require("customer.read")
    if group is not None and group not in GROUPS:
        raise InvalidInput(f"invalid input: group {group!r}: one of {', '.join(GROUPS)}", [("group", "unknown")])
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise InvalidInput(f"invalid input: limit is 1 to {MAX_LIMIT} and offset at least 0", [("limit", "range")])
    c = get_campaign(uow, campaign)
    roles = c.to_roles.split(",") if c.to_roles else []
    if c.launched_at is None:
        return {"campaign": c.name, "status": c.status, "to_roles": roles, "launched": False, "total": 0,
                "counts": dict.fromkeys(GROUPS, 0), "suppressed_reasons": {}, "rows": []}
    sub = _rows_query(uow, c)
    counts = dict.fromkeys(GROUPS, 0) | dict(uow.session.execute(
        select(sub.c.grp, func.count()).group_by(sub.c.grp)).all())
    reasons: dict[str | None, int] = dict(uow.session.execute(select(sub.c.reason, func.count()).where(sub.c.grp == "suppressed")
                                       .group_by(sub.c.reason).order_by(func.count().desc(), sub.c.reason)).all())
    q = select(sub).order_by(sub.c.customer_id, sub.c.contact_id)
    if group is not None:
        q = q.where(sub.c.grp == group)
    rows = [{k: jsonable(v) for k, v in r._mapping.items()} for r in uow.session.execute(q.limit(limit).offset(offset))]
    return {"campaign": c.name, "status": c.status, "to_roles": roles, "launched": True, "total": sum(counts.values()), "counts": counts, "suppressed_reasons": reasons,
            "rows": rows}
