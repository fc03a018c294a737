"""Open items from the core ledger, for every customer at once: who still owes what, since when.

The core keeps balances, not open items, so they are rebuilt here from ``transactions`` with one
query and NumPy (never a query per customer):

- payments, credit notes, write-offs and negative adjustments are *credits*;
- invoices, charges (dunning fees and interest) and positive adjustments are *debit items*;
- a credit that names an entry of its account (the core's ``applies_to``: an invoice or a
  charge) settles that entry first; what it pays beyond that entry's amount joins the other
  credits. A credit settling several entries (the core's allocations: a payment of several
  invoices, an amount each) settles each by its allocated amount, the rest joining the others. The old convention, ``invoice:REF`` in the description, is no longer read: the core's
  migration 0008 turned it into ``applies_to`` for the rows that had it;
- the other credits settle the account's debit items oldest first (FIFO by due date); an item's
  paid day is the day the running credits of its account first covered it.

All amounts are exact integers of 1/10000 in the arrays, converted back to ``Decimal`` at the edges.
Currencies are never mixed: every total is per currency.

Why by hand: open-item matching over a whole ledger is a grouped cumulative-sum problem that no
maintained library offers (accounting packages match one account at a time, in Python loops).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import bindparam
from sqlalchemy.orm import Session

from crmcore.sdk import date_of as sdk_date_of
from crmcore.sdk import day_of, day_sql

BUCKETS = ("current", "1-30", "31-60", "61-90", "over_90")
IntArray = NDArray[np.int64]
DEBIT_SQL = "t.kind IN ('invoice', 'charge') OR (t.kind = 'adjustment' AND t.amount > 0)"


def date_of(day: int | np.integer[Any]) -> dt.date:
    """The date of a day number (the SDK's, taking NumPy integers too)."""
    return sdk_date_of(int(day))


UNIT = 10_000  # amounts are kept in 1/10000 (the core stores up to four decimals: KWD has 3)


def cents(value: Decimal) -> int:
    """An amount as an exact integer of 1/10000 units (the name stays short: "cents" of the arrays)."""
    return int((value * UNIT).to_integral_value())


def money(units: int | np.integer[Any]) -> Decimal:
    """Back to a Decimal: two places, or four when the amount needs them."""
    d = Decimal(int(units)).scaleb(-4)
    two = d.quantize(Decimal("0.01"))
    return two if two == d else d.quantize(Decimal("0.0001"))




# -- loading ---------------------------------------------------------------------------------------

LEDGER_SQL = """
SELECT a.customer_id, t.account_id, t.id, t.kind, CAST(ROUND(t.amount * 10000) AS BIGINT),
       {day_occ}, COALESCE({day_due}, -1), CASE WHEN {debit} THEN t.reference END,
       CASE WHEN NOT ({debit}) THEN COALESCE(t.applies_to_id, -1) ELSE -1 END,
       a.currency
FROM transactions t JOIN accounts a ON a.id = t.account_id
WHERE {until} {extra}
"""
FETCH = 200_000


def ledger_sql(session: Session, until: str, extra: str = "{extra}") -> str:
    """``LEDGER_SQL`` for this session's engine (day numbers by the SDK's ``day_sql``)."""
    dialect = session.get_bind().dialect.name
    return LEDGER_SQL.format(day_occ=day_sql(dialect, "t.occurred_at"), day_due=day_sql(dialect, "t.due_date", is_date=True),
                             debit=DEBIT_SQL, until=until, extra=extra)


def until_param(session: Session, as_of: dt.date) -> Any:
    until = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    if session.get_bind().dialect.name == "sqlite":
        return until.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return until


@dataclass
class Allocs:
    """The core's allocations of the loaded credits: entry id, target id, amount (1/10000)."""

    entry: IntArray
    target: IntArray
    cents: IntArray


def no_allocs() -> Allocs:
    e = np.empty(0, dtype=np.int64)
    return Allocs(e, e, e)


ALLOC_SQL = """
SELECT al.entry_id, al.target_id, CAST(ROUND(al.amount * 10000) AS BIGINT)
FROM transaction_allocations al JOIN transactions t ON t.id = al.entry_id JOIN accounts a ON a.id = t.account_id
WHERE {until} {extra}
"""


def load_allocs(session: Session, until: str, extra: str, params: dict[str, Any]) -> Allocs:
    """The allocations of the entries ``LEDGER_SQL`` with the same conditions loads (one query)."""
    from sqlalchemy import text

    conn = session.connection()
    if conn.execute(text("SELECT 1 FROM transaction_allocations LIMIT 1")).first() is None:
        return no_allocs()  # no allocation anywhere (most ledgers): no join over the range's entries
    stmt = text(ALLOC_SQL.format(until=until, extra=extra))
    if ":ids" in extra:
        stmt = stmt.bindparams(bindparam("ids", expanding=True))
    rows = conn.execute(stmt, params).all()
    if not rows:
        return no_allocs()
    grid = np.array(rows, dtype=np.int64).reshape(len(rows), 3)
    return Allocs(grid[:, 0].copy(), grid[:, 1].copy(), grid[:, 2].copy())


def concat_allocs(parts: list[Allocs]) -> Allocs:
    parts = [p for p in parts if len(p.entry)]
    if len(parts) <= 1:
        return parts[0] if parts else no_allocs()
    return Allocs(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("entry", "target", "cents")))


