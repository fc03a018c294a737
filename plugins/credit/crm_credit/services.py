"""Credit profiles, holds and releases, the credit check, write-offs, the 360° section.

Functions take the caller's unit of work, flush, never commit. Every write checks its
permission first (``uow.require``) and records the change in ``credit_profile_changes`` and the
core audit log, so nothing is half-written when a check fails.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import numpy as np
from sqlalchemy import CursorResult, select, update

from crm_credit import ledger
from crm_credit.models import (
    CreditModelScore,
    CreditProfile,
    CreditProfileChange,
    CreditRelease,
    CreditScore,
    DunningEvent,
    DunningItem,
)
from crm_credit.schemas import ProfileUpdate, ReleaseRequest, WriteOffRequest
from crm_credit.settings import CreditSettings, settings
from crmcore.db.types import utcnow
from crmcore.enums import TransactionKind
from crmcore.errors import Conflict, InvalidInput, NotFound
from crmcore.models import Account, Customer, Transaction
from crmcore.schemas import TransactionCreate
from crmcore.schemas.account import check_amount
from crmcore.sdk import clean_text, jsonable
from crmcore.uow import UnitOfWork

PROFILE_FIELDS = ("limit_amount", "currency", "payment_terms_days", "status", "status_reason", "last_review",
                  "registry_id", "registry_name", "legal_form", "founded_on", "employees", "financials_year",
                  "annual_revenue", "equity", "net_income", "trade_references", "investigation_notes", "investigated_on", "next_review", "credit_group", "discount_percent",
                  "discount_days")
SETTLEMENTS = (TransactionKind.PAYMENT, TransactionKind.CREDIT_NOTE, TransactionKind.WRITE_OFF)
CURRENT = None  # "as of" for the current position: every entry whatever its date (ledger.load_ledger)


def today() -> dt.date:
    return utcnow().date()


def fmt(amount: Decimal) -> str:
    return f"{amount:,.2f}"


# -- profiles ---------------------------------------------------------------------------------------

def get_profile(uow: UnitOfWork, customer_id: int) -> CreditProfile | None:
    return uow.session.get(CreditProfile, customer_id)


def _snapshot(p: CreditProfile | None) -> dict[str, Any]:
    if p is None:
        return {}
    return {f: jsonable(getattr(p, f)) for f in PROFILE_FIELDS}


def record_change(uow: UnitOfWork, customer_id: int, action: str, before: dict[str, Any], after: dict[str, Any],
                  reason: str | None = None) -> None:
    """One history row with only the fields that changed, and the same in the core audit log."""
    keys = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    b = {k: before.get(k) for k in keys}
    a = {k: after.get(k) for k in keys}
    uow.session.add(CreditProfileChange(customer_id=customer_id, at=utcnow(), actor=uow.actor, action=action,
                                        before=b, after=a, reason=reason))
    uow.audit.record(action, "credit_profile", customer_id, before=b, after={**a, **({"reason": reason} if reason else {})})


def _default_currency(uow: UnitOfWork, customer_id: int, s: CreditSettings) -> str:
    cur = uow.session.scalar(select(Account.currency).where(Account.customer_id == customer_id, Account.is_default))
    return cur or s.default_currency


def ensure_profile(uow: UnitOfWork, customer: Customer, currency: str | None = None) -> CreditProfile:
    p = get_profile(uow, customer.id)
    if p is None:
        s = settings(uow)
        p = CreditProfile(customer_id=customer.id, currency=currency or _default_currency(uow, customer.id, s),
                          status="good", trade_references=[], updated_at=utcnow(), updated_by=uow.actor)
        uow.session.add(p)
        uow.session.flush()
        record_change(uow, customer.id, "create", {}, _snapshot(p))
    return p


def _customer(uow: UnitOfWork, customer_id: int) -> Customer:
    c = uow.customers.get(customer_id)
    if c.archived:
        raise Conflict(f"customer {customer_id} is archived")
    return c


def set_profile(uow: UnitOfWork, customer_id: int, data: ProfileUpdate) -> CreditProfile:
    """Change the given fields. A limit must be in a currency the customer's accounts are kept in."""
    uow.require("credit.profile.write")
    c = _customer(uow, customer_id)
    if data.limit is not None and data.clear_limit:
        raise InvalidInput("give either --limit or --no-limit, not both")
    p = get_profile(uow, c.id)
    currency = data.currency or (p.currency if p else _default_currency(uow, c.id, settings(uow)))
    currencies = set(uow.session.scalars(select(Account.currency).where(Account.customer_id == c.id)))
    if currencies and currency not in currencies:
        raise InvalidInput(f"a limit in {currency} cannot be checked: the accounts of customer {c.id} are kept in "
                           f"{', '.join(sorted(currencies))}", [("currency", "not a currency of the customer's accounts")])
    for name in ("limit", "annual_revenue", "equity", "net_income"):
        amount = getattr(data, name)
        if amount is not None:
            try:
                check_amount(abs(amount), currency)
            except ValueError as e:
                raise InvalidInput(f"invalid input: {name}: {e}", [(name, str(e))]) from None
    p = ensure_profile(uow, c, currency)
    before = _snapshot(p)
    values = data.model_dump(exclude_unset=True, exclude={"limit", "clear_limit", "reason", "clear_discount"})
    from crm_credit.terms import profile_terms  # discount window within the net terms; the next review

    values.update(profile_terms(uow, p, data, settings(uow)))
    if "trade_references" in values and data.trade_references is not None:
        values["trade_references"] = [r.model_dump() for r in data.trade_references]
    if data.limit is not None:
        values["limit_amount"] = data.limit
    if data.clear_limit:
        values["limit_amount"] = None
    if data.status is not None:
        if p.status == "hold":
            raise Conflict(f"customer {c.id} is on credit hold; lift it with `crm credit release` (needs credit.release)")
        values["status_reason"] = data.reason
        values["hold_source"] = None
    for k, v in values.items():
        setattr(p, k, v)
    p.updated_at, p.updated_by = utcnow(), uow.actor
    uow.session.flush()
    record_change(uow, c.id, "update", before, _snapshot(p), data.reason)
    return p


