"""Dunning: raise overdue invoices through the configured levels, log each action, hold at a flagged level.

``run`` works on the whole ledger at once (open items from :mod:`crm_credit.ledger`, a handful of
set-based statements): each overdue invoice goes to the highest level its days overdue reach,
one interaction per customer and run records the action (and feeds the timeline), and a level
flagged ``hold`` puts the account on credit hold. A payment that settles the invoice resolves it
(``resolve_paid``, called from the posting hooks), and lifts a hold that dunning put on once no
invoice at a hold level is left.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import insert, select, update

from crm_credit import ledger, services
from crm_credit.models import CreditProfile, DunningEvent, DunningItem
from crm_credit.settings import DunningLevel, settings
from crmcore.db.types import utcnow
from crmcore.models import AuditEntry, Interaction, Transaction
from crmcore.sdk import jsonable, vocabularies_of
from crmcore.uow import UnitOfWork

CHANNEL = {"reminder": "email", "call": "phone", "final_notice": "mail", "hold": "mail", "collection": "mail"}


@dataclass
class RunResult:
    as_of: dt.date
    overdue: int = 0
    raised: int = 0
    resolved: int = 0
    interactions: int = 0
    held: list[int] = field(default_factory=list)
    by_level: dict[int, int] = field(default_factory=dict)
    charges: int = 0  # fee and interest entries posted


def _interest(open_cents: int, days: int, level: DunningLevel) -> Decimal:
    rate = level.interest_percent / Decimal(100)
    return (ledger.money(open_cents) * rate * Decimal(days) / Decimal(365)).quantize(Decimal("0.01"))


def run(uow: UnitOfWork, as_of: dt.date | None = None) -> RunResult:
    uow.require("credit.dunning")
    s = settings(uow)
    as_of = as_of or services.today()
    res = RunResult(as_of=as_of)
    now = utcnow()
    items = ledger.open_items(uow.session, as_of)
    t = ledger.day_of(as_of)
    over = np.flatnonzero(items.is_invoice & (items.open > 0) & (items.due < t))
    res.overdue = int(over.size)
    levels = s.dunning_levels
    thresholds = np.array([lv.days_overdue for lv in levels])
    days = t - items.due[over]
    target = np.searchsorted(thresholds, days, side="right")  # 0 = below the first level
    current = {tid: (lvl, cust) for tid, lvl, cust in uow.session.execute(
        select(DunningItem.transaction_id, DunningItem.level, DunningItem.customer_id).where(DunningItem.resolved_at.is_(None)))}
    # resolve items that are no longer open (paid, credited, written off)
    open_now = set(items.txn[items.open > 0].tolist())
    done = [tid for tid in current if tid not in open_now]
    res.resolved = _resolve(uow, done, now)
    raise_rows: list[tuple[int, int, int, int, int, str]] = []  # (txn, customer, level, days, open, currency)
    for k, tgt, d in zip(over.tolist(), target.tolist(), days.tolist()):
        if tgt == 0:
            continue
        tid = int(items.txn[k])
        before = current.get(tid, (0, 0))[0]
        if tgt > before:
            raise_rows.append((tid, int(items.customer[k]), tgt, d, int(items.open[k]), str(items.currency[k])))
    if not raise_rows:
        _audit(uow, res)
        return res
    res.raised = len(raise_rows)
    # the dunning items: insert the new ones, raise the known ones
    new = [r for r in raise_rows if r[0] not in current]
    known = [r for r in raise_rows if r[0] in current]
    if new:
        uow.session.execute(insert(DunningItem), [{"transaction_id": r[0], "customer_id": r[1], "level": r[2],
                                                   "last_action_at": now, "resolved_at": None} for r in new])
    if known:
        t_items = DunningItem.__table__
        from sqlalchemy import bindparam

        uow.session.connection().execute(
            update(t_items).where(t_items.c.transaction_id == bindparam("_tid")).values(level=bindparam("_lvl"), last_action_at=now),
            [{"_tid": r[0], "_lvl": r[2]} for r in known])
    # one interaction per customer and run, at the highest level reached
    refs = dict(uow.session.execute(select(Transaction.id, Transaction.reference).where(
        Transaction.id.in_([r[0] for r in raise_rows]))).all()) if len(raise_rows) <= 5000 else _refs(uow, [r[0] for r in raise_rows])
    per_customer: dict[int, list[tuple[int, int, int, int, int, str]]] = {}
    for r in raise_rows:
        per_customer.setdefault(r[1], []).append(r)
        res.by_level[r[2]] = res.by_level.get(r[2], 0) + 1
    inter_rows = [_interaction_row(cid, rows, levels, refs, as_of, now) for cid, rows in sorted(per_customer.items())]
    if inter_rows:  # written in one statement, not through the service: the kind is checked here the same way
        vocabularies_of(uow.crm).check("interaction_kinds", "follow_up", "kind")
    ids = list(uow.session.execute(insert(Interaction).returning(Interaction.id, Interaction.customer_id), inter_rows).all())
    inter_of = {c: i for i, c in ids}
    res.interactions = len(ids)
    _audit_interactions(uow, inter_rows, inter_of)
    uow.session.execute(insert(DunningEvent), [
        {"customer_id": r[1], "transaction_id": r[0], "level": r[2], "action": levels[r[2] - 1].action, "at": now,
         "days_overdue": r[3], "open_amount": ledger.money(r[4]), "currency": r[5], "fee": levels[r[2] - 1].fee,
         "interest": _interest(r[4], r[3], levels[r[2] - 1]), "interaction_id": inter_of.get(r[1])} for r in raise_rows])
    uow.hooks.interactions_batch(uow, [i for i, _ in ids])
    from crm_credit import terms  # fees and interest as ledger entries, through the core's posting service

    res.charges = len(terms.post_charges(uow, [(r[0], r[1], r[2], levels[r[2] - 1].fee, _interest(r[4], r[3], levels[r[2] - 1]))
                                               for r in raise_rows]))
    # holds at a flagged level
    for cid, rows in sorted(per_customer.items()):
        flagged = [r for r in rows if levels[r[2] - 1].hold]
        if flagged:
            p = services.get_profile(uow, cid)
            if p is None or p.status not in ("hold", "blocked"):
                services.hold(uow, cid, f"dunning level {max(r[2] for r in flagged)}: "
                              f"{len(flagged)} invoice(s) over {levels[max(r[2] for r in flagged) - 1].days_overdue} days overdue",
                              source="dunning")
                res.held.append(cid)
    _audit(uow, res)
    return res


def _interaction_row(cid: int, rows: list[tuple[int, int, int, int, int, str]], levels: list[DunningLevel],
                     refs: dict[int, str], as_of: dt.date, now: dt.datetime) -> dict[str, Any]:
    """The interaction that records one customer's dunning in this run, at the highest level reached."""
    top = levels[max(r[2] for r in rows) - 1]
    total: dict[str, int] = {}
    for r in rows:
        total[r[5]] = total.get(r[5], 0) + r[4]
    amounts = ", ".join(f"{services.fmt(ledger.money(v))} {k}" for k, v in sorted(total.items()))
    notes = "\n".join(f"{refs.get(r[0], r[0])}: level {r[2]} ({levels[r[2] - 1].action}), {r[3]} days overdue, "
                      f"{services.fmt(ledger.money(r[4]))} {r[5]} open" for r in rows)
    return {"customer_id": cid, "channel": CHANNEL[top.action], "direction": "outbound", "kind": "follow_up",
            "subject": f"Dunning level {top.level} ({top.action.replace('_', ' ')}): {len(rows)} invoice(s), {amounts} overdue"[:200],
            "notes": notes, "occurred_at": now, "handled_by_id": None, "outcome": None, "satisfaction": None,
            "source": "credit", "source_ref": f"dunning:{as_of.isoformat()}",
            "external_ref": f"credit-dunning-{cid}-{now:%Y%m%d%H%M%S%f}", "created_at": now}


