"""Reopening a lost deal (issue 23 §4): back to an open stage, audited, on the timeline, with a
permission; winning it afterwards runs the win guards again (credit: a held customer's reopened
deal is not won, by the CLI and by the API); two processes reopening or winning at once."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import crm_credit.plugin as CREDIT  # installed by the project's set-up: a missing plugin is a failure
import crm_sales_automation.plugin as PLUGIN
import pytest
from crm_credit import services as credit
from crm_sales_automation import services
from crm_sales_automation.models import Opportunity, Stage, StageChange
from crm_sales_automation.testing import Sales, assert_error
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crmcore import CRM, PermissionDenied, hookimpl
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.errors import Conflict, InvalidInput, NotFound
from crmcore.models import AuditEntry, Interaction
from crmcore.testing_concurrency import run_cli_in_processes


def _history(crm: CRM, oid: int) -> list[tuple[str | None, str]]:
    with crm.unit_of_work(read_only=True) as uow:
        names = dict(uow.session.execute(select(Stage.id, Stage.name)).all())
        return [(names.get(f), names[t]) for f, t in uow.session.execute(
            select(StageChange.from_stage_id, StageChange.to_stage_id).where(StageChange.opportunity_id == oid)
            .order_by(StageChange.id))]


def _state(crm: CRM, oid: int) -> tuple[str, str, str | None, int, int]:
    """(status, stage, lost reason, stage changes, audit entries) of a deal."""
    with crm.unit_of_work(read_only=True) as uow:
        o = uow.session.get(Opportunity, oid)
        stage = uow.session.get(Stage, o.stage_id).name
        changes = uow.session.scalar(select(func.count()).select_from(StageChange).where(StageChange.opportunity_id == oid))
        audits = uow.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.entity == "sales.opportunity", AuditEntry.entity_id == str(oid)))
        return o.status.value, stage, o.lost_reason, changes, audits


def test_reopen_goes_back_to_the_stage_it_was_lost_from(scrm: CRM, sales: Sales) -> None:
    c = sales.customer("Acme")
    oid = sales.opp(c, "2500", "Kitchen")
    sales.move(oid, "qualification", "presentation")
    with scrm.unit_of_work() as uow:
        services.lose(uow, oid, "price", code="price")
    with scrm.unit_of_work() as uow:
        services.reopen(uow, oid, "  they called back: budget approved  ")
    with scrm.unit_of_work(read_only=True) as uow:
        d = services.opportunity_detail(uow, oid)
        assert (d["status"], d["stage"], d["closed_at"], d["lost_reason"], d["lost_reason_code"]) == \
            ("open", "presentation", None, None, None)
        assert [(h["from"], h["to"]) for h in d["history"]][-2:] == [("presentation", "lost"), ("lost", "presentation")]
        audit = uow.session.scalars(select(AuditEntry).where(AuditEntry.entity == "sales.opportunity",
                                                             AuditEntry.action == "reopen")).one()
        assert audit.before["lost_reason"] == "price" and audit.after["reason"] == "they called back: budget approved"
        i = uow.session.get(Interaction, audit.after["interaction_id"])
        assert (i.customer_id, i.kind, i.subject, i.source, i.source_ref) == \
            (c, "sale", "Deal reopened: Kitchen", "sales_automation", f"opportunity:{oid}")
        assert i.notes.startswith("they called back: budget approved")
    # lost again and reopened into a stage named explicitly; the funnel keeps the furthest stage reached
    sales.lose(oid, "timing")
    with scrm.unit_of_work() as uow:
        services.reopen(uow, oid, "second try", stage="prospecting")
    assert _state(scrm, oid)[:3] == ("open", "prospecting", None)
    with scrm.unit_of_work(read_only=True) as uow:
        furthest = uow.session.scalar(select(Stage.position).where(Stage.name == "presentation"))
        assert uow.session.get(Opportunity, oid).reached_position == furthest
    sales.win(oid)
    assert _state(scrm, oid)[0] == "won"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str, str]] = []

    @hookimpl(optionalhook=True)
    def sales_opportunity_reopened(self, uow: Any, opportunity: Any, reason: str) -> None:
        self.calls.append(("reopened", opportunity.id, opportunity.status.value, reason))

    @hookimpl(optionalhook=True)
    def sales_opportunity_stage_changed(self, uow: Any, opportunity: Any, from_stage: str, to_stage: str) -> None:
        self.calls.append(("stage", opportunity.id, from_stage, to_stage))


def test_the_reopen_hooks_fire(make_crm: Callable[..., CRM]) -> None:
    rec = Recorder()
    crm = make_crm(plugins=[PLUGIN, ("rec", rec)])
    s = Sales(crm)
    oid = s.opp(s.customer("Acme"))
    s.lose(oid)
    rec.calls.clear()
    with crm.unit_of_work() as uow:
        services.reopen(uow, oid, "back")
    assert rec.calls == [("stage", oid, "lost", "prospecting"), ("reopened", oid, "open", "back")]


def test_bad_reopens_write_nothing(scrm: CRM, sales: Sales) -> None:
    c = sales.customer("Acme")
    open_, won, lost = sales.opp(c), sales.opp(c), sales.opp(c)
    sales.win(won)
    sales.lose(lost)
    before = {o: _state(scrm, o) for o in (open_, won, lost)}
    cases: list[tuple[type[Exception], str, int, dict[str, Any]]] = [
        (Conflict, f"opportunity {open_} is open; only a lost deal can be reopened", open_, {}),
        (Conflict, f"opportunity {won} is won; only a lost deal can be reopened", won, {}),
        (InvalidInput, "a reopened deal needs a reason", lost, {"reason": "   "}),
        (InvalidInput, "unknown stage 'nirvana'", lost, {"stage": "nirvana"}),
        (InvalidInput, "goes back to an open stage, not 'won'", lost, {"stage": "won"}),
        (InvalidInput, "goes back to an open stage, not 'lost'", lost, {"stage": "lost"}),
        (InvalidInput, "reason", lost, {"reason": "bad\x00reason"}),
        (NotFound, "opportunity 999999 not found", 999999, {}),
    ]
    for exc, message, oid, kw in cases:
        with pytest.raises(exc, match=message.replace("(", r"\(")), scrm.unit_of_work() as uow:
            services.reopen(uow, oid, kw.pop("reason", "why not"), **kw)
    assert {o: _state(scrm, o) for o in (open_, won, lost)} == before


def test_reopening_needs_its_permission(scrm: CRM, sales: Sales) -> None:
    sales.user("vera", "viewer")
    sales.user("anna", "sales")
    sales.actor = "admin"
    oid = sales.opp(sales.customer("Acme"))
    sales.lose(oid)
    with pytest.raises(PermissionDenied, match=r"sales\.opportunity\.(reopen|move)"), \
            scrm.unit_of_work("vera") as uow:
        services.reopen(uow, oid, "please")
    assert _state(scrm, oid)[0] == "lost"
    with scrm.unit_of_work("anna") as uow:
        services.reopen(uow, oid, "a sales rep may, by default")
    assert _state(scrm, oid)[0] == "open"


def test_a_role_without_the_reopen_permission_is_refused(make_crm: Callable[..., CRM]) -> None:
    crm = make_crm(plugins=[PLUGIN], config={"roles": {"sales": {"revoke": [services.REOPEN]}}})
    s = Sales(crm)
    s.user("anna", "sales")
    s.actor = "anna"
    oid = s.opp(s.customer("Acme"))
    s.lose(oid)
    with pytest.raises(PermissionDenied, match=r"sales\.opportunity\.reopen"), crm.unit_of_work("anna") as uow:
        services.reopen(uow, oid, "please")
    assert _state(crm, oid)[0] == "lost"


# -- the credit check on the win after a reopen, by every face -----------------------------------

@pytest.fixture
def held(make_crm: Callable[..., CRM], tmp_path: Path) -> tuple[CRM, int, int]:
    """sales + credit (checked on win): a customer on credit hold with a lost deal."""
    (tmp_path / "crm.toml").write_text('[credit]\ncheck_point = "both"\n')  # the cli fixture runs in tmp_path
    crm = make_crm(plugins=[PLUGIN, CREDIT], config={"credit": {"check_point": "both"}})
    s = Sales(crm)
    s.user("anna", "sales")
    s.actor = "admin"
    c = s.customer("Held GmbH")
    oid = s.opp(c, "800", "Flooring", owner="anna")
    s.lose(oid, "no budget")
    with crm.unit_of_work("admin") as uow:
        credit.hold(uow, c, "cheque bounced")
    return crm, c, oid


def test_cli_a_held_customers_reopened_deal_is_not_won(held: tuple[CRM, int, int], cli: Callable[..., Any]) -> None:
    crm, _c, oid = held
    run = lambda *a: cli("sales", "opp", *a, plugins=[PLUGIN, CREDIT], user="anna")  # noqa: E731
    assert_error(run("reopen", str(oid), "--reason", " "), "a reopened deal needs a reason")
    assert_error(run("reopen", str(oid), "--reason", "x", "--stage", "won"), "goes back to an open stage, not 'won'")
    assert_error(run("win", str(oid)), f"opportunity {oid} is already lost; a closed deal cannot be won")
    res = run("reopen", str(oid), "--reason", "budget approved", "--stage", "closing")
    assert res.exit_code == 0 and res.output.strip() == f"opportunity {oid} reopened in stage closing", res.output
    assert_error(run("reopen", str(oid), "--reason", "again"), f"opportunity {oid} is open; only a lost deal can be reopened")
    before = _state(crm, oid)
    res = run("win", str(oid))
    assert_error(res, "on credit hold")
    assert "sales_before_opportunity_won" in res.stderr
    assert _state(crm, oid) == before == ("open", "closing", None, before[3], before[4])
    with crm.unit_of_work("admin") as uow:
        from crm_credit.schemas import ReleaseRequest

        credit.release(uow, _c, ReleaseRequest(reason="paid by wire", reference=f"opportunity:{oid}"))
    assert run("win", str(oid)).exit_code == 0
    assert _state(crm, oid)[0] == "won"
    assert_error(run("reopen", str(oid), "--reason", "x"), f"opportunity {oid} is won; only a lost deal can be reopened")


def test_api_a_held_customers_reopened_deal_is_not_won(held: tuple[CRM, int, int]) -> None:
    crm, _c, oid = held
    with crm.unit_of_work("admin") as uow:
        h = {"Authorization": f"Bearer {TokenService(uow).create('anna', 't')[1]}"}
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    url = f"/sales/opportunities/{oid}"
    for body, code in (({}, 422), ({"reason": ""}, 422), ({"reason": "x", "colour": "red"}, 422),
                       ({"reason": "x", "stage": "lost"}, 422), ({"reason": "x", "stage": "nirvana"}, 422)):
        r = client.post(f"{url}/reopen", json=body, headers=h)
        assert r.status_code == code, (body, r.status_code, r.text)
    assert client.post("/sales/opportunities/999999/reopen", json={"reason": "x"}, headers=h).status_code == 404
    assert client.post(f"{url}/reopen", json={"reason": "x"}).status_code == 401
    r = client.post(f"{url}/reopen", json={"reason": "budget approved"}, headers=h)
    assert r.status_code == 200 and (r.json()["status"], r.json()["stage"]) == ("open", "prospecting"), r.text
    again = client.post(f"{url}/reopen", json={"reason": "again"}, headers=h)
    assert again.status_code == 409 and "only a lost deal can be reopened" in again.json()["detail"]
    before = _state(crm, oid)
    refused = client.post(f"{url}/win", headers=h)
    assert refused.status_code == 409 and "on credit hold" in refused.json()["detail"], refused.text
    assert _state(crm, oid) == before
    assert client.get(url, headers=h).json()["status"] == "open"


# -- two processes at once ------------------------------------------------------------------------

def test_concurrent_reopens_and_a_win_have_one_result(scrm: CRM, crm_url: str) -> None:
    s = Sales(scrm)
    oid = s.opp(s.customer("Acme"), "500")
    s.move(oid, "approach")
    s.lose(oid)
    results = run_cli_in_processes(crm_url, [["sales", "opp", "reopen", str(oid), "--reason", f"try {n}"] for n in range(3)]
                                   + [["sales", "opp", "win", str(oid)]], users="rep", plugins=[PLUGIN])
    reopens, win = results[:3], results[3]
    assert sorted(r.code for r in reopens) == [0, 1, 1], [(r.code, r.stderr) for r in results]
    won = win.code == 0
    for r in reopens:
        assert r.code == 0 or r.stderr.strip() in (
            f"error: opportunity {oid} is open; only a lost deal can be reopened",
            f"error: opportunity {oid} is won; only a lost deal can be reopened"), r.stderr
    assert won or win.stderr.strip() == f"error: opportunity {oid} is already lost; a closed deal cannot be won", win.stderr
    hist = _history(scrm, oid)
    assert hist[:3] == [(None, "prospecting"), ("prospecting", "approach"), ("approach", "lost")]
    assert hist[3:] == [("lost", "approach")] + ([("approach", "won")] if won else [])
    assert _state(scrm, oid)[0] == ("won" if won else "open")
    with scrm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Interaction).where(
            Interaction.source_ref == f"opportunity:{oid}")) == 1
