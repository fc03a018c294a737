"""The ``service_*`` tables: tickets, their notes and mail, return visits and survey answers."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import DDL, JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, event, text
from sqlalchemy.orm import Mapped, mapped_column

from crmcore.db import Base
from crmcore.enums import Channel
from crmcore.sdk import Money, UTCDateTime, enum_column, utcnow
from crmcore.statemachine import StateMachine


class TicketKind(StrEnum):
    COMPLAINT = "complaint"
    INQUIRY = "inquiry"
    REQUEST = "request"
    SUGGESTION = "suggestion"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class TicketStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    WAITING = "waiting"
    RESOLVED = "resolved"
    CLOSED = "closed"


ACTIVE = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.WAITING)
RUNNING = (TicketStatus.NEW, TicketStatus.OPEN)  # the SLA clock runs (waiting pauses it)

TICKET_MACHINE = StateMachine(
    "service_ticket", [s.value for s in TicketStatus],
    [("new", "open"), ("new", "waiting"), ("open", "waiting"), ("waiting", "open"),
     ("new", "resolved"), ("open", "resolved"), ("waiting", "resolved"),
     ("resolved", "closed"), ("resolved", "open", "service.ticket.reopen"), ("closed", "open", "service.ticket.reopen")],
    source="service", interaction_kind=lambda t: "complaint" if t.kind == TicketKind.COMPLAINT else "support")


class Ticket(Base):
    __tablename__ = "service_tickets"
    # the running tickets (status new/open) are what `sla check` reads; the report is one full pass
    __table_args__ = (Index("ix_service_tickets_status_team", "status", "team"),)
    state_machine = TICKET_MACHINE

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    channel: Mapped[Channel] = mapped_column(enum_column(Channel, "service_ticket_channel"), default=Channel.OTHER)
    kind: Mapped[TicketKind] = mapped_column(enum_column(TicketKind, "service_ticket_kind"), default=TicketKind.INQUIRY)
    category: Mapped[str] = mapped_column(String(60))
    priority: Mapped[Priority] = mapped_column(enum_column(Priority, "service_ticket_priority"), default=Priority.NORMAL)
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    team: Mapped[str] = mapped_column(String(60))
    status: Mapped[TicketStatus] = mapped_column(enum_column(TicketStatus, "service_ticket_status"), default=TicketStatus.NEW)
    external_ref: Mapped[str] = mapped_column(String(100), unique=True)
    sla_rule: Mapped[str | None] = mapped_column(String(120))  # which policy set the due times (explainable)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    first_response_due: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    resolution_due: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    first_response_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    paused_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    first_response_breached_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolution_breached_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # business minutes, written when the event happens, so reports are plain column arithmetic
    first_response_minutes: Mapped[int | None] = mapped_column(Integer)
    resolution_minutes: Mapped[int | None] = mapped_column(Integer)
    paused_minutes: Mapped[int] = mapped_column(Integer, default=0)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    # complaint handling: facts, solution, acceptance, apology/compensation
    facts: Mapped[str | None] = mapped_column(Text)
    solution: Mapped[str | None] = mapped_column(Text)
    accepted: Mapped[bool | None] = mapped_column(Boolean)
    apology: Mapped[str | None] = mapped_column(Text)
    compensation: Mapped[Decimal | None] = mapped_column(Money)
    compensation_ref: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TicketNote(Base):
    """What happened on a ticket: notes, replies, complaint steps, assignments, escalations, mail."""

    __tablename__ = "service_ticket_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("service_tickets.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    author: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    data: Mapped[dict | None] = mapped_column(JSON)


class MailMessage(Base):
    """An e-mail piped in: its Message-ID ties replies (In-Reply-To / References) to the ticket."""

    __tablename__ = "service_mail_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(250), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("service_tickets.id", ondelete="CASCADE"), index=True)
    sender: Mapped[str] = mapped_column(String(254))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    attachments: Mapped[list | None] = mapped_column(JSON)


class Visit(Base):
    """A return visit (回访): scheduled after a resolution, a won deal or a large invoice, done with
    an outcome and a score. ``source`` (``deal:<id>``, ``invoice:<id>``) makes each one once."""

    __tablename__ = "service_visits"

    id: Mapped[int] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(String(20), default="ticket", server_default="ticket")
    source: Mapped[str | None] = mapped_column(String(120), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("service_tickets.id"), unique=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(Text)
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    problem: Mapped[bool] = mapped_column(Boolean, default=False)
    follow_up_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("service_tickets.id"))


CSAT_ONCE = "uq_service_survey_answers_csat_ticket"


class SurveyAnswer(Base):
    """A CSAT (1-5) or NPS (0-10) answer; ``dedupe`` makes each answer count once, and a ticket
    has at most one CSAT answer (a partial unique index, whatever the dedupe key says)."""

    __tablename__ = "service_survey_answers"
    __table_args__ = (UniqueConstraint("dedupe"),
                      Index(CSAT_ONCE, "ticket_id", unique=True, sqlite_where=text("kind = 'csat'"),
                            postgresql_where=text("kind = 'csat'")))

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("service_tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(4))
    score: Mapped[int] = mapped_column(Integer)
    answered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    dedupe: Mapped[str] = mapped_column(String(120))
    source: Mapped[str] = mapped_column(String(20), default="cli")


#: the report's parallel-safe integer aggregate on PostgreSQL (migration service_0005); made with
#: the tables when they are created from the models (the test suite), as the migration does
INT_AGG = ("CREATE OR REPLACE AGGREGATE service_int_agg (integer) (SFUNC = array_append, STYPE = integer[], "
           "COMBINEFUNC = array_cat, INITCOND = '{}', PARALLEL = SAFE)")
event.listen(Ticket.__table__, "after_create", DDL(INT_AGG).execute_if(dialect="postgresql"))
