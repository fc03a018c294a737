"""The console in headless Chromium (Debian's, through Playwright) against a real ``crm serve``.

One server per module (starting it and the browser is the slow part); each test uses its own
customers, so the order of the tests does not matter.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console.browser import (
    Server,
    axe_violations,
    database,
    screenshot,
    sign_in,
    switch_language,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("console")
    with database(tmp) as url:
        s = Server(tmp, url)
        s.set_up()
        s.crm("customer", "add", "Alpine Kitchens GmbH", "--ref", "ALP", "--country", "DE", "--owner", "anna",
              "--tag", "trade", "--email", "info@alpine.example.com")
        s.crm("contact", "add", "ALP", "Jana Novak", "--role", "decider", "--email", "jana@alpine.example.com")
        s.crm("interaction", "log", "ALP", "--channel", "visit", "--kind", "sale", "--subject", "Showroom visit", "--by", "anna")
        s.crm("account", "post", "ALP", "invoice", "12500.00", "--ref", "INV-1001", "--at", "2024-03-01")
        s.crm("account", "post", "ALP", "payment", "5000", "--ref", "PAY-77", "--at", "2024-03-20")
        s.crm("customer", "add", "Сибирские окна", "--ref", "SIB", "--country", "RU", "--owner", "sam")
        s.crm("customer", "add", "上海厨房有限公司", "--ref", "SHA", "--country", "CN", "--owner", "anna")
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


def customer_id(server: Server, ref: str) -> int:
    import json

    return int(json.loads(server.crm("customer", "show", ref, "--json"))["customer"]["id"])


def test_sign_in_good_bad_and_lockout(server: Server, page: Page) -> None:
    sign_in(page, server, "boss", "not the password")
    expect(page.locator(".alert")).to_have_text("Wrong user name or password.")
    expect(page.locator("#f-username")).to_have_value("boss")  # the input is kept
    for _ in range(3):
        sign_in(page, server, "lou", "not the password")
    expect(page.locator(".alert")).to_contain_text("locked for 1 minute")
    sign_in(page, server, "lou")  # the right password, but locked
    expect(page.locator(".alert")).to_contain_text("locked")
    sign_in(page, server, "boss")
    expect(page.locator("h1")).to_have_text("Welcome, Bea Boss")
    screenshot(page, "home")


def test_csrf_refusal(server: Server, page: Page) -> None:
    sign_in(page, server, "boss")
    page.goto(server.url + "/customers/new")
    page.fill("#f-name", "Forged Ltd")
    page.locator("input[name=csrf]").last.evaluate("e => e.value = 'forged'")
    page.click("form.grid-form button[type=submit]")
    expect(page.locator(".alert")).to_contain_text("security token")
    assert "Forged Ltd" not in server.crm("customer", "list", "--search", "Forged")


def test_sales_user_cannot_open_another_owners_customer_by_url(server: Server, page: Page) -> None:
    sib = customer_id(server, "SIB")
    sign_in(page, server, "anna")
    response = page.goto(f"{server.url}/customers/{sib}")
    assert response is not None and response.status == 404
    expect(page.locator(".alert")).to_have_text(f"customer {sib} not found")
    page.goto(server.url + "/customers")
    expect(page.locator("table.list")).not_to_contain_text("Сибирские окна")
    expect(page.locator("table.list")).to_contain_text("Alpine Kitchens GmbH")


def _as(browser: Browser, server: Server, user: str) -> Page:
    """A browser of its own for ``user``, signed in (each person at their own desk)."""
    p = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900}).new_page()
    sign_in(p, server, user)
    expect(p.locator("header nav")).to_contain_text("Customers")
    return p


def _credit_section(p: Page) -> Any:
    return p.locator("section.plugin-section", has=p.get_by_role("heading", name="Credit", exact=True))


def test_customer_interaction_credit_hold_release_invoice(server: Server, browser: Browser) -> None:
    """The whole flow in the browser, each step by the person whose job it is: a sales rep adds the
    customer and logs a call; a credit controller sets a limit and holds the customer; a manager's
    invoice is refused with the figures (no release for her: she lacks credit.release, even by a
    forged form); the controller releases with a reason and an expiry; the invoice goes through."""
    anna, carl, mia = (_as(browser, server, u) for u in ("anna", "carl", "mia"))
    anna.goto(server.url + "/customers/new")
    anna.fill("#f-name", "Flow Fenster GmbH")
    anna.fill("#f-country", "de")
    anna.fill("#f-external_ref", "FLOW")
    anna.select_option("#f-owner", "anna")
    anna.click("form.grid-form button[type=submit]")
    expect(anna.locator(".flash")).to_have_text("Customer Flow Fenster GmbH added.")
    customer_url = anna.url.split("?")[0].split("#")[0]
    assert re.search(r"/customers/\d+$", customer_url), customer_url
    anna.click("text=Log an interaction")
    anna.fill("form[action$='/interactions'] #f-subject", "Asked for a quote")
    anna.click("form[action$='/interactions'] button[type=submit]")
    expect(anna.locator(".flash")).to_have_text("Interaction logged.")
    expect(anna.locator("#timeline-body")).to_contain_text("Asked for a quote")

    carl.goto(customer_url)
    carl.click("text=Credit profile and history")
    carl.fill("#f-limit", "10000")
    carl.fill("#f-currency", "eur")
    carl.fill("#f-payment_terms_days", "30")
    carl.click("form[action$='/profile'] button[type=submit]")
    expect(carl.locator(".flash")).to_have_text("Credit profile saved.")
    carl.click("text=Put on credit hold")
    carl.fill("form[action$='/hold'] #f-reason", "cheque bounced")
    carl.click("form[action$='/hold'] button[type=submit]")
    expect(carl.locator(".flash")).to_have_text("The customer is on credit hold.")

    mia.goto(customer_url)
    expect(_credit_section(mia)).to_contain_text("cheque bounced")
    expect(_credit_section(mia).locator("form[action$='/release']")).to_have_count(0)  # no credit.release
    mia.click("text=Post an invoice or payment")
    form = "form[action$='/postings']"
    mia.fill(f"{form} #f-amount", "500")
    mia.fill(f"{form} #f-reference", "FL-1")
    mia.click(f"{form} button[type=submit]")
    alert = mia.locator("#accounts .alert")
    expect(alert).to_contain_text("Refused by credit")
    expect(alert).to_contain_text("hold")
    expect(alert).to_contain_text(re.compile(r"exposure 500\.00 EUR .*limit 10,000\.00"))  # the figures
    expect(mia.locator(f"{form} #f-amount")).to_have_value("500")  # the input is kept
    screenshot(mia, "credit-refusal")
    forged = mia.request.post(customer_url.replace("/customers/", "/credit/customers/") + "/release", form={
        "csrf": mia.locator("input[name=csrf]").first.input_value(), "reason": "I say so", "days": "3", "back": "customer"})
    assert forged.status == 403 and "credit.release" in forged.text()

    carl.goto(customer_url)
    release = _credit_section(carl).locator("form[action$='/release']")
    expect(release).to_be_visible()  # open by itself while the customer is on hold
    release.locator("#f-reason").fill("paid by wire")
    release.locator("#f-days").fill("3")
    release.locator("button[type=submit]").click()
    expect(carl.locator(".flash")).to_contain_text("Released until")
    expect(_credit_section(carl)).to_contain_text("Released")
    screenshot(carl, "credit-release")
    carl.click("text=Credit profile and history")
    row = carl.locator("table.list", has_text="Expires").locator("tbody tr").first
    expect(row).to_contain_text("paid by wire")
    expect(row).to_contain_text("carl")

    mia.goto(customer_url)
    mia.click("text=Post an invoice or payment")
    mia.fill(f"{form} #f-amount", "500")
    mia.fill(f"{form} #f-reference", "FL-1")
    mia.click(f"{form} button[type=submit]")
    expect(mia.locator(".flash")).to_contain_text("Posted Invoice FL-1")
    expect(mia.locator("#accounts")).to_contain_text("500.00")
    for p in (anna, carl, mia):
        p.context.close()


def test_stale_edit_is_shown_with_both_values(server: Server, browser: Browser) -> None:
    server.crm("customer", "add", "Stale Stoves AG", "--ref", "STALE", "--industry", "Stoves")
    cid = customer_id(server, "STALE")
    pages = []
    for _ in range(2):
        ctx = browser.new_context(locale="en-GB")
        p = ctx.new_page()
        sign_in(p, server, "boss")
        p.goto(f"{server.url}/customers/{cid}/edit")
        pages.append(p)
    first, second = pages
    first.fill("#f-industry", "Ovens")
    first.click("form.grid-form button[type=submit]")
    expect(first.locator(".flash")).to_have_text("Customer Stale Stoves AG saved.")
    second.fill("#f-industry", "Kitchens")
    second.click("form.grid-form button[type=submit]")
    expect(second.locator(".alert")).to_contain_text("Someone else changed this customer")
    row = second.locator("table.stale tbody tr")
    expect(row).to_have_text(re.compile(r"Industry\s*Kitchens\s*Ovens"))
    expect(second.locator("#f-industry")).to_have_value("Kitchens")  # never lost
    screenshot(second, "stale-edit")
    second.click("form.grid-form button[type=submit]")  # save mine on purpose
    expect(second.locator(".flash")).to_have_text("Customer Stale Stoves AG saved.")
    assert "Kitchens" in server.crm("customer", "show", "STALE")
    for p in pages:
        p.context.close()


def test_validation_error_next_to_the_field_with_input_kept(server: Server, page: Page) -> None:
    sign_in(page, server, "boss")
    page.goto(server.url + "/customers/new")
    page.fill("#f-name", "Bad Mail Ltd")
    page.fill("#f-email", "not-an-email")
    page.click("form.grid-form button[type=submit]")
    expect(page.locator("#e-email")).to_be_visible()
    expect(page.locator("#f-email")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-name")).to_have_value("Bad Mail Ltd")


def test_forms_work_without_javascript(server: Server, browser: Browser) -> None:
    ctx = browser.new_context(java_script_enabled=False)
    p = ctx.new_page()
    sign_in(p, server, "boss")
    p.goto(server.url + "/customers?search=alpine")
    expect(p.locator("table.list")).to_contain_text("Alpine Kitchens GmbH")
    p.goto(server.url + "/customers/new")
    p.fill("#f-name", "No Script GmbH")
    p.click("form.grid-form button[type=submit]")
    expect(p.locator(".flash")).to_have_text("Customer No Script GmbH added.")
    ctx.close()


PAGES = ("/", "/customers", "/customers/{alp}", "/customers/{alp}/edit", "/customers/new", "/customers/{alp}/merge",
         "/accounts/{acc}/statement", "/customers/{alp}/archive", "/contacts/{con}/edit", "/admin", "/admin/plugins",
         "/admin/audit")
WORDS = {"en": ("Customers", "en"), "zh_Hans": ("客户", "zh-Hans"), "ru": ("Клиенты", "ru")}


def _urls(server: Server) -> list[str]:
    import json

    shown = json.loads(server.crm("customer", "show", "ALP", "--json"))
    alp, acc, con = shown["customer"]["id"], shown["accounts"][0]["id"], shown["contacts"][0]["id"]
    return [server.url + p.format(alp=alp, acc=acc, con=con) for p in PAGES]


@pytest.mark.parametrize("lang", sorted(WORDS))
def test_every_core_page_in_every_language(server: Server, browser: Browser, lang: str) -> None:
    word, html_lang = WORDS[lang]
    ctx = browser.new_context(locale={"en": "en-GB", "zh_Hans": "zh-CN", "ru": "ru-RU"}[lang], viewport={"width": 1280, "height": 900})
    p = ctx.new_page()
    sign_in(p, server, "boss")
    switch_language(p, lang)
    for url in _urls(server):
        response = p.goto(url)
        assert response is not None and response.status == 200, url
        assert p.locator("html").get_attribute("lang") == html_lang
        expect(p.locator("header nav")).to_contain_text(word)
        assert "Traceback" not in p.content()
    p.goto(_urls(server)[2])
    money = {"en": r"€7,500\.00", "zh_Hans": r"€7,500\.00", "ru": r"7\s500,00\s€"}[lang]  # Babel's, per locale
    expect(p.locator("#accounts")).to_contain_text(re.compile(money))
    if lang != "en":
        screenshot(p, f"customer-{lang}")
    ctx.close()


def test_main_pages_screenshots_and_accessibility(server: Server, page: Page) -> None:
    sign_in(page, server, "boss")
    switch_language(page, "en")
    names = ("home", "customers", "customer", "customer-edit", "customer-new", "customer-merge", "statement",
             "customer-archive", "contact-edit", "admin", "admin-plugins", "admin-audit")
    problems: dict[str, Any] = {}
    for url, name in zip(_urls(server), names, strict=True):
        page.goto(url)
        if name in ("customers", "customer", "statement"):
            screenshot(page, name)
        found = axe_violations(page)
        if found:
            problems[name] = found
    page.goto(server.url + "/signin")
    page.context.clear_cookies()
    page.goto(server.url + "/signin")
    screenshot(page, "signin")
    if axe_violations(page):
        problems["signin"] = axe_violations(page)
    assert problems == {}
    assert all((Path(__file__).resolve().parents[2] / "docs" / "screenshots" / f"{n}.png").exists()
               for n in ("home", "customers", "customer", "statement", "signin"))


def test_filter_labels_and_inputs_line_up(server: Server, page: Page) -> None:
    """The Search field's hint hangs below its input: it does not push the label out of line."""
    sign_in(page, server, "boss")
    page.goto(server.url + "/customers")
    tops = page.evaluate("""() => [...document.querySelectorAll('.filters .field')].map(f => {
        const label = f.querySelector('label'), control = f.querySelector('input, select, button');
        return [label ? Math.round(label.getBoundingClientRect().top) : null,
                Math.round(control.getBoundingClientRect().top), Math.round(control.getBoundingClientRect().bottom)];
    })""")
    labels = {t[0] for t in tops if t[0] is not None}
    assert len(labels) == 1, tops  # every label on one line
    assert max(t[1] for t in tops) - min(t[1] for t in tops) <= 3, tops  # inputs, selects and the button too
    assert page.locator("#h-search").is_visible()  # the hint is still there, under its input
