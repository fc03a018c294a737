"""Tests for crmcore.bulk.readers and crmcore.bulk.csv_safety."""
from __future__ import annotations

import io
import random
import sys
from decimal import Decimal

import pytest

from crmcore.bulk import csv_safety
from crmcore.bulk.csv_safety import is_dangerous, neutralise_cell, restore_cell
from crmcore.bulk.readers import (
    FileFormatError,
    SourceRow,
    detect_format,
    iter_rows,
    open_source,
    parse_mapping,
    read_source,
)

FIELDS = ["name", "email", "phone", "amount"]
REQUIRED = ["name", "email"]


def write(tmp_path, filename, content):
    path = tmp_path / filename
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return str(path)


def rows_of(path, *, format=None, encoding="utf-8", fields=FIELDS, required=REQUIRED, **kw):
    fmt = detect_format(path, format)
    with open_source(path, format=fmt, encoding=encoding) as stream:
        return list(
            iter_rows(stream, format=fmt, allowed_fields=fields, required_fields=required, **kw)
        )


def csv_rows(text, **kw):
    """iter_rows over an in-memory CSV text."""
    kw.setdefault("allowed_fields", FIELDS)
    kw.setdefault("required_fields", REQUIRED)
    return list(iter_rows(io.StringIO(text, newline=""), format="csv", source_name="t.csv", **kw))


def jsonl_rows(text, **kw):
    kw.setdefault("allowed_fields", FIELDS)
    kw.setdefault("required_fields", REQUIRED)
    return list(iter_rows(io.StringIO(text, newline=""), format="jsonl", source_name="t.jsonl", **kw))


# ---------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------

def test_csv_happy_path_with_mapping_and_case_insensitive_headers(tmp_path):
    path = write(
        tmp_path,
        "c.csv",
        " NAME ,E-Mail Address,Phone\r\nAlice,a@example.com,\r\nBob,b@example.com,123\r\n",
    )
    rows = rows_of(path, mapping=parse_mapping(["e-mail address=Email"]))
    assert rows == [
        SourceRow(2, {"name": "Alice", "email": "a@example.com", "phone": None}),
        SourceRow(3, {"name": "Bob", "email": "b@example.com", "phone": "123"}),
    ]
    assert all(r.error is None for r in rows)
    assert list(rows[0].data) == ["name", "email", "phone"]  # canonical spelling and order


def test_csv_row_is_frozen_dataclass():
    row = csv_rows("name,email\nA,a@x\n")[0]
    with pytest.raises(AttributeError):
        row.line = 5  # type: ignore[misc]
    assert row == SourceRow(line=2, data={"name": "A", "email": "a@x"}, error=None)


def test_csv_bom_is_accepted(tmp_path):
    path = write(tmp_path, "bom.csv", b"\xef\xbb\xbfname,email\nA,a@x\n")
    assert rows_of(path) == [SourceRow(2, {"name": "A", "email": "a@x"})]


def test_csv_bom_in_text_stream_is_accepted():
    assert csv_rows("\ufeffname,email\nA,a@x\n") == [SourceRow(2, {"name": "A", "email": "a@x"})]


def test_csv_embedded_newlines_report_record_start_line():
    text = 'name,email,phone\nA,a@x,"line1\nline2\nline3"\nB,b@x,1\n"C\r\nC",c@x,2\n'
    rows = csv_rows(text)
    assert [(r.line, r.error) for r in rows] == [(2, None), (5, None), (6, None)]
    assert rows[0].data["phone"] == "line1\nline2\nline3"
    assert rows[2].data["name"] == "C\r\nC"


def test_csv_blank_lines_are_skipped_and_counted():
    rows = csv_rows("name,email\n\nA,a@x\n   \n\nB,b@x\n")
    assert [(r.line, r.data["name"]) for r in rows] == [(3, "A"), (6, "B")]


def test_csv_too_many_and_too_few_cells_are_row_errors():
    rows = csv_rows("name,email,phone\nA,a@x\nB,b@x,1,extra\nC,c@x,3\n")
    assert [(r.line, r.error) for r in rows] == [
        (2, "expected 3 fields, found 2"),
        (3, "expected 3 fields, found 4"),
        (4, None),
    ]
    assert rows[0].data == {"name": "A", "email": "a@x"}


def test_csv_truncated_last_line():
    rows = csv_rows("name,email,phone\nA,a@x,1\nB,b@")
    assert [(r.line, r.error) for r in rows] == [(2, None), (3, "truncated last line")]


def test_csv_short_last_line_with_newline_is_ordinary_width_error():
    rows = csv_rows("name,email,phone\nA,a@x\n")
    assert rows[0].error == "expected 3 fields, found 2"


