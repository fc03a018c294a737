"""Campaign report: responses by type, attribution of revenue, ROI, control-group lift, A/B winner.

Attribution reads two sets in two queries (the touches of the campaign's contacted customers, in
every campaign, and their invoices since the first touch) and assigns each invoice in Python
over those arrays: a touch counts for an invoice posted within the touching campaign's window
after it; last touch (default), first touch, or linear (split equally). Doing the window
arithmetic here keeps one code path for SQLite and PostgreSQL, whose date arithmetic differs.

ROI = (attributed revenue - cost) / cost, in the campaign's currency: revenue in other
currencies is shown apart, never added, and each cost line counts once however many deals the
campaign won (costs and revenue are summed separately, never joined row by row).

Lift compares the conversion rate of the contacted group with the control group (drawn from
the same contactable audience) with Fisher's exact test from SciPy; a difference is only
claimed when p < the ``significance`` setting. The same test names an A/B winner (chi-square
over all variants when there are more than two).
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from scipy import stats  # type: ignore[import-untyped,unused-ignore]
from sqlalchemy import case, func, select

from crm_marketing import services
from crm_marketing.models import Campaign, CostLine, Response, Target, Variant
from crmcore.models import Account, Customer, Transaction
from crmcore.uow import UnitOfWork

NOT_A_RESPONSE = frozenset({"delivered", "bounced", "unsubscribed", "complained"})


def _touches(uow: UnitOfWork, customer_ids: list[int]) -> dict[int, list[tuple[dt.datetime, int, int]]]:
    """customer -> [(touched_at, campaign id, window days)] over every campaign."""
    out: dict[int, list[tuple[dt.datetime, int, int]]] = defaultdict(list)
    for chunk in _chunks(customer_ids):
        rows = uow.session.execute(
            select(Target.customer_id, Target.sent_at, Target.campaign_id, Campaign.attribution_days)
            .join(Campaign, Campaign.id == Target.campaign_id)
            .where(Target.customer_id.in_(chunk), Target.grp == "contact", Target.status == "sent")
        ).all()
        for cust, at, cid, days in rows:
            if at is not None:  # a sent target has its time
                out[cust].append((at, cid, days))
    return out


def _invoices(uow: UnitOfWork, customer_ids: list[int], since: dt.datetime) -> list[tuple[int, int, Decimal, str, dt.datetime]]:
    out: list[tuple[int, int, Decimal, str, dt.datetime]] = []
    for chunk in _chunks(customer_ids):
        out.extend(uow.session.execute(
            select(Transaction.id, Account.customer_id, Transaction.amount, Transaction.currency, Transaction.occurred_at)
            .join(Account, Account.id == Transaction.account_id)
            .where(Account.customer_id.in_(chunk), Transaction.kind == "invoice", Transaction.occurred_at >= since)
        ).all())
    return out


def _chunks(ids: list[int], n: int = 5000) -> list[list[int]]:
    return [ids[i:i + n] for i in range(0, len(ids), n)] or [[]]


def attribute(uow: UnitOfWork, campaign: Campaign, model: str) -> tuple[dict[str, Decimal], set[int], int]:
    """(revenue per currency, customers with attributed revenue, invoices attributed)."""
    contacted = [(c, at) for c, at in uow.session.execute(select(Target.customer_id, Target.sent_at).where(
        Target.campaign_id == campaign.id, Target.grp == "contact", Target.status == "sent")) if at is not None]
    if not contacted:
        return {}, set(), 0
    ids = [c for c, _ in contacted]
    first = min(at for _, at in contacted)
    touches = _touches(uow, ids)
    revenue: dict[str, Decimal] = defaultdict(lambda: Decimal(0))
    converted: set[int] = set()
    n = 0
    for _tid, cust, amount, currency, at in _invoices(uow, ids, first):
        live = [(t, cid) for t, cid, days in touches.get(cust, ()) if t <= at < t + dt.timedelta(days=days)]
        if not live:
            continue
        live.sort()
        if model == "last_touch":
            share = Decimal(1) if live[-1][1] == campaign.id else Decimal(0)
        elif model == "first_touch":
            share = Decimal(1) if live[0][1] == campaign.id else Decimal(0)
        else:
            share = Decimal(sum(1 for _, cid in live if cid == campaign.id)) / Decimal(len(live))
        if share:
            revenue[currency] += amount * share
            converted.add(cust)
            n += 1
    return {k: v.quantize(Decimal("0.01")) for k, v in revenue.items()}, converted, n


def _converted_in_window(uow: UnitOfWork, campaign: Campaign, group: str, conv_types: list[str]) -> tuple[int, int]:
    """(group size, customers converted): an invoice within the window after their touch (or, for
    the control group, after the launch), or a response of a conversion type."""
    # intention to treat: everyone assigned to the group counts (sent or not), so a failed or
    # skipped delivery does not flatter the contacted group; the window starts at the contact,
    # or at the launch for those never contacted and for the control group
    rows = list(uow.session.execute(select(Target.customer_id, Target.sent_at).where(
        Target.campaign_id == campaign.id, Target.grp == group)))
    if not rows:
        return 0, 0
    start = {c: (at if group == "contact" and at is not None else campaign.launched_at) for c, at in rows}
    window = dt.timedelta(days=campaign.attribution_days)
    earliest = min(v for v in start.values() if v is not None) if any(start.values()) else campaign.launched_at
    if earliest is None:  # launched without a time: nothing to measure from
        return len(rows), 0
    converted = {c for _t, c, _a, _cur, at in _invoices(uow, list(start), earliest)
                 if (since := start[c]) is not None and since <= at < since + window}
    converted |= set(uow.session.scalars(select(Response.customer_id).where(
        Response.campaign_id == campaign.id, Response.type.in_(conv_types), Response.customer_id.in_(list(start)))))
    return len(rows), len(converted)


def _test(a_conv: int, a_n: int, b_conv: int, b_n: int) -> float | None:
    if min(a_n, b_n) == 0:
        return None
    _, p = stats.fisher_exact([[a_conv, a_n - a_conv], [b_conv, b_n - b_conv]])
    return float(p)


def lift(uow: UnitOfWork, campaign: Campaign, conv_types: list[str], alpha: float) -> dict[str, Any]:
    n_t, c_t = _converted_in_window(uow, campaign, "contact", conv_types)
    n_c, c_c = _converted_in_window(uow, campaign, "control", conv_types)
    rate_t = c_t / n_t if n_t else None
    rate_c = c_c / n_c if n_c else None
    p = _test(c_t, n_t, c_c, n_c)
    rel = (rate_t - rate_c) / rate_c if rate_t is not None and rate_c else None
    significant = p is not None and p < alpha
    if n_c == 0:
        verdict = "no control group"
    elif significant:
        verdict = f"significant {'lift' if (rate_t or 0) > (rate_c or 0) else 'drop'} (p={p:.4f} < {alpha})"
    else:
        verdict = f"no significant difference (p={p:.4f} >= {alpha})" if p is not None else "not enough data"
    return {"contacted": n_t, "contacted_converted": c_t, "contacted_rate": rate_t, "control": n_c,
            "control_converted": c_c, "control_rate": rate_c,
            "absolute_lift": (rate_t - rate_c) if rate_t is not None and rate_c is not None else None,
            "relative_lift": rel, "p_value": p, "significant": significant, "verdict": verdict}


def variants(uow: UnitOfWork, campaign: Campaign, conv_types: list[str], alpha: float) -> dict[str, Any] | None:
    vs = list(uow.session.scalars(select(Variant).where(Variant.campaign_id == campaign.id).order_by(Variant.id)))
    if not vs:
        return None
    window = dt.timedelta(days=campaign.attribution_days)
    rows = list(uow.session.execute(select(Target.customer_id, Target.sent_at, Target.variant_id).where(
        Target.campaign_id == campaign.id, Target.grp == "contact", Target.status == "sent")))
    by_variant: dict[int, dict[int, dt.datetime]] = defaultdict(dict)
    everyone: dict[int, dt.datetime] = {}
    for c, at, vid in rows:
        if at is not None and vid is not None:  # a sent target of a campaign with variants has both
            by_variant[vid][c] = at
        if at is not None:
            everyone[c] = at
    converted = {c for _t, c, _a, _cur, at in _invoices(uow, list(everyone), min(everyone.values()))
                 if everyone[c] <= at < everyone[c] + window} if everyone else set()
    converted |= set(uow.session.scalars(select(Response.customer_id).where(
        Response.campaign_id == campaign.id, Response.type.in_(conv_types))))
    table: list[dict[str, Any]] = []
    for v in vs:
        members = by_variant.get(v.id, {})
        conv = len(converted & set(members))
        table.append({"variant": v.name, "share": v.share, "sent": len(members), "converted": conv,
                      "rate": conv / len(members) if members else None})
    counts = [[t["converted"], t["sent"] - t["converted"]] for t in table if t["sent"]]
    p: float | None = None
    if len(counts) == 2:
        p = _test(counts[0][0], sum(counts[0]), counts[1][0], sum(counts[1]))
    elif len(counts) > 2 and all(sum(col) > 0 for col in zip(*counts)):
        p = float(stats.chi2_contingency(counts)[1])
    best = max((t for t in table if t["rate"] is not None), key=lambda t: t["rate"], default=None)
    winner = best["variant"] if best is not None and p is not None and p < alpha else None
    return {"variants": table, "p_value": p, "winner": winner,
            "verdict": f"{winner} wins (p={p:.4f} < {alpha})" if winner else
            ("no significant difference" + (f" (p={p:.4f})" if p is not None else ""))}


def report(uow: UnitOfWork, campaign: Campaign, model: str | None = None) -> dict[str, Any]:
    """The campaign-wide report. It is global by nature (cost, ROI, lift and A/B are about the
    whole campaign), so a user who sees only their own customers needs ``marketing.report``."""
    uow.require("customer.read")
    if uow.visibility.own_only:
        uow.require("marketing.report")
    s = services.settings(uow)
    model = model or s.attribution
    groups = dict(uow.session.execute(select(Target.grp, func.count()).where(Target.campaign_id == campaign.id)
                                      .group_by(Target.grp)).all())
    statuses = dict(uow.session.execute(select(Target.status, func.count()).where(
        Target.campaign_id == campaign.id, Target.grp == "contact").group_by(Target.status)).all())
    reasons = dict(uow.session.execute(select(Target.reason, func.count()).where(
        Target.campaign_id == campaign.id, Target.grp == "suppressed").group_by(Target.reason)).all())
    delivered = statuses.get("sent", 0)
    by_type = dict(uow.session.execute(select(Response.type, func.count(func.distinct(Response.customer_id))).where(
        Response.campaign_id == campaign.id).group_by(Response.type)).all())
    responders = uow.session.scalar(select(func.count(func.distinct(Response.customer_id))).where(
        Response.campaign_id == campaign.id, Response.type.not_in(NOT_A_RESPONSE))) or 0
    costs = dict(uow.session.execute(select(CostLine.currency, func.sum(CostLine.amount)).where(
        CostLine.campaign_id == campaign.id).group_by(CostLine.currency)).all())
    costs = {k: Decimal(v).quantize(Decimal("0.01")) for k, v in costs.items()}
    revenue, attributed_customers, n_invoices = attribute(uow, campaign, model)
    cur = campaign.currency
    cost = costs.get(cur, Decimal("0.00"))
    other_costs = {k: v for k, v in costs.items() if k != cur}
    rev = revenue.get(cur, Decimal("0.00"))
    if other_costs:
        roi, roi_note = None, f"not computed: costs in {', '.join(sorted(other_costs))} besides {cur}"
    elif cost == 0:
        roi, roi_note = None, "not computed: no cost recorded"
    else:
        roi, roi_note = ((rev - cost) / cost).quantize(Decimal("0.0001")), None
    conversions = set(uow.session.scalars(select(Response.customer_id).where(
        Response.campaign_id == campaign.id, Response.type.in_(s.conversion_types)))) | attributed_customers
    return {
        "campaign": campaign.name, "status": campaign.status, "channel": campaign.channel, "currency": cur,
        "attribution": model, "window_days": campaign.attribution_days,
        "targeted": sum(groups.values()), "contacted": groups.get("contact", 0), "control": groups.get("control", 0),
        "suppressed": groups.get("suppressed", 0), "suppressed_by_reason": reasons,
        "delivered": delivered, "failed": statuses.get("failed", 0), "pending": statuses.get("pending", 0),
        "in_doubt": statuses.get("sending", 0),
        "responses": {t: {"customers": n, "rate": (n / delivered) if delivered else None} for t, n in sorted(by_type.items())},
        "responders": responders, "conversions": len(conversions),
        "attributed_invoices": n_invoices, "attributed_revenue": {k: str(v) for k, v in sorted(revenue.items())},
        "cost": str(cost), "other_costs": {k: str(v) for k, v in other_costs.items()},
        "cost_per_response": str((cost / responders).quantize(Decimal("0.01"))) if responders and cost else None,
        "roi": None if roi is None else str(roi), "roi_note": roi_note,
        "lift": lift(uow, campaign, s.conversion_types, s.significance),
        "ab": variants(uow, campaign, s.conversion_types, s.significance),
    }


def cross_sell(uow: UnitOfWork, bought: str, not_bought: str, limit: int = 100) -> tuple[int, list[dict[str, Any]]]:
    """Customers with invoices in category ``bought`` and none in ``not_bought`` (one GROUP BY)."""
    uow.require("customer.read")
    a = func.sum(case((Transaction.category == bought, 1), else_=0))
    b = func.sum(case((Transaction.category == not_bought, 1), else_=0))
    spend = func.sum(case((Transaction.category == bought, Transaction.amount), else_=0))
    per = (select(Account.customer_id.label("customer_id"), a.label("a"), b.label("b"), spend.label("spend"))
           .select_from(Transaction).join(Account, Account.id == Transaction.account_id)
           .where(Transaction.kind == "invoice", Transaction.category.in_([bought, not_bought]),
                  uow.visibility.customer_filter(Account.customer_id))  # an "own" user's customers only
           .group_by(Account.customer_id).having(a > 0).having(b == 0)).subquery()
    total = uow.session.scalar(select(func.count()).select_from(per)) or 0
    rows = uow.session.execute(
        select(Customer.id, Customer.external_ref, Customer.name, per.c.a.label("purchases"), per.c.spend)
        .join(per, per.c.customer_id == Customer.id).where(Customer.archived.is_(False))
        .order_by(per.c.spend.desc(), Customer.id).limit(limit)).all()
    return total, [dict(r._mapping) for r in rows]
