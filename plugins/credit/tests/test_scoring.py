"""The rule scorecard: factor values from the ledger and interactions, points, grade, limit, reasons."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from crm_credit import scoring, services
from crm_credit.models import CreditScore
from crm_credit.settings import CreditSettings
from crm_credit.testing import Book, ago
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.errors import ConfigError
from crmcore.schemas import InteractionCreate


def _history(book: Book, crm: CRM) -> tuple[int, int]:
    a, b = book.customer("A"), book.customer("B")
    book.invoice(a, "1000", "I1", days_ago=200, due_days_ago=170)
    book.pay(a, "1000", "P1", days_ago=160, invoice="I1")        # 40 days to pay, 10 beyond terms
    book.invoice(a, "500", "I2", days_ago=100, due_days_ago=70)
    book.pay(a, "500", "P2", days_ago=50)                       # 50 days to pay, 20 beyond terms
    book.invoice(a, "300", "I3", days_ago=40, due_days_ago=10)  # open, overdue
    book.invoice(a, "200", "I4", days_ago=5)                    # open, not due
    with crm.unit_of_work() as uow:
        for days in (10, 100, 400):
            uow.interactions.log(a, InteractionCreate(channel="phone", kind="complaint", subject="late delivery",
                                                      occurred_at=ago(days)))
    return a, b


def test_factors_points_grade_and_reasons(book: Book, ccrm: CRM) -> None:
    a, b = _history(book, ccrm)
    s = CreditSettings()
    with ccrm.unit_of_work(read_only=True) as uow:
        res = scoring.score(uow.session, s, services.today())
    i = res.ids.tolist().index(a)
    f = {k: v[i] for k, v in res.features.items()}
    assert f["avg_days_to_pay"] == 45 and f["days_beyond_terms"] == 15
    assert f["overdue_share"] == pytest.approx(0.6)
    assert f["relationship_years"] == pytest.approx(200 / 365.25)
    assert f["volume_12m"] == 2000 and f["volume_trend"] == 0.0
    assert f["writeoff_share"] == 0 and f["complaints_12m"] == 2
    pts = {k: int(v[i]) for k, v in res.points.items()}
    assert pts == {"avg_days_to_pay": 30, "days_beyond_terms": 30, "overdue_share": 10, "relationship_years": 10,
                   "volume_12m": 25, "volume_trend": 30, "writeoff_share": 50, "complaints_12m": 25}
    assert int(res.score[i]) == 210 and res.grades[i] == "C"
    r = res.reasons(i, s.factors)
    assert r["lowered"] == ["overdue_share", "relationship_years", "avg_days_to_pay", "days_beyond_terms", "volume_12m",
                            "complaints_12m", "volume_trend"]
    assert r["raised"] == ["writeoff_share"]
    j = res.ids.tolist().index(b)  # no history at all: the 'missing' points
    assert int(res.score[j]) == 25 + 30 + 60 + 10 + 10 + 20 + 50 + 40 and res.grades[j] == "B"


def test_write_offs_and_suggested_limit(book: Book, ccrm: CRM) -> None:
    a = book.customer("A")
    for k in range(12):
        book.invoice(a, "10000", f"I{k}", days_ago=30 * k + 1)
    with ccrm.unit_of_work() as uow:
        from crm_credit.schemas import WriteOffRequest
        services.write_off(uow, a, WriteOffRequest(invoice="I11", amount=Decimal(1200), reason="insolvent"))
    with ccrm.unit_of_work(read_only=True) as uow:
        res = scoring.score(uow.session, CreditSettings(), services.today(), [a])
    assert res.features["writeoff_share"][0] == pytest.approx(0.01)
    assert int(res.points["writeoff_share"][0]) == 20
    g = CreditSettings().grade_for(int(res.score[0]))
    assert res.grades[0] == g.grade
    assert res.suggested_cents[0] == int(120000 / 12 * float(g.limit_months) // 100 * 100 * 10000)


def test_score_all_stores_one_row_per_customer_and_matches_single(book: Book, ccrm: CRM, ccli) -> None:
    a, _ = _history(book, ccrm)
    assert ccli("credit", "score", "--all").exit_code == 0
    with ccrm.unit_of_work(read_only=True) as uow:
        rows = {r.customer_id: (r.score, r.grade) for r in uow.session.scalars(select(CreditScore))}
    assert rows[a] == (210, "C") and len(rows) == 2
    res = ccli("credit", "score", "A", "--json")
    assert res.exit_code == 0 and '"score": 210' in res.output and '"grade": "C"' in res.output
    with ccrm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(CreditScore)) == 2


def test_configured_bins_and_grades(make_ccrm) -> None:
    crm = make_ccrm(factors={"volume_12m": {"bins": [[100, 0], [None, 100]], "missing": 0}},
                    grades=[{"grade": "OK", "min_score": 50, "limit_months": 1}, {"grade": "NO", "min_score": 0, "limit_months": 0}])
    b = Book(crm)
    a = b.customer("A")
    b.customer("C")
    b.invoice(a, "1200", "I1", days_ago=3)
    with crm.unit_of_work(read_only=True) as uow:
        res = scoring.score(uow.session, services.settings(uow), services.today())
    assert res.score.tolist() == [100, 0] and res.grades == ["OK", "NO"]
    assert res.suggested_cents.tolist() == [100 * 10000, 0]


@pytest.mark.parametrize("bad, message", [
    ({"factors": {"speed": {"bins": [[None, 1]]}}}, "unknown factor(s) speed"),
    ({"factors": {"volume_12m": {"bins": [[10, 1], [5, 2], [None, 0]]}}}, "strictly ascending"),
    ({"factors": {"volume_12m": {"bins": [[10, 1]]}}}, "open-ended"),
    ({"grades": [{"grade": "A", "min_score": 1, "limit_months": 1}, {"grade": "B", "min_score": 5, "limit_months": 1}]},
     "strictly decrease"),
    ({"check_point": "never"}, "check_point"),
    ({"overshoot_percent": "-1"}, "overshoot_percent"),
    ({"dunning_levels": [{"level": 2, "days_overdue": 1, "action": "reminder"}]}, "numbered 1, 2, 3"),
])
def test_bad_settings_fail_at_open(make_ccrm, bad: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_ccrm(**bad)


def test_one_customer_scores_as_in_the_whole_run(book: Book, ccrm: CRM) -> None:
    """The set-based run and a single customer's score agree, for customers with and without history."""
    import numpy as np

    ids = [book.customer(f"C{k}") for k in range(6)]
    rng = np.random.default_rng(3)
    for k, cid in enumerate(ids[:5]):
        for j in range(k + 1):
            days = int(rng.integers(20, 300))
            book.invoice(cid, str(100 * (j + 1)), f"I{k}-{j}", days_ago=days, due_days_ago=days - 30)
            if j % 2 == 0:
                book.pay(cid, str(100 * (j + 1)), f"P{k}-{j}", days_ago=days - int(rng.integers(1, 60)), invoice=f"I{k}-{j}")
    s = CreditSettings()
    with ccrm.unit_of_work(read_only=True) as uow:
        everyone = scoring.score(uow.session, s, services.today())
        texts = scoring.reason_texts(everyone, s.factors)
        for n, cid in enumerate(everyone.ids.tolist()):
            assert json.loads(texts[n]) == everyone.reasons(n, s.factors)
            one = scoring.score(uow.session, s, services.today(), [cid])
            assert int(one.score[0]) == int(everyone.score[n]) and one.grades[0] == everyone.grades[n]
            for f in scoring.FACTORS:
                a, b = one.features[f][0], everyone.features[f][n]
                assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b), (cid, f)
