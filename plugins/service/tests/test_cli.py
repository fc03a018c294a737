"""The ``crm service`` commands: JSON shapes, bad input as one line with nothing written, roles."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from crm_service.models import SurveyAnswer, Ticket
from sqlalchemy import func, select

from crmcore import CRM


def count(crm: CRM, model: Any) -> int:
    with crm.unit_of_work(read_only=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(model))


def one_line_error(res: Any, code: int = 1) -> str:
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert res.exit_code == code and len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


def test_open_json_has_due_times_with_offsets(scli: Any, scrm: CRM, customer: Any) -> None:
    customer("ACME")
    res = scli("service", "ticket", "open", "ACME", "--subject", "Broken lid", "--priority", "high",
               "--category", "product quality", "--channel", "phone", "--at", "2030-06-07T17:00:00+02:00", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["status"] == "new" and data["id"] == 1
    due = dt.datetime.fromisoformat(data["first_response_due"])
    assert due.utcoffset() is not None and due == dt.datetime(2030, 6, 11, 10, 0, tzinfo=dt.UTC)  # after Whit Monday
    assert dt.datetime.fromisoformat(data["resolution_due"]).utcoffset() is not None
    show = json.loads(scli("service", "ticket", "show", "1", "--json").output)
    assert show["category"] == "product quality" and show["channel"] == "phone"


def test_bad_input_is_one_line_and_writes_nothing(scli: Any, scrm: CRM, customer: Any, clock: Any) -> None:
    customer("ACME")
    msg = one_line_error(scli("service", "ticket", "open", "ACME", "--subject", "x", "--category", "weather"))
    assert "unknown category 'weather'" in msg and count(scrm, Ticket) == 0
    for score in (["--nps", "11"], ["--csat", "0"], ["--csat", "6"]):
        msg = one_line_error(scli("service", "survey", "record", "ACME", *score))
        assert "invalid" in msg.lower() or "less than" in msg or "greater than" in msg
    one_line_error(scli("service", "survey", "record", "ACME"))
    assert count(scrm, SurveyAnswer) == 0
    assert scli("service", "ticket", "open", "ACME", "--subject", "x").exit_code == 0
    assert scli("service", "ticket", "resolve", "1").exit_code == 0
    clock.advance(days=30)
    msg = one_line_error(scli("service", "ticket", "reopen", "1"))
    assert "more than 14 days ago" in msg
    assert json.loads(scli("service", "ticket", "show", "1", "--json").output)["status"] == "resolved"
    msg = one_line_error(scli("service", "ticket", "move", "1", "waiting"))
    assert "cannot move from resolved to waiting (allowed from resolved: open, closed)" in msg


def test_plugin_roles_work_with_user_add(scli: Any, scrm: CRM, customer: Any) -> None:
    customer("ACME")
    assert scli("user", "add", "root", "--name", "Root", "--role", "admin").exit_code == 0
    res = scli("user", "add", "ann", "--name", "Ann", "--role", "support_agent", user="root")
    assert res.exit_code == 0, res.output
    assert scli("user", "add", "sue", "--name", "Sue", "--role", "service_manager", user="root").exit_code == 0
    assert "invalid role" in one_line_error(scli("user", "add", "xena", "--name", "X", "--role", "support", user="root"))
    assert scli("service", "ticket", "open", "ACME", "--subject", "x", user="ann").exit_code == 0
    assert "ann lacks service.sla.check" in one_line_error(scli("service", "sla", "check", user="ann"))
    assert scli("service", "sla", "check", "--json", user="sue").exit_code == 0
    perms = json.loads(scli("user", "permissions", "--json", user="root").output)
    row = next(r for r in perms if r["permission"] == "customer.read")
    assert row["support_agent"] and row["service_manager"]


def test_nps_and_report(scli: Any, scrm: CRM, customer: Any) -> None:
    for i, score in enumerate([10, 9, 8, 3]):
        customer(f"C{i}")
        assert scli("service", "survey", "record", f"C{i}", "--nps", str(score), "--at", "2030-02-01").exit_code == 0
    assert scli("service", "survey", "record", "C0", "--nps", "2", "--at", "2030-05-01").exit_code == 0
    out = json.loads(scli("service", "nps", "--period", "quarter", "--json").output)
    assert out["periods"][0] == {"period": "2030-Q1", "answers": 4, "promoters": 2, "passives": 1, "detractors": 1,
                                 "nps": 25.0}
    assert out["total"]["answers"] == 5 and out["total"]["nps"] == 0.0
    # the same answer again is a no-op; another score in the same period is refused
    assert json.loads(scli("service", "survey", "record", "C1", "--nps", "9", "--at", "2030-03-01", "--json").output)["created"] is False
    assert "already answered" in one_line_error(scli("service", "survey", "record", "C1", "--nps", "5", "--at", "2030-03-01"))
    scli("service", "ticket", "open", "C0", "--subject", "a", "--kind", "complaint")
    scli("service", "ticket", "note", "1", "on it", "--reply")
    scli("service", "ticket", "resolve", "1")
    assert scli("service", "survey", "record", "C0", "--csat", "4", "--ticket", "1").exit_code == 0
    rep = json.loads(scli("service", "report", "--by", "category", "--json").output)
    assert rep["total"]["tickets"] == 1 and rep["total"]["csat"]["avg"] == 4.0
    assert rep["total"]["complaint_handling_rate"] == 1.0 and rep["groups"][0]["category"] == "other"
    assert "unknown" not in scli("service", "report").output


def test_show_prints_the_description_as_lines(scli: Any, scrm: CRM, customer: Any) -> None:
    customer("ACME")
    text = "Door cracked.\nPlease call me back."
    assert scli("service", "ticket", "open", "ACME", "--subject", "door", "--description", text).exit_code == 0
    out = scli("service", "ticket", "show", "1").output
    lines = out.splitlines()
    assert "description:" in lines and "  Door cracked." in lines and "  Please call me back." in lines
    assert "\\x0a" not in out  # lines of their own, not an escaped line break in a table cell
