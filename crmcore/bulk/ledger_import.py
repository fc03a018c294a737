"""Transactions: entries posted to each customer's default account, with the posting guards
of the core and the plugins run for the batch; ledger entries are never edited."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import bindparam, select, update

from crmcore.bulk.batch import BatchImporter, ref_problem
from crmcore.bulk.fastinsert import bulk_insert, select_in
from crmcore.bulk.readers import SourceRow
from crmcore.bulk.specs import SPECS
from crmcore.db.types import BALANCE_LIMIT, Money, utcnow
from crmcore.enums import SETTLING_KINDS, AccountStatus, CustomerKind, TransactionKind
from crmcore.errors import PluginError, Veto
from crmcore.models import Account, Allocation, Transaction
from crmcore.schemas import TransactionCreate
from crmcore.schemas.account import DEFAULT_CURRENCY, check_amount
from crmcore.services.accounts import (
    PostingHorizon,
    allocatable,
    allowed_targets,
    balances_over_limit,
    effect,
    keep_used_accounts,
    posting_audit,
    settle_problem,
    split_allocations,
)
from crmcore.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class AccountRef:
    """What the bulk guard hook sees of an account (an ORM object per account would cost more
    than the rest of the batch)."""

    id: int
    customer_id: int
    currency: str
    status: AccountStatus
    payment_terms_days: int


class TransactionImporter(BatchImporter):
    """Entries go to the customer's default account (opened on first posting). An entry whose
    reference is already on the account is unchanged if it is the same, rejected if it differs:
    ledger entries are never edited, a correction is a new entry."""

    spec = SPECS["transactions"]
    serial_key = 0x4C454447  # "LEDG"

    def process(self, uow: UnitOfWork, batch: list[SourceRow]) -> None:
        self.opened: dict[int, tuple[int, str]] = {}  # accounts opened for this batch (kept only if used)
        self._process(uow, batch)
        keep_used_accounts(uow, self.opened)

    def validated(self, uow: UnitOfWork, batch: list[SourceRow]) -> list[tuple[SourceRow, str, TransactionCreate]]:
        """(row, customer_ref, entry) of the rows that pass validation and the posting horizon."""
        rows: list[tuple[SourceRow, str, TransactionCreate]] = []
        horizon = PostingHorizon.of(uow)
        for row in batch:
            if row.error:
                self.reject(row.line, "row", row.error)
                continue
            data = {k: v for k, v in row.data.items() if v is not None}
            ref = str(data.pop("customer_ref", "") or "").strip()
            data.setdefault("source", "import")
            problem = ref_problem(ref)
            if problem:
                reference = data.get("reference")
                self.reject(row.line, "customer_ref", problem, reference if isinstance(reference, str) else None)
                continue
            entry = self.validate(TransactionCreate, row, data, data.get("reference"))
            if entry is not None and (bad := horizon.problem(entry.occurred_at, entry.due_date)):
                self.reject(row.line, bad[0], bad[1], entry.reference)
            elif entry is not None:
                rows.append((row, ref, entry))
        return rows

    def candidates(self, uow: UnitOfWork, rows: list[tuple[SourceRow, str, TransactionCreate]]
                   ) -> list[tuple[SourceRow, AccountRef, TransactionCreate]]:
        """The entries to post: known customer, right currency and decimals, an account that takes
        them, a reference not yet posted (the same entry again is counted unchanged)."""
        customers = self.customers_by_ref(uow, [ref for _, ref, _ in rows])
        accounts = self.default_accounts(uow, customers, rows)
        # entries already posted (a reference is unique per customer, on whichever account)
        pairs = {(customers[ref][0], e.reference) for _, ref, e in rows if ref in accounts}
        named = {(customers[ref][0], r) for _, ref, e in rows if ref in accounts for r in names_of(e)}
        posted: dict[tuple[int, str], tuple[TransactionKind, Decimal | None]] = {}  # amounts are NOT NULL
        self.known: dict[tuple[int, str], tuple[int, int, TransactionKind]] = {}  # named entries: id, account, kind
        self.known_amount: dict[tuple[int, str], Decimal] = {}
        sql = "SELECT customer_id, reference, kind, amount, id, account_id FROM transactions WHERE reference IN ({})"
        money = cast(Money, Transaction.__table__.c.amount.type)  # the column is declared Money
        wanted = list({r for _, r in pairs} | {r for _, r in named})
        for c, r, k, amt, tid, acc in select_in(uow.session.connection(), sql, wanted):
            if (c, r) in pairs:
                posted[(c, r)] = (TransactionKind(k), money.process_result_value(amt, None))
            if (c, r) in named:
                self.known[(c, r)] = (tid, acc, TransactionKind(k))
                self.known_amount[(c, r)] = money.process_result_value(amt, None) or Decimal(0)
        candidates: list[tuple[SourceRow, AccountRef, TransactionCreate]] = []
        shown: dict[int, AccountRef] = {}  # one per account, for the guard hook
        for row, ref, e in rows:
            if ref not in customers:
                self.reject(row.line, "customer_ref", f"unknown customer {ref!r}", e.reference)
                continue
            if customers[ref][2]:
                self.reject(row.line, "customer_ref", f"customer {ref!r} is archived", e.reference)
                continue
            acc_id, currency, status, terms = accounts[ref]
            if e.currency and e.currency != currency:
                self.reject(row.line, "currency", f"wrong currency {e.currency}: the account of {ref!r} is kept in {currency}",
                            e.reference)
                continue
            try:  # the account's currency decides the decimals (ISO 4217) when the row gives none
                check_amount(e.amount, currency)
            except ValueError as err:
                self.reject(row.line, "amount", str(err), e.reference)
                continue
            try:
                if e.cost is not None:
                    check_amount(e.cost, currency)
            except ValueError as err:
                self.reject(row.line, "cost", str(err), e.reference)
                continue
            prior = posted.get((customers[ref][0], e.reference))
            if prior is not None:
                if prior == (e.kind, e.amount):
                    self.out.unchanged += 1
                else:
                    self.reject(row.line, "reference", f"reference {e.reference!r} is already posted as {prior[0].value} "
                                f"{prior[1]}; a correction needs a new reference", e.reference)
                continue
            if status is AccountStatus.CLOSED:
                self.reject(row.line, "customer_ref", f"the account of {ref!r} is closed", e.reference)
                continue
            if status is AccountStatus.ON_HOLD and effect(e.kind, e.amount) > 0:
                self.reject(row.line, "customer_ref", f"the account of {ref!r} is on hold; entries that raise what "
                            "the customer owes are refused", e.reference)
                continue
            posted[(customers[ref][0], e.reference)] = (e.kind, e.amount)  # a repeat later in the batch is unchanged
            account = shown.get(acc_id)
            if account is None:
                account = shown[acc_id] = AccountRef(acc_id, customers[ref][0], currency, AccountStatus(status), terms)
            candidates.append((row, account, e))
        lock_accounts(uow, sorted({a.id for _, a, e in candidates if e.allocations}))
        self.open_known = allocatable(uow.session, [(tid, self.known_amount[key]) for key, (tid, _, _) in self.known.items()])
        return self.settling(candidates)

    def settling(self, candidates: list[tuple[SourceRow, AccountRef, TransactionCreate]]
                 ) -> list[tuple[SourceRow, AccountRef, TransactionCreate]]:
        """The candidates whose ``applies_to`` names an entry the service would accept: already
        posted, or another candidate of this batch (in any order), on the same account. A row
        whose in-batch target is itself rejected is rejected too (until nothing changes)."""
        while True:
            batch = {(a.customer_id, e.reference): (a.id, e.kind) for _, a, e in candidates}
            kept: list[tuple[SourceRow, AccountRef, TransactionCreate]] = []
            for cand in candidates:
                row, a, e = cand
                problem = None
                for name in names_of(e):
                    found = self.known.get((a.customer_id, name))
                    target = (found[1], found[2]) if found else batch.get((a.customer_id, name))
                    problem = problem or settle_problem(a.customer_id, a.id, name, target, allowed_targets(e.kind))
                if problem:
                    self.reject(row.line, "applies_to", problem, e.reference)
                    continue
                kept.append(cand)
            kept = self.allocated(kept)
            if len(kept) == len(candidates):
                return kept
            candidates = kept

    def allocated(self, candidates: list[tuple[SourceRow, AccountRef, TransactionCreate]]
                  ) -> list[tuple[SourceRow, AccountRef, TransactionCreate]]:
        """The candidates whose allocations fit, in file order, as ``crm account post`` checks them:
        each invoice's open amount (less what earlier rows settle there) and the entry's amount.
        Sets ``self.plans``: {(customer id, reference): [(target reference, amount)]}."""
        amounts = {(a.customer_id, e.reference): e.amount for _, a, e in candidates}
        taken: defaultdict[tuple[int, str], Decimal] = defaultdict(Decimal)
        self.plans: dict[tuple[int, str], list[tuple[str, Decimal]]] = {}
        kept = []
        for cand in candidates:
            row, a, e = cand
            if e.applies_to is not None and e.kind in SETTLING_KINDS:
                taken[(a.customer_id, e.applies_to)] += e.amount
            if not e.allocations:
                kept.append(cand)
                continue
            wanted = []
            for al in e.allocations:
                key = (a.customer_id, al.reference)
                known = self.known.get(key)
                start = self.open_known[known[0]] if known else amounts.get(key, Decimal(0))
                wanted.append((al.reference, al.amount, max(start - taken[key], Decimal(0))))
            try:
                plan = split_allocations(e.kind.value, e.amount, wanted)
            except ValueError as err:
                self.reject(row.line, "applies_to", str(err), e.reference)
                continue
            for ref, amt in plan:
                taken[(a.customer_id, ref)] += amt
            self.plans[(a.customer_id, e.reference)] = plan
            kept.append(cand)
        return kept

    def _process(self, uow: UnitOfWork, batch: list[SourceRow]) -> None:
        rows = self.validated(uow, batch)
        candidates = self.candidates(uow, rows) if rows else []
        if not candidates:
            return
        pairs = [(a, e) for _, a, e in candidates]
        refused = uow.hooks.before_transactions_batch(uow, pairs)
        for i, reason in per_entry_guards(uow, pairs, refused).items():
            refused.setdefault(i, reason)
        now = utcnow()
        inserts: list[dict[str, Any]] = []
        deltas: defaultdict[int, Decimal] = defaultdict(Decimal)
        sources: list[tuple[int, str]] = []  # (line, reference) of each insert
        if refused:  # an entry naming a refused one is refused too
            kept = self.settling([c for i, c in enumerate(candidates) if i not in refused])
            for i, (row, _, e) in enumerate(candidates):
                if i in refused:
                    self.reject(row.line, "row", refused[i], e.reference)
            kept_ids = {id(c) for c in kept}
            refused = {i: "" for i, c in enumerate(candidates) if id(c) not in kept_ids}
        for i, (row, account, e) in enumerate(candidates):
            if i in refused:
                continue
            occurred = e.occurred_at or now
            due = e.due_date
            if e.kind is TransactionKind.INVOICE and due is None:
                try:
                    due = occurred.date() + dt.timedelta(days=account.payment_terms_days)
                except OverflowError:
                    self.reject(row.line, "occurred_at", f"the due date ({occurred.date()} + {account.payment_terms_days} "
                                "days of payment terms) is after 9999-12-31", e.reference)
                    continue
            inserts.append({"account_id": account.id, "customer_id": account.customer_id, "kind": e.kind, "amount": e.amount, "currency": account.currency,
                            "occurred_at": occurred, "due_date": due, "reference": e.reference,
                            "description": e.description, "category": e.category, "source": e.source, "created_at": now,
                            "cost": e.cost, "applies_to_id": self.named_id(account.customer_id, e.applies_to)})
            sources.append((row.line, e.reference))
            deltas[account.id] += effect(e.kind, e.amount)
        over = balances_over_limit(uow.session, deltas)
        if over:  # an account's balance would leave the documented range: its rows of this batch are rejected
            for (line, reference), ins in zip(sources, inserts):
                if ins["account_id"] in over:
                    self.reject(line, "amount", f"account {ins['account_id']} would reach a balance of "
                                f"{over[ins['account_id']]}, beyond the limit of ±{BALANCE_LIMIT:,}", reference)
            inserts = [ins for ins in inserts if ins["account_id"] not in over]
            for account_id in over:
                deltas.pop(account_id)
        ids = self.insert_and_fetch_ids(uow, Transaction.__table__, inserts, ("reference", "customer_id"))
        self.link_in_batch(uow, inserts, candidates, ids)
        self.insert_allocations(uow, inserts, ids)
        if deltas:
            t = Account.__table__
            uow.session.connection().execute(
                update(t).where(t.c.id == bindparam("_id")).values(balance=t.c.balance + bindparam("_delta", type_=t.c.balance.type)),
                [{"_id": a, "_delta": d} for a, d in sorted(deltas.items())])  # id order: no deadlock between importers
        if ids:
            self.audit_many(uow, [{"action": "import-post", "entity": "transaction", "entity_id": None,
                                   "after": posting_audit(uow, {"count": len(ids), "first_id": ids[0], "last_id": ids[-1],
                                                                "accounts": len(deltas)})}])
            uow.hooks.transactions_batch(uow, ids)
        self.out.inserted += len(ids)

    def named_id(self, customer_id: int, applies_to: str | None) -> int | None:
        """The id of an already posted entry named by ``applies_to`` (None: none, or one of this batch)."""
        found = self.known.get((customer_id, applies_to)) if applies_to else None
        return None if found is None else found[0]

    @staticmethod
    def link_in_batch(uow: UnitOfWork, inserts: list[dict[str, Any]],
                      candidates: list[tuple[SourceRow, AccountRef, TransactionCreate]], ids: list[int]) -> None:
        """Point the new entries that name an entry of this same batch at its new id (one statement)."""
        names = {(a.customer_id, e.reference): e.applies_to for _, a, e in candidates if e.applies_to}
        if not names:
            return
        new_ids = {(ins["customer_id"], ins["reference"]): i for ins, i in zip(inserts, ids)}
        links = [{"_id": i, "_to": new_ids[(ins["customer_id"], names[key])]}
                 for ins, i in zip(inserts, ids) if ins["applies_to_id"] is None
                 and (key := (ins["customer_id"], ins["reference"])) in names]
        if links:
            t = Transaction.__table__
            uow.session.connection().execute(update(t).where(t.c.id == bindparam("_id")).values(applies_to_id=bindparam("_to")),
                                              links)

    def insert_allocations(self, uow: UnitOfWork, inserts: list[dict[str, Any]], ids: list[int]) -> None:
        """The allocation rows of the inserted entries (targets already posted or of this batch)."""
        new_ids = {(ins["customer_id"], ins["reference"]): i for ins, i in zip(inserts, ids)}
        rows = []
        for key, entry_id in new_ids.items():
            for ref, amount in self.plans.get(key, ()):
                target = self.known.get((key[0], ref))
                rows.append({"entry_id": entry_id, "target_id": target[0] if target else new_ids[(key[0], ref)],
                             "amount": amount})
        if rows:
            bulk_insert(uow.session.connection(), Allocation.__table__, rows)

    def default_accounts(self, uow: UnitOfWork, customers: dict[str, tuple[int, CustomerKind, bool]],
                         rows: Sequence[tuple[SourceRow, str, TransactionCreate]]) -> dict[str, tuple[int, str, AccountStatus, int]]:
        """customer_ref -> (default account id, currency, status, terms); opens missing default accounts."""
        ids = {cid: ref for ref, (cid, _, _) in customers.items()}

        def load() -> dict[str, tuple[int, str, AccountStatus, int]]:
            out = {}
            idl = list(ids)
            for i in range(0, len(idl), 5000):
                q = select(Account.customer_id, Account.id, Account.currency, Account.status, Account.payment_terms_days).where(
                    Account.customer_id.in_(idl[i:i + 5000]), Account.is_default)
                out.update({ids[c]: (a, cur, st, terms) for c, a, cur, st, terms in uow.session.execute(q)})
            return out

        found = load()
        missing: dict[int, str] = {}
        for _, ref, e in rows:
            if ref in customers and ref not in found and not customers[ref][2]:
                missing.setdefault(customers[ref][0], e.currency or DEFAULT_CURRENCY)
        if missing:
            now = utcnow()
            bulk_insert(uow.session.connection(), Account.__table__, [
                {"customer_id": cid, "currency": cur, "payment_terms_days": 30, "status": AccountStatus.OPEN,
                 "balance": Decimal("0.00"), "is_default": True, "created_at": now} for cid, cur in sorted(missing.items())])
            found = load()
            self.opened.update({found[ids[cid]][0]: (cid, cur) for cid, cur in missing.items() if ids[cid] in found})
        return found


def names_of(e: TransactionCreate) -> list[str]:
    """The references an entry names: its ``applies_to``, or its allocations' invoices."""
    return [e.applies_to] if e.applies_to is not None else [a.reference for a in e.allocations]


