"""Storing a run's snapshot rows: all of them for a new date, only the changed ones when a date is re-run.

A new run writes every row (binary ``COPY`` on PostgreSQL, one prepared ``executemany`` on
SQLite; :mod:`snapshot_io` builds them a column at a time). Re-running a date that is stored
already keeps that run (same id) and its rows, and rewrites only the rows whose values changed:
the run keeps one 64-bit digest per row (:func:`row_digests`, in ``value_analysis_runs.row_digests``),
so the rows that changed are found in NumPy without reading the stored rows back. A re-run on
data that did not change writes no snapshot row at all.

The digests are a cache, never the truth: a run without them (stored before they existed, or
after a customer merge re-pointed rows) or whose row count does not match them is rewritten whole.
A digest covers every value as the run computed it, so two rows with the same digest store the
same values (a 64-bit collision between a row and its own earlier version is the only way to
keep a stale row: about one in 1.8e19 per changed row).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from crm_value_analysis import snapshot_io
from crm_value_analysis.models import CustomerValue, ValueRun

#: rows per binary COPY chunk / executemany batch
INSERT_CHUNK = 10_000
#: customer ids per DELETE statement (bind parameters stay under SQLite's limit)
DELETE_CHUNK = 30_000

#: binary COPY type of each snapshot column type (as compiled for the engine)
_COPY_TYPES = {"INTEGER": "int4", "SMALLINT": "int2", "FLOAT": "float8", "BOOLEAN": "bool"}
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
_NAN = np.uint64(0x7FF8000000000001)  # every NaN digests alike (NULL)
_NONE_LABEL = np.uint64(0x9E3779B97F4A7C15)
_NONE = np.array(None, dtype=object)


def column_types(session: Session, names: list[str]) -> list[str]:
    """The COPY type of each snapshot column, read from the model (fails loudly on a new type)."""
    dialect = session.get_bind().dialect
    out = []
    for name in names:
        compiled = CustomerValue.__table__.c[name].type.compile(dialect=dialect)
        kind = "varchar" if compiled.startswith("VARCHAR") else _COPY_TYPES.get(compiled)
        if kind is None:
            raise TypeError(f"no binary COPY type for {CustomerValue.__tablename__}.{name} ({compiled})")
        out.append(kind)
    return out


def insert_rows(session: Session, columns: dict[str, NDArray[Any]], n: int) -> None:
    """The snapshot rows: binary ``COPY`` on PostgreSQL, one prepared ``executemany`` on SQLite.

    Both go through the session's DBAPI connection, so they belong to the run's transaction.
    The COPY stream is built in NumPy (:mod:`snapshot_io`): the driver only forwards bytes, and
    PostgreSQL parses no text floats.
    """
    if n == 0:
        return
    table = CustomerValue.__table__.name
    names = list(columns)
    typed = list(zip(column_types(session, names), (columns[k][:n] for k in names), strict=True))
    raw = session.connection().connection.dbapi_connection
    assert raw is not None  # a live session connection
    cur = raw.cursor()
    try:
        if session.get_bind().dialect.name == "postgresql":
            with cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)") as copy:
                for block in snapshot_io.binary_chunks(typed, INSERT_CHUNK):
                    copy.write(block)
        else:
            marks = ", ".join("?" * len(names))
            cur.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})",
                            snapshot_io.python_rows(typed, INSERT_CHUNK))  # type: ignore[arg-type]  # sqlite3 takes any iterable
    finally:
        cur.close()


# -- digests ------------------------------------------------------------------------------------

def _mix(h: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64's finaliser, a whole array at once (uint64 arithmetic wraps)."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _label_words(values: NDArray[Any]) -> NDArray[np.uint64]:
    """Text (or None) per row as a 64-bit word: the code points folded in, a column of them at a time.

    Positions past a label's end (NUL padding of NumPy's fixed-width strings) are skipped, so a
    label folds to the same word whatever the array's width.
    """
    none = np.equal(values, _NONE) if values.dtype.kind == "O" else np.zeros(values.shape[0], dtype=bool)
    labels = np.ascontiguousarray(np.where(none, "", values).astype(np.str_) if none.any() else values.astype(np.str_))
    n, width = labels.shape[0], labels.dtype.itemsize // 4
    out = np.full(n, 0x6A09E667F3BCC908, dtype=np.uint64)
    points = labels.view(np.uint32).reshape(n, width) if width and n else np.zeros((n, 0), dtype=np.uint32)
    for k in range(width):
        cp = points[:, k].astype(np.uint64)
        out = np.where(cp != 0, _mix(out ^ (cp + np.uint64(k << 32))), out)
    out[none] = _NONE_LABEL
    return out


def _words(values: NDArray[Any]) -> NDArray[np.uint64]:
    """One 64-bit word per row that equals another row's exactly when the stored value would."""
    kind = values.dtype.kind
    if kind == "f":
        f = np.ascontiguousarray(values, dtype=np.float64)
        return np.where(np.isnan(f), _NAN, f.view(np.uint64))
    if kind in "iub":
        return np.ascontiguousarray(values.astype(np.int64)).view(np.uint64)
    return _label_words(values)


