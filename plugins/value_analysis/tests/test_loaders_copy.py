"""The PostgreSQL COPY decoder and the fold of the one-pass statistics: any block boundaries, any
chunking, any readers give the same numbers (split from test_loaders.py)."""
from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from crm_value_analysis import copy_pass, loaders
from crm_value_analysis.testing import Base
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore import CRM


def _copy_bytes(rows: list[tuple[int, int, float, int]]) -> bytes:
    """A binary COPY stream in the layout copy_pass reads."""
    import struct

    out = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
    for c, t, a, f in rows:
        out += struct.pack(">hiiiqidii", 4, 4, c, 8, t, 8, a, 4, f)
    return out + b"\xff\xff"


@pytest.mark.parametrize("block", [1, 7, 41, 10_000])
def test_copy_decode_reads_rows_across_any_block_boundaries(block: int) -> None:
    rows = [(i, i * 86_400_000_000, i + 0.5, i % 3) for i in range(-3, 40)]
    data = _copy_bytes(rows)
    got = np.concatenate(list(copy_pass.decode(data[k:k + block] for k in range(0, len(data), block))))
    assert got["customer"].tolist() == [r[0] for r in rows]
    assert got["at"].tolist() == [r[1] for r in rows]
    assert got["amount"].tolist() == [r[2] for r in rows]


@pytest.mark.parametrize("damage, message", [
    (lambda b: b"PGCOPY\n\xff\r\n\x01" + b[11:], "not a binary COPY stream"),
    (lambda b: b[:-5], "ended mid-row"),
    (lambda b: b[:19], "ended mid-row"),  # no trailer
    (lambda b: b"", "ended mid-row"),
    (lambda b: b[:19] + b[19:].replace(b"\x00\x00\x00\x08", b"\xff\xff\xff\xff", 1), "unexpected row layout"),  # a NULL
])
def test_copy_decode_refuses_a_stream_it_does_not_understand(damage: object, message: str) -> None:
    data = damage(_copy_bytes([(1, 0, 1.0, 1), (2, 0, 2.0, 1)]))  # type: ignore[operator]
    with pytest.raises(copy_pass.CopyFormatError, match=message):
        list(copy_pass.decode([data]))


@pytest.mark.engine("postgresql")
def test_copy_blocks_errors_and_early_stops_leave_the_connection_in_step(vcrm: CRM, base: Base) -> None:
    """A failing COPY raises psycopg's own error class; a consumer that stops while the server is
    still sending cancels and drains it (the transaction is then aborted: it must be rolled back,
    and the connection works after that); a statement that is not a COPY is refused."""
    import psycopg
    from psycopg import sql

    base.buys(base.customer("A"), list(range(1, 60)), "10")

    class Stop(Exception):
        pass

    with pytest.raises(Stop), vcrm.unit_of_work() as uow:
        raw = uow.session.connection().connection.dbapi_connection
        # 25 million rows that start at once (a single generate_series would be materialised first)
        stream = copy_pass.blocks(raw, sql.SQL("COPY (SELECT a.x FROM generate_series(1, 5000) a(x), "
                                               "generate_series(1, 5000) b(y)) TO STDOUT"), 1024)
        assert next(stream)
        started = time.perf_counter()
        stream.close()  # stops early: cancelled long before the 25 million rows
        assert time.perf_counter() - started < 5
        assert raw.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        raise Stop
    with vcrm.unit_of_work() as uow:
        raw = uow.session.connection().connection.dbapi_connection
        with pytest.raises(copy_pass.CopyFormatError, match="not a COPY"):
            next(copy_pass.blocks(raw, sql.SQL("SELECT 1"), 16))
        assert raw.execute("SELECT count(*) FROM transactions").fetchone()[0] == 59
    with pytest.raises(psycopg.errors.DivisionByZero), vcrm.unit_of_work() as uow:
        raw = uow.session.connection().connection.dbapi_connection
        list(copy_pass.blocks(raw, sql.SQL("COPY (SELECT 1 / (id - id) FROM transactions) TO STDOUT (FORMAT binary)"), 16))
    with vcrm.unit_of_work() as uow:  # the pool's connection works after the rollback
        assert loaders.customer_ids(uow.session).size == 1


