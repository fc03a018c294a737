"""From the core's tables to NumPy arrays: a handful of set-based queries, never one per customer.

* :func:`customer_ids` -- the (non-archived) customers, sorted; every other array is aligned to it.
* :func:`value_aggregates` -- one ``GROUP BY customer`` over the analysis window: recency,
  frequency, monetary. This is all RFM, the pyramid, Pareto and dependency need.
* :func:`customer_stats` -- what a run needs, in ONE pass over the entries: the window's
  recency/frequency/monetary, the sufficient statistics of the purchase models (distinct purchase
  days, first and last purchase day, gross and net spend, the spend on the first purchase day),
  the trend windows, the holdout counts and the distinct categories. SQLite: one ``GROUP BY
  customer`` with ``COUNT(DISTINCT day)`` (split across one read-only connection per core when
  the run's transaction reads the committed state) plus index look-ups for the first-day spend.
  PostgreSQL: a binary COPY reduced in NumPy (:mod:`copy_pass`), split across pooled
  connections sharing the run's snapshot. Memory is O(customers), whatever the number of entries.
* :func:`purchase_history` -- the older path: the purchase-day series (one ``GROUP BY customer,
  day`` query) streamed in chunks and reduced on the fly. It computes the same numbers (a test
  holds them equal) and stays as the reference; it costs three times the aggregate pass.
* :func:`category_counts`, :func:`satisfaction_means` -- cross-buying and satisfaction.

Why the raw DBAPI cursor: turning SQLAlchemy ``Row`` objects into NumPy costs about 20x more
than the numbers themselves (measured: 500k rows, 9.7 s vs 0.1 s), so the statements are built
with SQLAlchemy Core, compiled for the session's dialect, and their plain tuples go straight
into arrays. Bind values are therefore passed in their final driver form (strings, numbers,
and datetimes as the engine stores them; see :func:`_time_param`).

Days are whole UTC days since 1970-01-01. SQLite has no date type, so :class:`day_number`
compiles to ``julianday`` there and to ``extract(epoch ...)`` on PostgreSQL.
"""
from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg import sql
from sqlalchemy import ARRAY, Float, Integer, String, and_, bindparam, case, cast, func, literal_column, select, type_coerce
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement, FunctionElement, Select

from crm_value_analysis import copy_pass
from crm_value_analysis.schemas import ValueSettings
from crmcore.db.engine import sqlite_snapshot_is_committed_state
from crmcore.models import Customer, Interaction, Transaction

EPOCH = dt.date(1970, 1, 1)
CHUNK_ROWS = 100_000
#: SQLite reads a run's statistics with this many read-only connections at once (one core each);
#: measured on 2 cores: 2 readers 5.4 -> 3.6 s, 4 readers 4.0 s
SQLITE_READERS = min(os.cpu_count() or 1, 2)
#: PostgreSQL's COPY pass reads with this many connections at once, each a share of the table's pages
PG_READERS = min(os.cpu_count() or 1, 2)
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

class day_number(FunctionElement[int]):
    """Whole UTC days since 1970-01-01 of a timestamp column (floor, also before 1970)."""

    type = Integer()
    inherit_cache = True


@compiles(day_number, "sqlite")
def _day_sqlite(element: day_number, compiler: Any, **kw: Any) -> str:
    # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff' (naive UTC). The Julian day of the date part is
    # an exact x.5, so the CAST is exact -- julianday() of the full timestamp rounds to whole
    # milliseconds and would put 23:59:59.9995 on the next day.
    return f"CAST(julianday(substr({compiler.process(element.clauses, **kw)}, 1, 10)) - 2440587.5 AS INTEGER)"


@compiles(day_number, "postgresql")
def _day_postgresql(element: day_number, compiler: Any, **kw: Any) -> str:
    return f"CAST(floor(extract(epoch FROM {compiler.process(element.clauses, **kw)}) / 86400) AS INTEGER)"


