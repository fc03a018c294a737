"""Surveys: CSAT (1-5) per ticket and NPS (0-10) per period, each answer once; NPS by period.

An answer is unique by its ``dedupe`` key: CSAT of a ticket ``csat:t<ticket>``, CSAT without a
ticket ``csat:c<customer>:<date>``, NPS ``nps:c<customer>:<period>`` (``[service] nps_period``);
and a ticket has one CSAT answer at most (a partial unique index, migration service_0004). The
same answer again is a no-op (a re-import); a second answer is refused (HTTP 409, exit 1).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from crm_service.models import SurveyAnswer, Ticket, TicketKind
from crm_service.schemas import SurveyIn
from crm_service.settings import settings
from crmcore.errors import Conflict, InvalidInput
from crmcore.models import AuditEntry, Customer
from crmcore.uow import UnitOfWork

if TYPE_CHECKING:
    import numpy as np


def period_of(at: dt.datetime, period: str) -> str:
    if period == "month":
        return f"{at.year}-{at.month:02d}"
    if period == "quarter":
        return f"{at.year}-Q{(at.month - 1) // 3 + 1}"
    return str(at.year)


def dedupe_key(kind: str, customer_id: int, ticket_id: int | None, at: dt.datetime, nps_period: str) -> str:
    if kind == "csat":
        return f"csat:t{ticket_id}" if ticket_id else f"csat:c{customer_id}:{at.date().isoformat()}"
    return f"nps:c{customer_id}:{period_of(at, nps_period)}"


def record(uow: UnitOfWork, customer_id: int, data: SurveyIn) -> tuple[SurveyAnswer, bool]:
    """Record one answer; returns (answer, created). The same answer again is a no-op; a second,
    different answer to the same survey is refused (:class:`Conflict`: exit 1, HTTP 409): for the
    CSAT of a ticket "the same" means the same score (and the same ``answered_at`` when one is
    given: a re-import), else the same score in the same period or day (the dedupe key)."""
    uow.require("service.survey.write")
    try:
        kind, score = data.kind_score()
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    uow.customers.get(customer_id)
    if data.ticket_id is not None:
        owner = uow.session.scalar(select(Ticket.customer_id).where(Ticket.id == data.ticket_id))
        if owner != customer_id:
            raise InvalidInput(f"ticket {data.ticket_id} is not a ticket of customer {customer_id}")
    at = data.answered_at or uow.now()
    key = dedupe_key(kind, customer_id, data.ticket_id, at, settings(uow).nps_period)
    existing = _existing(uow, kind, data.ticket_id, key)
    if existing is None:
        answer = SurveyAnswer(customer_id=customer_id, ticket_id=data.ticket_id, kind=kind, score=score, answered_at=at,
                              dedupe=key, source=data.source)
        try:
            with uow.session.begin_nested():
                uow.session.add(answer)
                uow.session.flush()
        except IntegrityError:  # another process recorded it first (the unique dedupe / CSAT-per-ticket index)
            existing = _existing(uow, kind, data.ticket_id, key)
        else:
            uow.audit.record("create", "service_survey_answer", answer.id, after={"kind": kind, "score": score})
            return answer, True
    assert existing is not None  # the unique key that refused the insert found it
    if kind == "csat" and data.ticket_id is not None:
        if existing.score != score or (data.answered_at is not None and existing.answered_at != data.answered_at):
            raise Conflict(f"ticket {data.ticket_id} already has a CSAT answer ({existing.score}, answer {existing.id}): "
                           "each ticket is answered once")
    elif existing.score != score:
        raise Conflict(f"customer {customer_id} already answered this {kind} ({existing.score}, answer {existing.id})")
    return existing, False


def _existing(uow: UnitOfWork, kind: str, ticket_id: int | None, key: str) -> SurveyAnswer | None:
    """The answer this one would repeat: the ticket's CSAT answer, else the one of the same key."""
    if kind == "csat" and ticket_id is not None:
        return uow.session.scalar(select(SurveyAnswer).where(SurveyAnswer.ticket_id == ticket_id,
                                                             SurveyAnswer.kind == "csat"))
    return uow.session.scalar(select(SurveyAnswer).where(SurveyAnswer.dedupe == key))


