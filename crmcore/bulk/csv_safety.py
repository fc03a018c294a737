"""Spreadsheet formula ("CSV injection") neutralisation for CSV exports.

A spreadsheet opening a CSV file may run a cell as a formula when it starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (OWASP "CSV
injection").  Applications also skip leading blanks and control characters,
and some accept fullwidth forms (``＝ ＋ － ＠``), so those count too.

Rules (shared by all three functions, so they always agree):

* A value is *dangerous* when

  - it starts with a tab or a carriage return, or its leading run of
    whitespace/control characters contains one; or
  - its first character after leading whitespace/control characters
    (ASCII controls, DEL, C1 controls, every Unicode whitespace, zero-width
    and bidi formatting characters, BOM) is one of ``= + - @ ＝ ＋ － ＠`` --
    **except** a plain decimal number matching ``-?[0-9]+(\\.[0-9]+)?``
    exactly (e.g. ``-12.50``): exports contain signed money amounts that must
    stay numbers for spreadsheet users and round-trip unchanged.  Anything
    else starting with ``-`` (``-1e5``, ``-cmd``, ``- 5``) is prefixed, as
    OWASP advises; the prefix is removed again on import, so no data is lost.

* ``neutralise_cell`` prefixes a dangerous value with one single quote ``'``.
  To keep the transformation reversible it also prefixes a value that
  *already* starts with quotes when the text after all its leading quotes is
  dangerous (``'=1`` -> ``''=1``).

* ``restore_cell`` removes exactly one leading quote when the text after all
  leading quotes is dangerous, and returns anything else unchanged.  Hence
  ``restore_cell(neutralise_cell(s)) == s`` for every string ``s``.

Apply ``neutralise_cell`` to every exported text cell and ``restore_cell`` to
every imported text cell of a file produced by the export.
"""
from __future__ import annotations

import re

__all__ = ["TRIGGERS", "is_dangerous", "neutralise_cell", "restore_cell"]

#: Characters that make a spreadsheet treat a cell as a formula.
TRIGGERS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")

# Everything a spreadsheet may skip before looking at the first "real" char.
# (All Unicode whitespace is below U+3001; computing it keeps the set exact.)
_IGNORABLE = "".join(
    ch
    for ch in map(chr, range(0x3001))
    if ch.isspace() or ch < " " or "\x7f" <= ch <= "\x9f"
) + "\u00ad\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\ufeff"

# A value can only need work if its first character is one of these.
_SUSPECT_FIRST = frozenset(_IGNORABLE) | TRIGGERS | {"'"}

_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def _formula_like(value: str) -> bool:
    """The core rule, without the leading-quote extension."""
    rest = value.lstrip(_IGNORABLE)
    skipped = len(value) - len(rest)
    if skipped and ("\t" in value[:skipped] or "\r" in value[:skipped]):
        return True
    if not rest or rest[0] not in TRIGGERS:
        return False
    return not (skipped == 0 and _PLAIN_NUMBER.fullmatch(value))


def is_dangerous(value: str) -> bool:
    """True if :func:`neutralise_cell` would prefix *value*.

    That is: a spreadsheet could run it as a formula, or it starts with
    single quotes followed by such a value (prefixed so the export can be
    undone exactly by :func:`restore_cell`).
    """
    if not value or value[0] not in _SUSPECT_FIRST:
        return False
    if value[0] == "'":
        return _formula_like(value.lstrip("'"))
    return _formula_like(value)


def neutralise_cell(value: str) -> str:
    """Return *value* made inert for spreadsheets (prefixed with ``'`` if dangerous)."""
    if not value or value[0] not in _SUSPECT_FIRST:
        return value
    return "'" + value if is_dangerous(value) else value


def restore_cell(value: str) -> str:
    """Undo :func:`neutralise_cell` exactly: drop the one ``'`` it added, if any."""
    if value[:1] != "'":
        return value
    if _formula_like(value.lstrip("'")):
        return value[1:]
    return value