def row_digests(columns: dict[str, NDArray[Any]], n: int, skip: tuple[str, ...] = ("run_id",)) -> NDArray[np.uint64]:
    """One 64-bit digest per row over every column but ``skip`` (in a fixed column order)."""
    h = np.full(n, 0x243F6A8885A308D3, dtype=np.uint64)
    for j, name in enumerate(sorted(columns)):
        if name in skip:
            continue
        h = _mix(h ^ (_words(columns[name][:n]) + np.uint64(j + 1)))
    return h


def pack(ids: NDArray[np.int64], digests: NDArray[np.uint64]) -> bytes:
    """Customer ids and their digests as bytes (little-endian int64 ids, then uint64 digests)."""
    return ids.astype("<i8").tobytes() + digests.astype("<u8").tobytes()


def unpack(blob: bytes | None) -> tuple[NDArray[np.int64], NDArray[np.uint64]] | None:
    if not blob or len(blob) % 16:
        return None
    half = len(blob) // 2
    return np.frombuffer(blob[:half], dtype="<i8").astype(np.int64), np.frombuffer(blob[half:], dtype="<u8").astype(np.uint64)


# -- storing --------------------------------------------------------------------------------------

def _delete_customers(session: Session, run_id: int, customers: NDArray[np.int64]) -> None:
    for lo in range(0, customers.size, DELETE_CHUNK):
        chunk = [int(c) for c in customers[lo:lo + DELETE_CHUNK]]
        session.execute(delete(CustomerValue).where(CustomerValue.run_id == run_id, CustomerValue.customer_id.in_(chunk)),
                        execution_options={"synchronize_session": False})


def _changed(session: Session, run: ValueRun, ids: NDArray[np.int64],
             digests: NDArray[np.uint64]) -> tuple[NDArray[np.bool_], NDArray[np.int64]] | None:
    """Which new rows differ from the stored ones, and the stored customers that are gone; None: rewrite all."""
    stored = unpack(run.row_digests)
    if stored is None:
        return None
    old_ids, old_digests = stored
    rows = session.scalar(select(func.count()).select_from(CustomerValue).where(CustomerValue.run_id == run.id))
    if rows != old_ids.size or (old_ids.size > 1 and not (np.diff(old_ids) > 0).all()):
        return None  # rows written or removed behind the run's back: do not trust the digests
    pos = np.searchsorted(old_ids, ids)
    at = np.minimum(pos, max(old_ids.size - 1, 0))
    same = (pos < old_ids.size) & (old_ids[at] == ids) & (old_digests[at] == digests) if old_ids.size else \
        np.zeros(ids.size, dtype=bool)
    back = np.searchsorted(ids, old_ids)
    back_at = np.minimum(back, max(ids.size - 1, 0))
    kept = (back < ids.size) & (ids[back_at] == old_ids) if ids.size else np.zeros(old_ids.size, dtype=bool)
    return ~same, old_ids[~kept]


def store(session: Session, run: ValueRun, columns: dict[str, NDArray[Any]], n: int, *, replacing: bool) -> int:
    """Write the run's rows; a replaced run (same date) rewrites only its changed rows. Returns rows written."""
    ids = np.asarray(columns["customer_id"][:n], dtype=np.int64)
    digests = row_digests(columns, n)
    diff = _changed(session, run, ids, digests) if replacing else None
    if diff is not None and int(diff[0].sum()) + diff[1].size > n // 2:
        diff = None  # most rows changed: one DELETE of the run's rows and one COPY beat row-wise deletes
    if replacing and diff is None:
        session.execute(delete(CustomerValue).where(CustomerValue.run_id == run.id),
                        execution_options={"synchronize_session": False})
    if diff is None:
        insert_rows(session, columns, n)
        written = n
    else:
        changed, gone = diff
        _delete_customers(session, run.id, np.concatenate([ids[changed], gone]))
        at = np.flatnonzero(changed)
        insert_rows(session, {k: v[:n][at] for k, v in columns.items()}, at.size)
        written = int(at.size)
    run.row_digests = pack(ids, digests)
    return written


__all__ = ["DELETE_CHUNK", "INSERT_CHUNK", "column_types", "insert_rows", "pack", "row_digests", "store", "unpack"]
