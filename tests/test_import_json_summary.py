"""`crm import --json`: one JSON object on stdout for scripts, printed after the last commit, with
the same counts as the text summary and exit 1 when a row was rejected."""
from __future__ import annotations

import json
from pathlib import Path


def test_import_json_summary_counts_and_first_errors(cli, crm, tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text("external_ref,name\nA1,Alpha\nB2,\nC3,Gamma\n", encoding="utf-8")
    r = cli("import", "customers", str(f), "--json", "--report", str(tmp_path / "err.csv"))
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert (out["entity"], out["inserted"], out["updated"], out["unchanged"], out["rejected"]) == ("customers", 2, 0, 0, 1)
    assert out["committed"] is True and out["error_report"] == str(tmp_path / "err.csv")
    assert [(e["line"], e["field"], e["key"]) for e in out["first_errors"]] == [(3, "name", "B2")]
    again = cli("import", "customers", str(f), "--json", "--report", str(tmp_path / "err.csv"))
    assert json.loads(again.stdout)["unchanged"] == 2


def test_import_json_strict_reports_nothing_committed(cli, crm, tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text("external_ref,name\nA1,Alpha\nB2,\n", encoding="utf-8")
    r = cli("import", "customers", str(f), "--json", "--strict", "--report", str(tmp_path / "err.csv"))
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert out["committed"] is False and out["inserted"] == 0 and out["rejected"] == 1
    assert cli("customer", "list").stdout.count("A1") == 0
