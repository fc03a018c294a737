"""Customer value analysis: RFM, value pyramid, Pareto, key-account dependency, lifecycle, churn, loyalty and CLV.

The crmcore hook implementations of the ``value_analysis`` plugin, and nothing else: the
commands live in :mod:`crm_value_analysis.cli`, the work in :mod:`crm_value_analysis.services`.
Importing this module imports nothing heavier than the core: the plugin's tables are registered
on the shared metadata when the schema is first needed (``defer_models``), numpy, scipy and
psycopg come with the work modules, imported inside the hooks that use them, and the settings
class is a lazy reference (``SETTINGS``), so ``crm customer list`` does not pay for them
(tests/test_startup_imports.py).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from crm_value_analysis.console import (  # noqa: F401 - the web console hooks (console.py)
    crm_console_home_cards,
    crm_console_register,
)
from crmcore import MigrationBranch, Permission, ProfileSection, hookimpl
from crmcore.db import defer_models
from crmcore.models import Customer
from crmcore.uow import UnitOfWork

defer_models("crm_value_analysis.models")  # the value_analysis_* tables: on the metadata when the schema is read

PLUGIN_ID = "value_analysis"
__version__ = "0.1.0"
requires: tuple[str, ...] = ()

MIGRATIONS = MigrationBranch(label="value_analysis", versions=Path(__file__).parent / "migrations" / "versions")
# imported when the settings are first needed (crmcore.settings): its validators pull in numpy
SETTINGS = "crm_value_analysis.schemas:ValueSettings"
COMMANDS = {"value": "crm_value_analysis.cli:value"}  # imported when `crm value ...` runs


@hookimpl
def crm_add_hookspecs(register: Callable[[Any], None]) -> None:
    from crm_value_analysis import hookspecs

    register(hookspecs)


@hookimpl
def crm_register_routes(router: Any) -> None:
    from crm_value_analysis import routes_v3
    from crm_value_analysis.routes import register

    register(router)
    routes_v3.register(router)


@hookimpl
def crm_register_migrations(register: Callable[[MigrationBranch], None]) -> None:
    register(MIGRATIONS)


@hookimpl
def crm_register_permissions(register: Callable[[Any], None]) -> None:
    # value reports are about the whole customer base (tiers, shares, totals): an "own" user needs this
    register(Permission("value.report", "See value reports (tiers, segments, shares and totals over every customer) "
                        "while seeing only one's own customers ([visibility] \"own\")", ("manager",)))


@hookimpl
def crm_customer_profile_sections(uow: UnitOfWork, customer: Customer) -> ProfileSection | None:
    from crm_value_analysis import section  # not services: `crm customer show` needs no SciPy

    return section.profile_section(uow, customer)


@hookimpl
def crm_merge_customers(uow: UnitOfWork, source_id: int, target_id: int) -> dict[str, int]:
    from crm_value_analysis import churn_reasons, section
    from crm_value_analysis.models import ChurnReason

    return {**section.merge_customer_rows(uow, source_id, target_id),
            ChurnReason.__tablename__: churn_reasons.merge_rows(uow, source_id, target_id)}


@hookimpl
def value_customer_tiers(uow: UnitOfWork, customer_ids: list[int], tiers: list[str]) -> dict[int, str]:
    """One query per tier asked over the latest snapshot; no run yet, or an unknown tier, is no match."""
    from crm_value_analysis import services
    from crmcore.errors import CRMError

    wanted, out = set(customer_ids), dict[int, str]()
    for tier in sorted(set(tiers)):
        try:
            ids = services.select_customers(uow, tiers=[tier])
        except CRMError:  # NoRunYet, or a tier name this plugin does not have
            continue
        out.update((cid, tier) for cid in ids if cid in wanted)
    return out


@hookimpl
def value_segment_columns(uow: UnitOfWork) -> Any:
    """The latest run's segment fields as a selectable (marketing's rules join it; see published.py)."""
    from crm_value_analysis.published import segment_columns

    return segment_columns()


@hookimpl
def value_customer_lost(uow: UnitOfWork, customer_id: int, reason: str, note: str | None, source: str) -> dict[str, Any] | None:
    from crm_value_analysis import churn_reasons

    return churn_reasons.record_loss_for_plugin(uow, customer_id, reason, note, source)
