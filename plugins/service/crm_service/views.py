"""The service plugin in the customer's 360° view and timeline, and its part of a merge."""
from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, select, update

from crm_service import surveys, tickets
from crm_service.models import ACTIVE, SurveyAnswer, Ticket, Visit
from crm_service.settings import settings
from crmcore import ProfileSection, ProfileTable, TimelineEntry
from crmcore.models import Customer
from crmcore.uow import UnitOfWork


def profile_section(uow: UnitOfWork, customer: Customer) -> ProfileSection | None:
    """Open tickets with their SLA state, last CSAT, NPS category."""
    open_rows = list(uow.session.scalars(select(Ticket).where(Ticket.customer_id == customer.id, Ticket.status.in_(ACTIVE))
                                         .order_by(Ticket.id)))
    sat = surveys.satisfaction(uow, [customer.id])[customer.id]
    last_csat = uow.session.scalar(select(SurveyAnswer.score).where(SurveyAnswer.customer_id == customer.id,
                                                                    SurveyAnswer.kind == "csat")
                                   .order_by(SurveyAnswer.answered_at.desc(), SurveyAnswer.id.desc()).limit(1))
    total = uow.session.scalar(select(Ticket.id).where(Ticket.customer_id == customer.id).limit(1))
    if total is None and sat["csat_answers"] == 0 and sat["last_nps"] is None:
        return None
    now = uow.now()
    return ProfileSection("Service", {
        "open tickets": len(open_rows), "last CSAT": last_csat, "average CSAT": sat["csat_avg"],
        "NPS category": sat["nps_category"], "complaints": sat["complaints"]},
        [ProfileTable("Open tickets", ["id", "status", "priority", "subject", "SLA", "resolution due"],
                      [[t.id, t.status.value, t.priority.value, t.subject, tickets.sla_state(t, now),
                        t.resolution_due.isoformat()] for t in open_rows])])


def timeline(uow: UnitOfWork, customer: Customer) -> list[TimelineEntry]:
    """Tickets opened and visits done (status moves are already interactions)."""
    out = [TimelineEntry(t.opened_at, "ticket", f"ticket {t.id} opened: {t.subject}", t.external_ref)
           for t in uow.session.scalars(select(Ticket).where(Ticket.customer_id == customer.id).order_by(Ticket.id.desc())
                                        .limit(50))]
    # the console shows these lines in the reader's language (console.PHRASES): keep the two in step
    out += [TimelineEntry(v.done_at or v.due_at, "return visit",
                          f"return visit {v.id}" + ("" if v.satisfaction is None else f": satisfaction {v.satisfaction}"), None)
            for v in uow.session.scalars(select(Visit).where(Visit.customer_id == customer.id, Visit.done_at.is_not(None))
                                         .limit(50))]
    return out


def merge(uow: UnitOfWork, source_id: int, target_id: int) -> dict[str, Any]:
    """Move tickets, visits and survey answers to the surviving customer; an answer the target
    already gave for the same key (same ticket, period) is kept and the duplicate dropped."""
    n_tickets = cast(CursorResult[Any], uow.session.execute(update(Ticket).where(Ticket.customer_id == source_id).values(customer_id=target_id)
                                    .execution_options(synchronize_session=False))).rowcount
    n_visits = cast(CursorResult[Any], uow.session.execute(update(Visit).where(Visit.customer_id == source_id).values(customer_id=target_id)
                                   .execution_options(synchronize_session=False))).rowcount
    period = settings(uow).nps_period
    taken = set(uow.session.scalars(select(SurveyAnswer.dedupe).where(SurveyAnswer.customer_id == target_id)))
    moved = dropped = 0
    for a in list(uow.session.scalars(select(SurveyAnswer).where(SurveyAnswer.customer_id == source_id))):
        key = surveys.dedupe_key(a.kind, target_id, a.ticket_id, a.answered_at, period)
        if key in taken:
            uow.session.delete(a)
            dropped += 1
            continue
        a.customer_id, a.dedupe = target_id, key
        taken.add(key)
        moved += 1
    uow.session.flush()
    return {"service_tickets": n_tickets, "service_visits": n_visits, "service_survey_answers": moved,
            "service_survey_answers_dropped": dropped}
