"""Customer service: tickets and complaints with business-time SLAs, escalation, return visits, CSAT/NPS.

The crmcore hook implementations of the ``service`` plugin, and nothing else: the work lives in
:mod:`crm_service.tickets`, :mod:`crm_service.sla`, :mod:`crm_service.visits`,
:mod:`crm_service.surveys`, :mod:`crm_service.report` and :mod:`crm_service.mail`; the commands
in :mod:`crm_service.cli`. Importing this module registers the ``support_agent`` /
``service_manager`` roles; the ``service_*`` tables are registered on the shared metadata when the
schema is first needed (``defer_models``) and the settings class when it is configured or read.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from crm_service.console import (  # noqa: F401 - the web console hooks (console.py)
    crm_console_home_cards,
    crm_console_register,
)
from crmcore import MigrationBranch, Permission, ProfileSection, hookimpl
from crmcore.db import defer_models
from crmcore.models import Customer
from crmcore.sdk import declare_role
from crmcore.uow import UnitOfWork

defer_models("crm_service.models")  # the service_* tables: on the metadata when the schema is read

PLUGIN_ID = "service"  # crm_service.settings.PLUGIN_ID (not imported here: it loads the settings)
__version__ = "0.1.0"
requires: tuple[str, ...] = ()

_READ = ("customer.read", "interaction.write", "contact.write")
AGENT = declare_role("support_agent", "Handles tickets, return visits and surveys", _READ)
MANAGER = declare_role("service_manager", "Runs the service desk: assignment, SLA checks, reports", _READ)
_A, _SM, _M = AGENT, MANAGER, "manager"

MIGRATIONS = MigrationBranch(label=PLUGIN_ID, versions=Path(__file__).parent / "migrations" / "versions")
COMMANDS = {"service": "crm_service.cli:service"}  # imported when `crm service ...` runs
SETTINGS = "crm_service.settings:ServiceSettings"  # imported when configured or first read
BULK_ENTITIES = "crm_service.bulk_surveys:SURVEY_ANSWERS"  # crm import/export service_survey_answers (tickets: the hook below)
PERMISSIONS = (
    Permission("service.ticket.write", "Open tickets, add notes, move them through their statuses", (_A, _SM, _M, "sales")),
    Permission("service.ticket.assign", "Assign and reassign tickets to others", (_SM, _M)),
    Permission("service.ticket.reopen", "Reopen a resolved or closed ticket (within the reopen window)", (_A, _SM, _M)),
    Permission("service.sla.check", "Mark SLA breaches and escalate", (_SM, _M)),
    Permission("service.visit.write", "Schedule and complete return visits", (_A, _SM, _M)),
    Permission("service.survey.write", "Record CSAT and NPS answers", (_A, _SM, _M, "marketing")),
    Permission("service.report", "See service reports and NPS", (_SM, _M)),
)


@hookimpl
def crm_add_hookspecs(register: Callable[[Any], None]) -> None:
    from crm_service import hookspecs

    register(hookspecs)


@hookimpl
def crm_register_permissions(register: Callable[[Any], None]) -> None:
    for p in PERMISSIONS:
        register(p)


@hookimpl
def crm_register_migrations(register: Callable[[MigrationBranch], None]) -> None:
    register(MIGRATIONS)


@hookimpl
def crm_register_routes(router: Any) -> None:
    from crm_service.routes import register

    register(router)


@hookimpl
def crm_register_bulk_entities(register: Callable[[Any], None]) -> None:
    from crm_service.bulk import TICKETS

    register(TICKETS)


@hookimpl
def crm_customer_profile_sections(uow: UnitOfWork, customer: Customer) -> ProfileSection | None:
    from crm_service import views

    return views.profile_section(uow, customer)


@hookimpl
def crm_customer_timeline(uow: UnitOfWork, customer: Customer) -> list[Any] | None:
    from crm_service import views

    return views.timeline(uow, customer) or None


@hookimpl
def crm_merge_customers(uow: UnitOfWork, source_id: int, target_id: int) -> dict[str, int]:
    from crm_service import views

    return views.merge(uow, source_id, target_id)


@hookimpl(optionalhook=True)
def sales_opportunity_won(uow: UnitOfWork, opportunity: Any) -> None:
    """A won deal (sales_automation's published hook) schedules a return visit."""
    from crm_service import visits

    visits.after_won_deal(uow, opportunity)


@hookimpl
def crm_transaction_posted(uow: UnitOfWork, transaction: Any) -> None:
    from crm_service import visits

    visits.after_invoices(uow, [transaction.id])


@hookimpl
def crm_transactions_batch(uow: UnitOfWork, transaction_ids: Any) -> None:
    from crm_service import visits

    visits.after_invoices(uow, transaction_ids)


@hookimpl
def service_satisfaction(uow: UnitOfWork, customer_ids: list[int]) -> dict[int, dict[str, Any]]:
    from crm_service import surveys

    return surveys.satisfaction(uow, customer_ids)


@hookimpl
def service_complaints(uow: UnitOfWork, customer_ids: list[int], since: Any, until: Any) -> dict[int, int]:
    from crm_service import surveys

    return surveys.complaints(uow, customer_ids, since, until)


@hookimpl
def service_cost_to_serve(uow: UnitOfWork, customer_ids: list[int]) -> dict[int, float]:
    from crm_service import report

    return report.cost_to_serve(uow, customer_ids)
