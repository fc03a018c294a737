"""One CSAT answer per ticket: a partial unique index (migration service_0004, which dedupes a
database that already has several), a second answer refused with one line on the CLI (exit 1),
the API (409) and an import (a rejected row), a re-import a no-op, two processes at once."""
from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import crm_service.plugin as PLUGIN
import pytest
from alembic import command
from crm_service import surveys, tickets
from crm_service.models import CSAT_ONCE, SurveyAnswer
from crm_service.schemas import SurveyIn, TicketOpen
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.migrations import runner
from crmcore.models import AuditEntry
from crmcore.schemas import CustomerCreate, UserCreate
from crmcore.testing_concurrency import run_cli_in_processes

ANSWERS = ("service_survey_answers",)


def answers(crm: CRM) -> list[tuple[Any, ...]]:
    with crm.unit_of_work(read_only=True) as uow:
        return [tuple(r) for r in uow.session.execute(select(SurveyAnswer.ticket_id, SurveyAnswer.kind, SurveyAnswer.score)
                                                      .order_by(SurveyAnswer.id))]


def resolved_ticket(crm: CRM, ref: str = "ACME") -> tuple[int, int]:
    with crm.unit_of_work("test") as uow:
        cid = uow.customers.create(CustomerCreate(name=f"Customer {ref}", external_ref=ref)).id
        t, _ = tickets.open_ticket(uow, cid, TicketOpen(subject="Lid", external_ref=f"T-{ref}"))
        tickets.change_status(uow, t.id, "resolved")
        return cid, t.id


def test_the_database_refuses_a_second_csat_of_a_ticket_whatever_its_dedupe_key(scrm: CRM) -> None:
    cid, tid = resolved_ticket(scrm)
    with scrm.unit_of_work("test") as uow:
        surveys.record(uow, cid, SurveyIn(csat=4, ticket_id=tid))
    row = {"customer_id": cid, "ticket_id": tid, "kind": "csat", "score": 1, "answered_at": dt.datetime.now(dt.UTC),
           "dedupe": "csat:other-path", "source": "test"}
    with pytest.raises(IntegrityError), scrm.unit_of_work("test") as uow:
        uow.session.execute(SurveyAnswer.__table__.insert(), row)
    with scrm.unit_of_work("test") as uow:  # NPS answers may name the same ticket (not CSAT)
        uow.session.execute(SurveyAnswer.__table__.insert(), {**row, "kind": "nps", "score": 9, "dedupe": "nps:x"})
    assert answers(scrm) == [(tid, "csat", 4), (tid, "nps", 9)]


def test_cli_second_answer_is_one_line_exit_1_and_the_same_again_a_no_op(scli: Any, scrm: CRM) -> None:
    _cid, tid = resolved_ticket(scrm)
    first = scli("service", "survey", "record", "ACME", "--csat", "4", "--ticket", str(tid), "--json")
    assert first.exit_code == 0 and json.loads(first.output)["created"] is True, first.output
    again = scli("service", "survey", "record", "ACME", "--csat", "4", "--ticket", str(tid), "--json")
    assert again.exit_code == 0 and json.loads(again.output)["created"] is False
    for other in (["--csat", "2"], ["--csat", "4", "--at", "2030-06-02T10:00:00Z"]):
        res = scli("service", "survey", "record", "ACME", *other, "--ticket", str(tid))
        lines = [x for x in res.output.splitlines() if x.strip()]
        assert res.exit_code == 1 and len(lines) == 1, res.output
        assert f"ticket {tid} already has a CSAT answer (4, answer 1): each ticket is answered once" in lines[0]
    assert answers(scrm) == [(tid, "csat", 4)]
    with scrm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.entity == "service_survey_answer")) == 1


def test_api_second_answer_is_409(scrm: CRM) -> None:
    cid, tid = resolved_ticket(scrm)
    with scrm.unit_of_work("test") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    with scrm.unit_of_work("root") as uow:
        head = {"Authorization": f"Bearer {TokenService(uow).create('root', 't')[1]}"}
    client = TestClient(create_app(scrm), raise_server_exceptions=False)
    url = f"/service/customers/{cid}/survey-answers"
    assert client.post(url, json={"csat": 5, "ticket_id": tid}, headers=head).json()["created"] is True
    same = client.post(url, json={"csat": 5, "ticket_id": tid}, headers=head)
    assert same.status_code == 201 and same.json()["created"] is False
    second = client.post(url, json={"csat": 1, "ticket_id": tid}, headers=head)
    assert second.status_code == 409, second.text
    assert "already has a CSAT answer" in second.json()["detail"] and "\n" not in second.json()["detail"]
    assert answers(scrm) == [(tid, "csat", 5)]


def _csv(path: Path, rows: list[dict[str, str]]) -> str:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["reference", "customer", "ticket", "csat", "nps", "answered_at"])
        w.writeheader()
        w.writerows(rows)
    return str(path)


@pytest.fixture
def with_import() -> None:
    """The survey answers entity is declared by plugin.py (``BULK_ENTITIES``), next to the tickets' hook."""
    assert PLUGIN.BULK_ENTITIES == "crm_service.bulk_surveys:SURVEY_ANSWERS"


