""""Referred by": the customer who brought a lead or a customer (the material's mention/referral
rate, value_analysis's loyalty factor A31, answered through its ``value_loyalty_signals`` hook).

A lead's referrer is ``sales_leads.referred_by_id``; a customer's is its ``sales_referrals`` row
(one per customer). Converting a referred lead carries the referral over to the customer unless
the customer already has one (or is the referrer itself), keeping the lead as its origin so the
pair is counted once. Refused, one line each: an unknown customer, a customer referring itself,
and a customer the acting "own" user cannot see (treated exactly as an unknown one).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, union_all, update

from crm_sales_automation.models import Lead, Referral
from crm_sales_automation.services._common import _audit
from crmcore.db.types import utcnow
from crmcore.errors import Conflict, InvalidInput, NotFound
from crmcore.models import Customer
from crmcore.uow import UnitOfWork


def check_referrer(uow: UnitOfWork, referrer_id: int, *, referred_id: int | None = None) -> Customer:
    """The referring customer, if it exists and the actor may see it; never the referred one itself."""
    if referred_id is not None and referrer_id == referred_id:
        raise InvalidInput(f"invalid input: referred_by: customer {referrer_id} cannot refer itself",
                           [("referred_by", "self-referral")])
    try:
        referrer = uow.customers.resolve(referrer_id)  # an invisible customer is "not found", like a missing one
    except NotFound:
        raise NotFound("customer", referrer_id) from None
    if referrer.merged_into_id is not None:
        raise Conflict(f"customer {referrer_id} was merged into customer {referrer.merged_into_id}; name that one")
    return referrer


def set_referral(uow: UnitOfWork, customer_id: int, referrer_id: int | None, *,
                 at: dt.datetime | None = None) -> Referral | None:
    """Record (or with ``referrer_id=None`` remove) who referred a customer; returns the row."""
    uow.require("sales.lead.write")
    customer = uow.customers.resolve(customer_id)  # NotFound when missing or not visible
    # writers of one customer's referral queue on its row (PostgreSQL FOR NO KEY UPDATE; SQLite's
    # writing units of work hold the write lock), so the later one updates the row the first wrote
    uow.session.flush()
    uow.session.refresh(customer, with_for_update={"key_share": True})
    row = uow.session.get(Referral, customer.id, populate_existing=True)
    before = None if row is None else {"referrer_id": row.referrer_id}
    if referrer_id is None:
        if row is not None:
            uow.session.delete(row)
            uow.session.flush()
            _audit(uow, "referral", "customer", customer.id, before=before, after={"referrer_id": None})
        return None
    check_referrer(uow, referrer_id, referred_id=customer.id)
    if row is None:
        row = Referral(customer_id=customer.id, referrer_id=referrer_id, referred_at=at or utcnow(),
                       recorded_by=uow.actor)
        uow.session.add(row)
    elif row.referrer_id != referrer_id or at is not None:
        row.referrer_id, row.recorded_by = referrer_id, uow.actor
        if at is not None:
            row.referred_at = at
    uow.session.flush()
    _audit(uow, "referral", "customer", customer.id, before=before, after={"referrer_id": referrer_id})
    return row


def carry_over(uow: UnitOfWork, lead: Lead, customer_id: int) -> bool:
    """At conversion: the lead's referrer becomes the customer's, unless it already has one or
    would refer itself (a lead converted into its own referrer). Returns whether it was kept."""
    if lead.referred_by_id is None or lead.referred_by_id == customer_id:
        return False
    if uow.session.get(Referral, customer_id) is not None:
        return False
    uow.session.add(Referral(customer_id=customer_id, referrer_id=lead.referred_by_id, lead_id=lead.id,
                             referred_at=lead.created_at, recorded_by=uow.actor))
    uow.session.flush()
    return True


def referral_detail(uow: UnitOfWork, customer_id: int) -> dict[str, Any]:
    """Who referred this customer, and whom it referred (leads and customers, counted once)."""
    row = uow.session.get(Referral, customer_id)
    by = None
    if row is not None:
        ref = uow.session.execute(select(Customer.id, Customer.name, Customer.external_ref)
                                  .where(Customer.id == row.referrer_id)).one()
        by = {"customer_id": ref.id, "name": ref.name, "ref": ref.external_ref, "at": row.referred_at,
              "lead_id": row.lead_id}
    leads = uow.session.scalar(select(func.count()).select_from(Lead).where(Lead.referred_by_id == customer_id)) or 0
    customers = uow.session.scalar(select(func.count()).select_from(Referral).where(Referral.referrer_id == customer_id)) or 0
    return {"customer_id": customer_id, "referred_by": by, "referred_leads": int(leads), "referred_customers": int(customers),
            "referrals": referral_counts(uow, [customer_id], None, None).get(customer_id, 0)}


def _counted_referrals(start: dt.datetime | None, end: dt.datetime | None) -> Any:
    """(referrer_id) once per referral in the window: each referred lead, and each referred
    customer that did not come from a lead with the same referrer (counted as the lead)."""
    lead_time, ref_time = [], []
    if start is not None:
        lead_time.append(Lead.created_at >= start)
        ref_time.append(Referral.referred_at >= start)
    if end is not None:
        lead_time.append(Lead.created_at < end)
        ref_time.append(Referral.referred_at < end)
    leads = select(Lead.referred_by_id.label("referrer_id")).where(Lead.referred_by_id.is_not(None), *lead_time)
    origin = select(Lead.id).where(Lead.id == Referral.lead_id, Lead.referred_by_id == Referral.referrer_id)
    customers = select(Referral.referrer_id.label("referrer_id")).where(~origin.exists(), *ref_time)
    return union_all(leads, customers).subquery()


def referral_counts(uow: UnitOfWork, customer_ids: Sequence[int], start: dt.date | dt.datetime | None,
                    end: dt.date | dt.datetime | None) -> dict[int, int]:
    """Referrals per referring customer over ``start <= time < end`` (None: open), for ``customer_ids``
    (0 for those who referred nobody). One GROUP BY over the two referral tables."""
    def moment(d: dt.date | dt.datetime | None) -> dt.datetime | None:
        if d is None or isinstance(d, dt.datetime):
            return d
        return dt.datetime.combine(d, dt.time(), tzinfo=dt.UTC)

    refs = _counted_referrals(moment(start), moment(end))
    counts: dict[int, int] = {}
    q = select(refs.c.referrer_id, func.count()).group_by(refs.c.referrer_id)
    if len(customer_ids) <= 1000:  # a few (the 360° view): only theirs; a whole run: one pass over all
        q = q.where(refs.c.referrer_id.in_(list(customer_ids)))
    for referrer, n in uow.session.execute(q):
        counts[referrer] = n
    return {int(c): int(counts.get(c, 0)) for c in customer_ids}


def any_referral(uow: UnitOfWork) -> bool:
    """Whether referrals are recorded at all (else the loyalty factor has no data, not zeros)."""
    return bool(uow.session.scalar(select(Lead.id).where(Lead.referred_by_id.is_not(None)).limit(1))
                or uow.session.scalar(select(Referral.customer_id).limit(1)))


def _rows(result: Any) -> int:
    """The rows an UPDATE or DELETE touched (a CursorResult's ``rowcount``)."""
    return int(result.rowcount)


def merge_referrals(uow: UnitOfWork, source_id: int, target_id: int) -> dict[str, int]:
    """The merge contract for referrals: the source's referrals become the target's.

    The target keeps its own referrer when both had one; a referral between the two merged
    customers (which would make the target refer itself) is dropped.
    """
    pair = (source_id, target_id)
    s = uow.session
    opts = {"synchronize_session": False}
    dropped = _rows(s.execute(delete(Referral).where(Referral.customer_id.in_(pair), Referral.referrer_id.in_(pair)),
                        execution_options=opts))
    if s.scalar(select(Referral.customer_id).where(Referral.customer_id == target_id)) is not None:
        dropped += _rows(s.execute(delete(Referral).where(Referral.customer_id == source_id), execution_options=opts))
    moved = _rows(s.execute(update(Referral).where(Referral.customer_id == source_id).values(customer_id=target_id),
                      execution_options=opts))
    moved += _rows(s.execute(update(Referral).where(Referral.referrer_id == source_id).values(referrer_id=target_id),
                       execution_options=opts))
    leads = _rows(s.execute(update(Lead).where(Lead.referred_by_id == source_id).values(referred_by_id=target_id),
                      execution_options=opts))
    return {"sales_referrals": moved + dropped, "sales_leads.referred_by": leads}


__all__ = ["any_referral", "carry_over", "check_referrer", "merge_referrals", "referral_counts", "referral_detail",
           "set_referral"]
