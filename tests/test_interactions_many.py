"""``uow.interactions.log_many``: a batch of touchpoints checked row by row as ``log`` checks one
(schema, visibility, archived customers, users, references), written all or nothing in one
flush, with one ``crm_interactions_batch`` call."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import event, func, select

from crmcore import CRM, hookimpl
from crmcore.errors import Conflict, InvalidInput, NotFound, PluginError
from crmcore.models import AuditEntry, Interaction
from crmcore.permissions import PermissionDenied
from crmcore.schemas import CustomerCreate, InteractionCreate, UserCreate
from crmcore.uow import UnitOfWork

FIXED = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)


class Recorder:
    """Records the per-row and the batch interaction hooks."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.rows: list[int] = []
        self.fail = False

    @hookimpl
    def crm_interactions_batch(self, uow: UnitOfWork, interaction_ids: Sequence[int]) -> None:
        if self.fail:
            raise RuntimeError("batch hook broke")
        self.batches.append(list(interaction_ids))

    @hookimpl
    def crm_interaction_logged(self, uow: UnitOfWork, interaction: Interaction) -> None:
        self.rows.append(interaction.id)


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def crm(make_crm: Callable[..., CRM], rec: Recorder) -> CRM:
    crm = make_crm(plugins=[("rec", rec)], config={"visibility": {"sales": "own"}})
    crm.clock = lambda: FIXED  # type: ignore[attr-defined]
    with crm.unit_of_work("setup") as uow:
        for name, roles in (("root", ["admin"]), ("anna", ["sales"]), ("bob", ["sales"]), ("vic", ["viewer"])):
            uow.users.add(UserCreate(username=name, display_name=name.title(), roles=roles))
    with crm.unit_of_work("root") as uow:
        for ref, owner in (("A-1", "anna"), ("A-2", "anna"), ("B-1", "bob"), ("OLD", "anna")):
            uow.customers.create(CustomerCreate(name=f"Customer {ref}", external_ref=ref, owner=owner))
        uow.customers.archive(uow.customers.resolve("OLD").id)
    return crm


def count(crm: CRM) -> tuple[int, int]:
    """(interactions, interaction audit entries)."""
    with crm.unit_of_work("root") as uow:
        return (uow.session.scalar(select(func.count()).select_from(Interaction)) or 0,
                uow.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.entity == "interaction")) or 0)


def row(subject: str, **kw: Any) -> dict[str, Any]:
    return {"channel": "phone", "subject": subject, **kw}


def test_a_batch_is_logged_with_one_batch_hook(crm: CRM, rec: Recorder) -> None:
    with crm.unit_of_work("anna") as uow:
        a1 = uow.customers.resolve("A-1").id
        got = uow.interactions.log_many([
            ("A-1", row("first", handled_by="anna", external_ref="T-1")),
            (a1, InteractionCreate(channel="email", subject="second", occurred_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))),
            (f"#{a1}", row("third", satisfaction=4)),
            ("A-2", row("other customer")),
        ])
        assert [i.subject for i in got] == ["first", "second", "third", "other customer"]
        assert [i.customer_id for i in got[:3]] == [a1] * 3 and got[3].customer_id != a1
        assert got[0].handled_by_id == uow.users.get_by_username("anna").id and got[0].external_ref == "T-1"
        assert all(i.external_ref for i in got) and len({i.external_ref for i in got}) == 4
        assert got[1].occurred_at == dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
        assert got[0].occurred_at == FIXED  # the CRM's clock, not the wall clock
        ids = [i.id for i in got]
    assert rec.batches == [ids] and rec.rows == []  # one batch call, not one per row
    assert count(crm) == (4, 4)  # an audit entry per interaction


def test_logging_the_same_references_again_writes_nothing(crm: CRM, rec: Recorder) -> None:
    batch = [("A-1", row("first", external_ref="T-1")), ("A-1", row("again", external_ref="T-2"))]
    with crm.unit_of_work("anna") as uow:
        first = [i.id for i in uow.interactions.log_many(batch)]
    with crm.unit_of_work("anna") as uow:
        again = uow.interactions.log_many([*batch, ("A-1", row("new", external_ref="T-3")), ("A-1", row("new", external_ref="T-3"))])
        assert [i.id for i in again[:2]] == first and again[2] is again[3]  # the same reference twice: one row
        new_id = again[2].id
    assert rec.batches == [first, [new_id]]
    assert count(crm) == (3, 3)


