"""Set-based bulk import (same tickets as one by one), visits after won deals and invoices, SLA overrides."""
from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import crm_sales_automation.plugin as SALES  # its tables must be on the metadata when the test database is made
import crm_service.plugin as PLUGIN
import pytest
from crm_sales_automation import services as sales
from crm_sales_automation.schemas import OpportunityCreate
from crm_service import bulk, tickets
from crm_service.bulk import TicketRow
from crm_service.models import Ticket, TicketNote, Visit
from crm_service.schemas import TicketOpen
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.schemas import CustomerCreate, TransactionCreate, UserCreate

TEAMS = {"support": {"members": ["ann", "bob", "cid"], "assignment": "round_robin"},
         "billing": {"members": ["ann", "bob"], "assignment": "least_loaded"},
         "field": {"assignment": "manual", "calendar": "berlin"}}
CONFIG = {"service": {
    "calendars": {"default": {"timezone": "UTC"},
                  "berlin": {"timezone": "Europe/Berlin", "holidays": "DE", "hours": {"mon": "09:00-12:00,13:00-17:00",
                                                                                      "fri": "09:00-15:00"}}},
    "teams": TEAMS, "visit_after_invoice_amount": "1000",
    "sla_overrides": [{"category": "billing", "first_response_hours": 2, "resolution_hours": 6},
                      {"category": "billing", "priority": "urgent", "first_response_hours": 0.5, "resolution_hours": 2}]}}
FIELDS = ("customer_id", "kind", "category", "priority", "subject", "team", "status", "opened_at", "first_response_due",
          "resolution_due", "sla_rule", "assignee_id", "channel")
_refs = itertools.count()


@pytest.fixture
def crm(make_crm: Any, clock: Any) -> CRM:
    crm = make_crm(plugins=[PLUGIN], config=CONFIG)
    crm.clock = clock
    with crm.unit_of_work("test") as uow:
        uow.users.add(UserCreate(username="test", display_name="T", roles=["admin"]))
        for name in ("ann", "bob", "cid"):
            uow.users.add(UserCreate(username=name, display_name=name, roles=["support_agent"]))
        for ref in ("A", "B"):
            uow.customers.create(CustomerCreate(name=f"Customer {ref}", external_ref=ref))
    return crm


def snapshot(uow: Any, refs: list[str]) -> dict[str, tuple[Any, ...]]:
    out = {}
    for t in uow.session.scalars(select(Ticket).where(Ticket.external_ref.in_(refs))):
        notes = uow.session.scalar(select(func.count()).select_from(TicketNote).where(TicketNote.ticket_id == t.id,
                                                                                      TicketNote.kind == "assignment"))
        out[t.external_ref] = (*(getattr(t, f) for f in FIELDS), notes)
    return out


ROW = st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(["low", "normal", "high", "urgent"]),
                st.sampled_from(["billing", "delivery", "other"]), st.sampled_from(["support", "billing", "field", None]),
                st.integers(0, 14 * 24 * 60))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, min_size=1, max_size=8))
def test_bulk_write_opens_the_same_tickets_as_one_by_one(crm: CRM, rows: list[tuple[Any, ...]]) -> None:
    start = dt.datetime(2030, 5, 31, 15, 0, tzinfo=dt.UTC)  # a Friday afternoon, Whit Monday ahead
    batch = [(i + 2, TicketRow(reference=f"R{next(_refs)}", customer=c, subject=f"s{i}", priority=p, category=cat,
                               team=team, opened_at=start + dt.timedelta(minutes=m)))
             for i, (c, p, cat, team, m) in enumerate(rows)]
    refs = [r.reference for _, r in batch]
    with crm.unit_of_work("test") as uow:
        customers = {"A": 1, "B": 2}
        savepoint = uow.session.begin_nested()
        for _, r in batch:
            tickets.open_ticket(uow, customers[r.customer], TicketOpen(
                subject=r.subject, priority=r.priority, category=r.category, team=r.team, opened_at=r.opened_at,
                external_ref=r.reference))
        expected = snapshot(uow, refs)
        savepoint.rollback()
        assert snapshot(uow, refs) == {}
        out = bulk.write_batch(uow, batch)
        assert (out.inserted, out.unchanged, out.rejected) == (len(batch), 0, [])
        got = snapshot(uow, refs)
        diffs = {(ref, f): (got[ref][i], expected[ref][i]) for ref in expected for i, f in enumerate((*FIELDS, "notes"))
                 if got[ref][i] != expected[ref][i]}
        assert diffs == {}, rows
        again = bulk.write_batch(uow, batch)  # a re-import is a no-op
        assert (again.inserted, again.unchanged) == (0, len(batch))