def history(uow: UnitOfWork, customer_id: int, limit: int = 100) -> list[CreditProfileChange]:
    uow.customers.get(customer_id)
    return list(uow.session.scalars(select(CreditProfileChange).where(CreditProfileChange.customer_id == customer_id)
                                    .order_by(CreditProfileChange.id.desc()).limit(limit)))


# -- holds and releases -----------------------------------------------------------------------------

def hold(uow: UnitOfWork, customer_id: int, reason: str, source: str = "manual") -> CreditProfile:
    """Put the customer on credit hold: every new invoice (and win, by the check point) is refused."""
    if source == "manual":
        uow.require("credit.hold")
    reason = clean_text(reason, "reason", max_length=500, multiline=True, required=True) or ""  # every face, same rule
    c = _customer(uow, customer_id)
    p = ensure_profile(uow, c)
    if p.status == "hold":
        if source == "manual":
            raise Conflict(f"customer {c.id} is already on credit hold ({p.status_reason})")
        return p
    if p.status == "blocked":
        if source == "manual":
            raise Conflict(f"customer {c.id} is blocked; a hold would change nothing")
        return p
    before = _snapshot(p)
    p.status, p.status_reason, p.hold_source = "hold", reason, source
    p.updated_at, p.updated_by = utcnow(), uow.actor
    now = utcnow()
    uow.session.execute(update(CreditRelease).where(CreditRelease.customer_id == c.id, CreditRelease.reference.is_(None),
                                                    CreditRelease.ended_at.is_(None), CreditRelease.expires_at > now)
                        .values(ended_at=now))
    uow.session.flush()
    record_change(uow, c.id, "hold", before, _snapshot(p), reason)
    uow.hooks.call("credit_hold_changed", uow=uow, customer_id=c.id, on_hold=True, reason=reason)
    return p


