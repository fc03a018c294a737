"""Postings within a sane horizon, audited as stored; accounts on hold refuse every entry that raises
what is owed; an import whose rows are all rejected opens no account (issue 25, sections 2 and 6)."""
from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.enums import TransactionKind
from crmcore.errors import ConfigError, InvalidInput
from crmcore.models import Account, AuditEntry, Transaction
from crmcore.schemas import CustomerCreate, TransactionCreate, UserCreate

TX = "customer_ref,kind,amount,currency,occurred_at,reference,due_date"
TODAY = dt.datetime.now(dt.UTC).date()


def count(crm: CRM, model: type) -> int:
    with crm.unit_of_work(read_only=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def a1(crm: CRM) -> int:
    with crm.unit_of_work("test") as uow:
        return uow.customers.create(CustomerCreate(name="Acme", external_ref="A1")).id


def audits(crm: CRM, action: str = "post") -> list[dict]:
    with crm.unit_of_work(read_only=True) as uow:
        return [e.after for e in uow.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))]


# -- the posting horizon -----------------------------------------------------------------------------

@pytest.mark.parametrize("at, message", [
    ("9000-12-31", "occurred_at: 9000-12-31 is more than 366 days ahead (the posting horizon"),
    ("3000-06-30T10:00:00+02:00", "3000-06-30 is more than 366 days ahead"),
    ((TODAY + dt.timedelta(days=368)).isoformat(), "the latest date now is"),
])
def test_cli_refuses_a_posting_beyond_the_horizon(crm: CRM, cli, a1: int, at: str, message: str) -> None:
    res = cli("account", "post", "A1", "invoice", "900", "--ref", "F1", "--at", at)
    assert res.exit_code == 1, res.output
    errors = [x for x in res.output.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and "nothing was posted" in errors[0], res.output
    assert count(crm, Transaction) == 0 and count(crm, Account) == 0 and not audits(crm)


def test_the_horizon_edges_and_due_dates(crm: CRM, cli, a1: int) -> None:
    ok = (TODAY + dt.timedelta(days=365)).isoformat()
    assert cli("account", "post", "A1", "invoice", "9", "--ref", "F1", "--at", ok).exit_code == 0
    last_due = TODAY + dt.timedelta(days=366 + 365)
    assert cli("account", "post", "A1", "invoice", "9", "--ref", "F2", "--due", last_due.isoformat()).exit_code == 0
    res = cli("account", "post", "A1", "invoice", "9", "--ref", "F3", "--due", (last_due + dt.timedelta(days=2)).isoformat())
    assert res.exit_code == 1 and "due_date:" in res.output and "the latest due date now is" in res.output, res.output
    assert cli("account", "post", "A1", "payment", "9", "--ref", "F4", "--at", "1900-01-01").exit_code == 0


def test_python_api_refuses_dates_before_1900_and_beyond_the_horizon(crm: CRM, a1: int) -> None:
    for when, message in ((dt.datetime(1, 1, 1, tzinfo=dt.UTC), "0001-01-01 is before 1900-01-01"),
                          (dt.datetime(1899, 12, 31, 23, 59, tzinfo=dt.UTC), "1899-12-31 is before 1900-01-01"),
                          (dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.UTC), "9999-12-31 is more than 366 days ahead")):
        with pytest.raises(InvalidInput, match=message), crm.unit_of_work("test") as uow:
            uow.accounts.post(a1, TransactionCreate(kind=TransactionKind.INVOICE, amount=Decimal(5), reference="X",
                                                    occurred_at=when))
    with pytest.raises(InvalidInput, match="due_date: 1800-01-01 is before"), crm.unit_of_work("test") as uow:
        uow.accounts.post(a1, TransactionCreate(kind=TransactionKind.INVOICE, amount=Decimal(5), reference="X",
                                                due_date=dt.date(1800, 1, 1)))
    assert count(crm, Transaction) == 0 and count(crm, Account) == 0


