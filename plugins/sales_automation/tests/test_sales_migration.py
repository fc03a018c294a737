"""The sales alembic branch: upgrade, in sync with the models, downgrade to base, upgrade again."""
from __future__ import annotations

import crm_sales_automation.plugin as PLUGIN
from crm_sales_automation import services
from crm_sales_automation.testing import Sales
from sqlalchemy import inspect

from crmcore import CRM
from crmcore.migrations import runner

TABLES = {"sales_pipelines", "sales_stages", "sales_leads", "sales_lead_assessments", "sales_conversions",
          "sales_opportunities", "sales_stage_changes", "sales_objections", "sales_activities", "sales_quotas",
          "sales_models"}


def test_branch_upgrade_matches_models_and_downgrades_cleanly(empty_database_url: str) -> None:
    crm = CRM.open(empty_database_url, plugins=[PLUGIN], entry_points=False, create=True, config={})
    try:
        labels = crm.upgrade()
        assert labels[0] == "core" and "sales" in labels
        assert set(runner.tables_with_prefix(crm.engine, "sales_")) == TABLES
        assert runner.schema_diff(crm.engine, TABLES) == []
        assert runner.current_heads(crm.engine, [PLUGIN.MIGRATIONS])["sales"] == "sales_0002"

        # the migrated schema works: a deal from creation to win
        s = Sales(crm)
        oid = s.opp(s.customer("Acme"), "100")
        s.move(oid, "closing")
        s.win(oid)
        with crm.unit_of_work() as uow:
            assert services.opportunity_detail(uow, oid)["status"] == "won"

        runner.downgrade_to_base(crm.engine, [PLUGIN.MIGRATIONS], "sales")
        assert runner.tables_with_prefix(crm.engine, "sales_") == []
        assert inspect(crm.engine).has_table("customers")  # the core is untouched
        assert runner.current_heads(crm.engine, [PLUGIN.MIGRATIONS])["sales"] is None

        crm.upgrade()
        assert set(runner.tables_with_prefix(crm.engine, "sales_")) == TABLES
        assert runner.schema_diff(crm.engine, TABLES) == []
    finally:
        crm.close()


def test_purge_plan_lists_the_plugin_tables(empty_database_url: str) -> None:
    crm = CRM.open(empty_database_url, plugins=[PLUGIN], entry_points=False, create=True, config={})
    try:
        crm.upgrade()
        assert set(crm.purge_plan("sales_automation")) == TABLES
    finally:
        crm.close()
