"""Payment terms that post ledger entries: early-payment discounts and dunning charges.

Both go through the core's posting service (``uow.accounts.post``: audited, hooks run, balances
and statements include them), never by writing ``transactions`` directly:

- an **early-payment discount** ("2% within 10 days, net 30", on the profile) is a credit note
  naming the invoice (``applies_to``), posted when a payment brings the invoice down to no more than the discount
  within the window;
- **dunning fees and interest** are ``charge`` entries (the core's kind: debit items due at
  once, in balances, ageing and statements) on the invoice's account, naming the invoice
  (``applies_to``), recorded in ``credit_charges``; with ``clear_charges_with_invoice`` a credit
  note naming the charge clears it once its invoice is settled.

Every entry posted here names what it settles in the core's ``applies_to`` field.

Money is Decimal throughout, rounded half-up to the currency's minor units.
"""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

import numpy as np
from sqlalchemy import select

from crm_credit import ledger
from crm_credit.models import CreditCharge, CreditDiscount, CreditProfile
from crm_credit.settings import CreditSettings, settings
from crmcore.db.types import utcnow
from crmcore.enums import TransactionKind
from crmcore.errors import InvalidInput
from crmcore.models import Account, Transaction
from crmcore.schemas import TransactionCreate
from crmcore.sdk import check_amount
from crmcore.uow import UnitOfWork

CHARGE_KEY = "credit.charge_refs"  # session.info: references the dunning run is posting (no credit check)
BUSY_KEY = "credit.terms_busy"  # session.info: set while this module posts (its own entries trigger no terms)


@lru_cache(maxsize=64)
def minor_units(currency: str) -> int:
    """Decimal places of the currency, as the core's amount check accepts them."""
    for d in (4, 3, 2, 1):
        try:
            check_amount(Decimal(1).scaleb(-d), currency)
            return d
        except ValueError:
            continue
    return 0


def round_money(value: Decimal, currency: str) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)


def discount_amount(invoice_amount: Decimal, percent: Decimal, currency: str) -> Decimal:
    """The discount on an invoice: ``percent`` of its amount, half-up to the currency's units."""
    return round_money(invoice_amount * percent / Decimal(100), currency)


def net_terms(uow: UnitOfWork, p: CreditProfile | None, customer_id: int) -> int | None:
    if p is not None and p.payment_terms_days is not None:
        return p.payment_terms_days
    return uow.session.scalar(select(Account.payment_terms_days).where(Account.customer_id == customer_id,
                                                                       Account.is_default))


def profile_terms(uow: UnitOfWork, p: CreditProfile, data: Any, s: CreditSettings) -> dict[str, Any]:
    """The values ``profile set`` adds to the discount and review fields, or one InvalidInput.

    The discount window must end before the net due date (else it is no early payment), and a
    last review without an explicit next one schedules it ``review_interval_days`` later."""
    out: dict[str, Any] = {}
    if data.clear_discount:
        out.update(discount_percent=None, discount_days=None)
    days = data.discount_days if data.discount_days is not None else (None if data.clear_discount else p.discount_days)
    terms = data.payment_terms_days if data.payment_terms_days is not None else net_terms(uow, p, p.customer_id)
    if days is not None and terms is not None and days >= terms:
        raise InvalidInput(f"invalid input: discount-days: the discount window ({days} days) must end before the net "
                           f"terms ({terms} days)", [("discount_days", "not before the net due date")])
    if data.last_review is not None and data.next_review is None:
        out["next_review"] = data.last_review + dt.timedelta(days=s.review_interval_days)
    if data.next_review is not None:
        last = data.last_review or p.last_review
        if last is not None and data.next_review <= last:
            raise InvalidInput(f"invalid input: next-review: {data.next_review} is not after the last review {last}",
                               [("next_review", "not after the last review")])
    return out


# -- early-payment discounts ---------------------------------------------------------------------------