def test_csv_complete_last_line_without_newline_is_fine():
    rows = csv_rows("name,email\nA,a@x")
    assert rows == [SourceRow(2, {"name": "A", "email": "a@x"})]


def test_csv_unterminated_quote_on_last_line_is_truncated_last_line():
    rows = csv_rows('name,email\nA,a@x\nB,"b@')
    assert [(r.line, r.error) for r in rows] == [(2, None), (3, "truncated last line")]


def test_csv_unterminated_quote_mid_file_is_reported_not_swallowed():
    rows = csv_rows('name,email\nA,a@x\n"B,b@x\nC,c@x\nD,d@x\n')
    assert [r.line for r in rows] == [2, 3]
    assert rows[0].error is None
    assert "never closed" in rows[1].error and "lines 3-5" in rows[1].error


def test_csv_bad_quoting_is_row_error_and_reading_continues():
    rows = csv_rows('name,email\n"A"x,a@x\nB,b@x\n')
    assert rows[0].line == 2 and rows[0].error.startswith("badly quoted value")
    assert rows[1] == SourceRow(3, {"name": "B", "email": "b@x"})


def test_wrong_encoding_names_line(tmp_path):
    path = write(tmp_path, "latin.csv", "name,email\nAlice,a@x\nMüller,m@x\n".encode("latin-1"))
    with pytest.raises(FileFormatError) as info:
        rows_of(path)
    msg = str(info.value)
    assert "latin.csv" in msg and "is not valid UTF-8 near line 3" in msg
    assert "--encoding latin-1" in msg


def test_wrong_encoding_is_detected_lazily_with_line_number(tmp_path):
    lines = ["name,email"] + [f"user{i},u{i}@x" for i in range(20000)]
    data = ("\n".join(lines) + "\n").encode() + "Müller,m@x\n".encode("latin-1")
    path = write(tmp_path, "big.csv", data)
    seen = 0
    with open_source(path) as stream:
        rows = iter_rows(stream, format="csv", allowed_fields=FIELDS, required_fields=REQUIRED)
        with pytest.raises(FileFormatError, match=r"not valid UTF-8 near line 20002;"):
            for _ in rows:
                seen += 1
    assert seen > 10000  # rows before the bad chunk were streamed out first


def test_latin1_with_explicit_encoding(tmp_path):
    path = write(tmp_path, "latin.csv", "name,email\nMüller,m@x\n".encode("latin-1"))
    assert rows_of(path, encoding="latin-1") == [SourceRow(2, {"name": "Müller", "email": "m@x"})]


def test_utf16_is_recognised(tmp_path):
    path = write(tmp_path, "u16.csv", "name,email\nA,a@x\n".encode("utf-16"))
    with pytest.raises(FileFormatError, match="UTF-16"):
        rows_of(path)


def test_excel_workbook_is_recognised(tmp_path):
    path = write(tmp_path, "book.csv", b"PK\x03\x04\x14\x00\x06\x00rest")
    with pytest.raises(FileFormatError, match="Excel"):
        rows_of(path)


@pytest.mark.parametrize("content", [b"", b"   \n\n \t\n"])
def test_empty_csv(tmp_path, content):
    path = write(tmp_path, "empty.csv", content)
    with pytest.raises(FileFormatError, match=r"empty\.csv is empty"):
        rows_of(path)


def test_header_only_yields_nothing(tmp_path):
    assert rows_of(write(tmp_path, "h.csv", "name,email\n")) == []
    assert rows_of(write(tmp_path, "h2.csv", "name,email")) == []


def test_unknown_columns():
    with pytest.raises(FileFormatError) as info:
        csv_rows("name,email,colour,size\nA,a@x,red,L\n")
    msg = str(info.value)
    assert "unknown columns 'colour', 'size'" in msg
    assert "name, email, phone, amount" in msg and msg.startswith("t.csv")


def test_unnamed_columns():
    with pytest.raises(FileFormatError, match=r"has a column without a name \(column 3\)"):
        csv_rows("name,email,\nA,a@x,\n")
    rows = csv_rows("name,email,,\nA,a@x,,\n", ignore_unknown=True)
    assert rows == [SourceRow(2, {"name": "A", "email": "a@x"})]


def test_unknown_columns_ignored_on_request():
    rows = csv_rows("colour,name,email\nred,A,a@x\nblue,B\n", ignore_unknown=True)
    assert rows[0] == SourceRow(2, {"name": "A", "email": "a@x"})
    assert rows[1].error == "expected 3 fields, found 2"


