"""Sales automation: leads with five-factor assessment, pipelines, deals, activities, forecasts.

The crmcore hook implementations of the ``sales_automation`` plugin, and nothing else: the
commands live in :mod:`crm_sales_automation.cli`, the work in :mod:`crm_sales_automation.services`
and :mod:`crm_sales_automation.analytics`. Importing this module declares the vocabularies;
the ``sales_*`` tables are registered on the shared metadata when the schema is first needed
(``defer_models``), and the work modules (numpy in lead scoring) and the settings class are
imported inside the hooks that use them (tests/test_startup_imports.py).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from crm_sales_automation import (
    vocabulary,  # noqa: F401 - declares lead_sources, lost_reasons, won_reasons before crm.toml is checked
)
from crm_sales_automation.console import (  # noqa: F401 - the web console hooks (console.py)
    crm_console_home_cards,
    crm_console_register,
)
from crmcore import MigrationBranch, Permission, ProfileSection, TimelineEntry, hookimpl
from crmcore.db import defer_models
from crmcore.models import Customer
from crmcore.uow import UnitOfWork

defer_models("crm_sales_automation.models")  # the sales_* tables: on the metadata when the schema is read

PLUGIN_ID = "sales_automation"
__version__ = "0.1.0"
requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class SalesBranch(MigrationBranch):
    """The branch is labelled by the plugin id; its tables keep their short ``sales_`` prefix.

    Databases migrated while the label was ``sales`` upgrade unchanged: alembic stores revision
    ids (``sales_0001``, ``sales_0002``), never labels, and the core re-records the label and
    prefix of a branch at each upgrade.
    """

    @property
    def table_prefix(self) -> str:
        return "sales_"


MIGRATIONS = SalesBranch(label=PLUGIN_ID, versions=Path(__file__).parent / "migrations" / "versions")
SETTINGS = "crm_sales_automation.schemas:SalesSettings"  # imported when configured or first read
COMMANDS = {"sales": "crm_sales_automation.cli:sales"}  # imported when `crm sales ...` runs
ROUTES = "crm_sales_automation.routes:register"
BULK_ENTITIES = "crm_sales_automation.bulk:LEADS"

_M, _S = "manager", "sales"
PERMISSIONS = (
    Permission("sales.lead.write", "Add, assess, qualify and convert leads; learn lead scores", (_M, _S)),
    Permission("sales.opportunity.write", "Add and change opportunities and their objections", (_M, _S)),
    Permission("sales.opportunity.move", "Move an opportunity between stages, or lose it", (_M, _S)),
    Permission("sales.opportunity.reopen", "Reopen a lost opportunity (winning it is checked again)", (_M, _S)),
    Permission("sales.opportunity.win", "Win an opportunity and invoice it", (_M, _S)),
    Permission("sales.activity.write", "Add and complete activities", (_M, _S)),
    Permission("sales.pipeline.manage", "Create pipelines", (_M,)),
    Permission("sales.quota.manage", "Set sales quotas", (_M,)),
    Permission("sales.handover", "Hand a rep's leads, deals and activities over to another user", (_M,)),
)


@hookimpl
def crm_add_hookspecs(register: Callable[[Any], None]) -> None:
    from crm_sales_automation import hookspecs

    register(hookspecs)


@hookimpl
def crm_customer_profile_sections(uow: UnitOfWork, customer: Customer) -> ProfileSection | None:
    from crm_sales_automation import services

    return services.profile_section(uow, customer)  # type: ignore[no-any-return,unused-ignore]


@hookimpl
def crm_customer_timeline(uow: UnitOfWork, customer: Customer) -> list[TimelineEntry] | None:
    from crm_sales_automation import services

    return services.timeline(uow, customer) or None


@hookimpl
def crm_merge_customers(uow: UnitOfWork, source_id: int, target_id: int) -> dict[str, int]:
    from crm_sales_automation import services

    return services.merge_customer_rows(uow, source_id, target_id)


@hookimpl
def sales_uninvoiced_won(uow: UnitOfWork, customer_id: int, currency: str) -> Decimal | None:
    from crm_sales_automation import services

    total = services.uninvoiced_won(uow, customer_id, currency)
    return total if total else None


from crm_sales_automation.value_hooks import value_loyalty_signals  # noqa: E402, F401 - value_analysis's published hooks