@dataclass
class Ledger:
    """Entries as arrays (one row per transaction), as loaded, and the allocations of its credits."""

    customer: IntArray
    account: IntArray
    txn: IntArray
    kind: NDArray[np.object_]
    cents: IntArray
    day: IntArray
    due: IntArray  # -1 when none
    reference: NDArray[np.object_]
    named: IntArray  # the id of the entry a credit settles (``applies_to_id``), -1 when none
    currency: NDArray[np.object_]
    allocs: Allocs = field(default_factory=no_allocs)  # may name entries not loaded: match() ignores those

    @property
    def size(self) -> int:
        return len(self.txn)

    def subset(self, keep: NDArray[np.bool_]) -> Ledger:
        """The rows ``keep`` selects, with the allocations (those of dropped rows no longer match)."""
        return replace(self, **{f: getattr(self, f)[keep] for f in LEDGER_FIELDS})


LEDGER_FIELDS = ("customer", "account", "txn", "kind", "cents", "day", "due", "reference", "named", "currency")


def load_ledger(session: Session, as_of: dt.date | None, customer_ids: list[int] | None = None,
                currency: str | None = None) -> Ledger:
    """Every entry up to ``as_of`` (None: every entry whatever its date, the current position)
    of the given customers, in the given currency; one query per 2000 customers (one in all for
    the whole ledger)."""
    sql = ledger_sql(session, "1 = 1" if as_of is None else "t.occurred_at < :until")
    params: dict[str, Any] = {} if as_of is None else {"until": until_param(session, as_of)}
    if currency is not None:
        params["currency"] = currency
    cur_sql = " AND a.currency = :currency" if currency is not None else ""
    from sqlalchemy import text

    parts: list[Ledger] = []
    shared: dict[Any, Any] = {}
    until = "1 = 1" if as_of is None else "t.occurred_at < :until"
    allocs: list[Allocs] = []
    if customer_ids is None:
        for chunk in _raw_chunks(session, text(sql.format(extra=cur_sql)), params):
            parts.append(ledger_from_rows(chunk, shared))
        allocs.append(load_allocs(session, until, cur_sql, params))
    else:
        ids = sorted(set(customer_ids))
        conn = session.connection()
        for i in range(0, len(ids), 2000):
            stmt = text(sql.format(extra=cur_sql + " AND a.customer_id IN :ids")).bindparams(bindparam("ids", expanding=True))
            parts.append(ledger_from_rows(conn.execute(stmt, {**params, "ids": ids[i:i + 2000]}).all(), shared))
            allocs.append(load_allocs(session, until, cur_sql + " AND a.customer_id IN :ids", {**params, "ids": ids[i:i + 2000]}))
    out = concat(parts)
    out.allocs = concat_allocs(allocs)
    return out


