"""Reopening a lost deal in headless Chromium without JavaScript, in Chinese and Russian: the form
on the lost deal, its error next to the field, the reopened deal's flash and audit entry, a held
customer's reopened deal refused on win; the admin pages' roles and audit codes in words.

``CONSOLE_SHOTS=DIR`` saves each page's screenshot there (to look at them; not the docs' set)."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.console.browser import (
    Server,
    codes_left,
    english_left,
    sign_in,
)
from tests.console.test_browser_plugins import DATA, PLUGINS, opp_id, plugin_server

LOCALES = {"zh_Hans": "zh-CN", "ru": "ru-RU"}
WORDS = {"zh_Hans": {"reason": "重新打开的原因", "button": "重新打开商机", "again": "已重新打开", "admin": "管理员",
                     "sales": "销售", "reopen": "重新打开", "deal": "商机"},
         "ru": {"reason": "Почему сделка открывается снова", "button": "Открыть сделку снова", "again": "снова открыта",
                "admin": "Администратор", "sales": "Продажи", "reopen": "повторное открытие", "deal": "сделка"}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    assert PLUGINS
    yield from plugin_server(tmp_path_factory.mktemp("console_reopen"))



def shot(page: Any, name: str) -> None:
    where = os.environ.get("CONSOLE_SHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(where) / f"{name}.png"), full_page=True)


def _context(browser: Browser, server: Server, user: str, lang: str) -> Any:
    ctx = browser.new_context(locale=LOCALES[lang], viewport={"width": 1280, "height": 900}, java_script_enabled=False)
    p = ctx.new_page()
    sign_in(p, server, user)
    p.goto(server.url + "/")
    p.select_option("#lang-select", lang)  # without JavaScript the switcher is a form with its button
    with p.expect_navigation():
        p.locator("#lang-select").locator("xpath=ancestor::form").locator("button").click()
    return ctx, p


@pytest.mark.parametrize(("lang", "title"), [("ru", "Ovens for the new branch"), ("zh_Hans", "Steamers")])
def test_reopen_a_lost_deal_without_javascript(server: Server, browser: Browser, lang: str, title: str) -> None:
    w = WORDS[lang]
    oid = opp_id(server, title)
    ctx, p = _context(browser, server, "anna", lang)
    deal = f"{server.url}/sales/opportunities/{oid}"
    p.goto(deal)
    p.fill("#f-reason", "budget moved to next year")
    with p.expect_navigation():
        p.locator("form[action$='/lose'] button").click()
    expect(p.locator("form[action$='/reopen'] label[for=f-reason]")).to_contain_text(w["reason"])
    with p.expect_navigation():  # no reason: refused next to the field, the stage chosen kept
        p.select_option("#f-stage", "objection_handling")
        p.locator("form[action$='/reopen'] button").click()
    expect(p.locator("#f-reason")).to_have_attribute("aria-invalid", "true")
    expect(p.locator("#f-stage")).to_have_value("objection_handling")
    shot(p, f"deal-reopen-error-{lang}")
    assert english_left(p, (*DATA, title, "budget moved to next year")) == []
    p.fill("#f-reason", "they called back")
    with p.expect_navigation():
        p.locator("form[action$='/reopen'] button").click()
    expect(p.locator(".flash")).to_contain_text(w["again"])
    expect(p.locator("form[action$='/reopen']")).to_have_count(0)
    shot(p, f"deal-reopened-{lang}")
    entries = json.loads(server.crm("audit", "--entity", "sales.opportunity", "--id", str(oid), "--json"))
    reopened = [e for e in entries if e["action"] == "reopen"]
    assert reopened and reopened[0]["actor"] == "anna" and reopened[0]["after"]["stage"] == "objection_handling"
    ctx.close()


@pytest.mark.parametrize("lang", sorted(LOCALES))
def test_admin_pages_name_roles_and_audit_codes(server: Server, browser: Browser, lang: str) -> None:
    w = WORDS[lang]
    ctx, p = _context(browser, server, "boss", lang)
    p.goto(server.url + "/admin")
    expect(p.locator("td .tag[title=admin]")).to_have_text(w["admin"])
    expect(p.locator("td .tag[title=sales]").first).to_have_text(w["sales"])
    assert codes_left(p) == []
    assert english_left(p, DATA) == []
    shot(p, f"admin-users-{lang}")
    p.goto(server.url + "/admin/audit?entity=sales.opportunity")
    cells = p.locator("td[title=reopen]")
    if cells.count():  # the deal test ran first
        expect(cells.first).to_have_text(w["reopen"])
    expect(p.locator("td[title='sales.opportunity']").first).to_have_text(w["deal"])
    assert codes_left(p) == []
    shot(p, f"admin-audit-{lang}")
    p.goto(server.url + "/admin/audit")
    shot(p, f"admin-audit-all-{lang}")
    p.goto(server.url + "/admin/plugins")
    assert english_left(p, DATA) == []
    shot(p, f"admin-plugins-{lang}")
    ctx.close()