@pytest.mark.parametrize("entries, error, message", [
    ([("A-1", row("ok")), ("A-1", {"channel": "pigeon", "subject": "x"})], InvalidInput,
     "row 2: invalid interaction: channel: Input should be"),
    ([("A-1", row("ok")), ("A-1", {"subject": "no channel"})], InvalidInput, "row 2: invalid interaction: channel: Field required"),
    ([("A-1", row("ok")), ("NOPE", row("x"))], NotFound, "customer 'NOPE' (row 2) not found"),
    ([("A-1", row("ok")), ("B-1", row("not mine"))], NotFound, "customer 'B-1' (row 2) not found"),
    ([("OLD", row("x"))], Conflict, "row 1: customer"),
    ([("A-1", row("ok")), ("A-1", row("x", handled_by="ghost"))], InvalidInput, "row 2: user 'ghost' not found"),
    ([("A-1", row("a", external_ref="R")), ("A-2", row("b", external_ref="R"))], Conflict,
     "row 2: interaction reference 'R' is already given by row 1 of this batch with other content"),
])
def test_a_bad_row_refuses_the_whole_batch(crm: CRM, rec: Recorder, entries: list[Any], error: type[Exception],
                                           message: str) -> None:
    with pytest.raises(error) as e, crm.unit_of_work("anna") as uow:
        uow.interactions.log_many(entries)
    assert message in str(e.value) and len(str(e.value).splitlines()) == 1
    assert count(crm) == (0, 0) and rec.batches == []


def test_a_reference_logged_before_with_other_content_is_refused(crm: CRM) -> None:
    with crm.unit_of_work("anna") as uow:
        uow.interactions.log(uow.customers.resolve("A-1").id, InteractionCreate(channel="phone", subject="x", external_ref="R"))
    with pytest.raises(Conflict, match=r"row 2: interaction reference 'R' is already logged .* with a different subject"), \
            crm.unit_of_work("anna") as uow:
        uow.interactions.log_many([("A-1", row("fine")), ("A-1", row("changed", external_ref="R"))])
    assert count(crm) == (1, 1)


def test_permission_and_visibility_as_for_one(crm: CRM) -> None:
    with pytest.raises(PermissionDenied), crm.unit_of_work("vic") as uow:
        uow.interactions.log_many([("A-1", row("x"))])
    with pytest.raises(NotFound), crm.unit_of_work("bob") as uow:  # one by one, the same rule
        uow.interactions.log(crm_id(crm, "A-1"), InteractionCreate(channel="phone", subject="not mine"))
    with crm.unit_of_work("root") as uow:  # an admin sees every customer
        assert len(uow.interactions.log_many([("A-1", row("x")), ("B-1", row("y"))])) == 2
    assert count(crm) == (2, 2)


def crm_id(crm: CRM, ref: str) -> int:
    with crm.unit_of_work("root") as uow:
        return uow.customers.resolve(ref).id


def test_a_failing_batch_hook_rolls_everything_back(crm: CRM, rec: Recorder) -> None:
    rec.fail = True
    with pytest.raises(PluginError, match="plugin 'rec' failed in hook crm_interactions_batch"), \
            crm.unit_of_work("anna") as uow:
        uow.interactions.log_many([("A-1", row("x")), ("A-2", row("y"))])
    assert count(crm) == (0, 0)


def test_an_empty_batch_calls_no_hook(crm: CRM, rec: Recorder) -> None:
    with crm.unit_of_work("anna") as uow:
        assert uow.interactions.log_many([]) == []
    assert rec.batches == []


def test_statements_do_not_grow_with_the_rows(crm: CRM) -> None:
    def statements(n: int) -> int:
        seen: list[str] = []

        def on_execute(*args: Any) -> None:
            seen.append(args[2])
        event.listen(crm.engine, "before_cursor_execute", on_execute)
        try:
            with crm.unit_of_work("anna") as uow:
                uow.interactions.log_many([(("A-1", "A-2")[i % 2], row(f"s{i}", handled_by="anna", external_ref=f"N{n}-{i}"))
                                           for i in range(n)])
        finally:
            event.remove(crm.engine, "before_cursor_execute", on_execute)
        return len(seen)

    small, large = statements(4), statements(200)
    assert large <= small + 4, (small, large)  # a few insertmanyvalues pages at most, never one per row
    assert count(crm) == (204, 204)
