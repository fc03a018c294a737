"""SQL -> NumPy loaders, on SQLite and PostgreSQL: day numbers, aggregates, the chunked day series."""
from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from crm_value_analysis import clv_models, copy_pass, loaders
from crm_value_analysis.loaders import Period, day_number, day_of
from crm_value_analysis.schemas import ValueSettings
from crm_value_analysis.testing import Base, at, bulk_load, d
from sqlalchemy import func, select, update

from crmcore import CRM
from crmcore.models import Customer, Transaction
from crmcore.schemas import TransactionCreate


def test_day_number_matches_python_on_both_engines(vcrm: CRM, base: Base) -> None:
    c = base.customer("Clock")
    stamps = [
        dt.datetime(1969, 12, 31, 23, 0, tzinfo=dt.UTC),  # before the epoch: floor, not truncation
        dt.datetime(1970, 1, 1, 0, 0, tzinfo=dt.UTC),
        dt.datetime(2024, 2, 29, 0, 0, 0, tzinfo=dt.UTC),
        dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(2024, 3, 1, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),  # 23:30 UTC the day before
    ]
    for i, ts in enumerate(stamps):
        base.buy(c, ts.date(), "10")
        with vcrm.unit_of_work() as uow:
            uow.session.execute(update(Transaction).where(Transaction.reference == f"r{i + 1}").values(occurred_at=ts))
    with vcrm.unit_of_work() as uow:
        got = uow.session.execute(select(day_number(Transaction.occurred_at)).order_by(Transaction.id)).scalars().all()
    want = [(ts.astimezone(dt.UTC).date() - dt.date(1970, 1, 1)).days for ts in stamps]
    assert got == want


def test_value_aggregates_net_credit_notes_and_respect_window_and_kinds(vcrm: CRM, base: Base) -> None:
    a, b, c, none = (base.customer(n) for n in ("A", "B", "C", "None"))
    base.buys(a, [10, 20, 30], "100")
    base.buy(a, 25, "50", kind="credit_note")
    base.buy(a, 26, "70", kind="payment")  # payments are not revenue
    base.buy(b, 5, "40")
    base.buy(b, 400, "40")  # after as_of
    base.buy(c, 15, "30", kind="credit_note")  # only a refund
    s = ValueSettings()
    with vcrm.unit_of_work() as uow:
        ids = loaders.customer_ids(uow.session)
        agg = loaders.value_aggregates(uow.session, ids, s, Period.up_to(d(30)))
        windowed = loaders.value_aggregates(uow.session, ids, s, Period.up_to(d(30), window_days=11))
    assert ids.tolist() == [a, b, c, none]
    assert agg.frequency.tolist() == [3, 1, 0, 0]
    assert agg.monetary.tolist() == [250.0, 40.0, -30.0, 0.0]
    assert agg.last_day[:2].tolist() == [day_of(d(30)), day_of(d(5))]
    assert np.isnan(agg.last_day[2:]).all()
    # window of 11 days ending on day 30 -> days 20..30
    assert windowed.frequency.tolist() == [2, 0, 0, 0]
    assert windowed.monetary.tolist() == [150.0, 0.0, 0.0, 0.0]  # the credit note of day 25 is inside


def test_aggregates_skip_archived_customers_and_other_currencies(vcrm: CRM, base: Base) -> None:
    a, gone = base.customer("A"), base.customer("Gone")
    base.buy(a, 1, "10")
    base.buy(gone, 1, "10")
    with vcrm.unit_of_work() as uow:
        uow.customers.archive(gone)
    with vcrm.unit_of_work() as uow:
        ids = loaders.customer_ids(uow.session)
        agg = loaders.value_aggregates(uow.session, ids, ValueSettings(currency="USD"), Period.up_to(d(5)))
    assert ids.tolist() == [a]
    assert agg.frequency.tolist() == [0]


