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
  valid JSON, unknown or missing keys in a JSON object, ...) never raise: the
  row is yielded with :attr:`SourceRow.error` set to a short reason, and the
  caller reports it with :attr:`SourceRow.line` and moves on.  When ``error``
  is set, ``data`` holds whatever could be recovered (possibly nothing) and
  must not be imported.

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

import codecs
import csv
import io
import json
import os
import sys
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter
from typing import Any, TextIO

__all__ = [
    "FORMATS",
    "FileFormatError",
    "SourceRow",
    "describe_source",
    "detect_format",
    "iter_rows",
    "open_source",
    "parse_mapping",
    "read_source",
]

#: Canonical formats understood by :func:`iter_rows`.
FORMATS = ("csv", "jsonl")

_FORMAT_NAMES = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "json": "jsonl"}
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


class FileFormatError(ValueError):
    """A problem with the input file as a whole.

    ``str(exc)`` is a single human sentence naming the file (or "standard
    input") and the problem; it is meant to be shown to the user as is.
    """


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One record read from the input.

    ``line``: 1-based physical line on which the record starts (for CSV the
    header is line 1; a quoted value spanning several lines reports the line
    where the record begins).
    ``data``: field name (after ``--map`` and case folding, spelled as in
    ``allowed_fields``) -> value.  CSV values are ``str`` or ``None``; JSON
    Lines values keep their JSON types (see the module docstring).
    ``error``: ``None`` for a good row; otherwise a short reason why the row
    cannot be used (``data`` is then best effort and must not be imported).
    """

    line: int
    data: dict[str, Any]
    error: str | None = None


# Building a frozen dataclass through its generated __init__ costs three
# object.__setattr__ calls; on the hot path we fill the slots directly, which
# is about twice as fast and produces an identical object.
_new_object = object.__new__
_set_line = SourceRow.line.__set__  # type: ignore[attr-defined]
_set_data = SourceRow.data.__set__  # type: ignore[attr-defined]
_set_error = SourceRow.error.__set__  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------
# Naming and opening sources
# ---------------------------------------------------------------------------

def describe_source(path: str) -> str:
    """How a source is named in messages: the path, or "standard input" for "-"."""
    return "standard input" if path == "-" else str(path)


def _stream_name(stream: Any) -> str:
    try:
        name = getattr(stream, "name", None)
    except Exception:  # pragma: no cover - exotic streams
        name = None
    if name in ("<stdin>", "-", 0):
        return "standard input"
    if isinstance(name, str) and name:
        return name
    return "the input"


def detect_format(path: str, format: str | None = None) -> str:
    """Return ``"csv"`` or ``"jsonl"`` for *path*.

    An explicit *format* wins (``csv``, ``jsonl``, ``ndjson`` or ``json``;
    the last two mean JSON Lines).  Otherwise the extension decides:
    ``.csv`` -> csv, ``.jsonl``/``.ndjson``/``.json`` -> jsonl (a ``.json`` file
    is accepted only if it really is JSON Lines: one object per line; this is
    checked by :func:`iter_rows` on the first line).
    """
    name = describe_source(path)
    if format is not None:
        fmt = _FORMAT_NAMES.get(str(format).strip().lower())
        if fmt is None:
            raise FileFormatError(
                f"Cannot read {name}: unknown format {format!r}; use csv or jsonl."
            )
        return fmt
    if path == "-":
        raise FileFormatError(
            "Cannot tell the format of standard input; pass --format csv or --format jsonl."
        )
    ext = os.path.splitext(str(path))[1].lower()
    fmt = _EXTENSIONS.get(ext)
    if fmt is None:
        what = f"extension {ext!r}" if ext else "no extension"
        raise FileFormatError(
            f"Cannot tell the format of {name} ({what}); name it .csv or .jsonl, "
            "or pass --format csv or --format jsonl."
        )
    return fmt


def _text_encoding(encoding: str, name: str) -> str:
    try:
        codec = codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise FileFormatError(
            f"Cannot read {name}: unknown encoding {encoding!r}."
        ) from None
    # utf-8-sig decodes plain UTF-8 too and drops a leading byte order mark.
    return "utf-8-sig" if codec.name == "utf-8" else codec.name


def _encoding_label(encoding: str | None) -> str:
    if not encoding:
        return "text in the expected encoding"
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        name = encoding
    if name in ("utf-8", "utf-8-sig"):
        return "UTF-8"
    return name.upper()


def _sniff(buffer: Any, name: str, encoding: str) -> None:
    """Recognise a few common wrong inputs from their first bytes (no consumption)."""
    peek = getattr(buffer, "peek", None)
    if peek is None:
        return
    try:
        head = peek(8)[:8]
    except (OSError, ValueError):  # pragma: no cover - unpeekable stream
        return
    if head.startswith(b"PK\x03\x04"):
        raise FileFormatError(
            f"{name} looks like an Excel workbook or a ZIP archive, not CSV or JSON Lines; "
            "export it as CSV (UTF-8) first."
        )
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileFormatError(
            f"{name} looks like an old Excel (.xls) workbook, not CSV or JSON Lines; "
            "export it as CSV (UTF-8) first."
        )
    if head.startswith(b"\x1f\x8b"):
        raise FileFormatError(f"{name} is gzip-compressed; decompress it first.")
    if encoding == "utf-8-sig" and head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileFormatError(
            f"{name} is UTF-16 encoded, not UTF-8; re-save it as UTF-8 or pass --encoding utf-16."
        )


@contextmanager
def open_source(
    path: str, *, format: str | None = None, encoding: str = "utf-8"
) -> Iterator[TextIO]:
    """Open *path* (``"-"`` = standard input) as a lazily decoded text stream.

    The stream is an :class:`io.TextIOWrapper` over the binary file (for
    stdin: over ``sys.stdin.buffer``), opened with ``newline=""`` as the csv
    module requires and ``errors="strict"`` so that bytes that are not valid in
    *encoding* are detected (by :func:`iter_rows`, while streaming).  A UTF-8
    byte order mark is skipped.  The format is validated here (see
    :func:`detect_format`) so a bad extension fails before anything is read;
    use :func:`detect_format` to learn it.  Standard input is not closed.

    Raises :class:`FileFormatError` if the file cannot be opened, the format
    is unknown, or the content is obviously not text (Excel, ZIP, gzip,
    UTF-16 while UTF-8 was expected).
    """
    name = describe_source(path)
    detect_format(path, format)
    text_encoding = _text_encoding(encoding, name)
    if path == "-":
        stdin = sys.stdin
        buffer = getattr(stdin, "buffer", None)
        if buffer is None:
            # Already a text stream without bytes underneath (embedding, tests):
            # nothing to decode, use it as is.
            yield stdin
            return
        _sniff(buffer, name, text_encoding)
        stream = io.TextIOWrapper(buffer, encoding=text_encoding, errors="strict", newline="")
        try:
            yield stream
        finally:
            try:
                stream.detach()  # leave sys.stdin usable / unclosed
            except ValueError:  # pragma: no cover - already detached
                pass
        return
    try:
        raw = open(path, "rb")
    except FileNotFoundError:
        raise FileFormatError(f"{name} does not exist.") from None
    except IsADirectoryError:
        raise FileFormatError(f"{name} is a directory, not a file.") from None
    except PermissionError:
        raise FileFormatError(f"{name} cannot be read: permission denied.") from None
    except OSError as exc:
        raise FileFormatError(f"{name} cannot be opened: {exc.strerror or exc}.") from None
    with raw:
        _sniff(raw, name, text_encoding)
        stream = io.TextIOWrapper(raw, encoding=text_encoding, errors="strict", newline="")
        with stream:
            yield stream


# ---------------------------------------------------------------------------
# --map COLUMN=FIELD
# ---------------------------------------------------------------------------

def parse_mapping(pairs: Sequence[str] | None) -> dict[str, str]:
    """Parse ``--map source_column=field`` options into ``{source_column: field}``.

    The text is split on the *last* ``=`` (field names never contain one, a
    column name might), and both sides are stripped.  Column and field names
    are compared case-insensitively, like CSV headers.  Raises
    :class:`ValueError` with a clear message for: no ``=``, an empty side, the
    same column mapped twice, or two columns mapped to the same field.
    Whether the field exists is checked by :func:`iter_rows`.
    """
    if pairs is None:
        return {}
    if isinstance(pairs, str):
        pairs = [pairs]
    result: dict[str, str] = {}
    sources: dict[str, str] = {}
    targets: dict[str, str] = {}
    for pair in pairs:
        if not isinstance(pair, str) or "=" not in pair:
            raise ValueError(
                f"Invalid --map {pair!r}: expected COLUMN=FIELD, for example --map 'E-mail address=email'."
            )
        source, _, target = pair.rpartition("=")
        source, target = source.strip(), target.strip()
        if not source or not target:
            raise ValueError(
                f"Invalid --map {pair!r}: both the column name and the field name are needed (COLUMN=FIELD)."
            )
        skey, tkey = source.casefold(), target.casefold()
        if skey in sources:
            raise ValueError(
                f"Column {source!r} is mapped twice (--map {sources[skey]!r} and --map {pair!r})."
            )
        if tkey in targets:
            raise ValueError(
                f"Field {target!r} is the target of two columns (--map {targets[tkey]!r} and --map {pair!r})."
            )
        sources[skey] = pair
        targets[tkey] = pair
        result[source] = target
    return result


class _Fields:
    """Resolves header names / JSON keys to canonical field names."""

    def __init__(
        self,
        allowed_fields: Collection[str],
        required_fields: Collection[str],
        mapping: Mapping[str, str] | None,
    ) -> None:
        self.allowed = list(dict.fromkeys(allowed_fields))
        self.canonical = {f.casefold(): f for f in self.allowed}
        required: list[str] = []
        for field in required_fields:
            canon = self.canonical.get(field.casefold())
            if canon is None:
                raise ValueError(f"required field {field!r} is not among the allowed fields")
            required.append(canon)
        self.required = required
        self.mapped: dict[str, str] = {}
        self.mapping_sources: dict[str, str] = {}  # casefolded source -> source as given
        for source, target in (mapping or {}).items():
            source_s, target_s = source.strip(), target.strip()
            canon = self.canonical.get(target_s.casefold())
            if canon is None:
                raise FileFormatError(
                    f"--map {source_s}={target_s}: {target_s!r} is not a known field; "
                    f"the known fields are: {', '.join(self.allowed)}."
                )
            key = source_s.casefold()
            if key in self.mapped:
                raise FileFormatError(f"Column {source_s!r} is mapped twice.")
            self.mapped[key] = canon
            self.mapping_sources[key] = source_s

    def resolve(self, name: str) -> str | None:
        key = name.strip().casefold()
        field = self.mapped.get(key)
        if field is None and key not in self.mapping_sources:
            field = self.canonical.get(key)
        return field

    def allowed_text(self) -> str:
        return ", ".join(self.allowed)


# ---------------------------------------------------------------------------
# Errors found while streaming
# ---------------------------------------------------------------------------

def _count_line_breaks(data: bytes) -> int:
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _decode_error(
    name: str, stream: Any, exc: UnicodeDecodeError, lines_done: int
) -> FileFormatError:
    """Turn a decoding error into a message with the (approximate) line number.

    *lines_done* lines were handed out completely before the failing chunk was
    decoded; the chunk starts inside line ``lines_done + 1``, so the line
    breaks in the chunk before the bad byte give the bad line.
    """
    line = lines_done + 1
    if isinstance(exc.object, (bytes, bytearray)):
        line += _count_line_breaks(bytes(exc.object[: exc.start]))
    label = _encoding_label(getattr(stream, "encoding", None) or exc.encoding)
    if label == "UTF-8":
        hint = "re-save it as UTF-8 or pass --encoding latin-1"
    else:
        hint = "check the --encoding option"
    return FileFormatError(f"{name} is not valid {label} near line {line}; {hint}.")


#: Longest physical line read, in characters. A file without line breaks (``/dev/zero``, a
#: binary dump) would otherwise be read whole into memory looking for the end of its first line.
MAX_LINE_CHARS = 1_000_000


def _bounded_lines(stream: Iterable[str], name: str, limit: int) -> Iterator[str]:
    """The lines of *stream*, each read with a length cap; a longer line is a whole-file error.

    A text stream is read with ``readline(limit + 1)``, so memory never holds more than one
    capped line; other iterables (lists in tests, embedding) are checked after the fact.
    """
    readline = getattr(stream, "readline", None)
    lineno = 0
    if readline is None:
        for line in stream:
            lineno += 1
            if len(line) > limit:
                raise _long_line(name, lineno, limit)
            yield line
        return
    while line := readline(limit + 1):
        lineno += 1
        if len(line) > limit:
            raise _long_line(name, lineno, limit)
        yield line


def _long_line(name: str, lineno: int, limit: int) -> FileFormatError:
    return FileFormatError(
        f"{name}: line {lineno} is longer than {limit:,} characters (a file without line breaks, "
        "or not a CSV/JSON Lines file?); it was not read further."
    )


def _track_lines(lines: Iterable[str], state: list[Any]) -> Iterator[str]:
    """Pass lines through, remembering the last one and whether EOF was reached.

    state[0]: last line read; state[1]: True once the input is exhausted.
    Costs ~50 ns per line; lets us tell a truncated last line (no line
    terminator) from an ordinary short row without buffering anything.
    """
    for line in lines:
        state[0] = line
        yield line
    state[1] = True


# ---------------------------------------------------------------------------
# iter_rows
# ---------------------------------------------------------------------------

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


# -- CSV ---------------------------------------------------------------------

def _csv_rows(
    lines: Iterable[str], stream: Any, fields: _Fields, name: str, ignore_unknown: bool
) -> Iterator[SourceRow]:
    state: list[Any] = [None, False]
    reader = csv.reader(_track_lines(lines, state), strict=True)
    header = _read_header(reader, stream, name)
    columns = _check_header(header, fields, name, ignore_unknown)
    return _csv_records(reader, state, stream, name, columns, len(header))


def _read_header(reader: Any, stream: Any, name: str) -> list[str]:
    try:
        for row in reader:
            if row and row[0].startswith("\ufeff") and reader.line_num == 1:
                row[0] = row[0][1:]
            if any(cell.strip() for cell in row):
                return row
    except csv.Error as exc:
        raise FileFormatError(
            f"The header of {name} (line {reader.line_num}) cannot be read: {exc}."
        ) from None
    except UnicodeDecodeError as exc:
        raise _decode_error(name, stream, exc, reader.line_num) from exc
    raise FileFormatError(
        f"{name} is empty; a CSV file needs a header row naming the columns."
    )


def _check_header(
    header: list[str], fields: _Fields, name: str, ignore_unknown: bool
) -> list[str | None]:
    """Return the field for each column (None = ignored), or raise FileFormatError."""
    columns: list[str | None] = []
    unknown: list[str] = []
    unnamed: list[str] = []
    seen: dict[str, str] = {}
    duplicates: list[str] = []
    present: set[str] = set()
    for index, raw in enumerate(header):
        label = raw.strip()
        present.add(label.casefold())
        if not label:
            unnamed.append(str(index + 1))
            columns.append(None)
            continue
        field = fields.resolve(label)
        if field is None:
            unknown.append(repr(label))
            columns.append(None)
            continue
        if field in seen:
            first = seen[field]
            if first == label:
                duplicates.append(f"{label!r} appears twice")
            else:
                duplicates.append(f"{first!r} and {label!r} both mean field {field!r}")
            columns.append(None)
            continue
        seen[field] = label
        columns.append(field)

    not_found = [src for key, src in fields.mapping_sources.items() if key not in present]
    if not_found:
        listed = ", ".join(repr(s) for s in not_found)
        raise FileFormatError(
            f"{name} has no column {listed} (named in --map); "
            f"its columns are: {', '.join(repr(h.strip()) for h in header)}."
        )
    if (unknown or unnamed) and not ignore_unknown:
        parts = []
        if unknown:
            parts.append(f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
        if unnamed:
            parts.append(
                f"{'columns' if len(unnamed) > 1 else 'a column'} without a name "
                f"(column{'s' if len(unnamed) > 1 else ''} {', '.join(unnamed)})"
            )
        hint = ""
        if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
            hint = " (the file seems to use another separator than a comma; only comma-separated files are supported)"
        raise FileFormatError(
            f"{name} has {' and '.join(parts)}{hint}; "
            f"the allowed columns are: {fields.allowed_text()} "
            "(rename the column or use --map COLUMN=FIELD)."
        )
    if duplicates:
        raise FileFormatError(f"{name} has duplicate columns: {'; '.join(duplicates)}.")
    missing = [f for f in fields.required if f not in seen]
    if missing:
        raise FileFormatError(
            f"{name} is missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}."
        )
    return columns


def _csv_records(
    reader: Any,
    state: list[Any],
    stream: Any,
    name: str,
    columns: list[str | None],
    width: int,
) -> Iterator[SourceRow]:
    kept = [i for i, field in enumerate(columns) if field is not None]
    keys = [columns[i] for i in kept]
    select: Any
    if len(kept) == width:
        select = None
    elif len(kept) == 1:
        select = itemgetter(slice(kept[0], kept[0] + 1))
    elif not kept:
        select = itemgetter(slice(0, 0))
    else:
        select = itemgetter(*kept)

    new, set_line, set_data, set_error = _new_object, _set_line, _set_data, _set_error
    row_cls = SourceRow
    prev = reader.line_num  # line on which the previous record ended
    while True:
        try:
            # Hot loop: keep the per-row work to a handful of C calls.
            for row in reader:
                start = prev + 1
                prev = reader.line_num
                if len(row) == width:
                    if select is not None:
                        row = select(row)
                    if "" in row:
                        data = {k: v or None for k, v in zip(keys, row)}
                    else:
                        data = dict(zip(keys, row))
                    record = new(row_cls)
                    set_line(record, start)
                    set_data(record, data)
                    set_error(record, None)
                    yield record
                elif row:
                    bad = _width_error(row, width, columns, state, start)
                    if bad is not None:
                        yield bad
                # else: blank line, skipped
            return
        except csv.Error as exc:
            start = prev + 1
            prev = reader.line_num
            yield SourceRow(start, {}, _csv_error_reason(exc, start, prev, state[1]))
        except UnicodeDecodeError as exc:
            raise _decode_error(name, stream, exc, reader.line_num) from exc


def _width_error(
    row: list[str], width: int, columns: list[str | None], state: list[Any], start: int
) -> SourceRow | None:
    found = len(row)
    if found == 1 and not row[0].strip():
        return None  # a line holding only spaces: treat as blank
    data = {k: v or None for k, v in zip(columns, row) if k is not None}
    last_line = state[0]
    if found < width and isinstance(last_line, str) and not last_line.endswith(("\n", "\r")):
        # Only the very last line of a file can lack a line terminator.
        return SourceRow(start, data, "truncated last line")
    return SourceRow(start, data, f"expected {width} fields, found {found}")


def _csv_error_reason(exc: csv.Error, start: int, end: int, at_eof: bool) -> str:
    text = str(exc)
    if at_eof:
        if end <= start:
            return "truncated last line"
        return (
            f"unterminated quoted value: the quote opened on line {start} is never closed "
            f"(lines {start}-{end} could not be read)"
        )
    if "field larger than field limit" in text:
        return (
            f"value longer than {csv.field_size_limit()} characters (lines {start}-{end}); "
            "probably a quote that is never closed"
        )
    return f"badly quoted value ({text})"


# -- JSON Lines --------------------------------------------------------------

def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not allowed in JSON")


_json_loads = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant).decode
_JSON_KINDS = {list: "an array", str: "a string", int: "a number", bool: "true/false",
               type(None): "null", Decimal: "a number"}
_MISSING = object()


def _json_kind(value: Any) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)


#: JSON values nested deeper than this are refused (a row error): the decoder recurses, and
#: so would everything downstream that walks the value.
MAX_JSON_DEPTH = 32
_TOO_DEEP = f"JSON value nested more than {MAX_JSON_DEPTH} levels deep"


def _too_deep(obj: dict[str, Any]) -> bool:
    """True if a value of the (already parsed) object nests deeper than MAX_JSON_DEPTH."""
    stack = [(v, 1) for v in obj.values() if type(v) in (list, dict)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        children = value.values() if type(value) is dict else value
        stack.extend((c, depth + 1) for c in children if type(c) in (list, dict))
    return False


def _jsonl_rows(
    source: Iterable[str], stream: Any, fields: _Fields, name: str, ignore_unknown: bool
) -> Iterator[SourceRow]:
    lines = iter(source)
    lineno = 0
    try:
        for line in lines:
            lineno += 1
            if lineno == 1 and line.startswith("\ufeff"):
                line = line[1:]
            if line and not line.isspace():
                break
        else:
            raise FileFormatError(
                f"{name} is empty; a JSON Lines file needs one JSON object per line."
            )
    except UnicodeDecodeError as exc:
        raise _decode_error(name, stream, exc, lineno) from exc
    try:
        first = _json_loads(line)
    except RecursionError:  # a valid start of an object, nested beyond any use: a bad row
        first = None
    except ValueError:
        first = _MISSING
    if first is not None and type(first) is not dict:
        raise FileFormatError(
            f"{name} is not in JSON Lines format: line {lineno} is not a JSON object on its own line; "
            "save the data as JSON Lines (one JSON object per line, no surrounding array)."
        )
    return _jsonl_records(lines, stream, lineno, first, fields, name, ignore_unknown)


def _jsonl_records(
    lines: Iterator[str],
    stream: Any,
    first_line: int,
    first: dict[str, Any] | None,
    fields: _Fields,
    name: str,
    ignore_unknown: bool,
) -> Iterator[SourceRow]:
    # Keys that can be taken over without renaming: canonical names that are
    # not themselves the source of a --map.
    direct = frozenset(f for f in fields.allowed if f.casefold() not in fields.mapping_sources)
    required = frozenset(fields.required)
    cache: dict[str, str | None] = {}
    loads = _json_loads

    def convert(lineno: int, obj: dict[str, Any]) -> SourceRow:
        error = None
        if obj.keys() <= direct:
            data = obj
        else:
            data = {}
            unknown: list[str] = []
            clashes: list[str] = []
            for key, value in obj.items():
                field = cache.get(key, _MISSING)  # type: ignore[arg-type]
                if field is _MISSING:
                    field = fields.resolve(key)
                    if len(cache) < 4096:
                        cache[key] = field  # type: ignore[assignment]
                if field is None:
                    unknown.append(key)
                elif field in data:
                    clashes.append(f"{key!r} duplicates field {field!r}")
                else:
                    data[field] = value  # type: ignore[index]
            if clashes:
                error = "; ".join(clashes)
            elif unknown and not ignore_unknown:
                error = (
                    f"unknown field{'s' if len(unknown) > 1 else ''} "
                    f"{', '.join(repr(k) for k in unknown)}; allowed fields are: {fields.allowed_text()}"
                )
        if "" in data.values():
            data = {k: (None if v == "" else v) for k, v in data.items()}
        if error is None and (list in map(type, data.values()) or dict in map(type, data.values())) and _too_deep(data):
            error = _TOO_DEEP
        if error is None and not required <= data.keys():
            missing = [f for f in fields.required if f not in data]
            error = f"missing required field{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
        row = _new_object(SourceRow)
        _set_line(row, lineno)
        _set_data(row, data)
        _set_error(row, error)
        return row

    yield SourceRow(first_line, {}, _TOO_DEEP) if first is None else convert(first_line, first)
    lineno = first_line
    try:
        for lineno, line in enumerate(lines, first_line + 1):
            if line.isspace() or not line:
                continue
            try:
                obj = loads(line)
            except RecursionError:
                yield SourceRow(lineno, {}, _TOO_DEEP)
                continue
            except ValueError as exc:
                reason = getattr(exc, "msg", None) or str(exc)
                col = getattr(exc, "colno", None)
                where = f" at column {col}" if col else ""
                yield SourceRow(lineno, {}, f"invalid JSON: {reason}{where}")
                continue
            if type(obj) is not dict:
                yield SourceRow(lineno, {}, f"expected a JSON object, found {_json_kind(obj)}")
                continue
            yield convert(lineno, obj)
    except UnicodeDecodeError as exc:
        raise _decode_error(name, stream, exc, lineno) from exc


# ---------------------------------------------------------------------------
# Convenience
# ---------------------------------------------------------------------------

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
