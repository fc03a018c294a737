"""The plugins' console pages in headless Chromium against a real ``crm serve`` with every shipped
plugin enabled (and one that fails on purpose): a kanban drag that moves a stage and writes the
audit entry, the plugin pages (screenshots, axe), and a failing 360° section contained in its box.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console.browser import (
    Server,
    axe_violations,
    codes_left,
    database,
    english_left,
    screenshot,
    sign_in,
    switch_language,
)

PLUGINS = ("sales_automation", "marketing", "value_analysis", "service")  # credit: Server.set_up
BOOM = '''"""A plugin whose 360° section always fails: the console must draw it as an error box."""
from crmcore import hookimpl

__version__ = "1.0"


@hookimpl
def crm_console_customer_sections(uow, customer, profile):
    raise RuntimeError("scoring service unreachable")
'''


def boom_plugin(tmp: Path) -> Path:
    """Install ``boomsection`` as pip would: a module and a dist-info with its entry point."""
    site = tmp / "site"
    dist = site / "crm_boomsection-1.0.dist-info"
    dist.mkdir(parents=True)
    (site / "crm_boomsection.py").write_text(BOOM)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: crm-boomsection\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[crmcore.plugins]\nboomsection = crm_boomsection\n")
    return site


def populate(url: str, site: Path) -> None:
    """Enable the plugins (as `crm plugins enable` does) and write the data in this process:
    each `crm` command costs seconds on a busy machine, the services the same in milliseconds."""
    import datetime as dt
    import importlib
    import sys
    from decimal import Decimal

    from crm_credit import services as credit
    from crm_sales_automation import services as sales
    from crm_sales_automation.schemas import OpportunityCreate
    from crm_service import tickets
    from crm_service.schemas import TicketOpen
    from crm_value_analysis import run as value_run

    from crmcore import CRM
    from crmcore.schemas import CustomerCreate, TransactionCreate

    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    try:
        crm = CRM.open(url, entry_points=True)
        for pid in (*PLUGINS, "boomsection"):
            crm.enable_plugin(pid, actor="boss")
        crm.close()
        crm = CRM.open(url, entry_points=True, config={"visibility": {"sales": "own"}})
        with crm.unit_of_work("boss") as uow:
            ids = {ref: uow.customers.create(CustomerCreate(name=name, external_ref=ref, country=cc, owner=owner)).id
                   for name, ref, cc, owner in (("Alpine Kitchens GmbH", "ALP", "DE", "anna"), ("Сибирские окна", "SIB", "RU", "sam"),
                                                ("上海厨房有限公司", "SHA", "CN", "anna"))}
            for ref, amount, day in (("ALP", "12500", "2024-03-01"), ("SIB", "800", "2024-04-02"), ("SHA", "3100", "2024-05-03"),
                                     ("ALP", "900", "2024-05-20")):
                uow.accounts.post(ids[ref], TransactionCreate(kind="invoice", amount=Decimal(amount), currency="EUR",
                                                              reference=f"INV-{ref}-{day}", occurred_at=f"{day}T10:00:00Z"))
            for ref, title, amount, stage, owner in (("ALP", "Ovens for the new branch", "18000", None, "anna"),
                                                     ("SHA", "Steamers", "4200", "qualification", "anna"),
                                                     ("SIB", "Windows", "900", None, "sam")):
                sales.add_opportunity(uow, ids[ref], OpportunityCreate(title=title, amount=Decimal(amount), currency="EUR",
                                                                       stage=stage, owner=owner))
            value_run.run_analysis(uow, as_of=dt.date(2024, 6, 30))
            tickets.open_ticket(uow, ids["ALP"], TicketOpen(subject="Oven door does not close", priority="urgent"))
        with crm.unit_of_work("carl") as uow:
            credit.hold(uow, ids["SHA"], "invoice 90 days late")
        crm.close()
    finally:
        sys.path.remove(str(site))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from plugin_server(tmp_path_factory.mktemp("console_plugins"))


def plugin_server(tmp: Path) -> Iterator[Server]:
    """A running console with every plugin, the failing "boom" plugin and the pages' data."""
    with database(tmp) as url:
        s = Server(tmp, url)
        site = boom_plugin(tmp)
        s.env["PYTHONPATH"] = str(site)
        s.set_up()
        populate(url, site)
        s.start()
        try:
            yield s
        finally:
            s.stop()



