"""Warranty claims: declarations and hooks only (the glue the plugin guide counts); the work is in
:mod:`crm_warranty.claims`."""
from __future__ import annotations

from pathlib import Path

from crm_warranty import claims  # imports the models: the warranty_claims table is on the metadata
from crmcore import MigrationBranch, Permission, ProfileSection, UnitOfWork, hookimpl
from crmcore.models import Customer
from crmcore.sdk import declare_role

PLUGIN_ID = "warranty"
__version__ = "0.1.0"

CLERK = declare_role("warranty_clerk", "Records and decides warranty claims", ("customer.read", "interaction.write"))
MIGRATIONS = MigrationBranch(label=PLUGIN_ID, versions=Path(__file__).parent / "migrations" / "versions")
SETTINGS = "crm_warranty.settings:WarrantySettings"
PERMISSIONS = (Permission("warranty.write", "Record warranty claims", (CLERK, "sales", "manager")),
               Permission("warranty.decide", "Approve or reject warranty claims", (CLERK, "manager")))
BULK_ENTITIES = "crm_warranty.claims:BULK"
COMMANDS = "crm_warranty.cli:warranty"
ROUTES = "crm_warranty.routes:router"


@hookimpl
def crm_customer_profile_sections(uow: UnitOfWork, customer: Customer) -> ProfileSection | None:
    return claims.profile_section(uow, customer)


@hookimpl
def crm_merge_customers(uow: UnitOfWork, source_id: int, target_id: int) -> dict[str, int]:
    return claims.merge(uow, source_id, target_id)