def apply_discounts(uow: UnitOfWork, payment_ids: list[int]) -> list[Transaction]:
    """After payments were posted: the discount credit notes they earn (one per invoice, ever)."""
    if not payment_ids or uow.session.info.get(BUSY_KEY):
        return []
    pays = uow.session.execute(select(Transaction.id, Transaction.customer_id, Transaction.account_id,
                                      Transaction.occurred_at, Transaction.reference)
                               .where(Transaction.id.in_(payment_ids), Transaction.kind == TransactionKind.PAYMENT)).all()
    if not pays:
        return []
    profiles = {p.customer_id: p for p in uow.session.scalars(select(CreditProfile).where(
        CreditProfile.customer_id.in_(sorted({r.customer_id for r in pays})), CreditProfile.discount_percent.is_not(None)))}
    pays = [r for r in pays if r.customer_id in profiles]
    if not pays:
        return []
    customers = sorted({r.customer_id for r in pays})
    from crm_credit.services import lock_profiles  # concurrent payments of one invoice: the later one sees both

    lock_profiles(uow, customers)
    full = ledger.load_ledger(uow.session, None, customers)
    after = ledger.match(full)
    before = ledger.match(_without(full, {r.id for r in pays}))
    open_before = dict(zip(before.txn.tolist(), before.open.tolist()))
    last_pay: dict[int, Any] = {}
    for r in pays:  # the latest payment of each account decides whether it is within the window
        if r.account_id not in last_pay or r.occurred_at > last_pay[r.account_id].occurred_at:
            last_pay[r.account_id] = r
    done = set(uow.session.scalars(select(CreditDiscount.invoice_id).where(CreditDiscount.customer_id.in_(customers))))
    posted = []
    for k in np.flatnonzero(after.is_invoice & (after.open > 0)).tolist():
        txn, acc = int(after.txn[k]), int(after.account[k])
        pay = last_pay.get(acc)
        if pay is None or txn in done or open_before.get(txn, 0) <= int(after.open[k]):
            continue  # not touched by these payments, or already discounted
        p = profiles[pay.customer_id]
        issued = ledger.date_of(int(after.issued[k]))
        if not issued <= pay.occurred_at.date() <= issued + dt.timedelta(days=p.discount_days or 0):
            continue
        currency = str(after.currency[k])
        allowed = discount_amount(ledger.money(int(after.amount[k])), p.discount_percent or Decimal(0), currency)
        left = ledger.money(int(after.open[k]))
        if left <= allowed and (e := _post_discount(uow, txn, str(after.reference[k]), acc, pay, p, left, currency)):
            posted.append(e)
    return posted


def _without(L: ledger.Ledger, txn_ids: set[int]) -> ledger.Ledger:
    keep = ~np.isin(L.txn, np.fromiter(txn_ids, dtype=np.int64, count=len(txn_ids)))
    return L.subset(keep)


def _post_discount(uow: UnitOfWork, invoice_id: int, invoice_ref: str, account_id: int, pay: Any, p: CreditProfile,
                   amount: Decimal, currency: str) -> Transaction | None:
    terms = f"{p.discount_percent}% within {p.discount_days} days"
    entry, created = _post(uow, pay.customer_id, account_id, TransactionCreate(
        kind=TransactionKind.CREDIT_NOTE, amount=amount, reference=f"DISC-{invoice_id}", occurred_at=pay.occurred_at,
        description=f"early-payment discount {terms} on invoice {invoice_ref} (payment {pay.reference})"[:500],
        source="credit", applies_to=invoice_ref))
    if not created:
        return None
    uow.session.add(CreditDiscount(transaction_id=entry.id, invoice_id=invoice_id, payment_id=pay.id,
                                   customer_id=pay.customer_id, percent=p.discount_percent, amount=amount,
                                   currency=currency, at=utcnow()))
    uow.session.flush()
    uow.audit.record("early-payment-discount", "transaction", invoice_id, after={
        "invoice": invoice_ref, "payment": pay.reference, "credit_note": entry.reference, "terms": terms,
        "amount": str(amount), "currency": currency})
    return entry


