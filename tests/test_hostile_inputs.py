"""Every input gets a clean answer (issue 25, section 4): ids and numbers range-checked on every
command, control characters refused in every plugin text field (CLI exit 1/2, HTTP 422), an
If-Match no ETag can be, and no password in any error about the database URL. Both engines."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import crm_credit.plugin as CREDIT
import crm_marketing.plugin as MARKETING
import crm_sales_automation.plugin as SALES
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from crmcore import CRM, InvalidInput
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.cli import build_cli
from crmcore.schemas import CustomerCreate, UserCreate
from crmcore.schemas.fields import Line, LongText, Multiline, ShortText, Text, clean_text

PLUGINS = (CREDIT, SALES, MARKETING)


def one_line(result: Any, code: int) -> str:
    """The one error line (click's usage hint around a usage error is not part of it)."""
    lines = [x for x in result.output.splitlines() if x.strip() and not x.startswith(("Usage: ", "Try '", "  "))]
    assert result.exit_code == code and len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.fixture
def pcrm(make_crm: Callable[..., CRM]) -> CRM:
    crm = make_crm(plugins=PLUGINS)
    with crm.unit_of_work("setup") as uow:
        uow.customers.create(CustomerCreate(name="Acme", external_ref="AC1", email="a@example.com"))
    return crm


@pytest.fixture
def run(pcrm: CRM, cli: Callable[..., Any]) -> Callable[..., Any]:
    return lambda *args: cli(*args, plugins=PLUGINS)


HUGE = ["99999999999999999999", "2147483648", "9" * 5000, "-1", "0", "1.5", "²"]


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize("command", [
    ("sales", "opp", "show", "{}"), ("sales", "lead", "show", "{}"), ("sales", "opp", "win", "{}"),
    ("sales", "opp", "lose", "{}", "--reason", "x"), ("sales", "opp", "update", "{}", "--probability", "5"),
    ("sales", "activity", "add", "call", "Ring", "--opp", "{}"),
])
def test_every_id_parameter_is_range_checked(run: Callable[..., Any], command: tuple[str, ...], value: str) -> None:
    line = one_line(run(*[a.replace("{}", value) for a in command]), 2)
    assert line.startswith("Error:") and ("out of range" in line or "not a whole number" in line or "No such option" in line), line


@pytest.mark.parametrize("args", [
    ("sales", "opp", "update", "1", "--probability", "99999999999999999999"),
    ("sales", "report", "stale", "--days", "99999999999999999999"),
    ("credit", "profile", "set", "AC1", "--employees", "99999999999999999999"),
    ("credit", "profile", "set", "AC1", "--terms", "99999999999999999999"),
    ("credit", "profile", "set", "AC1", "--financials-year", "99999999999999999999"),
    ("credit", "release", "AC1", "--reason", "x", "--days", "99999999999999999999"),
])
def test_every_number_option_is_range_checked(run: Callable[..., Any], args: tuple[str, ...]) -> None:
    res = run(*args)
    line = one_line(res, res.exit_code)
    if res.exit_code == 2:  # click's range check
        assert line.startswith("Error: Invalid value") and "range" in line, line
    else:  # the plugin's schema (credit: pydantic bounds), exit 1
        assert res.exit_code == 1 and line.startswith("error: invalid input") and "less than or equal" in line, line


CONTROL = ["a\x00b", "red \x1b[31m", "bell\x07", "\ud800"]


@pytest.mark.parametrize("bad", CONTROL)
def test_control_characters_are_refused_in_plugin_text_on_the_cli(run: Callable[..., Any], bad: str) -> None:
    assert run("marketing", "segment", "create", "all", "--rule", 'name != "-"').exit_code == 0
    assert run("marketing", "campaign", "create", "C", "--channel", "email", "--segment", "all").exit_code == 0
    assert run("sales", "opp", "add", "AC1", "Deal", "--amount", "1000").exit_code == 0
    attempts = {
        "credit hold reason": (("credit", "hold", "AC1", "--reason", bad), 2),
        "sales lost reason": (("sales", "opp", "lose", "1", "--reason", bad), 2),
        "marketing response note": (("marketing", "response", "record", "C", "AC1", "clicked", "--note", bad), 1),
        "consent source": (("marketing", "consent", "set", "AC1", "email", "opt_in", "--source", bad), 1),
        "campaign objective": (("marketing", "campaign", "create", "D", "--channel", "email", "--segment", "all",
                                "--objective", bad), 1),
        "cost description": (("marketing", "campaign", "cost", "C", "10", "--ref", "R1", "--description", bad), 1),
        "segment description": (("marketing", "segment", "create", "s2", "--rule", 'name = "x"', "--description", bad), 1),
    }
    for what, (args, code) in attempts.items():
        res = run(*args)
        line = one_line(res, code)
        assert any(w in line.lower() for w in ("control character", "utf-8", "unicode", "surrogate")), (what, line)
    # nothing was half-written: the hold and the loss can still be made, with a clean reason
    assert run("credit", "hold", "AC1", "--reason", "overdue").exit_code == 0
    assert run("sales", "opp", "lose", "1", "--reason", "price").exit_code == 0


@pytest.fixture
def api(pcrm: CRM) -> tuple[TestClient, dict[str, str]]:
    with pcrm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    with pcrm.unit_of_work("root") as uow:
        headers = {"Authorization": f"Bearer {TokenService(uow).create('root', 't')[1]}"}
    return TestClient(create_app(pcrm), raise_server_exceptions=False), headers


def test_control_characters_over_http_are_422(pcrm: CRM, api: tuple[TestClient, dict[str, str]]) -> None:
    client, h = api
    from crm_marketing import services
    from crm_marketing.schemas import CampaignCreate

    with pcrm.unit_of_work("root") as uow:
        services.create_segment(uow, "all", rule='name != "-"')
        services.create_campaign(uow, CampaignCreate(name="C", channel="email", segments=["all"]))
    opp = client.post("/sales/opportunities", json={"customer_id": 1, "title": "Deal", "amount": "10"}, headers=h)
    assert opp.status_code == 201, opp.text
    for bad in ("a\x00b", "x\x1b[2J"):
        for url, body in (("/credit/customers/1/hold", {"reason": bad}),
                          (f"/sales/opportunities/{opp.json()['id']}/lose", {"reason": bad}),
                          ("/marketing/campaigns/C/responses", {"customer": "AC1", "type": "clicked", "note": bad}),
                          ("/marketing/campaigns/C/responses", {"customer": "AC1", "type": "clicked", "external_ref": bad})):
            r = client.post(url, json=body, headers=h)
            assert r.status_code == 422, (url, r.status_code, r.text)
    assert client.get("/credit/customers/1", headers=h).json().get("status") != "hold"


def test_if_match_with_a_non_ascii_digit_is_412(api: tuple[TestClient, dict[str, str]]) -> None:
    client, h = api
    for tag in ('"\xb2"', '"\u0663"', '"99999999999999999999"', '""'):
        raw = tag.encode("latin-1") if tag.isascii() or tag == '"\xb2"' else tag.encode("utf-8")  # bytes as a client sends them
        r = client.patch("/customers/1", json={"name": "New"}, headers={**h, "If-Match": raw})  # type: ignore[dict-item]
        assert r.status_code == 412, (tag, r.status_code, r.text)
    etag = client.get("/customers/1", headers=h).headers["ETag"]
    assert client.patch("/customers/1", json={"name": "New"}, headers={**h, "If-Match": etag}).status_code == 200


@pytest.mark.parametrize("url", [
    "postgresql//crm:SECRETpw@host/x", "postgresql:/crm:SECRETpw@host/x", "postgresql://crm:SECRETpw",
    "postgresql//crm:SECRETpw", "postgresql+psycopg://crm:SECRETpw@/x?host=/nonexistent/socket",
    "postgresql+psycopg://h/x?user=crm&password=SECRETpw&host=/nonexistent/socket", "nosuchdb://crm:SECRETpw@h/x",
    "postgresql+psycopg://crm:SEC@RETpw@127.0.0.1:1/x",
])
def test_no_password_in_any_database_url_error(url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)
    for env, args in (({"CRM_DATABASE_URL": url}, ["customer", "list"]), ({}, ["--database", url, "customer", "list"])):
        res = CliRunner().invoke(build_cli(()), args, env=env)
        assert res.exit_code == 2, (url, res.output)
        assert "SECRET" not in res.output and "RETpw" not in res.output, res.output
        assert len([x for x in res.output.splitlines() if x.strip()]) == 1, res.output


# -- the core text types: any text is valid or refused, never another exception ---------------------

_any_text = st.text(alphabet=st.characters(codec=None), max_size=300) | st.sampled_from(
    ["", " ", "\x00", "a\r\nb", "\t", "\ud800", "x" * 10_001, " ok ", "\x1b[31m", "\x85", "\u2028"])


@settings(max_examples=400, deadline=None)
@given(value=_any_text)
def test_text_types_accept_clean_text_or_refuse(value: str) -> None:
    for typ, max_len, multiline, min_len in ((Text, 200, False, 1), (ShortText, 100, False, 1),
                                             (LongText, 10_000, True, 0), (Line, None, False, 0),
                                             (Multiline, None, True, 0)):
        try:
            out = TypeAdapter(typ).validate_python(value)
        except ValidationError:
            continue
        allowed = "\t\n\r" if multiline else ""
        assert not any((ord(c) < 32 and c not in allowed) or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF
                       for c in out), repr(out)
        assert min_len <= len(out) and (max_len is None or len(out) <= max_len)
        out.encode("utf-8")
    for multiline in (False, True):
        try:
            cleaned = clean_text(value, "note", max_length=500, multiline=multiline)
        except InvalidInput as e:
            assert "\n" not in str(e) and str(e).startswith("invalid input: note:")
            continue
        assert cleaned is None or (cleaned == cleaned.strip() and 0 < len(cleaned) <= 500)


def test_python_api_refuses_control_characters_in_a_hold_or_lost_reason(make_crm: Any) -> None:
    """The same rule on every face: the services themselves refuse what the CLI and HTTP refuse."""
    import crm_credit.plugin as credit
    import crm_sales_automation.plugin as sales
    from crm_credit import services as credit_services
    from crm_sales_automation import services as sales_services

    from crmcore import InvalidInput
    from crmcore.schemas import CustomerCreate

    crm = make_crm(plugins=[credit, sales])
    with crm.unit_of_work("t") as uow:
        cid = uow.customers.create(CustomerCreate(name="Acme")).id
    for bad in ("bounced\x00", "a\x1b[31mred"):
        with pytest.raises(InvalidInput, match="reason"), crm.unit_of_work("t") as uow:
            credit_services.hold(uow, cid, bad)
        with pytest.raises(InvalidInput, match="reason"), crm.unit_of_work("t") as uow:
            sales_services.lose(uow, 1, bad)
