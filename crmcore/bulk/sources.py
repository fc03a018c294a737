"""Naming, opening and decoding an import source; ``--map``; the row type the readers yield.

Shared by the CSV and JSON Lines readers (:mod:`crmcore.bulk.readers` documents the contract)."""
from __future__ import annotations

import codecs
import io
import os
import sys
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TextIO

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
_set_line = SourceRow.__dict__["line"].__set__
_set_data = SourceRow.__dict__["data"].__set__
_set_error = SourceRow.__dict__["error"].__set__

def describe_source(path: str) -> str:
    """How a source is named in messages: the path, or "standard input" for "-"."""
    return "standard input" if path == "-" else str(path)


def _stream_name(stream: Any) -> str:
    try:
        name = getattr(stream, "name", None)
    except Exception:  # noqa: BLE001  # pragma: no cover - an exotic stream's name property may raise anything
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
            with suppress(ValueError):  # already detached
                stream.detach()  # leave sys.stdin usable / unclosed
        return
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the `with raw:` below, once the errors are told apart
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
    hint = "re-save it as UTF-8 or pass --encoding latin-1" if label == "UTF-8" else "check the --encoding option"
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
