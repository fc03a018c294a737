"""Tickets through the core bulk path: ``crm import service_tickets FILE`` / ``crm export service_tickets``.

The key is the ticket's ``reference``: a row whose reference is stored is unchanged (a re-import
is a no-op) or, with other content, rejected. Customers are looked up once per batch by their
reference; each new row is opened through :func:`crm_service.tickets.open_ticket`, so the
category vocabulary, the SLA due times and the assignment rule apply as on the command line.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import select

from crm_service import tickets
from crm_service.models import Priority, Ticket, TicketKind
from crm_service.schemas import TicketOpen
from crmcore.enums import Channel
from crmcore.errors import CRMError
from crmcore.models import Customer
from crmcore.sdk import BatchOutcome, BulkEntity, LongText, Ref, ShortText, Text, UTCDatetime
from crmcore.uow import UnitOfWork

COLUMNS = ("reference", "customer", "subject", "description", "kind", "category", "priority", "channel", "team",
           "opened_at", "status")


class TicketRow(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reference: Ref
    customer: Ref
    subject: Text
    description: LongText | None = None
    kind: TicketKind = TicketKind.INQUIRY
    category: ShortText = "other"
    priority: Priority = Priority.NORMAL
    channel: Channel = Channel.OTHER
    team: ShortText | None = None
    opened_at: UTCDatetime | None = None
    status: ShortText | None = None  # exported for reading; an import always opens as new


def write_batch(uow: UnitOfWork, rows: list[tuple[int, TicketRow]]) -> BatchOutcome:
    out = BatchOutcome()
    refs = [r.reference for _, r in rows]
    stored = {t.external_ref: t for t in uow.session.scalars(select(Ticket).where(Ticket.external_ref.in_(refs)))}
    customers = dict(uow.session.execute(select(Customer.external_ref, Customer.id).where(
        Customer.external_ref.in_({r.customer for _, r in rows}))).all())
    for line, r in rows:
        cid = customers.get(r.customer)
        if cid is None:
            out.reject(line, "customer", f"unknown customer reference {r.customer!r}", r.reference)
            continue
        have = stored.get(r.reference)
        if have is not None:
            if have.customer_id == cid and have.subject == r.subject:
                out.unchanged += 1
            else:
                out.reject(line, "reference", f"ticket {have.id} has this reference with other content", r.reference)
            continue
        try:
            data = TicketOpen(subject=r.subject, description=r.description, kind=r.kind, category=r.category,
                              priority=r.priority, channel=r.channel, team=r.team, opened_at=r.opened_at,
                              external_ref=r.reference)
            with uow.session.begin_nested():
                tickets.open_ticket(uow, cid, data)
        except (CRMError, ValidationError) as e:
            out.reject(line, "row", str(e).splitlines()[0], r.reference)
            continue
        out.inserted += 1
    return out


def export_rows(uow: UnitOfWork) -> Iterator[dict[str, Any]]:
    q = (select(Ticket, Customer.external_ref).join(Customer, Customer.id == Ticket.customer_id)
         .where(uow.visibility.customer_filter(Ticket.customer_id)).order_by(Ticket.id).execution_options(yield_per=2000))
    for t, cref in uow.session.execute(q):
        yield {"reference": t.external_ref, "customer": cref, "subject": t.subject, "description": t.description,
               "kind": t.kind.value, "category": t.category, "priority": t.priority.value, "channel": t.channel.value,
               "team": t.team, "opened_at": t.opened_at.isoformat(), "status": t.status.value}


TICKETS = BulkEntity(name="service_tickets", columns=COLUMNS, required=("reference", "customer", "subject"),
                     key="reference", schema=TicketRow, write_batch=write_batch, export_rows=export_rows,
                     permission="service.ticket.write", doc="customer-service tickets (re-import is a no-op)")
