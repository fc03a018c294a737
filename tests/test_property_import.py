"""Property-based tests of the readers and the importer (hypothesis): generated CSV and JSON
Lines with text from every Unicode category, huge and tiny numbers and edge dates.

Whatever the content: `crm import` ends with exit 0 or 1 and never an internal error, every row
is accounted for (inserted + unchanged + rejected = rows), and the database holds exactly the
accepted rows with their values; every ledger still balances to its entries.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import math
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.bulk.csv_safety import restore_cell
from crmcore.models import Account, Customer, Transaction

SETTINGS = settings(max_examples=20, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
COUNTER = itertools.count()

# every Unicode category (hypothesis leaves out surrogates by default; JSON Lines adds them below)
any_text = st.text(st.characters(codec=None), max_size=40)
edge_text = st.sampled_from(["", " ", "\x00", "a\x00b", "\x1b[31mred", "=cmd|'/C calc'!A0", "'=1", "ÖZTÜRK", "\u202e",
                             "\ufeff", "\ud800", "x" * 250, "😀" * 60, "\r", "\n", "\t", "\"", "'", ",", "\\"])
text_value = st.one_of(any_text, edge_text)
number = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True, places=None),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1e400", "1e27", "-0", "0.001", "9999999999999.99", "10000000000000", "1e-400", "0x10", "1_000", "١٢"]),
)
date_value = st.one_of(
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59)).map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["9999-12-31", "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00", "2024-02-30", "2024-01-01"]),
    any_text,
)


def ok_exit(res) -> None:
    assert res.exit_code in (0, 1), res.output
    assert "internal error" not in res.output and "Traceback" not in res.output, res.output


def summary(output: str) -> dict[str, int]:
    line = next(s for s in output.splitlines() if " inserted, " in s)
    parts = line.split(": ", 1)[1].split(" in ")[0].split(", ")
    return {p.split(" ")[1]: int(p.split(" ")[0]) for p in parts}


def json_scalar(value: object) -> str:
    """A JSON token for a generated value (numbers as raw literals, so 1e400 reaches the reader)."""
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else json.dumps(str(value))
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else json.dumps(str(value))
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)


def stored_customers(crm_url: str, prefix: str) -> dict[str, str]:
    crm = CRM.open(crm_url, entry_points=False, config={})
    try:
        with crm.unit_of_work(read_only=True) as uow:
            return dict(uow.session.execute(select(Customer.external_ref, Customer.name)
                                            .where(Customer.external_ref.like(f"{prefix}%"))).all())
    finally:
        crm.close()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@SETTINGS
@given(rows=st.lists(st.tuples(text_value, text_value, text_value), min_size=1, max_size=8))
def test_customer_files_of_any_content(cli, tmp_path, crm_url, fmt, rows):
    prefix = f"E{next(COUNTER)}-"
    given_rows = [(f"{prefix}{i}:{suffix}", name, region) for i, (suffix, name, region) in enumerate(rows)]
    path = tmp_path / f"c.{fmt}"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")  # quotes cells holding \r or \n
        w.writerow(["external_ref", "name", "region"])
        w.writerows([[k, n.replace("\ud800", "?"), r.replace("\ud800", "?")] for k, n, r in given_rows])
        path.write_bytes(buf.getvalue().encode("utf-8", "surrogatepass"))
    else:
        path.write_text("".join("{" + f'"external_ref": {json.dumps(k)}, "name": {json.dumps(n)}, "region": {json.dumps(r)}' + "}\n"
                                for k, n, r in given_rows), encoding="utf-8")
    res = cli("import", "customers", str(path), "--report", str(tmp_path / "r.csv"))
    ok_exit(res)
    counts = summary(res.output)
    assert counts["inserted"] + counts["rejected"] == len(given_rows) and counts["updated"] == counts["unchanged"] == 0
    stored = stored_customers(crm_url, prefix)
    assert len(stored) == counts["inserted"]
    names = {k.strip(): n for k, n, _ in given_rows}
    for key, name in stored.items():  # what is stored is what was given (stripped; CSV quote prefix undone)
        want = names[key]
        if fmt == "csv":
            want = restore_cell(want.replace("\ud800", "?"))
        assert name == want.strip()
        assert not any(ord(c) < 32 or 0x7f <= ord(c) <= 0x9f for c in name)
    again = cli("import", "customers", str(path), "--report", str(tmp_path / "r.csv"))  # idempotent
    ok_exit(again)
    assert summary(again.output)["inserted"] == 0 and summary(again.output)["unchanged"] == counts["inserted"]


@pytest.fixture
def customer_c1(cli, tmp_path):
    (tmp_path / "c1.csv").write_text("external_ref,name\nC1,Acme\n", encoding="utf-8")
    assert cli("import", "customers", str(tmp_path / "c1.csv")).exit_code == 0


@SETTINGS
@given(rows=st.lists(st.tuples(st.sampled_from(["invoice", "payment", "adjustment", "credit_note", "bogus"]), number,
                               date_value, st.one_of(st.none(), text_value)), min_size=1, max_size=8))
def test_transaction_files_of_any_numbers_and_dates(cli, tmp_path, crm_url, customer_c1, rows):
    prefix = f"P{next(COUNTER)}-"
    lines = []
    for i, (kind, amount, when, description) in enumerate(rows):
        fields = ['"customer_ref": "C1"', f'"kind": {json.dumps(kind)}', f'"amount": {json_scalar(amount)}',
                  f'"occurred_at": {json.dumps(when)}', f'"reference": "{prefix}{i}"']
        if description is not None:
            fields.append(f'"description": {json.dumps(description)}')
        lines.append("{" + ", ".join(fields) + "}\n")
    path = tmp_path / "t.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    res = cli("import", "transactions", str(path), "--report", str(tmp_path / "r.csv"))
    ok_exit(res)
    counts = summary(res.output)
    assert counts["inserted"] + counts["rejected"] == len(rows)
    crm = CRM.open(crm_url, entry_points=False, config={})
    try:
        with crm.unit_of_work(read_only=True) as uow:
            s = uow.session
            n = s.scalar(select(func.count()).select_from(Transaction).where(Transaction.reference.like(f"{prefix}%")))
            entries = s.execute(select(Transaction.kind, Transaction.amount)).all()
            balance = s.scalar(select(Account.balance))
    finally:
        crm.close()
    assert n == counts["inserted"]
    sign = {"invoice": 1, "payment": -1, "credit_note": -1, "adjustment": 1}
    assert (balance or Decimal(0)) == sum((sign[k.value] * a for k, a in entries), Decimal(0))
