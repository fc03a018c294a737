"""Shared click parameter types: every value is checked against the documented limits
(:mod:`crmcore.limits`) before a command touches the database.

Why: a value the database cannot hold (an id above PostgreSQL's INTEGER, a date whose UTC form
leaves the calendar, a lone surrogate from a mis-encoded terminal, a 51,000-character search that
breaks SQLite's LIKE) used to reach the driver and end as exit 3 "internal error", differently
on each engine. Here it is a usage error: one ``Error: Invalid value for ...`` line, exit 2.

Plugin commands use the same types (docs/plugin-guide.md, "CLI parameter types")::

    from crmcore.cli.params import CUSTOMER, DATE, ID, Number, Text

    @click.argument("customer_key", metavar="CUSTOMER", type=CUSTOMER)
    @click.option("--as-of", type=DATE)
    @click.option("--discount-rate", type=Number(0, 1, max_open=True))
"""
from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal, InvalidOperation
from typing import Any

import click

from crmcore.limits import EARLIEST, LATEST, MAX_ID, MAX_SEARCH, MAX_TEXT, text_problem, valid_id


def shown(value: Any, limit: int = 40) -> str:
    """A user's value for an error message: repr (controls escaped), cut short."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        return f"{text[:limit // 2]!r}…({len(text)} characters)"
    return repr(text)


class TextType(click.ParamType):
    """Text without control characters or undecodable bytes, at most ``max_length`` characters."""

    name = "text"

    def __init__(self, max_length: int | None = MAX_TEXT, *, multiline: bool = False) -> None:
        self.max_length = max_length
        self.multiline = multiline

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        value = str(value)
        problem = text_problem(value, self.max_length, self.multiline)
        if problem:
            self.fail(f"{shown(value)} {problem}", param, ctx)
        return value


class RecordIdType(click.ParamType):
    """A stored record's id: a whole number from 1 to MAX_ID (``#12`` is accepted as 12)."""

    name = "id"

    def __init__(self, what: str = "ids") -> None:
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            n = value
        else:
            s = str(value).strip().removeprefix("#")
            if not (s.isascii() and s.isdigit()):
                self.fail(f"{shown(value)} is not a whole number ({self.what} run from 1 to {MAX_ID})", param, ctx)
            n = int(s) if len(s) <= 20 else MAX_ID + 1  # int() of a 5,000-digit string is refused by Python
        if not valid_id(n):
            self.fail(f"{shown(value)} is out of range ({self.what} run from 1 to {MAX_ID})", param, ctx)
        return n


class CustomerKeyType(TextType):
    """A customer's external reference, or its id as ``#12`` (checked like :class:`RecordIdType`).

    The value stays text: :func:`crmcore.cli.customers.resolve_customer` looks it up, reference first.
    """

    name = "customer"

    def __init__(self) -> None:
        super().__init__(max_length=100)  # the longest external reference

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        value = super().convert(value, param, ctx)
        if value.startswith("#") and value[1:].isascii() and value[1:].isdigit():  # "#A1" stays a reference
            ID.convert(value, param, ctx)
        return value


class DateTimeType(click.ParamType):
    """An ISO 8601 date or date-time, returned timezone-aware in UTC.

    No offset means UTC; a bare date means midnight UTC. The UTC value must lie between
    ``earliest`` and ``latest`` (default: crmcore.limits.EARLIEST/LATEST).
    """

    name = "datetime"

    def __init__(self, earliest: dt.datetime = EARLIEST, latest: dt.datetime = LATEST) -> None:
        self.earliest, self.latest = earliest, latest

    def _range(self) -> str:
        return f"{self.earliest.date().isoformat()} to {self.latest.date().isoformat()} (UTC)"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.datetime:
        d: dt.datetime | None
        utc: dt.datetime | None
        if isinstance(value, dt.datetime):
            d = value
        else:
            s = str(value).strip()
            try:
                d = dt.datetime.fromisoformat(s) if len(s) <= 40 else None
            except ValueError:
                d = None
            if d is None:
                self.fail(f"{shown(value)} is not an ISO date or date-time (e.g. 2024-03-01 or 2024-03-01T14:30+01:00)",
                          param, ctx)
        try:
            utc = d.replace(tzinfo=dt.UTC) if d.tzinfo is None else d.astimezone(dt.UTC)
        except OverflowError:
            utc = None
        if utc is None or not self.earliest <= utc <= self.latest:
            self.fail(f"{shown(value)} is out of range: dates run from {self._range()}", param, ctx)
        return utc


class DateType(DateTimeType):
    """An ISO 8601 calendar date (``2024-03-01``) between the earliest and latest dates."""

    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:  # type: ignore[override]
        d: dt.date | None
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            d = value
        else:
            s = str(value).strip()
            try:
                d = dt.date.fromisoformat(s) if len(s) <= 20 else None
            except ValueError:
                d = None
            if d is None:
                self.fail(f"{shown(value)} is not an ISO date (e.g. 2024-03-01)", param, ctx)
        if not self.earliest.date() <= d <= self.latest.date():
            self.fail(f"{shown(value)} is out of range: dates run from {self._range()}", param, ctx)
        return d


class Number(click.ParamType):
    """A finite number within [min, max] (open ends optional); NaN, infinities and overflow refused.

    ``decimal=True`` returns a :class:`~decimal.Decimal` (for money-like rates), else a float.
    """

    name = "number"

    def __init__(self, min: float | None = None, max: float | None = None, *, min_open: bool = False,
                 max_open: bool = False, decimal: bool = False) -> None:
        self.min, self.max, self.min_open, self.max_open, self.decimal = min, max, min_open, max_open, decimal

    def _bounds(self) -> str:
        lo = "" if self.min is None else f"{'>' if self.min_open else '>='} {self.min}"
        hi = "" if self.max is None else f"{'<' if self.max_open else '<='} {self.max}"
        return " and ".join(x for x in (lo, hi) if x)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        s = str(value).strip()
        try:
            d = Decimal(s) if len(s) <= 100 else None
        except InvalidOperation:
            d = None
        if d is None or not d.is_finite():
            self.fail(f"{shown(value)} is not a finite number", param, ctx)
        f = float(d)
        if math.isinf(f) or (self.min is not None and (f < self.min or (self.min_open and f == self.min))) or \
                (self.max is not None and (f > self.max or (self.max_open and f == self.max))):
            self.fail(f"{shown(value)} is out of range: it must be {self._bounds() or 'a finite number'}", param, ctx)
        return d if self.decimal else f


#: A record id (customer, contact, account ...): 1 to crmcore.limits.MAX_ID.
ID = RecordIdType()
#: A CUSTOMER argument: an external reference, or ``#ID``.
CUSTOMER = CustomerKeyType()
#: Date-time and date options within crmcore.limits.EARLIEST/LATEST.
DATETIME = DateTimeType()
DATE = DateType()
#: Search text: at most crmcore.limits.MAX_SEARCH characters.
SEARCH = TextType(MAX_SEARCH)
#: A short single-line value (tag filter, entity name ...).
TEXT = TextType(MAX_TEXT)
#: Who is acting (``--user``, the audit log's actor column holds 64 characters).
USERNAME = TextType(64)
#: A random seed (NumPy accepts non-negative seeds).
SEED = click.IntRange(0, 2**32 - 1)
#: An optimistic-locking version number.
VERSION = RecordIdType("versions")
