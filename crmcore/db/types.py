"""Column types with one meaning on every engine.

- ``Money``: an entry's amount, ``Numeric(18, 4)`` returning ``Decimal``. Four decimals hold every
  ISO 4217 currency (KWD has 3, CLF 4); the schemas refuse more decimals than the currency has.
  SQLite stores it as a double, exact because an amount has at most 15 significant digits
  (``crmcore.schemas.account.max_amount``), and SQL sums over amounts stay usable for analytics.
- ``Balance``: an account balance, the sum of many amounts, so it needs more digits than a double
  has: ``Numeric(20, 4)`` on PostgreSQL, a 64-bit integer of 1/10,000 units on SQLite (exact up to
  ±922 trillion; the ledger refuses balances beyond ``BALANCE_LIMIT``). SQL arithmetic and
  comparisons with bound values work on both engines (``balance + :delta``, ``balance > :x``):
  the bound values are scaled by the type. Casting the raw column to a float in SQL on SQLite
  gives 10,000 times the amount: read balances through the type.
- ``UTCDateTime``: always timezone-aware UTC in Python; SQLite has no time zones, so values
  are stored as naive UTC there and re-tagged on the way out.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import DateTime, Dialect, Numeric
from sqlalchemy.types import TypeDecorator, TypeEngine

CENT = Decimal("0.01")
MONEY_SCALE = 4  # the most decimals of any ISO 4217 currency (CLF, UYW)
QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)
#: The largest balance an account may reach, in units of its currency (documented in the
#: admin guide). Below SQLite's integer range at 4 decimals, with room for one more entry.
BALANCE_LIMIT = Decimal(900000000000000)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """Naive datetimes are taken to be UTC; aware ones are converted."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def tidy(value: Decimal) -> Decimal:
    """At least two decimals (``12.50``), more only where they are not zero (``1.234``): amounts
    of two-decimal currencies read as they always did, KWD keeps its third decimal."""
    value = value.quantize(QUANTUM)
    cents = value.quantize(CENT)
    exponent = value.as_tuple().exponent
    return cents if cents == value else value.normalize() if isinstance(exponent, int) and exponent < -2 else value


def _exact(value: Any) -> Decimal:
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    if not d.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    q = d.quantize(QUANTUM)
    if q != d:
        raise ValueError(f"amount {d} has more than {MONEY_SCALE} decimal places")
    return q


class Money(TypeDecorator[Decimal]):
    """An amount with up to four decimals, exact on every engine (see the module docstring)."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 18, scale: int = MONEY_SCALE, **_: Any) -> None:
        # migrations pin what they create (0001_core: Numeric(18, 2)); the model uses the defaults
        super().__init__(precision=precision, scale=scale, asdecimal=True)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            # the double as is: Numeric's own conversion would print 4 decimals of it, and a
            # double near 10^13 carries noise there (9999999999999.99 -> ...9.9902)
            impl = cast(Numeric[Decimal], self.impl_instance)  # built in __init__ from `impl = Numeric`
            return dialect.type_descriptor(Numeric(impl.precision, impl.scale, asdecimal=False))
        return dialect.type_descriptor(self.impl_instance)

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        d = _exact(value)
        return float(d) if dialect.name == "sqlite" else d

    def process_result_value(self, value: Any, dialect: Dialect | None) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, float):
            # SQLite's double: its shortest repr is the decimal that was stored, since amounts have
            # at most 15 significant digits (check_amount)
            value = repr(value)
        return tidy(Decimal(value))


class _RawNumeric(Numeric):
    """NUMERIC in the DDL, values passed through untouched (Numeric would make them floats)."""

    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        return None


class Balance(TypeDecorator[Decimal]):
    """An account balance: NUMERIC(20, 4) on PostgreSQL; on SQLite integers of 1/10,000 units in
    the column declared NUMERIC(18, 2) since the first release (SQLite keeps integers as integers
    in a NUMERIC column, and keeping the declaration spares rebuilding the referenced table)."""

    impl = Numeric(20, MONEY_SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_RawNumeric(18, 2))
        return dialect.type_descriptor(Numeric(20, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        d = _exact(value)
        if dialect.name == "sqlite":
            return int(d.scaleb(MONEY_SCALE))
        return d

    def process_result_value(self, value: Any, dialect: Dialect | None) -> Decimal | None:
        if value is None:
            return None
        if (dialect is not None and dialect.name == "sqlite") or isinstance(value, int):
            if isinstance(value, float):  # an integer overflow made SQLite switch to a double
                return Decimal(repr(value)).scaleb(-MONEY_SCALE)
            return tidy(Decimal(int(value)).scaleb(-MONEY_SCALE))
        return tidy(Decimal(value))


class UTCDateTime(TypeDecorator[dt.datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        value = as_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQLite text from a func() expression
            value = dt.datetime.fromisoformat(value)
        return as_utc(value)
