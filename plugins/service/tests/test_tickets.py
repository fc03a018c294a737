"""Tickets: opening with SLA due times, the status machine, pauses, reopen window, complaints, assignment."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from crm_service import sla, tickets
from crm_service.models import Ticket, TicketNote
from crm_service.schemas import ComplaintStep, TicketOpen
from crm_service.testing import FrozenClock
from sqlalchemy import func, select

from crmcore import CRM, Conflict, InvalidInput, PermissionDenied
from crmcore.models import AuditEntry, Interaction, Transaction
from crmcore.schemas import AccountCreate
from crmcore.statemachine import IllegalMove

BERLIN = dt.timezone(dt.timedelta(hours=2))  # CEST, June 2030


def open_(crm: CRM, cid: int, actor: str = "test", **kw: Any) -> int:
    with crm.unit_of_work(actor) as uow:
        return tickets.open_ticket(uow, cid, TicketOpen(subject=kw.pop("subject", "Broken"), **kw))[0].id


def load(crm: CRM, tid: int) -> Ticket:
    with crm.unit_of_work(read_only=True) as uow:
        t = uow.session.get(Ticket, tid)
        uow.session.expunge(t)
        return t


def test_open_computes_due_times_in_business_hours(scrm: CRM, customer: Any) -> None:
    tid = open_(scrm, customer(), priority="high")  # Monday 10:00 Berlin; 4h / 16h of 9h days
    t = load(scrm, tid)
    assert t.status.value == "new" and t.category == "other" and t.team == "support"
    assert t.first_response_due == dt.datetime(2030, 6, 3, 14, 0, tzinfo=BERLIN)
    assert t.resolution_due == dt.datetime(2030, 6, 4, 17, 0, tzinfo=BERLIN)  # Mon 10-18 (8h) + Tue 9-17 (8h)


def test_friday_evening_before_whit_monday(scrm: CRM, customer: Any, clock: FrozenClock) -> None:
    clock.set(dt.datetime(2030, 6, 7, 15, 0, tzinfo=dt.UTC))  # Friday 17:00 Berlin; Monday 10 June is a holiday
    t = load(scrm, open_(scrm, customer(), priority="high"))
    assert t.first_response_due == dt.datetime(2030, 6, 11, 12, 0, tzinfo=BERLIN)


def test_unknown_category_is_refused_and_nothing_written(scrm: CRM, customer: Any) -> None:
    cid = customer()
    with pytest.raises(InvalidInput, match=r"unknown category 'weather'.*product quality"):
        open_(scrm, cid, category="weather")
    with scrm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_status_machine_moves_audit_and_timeline(scrm: CRM, customer: Any) -> None:
    cid = customer()
    tid = open_(scrm, cid)
    with scrm.unit_of_work("test") as uow:
        tickets.change_status(uow, tid, "open")
        with pytest.raises(IllegalMove, match=r"cannot move from open to closed \(allowed from open: waiting, resolved\)"):
            tickets.change_status(uow, tid, "closed")
    with scrm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "move")) == 1
        assert uow.session.scalar(select(Interaction.subject).where(Interaction.customer_id == cid)).endswith("new → open")


def test_waiting_pauses_the_clock(scrm: CRM, customer: Any, clock: FrozenClock) -> None:
    tid = open_(scrm, customer(), priority="high")  # first response due Mon 14:00 Berlin
    before = load(scrm, tid).resolution_due
    with scrm.unit_of_work("test") as uow:
        tickets.add_note(uow, tid, "please send a photo", reply=True)
        tickets.change_status(uow, tid, "waiting")
    clock.set(dt.datetime(2030, 6, 7, 14, 0, tzinfo=dt.UTC))  # Friday 16:00 Berlin: the pause spans 4 days
    with scrm.unit_of_work("test") as uow:
        assert sla.check(uow)["resolution_breaches"] == []  # paused: no breach while waiting
    clock.set(dt.datetime(2030, 6, 10, 10, 0, tzinfo=dt.UTC))  # Monday (Whit Monday holiday) 12:00
    with scrm.unit_of_work("test") as uow:
        tickets.change_status(uow, tid, "open", reason="photo received")
    t = load(scrm, tid)
    # paused from Mon 10:00 to Whit Monday 12:00 (a holiday): Mon 10-18 + Tue..Fri 4 x 9h = 44h
    assert t.paused_minutes == 44 * 60
    # 16h were left at the pause (due Tue 17:00): from Whit Monday noon that is Tue 9h + Wed 9-16
    assert before == dt.datetime(2030, 6, 4, 17, 0, tzinfo=BERLIN)
    assert t.resolution_due == dt.datetime(2030, 6, 12, 16, 0, tzinfo=BERLIN)
    assert t.first_response_minutes == 0 and t.first_response_breached_at is None


def test_reopen_within_the_window_only(scrm: CRM, customer: Any, clock: FrozenClock) -> None:
    tid = open_(scrm, customer())
    with scrm.unit_of_work("test") as uow:
        tickets.change_status(uow, tid, "resolved")
        tickets.change_status(uow, tid, "closed")
    clock.advance(days=3)
    with scrm.unit_of_work("test") as uow:
        tickets.change_status(uow, tid, "open", reason="still broken")
        tickets.change_status(uow, tid, "resolved")
    assert load(scrm, tid).reopen_count == 1
    clock.advance(days=15)
    with pytest.raises(Conflict, match="more than 14 days ago"), scrm.unit_of_work("test") as uow:
        tickets.change_status(uow, tid, "open")
    assert load(scrm, tid).status.value == "resolved"


def test_complaint_steps_and_compensation_as_credit_note(scrm: CRM, customer: Any, users: Any) -> None:
    cid = customer()
    with scrm.unit_of_work("test") as uow:
        uow.accounts.open(cid, AccountCreate(currency="EUR", is_default=True))
    users(agent=["support_agent"], boss=["service_manager", "manager"])
    tid = open_(scrm, cid, actor="agent", kind="complaint", category="delivery")
    with scrm.unit_of_work("agent") as uow:
        tickets.complaint_step(uow, tid, ComplaintStep(facts="parcel lost", solution="resend", accepted=True,
                                                       apology="we are sorry"))
    with pytest.raises(PermissionDenied, match=r"agent lacks account\.post"), scrm.unit_of_work("agent") as uow:
        tickets.complaint_step(uow, tid, ComplaintStep(compensation=Decimal(20)))
    assert load(scrm, tid).compensation is None
    with scrm.unit_of_work("boss") as uow:
        tickets.complaint_step(uow, tid, ComplaintStep(compensation=Decimal("20.00")))
    with scrm.unit_of_work(read_only=True) as uow:
        tx = uow.session.scalar(select(Transaction).where(Transaction.reference == f"SVC-{tid}-COMP"))
        assert tx.kind.value == "credit_note" and tx.amount == Decimal("20.00")
    t = load(scrm, tid)
    assert (t.facts, t.accepted, t.compensation) == ("parcel lost", True, Decimal("20.00"))
    with pytest.raises(Conflict, match="already has a compensation"), scrm.unit_of_work("boss") as uow:
        tickets.complaint_step(uow, tid, ComplaintStep(compensation=Decimal(5)))


@pytest.mark.parametrize("rule, expected", [("round_robin", ["ann", "bob", "cy", "ann"]),
                                                  ("least_loaded", ["ann", "bob", "cy", "ann"])])
def test_assignment_rules(make_crm: Any, clock: FrozenClock, rule: str, expected: list[str]) -> None:
    import crm_service.plugin as PLUGIN

    from crmcore.schemas import CustomerCreate, UserCreate

    crm = make_crm(plugins=[PLUGIN], config={"service": {"teams": {"support": {"members": ["ann", "bob", "cy"], "assignment": rule}}}})
    crm.clock = clock
    with crm.unit_of_work("test") as uow:
        uow.users.add(UserCreate(username="test", display_name="T", roles=["admin"]))
        for n in ("ann", "bob", "cy"):
            uow.users.add(UserCreate(username=n, display_name=n, roles=["support_agent"]))
        cid = uow.customers.create(CustomerCreate(name="X")).id
    got = []
    for _ in range(4):
        with crm.unit_of_work("test") as uow:
            got.append(tickets.as_dict(uow, tickets.open_ticket(uow, cid, TicketOpen(subject="s"))[0])["assignee"])
    assert got == expected
    if rule == "least_loaded":  # bob's ticket resolved: bob has the least load now
        with crm.unit_of_work("test") as uow:
            tickets.change_status(uow, 2, "resolved")
            assert tickets.as_dict(uow, tickets.open_ticket(uow, cid, TicketOpen(subject="s"))[0])["assignee"] == "bob"


def test_reassignment_is_audited_and_needs_the_permission(scrm: CRM, customer: Any, users: Any) -> None:
    cid = customer()
    users(ann=["support_agent"], bob=["support_agent"], sue=["service_manager"])
    tid = open_(scrm, cid, actor="ann")
    with scrm.unit_of_work("ann") as uow:
        tickets.assign(uow, tid, "ann")  # taking an unassigned ticket: allowed
    with pytest.raises(PermissionDenied, match=r"bob lacks service\.ticket\.assign"), scrm.unit_of_work("bob") as uow:
        tickets.assign(uow, tid, "bob")
    with scrm.unit_of_work("sue") as uow:
        tickets.assign(uow, tid, "bob")
    with scrm.unit_of_work(read_only=True) as uow:
        audit = uow.session.scalars(select(AuditEntry.actor).where(AuditEntry.action == "assign")).all()
        assert audit == ["ann", "sue"]
        assert uow.session.scalar(select(func.count()).select_from(TicketNote).where(TicketNote.kind == "assignment")) == 2
