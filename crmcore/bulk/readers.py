"""Streaming readers for ``crm import`` (CSV and JSON Lines).

The readers turn a file of any size into an iterator of :class:`SourceRow`
objects while keeping memory flat: the input is decoded lazily by an
:class:`io.TextIOWrapper` and parsed one record at a time, so a 10 million row
file costs no more memory than a 10 row one.

Two kinds of problems are reported, and they are kept apart on purpose:

* **Whole-file problems** (the file does not exist, is empty, is not UTF-8,
  has an unknown/missing/duplicate column, is not JSON Lines, ...) raise
  :class:`FileFormatError` with one human sentence that names the file (or
  "standard input").  Problems visible in the header (CSV) or in the first
  non-blank line (JSON Lines) are raised by :func:`iter_rows` itself, before
  any row is produced.  Encoding errors are found while streaming, so they are
  raised during iteration, after the rows that precede them were yielded.
* **Row problems** (wrong number of cells, broken quoting, a line that is not
  valid JSON, an unknown key or a field given twice in a JSON object, ...) never
  raise: the row is yielded with :attr:`SourceRow.error` set to a short reason,
  and the caller reports it with :attr:`SourceRow.line` and moves on.  When
  ``error`` is set, ``data`` holds whatever could be recovered (possibly nothing)
  and must not be imported.

The same rule for both formats: a field given twice is refused (a CSV header
with a duplicate column, a JSON object with a key twice or two keys meaning one
field); a required field is a column of the CSV header, and a JSON object that
leaves it out reads as a CSV row with that cell empty (``None``, for validation
to refuse; the row still names its key for the rule on keys repeated in a file).

Values:

* CSV cells are strings; an empty cell becomes ``None``.  Cells are *not*
  stripped (leave that to validation, e.g. pydantic's ``str_strip_whitespace``).
* JSON Lines values keep their JSON types (``str``, ``int``, ``bool``,
  ``None``, lists, objects) so that pydantic validates them natively; numbers
  with a fraction or exponent are parsed as :class:`decimal.Decimal` so money
  amounts stay exact.  An empty string becomes ``None``, as in CSV.
  ``NaN``/``Infinity`` are rejected as invalid JSON.

Typical use::

    fmt = detect_format(path, format_option)
    with open_source(path, format=fmt, encoding=encoding) as stream:
        for row in iter_rows(stream, format=fmt, allowed_fields=FIELDS,
                             required_fields=REQUIRED,
                             mapping=parse_mapping(map_options),
                             source_name=describe_source(path)):
            if row.error:
                report(row.line, None, row.error)
            else:
                ...validate row.data...

or simply ``for row in read_source(path, ...)``.

Only the standard library is used.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping

from crmcore.bulk.csv_reader import _csv_rows
from crmcore.bulk.jsonl_reader import MAX_JSON_DEPTH, _jsonl_rows
from crmcore.bulk.sources import (
    _FORMAT_NAMES,
    FORMATS,
    MAX_LINE_CHARS,
    FileFormatError,
    SourceRow,
    _bounded_lines,
    _Fields,
    _stream_name,
    describe_source,
    detect_format,
    open_source,
    parse_mapping,
)

__all__ = [
    "FORMATS",
    "MAX_JSON_DEPTH",
    "MAX_LINE_CHARS",
    "FileFormatError",
    "SourceRow",
    "describe_source",
    "detect_format",
    "iter_rows",
    "open_source",
    "parse_mapping",
    "read_source",
]

def iter_rows(
    stream: Iterable[str],
    *,
    format: str,
    allowed_fields: Collection[str],
    required_fields: Collection[str] = (),
    mapping: Mapping[str, str] | None = None,
    source_name: str | None = None,
    ignore_unknown: bool = False,
    max_line: int = MAX_LINE_CHARS,
) -> Iterator[SourceRow]:
    """Stream the records of *stream* as :class:`SourceRow` objects.

    *stream* is a text stream (ideally from :func:`open_source`; for CSV it
    must have been opened with ``newline=""``) or any iterable of lines.
    *format* is ``"csv"`` or ``"jsonl"`` (``"ndjson"``/``"json"`` accepted).
    *allowed_fields* are the target field names; *required_fields* must be a
    subset.  *mapping* is ``{source column or key: field}`` (see
    :func:`parse_mapping`).  *source_name* names the input in messages
    (default: the stream's ``name``; ``"<stdin>"`` becomes "standard input").
    With *ignore_unknown*, unknown columns/keys are dropped instead of being
    an error. A physical line longer than *max_line* characters stops the
    read with :class:`FileFormatError` naming the line (memory stays bounded).

    The header (CSV) or first non-blank line (JSON Lines) is read and checked
    by this call, so whole-file problems raise :class:`FileFormatError` here;
    a mapping that targets an unknown field raises :class:`FileFormatError`.  The
    returned iterator yields rows lazily; it raises :class:`FileFormatError`
    only for an encoding error met while streaming.
    """
    fmt = _FORMAT_NAMES.get(str(format).strip().lower())
    if fmt is None:
        raise ValueError(f"unknown format {format!r}; expected 'csv' or 'jsonl'")
    fields = _Fields(allowed_fields, required_fields, mapping)
    name = source_name or _stream_name(stream)
    lines = _bounded_lines(stream, name, max_line)
    if fmt == "csv":
        return _csv_rows(lines, stream, fields, name, ignore_unknown)
    return _jsonl_rows(lines, stream, fields, name, ignore_unknown)

def read_source(
    path: str,
    *,
    allowed_fields: Collection[str],
    required_fields: Collection[str] = (),
    mapping: Mapping[str, str] | None = None,
    format: str | None = None,
    encoding: str = "utf-8",
    ignore_unknown: bool = False,
) -> Iterator[SourceRow]:
    """Open *path* and yield its rows: :func:`open_source` + :func:`iter_rows`.

    A generator: nothing is opened until the first ``next()``; the file is
    closed when the generator is exhausted or closed.
    """
    fmt = detect_format(path, format)
    with open_source(path, format=fmt, encoding=encoding) as stream:
        yield from iter_rows(
            stream,
            format=fmt,
            allowed_fields=allowed_fields,
            required_fields=required_fields,
            mapping=mapping,
            source_name=describe_source(path),
            ignore_unknown=ignore_unknown,
        )
