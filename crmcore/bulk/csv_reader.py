"""The CSV reader behind :func:`crmcore.bulk.readers.iter_rows`: header checks, then one
:class:`SourceRow` per record with a hot loop of a few C calls per row."""
from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from operator import itemgetter
from typing import Any

from crmcore.bulk.sources import (
    FileFormatError,
    SourceRow,
    _decode_error,
    _Fields,
    _new_object,
    _set_data,
    _set_error,
    _set_line,
    _track_lines,
)


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
                    data = {k: v or None for k, v in zip(keys, row)} if "" in row else dict(zip(keys, row))
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
