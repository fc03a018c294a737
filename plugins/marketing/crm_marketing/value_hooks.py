"""What marketing tells value_analysis through the hooks it publishes (``crm_value_analysis.hookspecs``).

- ``value_customer_costs`` -> ``"marketing.contacts"``: what reaching each customer cost. A
  campaign's cost per contact is its recorded cost (cost lines in the ``currency`` setting) over
  the messages it delivered (one per contacted company; one per person for a campaign addressed
  to contacts by role); a campaign without such a cost uses the setting ``cost_per_contact``.
  Each customer is charged that for every message delivered to it in the window.
- ``value_loyalty_signals`` -> ``"campaign_share"`` (share of the customer's purchases in the
  window attributed to a campaign: an invoice within a contacting campaign's attribution window
  after a delivery, as the campaign report attributes; value_analysis's voluntariness is its
  complement) and ``"discounted_share"`` (share of the customer's spend in the ``currency``
  setting attributed to a price-offer campaign, ``campaign create --price-offer``: price
  sensitivity).

Each is one GROUP BY (the attribution an EXISTS per invoice, dates through ``crmcore.db.dates``).
A signal nobody can have (no campaign ever delivered, no price offer ever delivered, no cost
anywhere) is not answered, so value_analysis says "no data" rather than ranking on zeros.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, literal, select, union_all

from crm_marketing.models import Campaign, ContactTarget, CostLine, Target
from crmcore import hookimpl
from crmcore.db.dates import days_between
from crmcore.models import Account, Transaction


def _moment(day: dt.date | None) -> dt.datetime | None:
    return None if day is None else dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _deliveries() -> Any:
    """(campaign, customer, sent_at) per delivered message: a company's, or each person's when
    the campaign is addressed to contacts (its company row is then only their summary)."""
    companies = (select(Target.campaign_id, Target.customer_id, Target.sent_at)
                 .join(Campaign, Campaign.id == Target.campaign_id)
                 .where(Target.grp == "contact", Target.status == "sent", Campaign.to_roles.is_(None)))
    people = (select(ContactTarget.campaign_id, ContactTarget.customer_id, ContactTarget.sent_at)
              .where(ContactTarget.grp == "contact", ContactTarget.status == "sent"))
    return union_all(companies, people).subquery()


def _settings(uow: Any) -> Any:
    from crm_marketing.services import settings  # on use: importing the plugin stays cheap

    return settings(uow)


def contact_costs(uow: Any, customer_ids: list[int], start: dt.date | None, end: dt.date) -> dict[int, float]:
    """{customer: cost of the messages delivered to it in ``start <= day < end``} (> 0 only)."""
    s = _settings(uow)
    sent = _deliveries()
    messages = dict(uow.session.execute(select(sent.c.campaign_id, func.count()).group_by(sent.c.campaign_id)).all())
    if not messages:
        return {}
    spent = dict(uow.session.execute(select(CostLine.campaign_id, func.sum(CostLine.amount))
                                     .where(CostLine.currency == s.currency).group_by(CostLine.campaign_id)).all())
    default = s.cost_per_contact or Decimal(0)
    rate = {cid: (Decimal(str(spent[cid])) / n if spent.get(cid) else default) for cid, n in messages.items()}
    if not any(rate.values()):
        return {}
    window = [sent.c.sent_at < _moment(end)]
    if start is not None:
        window.append(sent.c.sent_at >= _moment(start))
    wanted = set(customer_ids)
    out: dict[int, Decimal] = {}
    for cid, customer, n in uow.session.execute(
            select(sent.c.campaign_id, sent.c.customer_id, func.count()).where(*window)
            .group_by(sent.c.campaign_id, sent.c.customer_id)):
        if customer in wanted and rate[cid]:
            out[customer] = out.get(customer, Decimal(0)) + rate[cid] * n
    return {c: float(v) for c, v in out.items()}


def _touched(price_offers_only: bool) -> Any:
    """EXISTS: a delivery of a campaign (a price offer) to the invoice's customer whose
    attribution window covers the invoice (the campaign report's rule)."""
    q = (select(literal(1)).select_from(Target).join(Campaign, Campaign.id == Target.campaign_id)
         .where(Target.customer_id == Account.customer_id, Target.grp == "contact", Target.status == "sent",
                Target.sent_at <= Transaction.occurred_at,
                days_between(Transaction.occurred_at, Target.sent_at) < Campaign.attribution_days))
    if price_offers_only:
        q = q.where(Campaign.price_offer.is_(True))
    return q.exists()


def purchase_shares(uow: Any, customer_ids: list[int], start: dt.date | None,
                    end: dt.date) -> tuple[dict[int, float] | None, dict[int, float] | None]:
    """(campaign_share, discounted_share) per customer with purchases in the window; None for a
    signal no customer can have (no campaign / no price offer ever delivered)."""
    delivered = select(Campaign.price_offer).join(Target, Target.campaign_id == Campaign.id).where(
        Target.grp == "contact", Target.status == "sent")
    any_campaign = uow.session.scalar(delivered.limit(1)) is not None
    any_offer = uow.session.scalar(delivered.where(Campaign.price_offer.is_(True)).limit(1)) is not None
    if not any_campaign:
        return None, None
    house = _settings(uow).currency
    in_house = Transaction.currency == house
    amount = cast(Transaction.amount, Float)
    window = [Transaction.kind == "invoice", Transaction.amount > 0, Transaction.occurred_at < _moment(end)]
    if start is not None:
        window.append(Transaction.occurred_at >= _moment(start))
    cols = [Account.customer_id, func.count(), func.sum(case((_touched(False), 1), else_=0)),
            func.sum(case((in_house, amount), else_=0.0))]
    if any_offer:
        cols.append(func.sum(case((and_(in_house, _touched(True)), amount), else_=0.0)))
    q = (select(*cols).select_from(Transaction).join(Account, Account.id == Transaction.account_id)
         .where(*window).group_by(Account.customer_id))
    wanted = set(customer_ids)
    campaign: dict[int, float] = {}
    discounted: dict[int, float] = {}
    for row in uow.session.execute(q):
        customer, n, attributed, spend = row[0], row[1], row[2], row[3]
        if customer not in wanted:
            continue
        campaign[customer] = min(1.0, float(attributed) / n)
        if any_offer and spend and spend > 0:
            discounted[customer] = min(1.0, max(0.0, float(row[4]) / float(spend)))
    return campaign, (discounted if any_offer else None)


@hookimpl(optionalhook=True)
def value_customer_costs(uow: Any, customer_ids: list[int], start: dt.date | None, end: dt.date,
                         register: Callable[[str, Mapping[int, float]], None]) -> None:
    costs = contact_costs(uow, customer_ids, start, end)
    if costs:
        register("marketing.contacts", costs)


@hookimpl(optionalhook=True)
def value_loyalty_signals(uow: Any, customer_ids: list[int], start: dt.date | None, end: dt.date,
                          register: Callable[[str, Mapping[int, float]], None]) -> None:
    campaign, discounted = purchase_shares(uow, customer_ids, start, end)
    if campaign is not None:
        register("campaign_share", campaign)
    if discounted is not None:
        register("discounted_share", discounted)


__all__ = ["contact_costs", "purchase_shares", "value_customer_costs", "value_loyalty_signals"]