@pytest.mark.parametrize("chunk_rows", [7, 100_000])
def test_purchase_history_matches_summary_from_purchases(vcrm: CRM, chunk_rows: int) -> None:
    """The streamed reduction equals the tested in-memory summary, across chunk boundaries."""
    rng = np.random.default_rng(3)
    n = 40
    ci = rng.integers(0, n - 5, 300)  # the last 5 customers never buy
    days = rng.integers(0, 200, 300)
    amounts = rng.uniform(1, 100, 300).round(2)
    ids = bulk_load(vcrm, ci, days, amounts, n)
    cut = d(150)
    with vcrm.unit_of_work() as uow:
        hist = loaders.purchase_history(uow.session, ids, ValueSettings(trend_days=30), cut, holdout_end=d(180),
                                        chunk_rows=chunk_rows)
    # reference: day-level log -> summary_from_purchases
    key = ci * 1000 + days
    uniq, inv = np.unique(key, return_inverse=True)
    day_amount = np.bincount(inv, weights=amounts)
    ref = clv_models.summary_from_purchases(uniq // 1000, (uniq % 1000).astype(float), n, 150.0,
                                            amounts=day_amount)
    assert (hist.purchase_days - 1).clip(0).tolist() == ref.frequency.tolist()
    mask = hist.has_purchase
    np.testing.assert_array_equal(mask, ref.has_purchase)
    cut_day = day_of(cut)
    np.testing.assert_allclose((hist.last_day - hist.first_day)[mask], ref.recency[mask])
    np.testing.assert_allclose((cut_day - hist.first_day)[mask], ref.T[mask])
    repeat = np.where(hist.purchase_days > 1, (hist.gross - hist.gross_first_day) / np.maximum(hist.purchase_days - 1, 1), 0)
    np.testing.assert_allclose(repeat, ref.monetary, atol=1e-6)
    assert hist.entries.sum() == ((days <= 150) & (ci < n)).sum()
    in_holdout = (days > 150) & (days <= 180)
    holdout_days = np.array([len(set(days[(ci == i) & in_holdout].tolist())) for i in range(n)])
    assert hist.holdout_days.tolist() == holdout_days.tolist()
    last_w = np.array([len(set(days[(ci == i) & (days > 120) & (days <= 150)].tolist())) for i in range(n)])
    assert hist.days_last.tolist() == last_w.tolist()


def test_category_and_satisfaction_means(vcrm: CRM, base: Base) -> None:
    a, b, c = base.customer("A"), base.customer("B"), base.customer("C")
    base.buy(a, 1, category="kitchens")
    base.buy(a, 2, category="bathrooms")
    base.buy(a, 3, category="kitchens")
    base.buy(b, 1)  # uncategorised
    base.rate(a, 1, 5)
    base.rate(a, 2, 2)
    base.rate(c, 50, 4)  # after the cut
    with vcrm.unit_of_work() as uow:
        ids = loaders.customer_ids(uow.session)
        cats = loaders.category_counts(uow.session, ids, ValueSettings(), d(10))
        sat = loaders.satisfaction_means(uow.session, ids, d(10))
    assert cats[0] == 2 and np.isnan(cats[1:]).all()
    assert sat[0] == pytest.approx(3.5) and np.isnan(sat[1:]).all()


def test_purchase_span(vcrm: CRM, base: Base) -> None:
    with vcrm.unit_of_work() as uow:
        assert loaders.purchase_span(uow.session, ValueSettings()) is None
    a = base.customer("A")
    base.buy(a, 3)
    base.buy(a, 9)
    base.buy(a, 20, kind="credit_note")
    with vcrm.unit_of_work() as uow:
        assert loaders.purchase_span(uow.session, ValueSettings()) == (d(3), d(9))
        assert uow.session.scalar(select(func.count()).select_from(Customer)) == 1


def test_time_binds_use_the_engine_format(vcrm: CRM, base: Base) -> None:
    """A purchase at 23:59 on the as-of day is inside; one at 00:00 the next day is not."""
    a = base.customer("A")
    base.buy(a, 10, hour=23)
    with vcrm.unit_of_work() as uow:
        uow.session.execute(update(Transaction).values(occurred_at=at(10, 23) + dt.timedelta(minutes=59, seconds=59)))
    base.buy(a, 11, hour=0)
    with vcrm.unit_of_work() as uow:
        ids = loaders.customer_ids(uow.session)
        agg = loaders.value_aggregates(uow.session, ids, ValueSettings(), Period.up_to(d(10)))
    assert agg.frequency.tolist() == [1]