def test_single_kept_column_with_ignore_unknown():
    rows = csv_rows("x,name,y\n1,A,2\n", allowed_fields=["name"], required_fields=["name"],
                    ignore_unknown=True)
    assert rows == [SourceRow(2, {"name": "A"})]


def test_missing_required_columns():
    with pytest.raises(FileFormatError, match="missing required column email"):
        csv_rows("name,phone\nA,1\n")


@pytest.mark.parametrize("header", ["name,email,email", "name,email,EMAIL"])
def test_duplicate_columns(header):
    with pytest.raises(FileFormatError, match="duplicate columns"):
        csv_rows(header + "\nA,a@x,b@x\n")


def test_duplicate_through_mapping():
    with pytest.raises(FileFormatError, match="both mean field 'email'"):
        csv_rows("name,email,mail\nA,a,b\n", mapping={"mail": "email"})


def test_mapping_column_not_in_header():
    with pytest.raises(FileFormatError, match="no column 'E-Mail'"):
        csv_rows("name,email\nA,a@x\n", mapping={"E-Mail": "email"})


def test_mapping_to_unknown_field():
    with pytest.raises(ValueError, match="'emial' is not a known field"):
        csv_rows("name,mail\nA,a@x\n", mapping={"mail": "emial"})


def test_semicolon_separated_hint():
    with pytest.raises(FileFormatError, match="separator"):
        csv_rows("name;email\nA;a@x\n")


# ---------------------------------------------------------------------------
# JSON Lines
# ---------------------------------------------------------------------------

def test_jsonl_happy_path_blank_lines_and_types(tmp_path):
    text = (
        '{"name": "Alice", "email": "a@x", "amount": 12.50}\n'
        "\n"
        '{"Name": "Bob", "mail": "b@x", "phone": null, "amount": 3}\r\n'
        '   \n'
        '{"name": "Carol", "email": "c@x", "phone": ""}\n'
    )
    path = write(tmp_path, "c.jsonl", text)
    rows = rows_of(path, mapping={"MAIL": "email"})
    assert rows == [
        SourceRow(1, {"name": "Alice", "email": "a@x", "amount": Decimal("12.50")}),
        SourceRow(3, {"name": "Bob", "email": "b@x", "phone": None, "amount": 3}),
        SourceRow(5, {"name": "Carol", "email": "c@x", "phone": None}),
    ]


