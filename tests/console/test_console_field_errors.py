"""Field errors in the reader's language: pydantic's and the services' English reasons are shown
through the console's catalogue (the CLI and the API keep them in English)."""
from __future__ import annotations

import re

import pytest

from tests.console.conftest import csrf_of

EXPECTED = {
    "ru": {"name": "Обязательное поле.", "email": "Введите правильный адрес электронной почты.",
           "industry": "Не больше 100 символов."},
    "zh_Hans": {"name": "必填。", "email": "请输入有效的电子邮件地址。", "industry": "最多 100 个字符。"},
    "en": {"name": "Required.", "email": "Enter a valid e-mail address.", "industry": "At most 100 characters."},
}


def shown_errors(html: str) -> dict[str, str]:
    return {m.group(1): m.group(2).strip() for m in re.finditer(r'<small id="e-(\w+)" class="error-text">([^<]*)</small>', html)}


@pytest.mark.parametrize("lang", sorted(EXPECTED))
def test_customer_form_errors_in_the_readers_language(client, lang: str) -> None:
    c = client("boss", **{"Accept-Language": lang.replace("_Hans", "-CN")})
    token = csrf_of(c.get("/console/customers/new").text)
    r = c.post("/console/customers/new", data={"csrf": token, "name": "", "email": "nope", "kind": "organization",
                                                "lifecycle_stage": "prospect", "industry": "x" * 101})
    assert r.status_code == 422
    errors = shown_errors(r.text)
    assert {k: errors.get(k) for k in EXPECTED[lang]} == EXPECTED[lang], errors
    assert 'value="nope"' in r.text  # the input is kept


def test_an_unknown_reason_is_shown_as_written() -> None:
    from crmcore.console.field_errors import in_words

    assert in_words(lambda msgid, **v: msgid % v if v else msgid, "a reason nobody catalogued") == "a reason nobody catalogued"
