"""What an "own" user sees of sales data, built on the core's ``uow.visibility``.

- a deal is visible when its customer is (deals of other owners' customers never show, in lists,
  boards, forecasts, funnels or totals);
- a lead is visible to its owner (leads have no customer yet);
- an activity is visible through what it is on: its lead, its deal's customer or its customer.

Every report adds these clauses where its query is built, so the CLI, the HTTP API and Python
callers get the same rows.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, true

from crm_sales_automation.models import Activity, Lead, Opportunity
from crmcore.errors import NotFound
from crmcore.uow import UnitOfWork


def deals(uow: UnitOfWork) -> ColumnElement[bool]:
    """WHERE clause: the deals whose customer the actor may see."""
    return uow.visibility.customer_filter(Opportunity.customer_id)


def leads(uow: UnitOfWork) -> ColumnElement[bool]:
    """WHERE clause: the leads the actor may see (their own, for an "own" user)."""
    return uow.visibility.customer_clause(Lead.owner_id)


def activities(uow: UnitOfWork) -> ColumnElement[bool]:
    """WHERE clause: the activities on a visible lead, deal or customer."""
    vis = uow.visibility
    if not vis.own_only:
        return true()
    return or_(
        and_(Activity.lead_id.is_not(None), Activity.lead_id.in_(select(Lead.id).where(leads(uow)))),
        and_(Activity.opportunity_id.is_not(None), Activity.opportunity_id.in_(select(Opportunity.id).where(deals(uow)))),
        and_(Activity.customer_id.is_not(None), vis.customer_filter(Activity.customer_id)),
    )


def check_deal(uow: UnitOfWork, opp: Opportunity) -> Opportunity:
    """The deal, or "opportunity N not found" (as for a missing one) when its customer is invisible."""
    if uow.visibility.own_only and not uow.visibility.can_see(uow.customers.get(opp.customer_id)):
        raise NotFound("opportunity", opp.id)
    return opp


def check_lead(uow: UnitOfWork, lead: Lead) -> Lead:
    """The lead, or "lead N not found" when an "own" user does not own it."""
    vis = uow.visibility
    if vis.own_only and lead.owner_id != vis.user_id:
        raise NotFound("lead", lead.id)
    return lead


def only_visible(uow: UnitOfWork, q: Any) -> Any:
    """``q`` (a select over opportunities) limited to the visible deals."""
    return q.where(deals(uow))
