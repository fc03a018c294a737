"""Issue 23 §4: warn mode per group / grade (every face, the permission, concurrency), credit
reviews due, downgrade alerts (timeline, published hook)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import crm_credit.plugin as PLUGIN
import pytest
from crm_credit import services
from crm_credit.models import CreditGradeChange, CreditScore, CreditWarning
from crm_credit.testing import Book
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmcore import CRM, Vetoed, hookimpl
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.models import AuditEntry, Transaction
from crmcore.schemas import TransactionCreate
from crmcore.testing_concurrency import run_cli_in_processes

TX = "customer_ref,kind,amount,currency,occurred_at,reference\n"


def _refs(crm: CRM) -> list[str]:
    with crm.unit_of_work(read_only=True) as uow:
        return sorted(uow.session.scalars(select(Transaction.reference)))


def _warnings(crm: CRM) -> list[Any]:
    from types import SimpleNamespace

    cols = [c.key for c in CreditWarning.__table__.columns]
    with crm.unit_of_work(read_only=True) as uow:
        return [SimpleNamespace(**{c: getattr(w, c) for c in cols})
                for w in uow.session.scalars(select(CreditWarning).order_by(CreditWarning.id))]


def _people(book: Book) -> int:
    a = book.customer("A")
    book.profile(a, limit=Decimal(1000))
    book.users(test=["admin"], sam=["manager"], cc=["credit_controller", "manager"])
    return a


def _post(crm: CRM, actor: str, cid: int, amount: str, ref: str) -> None:
    with crm.unit_of_work(actor) as uow:
        uow.accounts.post(cid, TransactionCreate(kind="invoice", amount=Decimal(amount), reference=ref))


def test_warn_mode_passes_for_a_holder_of_the_permission_and_records_who(make_ccrm) -> None:
    crm = make_ccrm(mode="warn")
    book = Book(crm)
    a = _people(book)
    _post(crm, "cc", a, "1500", "INV-1")
    (w,) = _warnings(crm)
    assert (w.customer_id, w.reference, w.amount, w.actor, w.mode_source) == (a, "INV-1", Decimal("1500.00"), "cc", "default")
    assert "over the credit limit by 500.00 EUR" in w.message and w.message.startswith("credit warning")
    with crm.unit_of_work("cc", read_only=True) as uow:
        audit = uow.session.scalar(select(AuditEntry).where(AuditEntry.action == "credit-warning"))
        assert audit.actor == "cc" and audit.after["passed_by"] == "cc" and audit.after["reference"] == "INV-1"
        kinds = [t.kind for t in PLUGIN.crm_customer_timeline(uow=uow, customer=uow.customers.get(a))]
    assert "credit warning" in kinds


def test_a_warn_mode_pass_without_the_permission_is_refused_by_every_face(make_ccrm, ccli, monkeypatch, tmp_path) -> None:
    crm = make_ccrm(mode="warn")
    monkeypatch.setenv("CRM_CREDIT__MODE", "warn")
    book = Book(crm)
    a = _people(book)
    with pytest.raises(Vetoed, match=r"lets it pass only for holders of credit\.pass_warning, which sam lacks"):
        _post(crm, "sam", a, "1500", "PY-1")
    res = ccli("account", "post", "A", "invoice", "1500", "--ref", "CLI-1", user="sam")
    assert res.exit_code == 1 and "credit.pass_warning" in res.output and "Traceback" not in res.output, res.output
    f = tmp_path / "t.csv"
    f.write_text(f"{TX}A,invoice,1500,EUR,2026-01-01,IMP-1\n", encoding="utf-8")
    res = ccli("import", "transactions", str(f), user="sam")
    assert res.exit_code == 1 and "credit.pass_warning" in res.output, res.output
    with crm.unit_of_work("test") as uow:
        token = TokenService(uow).create("sam", "t")[1]
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    r = client.post(f"/customers/{a}/transactions", json={"kind": "invoice", "amount": "1500", "reference": "API-1"},
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 409 and "credit.pass_warning" in r.json()["detail"], r.text
    assert _refs(crm) == [] and _warnings(crm) == []
    # the same file by a credit controller passes, with its warning
    res = ccli("import", "transactions", str(f), user="cc")
    assert res.exit_code == 0, res.output
    assert _refs(crm) == ["IMP-1"] and [w.actor for w in _warnings(crm)] == ["cc"]


def test_mode_by_group_then_grade_then_default_and_a_hold_is_never_passed(make_ccrm) -> None:
    crm = make_ccrm(mode_by_group={"key": "warn"}, mode_by_grade={"D": "warn"})
    book = Book(crm)
    k, p, g = book.customer("K"), book.customer("P"), book.customer("G")
    book.profile(k, limit=Decimal(100), credit_group="key")
    book.profile(p, limit=Decimal(100), credit_group="other")
    book.profile(g, limit=Decimal(100))
    with crm.unit_of_work("test") as uow:
        uow.session.add(CreditScore(customer_id=g, score=10, grade="D", currency="EUR", suggested_limit=Decimal(0),
                                    reasons={}, scored_at=dt.datetime.now(dt.UTC)))
    book.invoice(k, "500", "K-1")
    book.invoice(g, "500", "G-1")
    with pytest.raises(Vetoed, match="over the credit limit"):
        book.invoice(p, "500", "P-1")
    assert [(w.customer_id, w.mode_source) for w in _warnings(crm)] == [(k, "group key"), (g, "grade D")]
    with crm.unit_of_work("test") as uow:
        services.hold(uow, k, "cheque bounced")
    with pytest.raises(Vetoed, match="credit hold"):
        book.invoice(k, "1", "K-2")
    assert _refs(crm) == ["G-1", "K-1"]


def test_unknown_grade_in_mode_by_grade_fails_when_the_crm_opens(make_ccrm) -> None:
    from crmcore.errors import CRMError

    with pytest.raises(CRMError, match="mode_by_grade: unknown grade"):
        make_ccrm(mode_by_grade={"ZZZ": "warn"})


@pytest.mark.parametrize("face", ["cli", "import"])
def test_concurrent_warn_mode_posts_record_exactly_the_warnings_due(ccrm: CRM, crm_url: str, tmp_path: Any,
                                                                      monkeypatch, face: str) -> None:
    """Two 600 postings at once on a 1000 limit: both pass (warn), and exactly one of them is over
    the limit, so one warning: the profile lock makes the later one see the first."""
    monkeypatch.setenv("CRM_CREDIT__MODE", "warn")
    book = Book(ccrm)
    a = book.customer("A")
    book.profile(a, limit=Decimal(1000))
    if face == "cli":
        commands = [["account", "post", "A", "invoice", "600", "--ref", f"C-{i}"] for i in range(2)]
    else:
        commands = []
        for i in range(2):
            (tmp_path / f"{i}.csv").write_text(f"{TX}A,invoice,600,EUR,2026-01-01,M-{i}\n", encoding="utf-8")
            commands.append(["import", "transactions", str(tmp_path / f"{i}.csv")])
    results = run_cli_in_processes(crm_url, commands, plugins=[PLUGIN])
    assert [r.code for r in results] == [0, 0], [(r.argv, r.code, r.output) for r in results]
    assert len(_refs(ccrm)) == 2
    (w,) = _warnings(ccrm)
    assert "over the credit limit by 200.00 EUR" in w.message


# -- reviews -----------------------------------------------------------------------------------------------

def test_review_due_lists_overdue_and_never_reviewed_files(ccrm: CRM, book: Book, ccli) -> None:
    a, b, c = book.customer("A"), book.customer("B"), book.customer("C")
    book.profile(a, last_review=dt.date(2025, 1, 10))  # next review = + 365 days = 2026-01-10
    book.profile(b, last_review=dt.date(2026, 6, 1), next_review=dt.date(2027, 6, 1))
    book.profile(c, limit=Decimal(5))  # never reviewed
    res = ccli("credit", "review", "due", "--as-of", "2026-03-01", "--json")
    assert res.exit_code == 0, res.output
    import json

    due = json.loads(res.output)["due"]
    assert [(d["customer_id"], d["next_review"], d["days_overdue"]) for d in due] == [
        (c, None, None), (a, "2026-01-10", 50)]
    res = ccli("credit", "review", "due", "--as-of", "2026-13-01")
    assert res.exit_code == 1 and res.output.strip().startswith("error:") and len(res.output.strip().splitlines()) == 1


def test_review_due_and_warnings_over_http(make_ccrm) -> None:
    crm = make_ccrm(mode="warn")
    book = Book(crm)
    a = _people(book)
    _post(crm, "cc", a, "1500", "INV-1")
    with crm.unit_of_work("test") as uow:
        h = {"Authorization": f"Bearer {TokenService(uow).create('sam', 't')[1]}"}
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    due = client.get("/credit/reviews/due", params={"as_of": "2030-01-01"}, headers=h)
    assert due.status_code == 200 and [d["customer_id"] for d in due.json()["due"]] == [a]
    w = client.get("/credit/warnings", params={"customer_id": a}, headers=h)
    assert w.status_code == 200 and w.json()[0]["amount"] == "1500.00" and w.json()[0]["passed_by"] == "cc"
    assert client.get("/credit/reviews/due", params={"as_of": "nope"}, headers=h).status_code == 422
    assert client.get("/credit/warnings", params={"customer_id": 999999}, headers=h).status_code == 404


# -- downgrades ---------------------------------------------------------------------------------------------

class Listener:
    def __init__(self) -> None:
        self.calls: list[tuple[int, str, str]] = []

    @hookimpl(optionalhook=True)
    def credit_downgraded(self, uow: Any, customer_id: int, old_grade: str, new_grade: str, score: int) -> None:
        self.calls.append((customer_id, old_grade, new_grade))


@pytest.mark.parametrize("all_", [True, False])
def test_a_grade_falling_is_recorded_on_the_timeline_and_announced(make_crm, ccli, all_: bool) -> None:
    listener = Listener()
    crm = make_crm(plugins=[PLUGIN, ("listener", listener)])
    book = Book(crm)
    down, up = book.customer("DOWN"), book.customer("UP")
    with crm.unit_of_work("test") as uow:
        for cid, grade, score in ((down, "AAA", 400), (up, "D", 5)):
            uow.session.add(CreditScore(customer_id=cid, score=score, grade=grade, currency="EUR",
                                        suggested_limit=Decimal(0), reasons={}, scored_at=dt.datetime.now(dt.UTC)))
    with crm.unit_of_work("test") as uow:
        from crm_credit import control, scoring
        from crm_credit.settings import settings

        s = settings(uow)
        if all_:
            scoring.score_all(uow.session, s, dt.date.today(), on_range=lambda old, r: control.record_downgrades(
                uow, s, old, r.ids, r.grades, r.score))
        else:
            res = scoring.score(uow.session, s, dt.date.today(), [down, up])
            old = control.previous_grades(uow, [down, up])
            scoring.store(uow.session, s, res, replace_all=False)
            control.record_downgrades(uow, s, old, res.ids, res.grades, res.score)
    with crm.unit_of_work(read_only=True) as uow:
        (ch,) = uow.session.scalars(select(CreditGradeChange))
        new = uow.session.get(CreditScore, down).grade
        assert (ch.customer_id, ch.old_grade, ch.new_grade, ch.old_score) == (down, "AAA", new, 400) and ch.steps >= 1
        assert uow.session.scalar(select(func.count()).select_from(CreditScore)) == 2
        kinds = [t.kind for t in PLUGIN.crm_customer_timeline(uow=uow, customer=uow.customers.get(down))]
    assert "credit downgrade" in kinds
    assert listener.calls == [(down, "AAA", new)]


def test_score_cli_records_the_downgrade(ccrm: CRM, book: Book, ccli) -> None:
    a = book.customer("A")
    with ccrm.unit_of_work("test") as uow:
        uow.session.add(CreditScore(customer_id=a, score=400, grade="AAA", currency="EUR", suggested_limit=Decimal(0),
                                    reasons={}, scored_at=dt.datetime.now(dt.UTC)))
    assert ccli("credit", "score", "--all").exit_code == 0
    assert ccli("credit", "score", "--all").exit_code == 0  # the same grade again: no second alert
    with ccrm.unit_of_work(read_only=True) as uow:
        assert [c.old_grade for c in uow.session.scalars(select(CreditGradeChange))] == ["AAA"]
