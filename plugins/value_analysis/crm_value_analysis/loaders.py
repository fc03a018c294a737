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
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg import sql
from sqlalchemy import ARRAY, String, and_, bindparam, case, func, literal_column, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Select

from crm_value_analysis import copy_pass, reads
from crm_value_analysis.reads import (  # noqa: F401 (re-exported: the plugin's one import path)
    ANALYTICS_WORK_MEM,
    CHUNK_ROWS,
    EPOCH,
    FloatArray,
    IntArray,
    Period,
    PurchaseHistory,
    ValueAggregates,
    _align,
    _chunks,
    _customer,
    _execute,
    _fetch_array,
    _first_day_gross,
    _float,
    _is_purchase,
    _kind,
    _local_setting,
    _signed_amount,
    _sql_columns,
    _time_param,
    _where,
    category_counts,
    customer_ids,
    date_of,
    day_key,
    day_number,
    day_of,
    fetch_rows,
    purchase_days_query,
    purchase_history,
    purchase_span,
    satisfaction_means,
    scan_all,
    start_of,
    value_aggregates,
    value_aggregates_query,
)
from crm_value_analysis.schemas import ValueSettings
from crmcore.db.dates import day_sql
from crmcore.db.engine import sqlite_snapshot_is_committed_state
from crmcore.models import Transaction

#: SQLite reads a run's statistics with this many read-only connections at once (one core each);
#: measured on 2 cores: 2 readers 5.4 -> 3.6 s, 4 readers 4.0 s
SQLITE_READERS = min(os.cpu_count() or 1, 2)
#: PostgreSQL's COPY pass reads with this many connections at once, each a share of the table's pages
PG_READERS = min(os.cpu_count() or 1, 2)


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
    return int(reads.dbapi(session.connection()).info.server_version) >= 140000


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


def _pg_grouped_bits(session: Session, settings: ValueSettings, cut: dt.date, holdout_end: dt.date | None,
                     first_day: int, categories: list[str]) -> tuple[Any, int, int, bool]:
    """The parallel part of :func:`_customer_stats_query_postgresql`: one GROUP BY with day (and
    category) bitmaps; returns the subquery, the chunk width, the number of chunks, bit categories."""
    purchase = _is_purchase(settings)
    fsigned = _float(_signed_amount(settings))
    at = Transaction.occurred_at
    w = settings.trend_days
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
    utc_date = "CAST(transactions.occurred_at AT TIME ZONE 'UTC' AS DATE)"  # a date: no division per row
    offset = f"({day_sql('postgresql', utc_date, is_date=True)} - {int(first_day)})"
    span = end_day - first_day + 1
    width = min(span, DAY_CHUNK)  # each row allocates one bit string of this many bits
    n_chunks = -(-span // width)
    chunks = []
    for k in range(n_chunks):
        lo = k * width
        bit: Any = literal_column(f"CAST(B'1' AS BIT({width})) >> CAST({offset} - {lo} AS INTEGER)")
        cond = purchase if n_chunks == 1 else and_(purchase, literal_column(f"{offset} BETWEEN {lo} AND {lo + width - 1}"))
        chunks.append(func.bit_or(when(cond, bit)).label(f"b{k}"))
    # Read committed: a purchase committed between the dictionary scan and this statement may lie
    # before the first day or carry a new category; it is counted here and the caller falls back.
    stray: Any = literal_column(f"{offset} < 0")
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
        cat_bit: Any = literal_column(f"CAST(B'1' AS BIT({k_cat})) >> CAST(dictionary.i - 1 AS INTEGER)")
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
    return inner, width, n_chunks, use_bits


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
    inner, width, n_chunks, use_bits = _pg_grouped_bits(session, settings, cut, holdout_end, first_day, categories)
    w, cut_day, end_day = settings.trend_days, day_of(cut), day_of(holdout_end or cut)
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

    raw = reads.dbapi(session.connection())
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
    engine: Any = session.get_bind()  # an Engine: the run's session is bound to one
    stop = threading.Event()  # set when one reader fails: the others cancel their COPY

    def read(share: tuple[int, int | None]) -> copy_pass.Reducer:
        part = copy_pass.Reducer(ids, layout)
        try:
            pooled = engine.raw_connection()
        except Exception as e:
            stop.set()
            raise _NoSpareConnection(str(e)) from e
        try:
            helper: Any = pooled.driver_connection
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
    raw = reads.dbapi(session.connection())
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
    path = reads.dbapi(conn).execute("PRAGMA database_list").fetchone()[2]
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
        rows = raw.execute(str(c), [c.params[p] for p in c.positiontup or ()]).fetchall()
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
        hist.gross_first_day[repeat] = _first_day_gross(reads.dbapi(session.connection()),
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
