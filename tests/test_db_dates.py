"""crmcore.db.dates: one definition of SQL day arithmetic, the same answer on SQLite and
PostgreSQL as in Python, at the edges (the last instant of a day, days before 1970)."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Column, Date, Integer, MetaData, Table, insert, literal_column, select, text
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import CompileError

from crmcore.db import UTCDateTime, date_of, day_number, day_of, day_sql, days_between
from crmcore.db.engine import create_crm_engine

UTC = dt.UTC
INSTANTS = [
    dt.datetime(2026, 3, 4, 0, 0, 0, tzinfo=UTC),
    dt.datetime(2026, 3, 4, 23, 59, 59, 999900, tzinfo=UTC),  # julianday() of the full timestamp says 5 March
    dt.datetime(1970, 1, 1, 0, 0, 0, tzinfo=UTC),
    dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # floored: day -1, not 0
    dt.datetime(1900, 2, 28, 12, 0, tzinfo=UTC),
    dt.datetime(2026, 3, 5, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=5))),  # 4 March in UTC
]


@pytest.fixture
def table(crm_url: str) -> Any:
    """A scratch table (outside the models' metadata) with a timestamp and a date column."""
    engine = create_crm_engine(crm_url)
    md = MetaData()
    t = Table("dates_probe", md, Column("id", Integer, primary_key=True), Column("at", UTCDateTime),
              Column("day", Date))
    md.drop_all(engine)
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(t), [{"id": i, "at": at, "day": at.astimezone(UTC).date()} for i, at in enumerate(INSTANTS)])
    yield engine, t
    md.drop_all(engine)
    engine.dispose()


def test_day_number_matches_python(table: Any) -> None:
    engine, t = table
    with engine.connect() as conn:
        got = conn.execute(select(t.c.id, day_number(t.c.at), day_number(t.c.day)).order_by(t.c.id)).all()
    expected = [day_of(at) for at in INSTANTS]
    assert [g[1] for g in got] == expected and [g[2] for g in got] == expected
    assert expected[:4] == [20516, 20516, 0, -1]
    assert [date_of(d) for d in expected] == [at.astimezone(UTC).date() for at in INSTANTS]


def test_day_sql_matches_day_number(table: Any) -> None:
    engine, _ = table
    name = engine.dialect.name
    with engine.connect() as conn:
        raw = conn.execute(text(f"SELECT id, {day_sql(name, 'at')}, {day_sql(name, 'day', is_date=True)} "
                                "FROM dates_probe ORDER BY id")).all()
    assert [(r[1], r[2]) for r in raw] == [(day_of(at), day_of(at)) for at in INSTANTS]


def test_days_between_has_fractions_and_signs(table: Any) -> None:
    engine, t = table
    with engine.connect() as conn:
        base = select(t.c.at).where(t.c.id == 2).scalar_subquery()  # 1970-01-01 00:00
        got = dict(conn.execute(select(t.c.id, days_between(t.c.at, base))).all())
    for i, at in enumerate(INSTANTS):
        want = (at - INSTANTS[2]).total_seconds() / 86400
        assert got[i] == pytest.approx(want, abs=1e-6), i
    assert got[4] < 0 < got[0]  # 1900 is before, 2026 after


def test_other_engines_and_dialects_are_refused() -> None:
    with pytest.raises(CompileError, match="supports SQLite and PostgreSQL, not mysql"):
        str(select(day_number(literal_column("x"))).compile(dialect=mysql.dialect()))
    with pytest.raises(CompileError, match="supports SQLite and PostgreSQL, not mysql"):
        str(select(days_between(literal_column("x"), literal_column("y"))).compile(dialect=mysql.dialect()))
    with pytest.raises(ValueError, match="not mysql"):
        day_sql("mysql", "x")
