"""Survey answers through the core bulk path: ``crm import service_survey_answers FILE`` /
``crm export service_survey_answers``.

A row is one answer: ``customer`` (reference), ``csat`` (1-5) or ``nps`` (0-10), optionally the
``ticket`` (its reference) and ``answered_at``. ``reference`` is the answer's identity in the
file (an export writes the stored dedupe key, e.g. ``csat:t12``); what makes an answer the same
is :func:`crm_service.surveys.record`'s rule, so a re-import of the same answer is a no-op and a
second, different answer (a ticket's CSAT again with another score, or at another given time; an
NPS of the same period with another score) is rejected, as on the CLI and the API. Set-based: a few lookups per
batch, one INSERT of the new answers and their audit entries.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, select

from crm_service.bulk import _customer_ids
from crm_service.models import SurveyAnswer, Ticket
from crm_service.schemas import SurveyIn
from crm_service.settings import settings
from crm_service.surveys import dedupe_key
from crmcore.models import AuditEntry, Customer
from crmcore.sdk import BatchOutcome, BulkEntity, Ref, ShortText, UTCDatetime, unknown_customer
from crmcore.uow import UnitOfWork

COLUMNS = ("reference", "customer", "ticket", "csat", "nps", "answered_at", "source")


class AnswerRow(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reference: Ref
    customer: Ref
    ticket: Ref | None = None
    csat: int | None = Field(default=None, ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    answered_at: UTCDatetime | None = None
    source: ShortText = "import"


def write_batch(uow: UnitOfWork, rows: list[tuple[int, AnswerRow]]) -> BatchOutcome:
    uow.require("service.survey.write")
    out, now, period = BatchOutcome(), uow.now(), settings(uow).nps_period
    customers = _customer_ids(uow, {r.customer for _, r in rows})
    refs = sorted({r.ticket for _, r in rows if r.ticket})
    tickets: dict[str, tuple[int, int]] = {}
    for i in range(0, len(refs), 2000):
        tickets.update((ref, (tid, cid)) for ref, tid, cid in uow.session.execute(
            select(Ticket.external_ref, Ticket.id, Ticket.customer_id).where(Ticket.external_ref.in_(refs[i:i + 2000]))))
    new: list[dict[str, Any]] = []
    for line, r in rows:
        cid = customers.get(r.customer)
        ticket = tickets.get(r.ticket) if r.ticket else None
        try:
            kind, score = SurveyIn(csat=r.csat, nps=r.nps).kind_score()
        except ValueError as e:
            out.reject(line, "row", str(e), r.reference)
            continue
        if cid is None:
            out.reject(line, "customer", unknown_customer(r.customer), r.reference)
        elif r.ticket and (ticket is None or ticket[1] != cid):
            out.reject(line, "ticket", f"{r.ticket!r} is not a ticket of customer {r.customer!r}", r.reference)
        else:
            at = r.answered_at or now
            tid = ticket[0] if ticket else None
            new.append({"line": line, "reference": r.reference, "customer_id": cid, "ticket_id": tid, "kind": kind,
                        "score": score, "answered_at": at, "dedupe": dedupe_key(kind, cid, tid, at, period),
                        "source": r.source, "given_at": r.answered_at})
    _write_new(uow, out, new)
    return out


def _write_new(uow: UnitOfWork, out: BatchOutcome, new: list[dict[str, Any]]) -> None:
    """Compare each answer with the stored ones (and the earlier rows of the batch) by its ticket
    (CSAT of a ticket) or its dedupe key; insert the new ones in one statement."""
    by_ticket, by_key = _stored(uow, new)
    fresh: list[dict[str, Any]] = []
    for a in new:
        same_ticket = a["kind"] == "csat" and a["ticket_id"] is not None
        old = by_ticket.get(a["ticket_id"]) if same_ticket else by_key.get(a["dedupe"])
        if old is None:
            old = by_key.get(a["dedupe"])
        if old is None:
            fresh.append(a)
            by_key[a["dedupe"]] = a
            if same_ticket:
                by_ticket[a["ticket_id"]] = a
        elif old["score"] == a["score"] and (not same_ticket or a["given_at"] is None
                                            or old["answered_at"] == a["given_at"]):
            out.unchanged += 1
        elif same_ticket:
            out.reject(a["line"], "csat", f"ticket {a['ticket_id']} already has a CSAT answer ({old['score']}): "
                       "each ticket is answered once", a["reference"])
        else:
            out.reject(a["line"], a["kind"], f"this customer already answered this {a['kind']} ({old['score']})",
                       a["reference"])
    if not fresh:
        return
    cols = ("customer_id", "ticket_id", "kind", "score", "answered_at", "dedupe", "source")
    ids = uow.session.scalars(insert(SurveyAnswer).returning(SurveyAnswer.id, sort_by_parameter_order=True),
                              [{c: a[c] for c in cols} for a in fresh]).all()
    uow.session.execute(insert(AuditEntry), [
        {"actor": uow.actor, "action": "create", "entity": "service_survey_answer", "entity_id": str(i),
         "after": {"kind": a["kind"], "score": a["score"], "source": a["source"]}} for i, a in zip(ids, fresh, strict=True)])
    out.inserted += len(fresh)


def _stored(uow: UnitOfWork, new: list[dict[str, Any]]) -> tuple[dict[Any, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The stored answers these rows could repeat: by ticket (CSAT) and by dedupe key."""
    tids = sorted({a["ticket_id"] for a in new if a["kind"] == "csat" and a["ticket_id"] is not None})
    keys = sorted({a["dedupe"] for a in new})
    by_ticket: dict[Any, dict[str, Any]] = {}
    by_key: dict[str, dict[str, Any]] = {}
    cols = (SurveyAnswer.ticket_id, SurveyAnswer.dedupe, SurveyAnswer.score, SurveyAnswer.answered_at)
    for i in range(0, max(len(tids), 1), 2000):
        for t, _k, s, at in uow.session.execute(select(*cols).where(SurveyAnswer.kind == "csat",
                                                                    SurveyAnswer.ticket_id.in_(tids[i:i + 2000]))):
            by_ticket[t] = {"score": s, "answered_at": at}
    for i in range(0, len(keys), 2000):
        for _t, k, s, at in uow.session.execute(select(*cols).where(SurveyAnswer.dedupe.in_(keys[i:i + 2000]))):
            by_key[k] = {"score": s, "answered_at": at}
    return by_ticket, by_key


def export_rows(uow: UnitOfWork) -> Iterator[dict[str, Any]]:
    q = (select(SurveyAnswer, Customer.external_ref, Ticket.external_ref)
         .join(Customer, Customer.id == SurveyAnswer.customer_id)
         .outerjoin(Ticket, Ticket.id == SurveyAnswer.ticket_id)
         .where(uow.visibility.customer_filter(SurveyAnswer.customer_id))
         .order_by(SurveyAnswer.id).execution_options(yield_per=2000))
    for a, cref, tref in uow.session.execute(q):
        at: dt.datetime = a.answered_at
        yield {"reference": a.dedupe, "customer": cref, "ticket": tref, "csat": a.score if a.kind == "csat" else None,
               "nps": a.score if a.kind == "nps" else None, "answered_at": at.isoformat(), "source": a.source}


SURVEY_ANSWERS = BulkEntity(
    name="service_survey_answers", columns=COLUMNS, required=("reference", "customer"), key="reference",
    schema=AnswerRow, write_batch=write_batch, export_rows=export_rows, permission="service.survey.write",
    doc="CSAT/NPS survey answers (a re-import is a no-op; a second answer is rejected)")
