"""CSAT surveys through marketing's channel adapters (consent checked), and bounded mail parsing:
a 20 MB mail refused before parsing, a bomb of 10,000 replies stopped by the per-sender rate."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import crm_marketing.plugin as MARKETING  # its tables must be on the metadata when the test database is made
import crm_service.plugin as PLUGIN
import pytest
from crm_marketing import services as marketing
from crm_marketing.schemas import ConsentSet
from crm_service import mail, surveys, tickets
from crm_service.models import MailMessage, Ticket, TicketNote
from crm_service.schemas import SurveyIn, TicketOpen
from sqlalchemy import func, select

from crmcore import CRM, InvalidInput
from crmcore.schemas import CustomerCreate


def count(crm: CRM, model: Any, *where: Any) -> int:
    with crm.unit_of_work(read_only=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(model).where(*where))


def test_csat_survey_goes_out_through_marketing_with_consent(make_crm: Any, clock: Any, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    crm = make_crm(plugins=[PLUGIN, MARKETING], config={"marketing": {"outbox": str(outbox)}})
    crm.clock = clock
    with crm.unit_of_work("test") as uow:
        yes = uow.customers.create(CustomerCreate(name="Yes", email="yes@example.com")).id
        no = uow.customers.create(CustomerCreate(name="No", email="no@example.com")).id
        marketing.set_consent(uow, yes, ConsentSet(channel="email", status="opt_in", source="form"))
        t_yes, _ = tickets.open_ticket(uow, yes, TicketOpen(subject="Lid"))
        t_no, _ = tickets.open_ticket(uow, no, TicketOpen(subject="Hinge"))
        tickets.change_status(uow, t_yes.id, "resolved")
        tickets.change_status(uow, t_no.id, "resolved")
        assert not outbox.exists()  # delivered only after the commit
    sent = outbox / f"campaign-service-csat-t{t_yes.id}" / f"customer-{yes}.eml"
    assert sent.exists() and "yes@example.com" in sent.read_text() and "How did we do" in sent.read_text()
    assert not (outbox / f"campaign-service-csat-t{t_no.id}").exists()
    with crm.unit_of_work("test") as uow:  # reopened and resolved again: the survey is not sent twice
        tickets.change_status(uow, t_yes.id, "open")
        tickets.change_status(uow, t_yes.id, "resolved")
        notes = {n.ticket_id: n.body for n in uow.session.scalars(select(TicketNote).where(TicketNote.kind == "survey"))}
    assert notes[t_yes.id].startswith("CSAT survey queued") and notes[t_no.id].endswith("consent: no opt-in")
    assert count(crm, TicketNote, TicketNote.kind == "survey") == 2


def test_nps_survey_goes_out_once_per_period_through_marketing(make_crm: Any, clock: Any, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    crm = make_crm(plugins=[PLUGIN, MARKETING], config={"marketing": {"outbox": str(outbox)}})
    crm.clock = clock  # 2030-06-03: period 2030-Q2 (the default nps_period is quarter)
    with crm.unit_of_work("test") as uow:
        yes = uow.customers.create(CustomerCreate(name="Yes", email="yes@example.com")).id
        no = uow.customers.create(CustomerCreate(name="No", email="no@example.com")).id
        done = uow.customers.create(CustomerCreate(name="Done", email="done@example.com")).id
        for cid in (yes, done):
            marketing.set_consent(uow, cid, ConsentSet(channel="email", status="opt_in", source="form"))
        surveys.record(uow, done, SurveyIn(nps=9))
        out = surveys.send_nps(uow)
        assert not outbox.exists()  # delivered only after the commit
    assert out == {"period": "2030-Q2", "queued": 1, "suppressed": 1, "already_answered": 1, "already_sent": 0}
    sent = outbox / f"campaign-service-nps-c{yes}-2030-Q2" / f"customer-{yes}.eml"
    assert sent.exists() and "recommend" in sent.read_text()
    assert not any((outbox / f"campaign-service-nps-c{c}-2030-Q2").exists() for c in (no, done))  # no opt-in; answered
    with crm.unit_of_work("test") as uow:  # again in the same period: nobody is asked twice
        again = surveys.send_nps(uow)
    assert again == {"period": "2030-Q2", "queued": 0, "suppressed": 0, "already_answered": 1, "already_sent": 2}


def test_nps_send_without_marketing_is_one_line_and_exit_1(scli: Any, customer: Any) -> None:
    customer(email="a@example.com")
    res = scli("service", "survey", "send-nps")
    assert res.exit_code == 1 and "marketing plugin is not enabled" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_without_marketing_no_survey_is_sent(scrm: CRM, customer: Any) -> None:
    cid = customer(email="a@example.com")
    with scrm.unit_of_work("test") as uow:
        t, _ = tickets.open_ticket(uow, cid, TicketOpen(subject="x"))
        tickets.change_status(uow, t.id, "resolved")
    assert count(scrm, TicketNote, TicketNote.kind == "survey") == 0


def test_a_20_mb_mail_is_refused_before_parsing(scrm: CRM, customer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    customer(email="ann@example.com")
    big = b"From: ann@example.com\nSubject: big\n\n" + b"x" * (20 * 1024 * 1024)
    stream = io.BytesIO(big)
    with pytest.raises(InvalidInput, match="larger than 20971520 bytes"):
        mail.read_capped(stream, 20 * 1024 * 1024)
    assert stream.tell() == 20 * 1024 * 1024 + 1  # never more than the cap (+1 to tell) was read
    parsed: list[bytes] = []
    monkeypatch.setattr(mail.BytesFeedParser, "feed", lambda self, data: parsed.append(data))
    with pytest.raises(InvalidInput, match="larger than"), scrm.unit_of_work("test") as uow:
        mail.receive(uow, big)
    assert parsed == [] and count(scrm, Ticket) == 0 and count(scrm, MailMessage) == 0


def test_the_feed_parser_itself_stops_at_the_cap() -> None:
    parser = mail._Capped(100_000)
    parser.feed(b"From: a@example.com\n\n" + b"x" * 90_000)
    with pytest.raises(InvalidInput, match="larger than 100000 bytes"):
        parser.feed(b"y" * 20_000)


REPLY = "From: ann@example.com\nSubject: Re: kettle\nMessage-ID: <r{n}@example.com>\nIn-Reply-To: <m0@example.com>\n\nreply {n}\n"


@pytest.fixture
def config() -> dict[str, Any]:
    return {"service": {"mail_rate_per_hour": 20, "calendars": {"default": {"timezone": "UTC"}}}}


def test_a_bomb_of_10000_replies_is_stopped_by_the_sender_rate(scrm: CRM, customer: Any, clock: Any) -> None:
    customer(email="ann@example.com")
    with scrm.unit_of_work("test") as uow:
        first = mail.receive(uow, b"From: ann@example.com\nSubject: kettle\nMessage-ID: <m0@example.com>\n\nleaks\n")
    accepted = refused = 0
    with scrm.unit_of_work("test") as uow:
        for n in range(10_000):
            try:
                out = mail.receive(uow, REPLY.format(n=n).encode())
            except InvalidInput as e:
                assert "limit 20" in str(e) and "\n" not in str(e)
                refused += 1
            else:
                assert out["ticket_id"] == first["ticket_id"] and not out["created"]
                accepted += 1
    assert (accepted, refused) == (19, 9_981)  # the first mail counts too: 20 an hour
    assert count(scrm, MailMessage) == 20 and count(scrm, Ticket) == 1
    assert count(scrm, TicketNote, TicketNote.kind == "mail") == 19
    clock.advance(hours=1, minutes=1)  # the next hour: the sender is heard again
    with scrm.unit_of_work("test") as uow:
        assert mail.receive(uow, REPLY.format(n=10_001).encode())["ticket_id"] == first["ticket_id"]


def test_headers_only_give_sender_and_message_id() -> None:
    assert mail.headers_of(b"From: Ann <ANN@Example.com>\r\nMessage-ID: <x@y>\r\n\r\nbody") == ("ann@example.com", "<x@y>")
    assert mail.headers_of(b"Subject: none\n\nbody")[0] == ""