def nps(uow: UnitOfWork, period: str = "quarter") -> dict[str, Any]:
    """NPS (% promoters 9-10 minus % detractors 0-6) per period and in total, over the whole table."""
    import numpy as np  # here, not at the top: `crm customer show` reads this module too

    uow.require("service.report")
    if period not in ("month", "quarter", "year"):
        raise InvalidInput(f"unknown period {period!r} (month, quarter or year)")
    rows = uow.session.execute(select(SurveyAnswer.answered_at, SurveyAnswer.score).where(
        SurveyAnswer.kind == "nps", uow.visibility.customer_filter(SurveyAnswer.customer_id))).all()
    keys = np.array([period_of(r[0], period) for r in rows], dtype=object)
    scores = np.array([r[1] for r in rows], dtype=np.int64)
    out = [{"period": p, **_nps_of(scores[keys == p])} for p in sorted(set(keys.tolist()))]
    return {"period": period, "periods": out, "total": _nps_of(scores)}


def _nps_of(scores: np.ndarray) -> dict[str, Any]:
    n = int(scores.size)
    pro, det = int((scores >= 9).sum()), int((scores <= 6).sum())
    return {"answers": n, "promoters": pro, "passives": n - pro - det, "detractors": det,
            "nps": None if n == 0 else round(100.0 * (pro - det) / n, 1)}


def category(score: int | None) -> str | None:
    if score is None:
        return None
    return "promoter" if score >= 9 else "detractor" if score <= 6 else "passive"


