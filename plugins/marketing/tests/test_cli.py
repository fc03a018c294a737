"""``crm marketing``: the tour end to end with the file channel, --json reads, and bad input as one line."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from crm_marketing.testing import Shop

from crmcore import CRM


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def people(shop: Shop) -> list[int]:
    ids = [shop.customer(f"P{i}", country="DE", tags=["trade"] if i % 2 else []) for i in range(8)]
    shop.customer("FR1", country="FR")
    return ids


def test_campaign_end_to_end_with_the_file_channel(mcli: Callable[..., Any], people: list[int], tmp_path: Path) -> None:
    for i in range(8):
        ok(mcli("marketing", "consent", "set", f"P{i}", "email", "opt_in", "--source", "fair form"))
    ok(mcli("marketing", "consent", "set", "P7", "email", "unsubscribed"))
    out = ok(mcli("marketing", "segment", "create", "de-trade", "--rule", 'country = "DE" and tags has "trade"')).output
    assert "4 customers match now" in out
    preview = json.loads(ok(mcli("marketing", "segment", "preview", "de-trade", "--json")).output)
    assert preview["count"] == 4 and len(preview["sample"]) == 4 and "SELECT" in preview["sql"]
    ok(mcli("marketing", "campaign", "create", "Spring", "--channel", "email", "--segment", "de-trade",
            "--budget", "500", "--subject", "Hello {{ customer.name }}", "--body", "Our spring offer"))
    ok(mcli("marketing", "campaign", "cost", "Spring", "120.50", "--ref", "PRINT-1"))
    assert "already recorded" in ok(mcli("marketing", "campaign", "cost", "Spring", "120.50", "--ref", "PRINT-1")).output
    out = ok(mcli("marketing", "campaign", "launch", "Spring")).output
    assert "4 targeted, 3 to contact, 0 control, 1 suppressed" in out
    outbox = tmp_path / "outbox"
    assert "sent 3, failed 0, pending 0" in ok(mcli("marketing", "campaign", "send", "Spring", "--outbox", str(outbox))).output
    assert "sent 0" in ok(mcli("marketing", "campaign", "send", "Spring", "--outbox", str(outbox))).output
    assert len(list(outbox.rglob("*.eml"))) == 3
    ok(mcli("marketing", "response", "record", "Spring", "P1", "clicked"))
    ok(mcli("marketing", "response", "record", "Spring", "P3", "purchased"))
    report = json.loads(ok(mcli("marketing", "campaign", "report", "Spring", "--json")).output)
    assert report["targeted"] == 4 and report["suppressed"] == 1 and report["delivered"] == 3
    assert report["suppressed_by_reason"] == {"consent: unsubscribed": 1}
    assert report["responses"]["clicked"]["customers"] == 1 and report["cost"] == "120.50" and report["conversions"] == 1
    human = ok(mcli("marketing", "campaign", "report", "Spring")).output
    assert "Campaign Spring" in human and "clicked" in human
    show = json.loads(ok(mcli("customer", "show", "P1", "--json")).output)
    assert show["sections"]["Marketing"]["consent"] == {"email": "opt_in"}
    campaigns_table = show["section_tables"]["Marketing"][0]
    assert campaigns_table["title"] == "Campaigns" and campaigns_table["rows"][0][:4] == ["Spring", "email", "contact", "sent"]
    entries = [e for e in show["timeline"] if e["kind"] == "campaign response"]
    assert entries and entries[0]["summary"] == "clicked to campaign Spring"
    consent = json.loads(ok(mcli("marketing", "consent", "show", "P7", "--json")).output)
    assert consent["consent"][0]["status"] == "unsubscribed"
    campaigns = json.loads(ok(mcli("marketing", "campaign", "list", "--json")).output)
    assert campaigns[0]["status"] == "running"
    segs = json.loads(ok(mcli("marketing", "segment", "list", "--json")).output)
    assert segs[0]["name"] == "de-trade"


@pytest.mark.parametrize("args, message, code", [
    (["segment", "create", "x", "--rule", "colour = 1"], "field 'colour': unknown field", 1),
    (["segment", "create", "x"], "give --rule", 2),
    (["segment", "create", "x", "--rule", 'country = "DE"', "--static"], "not both", 2),
    (["segment", "preview", "--rule", "spend( > 3"], "syntax error", 1),
    (["segment", "preview", "nope"], "segment 'nope' not found", 1),
    (["segment", "freeze", "nope"], "not found", 1),
    (["campaign", "create", "C", "--channel", "email", "--segment", "nope"], "segment 'nope' not found", 1),
    (["campaign", "create", "C", "--channel", "pigeon", "--segment", "s"], "pigeon", 2),
    (["campaign", "create", "C", "--channel", "email", "--segment", "s", "--control", "abc"], "not a number", 1),
    (["campaign", "create", "C", "--channel", "email", "--segment", "s", "--seed", "-1"], "seed", 1),
    (["campaign", "create", "C", "--channel", "email", "--segment", "s", "--variant", "A"], "NAME=SHARE", 1),
    (["campaign", "create", "C", "--channel", "email", "--segment", "s", "--body", "{{ ''.__class__ }}"], "not allowed", 1),
    (["campaign", "cost", "nope", "5", "--ref", "X"], "campaign 'nope' not found", 1),
    (["campaign", "cost", "C0", "--ref", "X", "--", "-5"], "greater than 0", 1),
    (["campaign", "cost", "C0", "1e400", "--ref", "X"], "amount", 1),
    (["campaign", "cost", "C0", "NaN", "--ref", "X"], "finite", 1),
    (["campaign", "send", "C0"], "launch it before sending", 1),
    (["campaign", "send", "C0", "--adapter", "fax"], "launch it before sending", 1),
    (["response", "record", "C0", "P1", "clicked"], "is not in campaign", 1),
    (["consent", "set", "NOBODY", "email", "opt_in"], "customer 'NOBODY' not found", 1),
    (["consent", "set", "P1", "email", "maybe"], "maybe", 2),
    (["consent", "set", "P1", "email", "opt_in", "--at", "yesterday-ish"], "at", 1),
    (["cross-sell", "--bought", "a", "--not-bought", "a"], "must differ", 1),
])
def test_bad_input_is_one_line(mcli: Callable[..., Any], people: list[int], args: list[str], message: str, code: int) -> None:
    ok(mcli("marketing", "segment", "create", "s", "--rule", 'country = "DE"'))
    ok(mcli("marketing", "campaign", "create", "C0", "--channel", "email", "--segment", "s"))
    r = mcli("marketing", *args)
    assert r.exit_code == code, r.output
    assert message in r.output
    assert "Traceback" not in r.output and "internal error" not in r.output


def test_send_failure_exits_1_and_names_the_customer(mcli: Callable[..., Any], mcrm: CRM, people: list[int],
                                                    tmp_path: Path) -> None:
    for i in range(2):
        ok(mcli("marketing", "consent", "set", f"P{i}", "email", "opt_in"))
    ok(mcli("marketing", "segment", "create", "two", "--static", "--member", "P0", "--member", "P1"))
    ok(mcli("marketing", "campaign", "create", "Attr", "--channel", "email", "--segment", "two",
            "--body", "Budget: {{ customer.attributes.budget }}"))
    ok(mcli("marketing", "campaign", "launch", "Attr"))
    r = mcli("marketing", "campaign", "send", "Attr", "--outbox", str(tmp_path))
    assert r.exit_code == 1 and "failed 2" in r.output and "budget" in r.output


def test_cross_sell_json(mcli: Callable[..., Any], shop: Shop, people: list[int]) -> None:
    import datetime as dt

    shop.invoice(people[0], "100.00", dt.datetime(2025, 1, 1, tzinfo=dt.UTC), category="kitchens")
    data = json.loads(ok(mcli("marketing", "cross-sell", "--bought", "kitchens", "--not-bought", "tiles", "--json")).output)
    assert data["count"] == 1 and data["customers"][0]["external_ref"] == "P0"


def test_responses_import_through_the_core_bulk_path(mcli: Callable[..., Any], people: list[int], tmp_path: Path) -> None:
    for i in range(3):
        ok(mcli("marketing", "consent", "set", f"P{i}", "email", "opt_in"))
    ok(mcli("marketing", "segment", "create", "three", "--static", "--member", "P0", "--member", "P1", "--member", "P2"))
    ok(mcli("marketing", "campaign", "create", "Fair", "--channel", "email", "--segment", "three"))
    ok(mcli("marketing", "campaign", "launch", "Fair"))
    f = tmp_path / "responses.csv"
    f.write_text("external_ref,campaign,customer_ref,type,at\n"
                 "R1,Fair,P0,visited,2025-03-04\n"
                 "R2,Fair,P1,registered,2025-03-05\n"
                 "R3,Fair,P7,visited,2025-03-05\n"
                 "R4,Nope,P1,visited,2025-03-05\n"
                 "R5,Fair,P2,waved,2025-03-05\n"
                 "R6,Fair,NOBODY,visited,2025-03-05\n", encoding="utf-8")
    r = mcli("import", "marketing_responses", str(f))
    assert r.exit_code == 1, r.output
    assert "2 inserted" in r.output and "4 rejected" in r.output
    errors = (tmp_path / "responses.csv.errors.csv").read_text(encoding="utf-8")
    assert "is not in campaign 'Fair'" in errors and "unknown campaign 'Nope'" in errors
    assert "unknown response type 'waved'" in errors and "unknown customer 'NOBODY'" in errors
    again = mcli("marketing", "response", "import", str(f))  # the plugin's own command: the same import
    assert "0 inserted" in again.output and "2 unchanged" in again.output  # a re-import changes nothing
    report = json.loads(ok(mcli("marketing", "campaign", "report", "Fair", "--json")).output)
    assert report["responses"]["visited"]["customers"] == 1 and report["conversions"] == 1
    out = tmp_path / "out.csv"
    ok(mcli("export", "marketing_responses", "-o", str(out)))
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "external_ref,campaign,customer_ref,type,at,note" and len(lines) == 3


def test_hostile_input_ends_in_exit_0_1_or_2(mcli: Callable[..., Any], people: list[int]) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    ok(mcli("marketing", "segment", "create", "s", "--rule", 'country = "DE"'))
    ok(mcli("marketing", "campaign", "create", "C0", "--channel", "email", "--segment", "s"))
    texts = st.text(max_size=60) | st.sampled_from(["", " ", "-1", "1e400", "NaN", "#99999999999999999999", "\x00", "é" * 300])
    commands = st.one_of(
        st.tuples(st.just("segment"), st.just("create"), texts, st.just("--rule"), texts),
        st.tuples(st.just("segment"), st.just("preview"), st.just("--rule"), texts),
        st.tuples(st.just("campaign"), st.just("cost"), st.just("C0"), st.just("--ref"), texts, st.just("--"), texts),
        st.tuples(st.just("campaign"), st.just("create"), texts, st.just("--channel"), st.just("sms"),
                  st.just("--segment"), texts, st.just("--control"), texts, st.just("--subject"), texts),
        st.tuples(st.just("consent"), st.just("set"), texts, st.just("email"), st.just("opt_in"), st.just("--at"), texts),
        st.tuples(st.just("response"), st.just("record"), texts, texts, texts),
    )

    @settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(commands)
    def check(args: tuple[str, ...]) -> None:
        if any("\x00" in a for a in args):
            return  # the OS cannot pass NUL in an argument; CliRunner would, unrealistically
        r = mcli("marketing", *args)
        assert r.exit_code in (0, 1, 2), r.output
        assert "Traceback" not in r.output and "internal error" not in r.output

    check()


def test_imported_unsubscribe_withdraws_consent(mcli: Callable[..., Any], people: list[int], tmp_path: Path) -> None:
    ok(mcli("marketing", "consent", "set", "P0", "email", "opt_in", "--at", "2025-01-01"))
    ok(mcli("marketing", "segment", "create", "one", "--static", "--member", "P0"))
    ok(mcli("marketing", "campaign", "create", "U", "--channel", "email", "--segment", "one"))
    ok(mcli("marketing", "campaign", "launch", "U"))
    f = tmp_path / "r.csv"
    f.write_text("external_ref,campaign,customer_ref,type,at\nU1,U,P0,unsubscribed,2025-06-01\n", encoding="utf-8")
    ok(mcli("import", "marketing_responses", str(f)))
    consent = json.loads(ok(mcli("marketing", "consent", "show", "P0", "--json")).output)["consent"][0]
    assert consent["status"] == "unsubscribed" and "import" in consent["source"]
