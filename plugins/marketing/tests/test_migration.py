"""The marketing alembic branch: upgrade, in sync with the models, downgrade to base, upgrade again."""
from __future__ import annotations

import crm_marketing.plugin as PLUGIN
from crm_marketing import services
from crm_marketing.testing import Shop
from sqlalchemy import inspect

from crmcore import CRM
from crmcore.migrations import runner

TABLES = {"marketing_segments", "marketing_segment_members", "marketing_consents", "marketing_campaigns",
          "marketing_contact_consents", "marketing_contact_targets",
          "marketing_campaign_segments", "marketing_variants", "marketing_costs", "marketing_targets", "marketing_responses"}


def test_branch_upgrade_matches_models_and_downgrades_cleanly(empty_database_url: str) -> None:
    crm = CRM.open(empty_database_url, plugins=[PLUGIN], entry_points=False, create=True, config={})
    try:
        labels = crm.upgrade()
        assert labels[0] == "core" and "marketing" in labels
        assert set(runner.tables_with_prefix(crm.engine, "marketing_")) == TABLES
        assert runner.schema_diff(crm.engine, TABLES) == []
        assert runner.current_heads(crm.engine, [PLUGIN.MIGRATIONS])["marketing"] == "mk_0004"

        Shop(crm).customer("A", country="DE")  # the migrated schema works
        with crm.unit_of_work("test") as uow:
            services.create_segment(uow, "de", rule='country = "DE" and spend(days=30) >= 0')

        runner.downgrade_to_base(crm.engine, [PLUGIN.MIGRATIONS], "marketing")
        assert runner.tables_with_prefix(crm.engine, "marketing_") == []
        assert inspect(crm.engine).has_table("customers")
        crm.upgrade()
        assert runner.schema_diff(crm.engine, TABLES) == []
        assert set(crm.purge_plan("marketing")) == TABLES
    finally:
        crm.close()
