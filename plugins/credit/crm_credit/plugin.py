"""Credit management: credit profiles, explainable and trained scorecards, credit holds, ageing, DSO, dunning.

The crmcore hook implementations of the ``credit`` plugin, and nothing else: the commands live
in :mod:`crm_credit.cli`, the work in :mod:`crm_credit.services`, :mod:`crm_credit.scoring`,
:mod:`crm_credit.dunning` and :mod:`crm_credit.scorecard`. Importing this module imports nothing
heavier than the core: the ``credit_*`` tables are registered on the shared metadata when the
schema is first needed (``defer_models``), and the work modules (numpy, the scorecards, the
settings) are imported inside the hooks that use them, so a command that does not touch credit
(``crm customer list``) does not pay for them (tests/test_startup_imports.py).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from crm_credit.console import (  # noqa: F401 - the web console hooks (console.py)
    crm_console_customer_sections,
    crm_console_home_cards,
    crm_console_register,
)
from crmcore import MigrationBranch, Permission, ProfileSection, hookimpl
from crmcore.db import defer_models
from crmcore.enums import TransactionKind
from crmcore.models import Customer, Transaction
from crmcore.uow import UnitOfWork

defer_models("crm_credit.models")  # the credit_* tables: on the metadata when the schema is read

PLUGIN_ID = "credit"
__version__ = "0.1.0"
requires: tuple[str, ...] = ()

MIGRATIONS = MigrationBranch(label="credit", versions=Path(__file__).parent / "migrations" / "versions")
# imported when the settings are first needed (crmcore.settings): checking the factors imports numpy
SETTINGS = "crm_credit.settings:CreditSettings"
COMMANDS = {"credit": "crm_credit.cli:credit"}  # imported when `crm credit ...` runs
_C, _M = "credit_controller", "manager"
PERMISSIONS = (
    Permission("credit.profile.write", "Set credit limits, terms, status and investigation data", (_C, _M)),
    Permission("credit.score", "Recompute credit scores", (_C, _M)),
    Permission("credit.hold", "Put a customer on credit hold", (_C, _M)),
    Permission("credit.release", "Release a credit hold or a refused document", (_C,)),
    Permission("credit.writeoff", "Write off bad debt", (_C,)),
    Permission("credit.dunning", "Run dunning", (_C,)),
    Permission("credit.scorecard", "Apply a trained scorecard to the customers", (_C,)),
    Permission("credit.pass_warning", "Pass a document that breaks a credit rule where the mode is warn", (_C,)),
)


@hookimpl
def crm_add_hookspecs(register: Callable[[Any], None]) -> None:
    from crm_credit import hookspecs

    register(hookspecs)


@hookimpl
def crm_register_permissions(register: Callable[[Any], None]) -> None:
    for p in PERMISSIONS:
        register(p)


@hookimpl
def crm_register_routes(router: Any) -> None:
    from crm_credit.routes import register
    from crm_credit.routes_terms import register as register_terms

    register(router)
    register_terms(router)  # reviews due, warn-mode passes


@hookimpl
def crm_register_migrations(register: Callable[[MigrationBranch], None]) -> None:
    register(MIGRATIONS)


@hookimpl
def crm_before_transaction_post(uow: UnitOfWork, account: Any, entry: Any) -> None:
    from crm_credit import guards

    guards.guard_entry(uow, account, entry)


@hookimpl
def crm_before_transactions_batch(uow: UnitOfWork, entries: Sequence[tuple[Any, Any]]) -> dict[int, str] | None:
    from crm_credit import guards

    return guards.guard_batch(uow, list(entries))


@hookimpl
def crm_transaction_posted(uow: UnitOfWork, transaction: Transaction) -> None:
    if transaction.kind is TransactionKind.CHARGE or (transaction.kind is TransactionKind.ADJUSTMENT and transaction.amount > 0):
        return  # a debit (a dunning charge, a positive adjustment) settles nothing
    if transaction.kind is not TransactionKind.INVOICE:
        from crm_credit import dunning, terms
        from crmcore.models import Account

        customer_id = uow.session.get(Account, transaction.account_id).customer_id  # type: ignore[union-attr]
        if transaction.kind is TransactionKind.PAYMENT:
            terms.apply_discounts(uow, [transaction.id])
        dunning.resolve_paid(uow, [customer_id])
        terms.clear_charges(uow, [customer_id])


@hookimpl
def crm_transactions_batch(uow: UnitOfWork, transaction_ids: Sequence[int]) -> None:
    from sqlalchemy import select

    from crm_credit import dunning
    from crmcore.models import Account

    ids = list(transaction_ids)
    customers: set[int] = set()
    for i in range(0, len(ids), 5000):
        customers.update(uow.session.scalars(
            select(Account.customer_id).join(Transaction, Transaction.account_id == Account.id)
            .where(Transaction.id.in_(ids[i:i + 5000]), Transaction.kind != TransactionKind.INVOICE).distinct()))
    if customers:
        from crm_credit import terms

        terms.apply_discounts(uow, _payments(uow, ids))
        dunning.resolve_paid(uow, sorted(customers))
        terms.clear_charges(uow, sorted(customers))


def _payments(uow: UnitOfWork, ids: list[int]) -> list[int]:
    """The payments among these entries whose customers have early-payment discount terms."""
    from sqlalchemy import select

    from crm_credit.models import CreditProfile

    out: list[int] = []
    for i in range(0, len(ids), 5000):
        out += uow.session.scalars(select(Transaction.id).join(
            CreditProfile, CreditProfile.customer_id == Transaction.customer_id).where(
            Transaction.id.in_(ids[i:i + 5000]), Transaction.kind == TransactionKind.PAYMENT,
            CreditProfile.discount_percent.is_not(None)))
    return out


@hookimpl(optionalhook=True)
def sales_before_opportunity_won(uow: UnitOfWork, opportunity: Any) -> None:
    from crm_credit import guards

    guards.guard_win(uow, opportunity)


@hookimpl
def crm_customer_profile_sections(uow: UnitOfWork, customer: Customer) -> ProfileSection | None:
    from crm_credit import services

    return services.profile_section(uow, customer)


@hookimpl
def crm_customer_timeline(uow: UnitOfWork, customer: Customer) -> list[Any] | None:
    from crm_credit import control, services

    return [*services.timeline(uow, customer), *control.timeline(uow, customer.id)] or None


@hookimpl
def crm_merge_customers(uow: UnitOfWork, source_id: int, target_id: int) -> dict[str, int]:
    from crm_credit import services

    return services.merge_customer_rows(uow, source_id, target_id)

@hookimpl(optionalhook=True)
def value_customer_costs(uow: Any, customer_ids: list[int], start: dt.date | None, end: dt.date,
                         register: Callable[[str, Mapping[int, float]], None]) -> None:
    """value_analysis's cost query (its published hook), in :mod:`crm_credit.value_costs` (imports the settings)."""
    from crm_credit import value_costs

    value_costs.value_customer_costs(uow, customer_ids, start, end, register)