@pytest.mark.engine("sqlite")
def test_sqlite_temp_store_is_restored_after_a_query(vcrm: CRM, base: Base) -> None:
    """Whole-table sorts go to a temporary file (bounded memory); the connection's setting comes back."""
    base.buy(base.customer("A"), 1, "10")
    with vcrm.unit_of_work() as uow:
        raw = uow.session.connection().connection.dbapi_connection
        raw.execute("PRAGMA temp_store = MEMORY")
        ids = loaders.customer_ids(uow.session)
        loaders.value_aggregates(uow.session, ids, ValueSettings(), Period.up_to(d(5)))
        loaders.purchase_history(uow.session, ids, ValueSettings(), d(5))
        assert raw.execute("PRAGMA temp_store").fetchone()[0] == 2


def _record_calls(monkeypatch: pytest.MonkeyPatch, calls: list[str], *names: str) -> None:
    """Append the name of each listed loaders function to ``calls`` when it is called (which pass ran)."""
    def recording(name: str) -> Any:
        original = getattr(loaders, name)

        def call(*args: Any, **kw: Any) -> Any:
            calls.append(name)
            return original(*args, **kw)
        return call
    for name in names:
        monkeypatch.setattr(loaders, name, recording(name))


def _stat_paths(*cases: tuple[int | None, bool, int, str]) -> list[Any]:
    """"copy" runs on both engines; a path named "sqlite-…" is SQLite's, every other one PostgreSQL's."""
    return [c if c[3] == "copy" else pytest.param(*c, marks=pytest.mark.engine("sqlite" if c[3].startswith("sqlite") else "postgresql"))
            for c in cases]


