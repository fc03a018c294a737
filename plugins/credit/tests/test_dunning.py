"""Dunning levels: raised by days overdue, logged as interactions and timeline entries, hold at a
flagged level, resolved by a payment (which lifts a dunning hold)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from crm_credit import dunning, services
from crm_credit.models import DunningEvent, DunningItem
from crm_credit.testing import Book
from sqlalchemy import select

from crmcore import CRM, PermissionDenied, Vetoed
from crmcore.models import Interaction


def _run(crm: CRM, as_of: dt.date | None = None, actor: str = "system") -> dunning.RunResult:
    with crm.unit_of_work(actor) as uow:
        return dunning.run(uow, as_of)


def test_levels_rise_with_days_overdue_and_actions_are_logged(book: Book, ccrm: CRM) -> None:
    a, b = book.customer("A"), book.customer("B")
    book.invoice(a, "100", "A1", days_ago=40, due_days_ago=5)    # level 1 reminder
    book.invoice(a, "200", "A2", days_ago=60, due_days_ago=20)   # level 2 call
    book.invoice(b, "300", "B1", days_ago=90, due_days_ago=35)   # level 3 final notice (fee, interest)
    book.invoice(b, "50", "B2", days_ago=10)                     # not due yet
    res = _run(ccrm)
    assert (res.overdue, res.raised, res.interactions, res.held) == (3, 3, 2, [])
    assert res.by_level == {1: 1, 2: 1, 3: 1}
    with ccrm.unit_of_work(read_only=True) as uow:
        inter = {i.customer_id: i for i in uow.session.scalars(select(Interaction).where(Interaction.source == "credit"))}
        assert inter[a].subject.startswith("Dunning level 2 (call): 2 invoice(s), 300.00 EUR overdue")
        assert inter[a].channel.value == "phone" and inter[a].direction.value == "outbound"
        assert "A1: level 1 (reminder)" in inter[a].notes
        ev = uow.session.scalars(select(DunningEvent).where(DunningEvent.customer_id == b)).one()
        assert (ev.level, ev.action, ev.fee, ev.days_overdue) == (3, "final_notice", Decimal("40.00"), 35)
        assert ev.interest == (Decimal(300) * Decimal("0.08") * 35 / 365).quantize(Decimal("0.01"))
        timeline = services.timeline(uow, uow.customers.get(b))
        assert any(t.kind == "dunning final notice" for t in timeline)
    # a second run the same day raises nothing and logs nothing
    again = _run(ccrm)
    assert (again.raised, again.interactions) == (0, 0)
    # later, the items climb further
    later = _run(ccrm, services.today() + dt.timedelta(days=26))
    assert later.by_level == {1: 1, 3: 2, 4: 1} and later.held == [b]


def test_hold_level_holds_and_a_payment_resolves_it(book: Book, ccrm: CRM) -> None:
    a = book.customer("A")
    book.profile(a, limit=Decimal(100000))
    book.invoice(a, "500", "OLD", days_ago=100, due_days_ago=70)
    res = _run(ccrm)
    assert res.held == [a]
    with ccrm.unit_of_work(read_only=True) as uow:
        p = services.get_profile(uow, a)
        assert (p.status, p.hold_source) == ("hold", "dunning")
        assert "dunning level 4" in p.status_reason
    with pytest.raises(Vetoed, match="on credit hold"):
        book.invoice(a, "1", "NEW")
    book.pay(a, "200", "P1", invoice="OLD")  # partial: still held
    with ccrm.unit_of_work(read_only=True) as uow:
        assert services.get_profile(uow, a).status == "hold"
    book.pay(a, "300", "P2", invoice="OLD")
    with ccrm.unit_of_work(read_only=True) as uow:
        assert services.get_profile(uow, a).status == "watch"
        item = uow.session.scalars(select(DunningItem)).one()
        assert item.resolved_at is not None
        assert [r["invoice"] for r in dunning.listing(uow)] == []
        assert [r["invoice"] for r in dunning.listing(uow, include_resolved=True)] == ["OLD"]
    book.invoice(a, "1", "NEW")


def test_manual_hold_is_not_lifted_by_a_payment(book: Book, ccrm: CRM) -> None:
    a = book.customer("A")
    book.invoice(a, "500", "OLD", days_ago=100, due_days_ago=70)
    with ccrm.unit_of_work() as uow:
        services.hold(uow, a, "fraud check")
    _run(ccrm)
    book.pay(a, "500", "P1")
    with ccrm.unit_of_work(read_only=True) as uow:
        assert services.get_profile(uow, a).status == "hold"


def test_dunning_needs_its_permission(book: Book, ccrm: CRM) -> None:
    book.users(test=["admin"], anna=["sales"])
    with pytest.raises(PermissionDenied, match=r"user anna lacks credit\.dunning"):
        _run(ccrm, actor="anna")


def test_custom_levels(make_ccrm) -> None:
    crm = make_ccrm(dunning_levels=[{"level": 1, "days_overdue": 10, "action": "reminder"},
                                    {"level": 2, "days_overdue": 20, "action": "hold", "hold": True}])
    b = Book(crm)
    a = b.customer("A")
    b.invoice(a, "10", "I1", days_ago=60, due_days_ago=9)
    assert _run(crm).raised == 0
    assert _run(crm, services.today() + dt.timedelta(days=11)).held == [a]
