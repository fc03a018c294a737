"""Reusable validated field types for the pydantic schemas.

Email and phone checks sit on the bulk-import hot path: email-validator costs ~40 µs and
phonenumbers ~25 µs per value, which alone would cap an import near 15k rows/s. Each check
therefore has a fast path for the common, unambiguous form (a plain ASCII address, an E.164
number with a known country code) and falls back to the library for everything else, so the
library stays the authority on what is valid.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email
from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import AfterValidator, BeforeValidator, StringConstraints

from crmcore.db.types import as_utc

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_FAST_EMAIL = re.compile(
    rf"^{_ATEXT}(?:\.{_ATEXT})*@((?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+([a-z]{{2,24}}))$"
)
_SPECIAL_TLDS = {d for d in SPECIAL_USE_DOMAIN_NAMES if "." not in d}


@lru_cache(maxsize=4096)
def _slow_email(value: str) -> str:
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
        if m and len(local) <= 64 and m.group(2) not in _SPECIAL_TLDS and not any(
            m.group(1).endswith(f"{s}.") for s in SPECIAL_USE_DOMAIN_NAMES
        ):
            return f"{local}@{lowered}"
    return _slow_email(value)


_E164 = re.compile(r"^\+([1-9]\d{6,14})$")


def _known_calling_code(digits: str) -> bool:
    return any(int(digits[:n]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE for n in (1, 2, 3))


def normalise_phone(value: str, region: str | None = None) -> str:
    """E.164 form. National numbers need the customer's country to be parsed."""
    value = value.strip()
    m = _E164.match(value)
    if m and _known_calling_code(m.group(1)):
        return value
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as e:
        hint = "" if region or value.startswith("+") else " (give it in +<country code> form or set the country)"
        raise ValueError(f"invalid phone number {value!r}: {e._msg}{hint}") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError(f"invalid phone number {value!r}: not a possible number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_COUNTRIES = frozenset(c.alpha_2 for c in pycountry.countries)
_CURRENCIES = frozenset(c.alpha_3 for c in pycountry.currencies)


def _country(value: str) -> str:
    code = value.strip().upper()
    if code not in _COUNTRIES:
        raise ValueError(f"unknown country code {value!r} (use ISO 3166 alpha-2, e.g. DE)")
    return code


def _currency(value: str) -> str:
    code = value.strip().upper()
    if code not in _CURRENCIES:
        raise ValueError(f"unknown currency {value!r} (use ISO 4217, e.g. EUR)")
    return code


MAX_AMOUNT = Decimal("1e13")


def _money(value: Any) -> Decimal:
    if isinstance(value, float):
        value = repr(value)
    try:
        d = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not d.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    if d != d.quantize(Decimal("0.01")):
        raise ValueError(f"amount {value} has more than 2 decimal places")
    if abs(d) >= MAX_AMOUNT:  # SQLite stores NUMERIC as a double: exact to the cent below 10^13
        raise ValueError(f"amount {value} is too large (the limit is 9,999,999,999,999.99)")
    return d.quantize(Decimal("0.01"))


def _utc(value: Any) -> Any:
    if isinstance(value, str):
        s = value.strip()
        if len(s) == 10:  # a bare date means midnight UTC
            return dt.datetime.fromisoformat(s).replace(tzinfo=dt.timezone.utc)
        return s
    return value


def _tags(value: Any) -> Any:
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, (list, tuple)):
        seen: dict[str, None] = {}
        for t in value:
            if not isinstance(t, str):
                raise ValueError("tags must be strings")
            t = t.strip().lower()
            if t:
                seen[t] = None
        return list(seen)
    return value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=10000)]
Ref = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Email = Annotated[str, AfterValidator(normalise_email)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
CountryCode = Annotated[str, AfterValidator(_country)]
CurrencyCode = Annotated[str, AfterValidator(_currency)]
MoneyAmount = Annotated[Decimal, BeforeValidator(_money)]
UTCDatetime = Annotated[dt.datetime, BeforeValidator(_utc), AfterValidator(as_utc)]
Tags = Annotated[list[str], BeforeValidator(_tags)]