def satisfaction(uow: UnitOfWork, customer_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Average CSAT, last NPS and its category, complaints count per customer (the published hook)."""
    ids = list(customer_ids)
    out: dict[int, dict[str, Any]] = {c: {"csat_avg": None, "csat_answers": 0, "last_nps": None, "nps_category": None,
                                          "complaints": 0} for c in ids}
    for i in range(0, len(ids), 5000):
        chunk = ids[i:i + 5000]
        for cid, avg, n in uow.session.execute(select(SurveyAnswer.customer_id, func.avg(SurveyAnswer.score), func.count())
                                               .where(SurveyAnswer.kind == "csat", SurveyAnswer.customer_id.in_(chunk))
                                               .group_by(SurveyAnswer.customer_id)):
            out[cid].update(csat_avg=round(float(avg), 2), csat_answers=int(n))
        last = (select(SurveyAnswer.customer_id, SurveyAnswer.score,
                       func.row_number().over(partition_by=SurveyAnswer.customer_id,
                                              order_by=(SurveyAnswer.answered_at.desc(), SurveyAnswer.id.desc())).label("rn"))
                .where(SurveyAnswer.kind == "nps", SurveyAnswer.customer_id.in_(chunk)).subquery())
        for cid, score in uow.session.execute(select(last.c.customer_id, last.c.score).where(last.c.rn == 1)):
            out[cid].update(last_nps=score, nps_category=category(score))
        for cid, n in uow.session.execute(select(Ticket.customer_id, func.count()).where(
                Ticket.kind == TicketKind.COMPLAINT, Ticket.customer_id.in_(chunk)).group_by(Ticket.customer_id)):
            out[cid]["complaints"] = int(n)
    return out


def complaints(uow: UnitOfWork, customer_ids: Sequence[int], since: dt.date, until: dt.date) -> dict[int, int]:
    """Complaint tickets opened ``since <= day <= until`` (UTC days) per customer (the published
    ``service_complaints`` hook: credit's complaint factor over its lookback window)."""
    ids, out = sorted(set(customer_ids)), dict[int, int]()
    lo = dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC)
    hi = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    for i in range(0, len(ids), 5000):
        out.update((int(c), int(n)) for c, n in uow.session.execute(
            select(Ticket.customer_id, func.count()).where(
                Ticket.kind == TicketKind.COMPLAINT, Ticket.customer_id.in_(ids[i:i + 5000]),
                Ticket.opened_at >= lo, Ticket.opened_at < hi).group_by(Ticket.customer_id)))
    return out


def send_csat(uow: UnitOfWork, ticket: Ticket) -> dict[str, Any] | None:
    """On resolution, the CSAT survey goes out through marketing's channel adapters when marketing
    is enabled (its published ``marketing_send_message`` checks consent and delivers after commit);
    once per ticket, noted on it. Without marketing, answers are recorded by CLI, API or import."""
    from crm_service.models import TicketNote
    from crm_service.tickets import note

    cfg = settings(uow)
    if not cfg.survey_via_marketing or not uow.hooks.has_spec("marketing_send_message"):
        return None
    sent = uow.session.scalar(select(TicketNote.id).where(TicketNote.ticket_id == ticket.id, TicketNote.kind == "survey"))
    answered = uow.session.scalar(select(SurveyAnswer.id).where(SurveyAnswer.dedupe == f"csat:t{ticket.id}"))
    if sent or answered:
        return None
    out = uow.hooks.pm.hook.marketing_send_message(
        uow=uow, customer_id=ticket.customer_id, channel=cfg.survey_channel, key=f"service-csat-t{ticket.id}",
        adapter=cfg.survey_adapter, subject=f"How did we do? Ticket {ticket.id}: {ticket.subject}"[:200],
        body=(f"Your request \"{ticket.subject}\" (ticket {ticket.id}) was resolved.\n"
              "How satisfied are you, from 1 (not at all) to 5 (very)? Just reply with the number."))
    if out is None:
        return None
    note(uow, ticket, "survey", f"CSAT survey {out['status']} via marketing ({cfg.survey_channel}, {cfg.survey_adapter})"
         + (f": {out['reason']}" if out.get("reason") else ""), out)
    return out


def send_nps(uow: UnitOfWork, at: dt.datetime | None = None) -> dict[str, Any]:
    """The NPS survey of the period (``[service] nps_period``) through marketing's channel adapters
    (its published ``marketing_send_message`` checks consent): once per customer and period, to
    every visible, non-archived customer who has not answered it yet. Each send is audited
    (``service_nps`` ``<customer>:<period>``), which is what makes a second run send nothing."""
    uow.require("service.survey.write")
    cfg = settings(uow)
    if not uow.hooks.has_spec("marketing_send_message"):
        raise Conflict("the marketing plugin is not enabled: record NPS answers with `crm service survey record`")
    period = period_of(at or uow.now(), cfg.nps_period)
    answered = set(uow.session.scalars(select(SurveyAnswer.customer_id).where(
        SurveyAnswer.kind == "nps", SurveyAnswer.dedupe.like(f"nps:c%:{period}"))))
    sent = {int(str(e).split(":")[0]) for e in uow.session.scalars(select(AuditEntry.entity_id).where(
        AuditEntry.entity == "service_nps", AuditEntry.action == "survey_sent", AuditEntry.entity_id.like(f"%:{period}")))}
    ids = uow.session.scalars(select(Customer.id).where(Customer.archived.is_(False),
                                                       uow.visibility.customer_filter(Customer.id)).order_by(Customer.id))
    out: dict[str, Any] = {"period": period, "queued": 0, "suppressed": 0, "already_answered": 0, "already_sent": 0}
    for cid in ids:
        if cid in answered or cid in sent:
            out["already_answered" if cid in answered else "already_sent"] += 1
            continue
        res = uow.hooks.pm.hook.marketing_send_message(
            uow=uow, customer_id=cid, channel=cfg.survey_channel, key=f"service-nps-c{cid}-{period}",
            adapter=cfg.survey_adapter, subject="How likely are you to recommend us?",
            body=("On a scale from 0 (not at all likely) to 10 (extremely likely), how likely are you to recommend "
                  "us to a friend or colleague? Just reply with the number."))
        if res is None:
            raise Conflict("the marketing plugin did not answer marketing_send_message")
        out["queued" if res["status"] == "queued" else "suppressed"] += 1
        uow.audit.record("survey_sent", "service_nps", f"{cid}:{period}", after=res)
    return out
