"""The rule scorecard: factors from the CRM's own data, for every customer at once.

Three queries per range of customers (customers, the ledger, complaint counts) and NumPy: never
a query per customer. ``--all`` streams the customers by id ranges of :data:`BLOCK`
(:func:`score_all`), so memory stays bounded by a range, not by the whole ledger. Each customer is scored in one currency (its credit profile's, else its default
account's), so amounts of different currencies are never added. Each factor's value is binned into
points (``[credit] factors``); the total maps to a grade and a suggested limit (``[credit] grades``).
The reason codes are the factor names: ``lowered`` those below their best points (worst first),
``raised`` those at their best.
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from crm_credit import ledger
from crm_credit.ledger import day_of, load_ledger, match, until_param
from crm_credit.models import CreditScore
from crm_credit.settings import FACTORS, CreditSettings, FactorBins

DESCRIPTIONS = {
    "avg_days_to_pay": "average days from invoice to payment (paid invoices, lookback window)",
    "days_beyond_terms": "average days paid after the due date",
    "overdue_share": "share of the open receivable that is past due",
    "relationship_years": "years since the first invoice",
    "volume_12m": "amount invoiced in the lookback window",
    "volume_trend": "invoiced in the last half of the window vs the first half, minus 1",
    "writeoff_share": "written off / invoiced, all history",
    "complaints_12m": "complaints logged in the lookback window",
}
Floats = NDArray[np.float64]
CHUNK = 5000
BLOCK = 100_000  # customers per range of score_all: ~40 MB of ledger arrays at 4 entries each


@dataclass
class Scores:
    ids: NDArray[np.int64]
    currency: NDArray[np.object_]
    features: dict[str, Floats]
    points: dict[str, NDArray[np.int64]]
    score: NDArray[np.int64]
    grades: list[str]
    suggested_cents: NDArray[np.int64]

    def reasons(self, i: int, factors: dict[str, FactorBins]) -> dict[str, list[str]]:
        lost = [(factors[f].max_points - int(self.points[f][i]), f) for f in self.points]
        return {"lowered": [f for loss, f in sorted(lost, key=lambda x: -x[0]) if loss > 0],
                "raised": [f for loss, f in lost if loss == 0]}


def reason_texts(scores: Scores, factors: dict[str, FactorBins]) -> list[str]:
    """The reason codes of every customer as JSON text, as :meth:`Scores.reasons` gives them. Rows
    share few distinct patterns, so each pattern is built and serialised once."""
    names = list(scores.points)
    k = len(names)
    loss = np.stack([factors[f].max_points - scores.points[f] for f in names], axis=1)
    order = np.argsort(-loss, axis=1, kind="stable")
    key = np.concatenate([order, loss > 0], axis=1).astype(np.int8)
    patterns, inverse = np.unique(key, axis=0, return_inverse=True)
    texts = []
    for row in patterns:
        lowered = [names[j] for j in row[:k] if row[k + j]]
        raised = [names[j] for j in range(k) if not row[k + j]]
        texts.append(json.dumps({"lowered": lowered, "raised": raised}))
    return [texts[i] for i in inverse.reshape(-1).tolist()]


def _id_filter(column: str, customer_ids: list[int] | None, id_range: tuple[int, int] | None) -> str:
    if id_range is not None:
        return f" AND {column} BETWEEN {int(id_range[0])} AND {int(id_range[1])}"
    if customer_ids is not None:
        return f" AND {column} IN ({','.join(str(int(i)) for i in customer_ids) or 'NULL'})"
    return ""


def customers_to_score(session: Session, customer_ids: list[int] | None, default_currency: str,
                       id_range: tuple[int, int] | None = None) -> tuple[NDArray[np.int64], NDArray[np.object_]]:
    """Active customers and the currency each is scored in (profile's, default account's, default)."""
    sql = """SELECT c.id, COALESCE(p.currency, a.currency, :dflt) FROM customers c
             LEFT JOIN credit_profiles p ON p.customer_id = c.id
             LEFT JOIN accounts a ON a.customer_id = c.id AND a.is_default = :yes
             WHERE c.archived = :no{extra} ORDER BY c.id"""
    params = {"dflt": default_currency, "yes": True, "no": False}
    stmt = text(sql.format(extra=_id_filter("c.id", customer_ids, id_range)))
    # plain driver tuples: SQLAlchemy's Row objects cost more than the query
    rows = [r for chunk in ledger._raw_chunks(session, stmt, params) for r in chunk]
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
    grid = np.array(rows, dtype=object)
    return grid[:, 0].astype(np.int64), grid[:, 1].copy()


def complaint_counts(session: Session, since: dt.date, as_of: dt.date, customer_ids: list[int] | None,
                     id_range: tuple[int, int] | None = None, uow: Any = None, ids: Any = None) -> dict[int, int]:
    """Complaints per customer in ``since <= day <= as_of``. With the service plugin enabled
    (``uow`` given): its published ``service_complaints`` hook (complaint tickets opened in the
    window) for ``ids``; without it (the hook is not there or answers nothing): the complaint
    interactions of the same window."""
    if uow is not None and ids is not None and len(ids):
        answer = uow.hooks.call("service_complaints", uow=uow, customer_ids=[int(i) for i in ids],
                                since=since, until=as_of)
        if isinstance(answer, dict):  # firstresult: the service plugin's answer ([] when it is not loaded)
            return {int(c): int(n) for c, n in answer.items() if n}
    sql = """SELECT customer_id, COUNT(*) FROM interactions WHERE kind = 'complaint'
             AND occurred_at >= :since AND occurred_at < :until{extra} GROUP BY customer_id"""
    extra = _id_filter("customer_id", customer_ids, id_range)
    rows = session.execute(text(sql.format(extra=extra)), {"since": until_param(session, since - dt.timedelta(days=1)),
                                                          "until": until_param(session, as_of)}).all()
    return {int(c): int(n) for c, n in rows}


def load_range(session: Session, as_of: dt.date, id_range: tuple[int, int]) -> ledger.Ledger:
    """The ledger of the customers whose id is in ``id_range`` (inclusive): the ledger module's
    query with a range condition, streamed like the whole-ledger load."""
    sql = ledger.ledger_sql(session, "t.occurred_at < :until", " AND a.customer_id BETWEEN :lo AND :hi")
    params = {"until": until_param(session, as_of), "lo": int(id_range[0]), "hi": int(id_range[1])}
    shared: dict[Any, Any] = {}
    out = ledger.concat([ledger.ledger_from_rows(chunk, shared) for chunk in ledger._raw_chunks(session, text(sql), params)])
    out.allocs = ledger.load_allocs(session, "t.occurred_at < :until", " AND a.customer_id BETWEEN :lo AND :hi", params)
    return out


def compute_features(session: Session, s: CreditSettings, as_of: dt.date, customer_ids: list[int] | None = None,
                     id_range: tuple[int, int] | None = None, uow: Any = None
                     ) -> tuple[NDArray[np.int64], NDArray[np.object_], dict[str, Floats]]:
    """The factors of the active customers: all, ``customer_ids``, or those with an id in ``id_range``
    (``uow``: ask the other plugins' published hooks, see :func:`complaint_counts`)."""
    ids, cur = customers_to_score(session, customer_ids, s.default_currency, id_range)
    n = len(ids)
    if id_range is not None:
        led = load_range(session, as_of, id_range)
    else:
        led = load_ledger(session, as_of, None if customer_ids is None else [int(i) for i in ids])
    # keep only each customer's scored currency
    pos = np.searchsorted(ids, led.customer)
    pos_ok = pos < n
    same = np.zeros(led.size, dtype=bool)
    same[pos_ok] = (ids[pos[pos_ok]] == led.customer[pos_ok]) & (cur[pos[pos_ok]] == led.currency[pos_ok])
    led = led.subset(same)
    items = match(led)
    today = day_of(as_of)
    window = s.lookback_days
    ci = np.searchsorted(ids, items.customer)  # every item's customer is in ids
    f: dict[str, Floats] = {}

    def per_customer(weights: Any, sel: NDArray[np.bool_]) -> Floats:
        return np.bincount(ci[sel], weights=np.asarray(weights, dtype=np.float64)[sel] if not np.isscalar(weights) else None,
                           minlength=n).astype(np.float64)

    inv = items.is_invoice
    paid = inv & (items.paid_day >= 0) & (items.paid_day > today - window)
    npaid = per_customer(1, paid)
    with np.errstate(invalid="ignore", divide="ignore"):
        f["avg_days_to_pay"] = np.where(npaid > 0, per_customer(np.maximum(items.paid_day - items.issued, 0), paid) / npaid, np.nan)
        f["days_beyond_terms"] = np.where(npaid > 0, per_customer(np.maximum(items.paid_day - items.due, 0), paid) / npaid, np.nan)
        open_total = per_customer(items.open, items.open > 0)
        overdue = per_customer(items.open, (items.open > 0) & (items.due < today))
        f["overdue_share"] = np.where(open_total > 0, overdue / np.where(open_total > 0, open_total, 1), 0.0)
    # relationship, volume, trend, write-offs straight from the ledger rows
    li = np.searchsorted(ids, led.customer)
    is_inv = led.kind == "invoice"
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, li[is_inv], led.day[is_inv])
    f["relationship_years"] = np.where(first < np.iinfo(np.int64).max, (today - first) / 365.25, np.nan)

    def led_sum(sel: NDArray[np.bool_]) -> Floats:
        return np.bincount(li[sel], weights=led.cents[sel].astype(np.float64), minlength=n) / ledger.UNIT

    f["volume_12m"] = led_sum(is_inv & (led.day > today - window))
    half = window // 2
    recent = led_sum(is_inv & (led.day > today - half))
    prior = led_sum(is_inv & (led.day > today - 2 * half) & (led.day <= today - half))
    with np.errstate(invalid="ignore", divide="ignore"):
        f["volume_trend"] = np.where(prior > 0, recent / np.where(prior > 0, prior, 1) - 1.0, np.nan)
        invoiced = led_sum(is_inv)
        f["writeoff_share"] = np.where(invoiced > 0, led_sum(led.kind == "write_off") / np.where(invoiced > 0, invoiced, 1), np.nan)
    counts = complaint_counts(session, as_of - dt.timedelta(days=window), as_of,
                              None if customer_ids is None or id_range is not None else [int(i) for i in ids], id_range,
                              uow=uow, ids=ids)
    comp = np.zeros(n)
    if counts:
        keys = np.fromiter(counts.keys(), dtype=np.int64)
        vals = np.fromiter(counts.values(), dtype=np.float64)
        p = np.searchsorted(ids, keys)
        ok = (p < n) & (ids[np.minimum(p, n - 1)] == keys) if n else np.zeros(len(keys), dtype=bool)
        comp[p[ok]] = vals[ok]
    f["complaints_12m"] = comp
    return ids, cur, f


