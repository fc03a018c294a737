"""Test plugin: implements every hook and records each call, so the suite can prove the contract.

Behaviour is steered through module globals that tests set and reset:
``VETO_REFS`` (entry references to refuse), ``VETO_NAMES`` (customer names whose archive or
merge is refused), ``FAIL_IN`` (a hook name that raises).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from sqlalchemy import func, select, update

from crmcore import FieldDefinition, MigrationBranch, ProfileSection, ProfileTable, TimelineEntry, Veto, hookimpl
from crm_testplug.models import TestplugNote

requires: tuple[str, ...] = ()
__version__ = "1.2.3"

CALLS: list[tuple[str, Any]] = []
SENT: list[str] = []
VETO_REFS: set[str] = set()
VETO_NAMES: set[str] = set()
TIMELINE: list[TimelineEntry] = []
FAIL_IN: str | None = None


def reset() -> None:
    CALLS.clear()
    SENT.clear()
    VETO_REFS.clear()
    VETO_NAMES.clear()
    TIMELINE.clear()
    global FAIL_IN
    FAIL_IN = None


def _seen(hook: str, payload: Any) -> None:
    CALLS.append((hook, payload))
    if FAIL_IN == hook:
        raise RuntimeError(f"boom in {hook}")


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    @cli.group("testplug")
    def group() -> None:
        """Commands of the test plugin."""

    @group.command("hello")
    def hello() -> None:
        click.echo("hello from testplug")


@hookimpl
def crm_register_migrations(register: Any) -> None:
    register(MigrationBranch(label="testplug", versions=Path(__file__).parent / "migrations" / "versions"))


@hookimpl
def crm_register_custom_fields(register: Any) -> None:
    register(FieldDefinition(name="loyalty_card", type="str", description="card number"))
    register(FieldDefinition(name="segment", type="choice", choices=("retail", "trade")))


@hookimpl
def crm_customer_profile_sections(uow: Any, customer: Any) -> ProfileSection:
    n = uow.session.scalar(select(func.count()).select_from(TestplugNote).where(TestplugNote.customer_id == customer.id))
    rows = uow.session.execute(select(TestplugNote.id, TestplugNote.text).where(TestplugNote.customer_id == customer.id)
                               .order_by(TestplugNote.id)).all()
    return ProfileSection(title="Test plug", fields={"notes": n},
                          tables=[ProfileTable(title="Notes", columns=["id", "text"], rows=[list(r) for r in rows])])


@hookimpl
def crm_customer_timeline(uow: Any, customer: Any) -> list[TimelineEntry]:
    _seen("crm_customer_timeline", customer.id)
    return list(TIMELINE)


@hookimpl
def crm_customer_created(uow: Any, customer: Any) -> None:
    _seen("crm_customer_created", customer.id)
    uow.session.add(TestplugNote(customer_id=customer.id, text=f"welcome {customer.name}"))
    uow.on_commit(lambda: SENT.append(f"welcome mail to {customer.id}"))


@hookimpl
def crm_customer_updated(uow: Any, customer: Any, changes: dict) -> None:
    _seen("crm_customer_updated", (customer.id, sorted(changes)))


@hookimpl
def crm_customer_archived(uow: Any, customer: Any) -> None:
    _seen("crm_customer_archived", customer.id)


@hookimpl
def crm_interaction_logged(uow: Any, interaction: Any) -> None:
    _seen("crm_interaction_logged", interaction.id)


@hookimpl
def crm_transaction_posted(uow: Any, transaction: Any) -> None:
    _seen("crm_transaction_posted", transaction.reference)


@hookimpl
def crm_customers_batch(uow: Any, created_ids: Any, updated_ids: Any) -> None:
    _seen("crm_customers_batch", (list(created_ids), list(updated_ids)))


@hookimpl
def crm_interactions_batch(uow: Any, interaction_ids: Any) -> None:
    _seen("crm_interactions_batch", list(interaction_ids))


@hookimpl
def crm_transactions_batch(uow: Any, transaction_ids: Any) -> None:
    _seen("crm_transactions_batch", list(transaction_ids))


@hookimpl
def crm_before_transaction_post(uow: Any, account: Any, entry: Any) -> None:
    _seen("crm_before_transaction_post", entry.reference)
    if entry.reference in VETO_REFS:
        raise Veto(f"credit hold on account {account.id}")


@hookimpl
def crm_before_transactions_batch(uow: Any, entries: Any) -> dict[int, str]:
    _seen("crm_before_transactions_batch", len(entries))
    return {i: "credit hold" for i, (_, e) in enumerate(entries) if e.reference in VETO_REFS}


@hookimpl
def crm_merge_customers(uow: Any, source_id: int, target_id: int) -> dict[str, int]:
    _seen("crm_merge_customers", (source_id, target_id))
    res = uow.session.execute(update(TestplugNote).where(TestplugNote.customer_id == source_id).values(customer_id=target_id))
    return {"testplug_notes": res.rowcount}


@hookimpl
def crm_before_customer_archive(uow: Any, customer: Any) -> None:
    _seen("crm_before_customer_archive", customer.id)
    if customer.name in VETO_NAMES:
        raise Veto(f"{customer.name} has open business")


@hookimpl
def crm_before_customer_merge(uow: Any, source: Any, target: Any) -> None:
    _seen("crm_before_customer_merge", (source.id, target.id))
    if source.name in VETO_NAMES or target.name in VETO_NAMES:
        raise Veto(f"{source.name} and {target.name} must stay apart")


@hookimpl
def crm_interaction_updated(uow: Any, interaction: Any, changes: dict) -> None:
    _seen("crm_interaction_updated", (interaction.id, sorted(changes)))


@hookimpl
def crm_interactions_updated_batch(uow: Any, interaction_ids: Any) -> None:
    _seen("crm_interactions_updated_batch", list(interaction_ids))
