"""Marketing: segments compiled to SQL, campaigns, consent, delivery, classified responses, attribution, ROI and lift.

The crmcore hook implementations of the ``marketing`` plugin, and nothing else: commands live in
:mod:`crm_marketing.cli`, the work in :mod:`crm_marketing.services`, :mod:`~crm_marketing.delivery`,
:mod:`~crm_marketing.responses` and :mod:`~crm_marketing.reporting`.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crm_marketing.console import crm_console_register  # noqa: F401 - the web console hooks (console.py)
from crmcore import MigrationBranch, Permission, ProfileSection, hookimpl
from crmcore.db import defer_models
from crmcore.models import Customer
from crmcore.uow import UnitOfWork

if TYPE_CHECKING:
    import click

# the marketing_* tables: on the metadata when the schema is read, not for `crm customer list`
defer_models("crm_marketing.models")

PLUGIN_ID = "marketing"
__version__ = "0.1.0"
requires: tuple[str, ...] = ()

MIGRATIONS = MigrationBranch(label="marketing", versions=Path(__file__).parent / "migrations" / "versions")
COMMANDS = {"marketing": "crm_marketing.plugin:commands"}
SETTINGS = "crm_marketing.schemas:MarketingSettings"  # imported when configured or first read

_MGR, _MK = "manager", "marketing"
PERMISSIONS = (
    Permission("marketing.segment.write", "Create segments, add members, freeze them", (_MGR, _MK)),
    Permission("marketing.campaign.write", "Create campaigns, record their costs, change their status", (_MGR, _MK)),
    Permission("marketing.campaign.send", "Launch a campaign and send its messages", (_MGR, _MK)),
    Permission("marketing.response.write", "Record, import and derive campaign responses", (_MGR, _MK, "sales")),
    Permission("marketing.consent.write", "Record a customer's consent per channel", (_MGR, _MK, "sales")),
    Permission("marketing.report", "See campaign reports (campaign-wide counts, revenue, ROI, lift) while seeing only "
               "one's own customers ([visibility] \"own\"); users who see all customers need only customer.read",
               (_MGR, _MK)),
)


@hookimpl
def crm_add_hookspecs(register: Callable[[Any], None]) -> None:
    from crm_marketing import hookspecs

    register(hookspecs)


@hookimpl
def crm_register_permissions(register: Callable[[Any], None]) -> None:
    for p in PERMISSIONS:
        register(p)


@hookimpl
def crm_register_bulk_entities(register: Callable[[Any], None]) -> None:
    from crm_marketing.bulk import ENTITY
    from crm_marketing.bulk_people import ENTITIES as CONSENT_ENTITIES

    register(ENTITY)
    for entity in CONSENT_ENTITIES:  # ``crm import consent`` / ``customer_consent`` (bulk_people.py)
        register(entity)


def commands() -> click.Group:
    """The ``crm marketing`` group, imported when it runs (COMMANDS): the segment grammar (lark)
    and the templates (jinja2) come with it."""
    from crm_marketing.cli import marketing
    from crm_marketing.cli_people import register as register_people

    register_people(marketing)  # ``marketing contact-consent ...`` (cli_people.py)
    return marketing


@hookimpl
def crm_register_routes(router: Any) -> None:
    from crm_marketing.routes import register

    register(router)


@hookimpl
def crm_register_migrations(register: Callable[[MigrationBranch], None]) -> None:
    register(MIGRATIONS)


@hookimpl
def crm_customer_profile_sections(uow: UnitOfWork, customer: Customer) -> ProfileSection | None:
    from crm_marketing import views

    return views.profile_section(uow, customer)


@hookimpl
def crm_customer_timeline(uow: UnitOfWork, customer: Customer) -> list[Any] | None:
    from crm_marketing import views

    return views.timeline(uow, customer)


@hookimpl
def crm_merge_customers(uow: UnitOfWork, source_id: int, target_id: int) -> dict[str, int]:
    from crm_marketing import services

    return services.merge_customer_rows(uow, source_id, target_id)


@hookimpl
def marketing_send_message(uow: UnitOfWork, customer_id: int, channel: str, subject: str, body: str, key: str,
                           adapter: str) -> dict[str, Any]:
    """One message outside a campaign (the published hook): consent now, delivery after commit."""
    from crm_marketing.delivery import Message, adapters
    from crm_marketing.models import Consent
    from crm_marketing.services import settings

    s = settings(uow)
    factories = adapters(uow.crm, s)
    if adapter not in factories:
        return {"status": "suppressed", "reason": f"no channel adapter {adapter!r}"}
    customer = uow.customers.get(customer_id)
    consent = uow.session.get(Consent, (customer_id, channel))
    address = customer.email if channel == "email" else customer.phone
    reason = None
    if customer.archived:
        reason = "customer archived"
    elif consent is not None and consent.status in ("opt_out", "unsubscribed"):
        reason = f"consent: {consent.status}"
    elif channel in s.consent_required and (consent is None or consent.status != "opt_in"):
        reason = "consent: no opt-in"
    elif not address:
        reason = f"no {channel} address"
    if reason:
        return {"status": "suppressed", "reason": reason}
    message = Message(key, key, customer_id, channel, address, subject, body, message_id=f"<{key}-{customer_id}@crm>")  # type: ignore[arg-type]

    def deliver() -> None:
        a = factories[adapter]()
        a.open()
        try:
            a.send(message)
        finally:
            a.close()

    uow.on_commit(deliver)
    return {"status": "queued", "reason": None}


# value_analysis's published hooks, answered in crm_marketing.value_hooks (imported when asked)
@hookimpl(optionalhook=True)
def value_customer_costs(uow: Any, customer_ids: list[int], start: dt.date | None, end: dt.date,
                         register: Callable[[str, Mapping[int, float]], None]) -> None:
    from crm_marketing import value_hooks

    value_hooks.value_customer_costs(uow, customer_ids, start, end, register)


@hookimpl(optionalhook=True)
def value_loyalty_signals(uow: Any, customer_ids: list[int], start: dt.date | None, end: dt.date,
                          register: Callable[[str, Mapping[int, float]], None]) -> None:
    from crm_marketing import value_hooks

    value_hooks.value_loyalty_signals(uow, customer_ids, start, end, register)