def test_sla_overrides_by_category_and_priority(crm: CRM) -> None:
    with crm.unit_of_work("test") as uow:  # Monday 08:00 UTC, calendar 09-17 UTC
        a, _ = tickets.open_ticket(uow, 1, TicketOpen(subject="x", category="billing", priority="high"))
        b, _ = tickets.open_ticket(uow, 1, TicketOpen(subject="y", category="billing", priority="urgent"))
        c, _ = tickets.open_ticket(uow, 1, TicketOpen(subject="z", category="other", priority="high"))
    assert (a.sla_rule, a.first_response_due) == ("category billing", dt.datetime(2030, 6, 3, 11, 0, tzinfo=dt.UTC))
    assert (b.sla_rule, b.resolution_due) == ("category billing, priority urgent", dt.datetime(2030, 6, 3, 11, 0, tzinfo=dt.UTC))
    assert (c.sla_rule, c.resolution_due) == ("priority high", dt.datetime(2030, 6, 4, 17, 0, tzinfo=dt.UTC))


def test_bad_override_is_one_config_line(make_crm: Any) -> None:
    bad = {"service": {"sla_overrides": [{"category": "weather", "first_response_hours": 1, "resolution_hours": 2}]}}
    with pytest.raises(Exception, match="unknown category 'weather'") as e:
        make_crm(plugins=[PLUGIN], config=bad)
    assert "\n" not in str(e.value).strip()


def _visits(crm: CRM) -> list[tuple[str, str, int | None]]:
    with crm.unit_of_work(read_only=True) as uow:
        return [(v.reason, v.source, v.agent_id) for v in uow.session.scalars(select(Visit).order_by(Visit.id))]


def test_visit_after_an_invoice_above_the_amount_single_and_batch(crm: CRM, cli: Any, tmp_path: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("crmcore.app.read_config", lambda *a, **k: CONFIG)  # the CLI reads the same settings
    with crm.unit_of_work("test") as uow:
        uow.accounts.post(1, TransactionCreate(kind="invoice", amount=Decimal("999.99"), reference="I-1"))
        tx, _ = uow.accounts.post(1, TransactionCreate(kind="invoice", amount=Decimal("1000.00"), reference="I-2"))
        uow.accounts.post(1, TransactionCreate(kind="payment", amount=Decimal(5000), reference="P-1"))
    assert _visits(crm) == [("invoice", f"invoice:{tx.id}", None)]
    f = tmp_path / "tx.csv"
    f.write_text("customer_ref,kind,amount,occurred_at,reference\nA,invoice,2500,2025-06-02,I-3\n"
                 "B,invoice,10,2025-06-02,I-4\nB,invoice,1200.50,2025-06-03,I-5\n")
    res = cli("import", "transactions", str(f), plugins=[PLUGIN], user="test")
    assert res.exit_code == 0, res.output
    assert [v[0] for v in _visits(crm)] == ["invoice"] * 3
    res = cli("import", "transactions", str(f), plugins=[PLUGIN], user="test")  # a re-import: no new visit
    assert len(_visits(crm)) == 3


def test_visit_after_a_won_deal(make_crm: Any, clock: Any) -> None:
    crm = make_crm(plugins=[PLUGIN, SALES], config={"service": {"calendars": {"default": {"timezone": "UTC"}}}})
    crm.clock = clock
    with crm.unit_of_work("test") as uow:
        uow.users.add(UserCreate(username="test", display_name="T", roles=["admin"]))
        uow.users.add(UserCreate(username="anna", display_name="Anna", roles=["sales"]))
        cid = uow.customers.create(CustomerCreate(name="X")).id
        opp = sales.add_opportunity(uow, cid, OpportunityCreate(title="Kitchen", amount=Decimal(12500), owner="anna"))
        sales.win(uow, opp.id)
        anna = uow.users.get_by_username("anna").id
    visits = _visits(crm)
    assert visits == [("deal", f"deal:{opp.id}", anna)]
    with crm.unit_of_work(read_only=True) as uow:
        v = uow.session.scalar(select(Visit))
        assert v.customer_id == cid and v.ticket_id is None and v.due_at.date() > dt.date(2030, 6, 3)