def release(uow: UnitOfWork, customer_id: int, req: ReleaseRequest) -> CreditRelease:
    """Let one document (``reference``) or the customer through the credit check until the expiry.

    Releasing the customer also lifts a hold (status becomes watch). Needs ``credit.release``.
    """
    uow.require("credit.release")
    c = _customer(uow, customer_id)
    p = ensure_profile(uow, c)
    if p.status == "blocked":
        raise Conflict(f"customer {c.id} is blocked; unblock it with `crm credit profile set --status watch` first")
    now = utcnow()
    r = CreditRelease(customer_id=c.id, reference=req.reference, reason=req.reason,
                      expires_at=now + dt.timedelta(days=req.days), created_at=now, created_by=uow.actor)
    uow.session.add(r)
    before = _snapshot(p)
    was_on_hold = p.status == "hold"
    if req.reference is None and was_on_hold:
        p.status, p.status_reason, p.hold_source = "watch", f"released: {req.reason}", None
        p.updated_at, p.updated_by = now, uow.actor
    uow.session.flush()
    what = f"document {req.reference}" if req.reference else "customer"
    record_change(uow, c.id, "release", {**before, "release": None},
                  {**_snapshot(p), "release": f"{what} until {r.expires_at.isoformat(timespec='minutes')}"}, req.reason)
    if req.reference is None and was_on_hold:
        uow.hooks.call("credit_hold_changed", uow=uow, customer_id=c.id, on_hold=False, reason=req.reason)
    return r


def active_release(uow: UnitOfWork, customer_id: int, reference: str | None) -> CreditRelease | None:
    """A release in force for this document (or for the whole customer)."""
    now = utcnow()
    q = (select(CreditRelease).where(CreditRelease.customer_id == customer_id, CreditRelease.ended_at.is_(None),
                                     CreditRelease.expires_at > now)
         .order_by(CreditRelease.reference.is_(None), CreditRelease.id.desc()))
    for r in uow.session.scalars(q):
        if r.reference is None or (reference is not None and r.reference == reference):
            return r
    return None


def releases(uow: UnitOfWork, customer_id: int) -> list[CreditRelease]:
    return list(uow.session.scalars(select(CreditRelease).where(CreditRelease.customer_id == customer_id)
                                    .order_by(CreditRelease.id.desc())))


# -- the credit check ------------------------------------------------------------------------------

@dataclass
class Check:
    """The outcome of a credit check, with the figures behind it (all in ``currency``)."""

    customer_id: int
    currency: str
    amount: Decimal
    ok: bool = True
    reasons: list[str] = field(default_factory=list)
    status: str | None = None
    limit: Decimal | None = None
    allowed: Decimal | None = None
    open_receivable: Decimal = Decimal("0.00")
    uninvoiced_won: Decimal = Decimal("0.00")
    exposure: Decimal = Decimal("0.00")
    overdue_beyond_grace: int = 0
    oldest_days_past_due: int = 0
    released_by: str | None = None
    reference: str | None = None  # the document checked
    warned: str | None = None  # passed in warn mode: the warning recorded

    def message(self) -> str:
        won = f" + won not invoiced {fmt(self.uninvoiced_won)}" if self.uninvoiced_won else ""
        return (f"credit check failed for customer {self.customer_id}: {'; '.join(self.reasons)} "
                f"(exposure {fmt(self.exposure)} {self.currency} = open {fmt(self.open_receivable)}{won} "
                f"+ new {fmt(self.amount)}; limit "
                f"{'none' if self.limit is None else fmt(self.limit)}"
                f"{'' if self.allowed is None or self.allowed == self.limit else f', allowed with overshoot {fmt(self.allowed)}'})")

    def as_dict(self) -> dict[str, Any]:
        return {k: jsonable(v) for k, v in self.__dict__.items()}


def lock_profiles(uow: UnitOfWork, customer_ids: list[int]) -> dict[int, CreditProfile]:
    """The profiles, locked until the end of the transaction (SELECT ... FOR UPDATE, in id order so
    two batches never deadlock). On SQLite the write lock already serialises writers."""
    out: dict[int, CreditProfile] = {}
    ids = sorted(set(customer_ids))
    for i in range(0, len(ids), 2000):
        q = (select(CreditProfile).where(CreditProfile.customer_id.in_(ids[i:i + 2000])).order_by(CreditProfile.customer_id)
             .with_for_update().execution_options(populate_existing=True))
        out.update({p.customer_id: p for p in uow.session.scalars(q)})
    return out


