"""Field errors in the reader's language.

The schemas are the CLI's and the API's, so their reasons are English sentences from pydantic
(``Field required``, ``String should have at most 100 characters``) and from the core's
validators (``invalid email 'x': ...``). The console shows the common ones as a catalogue
message, with the number kept; any other reason is looked up word for word in the catalogues
(a plugin may name its own), else shown as written. Written by hand: pydantic has no message
catalogue of its own to hand to Babel.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

#: (pattern matched against the whole reason, message id with the pattern's named groups)
REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p, re.S), m) for p, m in (
    (r"(?:Field )?required", "Required."),
    (r"String should have at most (?P<n>\d+) characters?", "At most %(n)s characters."),
    (r"String should have at least (?P<n>\d+) characters?", "At least %(n)s characters."),
    (r"List should have at most (?P<n>\d+) items?.*", "At most %(n)s items."),
    (r"Input should be greater than or equal to (?P<n>-?[\d.]+)", "At least %(n)s."),
    (r"Input should be greater than (?P<n>-?[\d.]+)", "More than %(n)s."),
    (r"Input should be less than or equal to (?P<n>-?[\d.]+)", "At most %(n)s."),
    (r"Input should be less than (?P<n>-?[\d.]+)", "Less than %(n)s."),
    (r"Input should be a valid (?:number|decimal|integer|float).*", "Enter a number."),
    (r"Input should be a valid date.*", "Enter a date (YYYY-MM-DD)."),
    (r"Input should be a valid datetime.*", "Enter a date and time."),
    (r"Input should be .*", "Choose one of the values offered."),
    (r"invalid email .*", "Enter a valid e-mail address."),
    (r"invalid phone .*", "Enter a valid phone number."),
    (r"Decimal input should have no more than (?P<n>\d+) decimal places?", "At most %(n)s decimal places."),
))


def in_words(gettext: Callable[..., str], reason: str) -> str:
    """``reason`` (a field's error) in the reader's language, through ``gettext(msgid, **values)``."""
    for pattern, message in REASONS:
        m = pattern.fullmatch(reason.strip())
        if m:
            return gettext(message, **m.groupdict())
    return gettext(reason)


def errors_in_words(gettext: Callable[..., str], errors: Any) -> Any:
    """A template's ``{field: reason}`` with every reason in words; anything else unchanged."""
    if not isinstance(errors, dict):
        return errors
    return {k: in_words(gettext, v) if isinstance(v, str) else v for k, v in errors.items()}
