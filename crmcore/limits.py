"""The documented input limits, in one place (docs/admin-guide.md, "Guarantees").

Services, schemas and the CLI's parameter types check against these, so a value outside them is
a clean "invalid input"/"not found" and never reaches the database driver, where it would fail
differently on each engine (SQLite: OverflowError in the driver; PostgreSQL: "integer out of range").
"""
from __future__ import annotations

import datetime as dt

#: Primary keys are INTEGER columns: PostgreSQL's INTEGER is 32-bit signed (SQLite's 64-bit).
MAX_ID = 2**31 - 1

#: Dates and times the CLI accepts (after conversion to UTC). Narrower than Python's years 1-9999
#: so that date arithmetic (due dates, look-back and forecast horizons) never overflows, and
#: from 1900 because spreadsheets opening an export count days from 1900.
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)

#: Longest search text: longer than any stored name (200), email (254) or reference (100), so a
#: longer one can only match nothing; it also keeps SQLite below its LIKE-pattern limit (50,000).
MAX_SEARCH = 254

#: Longest value of any other single-line text option not checked by a schema (tag filters, audit
#: entity names): the widest String column of the core.
MAX_TEXT = 254


def valid_id(value: int) -> bool:
    """True when ``value`` can be a stored primary key (1 to MAX_ID)."""
    return 1 <= value <= MAX_ID


#: The audit log's actor column.
MAX_ACTOR = 64


def check_actor(actor: str) -> str:
    """The acting name recorded in the audit log, or InvalidInput (checked when a unit of work
    opens, so nothing is reported done and then fails on commit)."""
    from crmcore.errors import InvalidInput

    if not isinstance(actor, str) or not actor.strip():
        raise InvalidInput("the acting user (--user / CRM_USER) must not be empty")
    bad = next((c for c in actor if ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f or 0xD800 <= ord(c) <= 0xDFFF), None)
    if bad is not None:
        raise InvalidInput(f"the acting user (--user / CRM_USER) contains a control character or undecodable byte (U+{ord(bad):04X})")
    if len(actor) > MAX_ACTOR:
        raise InvalidInput(f"the acting user (--user / CRM_USER) is too long: {len(actor)} characters (at most {MAX_ACTOR})")
    return actor


def text_problem(value: str, max_length: int | None = None, multiline: bool = False) -> str | None:
    """Why ``value`` cannot be used as text (a search, a filter, a name), or None.

    Lone surrogates cannot be encoded for either engine (a non-UTF-8 shell argument arrives as
    them), NUL cannot reach PostgreSQL, other controls are terminal escapes; ``multiline``
    allows tab and line breaks.
    """
    for i, ch in enumerate(value):
        o = ord(ch)
        if 0xD800 <= o <= 0xDFFF:
            return "is not valid UTF-8 text (check the encoding of your terminal, script or file)"
        if (o < 0x20 and not (multiline and ch in "\t\n\r")) or 0x7F <= o <= 0x9F:
            return f"contains a control character (U+{o:04X}) at position {i + 1}"
    if max_length is not None and len(value) > max_length:
        return f"is too long: {len(value)} characters (at most {max_length})"
    return None


def check_text(value: str | None, what: str, max_length: int | None = MAX_TEXT) -> str | None:
    """``value`` unchanged, or InvalidInput naming ``what`` (for service arguments no schema checks)."""
    from crmcore.errors import InvalidInput

    if value is None:
        return None
    problem = text_problem(value, max_length)
    if problem:
        raise InvalidInput(f"{what} {problem}", [(what, problem)])
    return value


def utc_bound(value: dt.datetime | None, what: str) -> dt.datetime | None:
    """A query bound in UTC (naive = UTC), or InvalidInput when its UTC form leaves years 1-9999."""
    from crmcore.errors import InvalidInput

    if value is None:
        return None
    try:
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    except OverflowError:
        raise InvalidInput(f"{what}: {value.isoformat()} is out of range once converted to UTC") from None


def check_window(limit: int, offset: int = 0) -> None:
    """A page of results: limit 1 to MAX_ID, offset 0 to MAX_ID (an engine's LIMIT is 64-bit at most)."""
    from crmcore.errors import InvalidInput

    if not 1 <= limit <= MAX_ID or not 0 <= offset <= MAX_ID:
        raise InvalidInput(f"limit must be 1 to {MAX_ID} and offset 0 to {MAX_ID}, got {limit} and {offset}")