def uninvoiced_won(uow: UnitOfWork, customer_id: int, currency: str) -> Decimal:
    """Won deals not invoiced yet, from sales_automation's hook when it is enabled (else 0)."""
    total = Decimal("0.00")
    for value in uow.hooks.call("sales_uninvoiced_won", uow=uow, customer_id=customer_id, currency=currency):
        if value is not None:
            total += Decimal(value)
    return total


@dataclass
class _Open:
    open_cents: dict[tuple[int, str], int]
    overdue: dict[tuple[int, str], tuple[int, int]]  # (count beyond grace, oldest days past due)


def _open_figures(uow: UnitOfWork, customer_ids: list[int], grace: int, items: ledger.OpenItems | None = None) -> _Open:
    """Open receivable and invoices overdue beyond the grace, per (customer, currency)."""
    if items is None:
        items = ledger.open_items(uow.session, CURRENT, customer_ids)
    t = ledger.day_of(today())
    opn: dict[tuple[int, str], int] = {}
    over: dict[tuple[int, str], tuple[int, int]] = {}
    o = items.open > 0
    for c, k, amt, due in zip(items.customer[o].tolist(), items.currency[o].tolist(), items.open[o].tolist(), items.due[o].tolist()):
        opn[(c, k)] = opn.get((c, k), 0) + amt
        late = t - due
        if late > grace:
            n, oldest = over.get((c, k), (0, 0))
            over[(c, k)] = (n + 1, max(oldest, late))
    return _Open(opn, over)


def evaluate(uow: UnitOfWork, s: CreditSettings, profile: CreditProfile | None, customer_id: int, amount: Decimal,
             currency: str, figures: _Open, reference: str | None = None, pending: Decimal = Decimal(0),
             won: Decimal | None = None) -> Check:
    """Apply the rules to figures already loaded. ``pending``: amounts of the same batch already accepted."""
    chk = Check(customer_id=customer_id, currency=currency, amount=amount, reference=reference)
    if profile is None:
        if s.require_profile:
            chk.ok = False
            chk.reasons.append("no credit profile (credit.require_profile is on)")
        return chk
    chk.status, chk.limit = profile.status, profile.limit_amount
    chk.open_receivable = ledger.money(figures.open_cents.get((customer_id, currency), 0)) + pending
    chk.uninvoiced_won = uninvoiced_won(uow, customer_id, currency) if won is None else won
    chk.exposure = chk.open_receivable + chk.uninvoiced_won + amount
    n_over, oldest = figures.overdue.get((customer_id, currency), (0, 0))
    chk.overdue_beyond_grace, chk.oldest_days_past_due = n_over, oldest
    if profile.status == "blocked":
        chk.ok = False
        chk.reasons.append(f"customer is blocked ({profile.status_reason or 'no reason given'})")
        return chk
    reasons: list[str] = []
    if profile.status == "hold":
        reasons.append(f"customer is on credit hold ({profile.status_reason or 'no reason given'})")
    if profile.limit_amount is not None:
        if currency != profile.currency:
            reasons.append(f"the credit limit is in {profile.currency}; a document in {currency} cannot be checked against it")
        else:
            chk.allowed = (profile.limit_amount * (1 + s.overshoot_percent / 100)).quantize(Decimal("0.01"))
            if chk.exposure > chk.allowed:
                reasons.append(f"over the credit limit by {fmt(chk.exposure - chk.allowed)} {currency}")
    if n_over:
        reasons.append(f"{n_over} invoice(s) overdue beyond the {s.overdue_grace_days}-day grace (oldest {oldest} days past due)")
    if reasons:
        rel = active_release(uow, customer_id, reference)
        if rel is not None:
            chk.released_by = f"{rel.created_by}: {rel.reason} (until {rel.expires_at:%Y-%m-%d %H:%M})"
            return chk
        chk.ok = False
        chk.reasons = reasons
    return chk


