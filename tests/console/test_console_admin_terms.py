"""Codes on the admin pages in the reader's language: roles (the users' badges, the permission
table's columns), the audit log's actions and entities; a code no catalogue names shows as it is
stored. Plugins name their own codes in their catalogues (the sales plugin's audit entries)."""
from __future__ import annotations

import re

import pytest

from tests.console.conftest import csrf_of
from tests.console.plugkit import post
from tests.console.test_console_sales_reopen import lost_deal

#: an element showing a code in words keeps the code in its title
TERM = re.compile(r'<(span|th|td) class="tag" title="([^"]+)">([^<]*)<|<(?:th|td) (?:scope="col" )?title="([^"]+)">([^<]*)<')
NAMES = {"zh_Hans": {"admin": "管理员", "sales": "销售", "credit_controller": "信用控制员", "manager": "经理", "viewer": "只读用户",
                     "marketing": "市场营销", "reopen": "重新打开", "sales.opportunity": "商机", "signin": "登录",
                     "user": "用户"},
         "ru": {"admin": "Администратор", "sales": "Продажи", "credit_controller": "Кредитный контролёр", "manager": "Руководитель",
                "viewer": "Только просмотр", "marketing": "Маркетинг", "reopen": "повторное открытие",
                "sales.opportunity": "сделка", "signin": "вход", "user": "пользователь"},
         "en": {"admin": "Administrator", "credit_controller": "Credit controller", "reopen": "reopened",
                "sales.opportunity": "deal", "signin": "signed in"}}
#: codes of the core and the sales plugin: none may be shown as stored in Chinese or Russian
OWN = ("admin", "manager", "sales", "marketing", "credit_controller", "viewer", "signin", "user", "reopen", "lose",
       "sales.opportunity", "create", "move")


def shown_terms(html: str) -> dict[str, set[str]]:
    """code -> the words it is shown as (each element with the code in its title)."""
    out: dict[str, set[str]] = {}
    for m in TERM.finditer(html):
        code, text = (m[2], m[3]) if m[2] else (m[4], m[5])
        out.setdefault(code, set()).add(text.strip())
    return out


def _switch(c, lang):
    c.post("/console/language", data={"csrf": csrf_of(c.get("/console/").text), "language": lang, "next": "/console/"})


@pytest.mark.parametrize("lang", ["zh_Hans", "ru", "en"])
def test_roles_and_audit_codes_in_the_readers_language(pclient, pcrm, lang):
    oid = lost_deal(pcrm)
    anna = pclient("anna")
    page = f"/console/sales/opportunities/{oid}"
    assert post(anna, f"{page}/reopen", page, reason="new budget").status_code == 303
    with pcrm.unit_of_work("boss") as uow:  # a code no catalogue names
        uow.audit.record("frobnicate", "acme.widget", 7, after={"x": 1})
    c = pclient("boss")
    _switch(c, lang)
    users = shown_terms(c.get("/console/admin").text)
    audit = shown_terms(c.get("/console/admin/audit").text)
    shown = {k: users.get(k, set()) | audit.get(k, set()) for k in users.keys() | audit.keys()}
    for code, words in NAMES[lang].items():
        assert shown.get(code) == {words}, (code, shown.get(code))
    if lang != "en":
        raw = sorted(code for code in OWN if code in shown.get(code, set()))
        assert raw == [], raw
    assert shown["frobnicate"] == {"frobnicate"} and shown["acme.widget"] == {"acme.widget"}
    # the filter still takes the code: the entries of one entity, named in words
    only = shown_terms(c.get("/console/admin/audit?entity=sales.opportunity&action=reopen").text)
    assert set(only) == {"reopen", "sales.opportunity"}, only