@pytest.mark.parametrize("window_days, holdout, trend_days, pg_path", _stat_paths(
    (None, False, 40, "copy"), (45, False, 40, "copy"), (None, True, 40, "copy"), (60, True, 40, "copy"),
    # trend windows reaching before the first purchase
    (None, True, 150, "copy"),
    # PostgreSQL's COPY pass: rows straddling tiny blocks (first-day spend merged across chunks), sparse customer ids
    (45, True, 40, "copy-tiny-blocks"), (None, True, 40, "copy-sparse-ids"),
    # PostgreSQL's bit-string pass (when the COPY pass's bitmaps would not fit): bitmaps cut in
    # 64-day chunks, and the COUNT(DISTINCT category) fallback for a large category dictionary
    (None, True, 40, "bits"), (None, True, 40, "bits-64-day-chunks"), (45, False, 100, "bits-3-categories"),
    # one connection instead of a reader per core
    (45, True, 40, "sqlite-one-reader"), (45, True, 40, "copy-one-reader"),
))
def test_set_based_statistics_equal_the_streamed_path(vcrm: CRM, monkeypatch: pytest.MonkeyPatch, window_days: int | None,
                                                      holdout: bool, trend_days: int, pg_path: str) -> None:
    """customer_stats (one pass) == purchase_history + value_aggregates + category_counts, on every path."""
    sqlite = vcrm.engine.dialect.name == "sqlite"
    monkeypatch.setattr(loaders, "SQLITE_READERS", 2)  # whatever the machine's cores
    monkeypatch.setattr(loaders, "PG_READERS", 2)
    if pg_path == "sqlite-one-reader":
        monkeypatch.setattr(loaders, "SQLITE_READERS", 1)
    if pg_path == "copy-one-reader":
        monkeypatch.setattr(loaders, "PG_READERS", 1)
    if pg_path == "copy-tiny-blocks":
        monkeypatch.setattr(copy_pass, "BLOCK_BYTES", 100)
    if pg_path == "copy-sparse-ids":
        monkeypatch.setattr(copy_pass, "position_table", lambda ids: None)
    if pg_path.startswith("bits"):
        monkeypatch.setattr(loaders, "COPY_BITMAP_BYTES", 0)
    if pg_path == "bits-64-day-chunks":
        monkeypatch.setattr(loaders, "DAY_CHUNK", 64)
    if pg_path == "bits-3-categories":
        monkeypatch.setattr(loaders, "MAX_CATEGORY_BITS", 3)
    passes: list[str] = []
    _record_calls(monkeypatch, passes, "_copy_stats", "_customer_stats_query_postgresql", "_sqlite_stats_in_parallel",
                  "customer_stats_query")
    rng = np.random.default_rng(17)
    n, m = 60, 900
    ci = rng.integers(0, n - 4, m)  # the last 4 customers never buy
    days = rng.integers(0, 240, m)
    amounts = rng.uniform(1, 200, m).round(2)
    kinds = np.where(rng.random(m) < 0.85, "invoice", np.where(rng.random(m) < 0.6, "credit_note", "payment"))
    cats = [None if u < 0.2 else f"cat{int(u * 7)}" for u in rng.random(m)]
    ids = bulk_load(vcrm, ci, days, amounts, n, kinds=kinds, categories=cats)
    s = ValueSettings(trend_days=trend_days, window_days=window_days)
    cut, hold = d(170), (d(230) if holdout else None)
    with vcrm.unit_of_work() as uow:
        new = loaders.customer_stats(uow.session, ids, s, cut, holdout_end=hold)
        old = loaders.purchase_history(uow.session, ids, s, cut, holdout_end=hold, chunk_rows=50)
        old_value = loaders.value_aggregates(uow.session, ids, s, Period.up_to(cut, window_days))
        old_categories = loaders.category_counts(uow.session, ids, s, cut)
    h = new.history
    for name in ("purchase_days", "entries", "days_last", "days_prev", "holdout_days"):
        assert getattr(h, name).tolist() == getattr(old, name).tolist(), name
    for name in ("first_day", "last_day", "gross", "net", "net_last", "net_prev"):
        np.testing.assert_allclose(getattr(h, name), getattr(old, name), rtol=1e-10, atol=1e-8, err_msg=name)
    repeat = old.purchase_days > 1
    buyers = old.purchase_days > 0
    np.testing.assert_allclose(h.gross_first_day[buyers], old.gross_first_day[buyers], rtol=1e-10, atol=1e-8)
    assert repeat.sum() > 20 and old.holdout_days.sum() > (10 if holdout else -1)
    assert new.value.frequency.tolist() == old_value.frequency.tolist()
    np.testing.assert_allclose(new.value.monetary, old_value.monetary, rtol=1e-10, atol=1e-8)
    np.testing.assert_array_equal(new.value.last_day, old_value.last_day)
    np.testing.assert_array_equal(new.categories, old_categories)
    if not sqlite:  # exactly that pass: no silent fall-back to the generic one
        assert passes == ["_copy_stats" if pg_path.startswith("copy") else "_customer_stats_query_postgresql"]
    elif pg_path == "sqlite-one-reader":
        assert passes == ["customer_stats_query"]
    else:  # a writing unit of work that has not written: one reader (and one GROUP BY share) per core
        assert passes == ["_sqlite_stats_in_parallel", "customer_stats_query", "customer_stats_query"]


@pytest.mark.parametrize("copy_memory", ["enough", "none"])
def test_a_history_over_centuries_gives_the_same_statistics(vcrm: CRM, base: Base, monkeypatch: pytest.MonkeyPatch,
                                                            copy_memory: str) -> None:
    """A purchase dated 1900 (imports accept any year) must not make PostgreSQL build a bit string
    per 2,048 days since then: the COPY pass holds its bitmaps in customers x span / 8 bytes, and
    when those do not fit either, the COUNT(DISTINCT) pass runs. Same numbers on every path."""
    old, new = base.customer("Old"), base.customer("New")
    base.buy(old, 3, "10")
    base.buys(new, [5, 5, 9], "20")
    with vcrm.unit_of_work() as uow:
        uow.session.execute(update(Transaction).where(Transaction.reference == "r1")
                            .values(occurred_at=dt.datetime(1900, 1, 2, tzinfo=dt.UTC)))
    if copy_memory == "none":
        monkeypatch.setattr(loaders, "COPY_BITMAP_BYTES", 0)
    s = ValueSettings(trend_days=30)
    passes: list[str] = []
    _record_calls(monkeypatch, passes, "_copy_stats", "_customer_stats_query_postgresql", "customer_stats_query")
    with vcrm.unit_of_work() as uow:
        ids = loaders.customer_ids(uow.session)
        stats = loaders.customer_stats(uow.session, ids, s, d(10))
        ref = loaders.purchase_history(uow.session, ids, s, d(10))
    h = stats.history
    assert h.purchase_days.tolist() == ref.purchase_days.tolist() == [1, 2]
    assert h.first_day.tolist() == ref.first_day.tolist() == [day_of(dt.date(1900, 1, 2)), day_of(d(5))]
    assert h.days_last.tolist() == ref.days_last.tolist() == [0, 2]
    np.testing.assert_allclose(h.gross_first_day, [10.0, 40.0])
    if vcrm.engine.dialect.name == "postgresql":  # never the bit-string pass with 22 chunks
        assert passes == (["_copy_stats"] if copy_memory == "enough" else ["customer_stats_query"])