NULL: Any = None  # an object array's NULL (np.where takes no bare None in its type stubs)


def points_of(values: Floats, bins: FactorBins) -> NDArray[np.int64]:
    uppers = np.array([np.inf if u is None else float(u) for u, _ in bins.bins])
    pts = np.array([p for _, p in bins.bins], dtype=np.int64)
    idx = np.searchsorted(uppers, np.nan_to_num(values, nan=0.0), side="left")
    return np.where(np.isnan(values), bins.missing, pts[np.minimum(idx, len(pts) - 1)])


def score(session: Session, s: CreditSettings, as_of: dt.date, customer_ids: list[int] | None = None,
          id_range: tuple[int, int] | None = None, uow: Any = None) -> Scores:
    ids, cur, feats = compute_features(session, s, as_of, customer_ids, id_range, uow)
    pts = {name: points_of(feats[name], bins) for name, bins in s.factors.items()}
    total = np.sum(np.vstack(list(pts.values())), axis=0) if len(ids) else np.zeros(0, dtype=np.int64)
    mins = np.array([g.min_score for g in s.grades])
    # grades are ordered best first with decreasing min_score: the first whose min_score <= total
    gi = np.searchsorted(-mins, -total, side="left")
    gi = np.minimum(gi, len(mins) - 1)
    grades = [s.grades[i].grade for i in gi.tolist()]
    months = np.array([float(g.limit_months) for g in s.grades])[gi]
    monthly = feats["volume_12m"] * (365.0 / s.lookback_days) / 12.0
    suggested = (np.floor(monthly * months / 100.0) * 100.0 * ledger.UNIT).astype(np.int64)  # whole hundreds
    return Scores(ids, cur, feats, pts, total.astype(np.int64), grades, suggested)


