"""The basic reads of the value analysis: days, raw DBAPI execution, periods, the window's
aggregates, the purchase-day series, cross-buying and satisfaction (split from :mod:`loaders`,
which re-exports every name here and keeps the one-pass statistics of a run).

Why the raw DBAPI cursor, and how days are counted: see :mod:`loaders`.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray
from sqlalchemy import Float, Integer, String, and_, bindparam, case, cast, func, select, type_coerce
from sqlalchemy.engine import Connection
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement, FunctionElement, Select

from crm_value_analysis.schemas import ValueSettings
from crmcore.models import Customer, Interaction, Transaction
from crmcore.sdk import day_number as sdk_day_number

EPOCH = dt.date(1970, 1, 1)
CHUNK_ROWS = 100_000
#: PostgreSQL ``work_mem`` for the analytics statements only (per worker, per hash table)
ANALYTICS_WORK_MEM = "128MB"

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def day_of(date: dt.date) -> int:
    """Day number of a date (days since 1970-01-01)."""
    return (date - EPOCH).days


def date_of(day: int | float) -> dt.date:
    return EPOCH + dt.timedelta(days=int(day))


def start_of(date: dt.date) -> dt.datetime:
    """Midnight UTC at the start of ``date``: ``occurred_at < start_of(as_of + 1 day)`` includes as_of."""
    return dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC)


# -- the day expression, per dialect ---------------------------------------------------------

day_number = sdk_day_number  # the SDK's (crmcore.db.dates), kept under this module's old name


class scan_all(FunctionElement[int]):
    """A grouping key that SQLite must not answer from an index: ``+column`` there, the column elsewhere.

    ``GROUP BY transactions.customer_id`` would let SQLite walk the (customer_id, reference)
    unique index to avoid a sort and then fetch every row at random: a sequential scan plus a
    sort is several times faster for whole-table analytics. PostgreSQL plans it well by itself.
    """

    type = Integer()
    inherit_cache = True


@compiles(scan_all, "sqlite")
def _scan_all_sqlite(element: scan_all, compiler: Any, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


@compiles(scan_all)
def _scan_all_other(element: scan_all, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


def _customer() -> ColumnElement[int]:
    """The customer of an entry, read from the entry itself.

    ``transactions.customer_id`` is kept equal to the account's customer by a composite foreign
    key, so no query here joins ``accounts``: on 2 million entries the join cost SQLite 2.2 s of a
    4 s GROUP BY (a primary-key look-up per row) and PostgreSQL a hash join.
    """
    return scan_all(Transaction.customer_id)


# -- raw execution ----------------------------------------------------------------------------

#: a SELECT of any columns (SQLAlchemy types selects by their column tuple)
AnySelect = Select[*tuple[Any, ...]]


def dbapi(conn: Connection) -> Any:
    """The driver's own connection (psycopg or sqlite3) under ``conn``: same transaction; typed as
    ``Any`` because what is called on it is the driver's API, not DBAPI's."""
    raw = conn.connection.dbapi_connection
    if raw is None:
        raise RuntimeError("the session's connection is closed")
    return raw


def _time_param(session: Session, name: str, value: dt.datetime) -> Any:
    """A datetime bound in the driver's form: SQLite stores naive UTC text, PostgreSQL timestamptz."""
    value = value.astimezone(dt.UTC)
    if session.get_bind().dialect.name == "sqlite":
        return bindparam(name, value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f"), type_=String)
    return bindparam(name, value)


class _Cursor:
    """A DBAPI cursor that puts the connection's SQLite ``temp_store`` back when it is closed."""

    def __init__(self, cursor: Any, restore: Any = None) -> None:
        self._cursor, self._restore = cursor, restore

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._cursor.fetchall()

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        return self._cursor.fetchmany(size)

    def close(self) -> None:
        self._cursor.close()
        if self._restore is not None:
            self._restore()


def _execute(session: Session, stmt: AnySelect, *, stream: bool = False) -> _Cursor:
    """Run ``stmt`` on the session's DBAPI connection (same transaction) and return the cursor.

    ``stream=True`` uses a server-side cursor on PostgreSQL, so a huge result is fetched in
    chunks instead of being buffered whole by libpq. On SQLite the sort behind a whole-table
    GROUP BY goes to a temporary file while the cursor is open: with ``temp_store=MEMORY``
    (the core's setting) it would hold every transaction row in RAM -- 1 GB at 10 million.
    """
    conn = session.connection()
    dialect = conn.dialect
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.params
    args: Any = [params[k] for k in compiled.positiontup or ()] if dialect.positional else params
    dbapi_conn = dbapi(conn)
    restore = None
    if dialect.name == "sqlite":
        before = dbapi_conn.execute("PRAGMA temp_store").fetchone()[0]
        if before == 2:  # MEMORY -> FILE for this statement
            dbapi_conn.execute("PRAGMA temp_store = FILE")
            def restore() -> None:
                dbapi_conn.execute("PRAGMA temp_store = MEMORY")
    if dialect.name == "postgresql":
        # a whole-table GROUP BY needs a hash table per customer and worker (~45 MB at 100k
        # customers); with the default 4 MB PostgreSQL spills it to disk in 21 batches (2.5x slower)
        previous_mem = dbapi_conn.execute("SHOW work_mem").fetchone()[0]
        dbapi_conn.execute("SELECT set_config('work_mem', %s, true)", (ANALYTICS_WORK_MEM,))
        def restore() -> None:  # only for this statement: the rest of the run's transaction keeps its setting
            # a failed FETCH (timeout, cancel) aborts the transaction: nothing may run in it any
            # more, the rollback undoes the SET LOCAL, and the original error must stay visible
            if dbapi_conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
                dbapi_conn.execute("SELECT set_config('work_mem', %s, true)", (previous_mem,))
    if stream and dialect.name == "postgresql":
        cur = dbapi_conn.cursor(name=f"value_analysis_{id(stmt):x}")
        cur.itersize = CHUNK_ROWS
    else:
        cur = dbapi_conn.cursor()
    try:
        cur.execute(str(compiled), args)
    except BaseException:
        # a failed statement aborts a PostgreSQL transaction: nothing more may run in it, and the
        # rollback undoes the SET LOCAL anyway
        _Cursor(cur, restore if dialect.name == "sqlite" else None).close()
        raise
    return _Cursor(cur, restore)


def fetch_rows(session: Session, stmt: AnySelect) -> list[tuple[Any, ...]]:
    """All rows as plain driver tuples (no ``Row`` objects); for results of at most one row per customer."""
    cur = _execute(session, stmt)
    try:
        return cur.fetchall()
    finally:
        cur.close()


def _fetch_array(session: Session, stmt: AnySelect, ncols: int) -> FloatArray:
    """All rows as one float matrix (NULL -> NaN); for results of at most one row per customer."""
    rows = fetch_rows(session, stmt)
    if not rows:
        return np.empty((0, ncols))
    return np.array(rows, dtype=np.float64).reshape(len(rows), ncols)


def _chunks(session: Session, stmt: AnySelect, ncols: int, size: int = CHUNK_ROWS) -> Iterator[FloatArray]:
    cur = _execute(session, stmt, stream=True)
    try:
        while True:
            rows = cur.fetchmany(size)
            if not rows:
                return
            yield np.array(rows, dtype=np.float64).reshape(len(rows), ncols)
    finally:
        cur.close()


# -- shared pieces of the transaction queries --------------------------------------------------

@dataclass(frozen=True)
class Period:
    """Which transactions a query reads: ``start <= occurred_at < end`` (start None = all history)."""

    end: dt.date  # exclusive: the day after the last included day
    start: dt.date | None = None

    @classmethod
    def up_to(cls, last_day: dt.date, window_days: int | None = None) -> Period:
        end = last_day + dt.timedelta(days=1)
        return cls(end=end, start=None if window_days is None else end - dt.timedelta(days=window_days))


def _kind() -> ColumnElement[str]:
    return type_coerce(Transaction.kind, String)


def _is_purchase(settings: ValueSettings) -> ColumnElement[bool]:
    """A purchase: a revenue-kind entry with a positive amount (a negative adjustment is not)."""
    return and_(_kind().in_([k.value for k in settings.revenue_kinds]), Transaction.amount > 0)


def _signed_amount(settings: ValueSettings) -> Any:
    """Revenue contribution: netting kinds (credit notes) count negative."""
    if not settings.netting_kinds:
        return Transaction.amount
    return case((_kind().in_([k.value for k in settings.netting_kinds]), -Transaction.amount), else_=Transaction.amount)


def _where(session: Session, settings: ValueSettings, period: Period, *, purchases_only: bool = False) -> list[Any]:
    kinds = settings.revenue_kinds if purchases_only else [*settings.revenue_kinds, *settings.netting_kinds]
    conds: list[Any] = [
        _kind().in_([k.value for k in kinds]),
        Transaction.occurred_at < _time_param(session, "period_end", start_of(period.end)),
    ]
    if purchases_only:
        conds.append(Transaction.amount > 0)
    if period.start is not None:
        conds.append(Transaction.occurred_at >= _time_param(session, "period_start", start_of(period.start)))
    if settings.currency:
        conds.append(Transaction.currency == bindparam("currency", settings.currency, type_=String))
    return conds


def _float(expr: Any) -> ColumnElement[float]:
    """Sums of Money come back as Decimal (one Python object per value); cast in SQL instead."""
    return cast(expr, Float)


def _align(ids: IntArray, keys: NDArray[Any]) -> tuple[IntArray, NDArray[np.bool_]]:
    """Positions of ``keys`` in the sorted ``ids`` and which keys are there at all."""
    keys = keys.astype(np.int64)
    pos = np.searchsorted(ids, keys)
    pos_c = np.minimum(pos, max(ids.size - 1, 0))
    found = (pos < ids.size) & (ids[pos_c] == keys) if ids.size else np.zeros(keys.size, dtype=bool)
    return pos_c, found


# -- customers ----------------------------------------------------------------------------------

def customer_ids(session: Session) -> IntArray:
    """Ids of the customers to analyse (not archived, so merged-away customers drop out), sorted."""
    stmt = select(Customer.id).where(Customer.archived.is_(False)).order_by(Customer.id)
    return _fetch_array(session, stmt, 1)[:, 0].astype(np.int64)


# -- RFM aggregates -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ValueAggregates:
    """Per customer over the analysis window, aligned with ``ids``.

    ``last_day`` is NaN without purchases; ``frequency`` counts purchase entries; ``monetary``
    is net revenue (credit notes deducted), 0 for customers without entries.
    """

    ids: IntArray
    last_day: FloatArray
    frequency: IntArray
    monetary: FloatArray


def value_aggregates_query(session: Session, settings: ValueSettings, period: Period) -> AnySelect:
    purchase = _is_purchase(settings)
    return (
        select(
            _customer(),
            day_number(func.max(case((purchase, Transaction.occurred_at)))),
            func.count(case((purchase, 1))),
            _float(func.sum(_signed_amount(settings))),
        )
        .select_from(Transaction)
        .where(*_where(session, settings, period))
        .group_by(_customer())
    )


def value_aggregates(session: Session, ids: IntArray, settings: ValueSettings, period: Period) -> ValueAggregates:
    """Recency/frequency/monetary inputs for every customer in ``ids``, with one GROUP BY."""
    m = _fetch_array(session, value_aggregates_query(session, settings, period), 4)
    pos, found = _align(ids, m[:, 0])
    pos, m = pos[found], m[found]
    last = np.full(ids.size, np.nan)
    freq = np.zeros(ids.size, dtype=np.int64)
    mon = np.zeros(ids.size)
    last[pos] = m[:, 1]
    freq[pos] = m[:, 2].astype(np.int64)
    mon[pos] = np.nan_to_num(m[:, 3])
    return ValueAggregates(ids=ids, last_day=last, frequency=freq, monetary=mon)


# -- purchase-day series --------------------------------------------------------------------------

def purchase_days_query(session: Session, settings: ValueSettings, period: Period) -> AnySelect:
    """One row per customer and day with an entry: gross purchases, net revenue, purchase entries."""
    purchase = _is_purchase(settings)
    day = day_number(Transaction.occurred_at)
    return (
        select(
            _customer(),
            day,
            _float(func.sum(case((purchase, Transaction.amount), else_=0))),
            _float(func.sum(_signed_amount(settings))),
            func.count(case((purchase, 1))),
        )
        .select_from(Transaction)
        .where(*_where(session, settings, period))
        .group_by(_customer(), day)
        .order_by(_customer(), day)
    )


@dataclass
class PurchaseHistory:
    """Per-customer purchase history up to ``cut_day`` (inclusive), aligned with ``ids``.

    A purchase day is a day with at least one purchase; BG/NBD counts those, not entries.
    ``*_last``/``*_prev`` cover the trend windows (cut - W, cut] and (cut - 2W, cut - W];
    ``holdout_days`` counts purchase days in (cut_day, holdout_end_day].
    """

    ids: IntArray
    cut_day: int
    trend_days: int
    first_day: FloatArray = field(init=False)
    last_day: FloatArray = field(init=False)
    purchase_days: IntArray = field(init=False)
    entries: IntArray = field(init=False)
    gross: FloatArray = field(init=False)
    gross_first_day: FloatArray = field(init=False)
    net: FloatArray = field(init=False)
    days_last: IntArray = field(init=False)
    days_prev: IntArray = field(init=False)
    net_last: FloatArray = field(init=False)
    net_prev: FloatArray = field(init=False)
    holdout_days: IntArray = field(init=False)
    rows: int = 0

    def __post_init__(self) -> None:
        n = self.ids.size
        self.first_day = np.full(n, np.nan)
        self.last_day = np.full(n, np.nan)
        self.gross_first_day = np.zeros(n)
        for name in ("purchase_days", "entries", "days_last", "days_prev", "holdout_days"):
            setattr(self, name, np.zeros(n, dtype=np.int64))
        for name in ("gross", "net", "net_last", "net_prev"):
            setattr(self, name, np.zeros(n))

    @property
    def has_purchase(self) -> NDArray[np.bool_]:
        return self.purchase_days > 0

    def add_chunk(self, chunk: FloatArray, holdout_end_day: int | None = None) -> None:
        """Fold one chunk of (customer, day, gross, net, entries) rows, sorted by customer and day."""
        n = self.ids.size
        pos, found = _align(self.ids, chunk[:, 0])
        pos = pos[found]
        day, gross, net, entries = (chunk[found, j] for j in (1, 2, 3, 4))
        self.rows += int(found.sum())
        inside = day <= self.cut_day
        bought = entries > 0

        def count(mask: NDArray[np.bool_]) -> IntArray:
            return np.bincount(pos[mask], minlength=n).astype(np.int64)

        def total(mask: NDArray[np.bool_], values: FloatArray) -> FloatArray:
            return np.bincount(pos[mask], weights=values[mask], minlength=n).astype(np.float64)

        cal = inside & bought
        self.purchase_days += count(cal)
        self.entries += np.bincount(pos[cal], weights=entries[cal], minlength=n).astype(np.int64)
        self.gross += total(cal, gross)
        self.net += total(inside, net)
        w = self.trend_days
        last_w = inside & (day > self.cut_day - w)
        prev_w = (day <= self.cut_day - w) & (day > self.cut_day - 2 * w)
        self.days_last += count(last_w & bought)
        self.days_prev += count(prev_w & bought)
        self.net_last += total(last_w, net)
        self.net_prev += total(prev_w, net)
        if holdout_end_day is not None:
            self.holdout_days += count(~inside & bought & (day <= holdout_end_day))

        # first / last purchase day: rows are sorted, so they sit at the edges of each run
        cp, cd, cg = pos[cal], day[cal], gross[cal]
        if cp.size:
            edge = cp[1:] != cp[:-1]
            starts = np.r_[True, edge]
            ends = np.r_[edge, True]
            first_pos = cp[starts]
            new = np.isnan(self.first_day[first_pos])  # a customer may continue from the last chunk
            self.first_day[first_pos[new]] = cd[starts][new]
            self.gross_first_day[first_pos[new]] = cg[starts][new]
            self.last_day[cp[ends]] = cd[ends]


def purchase_history(
    session: Session,
    ids: IntArray,
    settings: ValueSettings,
    cut: dt.date,
    *,
    holdout_end: dt.date | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> PurchaseHistory:
    """Reduce the purchase-day series up to ``cut`` (and a holdout up to ``holdout_end``)."""
    hist = PurchaseHistory(ids=ids, cut_day=day_of(cut), trend_days=settings.trend_days)
    period = Period.up_to(holdout_end or cut)
    holdout_day = None if holdout_end is None else day_of(holdout_end)
    for chunk in _chunks(session, purchase_days_query(session, settings, period), 5, chunk_rows):
        hist.add_chunk(chunk, holdout_day)
    return hist


# -- the whole run's statistics in one pass -------------------------------------------------------

class day_key(FunctionElement[str]):
    """A cheap per-row key of the UTC day, for ``COUNT(DISTINCT ...)``: no date arithmetic per row.

    SQLite stores naive UTC text, so the first 10 characters are the day; PostgreSQL casts the
    UTC timestamp to a date (the numeric ``extract(epoch)`` would cost a division per row).
    """

    type = String()
    inherit_cache = True


@compiles(day_key, "sqlite")
def _day_key_sqlite(element: day_key, compiler: Any, **kw: Any) -> str:
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


@compiles(day_key, "postgresql")
def _day_key_postgresql(element: day_key, compiler: Any, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC' AS DATE)"


@compiles(day_key)
def _day_key_other(element: day_key, compiler: Any, **kw: Any) -> str:
    raise CompileError(f"value_analysis supports SQLite and PostgreSQL, not {compiler.dialect.name}")


# -- cross-buying and satisfaction ---------------------------------------------------------------

def category_counts(session: Session, ids: IntArray, settings: ValueSettings, cut: dt.date) -> FloatArray:
    """Distinct product categories bought per customer (NaN: no categorised purchase)."""
    stmt = (
        select(_customer(), func.count(func.distinct(Transaction.category)))
        .select_from(Transaction)
        .where(*_where(session, settings, Period.up_to(cut), purchases_only=True), Transaction.category.is_not(None))
        .group_by(_customer())
    )
    m = _fetch_array(session, stmt, 2)
    out = np.full(ids.size, np.nan)
    pos, found = _align(ids, m[:, 0])
    out[pos[found]] = m[found, 1]
    out[out == 0] = np.nan
    return out


def satisfaction_means(session: Session, ids: IntArray, cut: dt.date) -> FloatArray:
    """Mean satisfaction score (1-5) of each customer's interactions up to ``cut`` (NaN: none)."""
    stmt = (
        select(Interaction.customer_id, _float(func.avg(Interaction.satisfaction)))
        .where(
            Interaction.satisfaction.is_not(None),
            Interaction.occurred_at < _time_param(session, "period_end", start_of(cut + dt.timedelta(days=1))),
        )
        .group_by(Interaction.customer_id)
    )
    m = _fetch_array(session, stmt, 2)
    out = np.full(ids.size, np.nan)
    pos, found = _align(ids, m[:, 0])
    out[pos[found]] = m[found, 1]
    return out


def purchase_span(session: Session, settings: ValueSettings) -> tuple[dt.date, dt.date] | None:
    """First and last purchase date in the whole database (None: no purchases at all)."""
    conds = [_kind().in_([k.value for k in settings.revenue_kinds]), Transaction.amount > 0]
    if settings.currency:
        conds.append(Transaction.currency == bindparam("currency", settings.currency, type_=String))
    stmt = select(day_number(func.min(Transaction.occurred_at)), day_number(func.max(Transaction.occurred_at))).where(*conds)
    m = _fetch_array(session, stmt, 2)
    if m.size == 0 or np.isnan(m[0, 0]):
        return None
    return date_of(m[0, 0]), date_of(m[0, 1])


# -- raw pieces of the one-pass statistics (see loaders.customer_stats) ------------------------

def _first_day_gross(raw: Any, dialect: str, settings: ValueSettings, customer_ids: IntArray, first_days: IntArray) -> FloatArray:
    """Gross purchases of each given customer on its first purchase day: one statement, index look-ups.

    A correlated subquery per listed customer reads only that day's entries through the
    ``(account_id, occurred_at)`` index, so this costs O(repeat buyers), not another pass.
    ``raw`` is a DBAPI connection of ``dialect``.
    """
    if customer_ids.size == 0:
        return np.zeros(0)
    kinds = ", ".join(f"'{k.value}'" for k in settings.revenue_kinds)  # enum values: fixed identifiers
    currency = " AND t.currency = :currency" if settings.currency else ""
    inner = ("SELECT CAST(SUM(t.amount) AS FLOAT) FROM accounts a JOIN transactions t ON t.account_id = a.id "
             "WHERE a.customer_id = f.cid AND t.occurred_at >= f.lo AND t.occurred_at < f.hi "
             f"AND t.kind IN ({kinds}) AND t.amount > 0{currency}")
    params: dict[str, Any] = {"currency": settings.currency} if settings.currency else {}
    if dialect == "postgresql":
        sql = (f"SELECT f.cid, ({inner}) FROM (SELECT u.cid, TIMESTAMPTZ '1970-01-01 00:00+00' + u.d * INTERVAL '1 day' AS lo, "
               "TIMESTAMPTZ '1970-01-01 00:00+00' + (u.d + 1) * INTERVAL '1 day' AS hi "
               "FROM unnest(CAST(%(cids)s AS INTEGER[]), CAST(%(days)s AS INTEGER[])) AS u(cid, d)) f")
        sql = sql.replace(":currency", "%(currency)s")
        params.update(cids=customer_ids.tolist(), days=first_days.tolist())
    else:
        pairs = ",".join(f'[{c},"{date_of(d0).isoformat()}","{date_of(d0 + 1).isoformat()}"]'
                         for c, d0 in zip(customer_ids.tolist(), first_days.tolist()))
        sql = (f"SELECT f.cid, ({inner}) FROM (SELECT json_extract(value, '$[0]') AS cid, json_extract(value, '$[1]') AS lo, "
               "json_extract(value, '$[2]') AS hi FROM json_each(:pairs)) f")
        params["pairs"] = f"[{pairs}]"
    cur = raw.cursor()
    try:
        cur.execute(sql, params)
        rows = cur.fetchall()
    finally:
        cur.close()
    m = np.array(rows, dtype=np.float64).reshape(len(rows), 2)
    pos, found = _align(customer_ids, m[:, 0])
    out = np.zeros(customer_ids.size)
    out[pos[found]] = np.nan_to_num(m[found, 1])
    return out


@contextmanager
def _local_setting(raw: Any, name: str, value: str) -> Iterator[None]:
    """A PostgreSQL setting for the statements inside the block only; the transaction's own comes back.

    Not restored in an aborted transaction: nothing may run there, the rollback undoes it, and
    the original error must stay the one raised.
    """
    previous = raw.execute("SELECT current_setting(%s)", (name,)).fetchone()[0]
    raw.execute("SELECT set_config(%s, %s, true)", (name, value))
    try:
        yield
    finally:
        if raw.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
            raw.execute("SELECT set_config(%s, %s, true)", (name, previous))


def _sql_columns(ids: IntArray, m: FloatArray, names: list[str]) -> dict[str, FloatArray]:
    """A per-customer result matrix (customer id first) as full-length columns, NaN for absent customers."""
    pos, found = _align(ids, m[:, 0])
    pos, m = pos[found], m[found]
    out: dict[str, FloatArray] = {}
    for j, name in enumerate(names):
        col = np.full(ids.size, np.nan)
        col[pos] = m[:, j + 1]
        out[name] = col
    return out