@pytest.mark.parametrize("unit", ["writes first", "read-only"])
def test_other_connections_read_only_when_they_see_what_the_transaction_sees(
        vcrm: CRM, base: Base, monkeypatch: pytest.MonkeyPatch, unit: str) -> None:
    """The pass may be split across connections (one per core): they see only committed data, so
    after this unit of work has written (an entry not committed yet) the pass runs on the
    session's own connection and counts exactly what the session sees. SQLite also needs the
    write lock (read-only: another process may commit in between); PostgreSQL shares the
    transaction's exported snapshot, so a read-only unit of work splits too."""
    sqlite = vcrm.engine.dialect.name == "sqlite"
    monkeypatch.setattr(loaders, "SQLITE_READERS" if sqlite else "PG_READERS", 2)
    a = base.customer("A")
    base.buys(a, [1, 3], "10", category="paint")
    split: list[bool] = []
    if sqlite:
        parallel = loaders._sqlite_stats_in_parallel
        monkeypatch.setattr(loaders, "_sqlite_stats_in_parallel", lambda *args, **kw: split.append(True) or parallel(*args, **kw))
    else:
        share = loaders._pg_snapshot_to_share

        def recording_share(session: Any) -> Any:
            got = share(session)
            split.append(got is not None)
            return got
        monkeypatch.setattr(loaders, "_pg_snapshot_to_share", recording_share)
    with vcrm.unit_of_work(read_only=unit == "read-only") as uow:
        if unit == "writes first":
            uow.accounts.post(a, TransactionCreate(kind="invoice", amount="5", reference="late", occurred_at=at(7),
                                                   category="tools"))
            uow.session.flush()
        ids = loaders.customer_ids(uow.session)
        stats = loaders.customer_stats(uow.session, ids, ValueSettings(trend_days=30), d(10))
    assert split == ([] if sqlite else [unit == "read-only"])
    assert stats.history.purchase_days.tolist() == ([3] if unit == "writes first" else [2])
    assert stats.categories.tolist() == ([2] if unit == "writes first" else [1])
    split.clear()
    with vcrm.unit_of_work() as uow:  # a writing unit of work that has not written yet: split
        ids = loaders.customer_ids(uow.session)
        h = loaders.customer_stats(uow.session, ids, ValueSettings(trend_days=30), d(10)).history
    assert split == [True]
    assert h.purchase_days.tolist() == ([3] if unit == "writes first" else [2])
    np.testing.assert_allclose(h.gross_first_day, [10.0])


@pytest.mark.engine("postgresql")
def test_postgresql_readers_see_the_snapshot_of_the_run_not_later_commits(
        vcrm: CRM, base: Base, monkeypatch: pytest.MonkeyPatch) -> None:
    """The connections that share the COPY import the run's snapshot: a purchase committed by
    someone else after the snapshot was taken is invisible to every share, as to one statement."""
    monkeypatch.setattr(loaders, "PG_READERS", 2)
    a = base.customer("A")
    base.buys(a, [1, 3], "10")
    share = loaders._pg_snapshot_to_share

    def share_then_commit_elsewhere(session: Any) -> Any:
        got = share(session)
        assert got is not None
        base.buy(a, 5, "99")  # its own unit of work: committed before the readers start
        return got
    monkeypatch.setattr(loaders, "_pg_snapshot_to_share", share_then_commit_elsewhere)
    with vcrm.unit_of_work() as uow:
        ids = loaders.customer_ids(uow.session)
        h = loaders.customer_stats(uow.session, ids, ValueSettings(trend_days=30), d(10)).history
    assert h.purchase_days.tolist() == [2]
    assert h.gross.tolist() == [20.0]


