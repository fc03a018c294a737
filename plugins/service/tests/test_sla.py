"""SLA check: breaches marked with when they happened, escalation once, also from several processes."""
from __future__ import annotations

import datetime as dt
from typing import Any

import crm_service.plugin as PLUGIN
import pytest
from crm_service import sla, tickets
from crm_service.models import Ticket, TicketNote
from crm_service.schemas import TicketOpen
from crm_service.testing import FrozenClock
from sqlalchemy import func, select, text

from crmcore import CRM
from crmcore.models import AuditEntry
from crmcore.schemas import CustomerCreate, UserCreate
from crmcore.testing_concurrency import run_in_processes

CONFIG = {"service": {"teams": {"support": {"manager": "boss"}}, "calendars": {"default": {"timezone": "UTC"}}}}


def setup(make_crm: Any, clock: FrozenClock, n: int = 5) -> CRM:
    crm = make_crm(plugins=[PLUGIN], config=CONFIG)
    crm.clock = clock
    with crm.unit_of_work("test") as uow:
        uow.users.add(UserCreate(username="test", display_name="T", roles=["admin"]))
        uow.users.add(UserCreate(username="boss", display_name="B", roles=["service_manager"]))
        cid = uow.customers.create(CustomerCreate(name="X")).id
        for i in range(n):
            tickets.open_ticket(uow, cid, TicketOpen(subject=f"t{i}", priority="high" if i % 2 else "normal"))
    return crm


def test_check_marks_breaches_at_the_due_time_and_escalates_once(make_crm: Any, clock: FrozenClock) -> None:
    crm = setup(make_crm, clock)  # Monday 08:00 UTC; calendar 09-17 UTC: high first response due 13:00
    clock.set(dt.datetime(2030, 6, 3, 13, 30, tzinfo=dt.UTC))
    with crm.unit_of_work("boss") as uow:
        out = sla.check(uow)
    assert out["first_response_breaches"] == [2, 4] and [e["id"] for e in out["escalated"]] == [2, 4]
    with crm.unit_of_work(read_only=True) as uow:
        t = uow.session.get(Ticket, 2)
        assert t.first_response_breached_at == dt.datetime(2030, 6, 3, 13, 0, tzinfo=dt.UTC)
        assert t.priority.value == "urgent" and t.assignee_id == uow.users.get_by_username("boss").id
        assert uow.session.get(Ticket, 1).first_response_breached_at is None
        boss = uow.users.get_by_username("boss").id
        notes = uow.session.scalars(select(TicketNote).where(TicketNote.kind == "escalation")).all()
        assert [(n.ticket_id, n.data, n.author) for n in notes] == [
            (2, {"priority": "urgent", "assignee_id": boss}, "boss"), (4, {"priority": "urgent", "assignee_id": boss}, "boss")]
        audit = uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "escalate").order_by(AuditEntry.id)).all()
        assert [(a.entity, a.entity_id, a.after) for a in audit] == [
            ("service_ticket", "2", {"priority": "urgent", "assignee_id": boss}),
            ("service_ticket", "4", {"priority": "urgent", "assignee_id": boss})]
    with crm.unit_of_work("boss") as uow:  # idempotent
        again = sla.check(uow)
    assert again["first_response_breaches"] == [] and again["escalated"] == []
    clock.set(dt.datetime(2030, 6, 5, 13, 30, tzinfo=dt.UTC))  # Wednesday: the high ones' resolution (Tue 17:00) is late too
    with crm.unit_of_work("boss") as uow:
        later = sla.check(uow)
    # 2 and 4: resolution marked, not escalated again; 1, 3, 5 (normal, first response due Mon 17:00)
    assert later["resolution_breaches"] == [2, 4] and later["first_response_breaches"] == [1, 3, 5]
    assert [e["id"] for e in later["escalated"]] == [1, 3, 5] and {e["priority"] for e in later["escalated"]} == {"high"}


def _check(index: int, url: str) -> list[int]:
    crm = CRM.open(url, plugins=[PLUGIN], entry_points=False, config=CONFIG)
    crm.clock = lambda: dt.datetime(2030, 6, 10, 12, 0, tzinfo=dt.UTC)  # a week later: every ticket is late
    try:
        with crm.unit_of_work("boss") as uow:
            return [e["id"] for e in sla.check(uow)["escalated"]]
    finally:
        crm.close()


def test_concurrent_checks_escalate_each_ticket_once(make_crm: Any, clock: FrozenClock, crm_url: str) -> None:
    crm = setup(make_crm, clock, n=20)
    results = run_in_processes(4, _check, crm_url)
    assert all(r.error is None for r in results), [r.error for r in results]
    escalated = sorted(i for r in results for i in r.value)
    assert escalated == list(range(1, 21))  # every ticket once, by exactly one process
    with crm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(TicketNote).where(TicketNote.kind == "escalation")) == 20
        assert uow.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "escalate")) == 20


PLAN = ("enable_hashjoin", "enable_mergejoin", "jit")


def _plan(uow: Any) -> dict[str, str]:
    return {g: uow.session.execute(text(f"SELECT current_setting('{g}')")).scalar_one() for g in PLAN}


@pytest.mark.engine("postgresql")
def test_check_puts_the_planner_settings_back(make_crm: Any, clock: FrozenClock) -> None:
    """The check turns hash/merge joins and JIT off for its one statement only, then restores what
    the transaction had: the defaults, or a caller's own SET LOCAL."""
    crm = setup(make_crm, clock)
    clock.set(dt.datetime(2030, 6, 3, 13, 30, tzinfo=dt.UTC))
    with crm.unit_of_work("boss") as uow:
        before = _plan(uow)
        assert [e["id"] for e in sla.check(uow)["escalated"]] == [2, 4]
        assert _plan(uow) == before
    clock.set(dt.datetime(2030, 6, 5, 13, 30, tzinfo=dt.UTC))
    with crm.unit_of_work("boss") as uow:
        uow.session.execute(text("SET LOCAL enable_mergejoin = off"))
        uow.session.execute(text("SET LOCAL jit = on"))
        before = _plan(uow)
        assert before["enable_mergejoin"] == "off" and before["jit"] == "on"
        assert [e["id"] for e in sla.check(uow)["escalated"]] == [1, 3, 5]
        assert _plan(uow) == before
