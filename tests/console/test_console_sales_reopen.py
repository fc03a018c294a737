"""Reopening a lost deal from its page (TestClient): the form on a lost deal for those who may,
the audit entry and the customer's timeline line, the refusals shown in the page, and a
reopened deal of a customer on credit hold refused again when it is won."""
from __future__ import annotations

from decimal import Decimal

from crm_credit import services as credit
from crm_sales_automation import services as sales
from crm_sales_automation.schemas import OpportunityCreate

from tests.console.conftest import csrf_of
from tests.console.plugkit import audit_actions, ids, post, text_of


def lost_deal(crm) -> int:
    alp = ids(crm)["ALP"]
    with crm.unit_of_work("boss") as uow:
        oid = sales.add_opportunity(uow, alp, OpportunityCreate(title="Ovens for Alpine", amount=Decimal(12000),
                                                               currency="EUR", owner="anna")).id
        sales.move(uow, oid, "approach")
        sales.lose(uow, oid, "went with a cheaper oven")
    return oid


def test_a_lost_deal_is_reopened_from_its_page(pclient, pcrm):
    oid = lost_deal(pcrm)
    c = pclient("anna")
    page = f"/console/sales/opportunities/{oid}"
    shown = c.get(page).text
    assert f'action="/console/sales/opportunities/{oid}/reopen"' in shown and "Reason for reopening" in shown
    assert 'name="csrf"' in shown.split("/reopen", 1)[1].split("</form>", 1)[0]
    r = post(c, f"{page}/reopen", page, reason="", stage="closing")
    assert r.status_code == 422 and 'id="e-reason"' in r.text  # next to its field, the stage chosen kept
    assert '<option value="closing" selected>' in r.text and "This deal is closed." in r.text
    r = post(c, f"{page}/reopen", page, reason="they called back", stage="won")
    assert r.status_code == 422 and 'id="e-stage"' in r.text and 'value="they called back"' in r.text
    r = post(c, f"{page}/reopen", page, reason="they called back", stage="")
    assert r.status_code == 303 and r.headers["location"] == page
    after = c.get(page).text
    assert "Ovens for Alpine is open again." in after and "Mark as won" in after and "/reopen" not in after
    with pcrm.unit_of_work("boss", read_only=True) as uow:
        d = sales.opportunity_detail(uow, oid)
    assert d["status"] == "open" and d["stage"] == "approach"  # the stage it was lost from
    assert ("anna", "reopen", str(oid)) in audit_actions(pcrm, "sales.opportunity")
    timeline = text_of(c.get(f"/console/customers/{ids(pcrm)['ALP']}").text)
    assert "Deal reopened: Ovens for Alpine" in timeline
    r = post(c, f"{page}/reopen", page, reason="twice")  # an open deal: refused, shown in the page
    assert r.status_code == 409 and "only a lost deal can be reopened" in r.text


def test_reopen_refused_without_the_permission(pclient, pcrm):
    oid = lost_deal(pcrm)
    vic = pclient("vic")  # a viewer sees the deal but may not reopen it
    page = f"/console/sales/opportunities/{oid}"
    shown = vic.get(page).text
    assert "went with a cheaper oven" in shown and "/reopen" not in shown
    r = post(vic, f"{page}/reopen", page, reason="please")
    assert r.status_code == 403 and "sales.opportunity.reopen" in r.text and "This deal is closed." in r.text
    with pcrm.unit_of_work("boss", read_only=True) as uow:
        assert sales.opportunity_detail(uow, oid)["status"] == "lost"
        assert not [e for e in uow.audit.list("sales.opportunity") if e.action == "reopen"]
    # without the CSRF token nothing is written either
    anna = pclient("anna")
    assert anna.post(f"{page}/reopen", data={"reason": "x"}, follow_redirects=False).status_code == 403


def test_a_held_customers_reopened_deal_is_refused_on_win(pclient, pcrm):
    oid = lost_deal(pcrm)
    with pcrm.unit_of_work("carl") as uow:
        credit.hold(uow, ids(pcrm)["ALP"], "cheques bounced")
    c = pclient("anna")
    page = f"/console/sales/opportunities/{oid}"
    assert post(c, f"{page}/reopen", page, reason="new budget").status_code == 303
    r = post(c, f"{page}/win", page)
    assert r.status_code == 409 and "Refused by credit" in r.text and "credit check failed" in r.text
    with pcrm.unit_of_work("boss", read_only=True) as uow:
        assert sales.opportunity_detail(uow, oid)["status"] == "open"


def test_the_reopen_form_in_chinese_and_russian(pclient, pcrm):
    oid = lost_deal(pcrm)
    c = pclient("anna")
    page = f"/console/sales/opportunities/{oid}"
    for lang, words in (("zh_Hans", ("重新打开的原因", "退回到阶段", "重新打开商机")),
                        ("ru", ("Почему сделка открывается снова", "Вернуть на этап", "Открыть сделку снова"))):
        c.post("/console/language", data={"csrf": csrf_of(c.get("/console/").text), "language": lang, "next": "/console/"})
        shown = text_of(c.get(page).text)
        assert all(w in shown for w in words), (lang, shown)
        assert "Reason for reopening" not in shown and "Reopen the deal" not in shown
