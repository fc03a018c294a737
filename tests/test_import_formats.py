"""Issue 25: a file means the same in CSV and in JSON Lines, on both engines.

A key left out of a JSON object is an empty CSV cell: validation refuses an empty required
field with the same reason, and the row still names its key, so the key again later in the
file is a duplicate in both formats (JSON Lines used to refuse the row in the reader, and the
key's second row was imported). A field given twice is refused in both: a CSV header with a
column twice stops the file, a JSON object with a key twice is refused (that line only); the
json module alone would have kept the last value.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crmcore import CRM
from crmcore.models import Customer

COLUMNS = ("external_ref", "name", "email")
ROWS: list[dict[str, Any]] = [  # what each row says; None: an empty cell / a key left out
    {"external_ref": "X1", "name": None, "email": "x@example.com"},
    {"external_ref": "X1", "name": "Xavier", "email": "x@example.com"},
    {"external_ref": "Y1", "name": "Yvonne", "email": None},
    {"external_ref": None, "name": "Nobody", "email": None},
]


def write(path: Path, fmt: str, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        if fmt == "csv":
            w = csv.writer(f)
            w.writerow(COLUMNS)
            w.writerows([r[c] or "" for c in COLUMNS] for r in rows)
        else:
            f.writelines(json.dumps({c: r[c] for c in COLUMNS if r[c] is not None}) + "\n" for r in rows)
    return path


def errors(report: Path, first_line: int) -> list[tuple[int, str, str, str]]:
    """The error report as (row number in the file, field, reason, key)."""
    with report.open(encoding="utf-8") as f:
        return [(int(r["line"]) - first_line + 1, r["field"], r["reason"], r["key"]) for r in csv.DictReader(f)]


def names(crm_url: str) -> dict[str, str]:
    crm = CRM.open(crm_url, entry_points=False, config={})
    try:
        with crm.unit_of_work(read_only=True) as uow:
            return dict(uow.session.execute(select(Customer.external_ref, Customer.name)).all())
    finally:
        crm.close()


@pytest.mark.parametrize("entity", ["customers", "leads"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_left_out_key_is_an_empty_cell(entity, fmt, cli, crm_url, tmp_path):
    import crm_sales_automation.plugin as sales

    path = write(tmp_path / f"x.{fmt}", fmt, ROWS)
    report = tmp_path / "errors.csv"
    res = cli("import", entity, str(path), "--report", str(report), plugins=[sales])
    assert res.exit_code == 1, res.output
    assert "1 inserted, 0 updated, 0 unchanged, 3 rejected" in res.output
    assert errors(report, 2 if fmt == "csv" else 1) == [
        (1, "name", "Field required", "X1"),
        (2, "external_ref", "duplicate external_ref 'X1' (also on line {})".format(2 if fmt == "csv" else 1), "X1"),
        (4, "external_ref", "is required", ""),
    ]
    if entity == "customers":
        assert names(crm_url) == {"Y1": "Yvonne"}


def test_an_entry_without_an_amount_is_refused_alike(cli, tmp_path):
    """The ledger (no duplicate rule of its own): the same reason in both formats."""
    reasons = []
    for fmt in ("csv", "jsonl"):
        path = tmp_path / f"t.{fmt}"
        if fmt == "csv":
            path.write_text("customer_ref,reference,kind,amount,occurred_at\nZ1,R1,invoice,,2024-01-02\n", encoding="utf-8")
        else:
            path.write_text('{"customer_ref": "Z1", "reference": "R1", "kind": "invoice", "occurred_at": "2024-01-02"}\n',
                            encoding="utf-8")
        report = tmp_path / f"errors-{fmt}.csv"
        res = cli("import", "transactions", str(path), "--report", str(report))
        assert res.exit_code == 1, res.output
        with report.open(encoding="utf-8") as f:
            reasons.append([(r["field"], r["reason"]) for r in csv.DictReader(f)])
    assert reasons[0] == reasons[1] == [("amount", "Field required")]


def test_a_key_twice_in_a_json_object_is_refused_not_the_last_value(cli, crm_url, tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"external_ref": "D1", "name": "First", "name": "Second"}\n'
                    '{"external_ref": "D2", "name": "Dora", "NAME": "Dorothy"}\n'
                    '{"external_ref": "D3", "name": "Dana"}\n', encoding="utf-8")
    res = cli("import", "customers", str(path))
    assert res.exit_code == 1, res.output
    assert "1 inserted, 0 updated, 0 unchanged, 2 rejected" in res.output
    assert "line 1: row: duplicate key: 'name' appears twice" in res.output
    assert "line 2: row: duplicate key: 'name' and 'NAME' both mean field 'name'" in res.output
    assert names(crm_url) == {"D3": "Dana"}


def test_a_column_twice_stops_a_csv_file(cli, crm_url, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("external_ref,name,name\nD1,First,Second\n", encoding="utf-8")
    res = cli("import", "customers", str(path))
    assert res.exit_code == 1, res.output
    assert "has duplicate columns: 'name' appears twice" in res.output
    assert names(crm_url) == {}