@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    yield pg
    context.close()


def opp_id(server: Server, title: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(server.db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT id FROM sales_opportunities WHERE title = :t"), {"t": title}).scalar_one())
    finally:
        engine.dispose()


def customer_id(server: Server, ref: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(server.db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT id FROM customers WHERE external_ref = :r"), {"r": ref}).scalar_one())
    finally:
        engine.dispose()


def plugin_pages(server: Server) -> dict[str, str]:
    """name -> path of every plugin page (and the admin pages and the home page with its cards)."""
    alp, oid = customer_id(server, "ALP"), opp_id(server, "Steamers")
    return {"sales-forecast": "/sales/forecast", "sales-deal": f"/sales/opportunities/{oid}", "sales-leads": "/sales/leads",
            "credit-ageing": "/credit/ageing?as_of=2024-09-30", "credit-customer": f"/credit/customers/{alp}",
            "marketing-segments": "/marketing/segments", "value": "/value", "value-tier": "/value/tiers/vip",
            "service-queue": "/service/tickets", "admin-users": "/admin", "admin-plugins": "/admin/plugins",
            "admin-audit": "/admin/audit", "home-plugins": "/"}


def test_kanban_drag_moves_the_stage_and_writes_the_audit_entry(server: Server, page: Page) -> None:
    oid = opp_id(server, "Ovens for the new branch")
    sign_in(page, server, "anna")
    page.goto(server.url + "/sales")
    card = page.locator(f"#deal-{oid}")
    expect(page.locator('.kanban-col[data-stage="prospecting"]')).to_contain_text("Ovens for the new branch")
    expect(page.locator(".kanban")).not_to_contain_text("Windows")  # sam's customer's deal
    screenshot(page, "sales-board")
    with page.expect_navigation():  # the script reloads the board once the move is saved
        card.drag_to(page.locator('.kanban-col[data-stage="presentation"]'))
    expect(page.locator('.kanban-col[data-stage="presentation"]')).to_contain_text("Ovens for the new branch")
    expect(page.locator('.kanban-col[data-stage="prospecting"]')).not_to_contain_text("Ovens for the new branch")
    entries = json.loads(server.crm("audit", "--entity", "sales.opportunity", "--id", str(oid), "--json"))
    moves = [e for e in entries if e["action"] == "move"]
    assert moves and moves[0]["actor"] == "anna" and moves[0]["after"] == {"stage": "presentation"}
    assert moves[0]["before"] == {"stage": "prospecting"}


def test_plugin_pages_render_and_pass_axe(server: Server, page: Page) -> None:
    sign_in(page, server, "boss")
    page.goto(server.url + "/")
    expect(page.locator("main")).to_contain_text("Customers on credit hold")
    expect(page.locator("main")).to_contain_text("上海厨房有限公司")
    expect(page.locator("main")).to_contain_text("Tickets near or past their SLA")
    shots = plugin_pages(server)
    problems = {}
    for name, path in shots.items():
        response = page.goto(server.url + path)
        assert response is not None and response.status == 200, path
        assert "Traceback" not in page.content()
        if name == "marketing-segments":  # the live count while the rule is typed
            page.locator("#f-rule").press_sequentially('country = "DE"', delay=20)
            expect(page.locator("#rule-count")).to_contain_text("1 customer matches")
        screenshot(page, name)
        found = axe_violations(page)
        if found:
            problems[name] = found
    assert problems == {}


def test_a_failing_section_is_an_error_box_and_the_page_still_works(server: Server, page: Page) -> None:
    alp = customer_id(server, "ALP")
    sign_in(page, server, "carl")
    response = page.goto(f"{server.url}/customers/{alp}")
    assert response is not None and response.status == 200
    box = page.locator(".plugin-error")
    expect(box).to_contain_text("boomsection")
    expect(box).to_contain_text("scoring service unreachable")
    expect(page.locator("h1")).to_have_text("Alpine Kitchens GmbH")
    expect(page.locator("main")).to_contain_text("Put on credit hold")  # the credit section beside it is drawn
    page.click("text=Put on credit hold")
    page.fill("form[action$='/hold'] #f-reason", "cheque bounced")
    page.click("form[action$='/hold'] button[type=submit]")
    expect(page.locator(".flash")).to_have_text("The customer is on credit hold.")
    expect(page.locator(".plugin-error")).to_contain_text("scoring service unreachable")
    screenshot(page, "customer-plugins")


#: the navigation's plugin entries in each language (from the plugins' own catalogues)
NAV = {"zh_Hans": ("zh-Hans", "zh-CN", ("销售", "信用", "营销", "客户服务", "价值")),
       "ru": ("ru", "ru-RU", ("Продажи", "Кредит", "Маркетинг", "Сервис", "Ценность"))}
DATA_HEADINGS = {"sales-deal"}  # the heading is the deal's title: the same in every language
#: what the pages show as it was typed (customer data, users' names): every other English run fails the test
DATA = ("Alpine Kitchens GmbH", "Ovens for the new branch", "Oven door does not close", "invoice 90 days late", "Steamers",
        "Windows", "Bea Boss", "Anna Berg", "Sam Stone", "Carl Credit", "Lou Locked", "Mia Manager", "Credit Demo GmbH",
        "cheque bounced", BOOM.splitlines()[0].strip('"'))  # a hold's reason; the failing test plugin's description


#: codes of the credit and service plugins that their catalogues do not name yet (msgctxt "role",
#: "audit action", "audit entity" entries, as the core's and the sales plugin's): remove when they do


@pytest.mark.parametrize("lang", sorted(NAV))
def test_every_plugin_page_in_every_language(server: Server, browser: Browser, lang: str) -> None:
    """Each plugin and admin page in Chinese and Russian: the page's language, the plugins' entries
    in the navigation, and a heading that is not the English one."""
    html_lang, locale, words = NAV[lang]
    english: dict[str, str] = {}
    ctx = browser.new_context(locale="en-GB")
    p = ctx.new_page()
    sign_in(p, server, "boss")
    switch_language(p, "en")
    for name, path in plugin_pages(server).items():
        p.goto(server.url + path)
        english[name] = p.locator("h1").first.inner_text()
    ctx.close()
    ctx = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    p = ctx.new_page()
    sign_in(p, server, "boss")
    switch_language(p, lang)
    left: dict[str, list[str]] = {}
    for name, path in plugin_pages(server).items():
        response = p.goto(server.url + path)
        assert response is not None and response.status == 200, path
        assert p.locator("html").get_attribute("lang") == html_lang
        for word in words:
            expect(p.locator("header nav")).to_contain_text(word)
        assert "Traceback" not in p.content()
        # a role or an audit code shown as stored is English too
        left[name] = english_left(p, DATA) + codes_left(p)
        if name not in DATA_HEADINGS:
            assert p.locator("h1").first.inner_text() != english[name], (name, english[name])
    p.goto(f"{server.url}/customers/{customer_id(server, 'ALP')}")  # every plugin's 360° section and timeline lines
    left["customer"] = english_left(p, (*DATA, "boomsection", "scoring service unreachable", "RuntimeError"))
    assert {k: v for k, v in left.items() if v} == {}, json.dumps(left, ensure_ascii=False)
    p.goto(server.url + "/sales")
    screenshot(p, f"sales-board-{lang}")
    switch_language(p, "en")
    ctx.close()