def customer_ranges(session: Session, block: int = BLOCK) -> list[tuple[int, int]]:
    """Id ranges of at most ``block`` active customers each, covering every active customer."""
    ids = np.fromiter((r[0] for r in session.execute(text("SELECT id FROM customers WHERE archived = :no ORDER BY id"),
                                                     {"no": False})), dtype=np.int64)
    return [(int(ids[i]), int(ids[min(i + block, len(ids)) - 1])) for i in range(0, len(ids), block)]


def score_all(session: Session, s: CreditSettings, as_of: dt.date, block: int | None = None,
              on_range: Callable[[dict[int, tuple[str, int]], Scores], Any] | None = None,
              uow: Any = None) -> tuple[int, dict[str, int]]:
    """``--all``: replace every score, one range of customers at a time (a customer's factors
    depend on its own entries only, so the result is the one :func:`score` gives for everyone).
    ``on_range`` gets each range's previous (grade, score) per customer and the new scores (the
    downgrade alerts). Returns the customers scored and the count per grade."""
    t = CreditScore.__table__
    ranges = customer_ranges(session, block or BLOCK)
    # each range replaces the rows of ids above the previous range's end up to its own end, so
    # rows of customers archived since (between or after the ranges) go too
    session.execute(delete(t).where(t.c.customer_id > (ranges[-1][1] if ranges else -1)))
    n, grades, prev = 0, dict.fromkeys((g.grade for g in s.grades), 0), -1
    for rng in ranges:
        res = score(session, s, as_of, id_range=rng, uow=uow)
        where = (t.c.customer_id > prev) & (t.c.customer_id <= rng[1])
        prev = rng[1]
        if on_range is not None:
            old = {int(c): (g, int(sc)) for c, g, sc in session.execute(select(t.c.customer_id, t.c.grade, t.c.score).where(where))}
            on_range(old, res)
        session.execute(delete(t).where(where))
        n += _insert(session, s, res)
        for g, c in zip(*np.unique(np.asarray(res.grades, dtype=object), return_counts=True)):
            grades[str(g)] += int(c)
    return n, {g: c for g, c in grades.items() if c}