def lock_accounts(uow: UnitOfWork, ids: list[int]) -> None:
    """Lock these accounts' rows (PostgreSQL, id order) before reading what is open on their
    invoices: a payment posted meanwhile by ``crm account post`` waits (SQLite: the write lock)."""
    for i in range(0, len(ids), 5000):
        uow.session.execute(select(Account.id).where(Account.id.in_(ids[i:i + 5000])).order_by(Account.id).with_for_update())


def per_entry_guards(uow: UnitOfWork, pairs: Sequence[tuple[AccountRef, TransactionCreate]],
                     refused: dict[int, str]) -> dict[int, str]:
    """Run ``crm_before_transaction_post`` for each entry, for the plugins that implement that
    per-entry guard but no batch guard: the bulk path must never skip a plugin's rule.

    They get the real :class:`Account` rows (loaded in one query), as in ``crm account post``.
    A ``Veto`` refuses that entry only; any other error fails the batch (as a hook error does).
    """
    pm = uow.hooks.pm
    batch_guards = {i.plugin_name for i in pm.hook.crm_before_transactions_batch.get_hookimpls()}
    impls = [i for i in reversed(pm.hook.crm_before_transaction_post.get_hookimpls())
             if i.plugin_name not in batch_guards and not (i.hookwrapper or i.wrapper)]
    if not impls:
        return {}
    ids = list({a.id for a, _ in pairs})
    accounts = {a.id: a for a in uow.session.scalars(select(Account).where(Account.id.in_(ids)))}
    out: dict[int, str] = {}
    for impl in impls:
        for index, (ref, entry) in enumerate(pairs):
            if index in refused or index in out:
                continue
            kwargs = {"uow": uow, "account": accounts[ref.id], "entry": entry}
            try:
                impl.function(**{a: kwargs[a] for a in impl.argnames})
            except Veto as e:
                out[index] = f"refused by plugin {impl.plugin_name!r}: {e.reason}"
            except Exception as e:
                error = PluginError(impl.plugin_name, "crm_before_transaction_post", e)
                if uow.failed is None:
                    uow.failed = error
                raise error from e
    return out