# -- the NumPy fold: any chunking and any split between readers give the same numbers ----------

@st.composite
def _rows(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 6))
    ids = np.array(sorted(draw(st.sets(st.integers(1, 50), min_size=n, max_size=n))), dtype=np.int64)
    m = draw(st.integers(0, 60))
    rows = np.zeros(m, dtype=copy_pass.ROW)
    for name, width in (("len_customer", 4), ("len_at", 8), ("len_amount", 8), ("len_flags", 4)):
        rows[name] = width
    rows["nfields"] = 4
    rows["customer"] = draw(st.lists(st.integers(0, 52), min_size=m, max_size=m))  # some not analysed
    # microseconds since 2000: days -11000..+400 around it, at any time of day (also before 1970)
    rows["at"] = draw(st.lists(st.integers(-11_000 * 86_400_000_000, 400 * 86_400_000_000), min_size=m, max_size=m))
    rows["amount"] = draw(st.lists(st.sampled_from([-5.0, 0.0, 0.5, 10.0, 99.99]), min_size=m, max_size=m))
    rows["flags"] = draw(st.lists(st.sampled_from([1, 2, 3, 0, 1 + 4 + 8, 1 + 4 + 16, 1 + 4 + 24, 2 + 4 + 8]),
                                  min_size=m, max_size=m))
    return ids, rows


@settings(max_examples=150, deadline=None)
@given(data=_rows(), cuts=st.lists(st.integers(0, 60), max_size=4), window=st.sampled_from([None, 30]))
def test_the_fold_does_not_depend_on_chunks_or_readers(data: tuple[np.ndarray, np.ndarray], cuts: list[int],
                                                       window: int | None) -> None:
    ids, rows = data
    day = rows["at"] // 86_400_000_000 + 10_957
    layout = copy_pass.Layout(first_day=int(day.min(initial=0)) - 3, cut_day=10_957 + 200, end_day=10_957 + 400,
                              trend_days=30, window_lo_day=None if window is None else 10_957 + 200 - window,
                              holdout=True, n_categories=3)
    whole = copy_pass.Reducer(ids, layout)
    whole.add(rows)
    bounds = [0, *sorted(set(cuts)), len(rows)]
    readers = [copy_pass.Reducer(ids, layout), copy_pass.Reducer(ids, layout)]
    for j, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        readers[j % 2].add(rows[lo:hi])
    readers[0].merge(readers[1])
    a, b = whole.result(), readers[0].result()
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-12, atol=1e-9, err_msg=key)
    # against a direct computation for two of them
    analysed = np.isin(rows["customer"], ids)
    bought = analysed & ((rows["flags"] & 1) != 0) & (rows["amount"] > 0) & (day <= layout.cut_day)
    for j, c in enumerate(ids):
        mine = bought & (rows["customer"] == c)
        assert a["days"][j] == len(set(day[mine].tolist()))
        assert a["entries"][j] == mine.sum()


@settings(max_examples=200, deadline=None)
@given(bits=st.lists(st.integers(0, 255), min_size=1, max_size=12), lo=st.integers(0, 100), width=st.integers(-3, 100))
def test_count_bits_counts_exactly_the_range(bits: list[int], lo: int, width: int) -> None:
    arr = np.array([bits, bits[::-1]], dtype=np.uint8)
    hi = min(lo + width, 8 * len(bits) - 1)
    unpacked = np.unpackbits(arr, axis=1, bitorder="little").astype(np.int64)
    want = unpacked[:, lo:hi + 1].sum(axis=1) if hi >= lo else np.zeros(2, dtype=np.int64)
    assert copy_pass.count_bits(arr, lo, hi).tolist() == want.tolist()
