"""HTTP routes (``crm serve``): tickets, return visits, survey answers, the KPI report and NPS.

One request = one unit of work as the authenticated user, over the same services as the CLI
(permissions and visibility are checked there); errors become the API's problem responses.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from crm_service import surveys, tickets, visits
from crm_service.schemas import SurveyIn, TicketOpen, VisitDone
from crmcore.sdk import MAX_ID, jsonable, unit, visible_customer

Id = Annotated[int, Path(ge=1, le=MAX_ID)]


class MoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str = Field(pattern=r"^(new|open|waiting|resolved|closed)$")
    reason: str | None = Field(default=None, max_length=500)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=10000)
    reply: bool = False


def register(router: APIRouter) -> None:
    from crm_service import routes_work

    routes_work.register(router)
    @router.post("/service/customers/{customer_id}/tickets", tags=["service"], status_code=201)
    def open_ticket(request: Request, customer_id: Id, data: TicketOpen) -> Any:
        with unit(request, write=True) as uow:
            t, _ = tickets.open_ticket(uow, customer_id, data)
            return jsonable(tickets.as_dict(uow, t))

    @router.get("/service/tickets", tags=["service"])
    def list_tickets(request: Request, status: Annotated[list[str] | None, Query()] = None,
                     team: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
                     assignee: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
                     customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                     limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> Any:
        """Tickets, newest first, with their SLA state (``crm service ticket list --json``)."""
        with unit(request, write=False) as uow:
            cid = None if customer_id is None else visible_customer(uow, customer_id).id
            return jsonable([tickets.as_dict(uow, t) for t in tickets.list_tickets(
                uow, status=status or (), team=team, assignee=assignee, customer_id=cid, limit=limit)])

    @router.get("/service/tickets/{ticket_id}", tags=["service"])
    def show(request: Request, ticket_id: Id) -> Any:
        with unit(request, write=False) as uow:
            uow.require("customer.read")
            return jsonable(tickets.as_dict(uow, tickets.get(uow, ticket_id), notes=True))

    @router.post("/service/tickets/{ticket_id}/move", tags=["service"])
    def move(request: Request, ticket_id: Id, data: MoveIn) -> Any:
        with unit(request, write=True) as uow:
            return jsonable(tickets.as_dict(uow, tickets.change_status(uow, ticket_id, data.status, data.reason)))

    @router.post("/service/tickets/{ticket_id}/notes", tags=["service"], status_code=201)
    def add_note(request: Request, ticket_id: Id, data: NoteIn) -> Any:
        with unit(request, write=True) as uow:
            n = tickets.add_note(uow, ticket_id, data.body, reply=data.reply)
            return {"ticket_id": ticket_id, "kind": n.kind}

    @router.get("/service/visits/due", tags=["service"])
    def visits_due(request: Request, agent: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
                   within_days: Annotated[int, Query(ge=0, le=365)] = 0) -> Any:
        """Open return visits due (overdue flagged), per agent (``crm service visit due --json``)."""
        with unit(request, write=False) as uow:
            return jsonable(visits.due(uow, agent=agent, within_days=within_days))

    @router.post("/service/visits/{visit_id}/done", tags=["service"])
    def visit_done(request: Request, visit_id: Id, data: VisitDone) -> Any:
        with unit(request, write=True) as uow:
            v = visits.done(uow, visit_id, data)
            return jsonable({"id": v.id, "done_at": v.done_at, "follow_up_ticket_id": v.follow_up_ticket_id})

    @router.post("/service/customers/{customer_id}/survey-answers", tags=["service"], status_code=201)
    def survey_answer(request: Request, customer_id: Id, data: SurveyIn) -> Any:
        with unit(request, write=True) as uow:
            a, created = surveys.record(uow, customer_id, data)
            return jsonable({"id": a.id, "kind": a.kind, "score": a.score, "created": created})

    @router.get("/service/report", tags=["service"])
    def kpi_report(request: Request,
                   by: Annotated[Literal["agent", "team", "category", "month"] | None, Query()] = None) -> Any:
        """``crm service report [--by ...] --json``: the same object (visibility: the actor's customers)."""
        from crm_service import report

        with unit(request, write=False) as uow:
            return jsonable(report.report(uow, by))

    @router.get("/service/nps", tags=["service"])
    def nps(request: Request, period: Annotated[Literal["month", "quarter", "year"], Query()] = "quarter") -> Any:
        """``crm service nps [--period ...] --json``: NPS per period and in total."""
        with unit(request, write=False) as uow:
            return jsonable(surveys.nps(uow, period))