@pytest.mark.engine("postgresql")
@pytest.mark.parametrize("failure", ["server", "client"])
def test_a_failing_share_raises_its_own_error_and_returns_clean_connections(
        vcrm: CRM, base: Base, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    """An error in one reader -- on the server (psycopg's class) or while folding rows -- reaches
    the caller as itself; every pooled connection comes back rolled back, in its own isolation
    level and writable, and the next run (which writes) works."""
    import psycopg
    from crm_value_analysis import services
    from psycopg import sql

    monkeypatch.setattr(loaders, "PG_READERS", 2)
    monkeypatch.setattr(copy_pass, "BLOCK_BYTES", 100)
    a, b = base.customer("A"), base.customer("B")
    for day in range(1, 40):
        base.buy(a if day % 2 else b, day, "10")

    class Boom(Exception):
        pass

    if failure == "server":
        monkeypatch.setattr(copy_pass, "copy_statement", lambda **kw: sql.SQL(
            "COPY (SELECT 1 / (t.customer_id - t.customer_id) FROM transactions t) TO STDOUT (FORMAT binary)"))
        expected: type[BaseException] = psycopg.errors.DivisionByZero
    else:
        def boom(self: object, rows: object) -> None:
            raise Boom
        monkeypatch.setattr(copy_pass.Reducer, "add", boom)
        expected = Boom
    with pytest.raises(expected), vcrm.unit_of_work() as uow:
        loaders.customer_stats(uow.session, loaders.customer_ids(uow.session), ValueSettings(), d(60))
    assert vcrm.engine.pool.checkedout() == 0
    monkeypatch.undo()
    monkeypatch.setattr(loaders, "PG_READERS", 2)
    for day in range(3):  # every pooled connection is usable, and writes: the runs store snapshots
        with vcrm.unit_of_work() as uow:
            out = services.run_analysis(uow, as_of=d(60 + day))
        assert out.run.n_purchasers == 2
    assert vcrm.engine.pool.checkedout() == 0


@pytest.mark.engine("postgresql")
def test_without_a_spare_connection_the_run_reads_alone(vcrm: CRM, base: Base, monkeypatch: pytest.MonkeyPatch) -> None:
    """max_connections or a pooler's limit reached: a reader that cannot connect is no error, the
    run reads on its own connection (same numbers) and nothing is left checked out."""
    import psycopg

    monkeypatch.setattr(loaders, "PG_READERS", 2)
    base.buys(base.customer("A"), [1, 3, 3], "10")
    calls: list[int] = []
    connect = vcrm.engine.raw_connection

    def one_fails() -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise psycopg.OperationalError("sorry, too many clients already")
        return connect()
    with vcrm.unit_of_work() as uow:
        ids = loaders.customer_ids(uow.session)  # the session has its connection
        monkeypatch.setattr(vcrm.engine, "raw_connection", one_fails)
        h = loaders.customer_stats(uow.session, ids, ValueSettings(), d(10)).history
    assert len(calls) == 2  # both readers asked
    assert h.purchase_days.tolist() == [2]
    assert h.gross_first_day.tolist() == [10.0]
    assert vcrm.engine.pool.checkedout() == 0


def test_the_one_pass_puts_entries_on_their_utc_day(vcrm: CRM, base: Base) -> None:
    """Day boundaries on both engines (PostgreSQL: binary timestamps, microseconds since 2000, floored)."""
    c = base.customer("Clock")
    stamps = [
        dt.datetime(1969, 12, 31, 23, 0, tzinfo=dt.UTC),  # before 1970 and before 2000: floor, not truncation
        dt.datetime(1970, 1, 1, 0, 0, tzinfo=dt.UTC),
        dt.datetime(2024, 2, 29, 0, 0, 0, tzinfo=dt.UTC),
        dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(2024, 3, 1, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),  # 23:30 UTC the day before
    ]
    for i, ts in enumerate(stamps):
        base.buy(c, ts.date(), str(10 + i))
        with vcrm.unit_of_work() as uow:
            uow.session.execute(update(Transaction).where(Transaction.reference == f"r{i + 1}").values(occurred_at=ts))
    with vcrm.unit_of_work() as uow:
        ids = loaders.customer_ids(uow.session)
        h = loaders.customer_stats(uow.session, ids, ValueSettings(trend_days=7), dt.date(2024, 2, 29)).history
    assert h.purchase_days.tolist() == [3]
    assert h.first_day.tolist() == [day_of(dt.date(1969, 12, 31))]
    assert h.last_day.tolist() == [day_of(dt.date(2024, 2, 29))]
    assert h.days_last.tolist() == [1]
    assert h.gross_first_day.tolist() == [10.0]
    assert h.gross.tolist() == [10.0 + 11 + 12 + 13 + 14]


@pytest.mark.engine("postgresql")
def test_postgresql_work_mem_is_raised_for_one_statement_only(vcrm: CRM, base: Base, monkeypatch: pytest.MonkeyPatch) -> None:
    """The analytics statements get a larger work_mem (no spill to disk); the transaction keeps its own."""
    base.buy(base.customer("A"), 1, "10")
    with vcrm.unit_of_work() as uow:
        raw = uow.session.connection().connection.dbapi_connection
        raw.execute("SET LOCAL work_mem = '3MB'")
        ids = loaders.customer_ids(uow.session)
        stats = loaders.customer_stats(uow.session, ids, ValueSettings(), d(5))
        assert stats.history.purchase_days.tolist() == [1]
        assert raw.execute("SHOW work_mem").fetchone()[0] == "3MB"
        raw.execute("SET LOCAL jit = on")  # the COPY pass turns JIT off for itself only
        with monkeypatch.context() as m:
            m.setattr(loaders, "PG_READERS", 1)
            loaders.customer_stats(uow.session, ids, ValueSettings(), d(5))
        assert raw.execute("SHOW jit").fetchone()[0] == "on"


@pytest.mark.engine("postgresql")
@pytest.mark.parametrize("stale", ["first_day", "category"])
def test_purchases_committed_after_the_dictionary_scan_fall_back_to_the_generic_pass(
        vcrm: CRM, base: Base, monkeypatch: pytest.MonkeyPatch, stale: str) -> None:
    """Read committed: a backdated purchase or a new category may be committed between the two
    PostgreSQL statements. Its row lies outside the bitmap layout; the numbers must not lose it."""
    a, b = base.customer("A"), base.customer("B")
    base.buy(a, 2, "10", category="paint")
    base.buys(b, [4, 6], "20", category="tools")
    dictionary = loaders._purchase_dictionary

    def stale_dictionary(*args: object, **kw: object) -> tuple[int | None, list[str]]:
        first, cats = dictionary(*args, **kw)  # type: ignore[arg-type]
        return (first + 3, cats) if stale == "first_day" and first is not None else (first, cats[1:])
    monkeypatch.setattr(loaders, "_purchase_dictionary", stale_dictionary)
    with vcrm.unit_of_work() as uow:
        ids = loaders.customer_ids(uow.session)
        stats = loaders.customer_stats(uow.session, ids, ValueSettings(trend_days=30), d(10))
    h = stats.history
    assert h.purchase_days.tolist() == [1, 2]
    assert h.first_day.tolist() == [day_of(d(2)), day_of(d(4))]
    assert stats.categories.tolist() == [1, 1]


@pytest.mark.engine("postgresql")
def test_a_failed_fetch_keeps_its_own_error(vcrm: CRM, base: Base) -> None:
    """When the transaction is aborted while a streamed cursor is open (a FETCH that times out or is
    cancelled), closing the cursor must not run the work_mem clean-up in the dead transaction:
    that would replace the real error by InFailedSqlTransaction."""
    import psycopg

    base.buys(base.customer("A"), [1, 2, 3], "10")

    class Done(Exception):
        pass

    with pytest.raises(Done), vcrm.unit_of_work() as uow:
        cur = loaders._execute(uow.session, select(Transaction.id), stream=True)
        raw = uow.session.connection().connection.dbapi_connection
        with pytest.raises(psycopg.errors.DivisionByZero):
            raw.execute("SELECT 1/0")  # the transaction is now aborted
        cur.close()  # must not raise
        raise Done


# -- PostgreSQL's COPY reader ------------------------------------------------------------------
