"""PostgreSQL: a run's statistics from ONE binary ``COPY`` of the entries, reduced in NumPy.

Why not a GROUP BY: the statistics need distinct purchase days (in four ranges) and the spend on
each customer's first purchase day. PostgreSQL cannot split ``COUNT(DISTINCT ...)`` across
parallel workers, bit-string aggregates cost twice the plain GROUP BY, and the first-day spend
needs a second look at every repeat buyer. Streaming four fixed-width numbers per entry
(customer, timestamp, amount, flags) is a plain sequential scan on the server -- about the cost
of the plain GROUP BY -- and NumPy folds them into per-customer arrays while they arrive:

* sums and counts with ``bincount``, first and last days with ``minimum.at``/``maximum.at``;
* distinct days as one bitmap per customer over the whole purchase span (``bitwise_or.at``),
  counted per range at the end; distinct categories the same way;
* the first-day spend exactly, by merging each chunk's (first day, spend that day) per customer.

Memory is the bitmaps (customers x span / 8 bytes, capped by the caller) plus one chunk of rows:
flat in the number of entries. Every number equals the SQL passes (a test holds them equal).

psycopg has no reader from binary COPY into NumPy and no maintained library does it; the
format is fixed-width here by construction (no NULL column, so no variable-length field), so
one structured dtype decodes a whole chunk at once. The rows are read with libpq's own
``PQgetCopyData`` through ``Connection.pgconn`` (psycopg's documented low-level door): the server
sends one message per row, and psycopg's ``Copy`` iterator costs ~1 us of Python per message,
as much as the server's scan.
"""
from __future__ import annotations

import datetime as dt
import select
import threading
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg import pq, sql

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: one binary COPY row: a field count, then (length, value) per column, big-endian
ROW = np.dtype([("nfields", ">i2"), ("len_customer", ">i4"), ("customer", ">i4"), ("len_at", ">i4"), ("at", ">i8"),
                ("len_amount", ">i4"), ("amount", ">f8"), ("len_flags", ">i4"), ("flags", ">i4")])
_LENGTHS = {"len_customer": 4, "len_at": 8, "len_amount": 8, "len_flags": 4}
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_TRAILER = b"\xff\xff"
#: binary timestamps are microseconds since 2000-01-01 00:00 UTC
_US_PER_DAY = 86_400_000_000
_Y2K_DAY = (dt.date(2000, 1, 1) - dt.date(1970, 1, 1)).days
#: flag bits of a row
REVENUE, NETTING, HAS_CATEGORY, CATEGORY_SHIFT = 1, 2, 4, 3
#: wire bytes decoded and folded at once (per reader; ~90k entries)
BLOCK_BYTES = 4 * 2**20
#: customers per block when the day bitmaps are counted (the table look-up copies one block)
_COUNT_BLOCK = 4_096
_NONE = np.iinfo(np.int64).max
#: set bits per byte value (np.bitwise_count needs NumPy 2)
_POPCOUNT = np.array([i.bit_count() for i in range(256)], dtype=np.uint8)


class CopyFormatError(RuntimeError):
    """The COPY stream is not the fixed-width layout this reader decodes."""


class CopyStopped(RuntimeError):
    """A reader gave up because another one failed (the other's error is the one reported)."""


@dataclass(frozen=True)
class Layout:
    """Days as whole UTC days since 1970-01-01. Purchase days are bits ``day - first_day``."""

    first_day: int  # first purchase day in the data (the bitmaps start here)
    cut_day: int  # last calibration day (inclusive)
    end_day: int  # last day read: the holdout end, or the cut
    trend_days: int
    window_lo_day: int | None  # first day of the RFM window (None: whole history)
    holdout: bool
    n_categories: int

    @property
    def span(self) -> int:
        return self.end_day - self.first_day + 1


