"""Return visits, e-mail piping, merge, bulk import, the 360° section and the published hooks."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from crm_service import mail, tickets, visits
from crm_service.models import MailMessage, SurveyAnswer, Ticket, Visit
from crm_service.schemas import SurveyIn, TicketOpen, VisitDone
from sqlalchemy import func, select

from crmcore import CRM, InvalidInput

BERLIN = dt.timezone(dt.timedelta(hours=2))


def count(crm: CRM, model: Any) -> int:
    with crm.unit_of_work(read_only=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(model))


def test_visit_after_resolution_and_a_problem_opens_a_ticket(scrm: CRM, customer: Any, clock: Any) -> None:
    cid = customer()
    with scrm.unit_of_work("test") as uow:
        t, _ = tickets.open_ticket(uow, cid, TicketOpen(subject="noise"))
        tickets.change_status(uow, t.id, "resolved")  # Monday 3 June; 3 business days later: Thursday 09:00
        v = uow.session.scalar(select(Visit))
        assert v.due_at == dt.datetime(2030, 6, 6, 9, 0, tzinfo=BERLIN)
        assert visits.due(uow) == []
    clock.set(dt.datetime(2030, 6, 7, 8, 0, tzinfo=dt.UTC))
    with scrm.unit_of_work("test") as uow:
        due = visits.due(uow)
        assert [(d["ticket_id"], d["overdue"]) for d in due] == [(t.id, True)]
        done = visits.done(uow, due[0]["id"], VisitDone(outcome="still noisy", satisfaction=2, problem=True))
        assert done.follow_up_ticket_id is not None
        with pytest.raises(Exception, match="already done"):
            visits.done(uow, due[0]["id"], VisitDone(outcome="x", satisfaction=3))
    assert count(scrm, Ticket) == 2


EML = """From: Ann Buyer <ann@example.com>
To: support@example.com
Subject: Broken kettle
Message-ID: <m1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/html; charset=utf-8

<p>Hello,</p><script>alert(1)</script><p>my kettle <b>leaks</b>.</p>
--b
Content-Type: application/pdf
Content-Disposition: attachment; filename="receipt.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--b--
"""

REPLY = """From: ann@example.com
Subject: Re: Broken kettle
Message-ID: <m2@example.com>
In-Reply-To: <m1@example.com>
References: <m1@example.com>

