"""Date arithmetic in SQL, the same answer on SQLite and PostgreSQL: the one place for it.

Plugins that bucket entries by day (ageing, RFM recency, cycle times) used to carry their own
copy of these expressions; the copies differed at the edges (a timestamp at 23:59:59.9995,
days before 1970). Import them from here (or :mod:`crmcore.sdk`).

- :class:`day_number` (an expression): whole UTC days since 1970-01-01 of a timestamp or date
  column, floored (also before 1970);
- :class:`days_between` (an expression): the days, with fractions, from one timestamp to another;
- :func:`day_sql`: :class:`day_number` as SQL text for hand-written statements (bulk loaders).

SQLite stores ``UTCDateTime`` as ``'YYYY-MM-DD HH:MM:SS.ffffff'`` (naive UTC): the day is taken
from the date part, whose Julian day is an exact x.5, so the cast is exact (``julianday()`` of the
full timestamp rounds to whole milliseconds and would put 23:59:59.9995 on the next day).
"""
from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

from sqlalchemy import Float, Integer
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

EPOCH = dt.date(1970, 1, 1)
#: SQLite 3.38+ has unixepoch(): a midnight's epoch seconds divide exactly, a third faster than julianday()
SQLITE_UNIXEPOCH = sqlite3.sqlite_version_info >= (3, 38, 0)


def day_of(value: dt.date | dt.datetime) -> int:
    """The Python twin of :class:`day_number` (an aware datetime is taken in UTC)."""
    if isinstance(value, dt.datetime):
        value = (value.astimezone(dt.UTC) if value.tzinfo else value).date()
    return (value - EPOCH).days


def date_of(day: int) -> dt.date:
    """The date of a day number (the inverse of :func:`day_of`)."""
    return EPOCH + dt.timedelta(days=day)


def _unsupported(compiler: Any) -> str:
    raise CompileError(f"crmcore date arithmetic supports SQLite and PostgreSQL, not {compiler.dialect.name}")


class day_number(FunctionElement[int]):
    """Whole UTC days since 1970-01-01 of a timestamp or date column (floor, also before 1970)."""

    type = Integer()
    inherit_cache = True
    name = "day_number"


@compiles(day_number, "sqlite")
def _day_sqlite(element: day_number, compiler: Any, **kw: Any) -> str:
    return f"CAST(julianday(substr({compiler.process(element.clauses, **kw)}, 1, 10)) - 2440587.5 AS INTEGER)"


@compiles(day_number, "postgresql")
def _day_postgresql(element: day_number, compiler: Any, **kw: Any) -> str:
    return f"CAST(floor(extract(epoch FROM {compiler.process(element.clauses, **kw)}) / 86400) AS INTEGER)"


@compiles(day_number)
def _day_other(element: day_number, compiler: Any, **kw: Any) -> str:
    return _unsupported(compiler)


class days_between(FunctionElement[float]):
    """``days_between(later, earlier)``: days from ``earlier`` to ``later`` with fractions
    (negative when ``later`` is earlier); NULL when either is NULL."""

    type = Float()
    inherit_cache = True
    name = "days_between"


def _two(element: days_between, compiler: Any, **kw: Any) -> tuple[str, str]:
    later, earlier = list(element.clauses)
    return compiler.process(later, **kw), compiler.process(earlier, **kw)


@compiles(days_between, "sqlite")
def _between_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = _two(element, compiler, **kw)
    return f"(julianday({later}) - julianday({earlier}))"


@compiles(days_between, "postgresql")
def _between_postgresql(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = _two(element, compiler, **kw)
    return f"(extract(epoch FROM ({later}) - ({earlier})) / 86400.0)"


@compiles(days_between)
def _between_other(element: days_between, compiler: Any, **kw: Any) -> str:
    return _unsupported(compiler)


def day_sql(dialect: str, column: str, *, is_date: bool = False) -> str:
    """:class:`day_number` of ``column`` (SQL text) for a hand-written statement on ``dialect``
    (``"sqlite"`` or ``"postgresql"``); ``is_date`` for a DATE column (PostgreSQL subtracts it)."""
    if dialect == "sqlite":
        if SQLITE_UNIXEPOCH:
            return f"(unixepoch(substr({column}, 1, 10)) / 86400)"
        return f"CAST(julianday(substr({column}, 1, 10)) - 2440587.5 AS INTEGER)"
    if dialect == "postgresql":
        if is_date:
            return f"({column} - DATE '1970-01-01')"
        return f"CAST(floor(extract(epoch FROM {column}) / 86400) AS INTEGER)"
    raise ValueError(f"crmcore date arithmetic supports SQLite and PostgreSQL, not {dialect}")


__all__ = ["EPOCH", "date_of", "day_number", "day_of", "day_sql", "days_between"]
