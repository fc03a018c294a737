"""The value pages through the TestClient: no run yet, the SVG charts with their tables, the
customers of a tier (visibility, paging), base-wide figures only with value.report, the card."""
from __future__ import annotations

import re

from crm_value_analysis import run as value_run
from crm_value_analysis.testing import Base, d

from crmcore.schemas import UserCreate
from tests.console.plugkit import ids, text_of


def analyse(crm):
    with crm.unit_of_work("boss") as uow:  # the builder acts as "test"
        uow.users.add(UserCreate(username="test", display_name="Test Builder", roles=["admin"]))
    base = Base(crm)
    refs = ids(crm)
    for n, cid in enumerate([refs["ALP"], refs["SIB"], *[base.customer(f"Shop {i}", owner="sam") for i in range(8)]]):
        base.buys(cid, [1, 20 + n, 60 + 2 * n], str(100 * (n + 1) ** 2))
    with crm.unit_of_work("boss") as uow:
        value_run.run_analysis(uow, as_of=d(120))


def test_no_run_yet_is_a_message(pclient, pcrm):
    r = pclient("boss").get("/console/value")
    assert r.status_code == 200 and "crm value run" in r.text
    assert "No value analysis has run yet." in pclient("boss").get("/console/").text


def test_charts_are_svg_with_text_and_tables(pclient, pcrm):
    analyse(pcrm)
    boss = pclient("boss")
    r = boss.get("/console/value")
    assert r.status_code == 200
    svgs = re.findall(r"<svg[^>]*role=\"img\"", r.text)
    assert len(svgs) == 3 and "<polyline" in r.text and "<title id=\"rfm-title\">" in r.text
    shown = text_of(r.text)
    assert "Tiers, best first" in shown and "Gini coefficient" in shown and "R5" in shown and "F1" in shown
    assert "<script" not in r.text.split("</head>")[1]  # readable without JavaScript
    home = text_of(boss.get("/console/").text)
    assert "Customer value" in home and "Purchasers 10" in home


def test_tier_list_pages_and_visibility(pclient, pcrm):
    analyse(pcrm)
    boss = pclient("boss")
    page = boss.get("/console/value")
    tiers = re.findall(r'href="/console/value/tiers/([a-z_]+)"', page.text)
    seen_all: list[str] = []
    for t in dict.fromkeys(tiers):
        seen_all += re.findall(r'href="/console/customers/\d+">([^<]+)<', boss.get(f"/console/value/tiers/{t}").text)
    assert "Alpine Kitchens GmbH" in seen_all and len(seen_all) == 10
    anna = pclient("anna")  # "own": her customers only, and no base-wide report without value.report
    mine = []
    for t in dict.fromkeys(tiers):
        r = anna.get(f"/console/value/tiers/{t}")
        assert r.status_code == 200
        mine += re.findall(r'href="/console/customers/\d+">([^<]+)<', r.text)
    assert mine == ["Alpine Kitchens GmbH"]
    r = anna.get("/console/value")
    assert r.status_code == 403 and "value.report" in r.text
    assert "Customer value" not in text_of(anna.get("/console/").text)
    assert boss.get("/console/value/tiers/platinum").status_code == 404


def test_money_carries_its_currency_in_the_locale(pclient, pcrm):
    """The run stores no currency when the accounts are kept in one: the card and the tier list
    show that one (€ here), formatted for the reader."""
    from tests.console.conftest import csrf_of

    analyse(pcrm)
    boss = pclient("boss")
    home = text_of(boss.get("/console/").text)
    assert re.search(r"Revenue €[\d,]+\.\d\d", home), home
    tier = re.findall(r'href="/console/value/tiers/([a-z_]+)"', boss.get("/console/value").text)[0]
    assert re.search(r'<td class="num">€[\d,]+\.\d\d</td>', boss.get(f"/console/value/tiers/{tier}").text)
    boss.post("/console/language", data={"csrf": csrf_of(boss.get("/console/").text), "language": "ru", "next": "/console/"})
    assert re.search(r"Выручка [\d\s]+,\d\d\s€", text_of(boss.get("/console/").text))