def check(uow: UnitOfWork, customer_id: int, amount: Decimal, currency: str | None = None, reference: str | None = None,
          *, lock: bool = True) -> Check:
    """The credit check of a new document of ``amount`` for the customer (nothing is written)."""
    if amount <= 0:
        raise InvalidInput(f"the amount to check must be positive, got {amount}")
    s = settings(uow)
    c = uow.customers.get(customer_id)
    profile = lock_profiles(uow, [c.id]).get(c.id) if lock else get_profile(uow, c.id)
    currency = currency or (profile.currency if profile else _default_currency(uow, c.id, s))
    figures = _open_figures(uow, [c.id], s.overdue_grace_days)
    return evaluate(uow, s, profile, c.id, amount, currency, figures, reference)


# the posting guards (settlements, the credit check of new debits) are in crm_credit.guards


# -- write-off -------------------------------------------------------------------------------------

def write_off(uow: UnitOfWork, customer_id: int, req: WriteOffRequest) -> Transaction:
    """Write off (part of) an open invoice: posts a ``write_off`` entry naming it through the core."""
    uow.require("credit.writeoff")
    c = _customer(uow, customer_id)
    inv = uow.session.execute(select(Transaction, Account).join(Account, Account.id == Transaction.account_id)
                              .where(Account.customer_id == c.id, Transaction.reference == req.invoice,
                                     Transaction.kind == TransactionKind.INVOICE)).first()
    if inv is None:
        raise NotFound("invoice", f"{req.invoice!r} of customer {c.id}")
    invoice, account = inv
    items = ledger.open_items(uow.session, CURRENT, [c.id])
    hit = np.flatnonzero(items.txn == invoice.id)
    open_cents = int(items.open[hit].sum())
    if open_cents == 0:
        raise Conflict(f"invoice {req.invoice} is settled; nothing to write off")
    amount = req.amount if req.amount is not None else ledger.money(open_cents)
    if ledger.cents(amount) > open_cents:
        raise InvalidInput(f"write-off of {fmt(amount)} is larger than the {fmt(ledger.money(open_cents))} open on invoice {req.invoice}")
    ref, n = f"WO-{req.invoice}", 1
    while uow.session.scalar(select(Transaction.id).join(Account, Account.id == Transaction.account_id)
                             .where(Account.customer_id == c.id, Transaction.reference == ref)):
        n += 1
        ref = f"WO-{req.invoice}-{n}"
    entry, _ = uow.accounts.post(c.id, TransactionCreate(kind=TransactionKind.WRITE_OFF, amount=amount, reference=ref,
                                                         description=f"{req.invoice} written off: {req.reason}"[:500],
                                                         source="credit", applies_to=req.invoice), account_id=account.id)
    ensure_profile(uow, c)
    record_change(uow, c.id, "write-off", {"written_off": None},
                  {"written_off": f"{fmt(amount)} {account.currency} of {req.invoice} ({ref})"}, req.reason)
    # value_analysis's churn reasons: a customer written off left owing money ("malicious")
    uow.hooks.call("value_customer_lost", uow=uow, customer_id=c.id, reason="malicious",
                   note=f"{fmt(amount)} {account.currency} of {req.invoice} written off: {req.reason}"[:500],
                   source="credit.write_off")
    return entry


# -- the 360° view, the timeline, merges -----------------------------------------------------------

