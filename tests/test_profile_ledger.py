"""The 360° timeline shows the ledger too (invoices, payments): every touchpoint in one place,
filtered like the rest, bounded like the rest."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from crmcore import CRM
from crmcore.schemas import CustomerCreate, InteractionCreate, TransactionCreate

T0 = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)


def test_ledger_entries_are_merged_into_the_timeline_by_date(crm: CRM) -> None:
    with crm.unit_of_work() as uow:
        c = uow.customers.create(CustomerCreate(name="Acme", external_ref="ACME")).id
        uow.interactions.log(c, InteractionCreate(channel="phone", subject="order call", occurred_at=T0))
        uow.accounts.post(c, TransactionCreate(kind="invoice", amount=Decimal("250.00"), reference="INV-7",
                                               description="kitchen", occurred_at=T0 + dt.timedelta(hours=1)))
        uow.accounts.post(c, TransactionCreate(kind="payment", amount=Decimal("250.00"), reference="PAY-7",
                                               occurred_at=T0 + dt.timedelta(days=3)))
    with crm.unit_of_work(read_only=True) as uow:
        timeline = uow.profiles.get("ACME")["timeline"]
        assert [(e["source"], e["kind"], e["reference"]) for e in timeline][:3] == [
            ("ledger", "payment", "PAY-7"), ("ledger", "invoice", "INV-7"), ("core", "phone other", timeline[2]["reference"])]
        assert timeline[1]["summary"] == "invoice 250.00 EUR · kitchen"
        assert [e["reference"] for e in uow.profiles.get("ACME", kinds={"invoice"})["timeline"]] == ["INV-7"]
        assert {e["source"] for e in uow.profiles.get("ACME", kinds={"ledger"})["timeline"]} == {"ledger"}
        assert all(e["source"] == "core" for e in uow.profiles.get("ACME", kinds={"core"})["timeline"])
        assert len(uow.profiles.get("ACME", interactions=2)["timeline"]) == 2
