"""The plugin pages issue a fixed number of queries whatever the number of rows (no query per row)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from crm_credit import services as credit
from crm_sales_automation import services as sales
from crm_sales_automation.schemas import LeadCreate, OpportunityCreate
from crm_service import tickets
from crm_service.schemas import TicketOpen
from sqlalchemy import event

from crmcore.schemas import CustomerCreate, TransactionCreate

PAGES = ("/console/sales", "/console/sales/leads", "/console/sales/forecast?by=owner", "/console/credit/ageing",
         "/console/service/tickets", "/console/service/visits", "/console/marketing/segments", "/console/",
         "/console/admin/audit")


def add_rows(crm, n: int, start: int) -> None:
    with crm.unit_of_work("boss") as uow:
        for i in range(start, start + n):
            cid = uow.customers.create(CustomerCreate(name=f"Row {i}", external_ref=f"ROW{i}", owner="anna")).id
            uow.accounts.post(cid, TransactionCreate(kind="invoice", amount=Decimal("100"), currency="EUR", reference=f"R{i}",
                                                     occurred_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)))
            sales.add_opportunity(uow, cid, OpportunityCreate(title=f"Deal {i}", amount=Decimal(100 + i), currency="EUR",
                                                              owner="anna" if i % 2 else "sam"))
            sales.add_lead(uow, LeadCreate(name=f"Lead {i}", owner="anna"))
            tickets.open_ticket(uow, cid, TicketOpen(subject=f"Ticket {i}", priority="high", assignee="suzy"))
            if i % 3 == 0:
                credit.hold(uow, cid, "late")


def counts(crm, client) -> dict[str, int]:
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(crm.engine, "before_cursor_execute", count)
    try:
        out = {}
        for path in PAGES:
            seen.clear()
            assert client.get(path).status_code == 200, path
            out[path] = len(seen)
        return out
    finally:
        event.remove(crm.engine, "before_cursor_execute", count)


def test_query_counts_do_not_grow_with_the_rows(pclient, pcrm):
    add_rows(pcrm, 2, 0)
    boss = pclient("boss")
    boss.get("/console/sales")  # the default pipeline exists before counting
    small = counts(pcrm, boss)
    add_rows(pcrm, 12, 2)
    large = counts(pcrm, boss)
    assert large == small
    assert max(small.values()) < 40, small


def test_bad_ids_and_values_are_pages_never_tracebacks(pclient, pcrm):
    boss = pclient("boss")
    huge = "99999999999999999999"
    for path, status in ((f"/console/sales/opportunities/{huge}", 404), ("/console/sales/leads/0", 404),
                         (f"/console/credit/customers/{huge}", 404), ("/console/credit/customers/0", 404),
                         (f"/console/service/tickets/{huge}", 404), (f"/console/marketing/campaigns/{huge}/report", 404),
                         ("/console/marketing/segment?name=%00", 404), ("/console/value/tiers/%00", 200),
                         ("/console/sales/leads?status=%00", 200), ("/console/credit/ageing?as_of=9999-99-99", 422),
                         ("/console/admin/audit?entity=" + "x" * 600, 200), ("/console/sales/static/../../plugin.py", 404)):
        r = boss.get(path)
        assert r.status_code == status, (path, r.status_code)
        assert "Traceback" not in r.text and ("<html" in r.text or "static" in path), path
