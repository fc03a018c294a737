"""The credit alembic branch: upgrade, in sync with the models, downgrade to base, upgrade again."""
from __future__ import annotations

from decimal import Decimal

import crm_credit.plugin as PLUGIN
from crm_credit import services
from crm_credit.schemas import ProfileUpdate
from crm_credit.testing import Book
from sqlalchemy import inspect

from crmcore import CRM
from crmcore.migrations import runner

TABLES = {"credit_profiles", "credit_profile_changes", "credit_scores", "credit_models", "credit_model_scores",
          "credit_releases", "credit_dunning_items", "credit_dunning_events", "credit_charges", "credit_discounts",
          "credit_warnings", "credit_grade_changes"}


def test_branch_upgrade_matches_models_and_downgrades_cleanly(empty_database_url: str) -> None:
    crm = CRM.open(empty_database_url, plugins=[PLUGIN], entry_points=False, create=True, config={})
    try:
        labels = crm.upgrade()
        assert labels[0] == "core" and "credit" in labels
        assert set(runner.tables_with_prefix(crm.engine, "credit_")) == TABLES
        assert runner.schema_diff(crm.engine, TABLES) == []
        assert runner.current_heads(crm.engine, [PLUGIN.MIGRATIONS])["credit"] == "cr_0004"

        b = Book(crm)  # the migrated schema works
        a = b.customer("A")
        with crm.unit_of_work() as uow:
            services.set_profile(uow, a, ProfileUpdate(limit=Decimal(10)))
        b.invoice(a, "10", "I1")

        runner.downgrade_to_base(crm.engine, [PLUGIN.MIGRATIONS], "credit")
        assert runner.tables_with_prefix(crm.engine, "credit_") == []
        assert inspect(crm.engine).has_table("customers")
        assert runner.current_heads(crm.engine, [PLUGIN.MIGRATIONS])["credit"] is None

        crm.upgrade()
        assert set(runner.tables_with_prefix(crm.engine, "credit_")) == TABLES
        assert runner.schema_diff(crm.engine, TABLES) == []
    finally:
        crm.close()


def test_purge_plan_is_our_tables(empty_database_url: str) -> None:
    crm = CRM.open(empty_database_url, plugins=[PLUGIN], entry_points=False, create=True, config={})
    try:
        crm.upgrade()
        assert set(crm.purge_plan("credit")) == TABLES
    finally:
        crm.close()
