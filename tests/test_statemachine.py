"""The declarative status machine: legal moves, refusals, permissions, audit and timeline."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pytest
from sqlalchemy import select

from crmcore import CRM, PermissionDenied
from crmcore.models import AuditEntry, Interaction
from crmcore.schemas import CustomerCreate, UserCreate
from crmcore.statemachine import IllegalMove, StateMachine, Transition, move


class Status(StrEnum):
    NEW = "new"
    OPEN = "open"
    DONE = "done"


MACHINE = StateMachine("demo_task", ("new", "open", "done"),
                       [("new", "open"), ("open", "done", "customer.archive"), Transition("done", "open")],
                       source="demo", interaction_kind="support")


@dataclass
class Task:
    id: int
    customer_id: int | None
    status: Any = Status.NEW
    state_machine = MACHINE


def customer(crm: CRM) -> int:
    with crm.unit_of_work("test") as uow:
        return uow.customers.create(CustomerCreate(name="Acme")).id


def test_declaration_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown state"):
        StateMachine("x", ("a", "b"), [("a", "c")])
    with pytest.raises(ValueError, match="declared twice"):
        StateMachine("x", ("a", "b"), [("a", "b"), ("a", "b", "customer.write")])
    assert MACHINE.allowed("new") == ["open"] and MACHINE.allowed(Status.DONE) == ["open"]


def test_a_move_sets_the_status_audits_and_logs_on_the_timeline(crm: CRM) -> None:
    cid = customer(crm)
    task = Task(7, cid)
    with crm.unit_of_work("test") as uow:
        t = move(uow, task, "open", reason="picked up")
    assert t == Transition("new", "open") and task.status is Status.OPEN  # the enum type is kept
    with crm.unit_of_work(read_only=True) as uow:
        audit = uow.session.scalars(select(AuditEntry).where(AuditEntry.entity == "demo_task")).all()
        assert [(a.action, a.entity_id, a.before, a.after) for a in audit] == [
            ("move", "7", {"status": "new"}, {"status": "open", "reason": "picked up"})]
        ix = uow.session.scalars(select(Interaction).where(Interaction.customer_id == cid)).one()
        assert (ix.kind, ix.source, ix.source_ref, ix.notes) == ("support", "demo", "demo_task:7", "picked up")
        assert "new → open" in ix.subject


def test_an_illegal_move_is_one_line_listing_the_allowed_targets(crm: CRM) -> None:
    cid = customer(crm)
    task = Task(3, cid, Status.NEW)
    with pytest.raises(IllegalMove) as err, crm.unit_of_work("test") as uow:
        move(uow, task, "done")
    assert str(err.value) == "demo_task 3 cannot move from new to done (allowed from new: open)"
    assert err.value.exit_code == 1 and task.status is Status.NEW
    with pytest.raises(IllegalMove, match="unknown status 'gone'"), crm.unit_of_work("test") as uow:
        move(uow, task, "gone")
    with crm.unit_of_work(read_only=True) as uow:  # nothing written by a refused move
        assert uow.session.scalar(select(AuditEntry.id).where(AuditEntry.entity == "demo_task")) is None


def test_a_transition_permission_is_checked_and_nothing_is_written(crm: CRM) -> None:
    cid = customer(crm)
    with crm.unit_of_work("test") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
        uow.users.add(UserCreate(username="sam", display_name="Sam", roles=["sales"]))
    task = Task(5, cid, "open")  # plain strings work too
    with pytest.raises(PermissionDenied, match="sam lacks customer.archive"), crm.unit_of_work("sam") as uow:
        move(uow, task, "done")
    assert task.status == "open"
    with crm.unit_of_work("root") as uow:
        move(uow, task, "done")
    assert task.status == "done"
    with crm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(AuditEntry.actor).where(AuditEntry.entity == "demo_task")) == "root"


def test_a_row_without_customer_logs_no_interaction_and_a_row_without_machine_is_refused(crm: CRM) -> None:
    with crm.unit_of_work("test") as uow:
        move(uow, Task(1, None), "open")
        assert uow.session.scalar(select(Interaction.id)) is None
        with pytest.raises(TypeError, match="no state_machine"):
            move(uow, object(), "open")
