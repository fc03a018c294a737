"""Objection-handling methods: a crm.toml vocabulary (``objection_methods``) on ``opp objection`` and
``opp resolve`` by every face, and the report of their success (``crm sales report objections``,
``GET /sales/reports/objections``) with the visibility of every sales report."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import crm_sales_automation.plugin as PLUGIN
import pytest
from crm_sales_automation import process, services
from crm_sales_automation.models import Objection
from crm_sales_automation.schemas import ObjectionCreate
from crm_sales_automation.testing import Sales, assert_error
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmcore import CRM, InvalidInput
from crmcore.api import create_app
from crmcore.api.auth import TokenService

Run = Callable[..., Any]
ALLOWED = ("allowed: acknowledge_clarify, compare_value, provide_evidence, trial_offer, reference_customer, "
           "price_concession, defer, other; configured in crm.toml [vocabularies] objection_methods)")


def ok(res: Any) -> Any:
    assert res.exit_code == 0, (res.exit_code, res.output)
    return res


def _objections(crm: CRM) -> list[tuple[Any, ...]]:
    with crm.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(Objection.id, Objection.kind, Objection.method, Objection.handling,
                                                      Objection.resolved).order_by(Objection.id))]


def _object(crm: CRM, opp_id: int, kind: str, method: str | None, resolved: bool, actor: str = "test") -> int:
    with crm.unit_of_work(actor) as uow:
        return services.add_objection(uow, opp_id, ObjectionCreate(kind=kind, description=f"{kind} objection",
                                                                   method=method, resolved=resolved)).id


def _tokens(crm: CRM, *names: str) -> dict[str, dict[str, str]]:
    with crm.unit_of_work("admin") as uow:
        return {n: {"Authorization": f"Bearer {TokenService(uow).create(n, 't')[1]}"} for n in names}


# -- the vocabulary ---------------------------------------------------------------------------------

def test_the_cli_takes_a_method_word_and_refuses_another_with_nothing_written(scrm: CRM, sales: Sales, scli: Run) -> None:
    oid = sales.opp(sales.customer("Acme"), "100")
    ok(scli("sales", "opp", "objection", str(oid), "--kind", "price", "--description", "too dear",
            "--method", "Compare_Value", "--handling", "showed running costs", "--resolved"))
    assert_error(scli("sales", "opp", "objection", str(oid), "--kind", "timing", "--description", "later",
                      "--method", "haggling"), f"invalid input: method: 'haggling' is not allowed ({ALLOWED}")
    [(first, *_)] = before = _objections(scrm)
    assert [r[1:] for r in before] == [("price", "compare_value", "showed running costs", True)]
    assert_error(scli("sales", "opp", "resolve", str(first), "--method", "shrug", "--unresolved"),
                 f"invalid input: method: 'shrug' is not allowed ({ALLOWED}")
    assert _objections(scrm) == before  # still resolved, same method
    ok(scli("sales", "opp", "resolve", str(first), "--method", "trial_offer", "--unresolved"))
    assert [r[2:] for r in _objections(scrm)] == [("trial_offer", "showed running costs", False)]
    shown = json.loads(ok(scli("sales", "opp", "show", str(oid), "--json")).stdout)["objections"]
    assert [(o["method"], o["resolved"]) for o in shown] == [("trial_offer", False)]
    assert "trial_offer" in ok(scli("sales", "opp", "show", str(oid))).stdout


def test_a_configured_vocabulary_is_in_force_and_a_word_in_use_cannot_be_removed(scrm: CRM, sales: Sales, scli: Run,
                                                                                   tmp_path: Path) -> None:
    oid = sales.opp(sales.customer("Acme"), "100")
    (tmp_path / "crm.toml").write_text('[vocabularies]\nobjection_methods = ["feel_felt_found", "defer"]\n')
    ok(scli("sales", "opp", "objection", str(oid), "--kind", "price", "--description", "x", "--method", "feel_felt_found"))
    assert_error(scli("sales", "opp", "objection", str(oid), "--kind", "price", "--description", "y", "--method",
                      "compare_value"), "'compare_value' is not allowed (allowed: feel_felt_found, defer; configured in "
                                        "crm.toml [vocabularies] objection_methods)")
    (tmp_path / "crm.toml").write_text('[vocabularies]\nobjection_methods = ["defer"]\n')
    assert_error(scli("sales", "opp", "objection", str(oid), "--kind", "price", "--description", "z", "--method", "defer"),
                 "crm.toml [vocabularies] objection_methods: 'feel_felt_found' (1 row) in use in sales_objections.method "
                 "cannot be removed; add it back (allowed now: defer)", code=2)
    (tmp_path / "crm.toml").write_text('[vocabularies]\nobjection_methods = ["Not A Word"]\n')
    assert_error(scli("sales", "report", "objections"),
                 "crm.toml [vocabularies] objection_methods: 'Not A Word' is not a word", code=2)
    assert [r[2] for r in _objections(scrm)] == ["feel_felt_found"]


def test_the_python_api_checks_the_word(make_crm: Callable[..., CRM]) -> None:
    crm = make_crm(plugins=[PLUGIN], config={"vocabularies": {"objection_methods": ["boomerang"]}})
    s = Sales(crm)
    oid = s.opp(s.customer("Acme"), "10")
    with pytest.raises(InvalidInput, match=r"'defer' is not allowed \(allowed: boomerang; configured in crm.toml"):
        _object(crm, oid, "price", "defer", True)
    assert _objections(crm) == []
    first = _object(crm, oid, "price", "boomerang", False)
    with crm.unit_of_work() as uow, pytest.raises(InvalidInput, match="method: 'defer' is not allowed"):
        services.resolve_objection(uow, first, "tried", method="defer")
    with crm.unit_of_work() as uow:
        assert services.resolve_objection(uow, first, None).method == "boomerang"  # None keeps the method
    assert [r[2:] for r in _objections(crm)] == [("boomerang", None, True)]


def test_the_routes_take_the_method_and_answer_422_for_another_word(scrm: CRM, sales: Sales) -> None:
    oid = sales.opp(sales.customer("Acme"), "100")
    sales.user("anna")
    h = _tokens(scrm, "anna")["anna"]
    client = TestClient(create_app(scrm), raise_server_exceptions=False)
    url = f"/sales/opportunities/{oid}/objections"
    bad = client.post(url, json={"kind": "price", "description": "too dear", "method": "haggling"}, headers=h)
    assert bad.status_code == 422 and f"'haggling' is not allowed ({ALLOWED}" in bad.json()["detail"]
    assert _objections(scrm) == []
    made = client.post(url, json={"kind": "price", "description": "too dear", "method": "provide_evidence"}, headers=h)
    assert made.status_code == 201, made.text
    assert (made.json()["method"], made.json()["resolved"]) == ("provide_evidence", False)
    resolve = f"/sales/objections/{made.json()['id']}/resolve"
    bad = client.post(resolve, json={"method": "shrug", "handling": "x"}, headers=h)
    assert bad.status_code == 422 and "'shrug' is not allowed" in bad.json()["detail"]
    assert [r[2:] for r in _objections(scrm)] == [("provide_evidence", None, False)]
    done = client.post(resolve, json={"method": "reference_customer", "handling": "called a reference"}, headers=h)
    assert done.status_code == 200, done.text
    assert (done.json()["method"], done.json()["handling"], done.json()["resolved"]) == \
        ("reference_customer", "called a reference", True)
    assert client.post(resolve, json={"method": ["defer"]}, headers=h).status_code == 422


# -- the report ------------------------------------------------------------------------------------

def _row(method: str, objections: int, resolved: int, resolved_share: float | None, deals: int, closed: int, won: int,
         won_share: float | None, kind: str | None = None) -> dict[str, Any]:
    return {"method": method, **({"kind": kind} if kind else {}), "objections": objections, "resolved": resolved,
            "resolved_share": resolved_share, "deals": deals, "closed_deals": closed, "won_deals": won,
            "won_share": won_share}


def test_the_report_on_data_whose_answer_is_known(scrm: CRM, sales: Sales, scli: Run) -> None:
    cid = sales.customer("Acme")
    d1, d2, d3, d4, d5, d6 = (sales.opp(cid, "100", f"deal {i}") for i in range(1, 7))
    for deal, kind, method, resolved in ((d1, "price", "compare_value", True), (d1, "budget", "compare_value", False),
                                         (d2, "price", "compare_value", True), (d3, "price", "compare_value", False),
                                         (d3, "price", "price_concession", True), (d4, "price", "compare_value", True),
                                         (d4, "timing", "defer", False), (d5, "need", None, False),
                                         (d6, "timing", "defer", True)):
        _object(scrm, deal, kind, method, resolved)
    for deal in (d1, d2, d6):
        sales.win(deal)
    for deal in (d3, d5):
        sales.lose(deal)  # d4 stays open: its objections count, its deal is not closed
    # by hand: compare_value on d1 (2), d2, d3, d4 = 5 objections, 3 resolved; deals d1-d4, closed d1-d3, won d1, d2
    expected = {"methods": [_row("compare_value", 5, 3, 60.0, 4, 3, 2, 66.7),
                            _row("defer", 2, 1, 50.0, 2, 1, 1, 100.0),
                            _row("price_concession", 1, 1, 100.0, 1, 1, 0, 0.0),
                            _row("unspecified", 1, 0, 0.0, 1, 1, 0, 0.0)],
                "by_kind": [_row("unspecified", 1, 0, 0.0, 1, 1, 0, 0.0, kind="need"),
                            _row("compare_value", 1, 0, 0.0, 1, 1, 1, 100.0, kind="budget"),
                            _row("compare_value", 4, 3, 75.0, 4, 3, 2, 66.7, kind="price"),
                            _row("price_concession", 1, 1, 100.0, 1, 1, 0, 0.0, kind="price"),
                            _row("defer", 2, 1, 50.0, 2, 1, 1, 100.0, kind="timing")]}
    with scrm.unit_of_work(read_only=True) as uow:
        assert process.objections(uow) == expected
    assert json.loads(ok(scli("sales", "report", "objections", "--json")).stdout) == expected
    text = ok(scli("sales", "report", "objections")).stdout
    assert "compare_value" in text and "66.7%" in text and "timing" in text
    sales.user("admin", "admin")
    client = TestClient(create_app(scrm), raise_server_exceptions=False)
    assert client.get("/sales/reports/objections").status_code == 401
    got = client.get("/sales/reports/objections", headers=_tokens(scrm, "admin")["admin"])
    assert got.status_code == 200 and got.json() == expected


def test_an_empty_crm_reports_nothing(scrm: CRM, scli: Run) -> None:
    assert json.loads(ok(scli("sales", "report", "objections", "--json")).stdout) == {"methods": [], "by_kind": []}


class World:
    """anna ("own") owns Anna Co with one won deal; bob owns Bob Co with a lost and an open deal."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        s = Sales(crm)
        s.user("anna")
        s.user("bob")
        s.actor = "admin"
        a, b = s.customer("Anna Co", owner="anna"), s.customer("Bob Co", owner="bob")
        a1, b1, b2 = s.opp(a, "10", owner="anna"), s.opp(b, "20", owner="bob"), s.opp(b, "30", owner="bob")
        _object(crm, a1, "price", "compare_value", True, "admin")
        self.bobs = _object(crm, b1, "price", "compare_value", False, "admin")
        _object(crm, b2, "budget", "defer", True, "admin")
        s.win(a1)
        s.lose(b1)
        self.tokens = _tokens(crm, "anna", "admin")

    def client(self) -> TestClient:
        return TestClient(create_app(self.crm), raise_server_exceptions=False)


