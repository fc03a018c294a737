"""Writing the snapshot rows at the speed of the driver: whole columns in, no per-value Python.

PostgreSQL: the binary ``COPY`` stream is built in NumPy (a column at a time, scattered into one
byte buffer per chunk of rows) and handed to the driver as bytes, so the only per-row work left
is the server's. SQLite: one prepared ``executemany`` of row tuples whose values were converted
a column at a time (``astype(object)``, NULLs set by mask) instead of value by value.
"""
from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: PostgreSQL binary COPY: signature, flags, header extension length; and the trailer
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)

#: big-endian layout of each fixed-width binary type
_WIDE = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float8": ">f8", "bool": "u1"}
#: SQLite: the Python type of a NULL-able column that NumPy carries as float (NaN = NULL)
_NULLABLE_INT = frozenset({"int2", "int4", "int8"})


_NONE = np.array(None, dtype=object)


def _nulls(values: NDArray[Any]) -> NDArray[np.bool_]:
    """NULL mask: NaN in float columns, ``None`` in object columns, nothing elsewhere."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "O":
        return np.equal(values, _NONE)
    return np.zeros(values.shape[0], dtype=bool)


def _fixed(kind: str, values: NDArray[Any], null: NDArray[np.bool_]) -> NDArray[np.uint8]:
    """A fixed-width column as an (n, 4 + width) byte matrix: big-endian length, then the value."""
    clean = np.where(null, 0, values) if null.any() else values
    data = np.ascontiguousarray(clean.astype(_WIDE[kind]))
    n, width = values.shape[0], data.dtype.itemsize
    out = np.empty((n, 4 + width), dtype=np.uint8)
    out[:, :4] = np.frombuffer(struct.pack(">i", width), dtype=np.uint8)
    out[:, 4:] = data.view(np.uint8).reshape(n, width)
    return out


def _text(values: NDArray[Any], null: NDArray[np.bool_]) -> tuple[list[bytes], NDArray[np.intp]]:
    """A text column as its distinct labels (each as COPY bytes: length, then UTF-8) and each row's
    index into them; labels repeat, so encoding the few distinct ones is what makes this cheap."""
    labels = np.where(null, "", values).astype(np.str_) if values.dtype.kind == "O" else values.astype(np.str_)
    uniques, inverse = np.unique(labels, return_inverse=True)
    encoded = [str(u).encode("utf-8") for u in uniques.tolist()]
    return [struct.pack(">i", len(e)) + e for e in encoded], inverse.reshape(-1)


def binary_copy_rows(columns: list[tuple[str, NDArray[Any]]]) -> bytes:
    """The tuples of a binary ``COPY`` (no header, no trailer) for equal-length ``(type, values)`` columns.

    Each row is ``int16`` field count, then per field ``int32`` length (-1 = NULL) and the bytes.
    The buffer starts as all ``0xFF`` bytes, so a NULL (length -1) needs no writing; each column's
    non-NULL fields (length and value) are then scattered to their rows' offsets in one step (text:
    one step per distinct label, which are few).
    """
    n = columns[0][1].shape[0] if columns else 0
    if n == 0:
        return b""
    fields: list[tuple[Any, NDArray[np.int64]]] = []
    seg = np.full(n, 2, dtype=np.int64)  # the field count
    for kind, values in columns:
        null = _nulls(values)
        if kind in _WIDE:
            data: Any = _fixed(kind, values, null)
            lengths = np.full(n, data.shape[1] - 4, dtype=np.int64)
        elif kind in ("varchar", "text"):
            data = _text(values, null)
            lengths = np.array([len(u) - 4 for u in data[0]], dtype=np.int64)[data[1]]
        else:
            raise TypeError(f"no binary COPY encoding for type {kind}")
        lengths[null] = -1
        fields.append((data, lengths))
        seg += 4 + np.maximum(lengths, 0)
    ends = np.cumsum(seg)
    buf = np.full(int(ends[-1]), 0xFF, dtype=np.uint8)
    pos = ends - seg
    _put(buf, pos, np.full(n, len(columns), dtype=">i2").view(np.uint8).reshape(n, 2))
    pos = pos + 2
    for data, lengths in fields:
        if isinstance(data, tuple):  # text: each distinct label (length + bytes) to the rows that hold it
            labels, inverse = data
            for j, raw in enumerate(labels):
                hit = (inverse == j) & (lengths >= 0)
                if hit.any():
                    _put(buf, pos[hit], np.frombuffer(raw, dtype=np.uint8)[None, :])
        else:
            keep = lengths >= 0
            _put(buf, pos[keep], data[keep])
        pos = pos + 4 + np.maximum(lengths, 0)
    return buf.tobytes()


def _put(buf: NDArray[np.uint8], at: NDArray[np.int64], data: NDArray[np.uint8]) -> None:
    buf[at[:, None] + np.arange(data.shape[1])] = data


def python_column(kind: str, values: NDArray[Any]) -> list[Any]:
    """One column as Python values for a DBAPI ``executemany``; NaN / ``None`` become NULL.

    Floats carry the NULL-able ints and booleans, so they are cast back by ``kind``.
    """
    null = _nulls(values)
    if kind in _NULLABLE_INT:
        out = np.where(null, 0, values).astype(np.int64).astype(object)
    elif kind == "bool":
        out = np.where(null, 0, values).astype(bool).astype(object)
    else:
        out = values.astype(object)
    if null.any():
        out[null] = None
    return out.tolist()


def python_rows(columns: list[tuple[str, NDArray[Any]]], chunk: int) -> Iterator[tuple[Any, ...]]:
    """Row tuples, converted ``chunk`` rows at a time (bounded memory)."""
    n = columns[0][1].shape[0] if columns else 0
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        yield from zip(*[python_column(kind, values[sl]) for kind, values in columns], strict=True)


def binary_chunks(columns: list[tuple[str, NDArray[Any]]], chunk: int) -> Iterator[bytes]:
    """The whole binary ``COPY`` stream (header, tuples ``chunk`` rows at a time, trailer)."""
    n = columns[0][1].shape[0] if columns else 0
    yield COPY_HEADER
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        yield binary_copy_rows([(kind, values[sl]) for kind, values in columns])
    yield COPY_TRAILER


__all__ = ["COPY_HEADER", "COPY_TRAILER", "binary_chunks", "binary_copy_rows", "python_column", "python_rows"]
