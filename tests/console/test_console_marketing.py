"""The marketing pages through the TestClient: segments with the live count (the compiler's
preview, visibility applied), create with errors next to the rule, campaigns and the report."""
from __future__ import annotations

from crm_marketing import services as marketing
from crm_marketing.schemas import CampaignCreate

from tests.console.conftest import csrf_of
from tests.console.plugkit import post, text_of


def test_live_count_uses_the_compiler_with_visibility(pclient, pcrm):
    boss, anna = pclient("boss"), pclient("anna")
    token = csrf_of(boss.get("/console/marketing/segments").text)
    r = boss.post("/console/marketing/segments/count", data={"csrf": token, "rule": 'country in ("DE", "RU")'},
                  headers={"hx-request": "true"})
    assert r.status_code == 200 and "2 customers match" in r.text and "<html" not in r.text
    t2 = csrf_of(anna.get("/console/marketing/segments").text)
    r = anna.post("/console/marketing/segments/count", data={"csrf": t2, "rule": 'country in ("DE", "RU")'})
    assert "1 customer matches" in r.text  # an "own" user counts only their customers
    r = boss.post("/console/marketing/segments/count", data={"csrf": token, "rule": 'colour = "red"'})
    assert r.status_code == 200 and 'class="error-text"' in r.text and "colour" in r.text
    assert boss.post("/console/marketing/segments/count", data={"rule": "x"}).status_code == 403  # CSRF


def test_create_segment_without_javascript(pclient, pcrm):
    mark = pclient("mark")
    page = mark.get("/console/marketing/segments")
    assert page.status_code == 200 and 'hx-post="/console/marketing/segments/count"' in page.text
    r = post(mark, "/console/marketing/segments", "/console/marketing/segments", name="Germany", rule='country = "DE"',
             intent="count")
    assert r.status_code == 200 and "1 customer matches" in r.text and "Alpine Kitchens GmbH" in r.text
    r = post(mark, "/console/marketing/segments", "/console/marketing/segments", name="Bad", rule="country ==", intent="create")
    assert r.status_code == 422 and 'id="e-rule"' in r.text and "country ==" in r.text and 'value="Bad"' in r.text
    r = post(mark, "/console/marketing/segments", "/console/marketing/segments", name="Germany", rule='country = "DE"',
             intent="create")
    assert r.status_code == 303
    shown = mark.get(r.headers["location"])
    assert shown.status_code == 200 and "Alpine Kitchens GmbH" in shown.text
    r = post(mark, "/console/marketing/segments", "/console/marketing/segments", name="Germany", rule='country = "DE"',
             intent="create")
    assert r.status_code == 409 and "already exists" in r.text
    vic = pclient("vic")
    assert "New segment" not in vic.get("/console/marketing/segments").text
    r = post(vic, "/console/marketing/segments", "/console/marketing/segments", name="Mine", rule='country = "DE"')
    assert r.status_code == 403 and "marketing.segment.write" in r.text
    assert pclient("boss").get("/console/marketing/segment?name=nope").status_code == 404


def test_campaigns_and_report(pclient, pcrm):
    with pcrm.unit_of_work("boss") as uow:
        marketing.create_segment(uow, "All DE", 'country = "DE"')
        cid = marketing.create_campaign(uow, CampaignCreate(name="Spring fair", channel="email", segments=["All DE"],
                                                            subject="Hello", body="Hello from the fair", currency="EUR")).id
    boss = pclient("boss")
    listing = boss.get("/console/marketing/campaigns")
    assert listing.status_code == 200 and "Spring fair" in listing.text
    r = boss.get(f"/console/marketing/campaigns/{cid}/report")
    assert r.status_code == 200 and "Campaign report: Spring fair" in r.text and "not computed" in text_of(r.text)
    assert boss.get(f"/console/marketing/campaigns/{cid}/report?attribution=magic").status_code == 422
    assert boss.get("/console/marketing/campaigns/999/report").status_code == 404
    # an "own" sales user needs marketing.report for the campaign-wide figures
    r = pclient("anna").get(f"/console/marketing/campaigns/{cid}/report")
    assert r.status_code == 403 and "marketing.report" in r.text
