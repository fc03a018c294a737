"""Embedding crmcore: the Python API an integrator uses instead of the `crm` command.

Run it with ``.venv/bin/python examples/embed.py``. It works on a SQLite file in a temporary
directory and leaves nothing behind; give it a database URL to use another database
(an empty one, e.g. ``postgresql+psycopg://user@host/dbname``).

What it shows:

1. open (and create) a CRM, bring its schema up to date;
2. an in-code plugin: a custom field and an after-commit callback;
3. one unit of work = one transaction: create a customer, log an interaction;
4. post an invoice and a payment to the customer's account;
5. the customer's 360° profile, as the `crm customer show --json` command builds it.
"""
from __future__ import annotations

import json
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

from crmcore import CRM, FieldDefinition, InvalidInput, ProfileSection, UnitOfWork, hookimpl
from crmcore.models import Customer, Transaction
from crmcore.schemas import CustomerCreate, InteractionCreate, TransactionCreate


class Onboarding:
    """A plugin registered in code: always active in this process, no packaging needed.

    Any object (a module, a class instance, ...) whose attributes carry ``@hookimpl`` works.
    """

    def __init__(self) -> None:
        self.outbox: list[str] = []  # stands in for a mail server or a webhook

    @hookimpl
    def crm_register_custom_fields(self, register):  # type: ignore[no-untyped-def]
        register(FieldDefinition(name="segment", type="choice", choices=("retail", "trade"), required=True))

    @hookimpl
    def crm_customer_created(self, uow: UnitOfWork, customer: Customer) -> None:
        # Runs inside the transaction. Side effects wait for the commit: if anything in the unit
        # of work fails later, the callback is dropped and no mail goes out.
        name, segment = customer.name, customer.attributes["segment"]
        uow.on_commit(lambda: self.outbox.append(f"welcome mail to {name} ({segment})"))

    @hookimpl
    def crm_transaction_posted(self, uow: UnitOfWork, transaction: Transaction) -> None:
        note = f"receipt for {transaction.kind.value} {transaction.reference} ({transaction.amount})"
        uow.on_commit(lambda: self.outbox.append(note))

    @hookimpl
    def crm_customer_profile_sections(self, uow: UnitOfWork, customer: Customer) -> ProfileSection:
        return ProfileSection(title="Onboarding", fields={"segment": customer.attributes.get("segment")})


def main(url: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = url or f"sqlite:///{Path(tmp) / 'crm.db'}"
        onboarding = Onboarding()
        # config={} ignores any crm.toml in the working directory; entry_points=False ignores
        # the plugins installed in this environment (both default to the CLI's behaviour).
        crm = CRM.open(url, plugins=[("onboarding", onboarding)], entry_points=False, create=True, config={})
        with crm:
            print("schema up to date:", ", ".join(crm.upgrade()))

            # 1. One unit of work: both rows are committed together, or neither is.
            with crm.unit_of_work(actor="alice") as uow:
                acme = uow.customers.create(CustomerCreate(
                    name="Acme Kitchens", email="buying@acme.example", country="DE", tags=["trade-fair"],
                    external_ref="ACME-1", attributes={"segment": "trade"}))
                uow.interactions.log(acme.id, InteractionCreate(
                    channel="visit", kind="sale", subject="Showroom visit", satisfaction=5))
                customer_id = acme.id
                print("in the transaction, outbox:", onboarding.outbox)  # still empty
            print("after the commit, outbox:  ", onboarding.outbox)

            # 2. The custom field is validated on every write.
            try:
                with crm.unit_of_work(actor="alice") as uow:
                    uow.customers.create(CustomerCreate(name="No segment"))
            except InvalidInput as e:
                print("refused:", e)

            # 3. Money: an invoice and a part payment on the customer's default account.
            with crm.unit_of_work(actor="bob") as uow:
                uow.accounts.post(customer_id, TransactionCreate(kind="invoice", amount=Decimal("1200.00"),
                                                                 reference="INV-1001"))
                entry, created = uow.accounts.post(customer_id, TransactionCreate(
                    kind="payment", amount=Decimal("500.00"), reference="PAY-1001"))
                _, again = uow.accounts.post(customer_id, TransactionCreate(
                    kind="payment", amount=Decimal("500.00"), reference="PAY-1001"))
                print(f"payment posted: {created}; posted again: {again} (same reference = no-op)")

            # 4. The 360° view: the same data as `crm customer show ACME-1 --json`.
            with crm.unit_of_work() as uow:
                view = uow.profiles.get(customer_id)  # the service every face calls
                history = uow.audit.list(entity="customer", entity_id=customer_id)
            c = view["customer"]
            print(f"\n360° profile of {c['name']} (customer {c['id']}, {c['external_ref']})")
            for a in view["accounts"]:
                print(f"  account {a['id']}: balance {a['balance']} {a['currency']}")
            for i in view["interactions"]:
                print(f"  interaction: {i['channel']} / {i['subject']} (satisfaction {i['satisfaction']})")
            for title, fields in view["sections"].items():
                print(f"  section {title}: {fields}")
            print("  audit:", [(e.actor, e.action) for e in history])
            print("\nas JSON:", json.dumps(view["sections"], default=str))
            print("outbox:", onboarding.outbox)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