def test_jsonl_bad_lines_are_row_errors():
    text = (
        '{"name": "A", "email": "a@x"}\n'
        '{"name": "B", "email": \n'
        '[1, 2]\n'
        '{"name": "C", "colour": "red", "email": "c@x"}\n'
        '{"name": "D"}\n'
        '{"name": "E", "email": NaN}\n'
        '{"name": "F", "email": "f@x"}\n'
    )
    rows = jsonl_rows(text)
    assert [r.line for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert rows[0].error is None and rows[6].error is None
    assert rows[1].error.startswith("invalid JSON")
    assert rows[2].error == "expected a JSON object, found an array"
    assert rows[3].error.startswith("unknown field 'colour'")
    assert rows[4] == SourceRow(5, {"name": "D", "email": None})  # as an empty CSV cell: validation refuses it
    assert rows[5].error.startswith("invalid JSON")


def test_jsonl_ignore_unknown_keys():
    rows = jsonl_rows('{"name": "C", "colour": "red", "email": "c@x"}\n', ignore_unknown=True)
    assert rows == [SourceRow(1, {"name": "C", "email": "c@x"})]


def test_jsonl_key_clash_is_row_error():
    rows = jsonl_rows('{"name": "C", "Email": "c@x", "email": "d@x"}\n')
    assert rows[0].error == "duplicate key: 'Email' and 'email' both mean field 'email'"


@pytest.mark.parametrize("first", [True, False])
def test_jsonl_key_given_twice_is_a_row_error_not_the_last_value(first):
    """The json module keeps the last of two equal keys; a CSV header with a column twice is
    refused, so the object is refused (that line only), wherever it is in the file."""
    good = '{"name": "A", "email": "a@x"}\n'
    twice = '{"name": "B", "email": "b@x", "email": "c@x"}\n'
    nested = '{"name": "C", "email": "c@x", "phone": {"n": 1, "n": 2}}\n'
    rows = jsonl_rows(twice + nested + good if first else good + twice + nested)
    bad = rows[:2] if first else rows[1:]
    assert [r.error for r in bad] == ["duplicate key: 'email' appears twice", "duplicate key: 'n' appears twice"]
    assert [r.line for r in rows] == [1, 2, 3] and (rows[2] if first else rows[0]).error is None


def test_csv_and_jsonl_read_a_missing_or_repeated_field_alike():
    """The rule of both readers: an empty cell and a left-out key are the same row (``None``);
    a field given twice is refused (the CSV header for the file, the JSON object for its line)."""
    assert csv_rows("name,email\nD,\n") == [SourceRow(2, {"name": "D", "email": None})]
    assert jsonl_rows('{"name": "D"}\n') == jsonl_rows('{"name": "D", "email": null}\n') == [
        SourceRow(1, {"name": "D", "email": None})]
    with pytest.raises(FileFormatError, match="'email' appears twice"):
        csv_rows("name,email,email\nD,d@x,e@x\n")
    assert jsonl_rows('{"name": "D", "email": "d@x", "email": "e@x"}\n')[0].error == "duplicate key: 'email' appears twice"
    with pytest.raises(FileFormatError, match="'email' and 'EMAIL' both mean field 'email'"):
        csv_rows("name,email,EMAIL\nD,d@x,e@x\n")
    assert jsonl_rows('{"name": "D", "email": "d@x", "EMAIL": "e@x"}\n')[0].error == (
        "duplicate key: 'email' and 'EMAIL' both mean field 'email'")


def test_jsonl_array_with_a_key_twice_is_still_not_json_lines(tmp_path):
    path = write(tmp_path, "data.json", '[{"name": "A", "name": "B"}]\n')
    with pytest.raises(FileFormatError, match="is not in JSON Lines format"):
        rows_of(path)


@pytest.mark.parametrize(
    "text", ['[{"name": "A", "email": "a@x"}]\n', '{\n  "name": "A",\n  "email": "a@x"\n}\n', '"x"\n']
)
def test_jsonl_first_line_not_object_is_file_error(tmp_path, text):
    path = write(tmp_path, "data.json", "\n" + text)
    with pytest.raises(FileFormatError) as info:
        rows_of(path)
    msg = str(info.value)
    assert "data.json is not in JSON Lines format: line 2" in msg and "one JSON object per line" in msg


def test_json_extension_with_jsonl_content_works(tmp_path):
    path = write(tmp_path, "data.json", '{"name": "A", "email": "a@x"}\n')
    assert rows_of(path) == [SourceRow(1, {"name": "A", "email": "a@x"})]


def test_jsonl_empty_file(tmp_path):
    with pytest.raises(FileFormatError, match="is empty"):
        rows_of(write(tmp_path, "e.jsonl", "\n  \n"))


def test_jsonl_wrong_encoding(tmp_path):
    data = '{"name": "A", "email": "a@x"}\n{"name": "Müller", "email": "m@x"}\n'.encode("latin-1")
    with pytest.raises(FileFormatError, match="not valid UTF-8 near line 2"):
        rows_of(write(tmp_path, "l.jsonl", data))


def test_jsonl_bom(tmp_path):
    path = write(tmp_path, "b.jsonl", b'\xef\xbb\xbf{"name": "A", "email": "a@x"}\n')
    assert rows_of(path) == [SourceRow(1, {"name": "A", "email": "a@x"})]


# ---------------------------------------------------------------------------
# Opening sources
# ---------------------------------------------------------------------------

def fake_stdin(monkeypatch, data: bytes):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_stdin(monkeypatch):
    fake_stdin(monkeypatch, b"\xef\xbb\xbfname,email\nA,a@x\n")
    with open_source("-", format="csv") as stream:
        rows = list(iter_rows(stream, format="csv", allowed_fields=FIELDS, required_fields=REQUIRED))
    assert rows == [SourceRow(2, {"name": "A", "email": "a@x"})]
    assert not sys.stdin.closed


def test_stdin_encoding_error_names_standard_input(monkeypatch):
    fake_stdin(monkeypatch, "name,email\nMüller,m@x\n".encode("latin-1"))
    with pytest.raises(FileFormatError, match=r"^standard input is not valid UTF-8 near line 2"):
        list(read_source("-", format="csv", allowed_fields=FIELDS, required_fields=REQUIRED))


def test_stdin_needs_format():
    with pytest.raises(FileFormatError, match="standard input"):
        detect_format("-")


def test_format_inference():
    assert detect_format("a.csv") == "csv"
    assert detect_format("A.CSV") == "csv"
    assert detect_format("a.jsonl") == "jsonl"
    assert detect_format("a.ndjson") == "jsonl"
    assert detect_format("a.json") == "jsonl"
    assert detect_format("a.txt", "CSV") == "csv"
    assert detect_format("a.csv", "jsonl") == "jsonl"


def test_unknown_extension(tmp_path):
    path = write(tmp_path, "data.xlsx", b"x")
    with pytest.raises(FileFormatError, match=r"Cannot tell the format of .*data\.xlsx"), open_source(path):
        pass
    with pytest.raises(FileFormatError, match="unknown format"):
        detect_format("a.csv", "xml")


def test_missing_file(tmp_path):
    with pytest.raises(FileFormatError, match="does not exist"), open_source(str(tmp_path / "nope.csv")):
        pass


def test_format_override_reads_other_extension(tmp_path):
    path = write(tmp_path, "export.txt", "name,email\nA,a@x\n")
    assert rows_of(path, format="csv") == [SourceRow(2, {"name": "A", "email": "a@x"})]


def test_read_source_convenience(tmp_path):
    path = write(tmp_path, "c.csv", "name,email\nA,a@x\n")
    rows = list(read_source(path, allowed_fields=FIELDS, required_fields=REQUIRED))
    assert rows == [SourceRow(2, {"name": "A", "email": "a@x"})]


def test_file_error_message_names_path(tmp_path):
    path = write(tmp_path, "e.csv", "")
    with pytest.raises(FileFormatError) as info:
        list(read_source(path, allowed_fields=FIELDS))
    assert str(info.value).startswith(path + " is empty")


# ---------------------------------------------------------------------------
# parse_mapping
# ---------------------------------------------------------------------------

def test_parse_mapping_ok():
    assert parse_mapping([" E-mail Address = email ", "a=b=phone"]) == {
        "E-mail Address": "email",
        "a=b": "phone",
    }
    assert parse_mapping([]) == {}
    assert parse_mapping(None) == {}


@pytest.mark.parametrize(
    "pairs, message",
    [
        (["email"], "expected COLUMN=FIELD"),
        (["=email"], "both the column name and the field name"),
        (["mail= "], "both the column name and the field name"),
        (["mail=email", "MAIL=phone"], "mapped twice"),
        (["mail=email", "e-mail=Email"], "target of two columns"),
    ],
)
def test_parse_mapping_errors(pairs, message):
    with pytest.raises(ValueError, match=message):
        parse_mapping(pairs)


# ---------------------------------------------------------------------------
# CSV formula injection
# ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "value",
    ["=1+2", "+1", "-cmd", "@SUM(A1)", "\t=1", "\r=1", "  =1", "\x01=1", "＝1", "＋1", "－1",
     "＠x", "\t", "\rabc", "\u3000=1", "\u00a0@x", "\ufeff=1", "-1e5", "- 5", "+12", "\n-cmd"],
)
def test_dangerous_cells_are_prefixed(value):
    assert is_dangerous(value)
    assert neutralise_cell(value) == "'" + value
    assert restore_cell("'" + value) == value