def _post(uow: UnitOfWork, customer_id: int, account_id: int, data: TransactionCreate) -> tuple[Transaction, bool]:
    """Post through the core (audited, guarded, hooks run) without re-entering the terms;
    (entry, created): the same reference again is the core's no-op."""
    info = uow.session.info
    busy = info.get(BUSY_KEY)
    info[BUSY_KEY] = True
    try:
        return uow.accounts.post(customer_id, data, account_id=account_id)
    finally:
        info[BUSY_KEY] = busy


# -- dunning charges ----------------------------------------------------------------------------------

def is_charge(uow: UnitOfWork, entry: TransactionCreate) -> bool:
    """An entry the dunning run itself is posting (not a user's adjustment: the set lives in this
    session only, no face can fill it)."""
    return entry.source == "credit" and entry.reference in uow.session.info.get(CHARGE_KEY, ())


def post_charges(uow: UnitOfWork, rows: list[tuple[int, int, int, Decimal, Decimal]]) -> list[CreditCharge]:
    """Post (invoice id, customer id, level, fee, interest) as adjustments on the invoice's account."""
    if not rows or not settings(uow).post_charges:
        return []
    invoices = {t.id: t for t in uow.session.scalars(select(Transaction).where(Transaction.id.in_([r[0] for r in rows])))}
    refs: set[str] = uow.session.info.setdefault(CHARGE_KEY, set())
    out = []
    for inv_id, cid, level, fee, interest in rows:
        inv = invoices[inv_id]
        for kind, amount in (("fee", fee), ("interest", round_money(interest, inv.currency))):
            if amount <= 0:
                continue
            ref = f"{'FEE' if kind == 'fee' else 'INT'}-{inv_id}-L{level}"
            refs.add(ref)
            entry, _ = _post(uow, cid, inv.account_id, TransactionCreate(
                kind=TransactionKind.CHARGE, amount=amount, reference=ref, source="credit", applies_to=inv.reference,
                description=f"dunning {kind}, level {level}, on invoice {inv.reference}"[:500]))
            if uow.session.get(CreditCharge, entry.id) is None:  # a re-run of the same level posts nothing new
                charge = CreditCharge(transaction_id=entry.id, invoice_id=inv_id, customer_id=cid, kind=kind, level=level,
                                      amount=amount, currency=inv.currency)
                uow.session.add(charge)
                out.append(charge)
    uow.session.flush()
    return out


def clear_charges(uow: UnitOfWork, customer_ids: list[int]) -> list[Transaction]:
    """With ``clear_charges_with_invoice``: a credit note for what is open of each charge whose
    invoice is settled (paid, credited or written off)."""
    if not customer_ids or uow.session.info.get(BUSY_KEY) or not settings(uow).clear_charges_with_invoice:
        return []
    charges = list(uow.session.scalars(select(CreditCharge).where(
        CreditCharge.customer_id.in_(sorted(set(customer_ids))), CreditCharge.cleared_by_id.is_(None))))
    if not charges:
        return []
    items = ledger.open_items(uow.session, None, sorted({c.customer_id for c in charges}))
    open_of = dict(zip(items.txn.tolist(), items.open.tolist()))
    refs = dict(zip(items.txn.tolist(), items.reference.tolist()))
    accounts = dict(zip(items.txn.tolist(), items.account.tolist()))
    out = []
    for ch in charges:
        left = open_of.get(ch.transaction_id, 0)
        if open_of.get(ch.invoice_id, 0) > 0 or left <= 0:
            continue
        entry, _ = _post(uow, ch.customer_id, int(accounts[ch.transaction_id]), TransactionCreate(
            kind=TransactionKind.CREDIT_NOTE, amount=ledger.money(left), reference=f"CLR-{ch.transaction_id}",
            description=f"{refs[ch.transaction_id]} cleared with invoice {refs.get(ch.invoice_id, ch.invoice_id)}",
            source="credit", applies_to=str(refs[ch.transaction_id])))
        ch.cleared_by_id = entry.id
        out.append(entry)
    uow.session.flush()
    return out
