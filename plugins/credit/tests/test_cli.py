"""``crm credit …`` end to end: JSON on every read, one-line errors, exit codes, permissions."""
from __future__ import annotations

import json

import pytest
from crm_credit.testing import Book

from crmcore import CRM


def err(res, message: str, code: int = 1) -> None:
    assert res.exit_code == code, (res.exit_code, res.output)
    lines = [x for x in res.output.strip().splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], res.output
    assert "Traceback" not in res.output


def test_profile_set_show_history(ccli, book: Book) -> None:
    book.customer("ACME")
    r = ccli("credit", "profile", "set", "ACME", "--limit", "5000", "--terms", "45", "--review", "2026-10-01",
             "--registry-id", "HRB 1234", "--registry-name", "Handelsregister Munich", "--legal-form", "GmbH",
             "--founded", "2001-05-01", "--employees", "40", "--financials-year", "2025", "--revenue", "2500000",
             "--equity", "400000", "--net-income", "-20000", "--reference", "Steel AG|Mr Meier|8|good|pays in 30 days",
             "--reference", "Bank X||3|fair", "--notes", "visited the site", "--investigated", "2026-09-20",
             "--reason", "annual review")
    assert r.exit_code == 0 and "limit 5,000.00 EUR, status good" in r.output, r.output
    j = json.loads(ccli("credit", "profile", "show", "ACME", "--json", "--history").output)
    p = j["profile"]
    assert p["limit_amount"] == "5000.00" and p["payment_terms_days"] == 45 and p["legal_form"] == "GmbH"
    assert p["net_income"] == "-20000.00" and p["trade_references"][1] == {"name": "Bank X", "contact": None,
                                                                         "years_known": 3, "rating": "fair", "note": None}
    upd = next(h for h in j["history"] if h["action"] == "update")
    assert upd["actor"] == "tester" and upd["before"]["limit_amount"] is None and upd["after"]["limit_amount"] == "5000.00"
    assert upd["reason"] == "annual review"
    assert ccli("credit", "profile", "set", "ACME", "--no-limit").exit_code == 0
    j = json.loads(ccli("credit", "profile", "show", "ACME", "--json", "--history").output)
    assert j["profile"]["limit_amount"] is None and j["history"][0]["before"] == {"limit_amount": "5000.00"}
    out = ccli("credit", "profile", "show", "ACME", "--history").output
    assert "Handelsregister Munich" in out and "Steel AG (good)" in out


@pytest.mark.parametrize("args, message", [
    (("--limit", "-5"), "a credit limit cannot be negative"),
    (("--limit", "12.345"), "more than 2 decimal places"),
    (("--limit", "lots"), "not an amount"),
    (("--currency", "XYZ"), "unknown currency"),
    (("--currency", "USD", "--limit", "10"), "a limit in USD cannot be checked"),
    (("--terms", "400"), "payment_terms_days"),
    (("--review", "yesterday"), "expected a date YYYY-MM-DD"),
    (("--reference", "|no name"), "name"),
    (("--reference", "X||3|excellent"), "rating"),
    (("--limit", "5", "--no-limit"), "either --limit or --no-limit"),
])
def test_profile_set_bad_input(ccli, book: Book, args: tuple, message: str) -> None:
    book.customer("ACME")
    err(ccli("credit", "profile", "set", "ACME", *args), message)
    assert json.loads(ccli("credit", "profile", "show", "ACME", "--json").output)["profile"] is None


def test_unknown_customer_and_usage(ccli) -> None:
    err(ccli("credit", "profile", "show", "NOPE"), "customer 'NOPE' not found")
    err(ccli("credit", "score"), "give a CUSTOMER or --all")
    err(ccli("credit", "check", "NOPE", "10", "--currency", "XYZ"), "unknown currency")
    err(ccli("credit", "check", "NOPE", "ten"), "not an amount")
    assert ccli("credit", "check", "X").exit_code == 2  # missing AMOUNT: click usage


def test_check_hold_release_tour(ccli, book: Book, ccrm: CRM) -> None:
    a = book.customer("ACME")
    book.invoice(a, "900", "INV-1")
    assert ccli("credit", "profile", "set", "ACME", "--limit", "1000").exit_code == 0
    r = ccli("credit", "check", "ACME", "50")
    assert r.exit_code == 0 and r.output.startswith("ok: exposure 950.00 EUR (limit 1,000.00)")
    r = ccli("credit", "check", "ACME", "150", "--json")
    assert r.exit_code == 1 and json.loads(r.output)["reasons"] == ["over the credit limit by 50.00 EUR"]
    r = ccli("credit", "hold", "ACME", "--reason", "cheque bounced")
    assert r.exit_code == 0 and "on credit hold: cheque bounced" in r.output
    r = ccli("account", "post", "ACME", "invoice", "10", "--ref", "INV-2")
    err(r, "customer is on credit hold (cheque bounced)")
    err(ccli("credit", "hold", "ACME", "--reason", "again"), "already on credit hold")
    r = ccli("credit", "release", "ACME", "--reason", "paid by wire", "--days", "2")
    assert r.exit_code == 0 and "released customer" in r.output and "paid by wire" in r.output
    assert ccli("account", "post", "ACME", "invoice", "10", "--ref", "INV-2").exit_code == 0
    j = json.loads(ccli("customer", "show", "ACME", "--json").output)
    sec = j["sections"]["Credit"]
    fields = sec.get("fields", sec)
    assert fields["status"] == "watch" and fields["limit"] == "1,000.00 EUR" and fields["exposure"] == "910.00 EUR"
    err(ccli("credit", "release", "ACME", "--reason", "x", "--days", "0"), "days")


