"""Test-data builders for the sales_automation plugin (its tests, the demo and the benchmark).

:class:`Sales` goes through the services, one unit of work per call; :meth:`Sales.backdate`
rewrites a deal's timestamps afterwards, so analytics tests can build a history of months in
a second.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update

from crm_sales_automation import services
from crm_sales_automation.models import Opportunity, StageChange
from crm_sales_automation.schemas import FactorScore, LeadCreate, OpportunityCreate
from crmcore import CRM
from crmcore.schemas import CustomerCreate, UserCreate

UTC = dt.UTC


def at(day: dt.date | str, hour: int = 12) -> dt.datetime:
    d = dt.date.fromisoformat(day) if isinstance(day, str) else day
    return dt.datetime.combine(d, dt.time(hour), tzinfo=UTC)


class Sales:
    """Builds leads, customers and deals through the services."""

    def __init__(self, crm: CRM, actor: str = "test") -> None:
        self.crm = crm
        self.actor = actor

    def user(self, username: str, *roles: str) -> int:
        """Add a user (role sales by default); the first user of a CRM is preceded by an ``admin``
        (the core requires the first user to be an admin). Once users exist, act as one of them."""
        with self.crm.unit_of_work(self.actor) as uow:
            from crmcore.models import User

            if uow.session.scalar(select(User.id).limit(1)) is None and "admin" not in roles and username != "admin":
                uow.users.add(UserCreate(username="admin", display_name="Admin", roles=["admin"]))
            has_admin = uow.session.scalar(select(User.id).where(User.username == "admin")) is not None
        actor = "admin" if has_admin else self.actor
        with self.crm.unit_of_work(actor) as uow:
            return uow.users.add(UserCreate(username=username, display_name=username.title(),
                                            roles=list(roles) or ["sales"])).id

    def customer(self, name: str, **kw: Any) -> int:
        with self.crm.unit_of_work(self.actor) as uow:
            return uow.customers.create(CustomerCreate(name=name, **kw)).id

    def lead(self, name: str, status: str | None = None, points: dict[str, int] | None = None, **kw: Any) -> int:
        with self.crm.unit_of_work(self.actor) as uow:
            lead = services.add_lead(uow, LeadCreate(name=name, **kw))
            if points:
                services.assess(uow, lead.id, [FactorScore(factor=f, points=p) for f, p in points.items()])
            if status:
                services.set_lead_status(uow, lead.id, status)
            return lead.id

    def opp(self, customer_id: int, amount: str = "1000", title: str = "deal", **kw: Any) -> int:
        with self.crm.unit_of_work(self.actor) as uow:
            return services.add_opportunity(uow, customer_id, OpportunityCreate(title=title, amount=amount, **kw)).id

    def move(self, opp_id: int, *stages: str) -> None:
        for s in stages:
            with self.crm.unit_of_work(self.actor) as uow:
                services.move(uow, opp_id, s)

    def win(self, opp_id: int) -> None:
        with self.crm.unit_of_work(self.actor) as uow:
            services.win(uow, opp_id)

    def lose(self, opp_id: int, reason: str = "price") -> None:
        with self.crm.unit_of_work(self.actor) as uow:
            services.lose(uow, opp_id, reason)

    def backdate(self, opp_id: int, created: dt.datetime, stage_times: list[dt.datetime] | None = None,
                 closed: dt.datetime | None = None) -> None:
        """Set a deal's creation time, its stage changes' times (in order) and its closing time."""
        with self.crm.unit_of_work(self.actor) as uow:
            uow.session.execute(update(Opportunity).where(Opportunity.id == opp_id).values(
                created_at=created, **({"closed_at": closed} if closed else {})))
            ids = uow.session.scalars(select(StageChange.id).where(StageChange.opportunity_id == opp_id)
                                      .order_by(StageChange.id)).all()
            times = stage_times or [created]
            for sid, t in zip(ids, times):
                uow.session.execute(update(StageChange).where(StageChange.id == sid).values(changed_at=t))


def assert_error(res: Any, message: str, code: int = 1) -> None:
    """A CLI result is one ``error:`` line naming the problem, the exit code, and no traceback."""
    assert res.exit_code == code, (res.exit_code, res.output)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], res.stderr
    assert "Traceback" not in res.output
