"""Helpers for the credit tests (and for anyone testing against the plugin): a tiny ledger builder."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from crmcore import CRM, hookimpl
from crmcore.enums import TransactionKind
from crmcore.schemas import AccountCreate, CustomerCreate, TransactionCreate

TODAY = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def ago(days: int) -> dt.datetime:
    return TODAY - dt.timedelta(days=days)


class Book:
    """Builds customers and ledger entries through the core services (guards and hooks run)."""

    def __init__(self, crm: CRM, actor: str = "test") -> None:
        self.crm, self.actor = crm, actor

    def customer(self, name: str, currency: str = "EUR", terms: int = 30) -> int:
        with self.crm.unit_of_work(self.actor) as uow:
            c = uow.customers.create(CustomerCreate(name=name, external_ref=name))
            uow.accounts.open(c.id, AccountCreate(currency=currency, payment_terms_days=terms, is_default=True))
            return c.id

    def post(self, cid: int, kind: str, amount: str, ref: str, days_ago: int = 0, description: str | None = None,
             due_days_ago: int | None = None, applies_to: str | None = None) -> Any:
        with self.crm.unit_of_work(self.actor) as uow:
            due = None if due_days_ago is None else (TODAY - dt.timedelta(days=due_days_ago)).date()
            e, _ = uow.accounts.post(cid, TransactionCreate(kind=TransactionKind(kind), amount=Decimal(amount), reference=ref,
                                                            occurred_at=ago(days_ago), description=description, due_date=due,
                                                            applies_to=applies_to))
            return e.id

    def invoice(self, cid: int, amount: str, ref: str, days_ago: int = 0, due_days_ago: int | None = None) -> Any:
        return self.post(cid, "invoice", amount, ref, days_ago, due_days_ago=due_days_ago)

    def pay(self, cid: int, amount: str, ref: str, days_ago: int = 0, invoice: str | None = None) -> Any:
        return self.post(cid, "payment", amount, ref, days_ago, applies_to=invoice)

    def users(self, **roles: list[str]) -> None:
        """Add users (the first must be an admin: pass ``test=["admin"]`` to keep this builder's actor)."""
        from crmcore.schemas import UserCreate

        with self.crm.unit_of_work(self.actor) as uow:
            for name, r in roles.items():
                uow.users.add(UserCreate(username=name, display_name=name.title(), roles=r))

    def profile(self, cid: int, actor: str | None = None, **fields: Any) -> Any:
        from crm_credit import services
        from crm_credit.schemas import ProfileUpdate

        with self.crm.unit_of_work(actor or self.actor) as uow:
            return services.set_profile(uow, cid, ProfileUpdate(**fields))


class _SlowCommit:
    """Holds the transaction open after the posting (between the credit check and the commit), so
    concurrent postings really overlap: without the profile lock each would pass its check."""

    PLUGIN_ID = "slow_commit"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    @hookimpl
    def crm_transaction_posted(self, uow: Any, transaction: Any) -> None:
        import time

        time.sleep(self.seconds)


def post_invoice_worker(url: str, customer_id: int, ref: str, amount: str, barrier: Any, out: Any,
                        account_id: int | None = None, slow_commit: float = 0.5) -> None:
    """Run in a separate process by the concurrency tests: open the CRM, wait for the others at the
    barrier, post one invoice, report ``(ref, "ok" | "refused" | "error: ...")``."""
    from crm_credit import plugin
    from crmcore import Vetoed

    crm = None
    try:
        crm = CRM.open(url, plugins=[plugin, ("slow_commit", _SlowCommit(slow_commit))], entry_points=False, config={})
        barrier.wait(timeout=30)
        with crm.unit_of_work(f"w{ref}") as uow:
            uow.accounts.post(customer_id, TransactionCreate(kind=TransactionKind.INVOICE, amount=Decimal(amount), reference=ref),
                              account_id=account_id)
        out.put((ref, "ok"))
    except Vetoed as e:
        out.put((ref, "refused" if "over the credit limit" in str(e) else f"other: {e}"))
    except Exception as e:  # noqa: BLE001 - reported to the test
        out.put((ref, f"error: {type(e).__name__}: {e}"))
    finally:
        if crm is not None:
            crm.close()
