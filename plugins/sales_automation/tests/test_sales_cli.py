"""`crm sales …`: a lead's path to a won deal, every read in text and JSON, one-line errors."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from crm_sales_automation.testing import assert_error

from crmcore import Veto, hookimpl

Run = Callable[..., Any]


def ok(res: Any) -> Any:
    assert res.exit_code == 0, (res.exit_code, res.output)
    return res


def js(res: Any) -> Any:
    return json.loads(ok(res).stdout)


@pytest.fixture
def path(scli: Run) -> dict[str, int]:
    """The README tour: a lead assessed, qualified, converted with a deal, moved, won; a quota."""
    ok(scli("user", "add", "admin", "--name", "Admin", "--role", "admin"))
    ok(scli("--user", "admin", "user", "add", "anna", "--name", "Anna", "--role", "sales"))
    def run(*a: str) -> Any:
        return scli("--user", "anna", *a)

    lead = js(run("sales", "lead", "add", "Jana Novak", "--company", "Alpine Kitchens GmbH", "--email",
                  "jana@alpine.example.com", "--source", "event", "--json"))["id"]
    ok(run("sales", "lead", "assess", str(lead), "--need", "5", "--volume", "4", "--power", "4", "--credibility", "3",
           "--authority", "5", "--note", "need=kitchen older than 20 years"))
    ok(run("sales", "lead", "update", str(lead), "--status", "qualified"))
    conv = js(run("sales", "lead", "convert", str(lead), "--opportunity", "Kitchen", "--amount", "12500",
                  "--close", "2030-03-31", "--json"))
    opp = conv["opportunity_id"]
    ok(run("sales", "opp", "move", str(opp), "presentation"))
    ok(run("sales", "opp", "objection", str(opp), "--kind", "price", "--description", "too expensive"))
    act = js(run("sales", "activity", "add", "demo", "Showroom demo", "--opp", str(opp), "--due", "2030-01-10", "--json"))["id"]
    ok(run("sales", "activity", "done", str(act), "--outcome", "liked it"))
    ok(run("sales", "activity", "add", "call", "Ask for the order", "--opp", str(opp), "--due", "2030-02-01"))
    ok(scli("--user", "admin", "sales", "quota", "set", "anna", "2030-03", "50000", "--currency", "EUR"))
    return {"lead": lead, "opp": opp, "customer": conv["customer_id"]}


READS = [
    ("lead", "list"), ("lead", "show", "{lead}"), ("opp", "list"), ("opp", "show", "{opp}"), ("pipeline", "list"),
    ("pipeline", "show"), ("activity", "due", "--until", "2031-01-01"), ("forecast",), ("forecast", "--by", "owner"),
    ("forecast", "--by", "pipeline"), ("forecast", "--learned"), ("report", "funnel"), ("report", "performance"),
    ("report", "stale"), ("report", "pipeline"), ("report", "probabilities"), ("quota", "list"),
]


def test_every_read_has_text_and_json(path: dict[str, int], scli: Run) -> None:
    for args in READS:
        argv = [a.format(**path) for a in args]
        text = ok(scli("--user", "anna", "sales", *argv))
        assert text.stdout.strip(), args
        assert js(scli("--user", "anna", "sales", *argv, "--json")) not in (None, [], {}), args


def test_the_path_to_a_won_deal_and_the_forecast(path: dict[str, int], scli: Run) -> None:
    def run(*a: str) -> Any:
        return scli("--user", "anna", *a)

    lead = js(run("sales", "lead", "show", str(path["lead"]), "--json"))
    assert lead["status"] == "converted" and lead["score"] == 86.0
    assert lead["assessment"][0]["note"] == "kitchen older than 20 years"
    shown = ok(run("sales", "lead", "show", str(path["lead"]))).stdout
    assert "score 86.0 / 100" in shown and "decision authority" in shown
    board = ok(run("sales", "pipeline", "show")).stdout
    assert "presentation / demo" in board and "Kitchen" in board and "Alpine Kitchens GmbH" in board
    fc = js(run("sales", "forecast", "--by", "owner", "--json"))
    (row,) = [r for r in fc["rows"] if r["month"] == "2030-03"]
    assert (row["owner"], row["weighted"], row["quota"]) == ("anna", "6250.00", "50000.00")
    out = ok(run("sales", "opp", "win", str(path["opp"]))).stdout
    assert "won: 12,500.00 EUR" in out
    fc = js(run("sales", "forecast", "--by", "owner", "--json"))
    assert all(r["deals"] == 0 for r in fc["rows"])  # a won deal leaves the open forecast
    view = js(run("customer", "show", str(path["customer"]), "--json"))
    assert view["sections"]["Sales"]["won deals"] == "1 (12,500.00 EUR)"
    interactions = [i["subject"] for i in view["interactions"]]
    assert "Showroom demo" in interactions
    text = ok(run("customer", "show", str(path["customer"]))).stdout
    assert "opportunity won" in text
    opp = js(run("sales", "opp", "show", str(path["opp"]), "--json"))
    assert [h["to"] for h in opp["history"]] == ["prospecting", "presentation", "won"]
    assert {h["by"] for h in opp["history"]} == {"anna"}


def test_bad_input_is_one_line(path: dict[str, int], scli: Run) -> None:
    def run(*a: str) -> Any:
        return scli("--user", "anna", *a)

    opp = str(path["opp"])
    assert_error(run("sales", "opp", "move", opp, "heaven"), "unknown stage 'heaven'")
    assert_error(run("sales", "opp", "add", "#1", "X", "--amount", "-5"), "must not be negative")
    assert_error(run("sales", "opp", "add", "#1", "X", "--amount", "abc"), "not an amount")
    assert_error(run("sales", "opp", "add", "NOBODY", "X", "--amount", "5"), "customer 'NOBODY' not found")
    assert_error(run("sales", "opp", "add", "#1", "X", "--amount", "5", "--close", "soon"), "not a date")
    assert_error(run("sales", "opp", "lose", opp, "--reason", " "), "needs a reason")
    assert_error(run("sales", "opp", "show", "999"), "opportunity 999 not found")
    assert_error(run("sales", "lead", "convert", str(path["lead"])), "already converted")
    assert_error(run("sales", "lead", "assess", str(path["lead"]), "--need", "3"), "converted")
    assert_error(run("sales", "lead", "assess", str(path["lead"]), "--note", "luck=x"), "use FACTOR=TEXT")
    assert_error(run("sales", "forecast", "--rate", "USD=0.9"), "needs --to")
    assert_error(run("sales", "quota", "set", "anna", "2030-12", "5"), "sales.quota.manage")
    assert_error(scli("--user", "admin", "sales", "quota", "set", "anna", "2030-13", "5"), "not a month")
    assert_error(scli("--user", "admin", "sales", "handover", "anna", "ghost"), "user 'ghost' not found")
    ok(run("sales", "opp", "win", opp))
    assert_error(run("sales", "opp", "move", opp, "closing"), "already won")
    assert_error(run("sales", "opp", "win", opp), "already won")
    res = run("sales", "forecast", "--by", "colour")
    assert res.exit_code == 2 and "Traceback" not in res.output
    lead = js(run("sales", "lead", "add", "Gone", "--json"))["id"]
    assert_error(run("sales", "lead", "update", str(lead)), "nothing to update")
    assert_error(run("sales", "lead", "update", str(lead), "--owner", "ghost"), "user 'ghost' not found")
    ok(run("sales", "lead", "update", str(lead), "--notes", "call back in May", "--owner", "anna"))
    assert js(run("sales", "lead", "show", str(lead), "--json"))["notes"] == "call back in May"
    ok(run("sales", "lead", "update", str(lead), "--status", "disqualified"))
    assert_error(run("sales", "lead", "convert", str(lead)), "disqualified")
    assert_error(run("sales", "lead", "add", "Again", "--email", "jana@alpine.example.com"), "already has the email")


def test_a_viewer_cannot_move_a_deal_from_the_cli(path: dict[str, int], scli: Run) -> None:
    ok(scli("--user", "admin", "user", "add", "vera", "--name", "Vera", "--role", "viewer"))
    assert_error(scli("--user", "vera", "sales", "opp", "move", str(path["opp"]), "closing"), "user vera lacks sales.opportunity.move")
    assert js(scli("--user", "vera", "sales", "opp", "list", "--json"))[0]["stage"] == "presentation"


def test_invoice_and_handover_from_the_cli(path: dict[str, int], scli: Run) -> None:
    ok(scli("--user", "admin", "user", "add", "ben", "--name", "Ben", "--role", "sales"))
    opp = str(path["opp"])
    assert_error(scli("--user", "admin", "sales", "opp", "invoice", opp), "only a won deal")
    ok(scli("--user", "anna", "sales", "opp", "win", opp))
    assert "posted invoice SALES-OPP-" in ok(scli("--user", "admin", "sales", "opp", "invoice", opp)).stdout
    assert "already posted" in ok(scli("--user", "admin", "sales", "opp", "invoice", opp)).stdout
    assert_error(scli("--user", "anna", "sales", "opp", "invoice", opp), "account.post")  # the core's permission
    other = js(scli("--user", "anna", "sales", "opp", "add", str(path["customer"]), "Bathroom", "--amount", "800",
                    "--json"))["id"]
    out = js(scli("--user", "admin", "sales", "handover", "anna", "ben", "--json"))
    assert out["opportunities"] == 1
    shown = js(scli("--user", "admin", "sales", "opp", "show", str(other), "--json"))
    assert shown["owner"] == "ben"


def test_pipeline_add_and_use(scli: Run) -> None:
    ok(scli("customer", "add", "Acme", "--ref", "ACME"))
    ok(scli("sales", "pipeline", "add", "projects", "--stage", "intake=10", "--stage", "offer=60"))
    assert_error(scli("sales", "pipeline", "add", "projects", "--stage", "x=1"), "already exists")
    assert_error(scli("sales", "pipeline", "add", "p2", "--stage", "x"), "NAME=PROBABILITY")
    assert_error(scli("sales", "pipeline", "add", "p2", "--stage", "x=150"), "100")
    assert_error(scli("sales", "pipeline", "add", "p2", "--stage", "won=10"), "won and lost")
    oid = js(scli("sales", "opp", "add", "ACME", "Big project", "--amount", "1000", "--pipeline", "projects", "--json"))["id"]
    ok(scli("sales", "opp", "move", str(oid), "offer"))
    assert_error(scli("sales", "opp", "move", str(oid), "closing"), "unknown stage 'closing' in pipeline 'projects'")
    names = [p["name"] for p in js(scli("sales", "pipeline", "list", "--json"))]
    assert names == ["default", "projects"]
    assert "offer" in ok(scli("sales", "pipeline", "show", "projects")).stdout


class _NoBigDeals:
    PLUGIN_ID = "nobig"

    @hookimpl(optionalhook=True)
    def sales_before_opportunity_won(self, uow: Any, opportunity: Any) -> None:
        if opportunity.amount > 1000:
            raise Veto(f"deal {opportunity.id} of {opportunity.amount} {opportunity.currency} needs approval")


def test_a_win_refused_by_a_guard_from_the_cli(cli: Run) -> None:
    import crm_sales_automation.plugin as PLUGIN

    def run(*a: str) -> Any:
        return cli(*a, plugins=[PLUGIN, _NoBigDeals()])

    ok(run("customer", "add", "Acme", "--ref", "ACME"))
    big = js(run("sales", "opp", "add", "ACME", "Big", "--amount", "5000", "--json"))["id"]
    small = js(run("sales", "opp", "add", "ACME", "Small", "--amount", "500", "--json"))["id"]
    assert_error(run("sales", "opp", "win", str(big)),
                 f"refused by plugin 'nobig' (sales_before_opportunity_won): deal {big} of 5000.00 EUR needs approval")
    assert js(run("sales", "opp", "show", str(big), "--json"))["status"] == "open"
    ok(run("sales", "opp", "win", str(small)))


def test_demo_data(scli: Run) -> None:
    for i in range(3):
        ok(scli("customer", "add", f"Customer {i}"))
    out = ok(scli("sales", "demo", "--deals", "12", "--leads", "12", "--seed", "1")).stdout
    assert out.startswith("demo: 12 leads") and "12 deals" in out
    (funnel,) = js(scli("sales", "report", "funnel", "--json"))
    assert funnel["stages"][0]["reached"] == 12 and funnel["won"] + funnel["lost"] > 0
    assert len(js(scli("sales", "lead", "list", "--json"))) == 12
    history = js(scli("sales", "opp", "show", "1", "--json"))["history"]
    assert [h["at"] for h in history] == sorted(h["at"] for h in history)  # backdated in order
