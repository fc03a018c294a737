"""Greets every new customer: a crmcore plugin in one module.

Shows an extension hook of each kind (migrations, custom fields, commands, profile section),
an in-transaction event with an after-commit side effect, the batch hook of the bulk path and
the merge contract.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import click
from sqlalchemy import CursorResult, insert, select, update

from crm_hello.models import Greeting  # importing the models puts hello_* on the shared metadata
from crmcore import FieldDefinition, MigrationBranch, ProfileSection, UnitOfWork, hookimpl
from crmcore.models import Customer

PLUGIN_ID = "hello"  # the same as the entry point name in pyproject.toml
__version__ = "0.1.0"
requires: tuple[str, ...] = ()  # ids of plugins that must be enabled first

log = logging.getLogger("crm_hello")
WORDS = {"en": "Hello", "de": "Hallo", "fr": "Bonjour"}
CHUNK = 5000  # ids per IN (...) list: stays under every engine's parameter limit


def greeting(name: str, attributes: dict[str, Any] | None) -> str:
    word = WORDS[(attributes or {}).get("hello_language", "en")]
    return f"{word}, {name}!"


def send_welcome(customer_id: int, text: str) -> None:
    """Stands in for mail or a webhook: something that must not happen if the change rolls back."""
    log.info("welcome sent to customer %s: %s", customer_id, text)


# -- extension hooks -----------------------------------------------------------------------

@hookimpl
def crm_register_migrations(register: Callable[[MigrationBranch], None]) -> None:
    register(MigrationBranch(label=PLUGIN_ID, versions=Path(__file__).parent / "migrations" / "versions"))


@hookimpl
def crm_register_custom_fields(register: Callable[[FieldDefinition], None]) -> None:
    register(FieldDefinition(name="hello_language", type="choice", choices=tuple(WORDS),
                             description="language of the greeting"))


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    from crm_hello.cli import hello  # imported here: `crm --help` of other commands does not load it

    cli.add_command(hello)


@hookimpl
def crm_customer_profile_sections(uow: UnitOfWork, customer: Customer) -> ProfileSection | None:
    texts = uow.session.scalars(
        select(Greeting.text).where(Greeting.customer_id == customer.id).order_by(Greeting.id.desc())).all()
    return ProfileSection(title="Hello", fields={"greetings": len(texts), "latest": texts[0]}) if texts else None


# -- in-transaction events -----------------------------------------------------------------

@hookimpl
def crm_customer_created(uow: UnitOfWork, customer: Customer) -> None:
    text = greeting(customer.name, customer.attributes)
    uow.session.add(Greeting(customer_id=customer.id, text=text))  # committed with the customer, or not at all
    cid = customer.id
    uow.on_commit(lambda: send_welcome(cid, text))  # only once the customer is really there


@hookimpl
def crm_customers_batch(uow: UnitOfWork, created_ids: Sequence[int]) -> None:
    """The bulk path (``crm import customers``): one call per batch, a few statements per batch."""
    ids = list(created_ids)
    for i in range(0, len(ids), CHUNK):
        rows = uow.session.execute(
            select(Customer.id, Customer.name, Customer.attributes).where(Customer.id.in_(ids[i:i + CHUNK]))).all()
        if rows:
            uow.session.execute(insert(Greeting), [
                {"customer_id": cid, "text": greeting(name, attrs)} for cid, name, attrs in rows])


# -- merge -----------------------------------------------------------------------------------

@hookimpl
def crm_merge_customers(uow: UnitOfWork, source_id: int, target_id: int) -> dict[str, int]:
    res = cast(CursorResult[Any], uow.session.execute(  # an UPDATE: a cursor result, with rowcount
        update(Greeting).where(Greeting.customer_id == source_id).values(customer_id=target_id)))
    return {"hello_greetings": res.rowcount}