@compiles(day_number)
def _day_other(element: day_number, compiler: Any, **kw: Any) -> str:
    raise CompileError(f"value_analysis supports SQLite and PostgreSQL, not {compiler.dialect.name}")


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
        return self._cursor.fetchall()  # type: ignore[no-any-return]

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        return self._cursor.fetchmany(size)  # type: ignore[no-any-return]

    def close(self) -> None:
        self._cursor.close()
        if self._restore is not None:
            self._restore()


def _execute(session: Session, stmt: Select[Any], *, stream: bool = False) -> _Cursor:
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
    args: Any = [params[k] for k in compiled.positiontup] if dialect.positional else params
    dbapi_conn = conn.connection.dbapi_connection
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


def fetch_rows(session: Session, stmt: Select[Any]) -> list[tuple[Any, ...]]:
    """All rows as plain driver tuples (no ``Row`` objects); for results of at most one row per customer."""
    cur = _execute(session, stmt)
    try:
        return cur.fetchall()
    finally:
        cur.close()


def _fetch_array(session: Session, stmt: Select[Any], ncols: int) -> FloatArray:
    """All rows as one float matrix (NULL -> NaN); for results of at most one row per customer."""
    rows = fetch_rows(session, stmt)
    if not rows:
        return np.empty((0, ncols))
    return np.array(rows, dtype=np.float64).reshape(len(rows), ncols)


def _chunks(session: Session, stmt: Select[Any], ncols: int, size: int = CHUNK_ROWS) -> Iterator[FloatArray]:
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


def _signed_amount(settings: ValueSettings) -> ColumnElement[Any]:
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


def _float(expr: ColumnElement[Any]) -> ColumnElement[float]:
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


def value_aggregates_query(session: Session, settings: ValueSettings, period: Period) -> Select[Any]:
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

def purchase_days_query(session: Session, settings: ValueSettings, period: Period) -> Select[Any]:
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
            return np.bincount(pos[mask], weights=values[mask], minlength=n)

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


@dataclass(frozen=True)
class CustomerStats:
    """Everything a run reads from the transactions, aligned with ``ids``."""

    value: ValueAggregates
    history: PurchaseHistory
    categories: FloatArray


_STAT_COLUMNS = ("first", "last", "days", "entries", "gross", "net", "days_last", "days_prev", "net_last",
                 "net_prev", "categories", "w_last", "w_entries", "w_net", "holdout_days")


def customer_stats_query(session: Session, settings: ValueSettings, cut: dt.date, *,
                         holdout_end: dt.date | None = None, part: tuple[int, int] | None = None) -> Select[Any]:
    """One ``GROUP BY customer`` with conditional aggregates; see :func:`customer_stats`.

    ``part=(j, k)`` reads only the customers whose id is ``j`` modulo ``k`` (one reader's share).
    """
    purchase = _is_purchase(settings)
    # sums in floating point: PostgreSQL's NUMERIC additions cost more than the scan itself, and the
    # results are analytics (read as float64 anyway); error ~1e-15 relative
    fsigned = _float(_signed_amount(settings))
    at = Transaction.occurred_at
    day = day_key(at)
    w = settings.trend_days
    cut_end = start_of(cut + dt.timedelta(days=1))
    last_lo = _time_param(session, "last_lo", start_of(cut - dt.timedelta(days=w - 1)))
    prev_lo = _time_param(session, "prev_lo", start_of(cut - dt.timedelta(days=2 * w - 1)))
    # with a holdout the scan runs past the cut: every calibration aggregate is bounded by it
    inside: Any = True if holdout_end is None else at < _time_param(session, "cut_end", cut_end)
    bought = and_(purchase, inside) if holdout_end is not None else purchase

    def when(cond: Any, value: Any, else_: Any = None) -> Any:
        return case((cond, value), else_=else_)

    last_w = and_(at >= last_lo, inside) if holdout_end is not None else at >= last_lo
    prev_w = and_(at >= prev_lo, at < last_lo)
    cols: list[Any] = [
        _customer(),
        day_number(func.min(when(bought, at))),
        day_number(func.max(when(bought, at))),
        func.count(func.distinct(when(bought, day))),
        func.count(when(bought, 1)),
        func.sum(when(bought, _float(Transaction.amount), 0.0)),
        func.sum(when(inside, fsigned, 0.0)) if holdout_end is not None else func.sum(fsigned),
        func.count(func.distinct(when(and_(purchase, last_w), day))),
        func.count(func.distinct(when(and_(purchase, prev_w), day))),
        func.sum(when(last_w, fsigned, 0.0)),
        func.sum(when(prev_w, fsigned, 0.0)),
        func.count(func.distinct(when(and_(bought, Transaction.category.is_not(None)), Transaction.category))),
    ]
    if settings.window_days is not None:
        lo = _time_param(session, "window_lo", start_of(cut + dt.timedelta(days=1 - settings.window_days)))
        in_window = and_(at >= lo, inside) if holdout_end is not None else at >= lo
        cols += [day_number(func.max(when(and_(purchase, in_window), at))), func.count(when(and_(purchase, in_window), 1)),
                 func.sum(when(in_window, fsigned, 0.0))]
    if holdout_end is not None:
        cols.append(func.count(func.distinct(when(and_(purchase, at >= _time_param(session, "cut_end2", cut_end)), day))))
    # (id % k + k) % k: SQLite's % keeps the sign of the id
    share = [] if part is None else [(Transaction.customer_id % part[1] + part[1]) % part[1] == part[0]]
    return (
        select(*cols)
        .select_from(Transaction)
        .where(*_where(session, settings, Period.up_to(holdout_end or cut)), *share)
        .group_by(_customer())
    )