@pytest.mark.parametrize(
    "value", ["", "Alice", "-12.50", "-12", "12.50", "0", "a=b", "O'Brien", "'", "''", "'-12.50", " x"]
)
def test_harmless_cells_untouched(value):
    assert not is_dangerous(value)
    assert neutralise_cell(value) == value
    assert restore_cell(value) == value


def test_quote_prefixed_values_round_trip():
    assert neutralise_cell("'=1") == "''=1"
    assert restore_cell("''=1") == "'=1"
    assert neutralise_cell("''+x") == "'''+x"
    assert restore_cell(neutralise_cell("'=1")) == "'=1"
    assert restore_cell("'=1") == "=1"  # what an export of "=1" looks like


def test_round_trip_property():
    rng = random.Random(20240601)
    alphabet = (
        ["=", "+", "-", "@", "'", "\t", "\r", "\n", " ", "\x00", "\x01", "\x1f", "\x7f", "\x85",
         "\u00a0", "\u3000", "\u200b", "\ufeff", "＝", "＋", "－", "＠", ".", "e", "\"", ",",
         *"0123456789", *"abcXYZ", "é", "ß", "漢", "😀"]
    )
    for _ in range(30000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        n = neutralise_cell(s)
        assert restore_cell(n) == s, repr(s)
        assert n == (("'" + s) if is_dangerous(s) else s)
        # an exported cell never starts like a formula
        assert not csv_safety._formula_like(n), repr(s)


def test_neutralised_cells_never_start_with_a_trigger():
    rng = random.Random(7)
    chars = "=+-@\t\r \x01'＝a1."
    for _ in range(20000):
        s = "".join(rng.choice(chars) for _ in range(rng.randint(0, 6)))
        n = neutralise_cell(s)
        if csv_safety._formula_like(s):
            assert n.startswith("'")
