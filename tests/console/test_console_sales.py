"""The sales pages through the TestClient: board, move (form and fetch), win refused by a credit
hold, lose with a reason, leads and the five-factor form, forecast, the home card."""
from __future__ import annotations

from decimal import Decimal

from crm_credit import services as credit
from crm_sales_automation import services as sales
from crm_sales_automation.schemas import LeadCreate, OpportunityCreate

from tests.console.conftest import csrf_of
from tests.console.plugkit import audit_actions, ids, post, text_of


def deals(crm):
    refs = ids(crm)
    with crm.unit_of_work("boss") as uow:
        a = sales.add_opportunity(uow, refs["ALP"], OpportunityCreate(title="Ovens for Alpine", amount=Decimal(12000),
                                                                    currency="EUR", owner="anna")).id
        s = sales.add_opportunity(uow, refs["SIB"], OpportunityCreate(title="Windows deal", amount=Decimal(800),
                                                                    currency="EUR", owner="sam")).id
        lead = sales.add_lead(uow, LeadCreate(name="Lena Lead", company="Lead GmbH", owner="anna")).id
    return a, s, lead


def test_board_shows_only_visible_deals_and_moves_with_a_form(pclient, pcrm):
    a, s, _ = deals(pcrm)
    anna = pclient("anna")
    page = anna.get("/console/sales")
    assert page.status_code == 200 and "Ovens for Alpine" in page.text and "Windows deal" not in page.text
    assert 'draggable="true"' in page.text and "/sales/static/kanban.js" in page.text
    assert anna.get(f"/console/sales/opportunities/{s}").status_code == 404
    r = post(anna, f"/console/sales/opportunities/{a}/move", "/console/sales", stage="approach")
    assert r.status_code == 303 and r.headers["location"] == "/console/sales"
    assert ("anna", "move", str(a)) in audit_actions(pcrm, "sales.opportunity")
    board = anna.get("/console/sales").text
    assert "Ovens for Alpine moved to approach." in board  # the stage in words, inside the sentence
    # the other owner's deal cannot be moved by URL either
    assert post(anna, f"/console/sales/opportunities/{s}/move", "/console/sales", stage="approach").status_code == 404


def test_a_refused_move_is_shown_in_the_page(pclient, pcrm):
    a, _, _ = deals(pcrm)
    c = pclient("anna")
    r = post(c, f"/console/sales/opportunities/{a}/move", "/console/sales", stage="won")
    assert r.status_code == 422 and "use `crm sales opp win" in r.text and "Ovens for Alpine" in r.text
    token = csrf_of(c.get("/console/sales").text)
    fetched = c.post(f"/console/sales/opportunities/{a}/move", data={"stage": "nowhere"},
                     headers={"x-console-fetch": "1", "x-csrf-token": token})
    assert fetched.status_code == 422 and "unknown stage 'nowhere'" in fetched.text and "<html" not in fetched.text
    ok = c.post(f"/console/sales/opportunities/{a}/move", data={"stage": "closing"},
                headers={"x-console-fetch": "1", "x-csrf-token": token})
    assert ok.status_code == 204
    assert c.post(f"/console/sales/opportunities/{a}/move", data={"stage": "approach"},
                  headers={"x-console-fetch": "1"}).status_code == 403  # no CSRF token


def test_a_viewer_sees_the_board_but_cannot_move(pclient, pcrm):
    a, _, _ = deals(pcrm)
    vic = pclient("vic")
    page = vic.get("/console/sales").text
    assert "Ovens for Alpine" in page and 'class="move-form"' not in page and 'draggable="true"' not in page
    r = post(vic, f"/console/sales/opportunities/{a}/move", "/console/sales", stage="approach")
    assert r.status_code == 403 and "sales.opportunity.move" in r.text


def test_win_refused_by_a_credit_hold_then_lost_with_a_reason(pclient, pcrm):
    a, _, _ = deals(pcrm)
    alp = ids(pcrm)["ALP"]
    with pcrm.unit_of_work("carl") as uow:
        credit.hold(uow, alp, "cheques bounced")
    c = pclient("anna")
    page = f"/console/sales/opportunities/{a}"
    r = post(c, f"{page}/win", page)
    assert r.status_code == 409 and "Refused by credit" in r.text and "credit check failed" in r.text
    assert "Mark as won" in r.text  # the page is drawn again, the deal still open
    r = post(c, f"{page}/lose", page, reason="")
    assert r.status_code == 422 and 'id="e-reason"' in r.text
    r = post(c, f"{page}/lose", page, reason="went with a cheaper oven")
    assert r.status_code == 303
    shown = c.get(page).text
    assert "went with a cheaper oven" in shown and "This deal is closed." in shown