def bitmap_bytes(customers: int, layout: Layout) -> int:
    """Memory of the day and category bitmaps for ``customers``."""
    return customers * (-(-layout.span // 8) + -(-layout.n_categories // 8))


def copy_statement(*, revenue_kinds: Sequence[str], netting_kinds: Sequence[str], end: dt.datetime,
                   currency: str | None, categories: Sequence[str], pages: tuple[int, int | None] | None = None) -> sql.Composed:
    """``COPY (SELECT customer, occurred_at, amount, flags ...) TO STDOUT`` in binary, every column NOT NULL.

    Flags: bit 0 a revenue kind, bit 1 a netting kind, bit 2 a category is set, bits 3+ the
    category's 1-based place in ``categories`` (0: not in it). ``pages=(lo, hi)`` reads only the
    rows stored on heap pages lo..hi-1 (hi None: to the end), a TID range scan (PostgreSQL 14+).
    """
    kinds = [*revenue_kinds, *netting_kinds]

    def one_of(values: Sequence[str]) -> sql.Composable:
        return sql.SQL("t.kind = ANY({})").format(sql.Literal(list(values))) if values else sql.SQL("false")

    flags = sql.SQL("(CASE WHEN {rev} THEN 1 ELSE 0 END) + (CASE WHEN {net} THEN 2 ELSE 0 END)"
                    " + (CASE WHEN t.category IS NOT NULL THEN 4 ELSE 0 END)").format(
        rev=one_of(revenue_kinds), net=one_of(netting_kinds))
    source: sql.Composable = sql.SQL("transactions t")
    if categories:
        flags = sql.SQL("{} + 8 * CAST(coalesce(d.i, 0) AS integer)").format(flags)
        source = sql.SQL("transactions t LEFT JOIN unnest(CAST({} AS text[])) WITH ORDINALITY AS d(category, i)"
                         " ON d.category = t.category").format(sql.Literal(list(categories)))
    where = sql.SQL("t.kind = ANY({}) AND t.occurred_at < {}").format(sql.Literal(kinds), sql.Literal(end))
    if currency:
        where = sql.SQL("{} AND t.currency = {}").format(where, sql.Literal(currency))
    if pages is not None:
        where = sql.SQL("{} AND t.ctid >= CAST({} AS tid)").format(where, sql.Literal(f"({int(pages[0])},0)"))
        if pages[1] is not None:
            where = sql.SQL("{} AND t.ctid < CAST({} AS tid)").format(where, sql.Literal(f"({int(pages[1])},0)"))
    return sql.SQL("COPY (SELECT t.customer_id, t.occurred_at, CAST(t.amount AS float8), CAST({flags} AS integer)"
                   " FROM {source} WHERE {where}) TO STDOUT (FORMAT binary)").format(
        flags=flags, source=source, where=where)


def blocks(conn: psycopg.Connection[object], statement: sql.Composable, block_bytes: int) -> Generator[bytearray, None, None]:
    """The bytes of ``COPY ... TO STDOUT`` run on ``conn`` (in its current transaction), in blocks of ~``block_bytes``.

    Errors are raised as psycopg raises them (``QueryCanceled`` for a statement timeout, ...).
    Closed early (the consumer failed or stopped), the COPY is cancelled and drained: the
    connection is back in step, and its transaction aborted if the cancel landed (roll it back).
    Waiting for the server happens in ``select``, which releases the GIL (other readers run)
    and lets Ctrl-C through, even while the COPY waits for a lock.
    """
    pg = conn.pgconn
    if not conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE:
        # the raw libpq call below bypasses psycopg, which opens its transactions (BEGIN with the
        # connection's isolation level) on the first statement: let it do so now
        conn.execute("SELECT 1")
    pg.send_query(statement.as_bytes(conn))
    result = _next_result(pg)
    if result is None or result.status != pq.ExecStatus.COPY_OUT:
        _finish(conn, result)
        raise CopyFormatError("the statement is not a COPY TO STDOUT")
    done = False
    get = pg.get_copy_data
    try:
        buf = bytearray()
        while True:  # the hot loop: one call per row
            size, data = get(1)
            if size > 0:
                buf += data
                if len(buf) >= block_bytes:
                    yield buf
                    buf = bytearray()
            elif size == 0:
                _wait(pg)
            else:
                break
        done = True
        yield buf
    finally:
        if done:
            _finish(conn, _next_result(pg))
        else:
            try:
                if pg.status == pq.ConnStatus.OK:
                    conn.cancel_safe(timeout=10)  # psycopg >= 3.2
                    while (size := get(1)[0]) >= 0:
                        if size == 0:
                            _wait(pg)
                _finish(conn, _next_result(pg), raise_error=False)
            except psycopg.Error:
                pass  # a lost connection: the caller's rollback discards it; its own error stays the one raised


def _wait(pg: pq.abc.PGconn) -> None:
    """Block until the server sends more (in ``select``: no GIL held), then take it in."""
    select.select([pg.socket], [], [])
    pg.consume_input()


def _next_result(pg: pq.abc.PGconn) -> pq.abc.PGresult | None:
    while pg.is_busy():
        _wait(pg)
    return pg.get_result()


def _finish(conn: psycopg.Connection[object], result: pq.abc.PGresult | None, *, raise_error: bool = True) -> None:
    """Collect the results left on the connection; raise the first error as the class psycopg would."""
    error = None
    while result is not None:
        if error is None and result.status == pq.ExecStatus.FATAL_ERROR:
            error = _error(conn, result)
        result = _next_result(conn.pgconn)
    if error is not None and raise_error:
        raise error


def _error(conn: psycopg.Connection[object], result: pq.abc.PGresult) -> psycopg.Error:
    """psycopg's exception class for the result's SQLSTATE (``DatabaseError`` if it has none)."""
    message = (result.error_message or b"").decode(conn.info.encoding, "replace").strip()
    sqlstate = result.error_field(pq.DiagnosticField.SQLSTATE)
    try:
        cls = psycopg.errors.lookup(sqlstate.decode()) if sqlstate else psycopg.DatabaseError
    except KeyError:
        cls = psycopg.DatabaseError
    return cls(message)


def fold(conn: psycopg.Connection[object], statement: sql.Composable, reducer: Reducer,
         stop: threading.Event | None = None) -> None:
    """Stream ``statement`` into ``reducer``; if anything fails (or ``stop`` is set) the COPY is cancelled first."""
    stream = blocks(conn, statement, BLOCK_BYTES)
    rows = decode(stream)
    try:
        for chunk in rows:
            if stop is not None and stop.is_set():
                raise CopyStopped("another reader failed")
            reducer.add(chunk)
    finally:
        rows.close()
        stream.close()


def decode(blocks: Iterable[bytes | bytearray]) -> Generator[NDArray[np.void], None, None]:
    """Fixed-width rows from the bytes of a binary COPY, one array per block (rows may straddle blocks)."""
    buf = bytearray()
    header_done = False
    size = ROW.itemsize
    for block in blocks:
        buf += block
        if not header_done:
            if len(buf) < 19:
                continue
            if bytes(buf[:11]) != _SIGNATURE:
                raise CopyFormatError("not a binary COPY stream")
            ext = int.from_bytes(buf[15:19], "big")
            if len(buf) < 19 + ext:
                continue
            del buf[:19 + ext]
            header_done = True
        k = (len(buf) - 2) // size  # keep at least the 2 bytes that may be the trailer
        if k > 0:
            yield _check(np.frombuffer(bytes(buf[:k * size]), dtype=ROW))
            del buf[:k * size]
    if not header_done or bytes(buf) != _TRAILER:
        raise CopyFormatError("binary COPY stream ended mid-row")


def _check(rows: NDArray[np.void]) -> NDArray[np.void]:
    """Every row has 4 fields of the expected widths (a NULL would have shifted the layout)."""
    if not (rows["nfields"] == 4).all() or any(not (rows[k] == n).all() for k, n in _LENGTHS.items()):
        raise CopyFormatError("unexpected row layout in the binary COPY stream")
    return rows


def position_table(ids: IntArray) -> IntArray | None:
    """Customer id -> position in ``ids`` (-1: not analysed), when the ids are dense enough for a table.

    A table look-up costs a tenth of the binary search over 100k ids; sparse ids (a table
    more than 8x the customers) use the search.
    """
    n = ids.size
    if n == 0 or int(ids[0]) < 0 or int(ids[-1]) > 8 * n + 2**20:
        return None
    table = np.full(int(ids[-1]) + 1, -1, dtype=np.int64)
    table[ids] = np.arange(n)
    return table


def count_bits(bits: NDArray[np.uint8], lo: int, hi: int) -> IntArray:
    """Set bits lo..hi (inclusive, little-endian within each byte) of each row: whole bytes by table, edges masked."""
    out = np.zeros(bits.shape[0], dtype=np.int64)
    if hi < lo:
        return out
    lo_byte, hi_byte = lo >> 3, hi >> 3
    low_mask = (0xFF << (lo & 7)) & 0xFF
    high_mask = (1 << ((hi & 7) + 1)) - 1
    if lo_byte == hi_byte:
        return _POPCOUNT[bits[:, lo_byte] & (low_mask & high_mask)].astype(np.int64)
    out += _POPCOUNT[bits[:, lo_byte] & low_mask]
    out += _POPCOUNT[bits[:, hi_byte] & high_mask]
    if hi_byte > lo_byte + 1:
        out += _POPCOUNT[bits[:, lo_byte + 1:hi_byte]].sum(axis=1, dtype=np.int64)
    return out


class Reducer:
    """Folds decoded rows into per-customer statistics aligned with ``ids`` (sorted customer ids)."""

    def __init__(self, ids: IntArray, layout: Layout) -> None:
        self.ids, self.layout = ids, layout
        n = ids.size
        self.n = n
        self.day_bytes = -(-layout.span // 8)
        self.cat_bytes = -(-layout.n_categories // 8)
        self.days_bits = np.zeros(n * self.day_bytes, dtype=np.uint8)
        self.cat_bits = np.zeros(n * self.cat_bytes, dtype=np.uint8)
        self.first = np.full(n, _NONE, dtype=np.int64)
        self.gross_first = np.zeros(n)
        self.last = np.full(n, -_NONE, dtype=np.int64)
        self.w_last = np.full(n, -_NONE, dtype=np.int64)
        self.counts = {k: np.zeros(n, dtype=np.int64) for k in ("entries", "w_entries")}
        self.sums = {k: np.zeros(n) for k in ("gross", "net", "net_last", "net_prev", "w_net")}
        self.stray = 0  # purchases outside the layout (before first_day, or a category not in the dictionary)
        self._dense = position_table(ids)

    def add(self, rows: NDArray[np.void]) -> None:
        lay, n = self.layout, self.n
        customer = rows["customer"].astype(np.int64)
        if self._dense is not None:
            inside_table = (customer >= 0) & (customer < self._dense.size)
            pos = np.where(inside_table, self._dense[np.where(inside_table, customer, 0)], -1)
            keep = pos >= 0
        else:
            pos = np.searchsorted(self.ids, customer)
            pos = np.where(pos < n, pos, 0)
            keep = (self.ids[pos] == customer) if n else np.zeros(customer.size, dtype=bool)
        pos = pos[keep]
        day = rows["at"][keep].astype(np.int64) // _US_PER_DAY + _Y2K_DAY
        amount = rows["amount"][keep].astype(np.float64)
        flags = rows["flags"][keep].astype(np.int64)
        signed = np.where(flags & NETTING, -amount, amount)
        purchase = ((flags & REVENUE) != 0) & (amount > 0)
        inside = day <= lay.cut_day
        bought = purchase & inside

        def count(key: str, mask: NDArray[np.bool_]) -> None:
            self.counts[key] += np.bincount(pos[mask], minlength=n)

        def total(key: str, mask: NDArray[np.bool_] | None, values: FloatArray) -> None:
            if mask is None:
                self.sums[key] += np.bincount(pos, weights=values, minlength=n)
            else:
                self.sums[key] += np.bincount(pos[mask], weights=values[mask], minlength=n)

        count("entries", bought)
        total("gross", bought, amount)
        total("net", inside if lay.holdout else None, signed)
        last_w = inside & (day > lay.cut_day - lay.trend_days)
        prev_w = (day <= lay.cut_day - lay.trend_days) & (day > lay.cut_day - 2 * lay.trend_days)
        total("net_last", last_w, signed)
        total("net_prev", prev_w, signed)
        if lay.window_lo_day is not None:
            in_window = inside & (day >= lay.window_lo_day)
            count("w_entries", purchase & in_window)
            total("w_net", in_window, signed)
            np.maximum.at(self.w_last, pos[purchase & in_window], day[purchase & in_window])

        p, d, a = pos[bought], day[bought], amount[bought]
        np.maximum.at(self.last, p, d)
        # the first purchase day and the spend on it: this chunk's, merged with the running ones
        chunk_first = np.full(n, _NONE, dtype=np.int64)
        np.minimum.at(chunk_first, p, d)
        on_first = d == chunk_first[p]
        chunk_gross = np.bincount(p[on_first], weights=a[on_first], minlength=n)
        first = np.minimum(self.first, chunk_first)
        self.gross_first = (np.where(self.first == first, self.gross_first, 0.0)
                            + np.where(chunk_first == first, chunk_gross, 0.0))
        self.first = first

        # distinct days: one bit per purchase day (the holdout's too), from the data's first day
        offset = day[purchase] - lay.first_day
        ok = offset >= 0
        self.stray += int((~ok).sum())
        bit_pos, offset = pos[purchase][ok], offset[ok]
        np.bitwise_or.at(self.days_bits, bit_pos * self.day_bytes + (offset >> 3),
                         np.left_shift(1, offset & 7).astype(np.uint8))
        # distinct categories of the calibration purchases
        has_cat = bought & ((flags & HAS_CATEGORY) != 0)
        cat = (flags[has_cat] >> CATEGORY_SHIFT) - 1
        self.stray += int((cat < 0).sum())
        if self.cat_bytes:
            ok_cat = cat >= 0
            cat, cat_pos = cat[ok_cat], pos[has_cat][ok_cat]
            np.bitwise_or.at(self.cat_bits, cat_pos * self.cat_bytes + (cat >> 3), np.left_shift(1, cat & 7).astype(np.uint8))

    def merge(self, other: Reducer) -> None:
        """Fold in a reducer of the same layout that read other rows (another reader's share)."""
        for key, values in other.counts.items():
            self.counts[key] += values
        for key, sums in other.sums.items():
            self.sums[key] += sums
        np.maximum(self.last, other.last, out=self.last)
        np.maximum(self.w_last, other.w_last, out=self.w_last)
        first = np.minimum(self.first, other.first)
        self.gross_first = (np.where(self.first == first, self.gross_first, 0.0)
                            + np.where(other.first == first, other.gross_first, 0.0))
        self.first = first
        np.bitwise_or(self.days_bits, other.days_bits, out=self.days_bits)
        np.bitwise_or(self.cat_bits, other.cat_bits, out=self.cat_bits)
        self.stray += other.stray

    def result(self) -> dict[str, FloatArray]:
        """Full-length columns: NaN where a customer has no such value (as the SQL passes' NULLs)."""
        lay, n = self.layout, self.n

        def day_or_nan(values: IntArray) -> FloatArray:
            out = values.astype(np.float64)
            out[np.abs(values) == _NONE] = np.nan
            return out

        ranges = {  # inclusive day-offset ranges of the distinct-day counts
            "days": (0, lay.cut_day - lay.first_day),
            "days_last": (lay.cut_day - lay.trend_days + 1 - lay.first_day, lay.cut_day - lay.first_day),
            "days_prev": (lay.cut_day - 2 * lay.trend_days + 1 - lay.first_day, lay.cut_day - lay.trend_days - lay.first_day),
            "holdout_days": (lay.cut_day + 1 - lay.first_day, lay.end_day - lay.first_day),
        }
        counts = {k: np.zeros(n, dtype=np.int64) for k in ranges}
        categories = np.zeros(n, dtype=np.int64)
        days, cats = self.days_bits.reshape(n, self.day_bytes), self.cat_bits.reshape(n, self.cat_bytes)
        for lo_row in range(0, n, _COUNT_BLOCK):
            rows = slice(lo_row, lo_row + _COUNT_BLOCK)
            for key, (lo, hi) in ranges.items():
                counts[key][rows] = count_bits(days[rows], max(lo, 0), min(hi, lay.span - 1))
            categories[rows] = count_bits(cats[rows], 0, lay.n_categories - 1)
        out: dict[str, FloatArray] = {
            "first": day_or_nan(self.first), "last": day_or_nan(self.last),
            "entries": self.counts["entries"].astype(np.float64), "categories": categories.astype(np.float64),
            "gross_first": self.gross_first,
            **{k: v.astype(np.float64) for k, v in counts.items()},
            **self.sums,
        }
        if lay.window_lo_day is not None:
            out["w_last"] = day_or_nan(self.w_last)
            out["w_entries"] = self.counts["w_entries"].astype(np.float64)
        return out


__all__ = [
    "BLOCK_BYTES", "ROW", "CopyFormatError", "CopyStopped", "Layout", "Reducer", "bitmap_bytes", "blocks", "copy_statement",
    "count_bits", "decode", "fold", "position_table",
]
