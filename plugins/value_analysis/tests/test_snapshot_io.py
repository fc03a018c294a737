"""The snapshot writer's column-at-a-time encodings against a value-by-value reference.

``binary_copy_rows`` must produce exactly the bytes PostgreSQL's binary COPY format defines (a
row: int16 field count; a field: int32 length, -1 for NULL, then big-endian bytes), for any mix
of NULLs and text; ``python_rows`` the same values as Python objects, NULL as None.
"""
from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest
from crm_value_analysis import snapshot_io
from hypothesis import given, settings
from hypothesis import strategies as st

FMT = {"int2": ">h", "int4": ">i", "int8": ">q", "float8": ">d", "bool": ">?"}
LABELS = ["stability", "decline", "été", "", "a" * 40, "churned"]


def reference(columns: list[tuple[str, list[Any]]]) -> bytes:
    """Value by value, with struct: the format as documented."""
    n = len(columns[0][1])
    out = bytearray()
    for i in range(n):
        out += struct.pack(">h", len(columns))
        for kind, values in columns:
            v = values[i]
            if v is None:
                out += struct.pack(">i", -1)
            elif kind == "varchar":
                raw = v.encode("utf-8")
                out += struct.pack(">i", len(raw)) + raw
            else:
                raw = struct.pack(FMT[kind], v)
                out += struct.pack(">i", len(raw)) + raw
    return bytes(out)


def as_numpy(kind: str, values: list[Any], nullable: bool) -> np.ndarray:
    """How the run carries a column: NULL-able numbers as float with NaN, NULL-able text as object."""
    if kind == "varchar":
        return np.array(values, dtype=object) if nullable else np.array(values, dtype=np.str_)
    if nullable:
        return np.array([np.nan if v is None else float(v) for v in values])
    return np.array(values, dtype={"bool": bool, "float8": np.float64}.get(kind, np.int64))


@st.composite
def snapshots(draw: st.DrawFn) -> tuple[list[str], list[list[Any]], list[bool]]:
    n = draw(st.integers(1, 30))
    kinds = draw(st.lists(st.sampled_from(["int2", "int4", "float8", "bool", "varchar"]), min_size=1, max_size=8))
    cols, nullable = [], []
    for kind in kinds:
        value = {"int2": st.integers(-32768, 32767), "int4": st.integers(-(2**31), 2**31 - 1),
                 "float8": st.floats(allow_nan=False, allow_infinity=True, width=64), "bool": st.booleans(),
                 "varchar": st.sampled_from(LABELS)}[kind]
        can_null = draw(st.booleans())
        cols.append(draw(st.lists(st.none() | value if can_null else value, min_size=n, max_size=n)))
        nullable.append(can_null)
    return kinds, cols, nullable


@settings(max_examples=150, deadline=None)
@given(snapshots())
def test_binary_copy_rows_match_the_format(data: tuple[list[str], list[list[Any]], list[bool]]) -> None:
    kinds, cols, nullable = data
    typed = [(k, as_numpy(k, v, nb)) for k, v, nb in zip(kinds, cols, nullable, strict=True)]
    assert snapshot_io.binary_copy_rows(typed) == reference(list(zip(kinds, cols, strict=True)))
    # chunked, with the header and trailer around
    stream = b"".join(snapshot_io.binary_chunks(typed, chunk=7))
    body = reference(list(zip(kinds, cols, strict=True)))
    assert stream == snapshot_io.COPY_HEADER + body + snapshot_io.COPY_TRAILER


@settings(max_examples=150, deadline=None)
@given(snapshots())
def test_python_rows_give_the_values_and_none(data: tuple[list[str], list[list[Any]], list[bool]]) -> None:
    kinds, cols, nullable = data
    typed = [(k, as_numpy(k, v, nb)) for k, v, nb in zip(kinds, cols, nullable, strict=True)]
    rows = list(snapshot_io.python_rows(typed, chunk=4))
    assert rows == [tuple(c[i] for c in cols) for i in range(len(cols[0]))]
    for row in rows:
        for kind, v in zip(kinds, row, strict=True):
            if v is not None:
                expected = {"int2": int, "int4": int, "float8": float, "bool": bool, "varchar": str}[kind]
                assert type(v) is expected, (kind, v)
                assert not (isinstance(v, float) and math.isnan(v))


def test_a_type_without_an_encoding_is_refused() -> None:
    with pytest.raises(TypeError, match="no binary COPY encoding for type numeric"):
        snapshot_io.binary_copy_rows([("int4", np.array([1])), ("numeric", np.array([1.5]))])