Here is the photo.
"""


def test_mail_opens_a_ticket_and_a_reply_adds_to_it(scrm: CRM, customer: Any) -> None:
    customer(email="ann@example.com")
    with scrm.unit_of_work("test") as uow:
        first = mail.receive(uow, EML.encode())
        t = uow.session.get(Ticket, first["ticket_id"])
        assert first["created"] and t.channel.value == "email" and t.subject == "Broken kettle"
        assert "alert" not in t.description and "my kettle leaks." in t.description
        assert "[attachment: receipt.pdf (application/pdf, 9 bytes)]" in t.description
        tickets.change_status(uow, t.id, "waiting")
    with scrm.unit_of_work("test") as uow:
        second = mail.receive(uow, REPLY.encode())
        assert second == {"ticket_id": first["ticket_id"], "created": False, "duplicate": False, "attachments": []}
        assert uow.session.get(Ticket, first["ticket_id"]).status.value == "open"  # the clock runs again
        assert mail.receive(uow, REPLY.encode())["duplicate"] is True
    assert count(scrm, Ticket) == 1 and count(scrm, MailMessage) == 2


@pytest.mark.parametrize("raw, message", [
    ("Subject: hi\n\nno sender", "no sender"),
    ("From: nobody@example.com\nSubject: hi\n\ntext", "no customer or contact"),
    ("From: ann@example.com\nReferences: " + " ".join(f"<r{i}@x>" for i in range(10_000)) + "\n\nbomb", "references"),
    ("From: ann@example.com\nContent-Type: multipart/mixed; boundary=b\n\n"
     + "".join("--b\nContent-Type: text/plain\n\nx\n" for _ in range(500)) + "--b--\n", "MIME parts"),
])
def test_bad_mail_is_refused_and_nothing_written(scrm: CRM, customer: Any, raw: str, message: str) -> None:
    customer(email="ann@example.com")
    with pytest.raises(InvalidInput, match=message), scrm.unit_of_work("test") as uow:
        mail.receive(uow, raw.encode())
    assert count(scrm, Ticket) == 0 and count(scrm, MailMessage) == 0


def test_mail_over_the_size_limit_by_cli(scli: Any, scrm: CRM, customer: Any) -> None:
    customer(email="ann@example.com")
    big = "From: ann@example.com\nSubject: big\n\n" + "x" * (20 * 1024 * 1024 + 10)
    res = scli("service", "mail", input=big)
    assert res.exit_code == 1 and "larger than 20971520 bytes" in res.output and count(scrm, Ticket) == 0
    ok = scli("service", "mail", "--json", input=REPLY.replace("In-Reply-To: <m1@example.com>\n", ""))
    assert ok.exit_code == 0 and json.loads(ok.output)["created"] is True


def test_merge_moves_tickets_visits_and_answers(scrm: CRM, customer: Any) -> None:
    a, b = customer("A"), customer("B")
    with scrm.unit_of_work("test") as uow:
        t, _ = tickets.open_ticket(uow, a, TicketOpen(subject="x"))
        tickets.change_status(uow, t.id, "resolved")
        from crm_service import surveys
        surveys.record(uow, a, SurveyIn(csat=5, ticket_id=t.id))
        surveys.record(uow, a, SurveyIn(nps=9))
        surveys.record(uow, b, SurveyIn(nps=3))  # same quarter: the target's answer is kept
        uow.customers.merge(a, b)
    with scrm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Ticket).where(Ticket.customer_id == b)) == 1
        assert uow.session.scalar(select(func.count()).select_from(Visit).where(Visit.customer_id == b)) == 1
        answers = sorted((s.kind, s.score) for s in uow.session.scalars(select(SurveyAnswer)))
        assert answers == [("csat", 5), ("nps", 3)]
        assert all(s.customer_id == b for s in uow.session.scalars(select(SurveyAnswer)))


def test_profile_section_and_published_hooks(scrm: CRM, customer: Any) -> None:
    cid = customer()
    with scrm.unit_of_work("test") as uow:
        tickets.open_ticket(uow, cid, TicketOpen(subject="x", kind="complaint"))
        from crm_service import surveys
        surveys.record(uow, cid, SurveyIn(nps=10))
        section = next(s for s in uow.hooks.pm.hook.crm_customer_profile_sections(uow=uow, customer=uow.customers.get(cid)) if s)
        assert section.fields["open tickets"] == 1 and section.fields["NPS category"] == "promoter"
        assert section.tables[0].rows[0][4] == "on_track"
        sat = uow.hooks.pm.hook.service_satisfaction(uow=uow, customer_ids=[cid])
        assert sat[cid]["last_nps"] == 10 and sat[cid]["complaints"] == 1
        assert uow.hooks.pm.hook.service_cost_to_serve(uow=uow, customer_ids=[cid]) == {cid: 0.0}


def test_bulk_import_is_idempotent(scli: Any, scrm: CRM, customer: Any, tmp_path: Any) -> None:
    customer("ACME")
    f = tmp_path / "t.csv"
    f.write_text("reference,customer,subject,priority,category\nT1,ACME,Broken,high,delivery\n"
                 "T2,ACME,Late,low,billing\nT3,NOPE,x,low,other\nT4,ACME,y,low,weather\n")
    first = scli("import", "service_tickets", str(f))
    assert count(scrm, Ticket) == 2, first.output
    assert "NOPE" in first.output and "weather" in first.output  # the two bad rows are reported
    again = scli("import", "service_tickets", str(f))
    assert count(scrm, Ticket) == 2, again.output