def test_lead_assessment_form_keeps_input_and_saves(pclient, pcrm):
    _, _, lead = deals(pcrm)
    c = pclient("anna")
    assert "Lena Lead" in c.get("/console/sales/leads").text
    assert "Lena Lead" not in pclient("sam").get("/console/sales/leads").text
    page = f"/console/sales/leads/{lead}"
    r = post(c, page, page, points_need="9", note_need="big kitchen", points_power="3")
    assert r.status_code == 422 and 'id="e-points_need"' in r.text and 'value="big kitchen"' in r.text
    r = post(c, page, page)
    assert r.status_code == 422 and "Give at least one factor" in r.text
    r = post(c, page, page, points_need="4", note_need="big kitchen", points_authority="5")
    assert r.status_code == 303
    with pcrm.unit_of_work("anna", read_only=True) as uow:
        d = sales.lead_detail(uow, lead)
    assert {x["factor"]: x["points"] for x in d["assessment"]}["need"] == 4 and d["score"] > 0
    assert pclient("sam").get(page).status_code == 404


def test_forecast_and_home_card(pclient, pcrm):
    deals(pcrm)
    c = pclient("anna")
    for by in ("month", "owner", "pipeline"):
        r = c.get(f"/console/sales/forecast?by={by}")
        assert r.status_code == 200 and "12.000,00" not in r.text and "€12,000.00" in r.text, by
    assert 'id="e-by"' in c.get("/console/sales/forecast?by=nonsense").text
    home = text_of(c.get("/console/").text)
    assert "My open deals" in home and "Ovens for Alpine" in home and "Windows deal" not in home
    assert "Выигрыш" not in home


def _switch(c, lang):
    c.post("/console/language", data={"csrf": csrf_of(c.get("/console/").text), "language": lang, "next": "/console/"})


def test_stage_names_are_translated_and_configured_labels_kept(pclient, pcrm):
    """The default pipeline's stages come from the plugin's catalogue; a configured pipeline's
    labels show as configured (no catalogue knows them), in every language."""
    from crm_sales_automation.schemas import PipelineCreate, StageSpec

    a, _, _ = deals(pcrm)
    refs = ids(pcrm)
    with pcrm.unit_of_work("boss") as uow:
        sales.create_pipeline(uow, PipelineCreate(name="trade_fair", stages=[
            StageSpec(name="stand_visit", label="Visited our stand", probability=30),
            StageSpec(name="qualification", probability=50)]))
        sales.add_opportunity(uow, refs["ALP"], OpportunityCreate(title="Fair ovens", amount=Decimal(500), currency="EUR",
                                                                 owner="anna", pipeline="trade_fair"))
    c = pclient("boss")
    board = text_of(c.get("/console/sales").text)
    assert "Sales pipeline" in board and "Presentation / demo" in board and "Objection handling" in board
    post(c, f"/console/sales/opportunities/{a}/move", "/console/sales", stage="presentation")
    _switch(c, "ru")
    board = c.get("/console/sales").text
    shown = text_of(board)
    assert "Воронка продаж" in shown and "Поиск клиентов" in shown and "Презентация / демонстрация" in shown
    assert ">Работа с возражениями</option>" in board  # the move form's choices too
    assert ">Основная воронка</option>" in board and ">Trade fair</option>" in board  # the pipeline picker
    deal = text_of(c.get(f"/console/sales/opportunities/{a}").text)
    assert "Презентация / демонстрация (50%)" in deal and "Поиск клиентов Презентация / демонстрация" in deal  # history
    fair = text_of(c.get("/console/sales?pipeline=trade_fair").text)
    assert "Воронка trade fair" in fair and "Visited our stand" in fair and "Квалификация" in fair
    _switch(c, "zh_Hans")
    assert "寻找潜在客户" in text_of(c.get("/console/sales").text)
    anna = pclient("anna")
    _switch(anna, "ru")
    assert "(презентация / демонстрация)" in text_of(anna.get("/console/").text).lower()  # the home card