def test_import_re_import_is_a_no_op_and_a_second_answer_a_rejected_row(
        scli: Any, scrm: CRM, tmp_path: Path, with_import: None) -> None:
    _cid, tid = resolved_ticket(scrm)
    good = [{"reference": "a1", "customer": "ACME", "ticket": "T-ACME", "csat": "4", "nps": "",
             "answered_at": "2030-06-03T12:00:00Z"},
            {"reference": "a2", "customer": "ACME", "ticket": "", "csat": "", "nps": "9",
             "answered_at": "2030-06-03T12:00:00Z"}]
    first = scli("import", "service_survey_answers", _csv(tmp_path / "a.csv", good))
    assert first.exit_code == 0, first.output
    assert answers(scrm) == [(tid, "csat", 4), (None, "nps", 9)]
    again = scli("import", "service_survey_answers", _csv(tmp_path / "b.csv", good), "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["unchanged"] == 2, again.output
    exported = scli("export", "service_survey_answers", "--format", "jsonl", "-o", str(tmp_path / "out.jsonl"))
    assert exported.exit_code == 0, exported.output
    assert scli("import", "service_survey_answers", str(tmp_path / "out.jsonl")).exit_code == 0  # its own export
    bad = [{**good[0], "reference": "b1", "csat": "2"},  # the ticket's CSAT again, another score
           {**good[0], "reference": "b2", "answered_at": "2030-06-04T12:00:00Z"},  # ... at another time
           {**good[0], "reference": "b3", "csat": "9"},  # out of range
           {**good[0], "reference": "b4", "customer": "NOBODY"}]
    res = scli("import", "service_survey_answers", _csv(tmp_path / "c.csv", bad), "--json")
    out = json.loads(res.stdout)
    assert res.exit_code == 1 and out["inserted"] == 0 and out["rejected"] == 4, res.output
    reasons = [r["reason"] for r in out["first_errors"]]
    assert sum(f"ticket {tid} already has a CSAT answer (4)" in r for r in reasons) == 2
    assert answers(scrm) == [(tid, "csat", 4), (None, "nps", 9)]


def test_import_refuses_two_answers_of_one_ticket_in_one_file(scli: Any, scrm: CRM, tmp_path: Path,
                                                              with_import: None) -> None:
    resolved_ticket(scrm)
    rows = [{"reference": f"r{i}", "customer": "ACME", "ticket": "T-ACME", "csat": str(s), "nps": "",
             "answered_at": "2030-06-03T12:00:00Z"} for i, s in enumerate((5, 3))]
    res = scli("import", "service_survey_answers", _csv(tmp_path / "a.csv", rows), "--json")
    out = json.loads(res.stdout)
    assert out["inserted"] == 1 and out["rejected"] == 1 and out["first_errors"][0]["line"] == 3, res.output
    assert [s for _, _, s in answers(scrm)] == [5]


def test_two_processes_record_the_same_tickets_csat_at_once_exactly_one_wins(scrm: CRM, crm_url: str) -> None:
    _cid, tid = resolved_ticket(scrm)
    with scrm.unit_of_work("test") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    cmds = [["service", "survey", "record", "ACME", "--csat", str(s), "--ticket", str(tid)] for s in (5, 2)]
    for _ in range(3):  # a few rounds: the race is real each time
        with scrm.engine.begin() as conn:
            conn.execute(text("DELETE FROM service_survey_answers"))
        results = run_cli_in_processes(crm_url, cmds, users="root", plugins=[PLUGIN])
        assert sorted(r.code for r in results) == [0, 1], [(r.code, r.stdout, r.stderr) for r in results]
        loser = next(r for r in results if r.code == 1)
        assert len((loser.stdout + loser.stderr).strip().splitlines()) == 1
        assert "already has a CSAT answer" in loser.stdout + loser.stderr
        winner = next(r for r in results if r.code == 0)
        assert answers(scrm) == [(tid, "csat", int(winner.argv[5]))]


def test_service_0004_keeps_the_first_answer_and_audits_the_others(empty_database_url: str) -> None:
    crm = CRM.open(empty_database_url, plugins=[PLUGIN], entry_points=False, create=True, config={})
    try:
        crm.upgrade()
        cid, tid = resolved_ticket(crm)
        cfg = runner.alembic_config([PLUGIN.MIGRATIONS])
        with crm.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "service_0003")
        base = dt.datetime(2030, 6, 3, 12, 0, tzinfo=dt.UTC)
        with crm.unit_of_work("test") as uow:  # three answers of one ticket, by keys of other paths
            for i, (score, hours) in enumerate(((3, 5), (5, 1), (1, 1))):
                uow.session.add(SurveyAnswer(customer_id=cid, ticket_id=tid, kind="csat", score=score, source="old",
                                             answered_at=base + dt.timedelta(hours=hours), dedupe=f"legacy:{i}"))
        crm.upgrade()
        assert runner.current_heads(crm.engine, [PLUGIN.MIGRATIONS])["service"] == "service_0005"
        assert answers(crm) == [(tid, "csat", 5)]  # the earliest; of two at once the lower id
        with crm.unit_of_work(read_only=True) as uow:
            audit = uow.session.execute(select(AuditEntry.entity_id, AuditEntry.before, AuditEntry.after).where(
                AuditEntry.action == "dedupe", AuditEntry.entity == "service_survey_answer")
                .order_by(AuditEntry.entity_id)).all()
            kept = uow.session.scalar(select(SurveyAnswer.id))
        assert [(a[1]["score"], a[1]["dedupe"], a[2]["kept"]) for a in audit] == [(3, "legacy:0", kept), (1, "legacy:2", kept)]
        assert runner.schema_diff(crm.engine, set(ANSWERS)) == []
        insp = inspect(crm.engine)
        assert CSAT_ONCE in {i["name"] for i in insp.get_indexes("service_survey_answers") if i["unique"]}
    finally:
        crm.close()
