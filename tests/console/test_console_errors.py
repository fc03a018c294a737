"""Every failure is a page of the console, in the user's language: an unknown address, a customer
the user may not see, a permission the user lacks, a database error and a refused CSRF token."""
from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.console.conftest import csrf_of


def ids(crm: Any) -> dict[str, int]:
    from crmcore.schemas import CustomerQuery

    with crm.unit_of_work("boss", read_only=True) as uow:
        return {c.external_ref: c.id for c in uow.customers.search(CustomerQuery()).items}


def russian(client: Any, user: str) -> Any:
    return client(user, **{"accept-language": "ru-RU,ru;q=0.9"})


def is_console_page(html: str, lang: str) -> bool:
    """The layout (navigation, language switcher), never a traceback or a framework's plain text."""
    return f'<html lang="{lang}">' in html and 'id="lang-select"' in html and "Traceback" not in html


def test_unknown_address_is_a_404_page_in_the_users_language(client: Any) -> None:
    c = russian(client, "anna")
    r = c.get("/console/no/such/page")
    assert r.status_code == 404 and is_console_page(r.text, "ru")
    assert "Не найдено" in r.text and "По этому адресу нет страницы." in r.text
    assert 'href="/console/customers"' in r.text  # signed in: the navigation is there
    sam = client("sam", **{"accept-language": "zh-CN"})
    sam.post("/console/language", data={"csrf": csrf_of(sam.get("/console/").text), "language": "ru", "next": "/console/"})
    r = sam.get("/console/no/such/page")  # the language sam chose wins over his browser's
    assert r.status_code == 404 and "По этому адресу нет страницы." in r.text
    anonymous = client(None, **{"accept-language": "zh-CN"}).get("/console/nope")
    assert anonymous.status_code == 404 and is_console_page(anonymous.text, "zh-Hans") and "此地址没有页面。" in anonymous.text
    wrong_method = c.delete("/console/customers")
    assert wrong_method.status_code == 405 and is_console_page(wrong_method.text, "ru")


def test_another_owners_customer_is_not_found_and_a_missing_permission_is_403(client: Any, console_crm: Any) -> None:
    """A sales user with "own" visibility cannot tell another owner's customer from a missing one
    (no probing by URL: the same 404 as for an id that does not exist); an action her role lacks
    (archiving) is a 403, and nothing is written."""
    c = russian(client, "anna")
    refs = ids(console_crm)
    theirs, missing = c.get(f"/console/customers/{refs['SIB']}"), c.get("/console/customers/987654")
    for r, key in ((theirs, refs["SIB"]), (missing, 987654)):
        assert r.status_code == 404 and is_console_page(r.text, "ru")
        assert f"Не найдено: клиент {key}" in r.text and "Не найдено</h1>" in r.text
    assert "Сибирские окна" not in theirs.text
    token = csrf_of(c.get("/console/").text)
    r = c.post(f"/console/customers/{refs['ALP']}/archive", data={"csrf": token})
    assert r.status_code == 403 and is_console_page(r.text, "ru")
    assert "Нет доступа</h1>" in r.text and "У пользователя anna нет права customer.archive" in r.text
    assert "Если вам нужно это право, обратитесь к администратору." in r.text
    with console_crm.unit_of_work("boss", read_only=True) as uow:
        assert uow.customers.get(refs["ALP"]).archived is False


def test_a_database_error_is_a_page_and_changes_nothing(client: Any, console_crm: Any) -> None:
    """A table gone from under the server (a failed migration, a restore half done): the page says
    nothing was changed, in the user's language; the server logs the cause, the page does not show it."""
    c = russian(client, "boss")
    alp = ids(console_crm)["ALP"]
    token = csrf_of(c.get(f"/console/customers/{alp}").text)
    with console_crm.engine.begin() as conn:
        conn.execute(text("ALTER TABLE interactions RENAME TO interactions_away"))
    try:
        for r in (c.get(f"/console/customers/{alp}"),
                  c.post(f"/console/customers/{alp}/interactions", data={"csrf": token, "channel": "phone",
                                                                         "direction": "inbound", "kind": "other",
                                                                         "subject": "lost call"})):
            assert r.status_code == 500 and is_console_page(r.text, "ru")
            assert "На нашей стороне произошла ошибка; ничего не изменено." in r.text
            assert "interactions_away" not in r.text and "interactions" not in r.text.lower().split("<main")[1]
    finally:
        with console_crm.engine.begin() as conn:
            conn.execute(text("ALTER TABLE interactions_away RENAME TO interactions"))
    assert "lost call" not in c.get(f"/console/customers/{alp}").text


def test_a_refused_csrf_token_is_a_403_page_in_the_users_language(client: Any, console_crm: Any) -> None:
    c = client("boss", **{"accept-language": "zh-CN"})
    alp = ids(console_crm)["ALP"]
    for data in ({}, {"csrf": "forged"}):
        r = c.post(f"/console/customers/{alp}/interactions", data={**data, "channel": "phone", "subject": "forged"})
        assert r.status_code == 403 and is_console_page(r.text, "zh-Hans")
        assert "不允许</h1>" in r.text and "表单被拒绝：安全令牌缺失或已过期。" in r.text
    assert "forged" not in c.get(f"/console/customers/{alp}").text