def test_the_horizon_is_a_setting(make_crm, a1: int, monkeypatch) -> None:
    crm = make_crm(config={"ledger": {"max_future_days": 10}})
    post = lambda days, ref: _post(crm, a1, ref, dt.datetime.now(dt.UTC) + dt.timedelta(days=days))
    post(9, "OK")
    with pytest.raises(InvalidInput, match="more than 10 days ahead"):
        post(11, "LATE")
    monkeypatch.setenv("CRM_LEDGER_MAX_FUTURE_DAYS", "20")
    post(11, "LATE")
    monkeypatch.setenv("CRM_LEDGER_MAX_FUTURE_DAYS", "-1")
    with pytest.raises(ConfigError, match="CRM_LEDGER_MAX_FUTURE_DAYS: max_future_days"):
        post(1, "X")
    monkeypatch.delenv("CRM_LEDGER_MAX_FUTURE_DAYS")
    bad = make_crm(config={"ledger": {"max_future_dayz": 10}})
    with pytest.raises(ConfigError, match=r"crm.toml \[ledger\]: max_future_dayz"):
        _post(bad, a1, "Y", None)


def test_a_bad_horizon_setting_is_one_line_exit_2(crm: CRM, cli, a1: int, tmp_path) -> None:
    (tmp_path / "crm.toml").write_text("[ledger]\nmax_future_days = 'soon'\n", encoding="utf-8")
    res = cli("account", "post", "A1", "invoice", "5", "--ref", "X")
    assert res.exit_code == 2 and res.output.count("error:") == 1 and "crm.toml [ledger]: max_future_days" in res.output, res.output


def _post(crm: CRM, cid: int, ref: str, when: dt.datetime | None) -> None:
    with crm.unit_of_work("test") as uow:
        uow.accounts.post(cid, TransactionCreate(kind=TransactionKind.INVOICE, amount=Decimal(5), reference=ref, occurred_at=when))


def test_import_rejects_rows_beyond_the_horizon(crm: CRM, cli, a1: int, tmp_path) -> None:
    path = tmp_path / "t.csv"
    far = (TODAY + dt.timedelta(days=400)).isoformat()
    path.write_text(f"{TX}\nA1,invoice,900,EUR,9999-12-31,X1,\nA1,invoice,900,EUR,2026-01-01,X2,\nA1,invoice,11,EUR,0001-01-01,X3,\n"
                    f"A1,invoice,12,EUR,{far},X4,\nA1,invoice,13,EUR,2026-01-01,X5,9999-01-01\n", encoding="utf-8")
    res = cli("import", "transactions", str(path))
    assert res.exit_code == 1 and "1 inserted, 0 updated, 0 unchanged, 4 rejected" in res.output, res.output
    bad = {int(r["line"]): r for r in csv.DictReader((tmp_path / "t.csv.errors.csv").open(encoding="utf-8"))}
    assert sorted(bad) == [2, 4, 5, 6]
    assert bad[2]["field"] == "occurred_at" and "9999-12-31 is more than 366 days ahead" in bad[2]["reason"]
    assert bad[4]["field"] == "occurred_at" and "0001-01-01 is before 1900-01-01" in bad[4]["reason"]
    assert bad[5]["field"] == "occurred_at" and far in bad[5]["reason"]
    assert bad[6]["field"] == "due_date" and "9999-01-01" in bad[6]["reason"]
    assert count(crm, Transaction) == 1


def test_api_refuses_a_posting_beyond_the_horizon(crm: CRM, a1: int) -> None:
    with crm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    with crm.unit_of_work("root") as uow:
        token = TokenService(uow).create("root", "test")[1]
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    r = client.post(f"/customers/{a1}/transactions", headers={"Authorization": f"Bearer {token}"},
                    json={"kind": "invoice", "amount": "900", "reference": "F1", "occurred_at": "9999-12-31T00:00:00Z"})
    assert r.status_code == 422 and "posting horizon" in r.json()["detail"], r.text
    assert count(crm, Transaction) == 0


# -- the audit entry records what was stored ---------------------------------------------------------

