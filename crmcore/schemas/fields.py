"""Reusable validated field types for the pydantic schemas.

Email and phone checks sit on the bulk-import hot path: email-validator costs ~40 µs and
phonenumbers ~25 µs per value, which alone would cap an import near 15k rows/s. Each check
therefore has a fast path for the common, unambiguous form (a plain ASCII address, an E.164
number with a known country code) and falls back to the library for everything else, so the
library stays the authority on what is valid.

The libraries (phonenumbers, pycountry, email-validator) are imported on the first value that
needs them, so a command that validates no address, phone or country (``crm customer list``)
does not load them.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, StringConstraints

from crmcore.db.types import as_utc, tidy

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_FAST_EMAIL = re.compile(
    rf"^{_ATEXT}(?:\.{_ATEXT})*@((?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+([a-z]{{2,24}}))$"
)


@lru_cache(maxsize=1)
def _special_use_domains() -> tuple[frozenset[str], tuple[str, ...]]:
    """email-validator's special-use domain names: (the top-level ones, all of them)."""
    from email_validator import SPECIAL_USE_DOMAIN_NAMES

    return frozenset(d for d in SPECIAL_USE_DOMAIN_NAMES if "." not in d), tuple(SPECIAL_USE_DOMAIN_NAMES)


@lru_cache(maxsize=4096)
def _slow_email(value: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as e:
        raise ValueError(f"invalid email {value!r}: {e}") from None


def normalise_email(value: str) -> str:
    value = value.strip()
    if len(value) <= 254:
        local, _, domain = value.rpartition("@")
        lowered = domain.lower()
        m = _FAST_EMAIL.match(f"{local}@{lowered}")
        special_tlds, special = _special_use_domains() if m else (frozenset(), ())
        if m and len(local) <= 64 and m.group(2) not in special_tlds and not any(
            m.group(1).endswith(f"{s}.") for s in special
        ):
            return f"{local}@{lowered}"
    return _slow_email(value)


_E164 = re.compile(r"^\+([1-9]\d{6,14})$")


@lru_cache(maxsize=1)
def _calling_codes() -> frozenset[int]:
    import phonenumbers

    return frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def _known_calling_code(digits: str) -> bool:
    codes = _calling_codes()
    return any(int(digits[:n]) in codes for n in (1, 2, 3))


def normalise_phone(value: str, region: str | None = None) -> str:
    """E.164 form. National numbers need the customer's country to be parsed."""
    value = value.strip()
    m = _E164.match(value)
    if m and _known_calling_code(m.group(1)):
        return value
    import phonenumbers

    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as e:
        hint = "" if region or value.startswith("+") else " (give it in +<country code> form or set the country)"
        raise ValueError(f"invalid phone number {value!r}: {e._msg}{hint}") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError(f"invalid phone number {value!r}: not a possible number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    import pycountry

    return frozenset(c.alpha_2 for c in pycountry.countries)


@lru_cache(maxsize=1)
def _currencies() -> frozenset[str]:
    import pycountry

    return frozenset(c.alpha_3 for c in pycountry.currencies)


def _country(value: str) -> str:
    code = value.strip().upper()
    if code not in _countries():
        raise ValueError(f"unknown country code {value!r} (use ISO 3166 alpha-2, e.g. DE)")
    return code


def _currency(value: str) -> str:
    code = value.strip().upper()
    if code not in _currencies():
        raise ValueError(f"unknown currency {value!r} (use ISO 4217, e.g. EUR)")
    return code


MAX_AMOUNT = Decimal("1e13")


def _shown(value: Any) -> str:
    """A value for an error message, cut short (a 5,000-digit number is not a message)."""
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"


def _money(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")  # noqa: TRY004 - pydantic reports ValueErrors
    if isinstance(value, float):
        value = repr(value)
    try:
        d = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        raise ValueError(f"not an amount: {_shown(value)!r}") from None
    if not d.is_finite():
        raise ValueError(f"not an amount: {_shown(value)!r}")
    # the size check comes first: quantizing 1e27 or 1e400 overflows Decimal's 28-digit context
    if abs(d) >= MAX_AMOUNT:  # SQLite stores NUMERIC as a double: exact to the cent below 10^13
        raise ValueError(f"amount {_shown(value)} is too large (the limit is 9,999,999,999,999.99)")
    # four decimals hold every ISO 4217 currency; the currency's own minor units are checked
    # where it is known (crmcore.schemas.account.check_amount: JPY 0, EUR 2, KWD 3)
    exact = d.quantize(Decimal("0.0001"))
    if d != exact:
        raise ValueError(f"amount {_shown(value)} has more than 4 decimal places")
    return tidy(exact)


def _utc(value: Any) -> Any:
    if isinstance(value, str):
        s = value.strip()
        if len(s) == 10:  # a bare date means midnight UTC
            return dt.datetime.fromisoformat(s).replace(tzinfo=dt.UTC)
        return s
    return value


def _as_utc(value: dt.datetime) -> dt.datetime:
    """UTC, or a ValueError for a time with no UTC form (9999-12-31T23:00-05:00 is in year 10000)."""
    try:
        return as_utc(value)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is out of range once converted to UTC (years 1 to 9999)") from None


# Unicode category Cc (C0 controls, DEL, C1 controls) and lone surrogates: never in stored text.
# NUL is refused by PostgreSQL and would make a SQLite export unimportable there; escape
# sequences reach terminals; surrogates cannot be encoded. Free text keeps tab and line breaks.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _control_error(value: str, pattern: re.Pattern[str], multiline: bool) -> None:
    m = pattern.search(value)
    if m is not None:
        ch = m.group()
        what = "a lone surrogate" if "\ud800" <= ch <= "\udfff" else "a control character"
        allowed = " (tab and line breaks are allowed here)" if multiline else ""
        raise ValueError(f"contains {what} (U+{ord(ch):04X}) at position {m.start() + 1}{allowed}")


def no_control(value: str) -> str:
    """Single-line text: refuse control characters (tab and line breaks too) and lone surrogates."""
    if _CONTROL.search(value) is not None:
        _control_error(value, _CONTROL, False)
    return value


def no_control_multiline(value: str) -> str:
    """Free text: like :func:`no_control`, but tab, line feed and carriage return are allowed."""
    if _CONTROL_MULTILINE.search(value) is not None:
        _control_error(value, _CONTROL_MULTILINE, True)
    return value


def _tags(value: Any) -> Any:
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, (list, tuple)):
        seen: dict[str, None] = {}
        for t in value:
            if not isinstance(t, str):
                raise ValueError("tags must be strings")  # noqa: TRY004 - pydantic reports ValueErrors
            t = t.strip().lower()
            if t:
                seen[t] = None
        return list(seen)
    return value


def _tags_clean(value: list[str]) -> list[str]:
    for t in value:
        no_control(t)
    return value


_NoControl = AfterValidator(no_control)
#: Text on one line, no control characters; combine with ``Field(max_length=...)``.
Line = Annotated[str, _NoControl]
#: Free text (notes, descriptions): tab and line breaks allowed, other control characters not.
Multiline = Annotated[str, AfterValidator(no_control_multiline)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), _NoControl]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), _NoControl]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=10000), AfterValidator(no_control_multiline)]
Ref = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), _NoControl]
Email = Annotated[str, _NoControl, AfterValidator(normalise_email)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40), _NoControl]
CountryCode = Annotated[str, AfterValidator(_country)]
CurrencyCode = Annotated[str, AfterValidator(_currency)]
MoneyAmount = Annotated[Decimal, BeforeValidator(_money)]
UTCDatetime = Annotated[dt.datetime, BeforeValidator(_utc), AfterValidator(_as_utc)]
Tags = Annotated[list[str], BeforeValidator(_tags), AfterValidator(_tags_clean)]
#: A vocabulary word (a contact role, an interaction kind): stripped, lower case; whether the
#: word is allowed is the service's check against crm.toml ``[vocabularies]``.
Word = Annotated[str, BeforeValidator(lambda v: v.value if isinstance(v, Enum) else v),
                 StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=32), _NoControl]


def clean_text(value: str | None, what: str, *, max_length: int, multiline: bool = False,
               required: bool = False) -> str | None:
    """``value`` stripped and checked like :data:`Line` / :data:`Multiline`, or InvalidInput naming ``what``.

    For service arguments that no schema checks (a segment's description, a hold's reason given
    through the Python API): the same rules as the pydantic types, so every face refuses the same
    text. Empty text is None unless ``required`` (then it is refused).
    """
    from crmcore.errors import InvalidInput

    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"invalid input: {what}: must be text", [(what, "not text")])
    if value is None or not value.strip():
        if required:
            raise InvalidInput(f"invalid input: {what}: must not be empty", [(what, "empty")])
        return None
    value = value.strip()
    try:
        (no_control_multiline if multiline else no_control)(value)
    except ValueError as e:
        raise InvalidInput(f"invalid input: {what}: {e}", [(what, str(e))]) from None
    if len(value) > max_length:
        raise InvalidInput(f"invalid input: {what}: {len(value)} characters, at most {max_length}",
                           [(what, "too long")])
    return value