def _raw_chunks(session: Session, stmt: Any, params: dict[str, Any]) -> Any:
    """Rows of a whole-table query as plain tuples, ``FETCH`` at a time, on the session's own
    DBAPI connection (same transaction). SQLAlchemy's Row objects would cost more than the
    matching itself; on PostgreSQL a server-side cursor keeps libpq from buffering everything."""
    conn = session.connection()
    dialect = conn.dialect
    compiled = stmt.bindparams(**params).compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    args: Any = [compiled.params[k] for k in compiled.positiontup] if dialect.positional else compiled.params
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None  # a live connection (the session's own)
    cur = dbapi.cursor(name="credit_ledger") if dialect.name == "postgresql" else dbapi.cursor()
    try:
        cur.execute(str(compiled), args)
        while True:
            rows = cur.fetchmany(FETCH)
            if not rows:
                return
            yield rows
    finally:
        cur.close()


def concat(parts: list[Ledger]) -> Ledger:
    parts = [p for p in parts if p.size]
    if not parts:
        return ledger_from_rows([])
    if len(parts) == 1:
        return parts[0]
    return replace(parts[0], **{f: np.concatenate([getattr(p, f) for p in parts]) for f in LEDGER_FIELDS},
                   allocs=concat_allocs([p.allocs for p in parts]))


def ledger_from_rows(rows: Sequence[Any], shared: dict[Any, Any] | None = None) -> Ledger:
    """Arrays from result rows. Strings repeated across rows (kinds, currencies) are stored once."""
    n = len(rows)
    if n == 0:
        e = np.empty(0, dtype=np.int64)
        o = np.empty(0, dtype=object)
        return Ledger(e, e, e, o, e, e, e, o, o, o)
    shared = {} if shared is None else shared
    # one C-level pass into a 2-D object array, then a column slice each: half the time of
    # transposing the tuples in Python (zip(*rows)) and building every column from a tuple
    grid = np.array(rows if isinstance(rows[0], tuple) else [tuple(r) for r in rows], dtype=object)

    def ints(i: int) -> IntArray:
        col = grid[:, i]
        try:
            return col.astype(np.int64)  # the query never returns NULL here (COALESCE)
        except TypeError:  # rows built by hand (tests) may leave a due date or a link out
            return np.fromiter((-1 if v is None else v for v in col), dtype=np.int64, count=n)

    def objs(i: int) -> NDArray[np.object_]:
        out = np.empty(n, dtype=object)
        col = grid[:, i].tolist()
        out[:] = list(map(shared.setdefault, col, col))  # interned: one string object per kind / currency
        return out

    return Ledger(customer=ints(0), account=ints(1), txn=ints(2), kind=objs(3), cents=ints(4), day=ints(5),
                  due=ints(6), reference=grid[:, 7].copy(), named=ints(8), currency=objs(9))


# -- matching --------------------------------------------------------------------------------------

@dataclass
class OpenItems:
    """Debit items (invoices, positive adjustments) with what is still open and when they were paid."""

    customer: IntArray
    account: IntArray
    txn: IntArray
    reference: NDArray[np.object_]
    currency: NDArray[np.object_]
    is_invoice: NDArray[np.bool_]
    amount: IntArray  # cents
    issued: IntArray  # day number
    due: IntArray  # day number
    open: IntArray  # cents still open
    paid_day: IntArray  # day the item was fully settled, -1 while open
    unapplied_account: IntArray  # accounts with credits left over after every item ...
    unapplied_cents: IntArray  # ... and how much,
    unapplied_customer: IntArray  # ... whose
    unapplied_currency: NDArray[np.object_]  # ... in which currency
    remaining: IntArray  # what is left of each item after the credits that name it (before the pool)
    pool_account: IntArray  # per account: the credits that settle oldest first (unnamed ones and ...
    pool_cents: IntArray  # ... what named ones paid beyond their invoice), for a running position

    @property
    def size(self) -> int:
        return len(self.txn)


