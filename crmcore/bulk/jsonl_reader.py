"""The JSON Lines reader behind :func:`crmcore.bulk.readers.iter_rows`: one JSON object per
line, numbers with a fraction as Decimal, nesting bounded.

Each object is read by the CSV reader's rule, so a file means the same in either format: a
field given twice (the same key twice, or two keys that both mean it) is refused, as a CSV
header with a duplicate column is (here for that line only, there is no header); a key left
out is an empty cell (validation refuses an empty required field, and the row's key counts for
the rule on keys repeated in a file, exactly as for a CSV row with that cell empty)."""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from crmcore.bulk.sources import FileFormatError, SourceRow, _decode_error, _Fields, _new_object, _set_data, _set_error, _set_line


def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not allowed in JSON")


class _RepeatedKey(ValueError):
    """A JSON object names a key twice (the json module would silently keep the last value)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key: {key!r} appears twice")
        self.reason = str(self)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return obj


_json_loads = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant, object_pairs_hook=_unique_keys).decode
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
    first: Any = {}
    error = None  # the first line is an object, but a bad row
    try:
        first = _json_loads(line)
    except RecursionError:  # a valid start of an object, nested beyond any use
        error = _TOO_DEEP
    except _RepeatedKey as exc:
        error = exc.reason
    except ValueError:
        first = _MISSING
    if error is not None and not line.lstrip().startswith("{"):  # e.g. an array of objects
        first = _MISSING
    if type(first) is not dict:
        raise FileFormatError(
            f"{name} is not in JSON Lines format: line {lineno} is not a JSON object on its own line; "
            "save the data as JSON Lines (one JSON object per line, no surrounding array)."
        )
    return _jsonl_records(lines, stream, lineno, error or first, fields, name, ignore_unknown)


def _parse_object(loads: Any, line: str) -> dict[str, Any] | str:
    """One line as a JSON object, or why it is not one (the row's error)."""
    try:
        obj = loads(line)
    except RecursionError:
        return _TOO_DEEP
    except _RepeatedKey as exc:
        return exc.reason
    except ValueError as exc:
        reason = getattr(exc, "msg", None) or str(exc)
        col = getattr(exc, "colno", None)
        return f"invalid JSON: {reason}{' at column ' + str(col) if col else ''}"
    if type(obj) is not dict:
        return f"expected a JSON object, found {_json_kind(obj)}"
    return obj


def _jsonl_records(
    lines: Iterator[str],
    stream: Any,
    first_line: int,
    first: dict[str, Any] | str,
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
            labels: dict[str, str] = {}
            unknown: list[str] = []
            clashes: list[str] = []
            for key, value in obj.items():
                field = cache.get(key, _MISSING)
                if field is _MISSING:
                    field = fields.resolve(key)
                    if len(cache) < 4096:
                        cache[key] = field
                if field is None:
                    unknown.append(key)
                elif field in data:
                    clashes.append(f"{labels[field]!r} and {key!r} both mean field {field!r}")
                else:
                    data[field] = value  # type: ignore[index]
                    labels[field] = key  # type: ignore[index]
            if clashes:
                error = "duplicate key: " + "; ".join(clashes)
            elif unknown and not ignore_unknown:
                error = (
                    f"unknown field{'s' if len(unknown) > 1 else ''} "
                    f"{', '.join(repr(k) for k in unknown)}; allowed fields are: {fields.allowed_text()}"
                )
        if "" in data.values():
            data = {k: (None if v == "" else v) for k, v in data.items()}
        if error is None and (list in map(type, data.values()) or dict in map(type, data.values())) and _too_deep(data):
            error = _TOO_DEEP
        if not required <= data.keys():  # as a CSV row with the cell empty: for validation to refuse
            data = {**data, **{f: None for f in fields.required if f not in data}}
        row = _new_object(SourceRow)
        _set_line(row, lineno)
        _set_data(row, data)
        _set_error(row, error)
        return row

    yield SourceRow(first_line, {}, first) if isinstance(first, str) else convert(first_line, first)
    lineno = first_line
    try:
        for lineno, line in enumerate(lines, first_line + 1):
            if line.isspace() or not line:
                continue
            obj = _parse_object(loads, line)
            yield SourceRow(lineno, {}, obj) if isinstance(obj, str) else convert(lineno, obj)
    except UnicodeDecodeError as exc:
        raise _decode_error(name, stream, exc, lineno) from exc
