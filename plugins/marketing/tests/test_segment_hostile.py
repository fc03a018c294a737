"""Segment rules with numbers no engine holds, lone surrogates and control characters: one
clean line (exit 1, HTTP 422), never an internal error or the SQL; and a property test that any
rule text or JSON tree gives a result or InvalidInput, on the real database."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from crm_marketing import segments, services
from crm_marketing.testing import T0, Shop
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import CRM, InvalidInput
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.schemas import UserCreate

HOSTILE = [
    "purchases() > 99999999999999999999999",
    "purchases() > -99999999999999999999999",
    "recency <= " + "9" * 400,
    "purchases() > " + "9" * 5000,
    "spend() > 1e308",
    "spend() > -1e308",
    "recency < 1e308",
    "spend() > 1e400",
    'name = "\\ud800"',
    'name = "a\\u0000b"',
    'spend(category="\\u0000") > 1',
    'interactions(kind="\\udfff") > 1',
    'tags has "\\u001b[31m"',
    'owner = "\\ud800"',
    '{"field": "name", "op": "=", "value": "\\ud800"}',
    '{"field": "n\\u0000", "op": "=", "value": 1}',
    '{"field": "purchases", "args": {}, "op": ">", "value": 1e999}',
    '{"field": "spend", "args": {}, "op": ">", "value": ' + "9" * 30 + "}",
    '{"field": "name", "op": "in", "value": [' + ",".join(['"x"'] * 1001) + "]}",
]


@pytest.fixture
def buyers(shop: Shop) -> list[int]:
    ids = [shop.customer(f"S{i}", country="DE") for i in range(3)]
    shop.invoice(ids[0], "120.00", T0)
    return ids


@pytest.mark.parametrize("rule", HOSTILE)
def test_a_hostile_rule_is_one_line_and_exit_1(mcli: Callable[..., Any], buyers: list[int], rule: str) -> None:
    for args in (("segment", "preview", "--rule", rule), ("segment", "create", "hostile", "--rule", rule)):
        res = mcli("marketing", *args)
        lines = [x for x in res.output.splitlines() if x.strip()]
        assert res.exit_code == 1, res.output
        assert len(lines) == 1 and lines[0].startswith("error: invalid rule"), res.output
        assert "SELECT" not in res.output and "internal error" not in res.output
    assert "hostile" not in mcli("marketing", "segment", "list").output


def test_hostile_rules_over_http_are_422(mcrm: CRM, buyers: list[int]) -> None:
    with mcrm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    with mcrm.unit_of_work("root") as uow:
        headers = {"Authorization": f"Bearer {TokenService(uow).create('root', 't')[1]}"}
    client = TestClient(create_app(mcrm), raise_server_exceptions=False)
    for rule in HOSTILE:
        r = client.post("/marketing/segments/preview", json={"rule": rule}, headers=headers)
        assert r.status_code == 422, (rule, r.status_code, r.text)
        detail = r.json()["detail"]
        text = detail if isinstance(detail, str) else json.dumps(detail)
        assert "SELECT" not in text
    ok = client.post("/marketing/segments/preview", json={"rule": "spend() > 100"}, headers=headers)
    assert ok.status_code == 200 and ok.json()["count"] == 1


def test_the_number_bounds_are_inclusive(mcrm: CRM, buyers: list[int]) -> None:
    with mcrm.unit_of_work("t", read_only=True) as uow:
        for rule in (f"purchases() < {segments.MAX_NUMBER}", f"spend() > -{segments.MAX_NUMBER}", "recency < 1e15"):
            count, _ = services.preview(uow, services.rule_query(uow, segments.parse(rule)), 0)
            assert count >= 1, rule
        with pytest.raises(InvalidInput, match="out of range"):
            services.rule_query(uow, segments.parse(f"purchases() < {segments.MAX_NUMBER + 1}"))


def test_a_segment_description_with_control_characters_is_refused(mcli: Callable[..., Any], buyers: list[int]) -> None:
    for bad in ("evil\x1b[2J", "nul\x00", "bell\x07"):
        res = mcli("marketing", "segment", "create", "d", "--rule", 'country = "DE"', "--description", bad)
        assert res.exit_code == 1 and "control character" in res.output and len(res.output.strip().splitlines()) == 1
    ok = mcli("marketing", "segment", "create", "d", "--rule", 'country = "DE"', "--description", "two\nlines\tok")
    assert ok.exit_code == 0, ok.output


# -- property: any input gives a result or InvalidInput --------------------------------------------

FIELDS = sorted([*segments.CUSTOMER_FIELDS, *segments.FUNCTIONS, "recency", "owner", "tags", "attr.x", "p_alive"])
_texts = st.text(alphabet=st.characters(codec=None, categories=None), max_size=12)  # incl. surrogates and controls
_numbers = st.one_of(st.integers(min_value=-(10**40), max_value=10**40), st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from(["1e308", "-1e308", "1e400", "9" * 400, "0", "-0.5", "1e15", "1e16"]))
_values = st.one_of(_numbers, _texts, st.booleans(), st.none(), st.lists(st.one_of(_numbers, _texts), max_size=3))


def _literal(v: Any) -> str:
    if isinstance(v, str) and (v[:1].isdigit() or v[:1] == "-"):
        return v  # a number written out
    return json.dumps(v)  # strings with \\uXXXX escapes, lone surrogates included


@st.composite
def rule_texts(draw: Any) -> str:
    field = draw(st.sampled_from(FIELDS) | st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True))
    if field in segments.FUNCTIONS and draw(st.booleans()):
        key = draw(st.sampled_from(["days", "category", "currency", "kind", "bogus"]))
        field += f"({key}={_literal(draw(_values))})"
    elif field in segments.FUNCTIONS:
        field += "()"
    op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "has", "in"]))
    if op == "in":
        return f"{field} in ({', '.join(_literal(draw(_values)) for _ in range(draw(st.integers(1, 3))))})"
    return f"{field} {op} {_literal(draw(_values))}"


@st.composite
def json_rules(draw: Any) -> str:
    node: dict[str, Any] = {"field": draw(st.sampled_from(FIELDS) | _texts), "op": draw(st.sampled_from(segments.OPS)),
                            "value": draw(_values)}
    if draw(st.booleans()):
        node["args"] = draw(st.dictionaries(st.sampled_from(["days", "category", "kind", "x"]), _values, max_size=2))
    return json.dumps(node if draw(st.booleans()) else {"not": node})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(rule_texts(), json_rules(), _texts, st.text(max_size=60)))
def test_any_rule_gives_a_result_or_invalid_input(mcrm: CRM, text: str) -> None:
    with mcrm.unit_of_work("prop", read_only=True) as uow:
        try:
            tree = segments.parse(text)
            count, _ = services.preview(uow, services.rule_query(uow, tree), 1)
        except InvalidInput as e:
            message = str(e)
            assert "\n" not in message and message.startswith("invalid rule"), message
            message.encode("utf-8")  # printable and JSON-encodable: no lone surrogate in the message
            json.dumps(e.errors, ensure_ascii=False).encode("utf-8")  # the HTTP API sends these
        else:
            assert count >= 0
