"""The value_analysis alembic branch: upgrade, in sync with the models, downgrade to base, upgrade again."""
from __future__ import annotations

import crm_value_analysis.plugin as PLUGIN
from crm_value_analysis import services
from crm_value_analysis.testing import Base, d
from sqlalchemy import inspect

from crmcore import CRM
from crmcore.migrations import runner

TABLES = {"value_analysis_runs", "value_analysis_customer_values", "value_analysis_churn_reasons"}


def test_branch_upgrade_matches_models_and_downgrades_cleanly(empty_database_url: str) -> None:
    crm = CRM.open(empty_database_url, plugins=[PLUGIN], entry_points=False, create=True, config={})
    try:
        labels = crm.upgrade()
        assert labels[0] == "core" and "value_analysis" in labels
        assert set(runner.tables_with_prefix(crm.engine, "value_analysis_")) == TABLES
        assert runner.schema_diff(crm.engine, TABLES) == []
        heads = runner.current_heads(crm.engine, [PLUGIN.MIGRATIONS])
        assert heads["value_analysis"] == "va_0004"

        # the migrated schema works: one run end to end
        b = Base(crm)
        c = b.customer("A")
        b.buys(c, [1, 5], "10")
        with crm.unit_of_work() as uow:
            services.run_analysis(uow, as_of=d(10))

        runner.downgrade_to_base(crm.engine, [PLUGIN.MIGRATIONS], "value_analysis")
        assert runner.tables_with_prefix(crm.engine, "value_analysis_") == []
        assert inspect(crm.engine).has_table("customers")  # the core is untouched
        assert runner.current_heads(crm.engine, [PLUGIN.MIGRATIONS])["value_analysis"] is None

        crm.upgrade()
        assert set(runner.tables_with_prefix(crm.engine, "value_analysis_")) == TABLES
        assert runner.schema_diff(crm.engine, TABLES) == []
    finally:
        crm.close()


def test_remove_plugin_drops_its_tables(empty_database_url: str) -> None:
    """`crm plugins remove --purge` goes through the same branch (purge plan = our tables)."""
    crm = CRM.open(empty_database_url, plugins=[PLUGIN], entry_points=False, create=True, config={})
    try:
        crm.upgrade()
        assert set(crm.purge_plan("value_analysis")) == TABLES
    finally:
        crm.close()