# -- PostgreSQL: the same statistics with parallel workers ------------------------------------

#: days per bit string in the PostgreSQL pass (256 bytes per purchase row; ~5.6 years per chunk)
DAY_CHUNK = 2048
#: with more distinct categories than this, fall back to COUNT(DISTINCT category) (no parallelism)
MAX_CATEGORY_BITS = 4096
#: purchase histories longer than this many bitmap chunks (~45 years) use the COUNT(DISTINCT) pass:
#: imports accept dates back to year 1, and one aggregate per chunk would not scale to millennia
MAX_DAY_CHUNKS = 8
#: PostgreSQL's COPY pass keeps one bitmap of days (and one of categories) per customer and reader
#: in memory; above this many bytes in all it aggregates bit strings in SQL instead.
#: 128 MB: 100k customers x 14 years of history with 2 readers.
COPY_BITMAP_BYTES = 128 * 2**20


def _bitmaps_supported(session: Session) -> bool:
    """PostgreSQL 14 or later (``bit_count``); elsewhere the generic COUNT(DISTINCT) pass runs."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    return int(session.connection().connection.dbapi_connection.info.server_version) >= 140000


def _purchase_dictionary(session: Session, settings: ValueSettings, end: dt.date) -> tuple[int | None, list[str]]:
    """First purchase day and the distinct categories of every purchase before ``end`` (exclusive).

    One parallel scan on PostgreSQL. It fixes the layout of the bit strings of
    :func:`_customer_stats_query_postgresql`: day ``d`` is bit ``d - first``, category ``c`` is
    bit ``categories.index(c)``.
    """
    stmt = (select(Transaction.category, day_number(func.min(Transaction.occurred_at)))
            .where(*_where(session, settings, Period(end=end), purchases_only=True))
            .group_by(Transaction.category))
    rows = fetch_rows(session, stmt)
    if not rows:
        return None, []
    return int(min(r[1] for r in rows)), sorted(r[0] for r in rows if r[0] is not None)


def _customer_stats_query_postgresql(session: Session, settings: ValueSettings, cut: dt.date, holdout_end: dt.date | None,
                                     first_day: int, categories: list[str]) -> Select[Any]:
    """:func:`customer_stats_query` for PostgreSQL, without ``COUNT(DISTINCT ...)``.

    A distinct aggregate cannot be split across parallel workers, so PostgreSQL ran the whole
    pass in one process (3.4x the plain GROUP BY at 2 million entries). Here each purchase row
    sets one bit of a per-customer day bitmap (``bit_or``, which workers combine): distinct
    purchase days are ``bit_count`` of the bitmap, a window's days the count of a
    ``substring``, the first purchase day the first set bit. Categories work the same way with
    the dictionary of :func:`_purchase_dictionary`. The bitmaps are cut in chunks of
    :data:`DAY_CHUNK` days so a purchase row never builds more than 256 bytes.
    """
    purchase = _is_purchase(settings)
    fsigned = _float(_signed_amount(settings))
    at = Transaction.occurred_at
    w = settings.trend_days
    cut_day = day_of(cut)
    end_day = day_of(holdout_end or cut)
    cut_end = start_of(cut + dt.timedelta(days=1))
    last_lo = _time_param(session, "last_lo", start_of(cut - dt.timedelta(days=w - 1)))
    prev_lo = _time_param(session, "prev_lo", start_of(cut - dt.timedelta(days=2 * w - 1)))
    inside: Any = True if holdout_end is None else at < _time_param(session, "cut_end", cut_end)
    bought = and_(purchase, inside) if holdout_end is not None else purchase
    last_w = and_(at >= last_lo, inside) if holdout_end is not None else at >= last_lo
    prev_w = and_(at >= prev_lo, at < last_lo)

    def when(cond: Any, value: Any, else_: Any = None) -> Any:
        return case((cond, value), else_=else_)

    # first_day is an int we computed, so the literal is safe; the day offset is exact integer arithmetic
    offset = f"(CAST(transactions.occurred_at AT TIME ZONE 'UTC' AS DATE) - DATE '{date_of(first_day).isoformat()}')"
    span = end_day - first_day + 1
    width = min(span, DAY_CHUNK)  # each row allocates one bit string of this many bits
    n_chunks = -(-span // width)
    chunks = []
    for k in range(n_chunks):
        lo = k * width
        bit = literal_column(f"CAST(B'1' AS BIT({width})) >> CAST({offset} - {lo} AS INTEGER)")
        cond = purchase if n_chunks == 1 else and_(purchase, literal_column(f"{offset} BETWEEN {lo} AND {lo + width - 1}"))
        chunks.append(func.bit_or(when(cond, bit)).label(f"b{k}"))
    # Read committed: a purchase committed between the dictionary scan and this statement may lie
    # before the first day or carry a new category; it is counted here and the caller falls back.
    stray = literal_column(f"{offset} < 0")
    cols: list[Any] = [
        _customer().label("c"),
        *chunks,
        day_number(func.max(when(bought, at))).label("last"),
        func.count(when(bought, 1)).label("entries"),
        func.sum(when(bought, _float(Transaction.amount), 0.0)).label("gross"),
        (func.sum(when(inside, fsigned, 0.0)) if holdout_end is not None else func.sum(fsigned)).label("net"),
        func.sum(when(last_w, fsigned, 0.0)).label("net_last"),
        func.sum(when(prev_w, fsigned, 0.0)).label("net_prev"),
    ]
    source: Any = Transaction.__table__
    use_bits = 0 < len(categories) <= MAX_CATEGORY_BITS
    if use_bits:
        k_cat = len(categories)
        dictionary = func.unnest(bindparam("categories", categories, type_=ARRAY(String))).table_valued(
            "category", with_ordinality="i").render_derived(name="dictionary")
        source = source.outerjoin(dictionary, dictionary.c.category == Transaction.category)
        cat_bit = literal_column(f"CAST(B'1' AS BIT({k_cat})) >> CAST(dictionary.i - 1 AS INTEGER)")
        stray = literal_column(f"({offset} < 0 OR (transactions.category IS NOT NULL AND dictionary.i IS NULL))")
        cols.append(func.bit_or(when(and_(bought, Transaction.category.is_not(None)), cat_bit)).label("cats"))
    elif categories:
        cols.append(func.count(func.distinct(when(and_(bought, Transaction.category.is_not(None)),
                                                   Transaction.category))).label("cats"))
    if settings.window_days is not None:
        lo_w = _time_param(session, "window_lo", start_of(cut + dt.timedelta(days=1 - settings.window_days)))
        in_window = and_(at >= lo_w, inside) if holdout_end is not None else at >= lo_w
        cols += [day_number(func.max(when(and_(purchase, in_window), at))).label("w_last"),
                 func.count(when(and_(purchase, in_window), 1)).label("w_entries"),
                 func.sum(when(in_window, fsigned, 0.0)).label("w_net")]
    cols.append(func.count(when(and_(purchase, stray), 1)).label("stray"))
    inner = (select(*cols).select_from(source)
             .where(*_where(session, settings, Period.up_to(holdout_end or cut)))
             .group_by(_customer())).subquery("s")

    # one bitmap per customer, computed once (OFFSET 0 keeps PostgreSQL from inlining it into
    # every use below); this level runs in the leader, after the parallel part
    bitmap = " || ".join(f"coalesce(s.b{k}, CAST(B'0' AS BIT({width})))" for k in range(n_chunks))
    mid = select(inner, literal_column(bitmap).label("bits")).offset(0).subquery("m")
    bits = "m.bits"

    def days_between(lo_day: int, hi_day: int) -> Any:
        """Purchase days in [lo_day, hi_day] (day numbers), from the bitmap."""
        lo_off, hi_off = max(lo_day - first_day, 0), hi_day - first_day
        if hi_off < lo_off:
            return literal_column("0")
        return literal_column(f"bit_count(substring({bits} FROM {lo_off + 1} FOR {hi_off - lo_off + 1}))")

    days = days_between(first_day, cut_day)
    out: list[Any] = [
        mid.c.c,
        literal_column(f"CASE WHEN position(B'1' IN {bits}) BETWEEN 1 AND {cut_day - first_day + 1} "
                       f"THEN {first_day} + position(B'1' IN {bits}) - 1 END"),
        mid.c["last"],
        days,
        mid.c.entries, mid.c.gross, mid.c.net,
        days_between(cut_day - w + 1, cut_day),
        days_between(cut_day - 2 * w + 1, cut_day - w),
        mid.c.net_last, mid.c.net_prev,
        (literal_column("bit_count(m.cats)") if use_bits else mid.c.cats) if categories else literal_column("0"),
    ]
    if settings.window_days is not None:
        out += [mid.c.w_last, mid.c.w_entries, mid.c.w_net]
    if holdout_end is not None:
        out.append(days_between(cut_day + 1, end_day))
    out.append(mid.c.stray)  # last column: see customer_stats
    return select(*out).select_from(mid)


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


def _copy_stats(session: Session, ids: IntArray, settings: ValueSettings, layout: copy_pass.Layout,
                categories: list[str], end: dt.date) -> dict[str, FloatArray] | None:
    """The statistics from a binary COPY of the entries (see :mod:`copy_pass`); None: rows outside the layout.

    With :data:`PG_READERS` > 1 and a transaction that has not written yet, the table's pages
    are split between that many pooled connections, all reading this transaction's snapshot
    (``pg_export_snapshot``): the server formats rows on every core, as its parallel GROUP BY does.
    The COPY runs without JIT compilation: at 10 million entries its estimated cost crosses
    PostgreSQL's inlining and optimisation thresholds, and compiling then cost more than it saved
    (measured: 14.8 s with JIT, 8.1 s without, for the same COPY).
    """
    def statement(pages: tuple[int, int | None] | None) -> Any:
        return copy_pass.copy_statement(
            revenue_kinds=[k.value for k in settings.revenue_kinds], netting_kinds=[k.value for k in settings.netting_kinds],
            end=start_of(end), currency=settings.currency, categories=categories, pages=pages)

    raw = session.connection().connection.dbapi_connection
    split = _pg_snapshot_to_share(session)
    reducer = None if split is None else _copy_split(session, ids, layout, statement, *split)
    if reducer is None:  # one reader: this session's own connection
        reducer = copy_pass.Reducer(ids, layout)
        with _local_setting(raw, "jit", "off"):  # see the docstring
            copy_pass.fold(raw, statement(None), reducer)
    # Read committed: a purchase committed between the dictionary scan and the COPY may lie before
    # the first day or carry a new category; the caller then takes the generic pass
    return None if reducer.stray else reducer.result()


class _NoSpareConnection(Exception):
    """A reader could not get a connection (``max_connections``, a pooler's or the pool's limit)."""


def _copy_split(session: Session, ids: IntArray, layout: copy_pass.Layout, statement: Any, snapshot: str,
                pages: int) -> copy_pass.Reducer | None:
    """Fold the COPY with :data:`PG_READERS` pooled connections, each importing ``snapshot`` and
    reading a range of ``pages``. None when a reader could not get a connection: the caller then
    reads alone (this transaction is untouched). Meanwhile the session's own connection waits,
    idle in its transaction (a very short ``idle_in_transaction_session_timeout`` would end it).
    """
    k = PG_READERS
    bounds = [j * pages // k for j in range(k)]
    shares = [(bounds[j], bounds[j + 1] if j + 1 < k else None) for j in range(k)]
    engine = session.get_bind()
    stop = threading.Event()  # set when one reader fails: the others cancel their COPY

    def read(share: tuple[int, int | None]) -> copy_pass.Reducer:
        part = copy_pass.Reducer(ids, layout)
        try:
            pooled = engine.raw_connection()
        except Exception as e:
            stop.set()
            raise _NoSpareConnection(str(e)) from e
        try:
            helper = pooled.driver_connection
            saved = helper.isolation_level, helper.read_only
            try:
                helper.isolation_level, helper.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
                helper.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
                helper.execute("SET LOCAL jit = off")  # see _copy_stats
                copy_pass.fold(helper, statement(share), part, stop)
            finally:
                try:  # back to the pool as it came: idle, with its own settings
                    helper.rollback()
                    helper.isolation_level, helper.read_only = saved
                except psycopg.Error:
                    pooled.invalidate()
        except BaseException:
            stop.set()
            raise
        finally:
            pooled.close()
        return part

    with ThreadPoolExecutor(max_workers=k) as pool:
        futures = [pool.submit(read, share) for share in shares]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:  # Ctrl-C: the readers stop at their next block, the with-block waits for them
            stop.set()
            raise
        if any(f.done() and f.exception() is not None for f in futures):
            stop.set()  # a reader failed: the others stop at their next block
    errors = [f.exception() for f in futures]
    real = next((e for e in errors if e is not None and not isinstance(e, (copy_pass.CopyStopped, _NoSpareConnection))), None)
    if real is not None:
        raise real
    if any(e is not None for e in errors):
        return None
    reducer = futures[0].result()
    for f in futures[1:]:
        reducer.merge(f.result())
    return reducer


def _pg_snapshot_to_share(session: Session) -> tuple[str, int] | None:
    """(exported snapshot, heap pages of ``transactions``) when other connections can read for this transaction.

    They see exactly its snapshot, but not its own uncommitted changes: so only when it has
    written nothing yet (no transaction id assigned). TID range scans need PostgreSQL 14.
    """
    raw = session.connection().connection.dbapi_connection
    if PG_READERS < 2 or raw.info.server_version < 140000 or session.in_nested_transaction():
        return None  # (pg_export_snapshot cannot run inside a savepoint)
    clean, pages = raw.execute("SELECT pg_current_xact_id_if_assigned() IS NULL, "
                               "pg_relation_size('transactions') / current_setting('block_size')::int").fetchone()
    if not clean:
        return None
    return raw.execute("SELECT pg_export_snapshot()").fetchone()[0], int(pages)


def _sqlite_shared_file(session: Session) -> str | None:
    """The database file, when other read-only connections would read exactly what this session reads.

    That holds in a writing unit of work that has not written yet: it holds SQLite's write lock
    (nobody else can commit) and has no changes of its own (see the core's
    ``sqlite_snapshot_is_committed_state``). Memory databases cannot be shared.
    """
    conn = session.connection()
    if conn.dialect.name != "sqlite" or SQLITE_READERS < 2 or not sqlite_snapshot_is_committed_state(conn):
        return None
    path = conn.connection.dbapi_connection.execute("PRAGMA database_list").fetchone()[2]
    return path or None


def _sqlite_stats_in_parallel(session: Session, path: str, ids: IntArray, settings: ValueSettings, cut: dt.date,
                              holdout_end: dt.date | None, names: list[str]) -> dict[str, FloatArray]:
    """The generic pass split by customer id modulo :data:`SQLITE_READERS`, one read-only connection and thread each.

    SQLite runs a statement on one core; Python's sqlite3 releases the GIL while SQLite works,
    so the shares run at once. Each reader also looks up its own repeat buyers' first-day
    spend. Measured at 2 million entries on 2 cores: 6.6 + 0.75 s -> 3.6 + 0.4 s.
    """
    k = SQLITE_READERS
    dialect = session.get_bind().dialect
    compiled = [customer_stats_query(session, settings, cut, holdout_end=holdout_end, part=(j, k))
                .compile(dialect=dialect, compile_kwargs={"render_postcompile": True}) for j in range(k)]

    readers = [sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
               for _ in range(k)]

    def read(j: int) -> tuple[FloatArray, FloatArray]:
        raw = readers[j]
        raw.execute("PRAGMA busy_timeout=10000")
        raw.execute("PRAGMA temp_store=FILE")  # the GROUP BY's sort on disk: bounded memory
        c = compiled[j]
        rows = raw.execute(str(c), [c.params[p] for p in c.positiontup]).fetchall()
        m = np.array(rows, dtype=np.float64).reshape(len(rows), len(names) + 1)
        days, first = m[:, 1 + names.index("days")], m[:, 1 + names.index("first")]
        repeat = np.flatnonzero(days > 1)
        gross_first = np.where(days == 1, m[:, 1 + names.index("gross")], 0.0)
        gross_first[repeat] = _first_day_gross(raw, "sqlite", settings, m[repeat, 0].astype(np.int64),
                                               first[repeat].astype(np.int64))
        return m, gross_first

    try:
        with ThreadPoolExecutor(max_workers=k) as pool:
            futures = [pool.submit(read, j) for j in range(k)]
            try:
                parts = [f.result() for f in futures]
            except BaseException:
                for raw in readers:  # the others stop now instead of finishing their share
                    raw.interrupt()
                raise
    finally:
        for raw in readers:
            raw.close()
    m = np.concatenate([p[0] for p in parts])
    cols = _sql_columns(ids, m, names)
    cols["gross_first"] = _sql_columns(ids, np.column_stack([m[:, 0], np.concatenate([p[1] for p in parts])]),
                                       ["gross_first"])["gross_first"]
    return cols


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


def customer_stats(session: Session, ids: IntArray, settings: ValueSettings, cut: dt.date, *,
                   holdout_end: dt.date | None = None) -> CustomerStats:
    """Value aggregates, purchase history and categories up to ``cut`` in one pass over the entries.

    The numbers equal :func:`value_aggregates` (window ``settings.window_days``),
    :func:`purchase_history` and :func:`category_counts`. PostgreSQL streams the entries with one
    binary COPY and reduces them in NumPy (:mod:`copy_pass`); when its bitmaps would not fit in
    :data:`COPY_BITMAP_BYTES` it aggregates bit strings in SQL, and SQLite (or any fallback)
    runs one ``GROUP BY`` with ``COUNT(DISTINCT day)`` plus index look-ups for the first-day spend.
    """
    names = [*_STAT_COLUMNS[:11], *(_STAT_COLUMNS[11:14] if settings.window_days is not None else ()),
             *(("holdout_days",) if holdout_end is not None else ())]
    cols: dict[str, FloatArray] | None = None
    end = holdout_end or cut
    if session.get_bind().dialect.name == "postgresql":
        first_day, categories = _purchase_dictionary(session, settings, end + dt.timedelta(days=1))
        if first_day is not None:
            window_lo = None if settings.window_days is None else day_of(cut) + 1 - settings.window_days
            layout = copy_pass.Layout(first_day=first_day, cut_day=day_of(cut), end_day=day_of(end),
                                      trend_days=settings.trend_days, window_lo_day=window_lo,
                                      holdout=holdout_end is not None, n_categories=len(categories))
            if len(categories) <= MAX_CATEGORY_BITS and PG_READERS * copy_pass.bitmap_bytes(ids.size, layout) <= COPY_BITMAP_BYTES:
                cols = _copy_stats(session, ids, settings, layout, categories, end + dt.timedelta(days=1))
            elif _bitmaps_supported(session) and layout.span <= MAX_DAY_CHUNKS * DAY_CHUNK:
                stmt = _customer_stats_query_postgresql(session, settings, cut, holdout_end, first_day, categories)
                m = _fetch_array(session, stmt, len(names) + 2)
                if not np.nansum(m[:, -1]) > 0:  # no purchases outside the bitmap layout
                    cols = _sql_columns(ids, m[:, :-1], names)
    elif (path := _sqlite_shared_file(session)) is not None:
        cols = _sqlite_stats_in_parallel(session, path, ids, settings, cut, holdout_end, names)
    if cols is None:
        cols = _sql_columns(ids, _fetch_array(session, customer_stats_query(session, settings, cut, holdout_end=holdout_end),
                                              len(names) + 1), names)

    def spread(name: str, fill: float = 0.0, dtype: Any = np.float64) -> NDArray[Any]:
        col = cols[name]
        return (np.nan_to_num(col, nan=fill) if fill == fill else col.copy()).astype(dtype)  # noqa: PLR0124 - NaN check

    hist = PurchaseHistory(ids=ids, cut_day=day_of(cut), trend_days=settings.trend_days)
    hist.first_day, hist.last_day = spread("first", np.nan), spread("last", np.nan)
    for name, attr in (("days", "purchase_days"), ("entries", "entries"), ("days_last", "days_last"),
                       ("days_prev", "days_prev")):
        setattr(hist, attr, spread(name, 0, np.int64))
    hist.gross, hist.net = spread("gross"), spread("net")
    hist.net_last, hist.net_prev = spread("net_last"), spread("net_prev")
    if holdout_end is not None:
        hist.holdout_days = spread("holdout_days", 0, np.int64)
    if "gross_first" in cols:
        hist.gross_first_day = np.where(hist.purchase_days > 0, spread("gross_first"), 0.0)
    else:
        repeat = np.flatnonzero(hist.purchase_days > 1)
        hist.gross_first_day = np.where(hist.purchase_days == 1, hist.gross, 0.0)
        hist.gross_first_day[repeat] = _first_day_gross(session.connection().connection.dbapi_connection,
                                                        session.get_bind().dialect.name, settings, ids[repeat],
                                                        hist.first_day[repeat].astype(np.int64))
    hist.rows = int(hist.purchase_days.sum())
    categories_out = spread("categories", np.nan)
    categories_out[categories_out == 0] = np.nan
    if settings.window_days is None:
        value = ValueAggregates(ids=ids, last_day=hist.last_day.copy(), frequency=hist.entries.copy(), monetary=hist.net.copy())
    else:
        value = ValueAggregates(ids=ids, last_day=spread("w_last", np.nan), frequency=spread("w_entries", 0, np.int64),
                                monetary=spread("w_net"))
    return CustomerStats(value=value, history=hist, categories=categories_out)


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


__all__ = [
    "CHUNK_ROWS",
    "EPOCH",
    "CustomerStats",
    "Period",
    "PurchaseHistory",
    "ValueAggregates",
    "category_counts",
    "customer_ids",
    "customer_stats",
    "customer_stats_query",
    "date_of",
    "day_key",
    "day_number",
    "day_of",
    "fetch_rows",
    "purchase_days_query",
    "purchase_history",
    "purchase_span",
    "satisfaction_means",
    "start_of",
    "value_aggregates",
    "value_aggregates_query",
]
