"""Reports on the selling process: which lead sources and campaigns pay, why deals are won and
lost, and which open leads and deals nobody has followed up.

* :func:`source_effectiveness` -- per lead source (or campaign): leads, conversion rate, deals,
  win rate, cycle time from lead to won deal and won revenue per currency;
* :func:`reasons` -- won and lost deals by their reason word (the ``won_reasons`` and
  ``lost_reasons`` vocabularies), count, share and amount per currency;
* :func:`follow_up` -- open leads and deals without an action for N days (setting
  ``follow_up_days``, 30) and nothing planned, by owner;
* :func:`objections` -- per objection-handling method (the ``objection_methods`` vocabulary), and
  per method and objection kind: objections, share resolved, share won of their deals closed.

Each is a few GROUP BY queries with the same visibility clauses as every other sales read, so an
"own" user's report covers only their leads and their customers' deals, by every face.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import case, distinct, func, select

from crm_sales_automation import visibility as visible
from crm_sales_automation.enums import LeadStatus, ObjectionKind, OpportunityStatus
from crm_sales_automation.models import Activity, Lead, Objection, Opportunity, StageChange
from crm_sales_automation.services._common import moment, settings_for
from crmcore.db.dates import days_between
from crmcore.errors import InvalidInput
from crmcore.models import User
from crmcore.uow import UnitOfWork

CENT = Decimal("0.01")
SOURCE_BY = ("source", "campaign")
OPEN_LEADS = (LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.QUALIFIED)
NONE = "(none)"
UNSPECIFIED = "unspecified"  # an objection without a method, in the objections report


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100 * part / whole, 1)


def source_effectiveness(uow: UnitOfWork, by: str = "source") -> list[dict[str, Any]]:
    """Per lead source or campaign: how many leads converted, how their deals ended, in how many
    days from the lead to the won deal, and the won revenue (per currency, never added up)."""
    if by not in SOURCE_BY:
        raise InvalidInput(f"invalid input: by: {by!r} is not one of {', '.join(SOURCE_BY)}")
    key = Lead.source if by == "source" else Lead.campaign_ref
    rows: dict[str, dict[str, Any]] = {}

    def row(k: str | None) -> dict[str, Any]:
        return rows.setdefault(k or NONE, {by: k or NONE, "leads": 0, "converted": 0, "conversion_rate": None,
                                           "deals": 0, "won": 0, "lost": 0, "win_rate": None,
                                           "avg_cycle_days": None, "revenue": {}})
    for k, n, conv in uow.session.execute(
            select(key, func.count(), func.sum(case((Lead.status == LeadStatus.CONVERTED, 1), else_=0)))
            .where(visible.leads(uow)).group_by(key)):
        r = row(k)
        r["leads"], r["converted"] = n, int(conv or 0)
    cycle = days_between(Opportunity.closed_at, Lead.created_at)
    cycles: dict[str, tuple[float, int]] = {}
    for k, status, cur, n, amount, days in uow.session.execute(
            select(key, Opportunity.status, Opportunity.currency, func.count(), func.sum(Opportunity.amount),
                   func.sum(case((Opportunity.status == OpportunityStatus.WON, cycle))))
            .select_from(Opportunity).join(Lead, Lead.id == Opportunity.lead_id)
            .where(visible.deals(uow)).group_by(key, Opportunity.status, Opportunity.currency)):
        r, status = row(k), OpportunityStatus(status)
        r["deals"] += n
        if status is OpportunityStatus.WON:
            r["won"] += n
            r["revenue"][cur] = (r["revenue"].get(cur, Decimal(0)) + Decimal(amount or 0)).quantize(CENT)
            total, count = cycles.get(r[by], (0.0, 0))
            cycles[r[by]] = (total + float(days or 0), count + n)
        elif status is OpportunityStatus.LOST:
            r["lost"] += n
    for r in rows.values():
        r["conversion_rate"] = _pct(r["converted"], r["leads"])
        r["win_rate"] = _pct(r["won"], r["won"] + r["lost"])
        total, count = cycles.get(r[by], (0.0, 0))
        r["avg_cycle_days"] = round(total / count, 1) if count else None
    return sorted(rows.values(), key=lambda r: (r[by] == NONE, r[by]))


def reasons(uow: UnitOfWork) -> list[dict[str, Any]]:
    """Closed deals by outcome and reason word ("unspecified" when none was given), with their
    share of that outcome and their amount per currency."""
    word = case((Opportunity.status == OpportunityStatus.WON, Opportunity.won_reason), else_=Opportunity.lost_reason_code)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    totals: dict[str, int] = {}
    for status, w, cur, n, amount in uow.session.execute(
            select(Opportunity.status, word, Opportunity.currency, func.count(), func.sum(Opportunity.amount))
            .where(Opportunity.status != OpportunityStatus.OPEN, visible.deals(uow))
            .group_by(Opportunity.status, word, Opportunity.currency)):
        outcome = OpportunityStatus(status).value
        r = found.setdefault((outcome, w or "unspecified"), {"outcome": outcome, "reason": w or "unspecified",
                                                             "deals": 0, "share": None, "amount": {}})
        r["deals"] += n
        r["amount"][cur] = Decimal(amount or 0).quantize(CENT)
        totals[outcome] = totals.get(outcome, 0) + n
    for r in found.values():
        r["share"] = _pct(r["deals"], totals[r["outcome"]])
    return sorted(found.values(), key=lambda r: (r["outcome"] != "won", -r["deals"], r["reason"]))


def _handling_rows(uow: UnitOfWork, *keys: Any) -> list[dict[str, Any]]:
    """One GROUP BY over the visible deals' objections: per ``keys`` the objections, how many are
    resolved, and the distinct deals they were raised on -- all, closed, and won."""
    deal = Objection.opportunity_id
    closed = case((Opportunity.status != OpportunityStatus.OPEN, deal))
    won = case((Opportunity.status == OpportunityStatus.WON, deal))
    q = (select(*keys, func.count(), func.sum(case((Objection.resolved, 1), else_=0)), func.count(distinct(deal)),
                func.count(distinct(closed)), func.count(distinct(won)))
         .select_from(Objection).join(Opportunity, Opportunity.id == deal)
         .where(visible.deals(uow)).group_by(*keys))
    out = []
    for *key, n, resolved, deals, closed_deals, won_deals in uow.session.execute(q):
        row: dict[str, Any] = {"method": key[0] or UNSPECIFIED}
        if len(key) > 1:
            row["kind"] = ObjectionKind(key[1]).value
        resolved = int(resolved or 0)
        out.append({**row, "objections": n, "resolved": resolved, "resolved_share": _pct(resolved, n),
                    "deals": deals, "closed_deals": closed_deals, "won_deals": won_deals,
                    "won_share": _pct(won_deals, closed_deals)})
    return out


def objections(uow: UnitOfWork) -> dict[str, Any]:
    """How objections were handled and whether it worked: per method (a word of
    ``objection_methods``; "unspecified" when none was recorded) and per method and objection
    kind, the objections, the share resolved, and of the distinct deals they were raised on the
    share won among those closed (open deals do not count; a deal counts once per row however many
    of its objections fall in it). Only the deals the actor sees."""
    kinds = {k: i for i, k in enumerate(ObjectionKind)}

    def order(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["method"] == UNSPECIFIED, -r["objections"], r["method"])
    methods = sorted(_handling_rows(uow, Objection.method), key=order)
    by_kind = sorted(_handling_rows(uow, Objection.method, Objection.kind),
                     key=lambda r: (kinds[ObjectionKind(r["kind"])], *order(r)))
    return {"methods": methods, "by_kind": by_kind}


def _aware(value: Any) -> dt.datetime | None:
    """A timestamp from an aggregate (SQLite returns text) as an aware UTC datetime."""
    if value is None:
        return None
    value = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _activity_marks(uow: UnitOfWork, column: Any, ids: list[int], now: dt.datetime) -> dict[int, tuple[Any, Any]]:
    """Per lead or deal id: (last activity done, next open activity due from now on)."""
    if not ids:
        return {}
    q = (select(column, func.max(Activity.done_at),
                func.min(case(((Activity.done_at.is_(None)) & (Activity.due_at >= now), Activity.due_at))))
         .where(column.in_(ids)).group_by(column))
    return {i: (_aware(d), _aware(n)) for i, d, n in uow.session.execute(q)}


def follow_up(uow: UnitOfWork, days: int | None = None, owner: str | None = None,
              as_of: dt.date | None = None) -> dict[str, Any]:
    """Open leads and deals whose last action (a completed activity, a stage move, or their
    creation) is more than ``days`` old and that have no activity planned, by owner; as of noon
    UTC of ``as_of`` (default: now), so the demo's list reads the same on any day."""
    days = settings_for(uow).follow_up_days if days is None else days
    if not 1 <= days <= 3650:
        raise InvalidInput(f"invalid input: days: must be between 1 and 3650, got {days}")
    now = moment(as_of)
    cutoff = now - dt.timedelta(days=days)
    owner_id = uow.users.id_for(owner) if owner else None
    leads = uow.session.execute(
        select(Lead.id, Lead.name, Lead.owner_id, Lead.created_at).where(Lead.status.in_(OPEN_LEADS), visible.leads(uow))
        .where(Lead.owner_id == owner_id if owner else Lead.id.is_not(None)).order_by(Lead.id)).all()
    deals = uow.session.execute(
        select(Opportunity.id, Opportunity.title, Opportunity.owner_id, Opportunity.created_at,
               func.max(StageChange.changed_at))
        .outerjoin(StageChange, StageChange.opportunity_id == Opportunity.id)
        .where(Opportunity.status == OpportunityStatus.OPEN, visible.deals(uow))
        .where(Opportunity.owner_id == owner_id if owner else Opportunity.id.is_not(None))
        .group_by(Opportunity.id, Opportunity.title, Opportunity.owner_id, Opportunity.created_at)
        .order_by(Opportunity.id)).all()
    lead_marks = _activity_marks(uow, Activity.lead_id, [r[0] for r in leads], now)
    deal_marks = _activity_marks(uow, Activity.opportunity_id, [r[0] for r in deals], now)
    items: list[tuple[int | None, str, dict[str, Any]]] = []
    for kind, rows, marks in (("leads", [(*r, None) for r in leads], lead_marks), ("opportunities", deals, deal_marks)):
        for i, name, oid, created, moved in rows:
            done, planned = marks.get(i, (None, None))
            last = max(t for t in (_aware(created), done, _aware(moved)) if t is not None)
            if last < cutoff and planned is None:
                items.append((oid, kind, {"id": i, "name": name, "last_action": last, "idle_days": (now - last).days}))
    names = dict(uow.session.execute(select(User.id, User.username).where(User.id.in_({o for o, _, _ in items if o})))
                 .all()) if items else {}
    by_owner: dict[str | None, dict[str, Any]] = {}
    for oid, kind, item in items:
        who = names.get(oid) if oid else None
        by_owner.setdefault(who, {"owner": who, "leads": [], "opportunities": []})[kind].append(item)
    owners = sorted(by_owner.values(), key=lambda r: (r["owner"] is None, r["owner"] or ""))
    return {"days": days, "owners": owners, "total": len(items)}