def _group_first_reaching(groups: IntArray, cum: IntArray, q_groups: IntArray, q_values: IntArray) -> IntArray:
    """For each query (group g, value v): the index of the first element of group g (rows sorted by
    group, ``cum`` ascending within a group) whose ``cum`` >= v; -1 if none."""
    out = np.full(len(q_groups), -1, dtype=np.int64)
    if len(groups) == 0 or len(q_groups) == 0:
        return out
    big = int(max(cum.max(initial=0), q_values.max(initial=0))) + 1
    ngroups = int(max(groups.max(), q_groups.max())) + 1
    per_chunk = max(1, (2 ** 62) // big)  # keys group*big + value must fit in int64
    for start in range(0, ngroups, per_chunk):
        stop = start + per_chunk
        sel = (groups >= start) & (groups < stop)
        qsel = np.flatnonzero((q_groups >= start) & (q_groups < stop))
        if not qsel.size:
            continue
        base = np.flatnonzero(sel)
        keys = (groups[sel] - start) * big + cum[sel]
        qkeys = (q_groups[qsel] - start) * big + q_values[qsel]
        pos = np.searchsorted(keys, qkeys, side="left")
        ok = pos < len(keys)
        hit = np.zeros(len(qsel), dtype=bool)
        hit[ok] = groups[base[pos[ok]]] == q_groups[qsel[ok]]
        out[qsel[hit]] = base[pos[hit]]
    return out


def _group_cumsum(groups: IntArray, values: IntArray) -> IntArray:
    """Cumulative sum restarting at each group (rows sorted by group)."""
    cs = np.cumsum(values)
    if len(values) == 0:
        return cs
    starts = np.r_[True, groups[1:] != groups[:-1]]
    offset = np.maximum.accumulate(np.where(starts, np.arange(len(values)), 0))
    return cs - (cs[offset] - values[offset])


def _find(ids_sorted: IntArray, order: IntArray, wanted: IntArray) -> tuple[IntArray, NDArray[np.bool_]]:
    """Positions (into the unsorted array) of ``wanted`` ids, and which were found."""
    if len(ids_sorted) == 0:
        return np.zeros(len(wanted), dtype=np.int64), np.zeros(len(wanted), dtype=bool)
    pos = np.minimum(np.searchsorted(ids_sorted, wanted), len(ids_sorted) - 1)
    return order[pos], ids_sorted[pos] == wanted


def _claims(L: Ledger, d: IntArray, c: IntArray, c_amount: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """(credit position in ``c``, debit position in ``d``, amount claimed) of every named settlement
    between entries of the same account: ``applies_to`` claims the whole credit, an allocation its amount."""
    empty = np.empty(0, dtype=np.int64)
    if not len(d) or not len(c):
        return empty, empty, empty
    d_order = np.argsort(L.txn[d], kind="stable")
    d_ids = L.txn[d][d_order]
    nc = np.flatnonzero(L.named[c] >= 0)
    target, found = _find(d_ids, d_order, L.named[c[nc]])
    ok = found & (L.account[d][target] == L.account[c[nc]])
    credits, targets, claims = [nc[ok]], [target[ok]], [c_amount[nc[ok]]]
    A = L.allocs
    if len(A.entry):
        c_order = np.argsort(L.txn[c], kind="stable")
        cred, c_found = _find(L.txn[c][c_order], c_order, A.entry)
        tgt, t_found = _find(d_ids, d_order, A.target)
        ok = c_found & t_found
        ok[ok] = L.account[d][tgt[ok]] == L.account[c][cred[ok]]
        credits.append(cred[ok])
        targets.append(tgt[ok])
        claims.append(A.cents[ok])
    return np.concatenate(credits), np.concatenate(targets), np.concatenate(claims)


def match(ledger: Ledger) -> OpenItems:
    """Settle each account's debit items with its credits (named first, then oldest first)."""
    L = ledger
    is_adj = L.kind == "adjustment"
    debit = (L.kind == "invoice") | (L.kind == "charge") | (is_adj & (L.cents > 0))
    credit = ~debit
    d = np.flatnonzero(debit)
    # FIFO order of the debit items: account, due day (issue day for adjustments), issue day, id
    due = np.where(L.due[d] >= 0, L.due[d], L.day[d])
    order = np.lexsort((L.txn[d], L.day[d], due, L.account[d]))
    d, due = d[order], due[order]
    amount = L.cents[d].copy()
    remaining = amount.copy()
    named_paid = np.full(len(d), -1, dtype=np.int64)

    c = np.flatnonzero(credit)
    c_amount = np.abs(L.cents[c])
    pool_amount = c_amount.copy()

    # 1. credits naming debit items of their own account settle them first: the whole credit
    # (up to the item's amount) for ``applies_to``, the allocated amount for each allocation
    nc, target, claim = _claims(L, d, c, c_amount)
    if len(nc):
        o = np.lexsort((L.txn[c[nc]], L.day[c[nc]], target))
        nc, target, claim = nc[o], target[o], claim[o]
        cum = _group_cumsum(target, claim)
        cap = amount[target]
        applied = np.minimum(cum, cap) - np.minimum(cum - claim, cap)
        np.subtract.at(pool_amount, nc, applied)
        np.subtract.at(remaining, target, applied)
        reached = (cum >= cap) & (cum - claim < cap)
        named_paid[target[reached]] = L.day[c[nc[reached]]]

    # 2. the rest settles the remaining items of the account, oldest first
    all_rows = np.r_[d, c]
    accounts, first, acc_index = np.unique(L.account[all_rows], return_index=True, return_inverse=True)
    d_grp = acc_index[:len(d)]
    c_grp = acc_index[len(d):]
    po = np.lexsort((L.txn[c], L.day[c], c_grp))
    p_grp, p_amt, p_day = c_grp[po], pool_amount[po], L.day[c][po]
    keep = p_amt > 0
    p_grp, p_amt, p_day = p_grp[keep], p_amt[keep], p_day[keep]
    p_cum = _group_cumsum(p_grp, p_amt)
    pool_total = np.zeros(len(accounts), dtype=np.int64)
    np.add.at(pool_total, p_grp, p_amt)
    # d is sorted by account then FIFO order, and accounts are sorted, so d_grp is sorted
    r_cum = _group_cumsum(d_grp, remaining)
    open_ = np.clip(r_cum - pool_total[d_grp], 0, remaining)
    hit = _group_first_reaching(p_grp, p_cum, d_grp, r_cum)
    pool_paid = np.where(hit >= 0, p_day[np.maximum(hit, 0)], -1) if len(p_day) else np.full(len(d), -1, dtype=np.int64)
    paid_day = np.where(open_ > 0, -1, np.where(remaining > 0, np.maximum(pool_paid, named_paid), named_paid))
    debit_total = np.zeros(len(accounts), dtype=np.int64)
    np.add.at(debit_total, d_grp, remaining)
    left = pool_total - debit_total
    un = np.flatnonzero(left > 0)
    return OpenItems(
        customer=L.customer[d], account=L.account[d], txn=L.txn[d], reference=L.reference[d], currency=L.currency[d],
        is_invoice=L.kind[d] == "invoice", amount=amount, issued=L.day[d], due=due, open=open_, paid_day=paid_day,
        unapplied_account=accounts[un], unapplied_cents=left[un],
        unapplied_customer=L.customer[all_rows[first[un]]], unapplied_currency=L.currency[all_rows[first[un]]],
        remaining=remaining, pool_account=accounts, pool_cents=pool_total,
    )


def open_items(session: Session, as_of: dt.date | None, customer_ids: list[int] | None = None,
               currency: str | None = None) -> OpenItems:
    return match(load_ledger(session, as_of, customer_ids, currency))


# -- reports ---------------------------------------------------------------------------------------

def bucket_of(days_past_due: IntArray) -> IntArray:
    """0 current, 1: 1-30, 2: 31-60, 3: 61-90, 4: over 90 days past due."""
    return np.searchsorted(np.array([0, 30, 60, 90]), days_past_due, side="left").astype(np.int64)


@dataclass
class AgeingRow:
    customer_id: int | None  # None = total
    currency: str
    buckets: dict[str, Decimal]
    open: Decimal
    unapplied: Decimal


def ageing(items: OpenItems, as_of: dt.date) -> tuple[list[AgeingRow], list[AgeingRow]]:
    """Per customer and currency, and totals per currency. Buckets sum to ``open`` exactly
    (integer cents); credits left over are shown apart as ``unapplied``."""
    o = items.open > 0
    b = bucket_of(day_of(as_of) - items.due[o])
    cust, cur, amt = items.customer[o], items.currency[o], items.open[o]
    per: dict[tuple[int, str], list[int]] = {}
    for c, k, bk, a in zip(cust.tolist(), cur.tolist(), b.tolist(), amt.tolist()):
        per.setdefault((c, k), [0] * 5)[bk] += a
    unapplied: dict[tuple[int, str], int] = {}
    for c, k, left in zip(items.unapplied_customer.tolist(), items.unapplied_currency.tolist(), items.unapplied_cents.tolist()):
        unapplied[(c, k)] = unapplied.get((c, k), 0) + left
        per.setdefault((c, k), [0] * 5)
    rows = []
    totals: dict[str, list[int]] = {}
    tot_un: dict[str, int] = {}
    for (c, k), v in sorted(per.items()):
        rows.append(AgeingRow(c, k, {n: money(x) for n, x in zip(BUCKETS, v)}, money(sum(v)), money(unapplied.get((c, k), 0))))
        t = totals.setdefault(k, [0] * 5)
        for i in range(5):
            t[i] += v[i]
    for (_c, k), left in unapplied.items():
        tot_un[k] = tot_un.get(k, 0) + left
    total_rows = [AgeingRow(None, k, {n: money(x) for n, x in zip(BUCKETS, v)}, money(sum(v)), money(tot_un.get(k, 0)))
                  for k, v in sorted(totals.items())]
    return rows, total_rows


@dataclass
class DsoRow:
    customer_id: int | None  # None = total
    currency: str
    receivables: Decimal
    credit_sales: Decimal
    days: int
    dso: float | None  # receivables / credit sales x days; None without sales
    avg_days_to_pay: float | None  # invoices fully paid in the period
    paid_invoices: int


def dso(items: OpenItems, start: dt.date, end: dt.date) -> tuple[list[DsoRow], list[DsoRow]]:
    """DSO for the period per customer and currency, and totals per currency. ``items`` must be
    matched as of ``end`` (receivables at the end of the period)."""
    s, e = day_of(start), day_of(end)
    days = e - s + 1
    inv = items.is_invoice
    acc: dict[tuple[int, str], list[int]] = {}  # receivable, sales, sum days to pay, paid count

    def add(mask: NDArray[np.bool_], slot: int, values: IntArray) -> None:
        for c, k, v in zip(items.customer[mask].tolist(), items.currency[mask].tolist(), values[mask].tolist()):
            acc.setdefault((c, k), [0, 0, 0, 0])[slot] += v

    add(items.open > 0, 0, items.open)
    add(inv & (items.issued >= s) & (items.issued <= e), 1, items.amount)
    paid = inv & (items.paid_day >= s) & (items.paid_day <= e)
    add(paid, 2, np.maximum(items.paid_day - items.issued, 0))
    add(paid, 3, np.ones(items.size, dtype=np.int64))

    def row(c: int | None, k: str, v: list[int]) -> DsoRow:
        return DsoRow(c, k, money(v[0]), money(v[1]), days, round(v[0] / v[1] * days, 1) if v[1] else None,
                      round(v[2] / v[3], 1) if v[3] else None, v[3])

    rows: list[DsoRow] = []
    totals: dict[str, list[int]] = {}
    for (c, k), v in sorted(acc.items()):
        rows.append(row(c, k, v))
        t = totals.setdefault(k, [0, 0, 0, 0])
        for i in range(4):
            t[i] += v[i]
    return rows, [row(None, k, v) for k, v in sorted(totals.items())]