def test_post_audit_records_the_stored_currency_time_and_due_date(crm: CRM, cli, a1: int) -> None:
    assert cli("account", "post", "A1", "invoice", "100", "--ref", "I1").exit_code == 0
    assert cli("account", "post", "A1", "payment", "40", "--ref", "P1", "--at", "2026-01-02T10:00:00+02:00").exit_code == 0
    with crm.unit_of_work(read_only=True) as uow:
        stored = {t.reference: t for t in uow.session.scalars(select(Transaction))}
        inv, pay = stored["I1"], stored["P1"]
        expected = [(inv.currency, inv.occurred_at.isoformat(), inv.due_date.isoformat()),
                    (pay.currency, pay.occurred_at.isoformat(), None)]
        account_id = inv.account_id
    after = audits(crm)
    assert [(a["currency"], a["occurred_at"], a["due_date"]) for a in after] == expected
    assert expected[0][0] == "EUR" and expected[0][2] == (dt.date.fromisoformat(expected[0][1][:10]) + dt.timedelta(days=30)).isoformat()
    assert after[1]["occurred_at"].startswith("2026-01-02T08:00:00")
    assert after[0]["account_id"] == account_id and after[0]["amount"] == "100.00" and after[0]["kind"] == "invoice"


# -- an account on hold refuses whatever raises what is owed -----------------------------------------

def test_account_on_hold_refuses_positive_adjustments_by_post_and_import(crm: CRM, cli, a1: int, tmp_path) -> None:
    assert cli("account", "post", "A1", "invoice", "10", "--ref", "I1").exit_code == 0
    assert cli("account", "status", "1", "on_hold").exit_code == 0
    res = cli("account", "post", "A1", "adjustment", "5000", "--ref", "ADJ1")
    assert res.exit_code == 1 and "on hold" in res.output and "adjustment 5000.00" in res.output, res.output
    assert cli("account", "post", "A1", "adjustment", "-5", "--ref", "ADJ2").exit_code == 0
    path = tmp_path / "t.csv"
    path.write_text(f"{TX}\nA1,adjustment,5000,EUR,2026-01-01,ADJ3,\nA1,adjustment,-1,EUR,2026-01-01,ADJ4,\n", encoding="utf-8")
    res = cli("import", "transactions", str(path))
    assert res.exit_code == 1 and "1 inserted" in res.output, res.output
    assert json.loads(cli("account", "list", "--json").output)[0]["balance"] == "4.00"


# -- an import whose rows are all rejected opens no account ------------------------------------------

def test_import_with_every_row_rejected_opens_no_account_and_audits_the_ones_it_opens(crm: CRM, cli, tmp_path) -> None:
    with crm.unit_of_work("test") as uow:
        for ref in ("N1", "N2"):
            uow.customers.create(CustomerCreate(name=ref, external_ref=ref))
    path = tmp_path / "t.csv"
    # 91 rows of 9,999,999,999,999 would take the new account beyond the balance limit: all rejected
    rows = "".join(f"N1,invoice,9999999999999,EUR,2026-01-01,X{i},\n" for i in range(91))
    path.write_text(f"{TX}\n{rows}N1,invoice,5,EUR,9999-01-01,Y,\n", encoding="utf-8")
    res = cli("import", "transactions", str(path))
    assert res.exit_code == 1 and "0 inserted" in res.output and "92 rejected" in res.output, res.output
    assert "would reach a balance of" in res.output
    assert count(crm, Account) == 0 and not [a for a in audits(crm, "create") if "currency" in a]
    path.write_text(f"{TX}\nN1,invoice,5,EUR,2026-01-01,X4,\nN2,invoice,7,USD,2026-01-01,X5,\n", encoding="utf-8")
    assert cli("import", "transactions", str(path)).exit_code == 0
    with crm.unit_of_work(read_only=True) as uow:
        accounts = {a.id: (a.customer_id, a.currency) for a in uow.session.scalars(select(Account))}
    created = [a for a in audits(crm, "create") if a.get("source") == "import"]
    assert sorted((a["customer_id"], a["currency"]) for a in created) == sorted(accounts.values()) and len(accounts) == 2
