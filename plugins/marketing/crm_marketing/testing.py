"""Test-data builders for the marketing plugin (its tests and its benchmark)."""
from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from crmcore import CRM
from crmcore.schemas import CustomerCreate, TransactionCreate

T0 = dt.datetime(2025, 3, 3, 9, tzinfo=dt.UTC)


class Shop:
    """Customers and invoices through the core's services, one unit of work per call."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self._refs = itertools.count(1)

    def customer(self, ref: str, **kw: Any) -> int:
        kw.setdefault("email", f"{ref.lower()}@example.com")
        with self.crm.unit_of_work("test") as uow:
            return uow.customers.create(CustomerCreate(name=kw.pop("name", f"Customer {ref}"), external_ref=ref, **kw)).id

    def invoice(self, customer_id: int, amount: str, at: dt.datetime, currency: str | None = None,
                category: str | None = None) -> None:
        with self.crm.unit_of_work("test") as uow:
            uow.accounts.post(customer_id, TransactionCreate(kind="invoice", amount=amount, currency=currency,
                                                             reference=f"INV-{next(self._refs)}", occurred_at=at,
                                                             category=category))
