"""The rest of the service desk over HTTP: assignment, complaint handling, the SLA check and
inbound e-mail, each the service call of its ``crm service`` command (permissions and
visibility are the services')."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crm_service import mail, sla, tickets
from crm_service.schemas import ComplaintStep
from crmcore.sdk import MAX_ID, InvalidInput, jsonable, unit

Id = Annotated[int, Path(ge=1, le=MAX_ID)]


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str | None = Field(None, min_length=1, max_length=64, description="null with auto=false: unassign")
    auto: bool = Field(False, description="by the team's rule (round robin / least loaded)")

    @model_validator(mode="after")
    def _one(self) -> AssignIn:
        if self.auto and self.username is not None:
            raise ValueError("give username or auto, not both")
        return self


def register(router: APIRouter) -> None:
    @router.post("/service/tickets/{ticket_id}/assign", tags=["service"])
    def assign(request: Request, ticket_id: Id, data: AssignIn) -> Any:
        """Assign to a user, by the team's rule (``auto``) or to nobody; reassignment is audited."""
        with unit(request, write=True) as uow:
            return jsonable(tickets.as_dict(uow, tickets.assign(uow, ticket_id, data.username, auto=data.auto)))

    @router.post("/service/tickets/{ticket_id}/complaint", tags=["service"])
    def complaint(request: Request, ticket_id: Id, data: ComplaintStep) -> Any:
        """Record complaint handling; a compensation is a credit note (needs ``account.post``)."""
        with unit(request, write=True) as uow:
            return jsonable(tickets.as_dict(uow, tickets.complaint_step(uow, ticket_id, data)))

    @router.post("/service/sla/check", tags=["service"])
    def sla_check(request: Request) -> Any:
        """Mark breaches and escalate (idempotent); the ids touched by this run."""
        with unit(request, write=True) as uow:
            return jsonable(sla.check(uow))

    @router.post("/service/surveys/send-nps", tags=["service"])
    def send_nps(request: Request) -> Any:
        """Queue the NPS survey to the customers due for it (``crm service survey send-nps``)."""
        from crm_service import surveys

        with unit(request, write=True) as uow:
            return jsonable(surveys.send_nps(uow))

    @router.post("/service/mail", tags=["service"],
                 openapi_extra={"requestBody": {"required": True, "content": {"message/rfc822": {"schema": {"type": "string"}}}}})
    def receive_mail(request: Request,
                     kind: Annotated[str | None, Query(max_length=40, description="kind of a new ticket")] = None,
                     category: Annotated[str | None, Query(max_length=64)] = None,
                     priority: Annotated[Literal["low", "normal", "high", "urgent"] | None, Query()] = None,
                     team: Annotated[str | None, Query(max_length=64)] = None) -> Any:
        """One e-mail (RFC 5322, the raw message as the body): a new ticket, or a note on the ticket it replies to."""
        raw: bytes = getattr(request.state, "body", b"")
        if not raw:
            raise InvalidInput("send the raw e-mail (RFC 5322) as the request body")
        defaults = {k: v for k, v in (("kind", kind), ("category", category), ("priority", priority), ("team", team))
                    if v is not None}
        with unit(request, write=True) as uow:
            return jsonable(mail.receive(uow, raw, defaults))