def profile_section(uow: UnitOfWork, customer: Customer) -> Any:
    from crmcore import ProfileSection, ProfileTable

    p = get_profile(uow, customer.id)
    sc = uow.session.get(CreditScore, customer.id)
    levels = list(uow.session.scalars(select(DunningItem.level).where(DunningItem.customer_id == customer.id,
                                                                       DunningItem.resolved_at.is_(None))))
    if p is None and sc is None and not levels:
        return None
    s = settings(uow)
    items = ledger.open_items(uow.session, CURRENT, [customer.id])
    rows, _ = ledger.ageing(items, today())
    currency = p.currency if p else (sc.currency if sc else s.default_currency)
    own = [r for r in rows if r.currency == currency]
    open_ = own[0].open if own else Decimal("0.00")
    won = uninvoiced_won(uow, customer.id, currency)
    fields: dict[str, Any] = {
        "status": p.status if p else "good",
        "limit": None if p is None or p.limit_amount is None else f"{fmt(p.limit_amount)} {p.currency}",
        "exposure": f"{fmt(open_ + won)} {currency}",
        "available": None if p is None or p.limit_amount is None else f"{fmt(p.limit_amount - open_ - won)} {currency}",
        "grade": None if sc is None else f"{sc.grade} (score {sc.score})",
        "lowered by": None if sc is None else ", ".join(sc.reasons.get("lowered", [])) or "nothing",
        "raised by": None if sc is None else ", ".join(sc.reasons.get("raised", [])) or "nothing",
        "dunning level": max(levels) if levels else 0,
        "last review": None if p is None or p.last_review is None else p.last_review.isoformat(),
    }
    if p is not None and p.status == "hold":
        fields["hold reason"] = p.status_reason
    from crm_credit.scorecard_apply import profile_fields  # trained scorecards: score and reason codes

    fields.update(profile_fields(uow, customer.id))
    tables = [ProfileTable(title="Ageing", columns=["currency", *ledger.BUCKETS, "open", "unapplied"],
                           rows=[[r.currency, *[fmt(r.buckets[b]) for b in ledger.BUCKETS], fmt(r.open), fmt(r.unapplied)]
                                 for r in rows])] if rows else []
    return ProfileSection(title="Credit", fields=fields, tables=tables)


def timeline(uow: UnitOfWork, customer: Customer) -> list[Any]:
    from crmcore import TimelineEntry

    out = []
    for ch in uow.session.scalars(select(CreditProfileChange).where(CreditProfileChange.customer_id == customer.id,
                                                                    CreditProfileChange.action.in_(("hold", "release", "write-off")))):
        out.append(TimelineEntry(at=ch.at, kind=f"credit {ch.action}", summary=f"{ch.reason or ''} ({ch.actor})".strip()))
    for ev in uow.session.scalars(select(DunningEvent).where(DunningEvent.customer_id == customer.id)):
        out.append(TimelineEntry(at=ev.at, kind="dunning " + ev.action.replace("_", " "),
                                 summary=f"level {ev.level}: {fmt(ev.open_amount)} {ev.currency} {ev.days_overdue} days overdue",
                                 reference=str(ev.transaction_id)))
    return out


def merge_customer_rows(uow: UnitOfWork, source_id: int, target_id: int) -> dict[str, int]:
    """Re-point every credit row of ``source_id``. One profile per customer: the target's is kept
    (the source's is dropped, its history stays under the target); scores are recomputed later."""
    from sqlalchemy import delete

    counts: dict[str, int] = {}
    sess = uow.session
    if sess.get(CreditProfile, target_id) is not None:
        counts["credit_profiles"] = _rows(sess.execute(delete(CreditProfile).where(CreditProfile.customer_id == source_id)))
    else:
        counts["credit_profiles"] = _rows(sess.execute(update(CreditProfile).where(CreditProfile.customer_id == source_id)
                                                       .values(customer_id=target_id)))
    counts["credit_scores"] = _rows(sess.execute(delete(CreditScore).where(CreditScore.customer_id == source_id)))
    counts["credit_model_scores"] = _rows(sess.execute(delete(CreditModelScore).where(
        CreditModelScore.customer_id == source_id)))
    from crm_credit.models import CreditCharge, CreditDiscount, CreditGradeChange, CreditWarning

    for model in (CreditProfileChange, CreditRelease, DunningItem, DunningEvent, CreditCharge, CreditDiscount,
                  CreditWarning, CreditGradeChange):
        counts[model.__tablename__] = _rows(sess.execute(update(model).where(model.customer_id == source_id)
                                                         .values(customer_id=target_id)))
    sess.expire_all()
    return counts


def rows_changed(result: Any) -> int:
    """The rows an UPDATE or DELETE changed (a DML statement's result is a cursor result)."""
    return int(cast(CursorResult[Any], result).rowcount)


_rows = rows_changed