@pytest.fixture
def world(make_crm: Callable[..., CRM], tmp_path: Path) -> World:
    (tmp_path / "crm.toml").write_text('[visibility]\nsales = "own"\n')  # the cli fixture runs in tmp_path
    return World(make_crm(plugins=[PLUGIN], config={"visibility": {"sales": "own"}}))


def test_an_own_user_sees_only_their_deals_by_every_face(world: World, cli: Run) -> None:
    anna = {"methods": [_row("compare_value", 1, 1, 100.0, 1, 1, 1, 100.0)],
            "by_kind": [_row("compare_value", 1, 1, 100.0, 1, 1, 1, 100.0, kind="price")]}
    everyone = {"methods": [_row("compare_value", 2, 1, 50.0, 2, 2, 1, 50.0), _row("defer", 1, 1, 100.0, 1, 0, 0, None)],
                "by_kind": [_row("defer", 1, 1, 100.0, 1, 0, 0, None, kind="budget"),
                            _row("compare_value", 2, 1, 50.0, 2, 2, 1, 50.0, kind="price")]}
    for user, expected in (("anna", anna), ("admin", everyone)):
        with world.crm.unit_of_work(user, read_only=True) as uow:
            assert process.objections(uow) == expected, user
        res = ok(cli("sales", "report", "objections", "--json", plugins=[PLUGIN], user=user))
        assert json.loads(res.stdout) == expected, user
        got = world.client().get("/sales/reports/objections", headers=world.tokens[user])
        assert got.status_code == 200 and got.json() == expected, user


def test_an_own_user_cannot_resolve_an_objection_on_a_deal_they_do_not_see(world: World, cli: Run) -> None:
    before = _objections(world.crm)
    assert_error(cli("sales", "opp", "resolve", str(world.bobs), "--method", "defer", plugins=[PLUGIN], user="anna"),
                 f"objection {world.bobs} not found")
    got = world.client().post(f"/sales/objections/{world.bobs}/resolve", json={"method": "defer"},
                              headers=world.tokens["anna"])
    assert got.status_code == 404
    assert _objections(world.crm) == before
    ok(cli("sales", "opp", "resolve", str(world.bobs), "--method", "defer", plugins=[PLUGIN], user="admin"))
    with world.crm.engine.connect() as conn:
        assert conn.execute(select(func.count()).where(Objection.method == "defer")).scalar_one() == 2
