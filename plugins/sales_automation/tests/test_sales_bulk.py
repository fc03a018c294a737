"""Leads through the core bulk path: import is idempotent, e-mail duplicates are reported, export round-trips."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from crm_sales_automation.models import Lead
from sqlalchemy import func, select

from crmcore import CRM

Run = Callable[..., Any]
HEADER = "external_ref,name,company,email,phone,country,source,status,owner,notes\n"


def _leads(crm: CRM) -> dict[str, SimpleNamespace]:
    with crm.unit_of_work(read_only=True) as uow:
        return {x.external_ref: SimpleNamespace(phone=x.phone, status=x.status, source=x.source, owner_id=x.owner_id)
                for x in uow.session.scalars(select(Lead))}


def test_import_reports_duplicates_and_reimport_is_a_no_op(scrm: CRM, scli: Run, tmp_path: Path) -> None:
    assert scli("user", "add", "anna", "--name", "Anna", "--role", "admin").exit_code == 0
    f = tmp_path / "leads.csv"
    f.write_text(HEADER + "\n".join([
        "L1,Jana Novak,Alpine,jana@alpine.example.com,030 1234567,DE,web,qualified,anna,met at fair",
        "L2,Otto,,otto@example.com,,,referral,,,",
        "L3,Otto again,,otto@example.com,,,referral,,,",      # same e-mail as L2: reported
        "L4,Bad source,,,,,magic,,,",
        "L5,Ghost owner,,,,,,,ghost,",
        "L6,No converting,,,,,,converted,,",
        "L1,Jana twice,,,,,,,,",                              # the key again in the same file
    ]) + "\n", encoding="utf-8")
    res = scli("--user", "anna", "import", "leads", str(f))
    assert res.exit_code == 1, res.output
    assert "2 inserted, 0 updated, 0 unchanged, 5 rejected" in res.output
    assert "otto@example.com already belongs to line 3 (L2); not duplicated" in res.output
    assert "unknown user 'ghost'" in res.output and "by import" in res.output
    assert "'magic' is not allowed (allowed: referral, advertising, event, web, cold_call, partner, existing_customer, " \
           "other; configured in crm.toml [vocabularies] lead_sources)" in res.output
    leads = _leads(scrm)
    assert set(leads) == {"L1", "L2"}
    assert (leads["L1"].phone, leads["L1"].status.value, leads["L1"].source) == ("+49301234567", "qualified", "web")
    assert leads["L1"].owner_id is not None and leads["L2"].status.value == "new"

    again = scli("--user", "anna", "import", "leads", str(f))
    assert "0 inserted, 0 updated, 2 unchanged, 5 rejected" in again.output
    assert "otto@example.com already belongs to lead" in again.output  # now the stored lead
    assert len(_leads(scrm)) == 2

    f2 = tmp_path / "update.csv"
    f2.write_text(HEADER + "L2,Otto Meier,,otto@example.com,,,referral,contacted,,\n"
                  "L9,Copy of Jana,,JANA@alpine.example.com,,,,,,\n", encoding="utf-8")
    res = scli("--user", "anna", "import", "leads", str(f2))
    assert "0 inserted, 1 updated, 0 unchanged, 1 rejected" in res.output, res.output
    assert _leads(scrm)["L2"].status.value == "contacted"


def test_export_round_trips(scrm: CRM, scli: Run, tmp_path: Path) -> None:
    f = tmp_path / "leads.csv"
    f.write_text(HEADER + "A1,Anna,ACME,a@acme.example.com,+4930999,,event,,,\"=cmd|' /C calc'!A0\"\n", encoding="utf-8")
    assert scli("import", "leads", str(f)).exit_code == 0
    out = scli("export", "leads")
    assert out.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert rows[0]["external_ref"] == "A1" and rows[0]["source"] == "event" and rows[0]["status"] == "new"
    assert not rows[0]["notes"].startswith("=")  # formula cells are made inert by the core
    back = tmp_path / "back.csv"
    back.write_text(out.stdout, encoding="utf-8")
    res = scli("import", "leads", str(back))
    assert "0 inserted, 0 updated, 1 unchanged, 0 rejected" in res.output, res.output
    with scrm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Lead)) == 1
        assert uow.session.scalar(select(Lead.notes)) == "=cmd|' /C calc'!A0"
    jl = scli("export", "leads", "--format", "jsonl")
    if jl.exit_code == 0:
        assert json.loads(jl.stdout.splitlines()[0])["name"] == "Anna"
