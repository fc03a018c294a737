"""The service alembic branch: upgrade, in sync with the models, downgrade to base, upgrade again."""
from __future__ import annotations

import crm_service.plugin as PLUGIN
from crm_service import tickets
from crm_service.schemas import TicketOpen

from crmcore import CRM
from crmcore.migrations import runner
from crmcore.schemas import CustomerCreate

TABLES = {"service_tickets", "service_ticket_notes", "service_mail_messages", "service_visits", "service_survey_answers"}


def test_branch_upgrade_matches_models_and_downgrades_cleanly(empty_database_url: str) -> None:
    crm = CRM.open(empty_database_url, plugins=[PLUGIN], entry_points=False, create=True, config={})
    try:
        assert "service" in crm.upgrade()
        assert set(runner.tables_with_prefix(crm.engine, "service_")) == TABLES
        assert runner.schema_diff(crm.engine, TABLES) == []
        assert runner.current_heads(crm.engine, [PLUGIN.MIGRATIONS])["service"] == "service_0005"
        with crm.unit_of_work() as uow:  # the migrated schema works
            cid = uow.customers.create(CustomerCreate(name="A")).id
            tickets.open_ticket(uow, cid, TicketOpen(subject="x", category="billing"))
        runner.downgrade_to_base(crm.engine, [PLUGIN.MIGRATIONS], "service")
        assert runner.tables_with_prefix(crm.engine, "service_") == []
        crm.upgrade()
        assert runner.schema_diff(crm.engine, TABLES) == []
    finally:
        crm.close()