def test_release_without_permission_cli(ccli, book: Book) -> None:
    book.users(test=["admin"], tester=["sales"])
    book.customer("ACME")
    with book.crm.unit_of_work("test") as uow:
        from crm_credit import services
        services.hold(uow, uow.customers.get_by_ref("ACME").id, "x")
    err(ccli("credit", "release", "ACME", "--reason", "please"), "user tester lacks credit.release")
    err(ccli("credit", "writeoff", "ACME", "INV-1", "--reason", "gone"), "user tester lacks credit.writeoff")


def test_writeoff_cli(ccli, book: Book) -> None:
    a = book.customer("ACME")
    book.invoice(a, "300", "INV-1", days_ago=200)
    err(ccli("credit", "writeoff", "ACME", "INV-1", "--amount", "301", "--reason", "bankrupt"),
        "larger than the 300.00 open on invoice INV-1")
    err(ccli("credit", "writeoff", "ACME", "INV-9", "--reason", "bankrupt"), "invoice 'INV-9' of customer 1 not found")
    err(ccli("credit", "writeoff", "ACME", "INV-1", "--amount", "0", "--reason", "x"), "must be positive")
    r = ccli("credit", "writeoff", "ACME", "INV-1", "--amount", "100", "--reason", "bankrupt")
    assert r.exit_code == 0 and "wrote off 100.00 EUR of invoice INV-1 (entry WO-INV-1)" in r.output, r.output
    r = ccli("credit", "writeoff", "ACME", "INV-1", "--reason", "bankrupt")
    assert r.exit_code == 0 and "wrote off 200.00 EUR" in r.output and "WO-INV-1-2" in r.output
    err(ccli("credit", "writeoff", "ACME", "INV-1", "--reason", "again"), "invoice INV-1 is settled")
    st = json.loads(ccli("account", "statement", "1", "--json").output)
    assert st["closing_balance"] == "0.00"


def test_aging_dso_dunning_json(ccli, book: Book) -> None:
    a, b = book.customer("A"), book.customer("B", currency="USD")
    book.invoice(a, "100", "A1", days_ago=80, due_days_ago=50)
    book.invoice(a, "40", "A2", days_ago=5)
    book.invoice(b, "70", "B1", days_ago=130, due_days_ago=100)
    book.pay(a, "30", "P1", days_ago=1)
    j = json.loads(ccli("credit", "aging", "--json").output)
    tot = {t["currency"]: t for t in j["totals"]}
    assert tot["EUR"]["buckets"]["31-60"] == "70.00" and tot["EUR"]["buckets"]["current"] == "40.00"
    assert tot["EUR"]["open"] == "110.00" and tot["USD"]["buckets"]["over_90"] == "70.00"
    assert "Ageing as of" in ccli("credit", "aging").output
    assert json.loads(ccli("credit", "aging", "--customer", "B", "--json").output)["totals"][0]["currency"] == "USD"
    d = json.loads(ccli("credit", "dso", "--json").output)
    eur = next(t for t in d["totals"] if t["currency"] == "EUR")
    assert eur["receivables"] == "110.00" and eur["credit_sales"] == "140.00" and eur["dso"] == round(110 / 140 * 90, 1)
    err(ccli("credit", "dso", "--from", "2026-02-01", "--to", "2026-01-01"), "is after --to")
    r = ccli("credit", "dunning", "run", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["raised"] == 2
    rows = json.loads(ccli("credit", "dunning", "list", "--json").output)
    assert [(x["invoice"], x["level"]) for x in rows] == [("B1", 4), ("A1", 3)]
    assert "dunning as of" in ccli("credit", "dunning", "run").output
    assert "B1" in ccli("credit", "dunning", "list").output


def test_score_and_timeline_in_the_360_view(ccli, book: Book) -> None:
    a = book.customer("ACME")
    book.invoice(a, "100", "I1", days_ago=3)
    assert ccli("credit", "score", "--all").exit_code == 0
    assert ccli("credit", "hold", "ACME", "--reason", "review").exit_code == 0
    j = json.loads(ccli("customer", "show", "ACME", "--json").output)
    sec = j["sections"]["Credit"]
    fields = sec.get("fields", sec)
    assert fields["grade"].startswith(("AAA", "AA", "A", "BBB", "BB", "B", "C", "D")) and "score" in fields["grade"]
    assert fields["dunning level"] == 0 and fields["hold reason"] == "review"
    out = ccli("customer", "show", "ACME").output
    assert "credit hold" in out and "Ageing" in out
    assert ccli("credit", "profile", "show", "ACME").output.count("lowered by") == 1
