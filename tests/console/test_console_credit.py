"""The credit pages through the TestClient: the 360° section, profile, hold and release (only with
credit.release), refusals shown next to the form, the ageing page and the home card."""
from __future__ import annotations

from decimal import Decimal

from crm_credit import services as credit

from crmcore.schemas import TransactionCreate
from tests.console.plugkit import audit_actions, ids, post, text_of


def invoice(crm, ref, amount="1200.00", at="2024-01-10T00:00:00Z"):
    with crm.unit_of_work("boss") as uow:
        uow.accounts.post(ids(crm)["ALP"], TransactionCreate(kind="invoice", amount=Decimal(amount), currency="EUR",
                                                             reference=ref, occurred_at=at))


def test_section_on_the_360_page_and_hold_then_release(pclient, pcrm):
    alp = ids(pcrm)["ALP"]
    invoice(pcrm, "INV-1")
    carl = pclient("carl")
    page = carl.get(f"/console/customers/{alp}")
    assert page.status_code == 200 and "Put on credit hold" in page.text and "Release" in page.text
    r = post(carl, f"/console/credit/customers/{alp}/hold", f"/console/customers/{alp}", reason="", back="customer")
    assert r.status_code == 422 and 'id="e-reason"' in r.text  # shown on the credit page, next to the field
    r = post(carl, f"/console/credit/customers/{alp}/hold", f"/console/customers/{alp}", reason="cheques bounced",
             back="customer")
    assert r.status_code == 303 and r.headers["location"] == f"/console/customers/{alp}"
    shown = text_of(carl.get(f"/console/customers/{alp}").text)
    assert "The customer is on credit hold." in shown and "cheques bounced" in shown and "Exposure" in shown
    # a second hold is refused by the service, shown in the page with the input kept
    r = post(carl, f"/console/credit/customers/{alp}/hold", f"/console/credit/customers/{alp}", reason="again")
    assert r.status_code == 409 and "already on credit hold" in r.text and 'value="again"' in r.text
    r = post(carl, f"/console/credit/customers/{alp}/release", f"/console/credit/customers/{alp}", reason="paid by wire",
             days="400")
    assert r.status_code == 422 and 'id="e-days"' in r.text and 'value="paid by wire"' in r.text
    r = post(carl, f"/console/credit/customers/{alp}/release", f"/console/credit/customers/{alp}", reason="paid by wire",
             days="3")
    assert r.status_code == 303
    assert {("carl", "hold", str(alp)), ("carl", "release", str(alp))} <= set(audit_actions(pcrm, "credit_profile"))
    with pcrm.unit_of_work("boss", read_only=True) as uow:
        assert credit.get_profile(uow, alp).status == "watch"


def test_release_needs_credit_release(pclient, pcrm):
    alp = ids(pcrm)["ALP"]
    with pcrm.unit_of_work("carl") as uow:
        credit.hold(uow, alp, "over limit")
    mia = pclient("mia")  # a manager may hold, not release
    page = mia.get(f"/console/credit/customers/{alp}").text
    assert "/release" not in page and "over limit" in page
    r = post(mia, f"/console/credit/customers/{alp}/release", f"/console/credit/customers/{alp}", reason="trust me", days="3")
    assert r.status_code == 403 and "credit.release" in r.text and 'value="trust me"' in r.text
    with pcrm.unit_of_work("boss", read_only=True) as uow:
        assert credit.get_profile(uow, alp).status == "hold"


def test_profile_form_and_visibility(pclient, pcrm):
    refs = ids(pcrm)
    invoice(pcrm, "INV-2")
    carl = pclient("carl")
    page = f"/console/credit/customers/{refs['ALP']}"
    r = post(carl, f"{page}/profile", page, limit="abc", currency="EUR")
    assert r.status_code == 422 and 'id="e-limit"' in r.text and 'value="abc"' in r.text
    r = post(carl, f"{page}/profile", page, limit="5000", currency="USD")
    assert r.status_code == 422 and 'id="e-currency"' in r.text and "not a currency of the customer" in r.text
    r = post(carl, f"{page}/profile", page, limit="5000", currency="EUR", payment_terms_days="30", reason="first review")
    assert r.status_code == 303
    assert "€5,000.00" in text_of(carl.get(page).text) or "5,000.00 EUR" in text_of(carl.get(page).text)
    anna = pclient("anna")
    assert anna.get(f"/console/credit/customers/{refs['SIB']}").status_code == 404
    assert "Put on credit hold" not in anna.get(f"/console/customers/{refs['ALP']}").text  # sales may not hold
    r = post(anna, f"/console/credit/customers/{refs['SIB']}/hold", "/console/", reason="x")
    assert r.status_code == 404


def test_ageing_page_and_home_card(pclient, pcrm):
    invoice(pcrm, "INV-OLD", "700.00", "2023-01-01T00:00:00Z")
    alp = ids(pcrm)["ALP"]
    with pcrm.unit_of_work("carl") as uow:
        credit.hold(uow, alp, "ninety days late")
    carl = pclient("carl")
    r = carl.get("/console/credit/ageing?as_of=2024-06-30")
    assert r.status_code == 200 and "Alpine Kitchens GmbH" in r.text and "€700.00" in r.text
    assert carl.get("/console/credit/ageing?as_of=June").status_code == 422
    assert "Alpine Kitchens GmbH" not in pclient("sam").get("/console/credit/ageing?as_of=2024-06-30").text
    home = text_of(carl.get("/console/").text)
    assert "Customers on credit hold" in home and "ninety days late" in home
    assert "ninety days late" not in text_of(pclient("sam").get("/console/").text)