def store(session: Session, s: CreditSettings, scores: Scores, *, replace_all: bool) -> int:
    """Write the results: the whole table replaced (``--all``) or the scored customers' rows."""
    t = CreditScore.__table__
    if replace_all:
        session.execute(delete(t))
    else:
        ids = scores.ids.tolist()
        for i in range(0, len(ids), CHUNK):
            session.execute(delete(t).where(t.c.customer_id.in_(ids[i:i + CHUNK])))
    return _insert(session, s, scores)


def _insert(session: Session, s: CreditSettings, scores: Scores) -> int:
    n = len(scores.ids)
    if n == 0:
        return 0
    now = dt.datetime.now(dt.UTC)
    reasons = reason_texts(scores, s.factors)
    feats = [np.where(np.isnan(scores.features[k]), NULL, np.round(scores.features[k], 4)).tolist()
             if k in scores.features else [None] * n for k in FACTORS]
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    # the driver directly (COPY on PostgreSQL): SQLAlchemy's per-row type processing of a million
    # rows (JSON, Money, UTC times) would cost more than computing the scores
    stamp: Any = now.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else now
    limits = [float(ledger.money(v)) if sqlite else ledger.money(v) for v in scores.suggested_cents.tolist()]
    cols = ["customer_id", "score", "grade", "currency", "suggested_limit", "reasons", *FACTORS, "scored_at"]
    rows = zip(scores.ids.tolist(), scores.score.tolist(), scores.grades, scores.currency.tolist(), limits, reasons,
               *feats, [stamp] * n)
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None  # a live connection (the session's own)
    cur = dbapi.cursor()
    try:
        if sqlite:
            sql = f"INSERT INTO credit_scores ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            while batch := list(itertools.islice(rows, CHUNK)):
                cur.executemany(sql, batch)
        else:
            with cur.copy(f"COPY credit_scores ({', '.join(cols)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    finally:
        cur.close()
    return n