def _refs(uow: UnitOfWork, ids: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for i in range(0, len(ids), 5000):
        out.update(dict(uow.session.execute(select(Transaction.id, Transaction.reference).where(
            Transaction.id.in_(ids[i:i + 5000]))).all()))
    return out


def _audit_interactions(uow: UnitOfWork, rows: list[dict[str, Any]], ids: dict[int, int]) -> None:
    """One ``create`` entry per logged interaction, as ``crm interaction log`` writes (one statement)."""
    keys = ("channel", "direction", "kind", "subject", "occurred_at", "source", "source_ref", "external_ref")
    now = utcnow()
    uow.session.execute(insert(AuditEntry), [
        {"at": now, "actor": uow.actor, "action": "create", "entity": "interaction", "entity_id": str(ids[r["customer_id"]]),
         "before": None, "after": jsonable({"customer_id": r["customer_id"], **{k: r[k] for k in keys}})} for r in rows])


def _audit(uow: UnitOfWork, res: RunResult) -> None:
    uow.audit.record("dunning-run", "credit_dunning", res.as_of.isoformat(), after={
        "overdue": res.overdue, "raised": res.raised, "resolved": res.resolved, "held": res.held, "charges": res.charges,
        "by_level": {str(k): v for k, v in res.by_level.items()}})


def _resolve(uow: UnitOfWork, txn_ids: list[int], now: dt.datetime) -> int:
    n = 0
    for i in range(0, len(txn_ids), 5000):
        n += services.rows_changed(uow.session.execute(update(DunningItem).where(
            DunningItem.transaction_id.in_(txn_ids[i:i + 5000]), DunningItem.resolved_at.is_(None)).values(resolved_at=now)))
    return n


def resolve_paid(uow: UnitOfWork, customer_ids: list[int]) -> int:
    """After settlements: resolve the paid dunning items of these customers, and lift a hold that
    dunning put on once no unresolved item at a hold level is left. Cheap when nothing is dunned."""
    ids = sorted(set(customer_ids))
    dunned: set[int] = set()
    for i in range(0, len(ids), 5000):
        dunned.update(uow.session.scalars(select(DunningItem.customer_id).where(
            DunningItem.customer_id.in_(ids[i:i + 5000]), DunningItem.resolved_at.is_(None)).distinct()))
    if not dunned:
        return 0
    items = ledger.open_items(uow.session, services.CURRENT, sorted(dunned))
    open_now = set(items.txn[items.open > 0].tolist())
    pending = list(uow.session.execute(select(DunningItem.transaction_id, DunningItem.customer_id, DunningItem.level).where(
        DunningItem.customer_id.in_(sorted(dunned)), DunningItem.resolved_at.is_(None))).all())
    done = [tid for tid, _, _ in pending if tid not in open_now]
    n = _resolve(uow, done, utcnow())
    s = settings(uow)
    hold_levels = {lv.level for lv in s.dunning_levels if lv.hold}
    still_held = {cid for tid, cid, lvl in pending if tid in open_now and lvl in hold_levels}
    for cid in sorted(dunned - still_held):
        p = uow.session.get(CreditProfile, cid)
        if p is not None and p.status == "hold" and p.hold_source == "dunning":
            before = services._snapshot(p)
            p.status, p.status_reason, p.hold_source = "watch", "dunning resolved by payment", None
            p.updated_at, p.updated_by = utcnow(), uow.actor
            uow.session.flush()
            services.record_change(uow, cid, "release", before, services._snapshot(p), "dunning resolved by payment")
            uow.hooks.call("credit_hold_changed", uow=uow, customer_id=cid, on_hold=False, reason="dunning resolved by payment")
    return n


def listing(uow: UnitOfWork, include_resolved: bool = False) -> list[dict[str, Any]]:
    from crmcore.models import Account

    q = (select(DunningItem, Transaction.reference, Transaction.due_date, Account.currency)
         .join(Transaction, Transaction.id == DunningItem.transaction_id).join(Account, Account.id == Transaction.account_id)
         .order_by(DunningItem.level.desc(), Transaction.due_date, DunningItem.transaction_id))
    if not include_resolved:
        q = q.where(DunningItem.resolved_at.is_(None))
    q = q.where(uow.visibility.customer_filter(DunningItem.customer_id))  # an "own" user's customers only
    s = settings(uow)
    rows = uow.session.execute(q).all()
    opens: dict[int, int] = {}
    if rows:
        items = ledger.open_items(uow.session, services.CURRENT, sorted({r[0].customer_id for r in rows}))
        opens = dict(zip(items.txn.tolist(), items.open.tolist()))
    t = services.today()
    return [{"customer_id": it.customer_id, "invoice": ref, "level": it.level,
             "action": s.dunning_levels[it.level - 1].action if it.level <= len(s.dunning_levels) else None,
             "due_date": due, "days_overdue": (t - due).days if due else None,
             "open": ledger.money(opens.get(it.transaction_id, 0)), "currency": cur,
             "last_action_at": it.last_action_at, "resolved_at": it.resolved_at} for it, ref, due, cur in rows]
