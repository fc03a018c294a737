"""One alembic environment: core versions plus a branch per plugin; upgrade → models match →
downgrade → upgrade, on SQLite and on PostgreSQL."""
from __future__ import annotations

from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from crmcore import CRM
from crmcore.db.base import Base
from crmcore.migrations import runner

CORE_TABLES = {"users", "customers", "contacts", "interactions", "accounts", "transactions", "audit_log", "plugin_state",
               "merge_journal", "plugin_registry", "api_tokens", "api_idempotency", "outbox_events",
               "webhook_subscriptions", "webhook_deliveries", "console_sessions"}


def test_core_and_plugin_branch_round_trip(empty_database_url, testplug):
    crm = CRM.open(empty_database_url, plugins=[("testplug", testplug)], entry_points=False, create=True, config={})
    try:
        assert crm.upgrade() == ["core", "testplug"]
        names = set(inspect(crm.engine).get_table_names())
        assert CORE_TABLES | {"testplug_notes", "alembic_version"} <= names
        own = CORE_TABLES | {"testplug_notes"}
        assert runner.schema_diff(crm.engine, own) == []

        branches = [b for bs in crm.migration_branches(crm.hooks.plugins).values() for b in bs]
        assert runner.current_heads(crm.engine, branches) == {"core": "0006_console", "testplug": "t001_testplug"}
        runner.downgrade_to_base(crm.engine, branches, "testplug")
        assert "testplug_notes" not in inspect(crm.engine).get_table_names()
        runner.downgrade_to_base(crm.engine, branches, "core")
        assert set(inspect(crm.engine).get_table_names()) <= {"alembic_version"}
        crm.upgrade()
        assert runner.schema_diff(crm.engine, own) == []
    finally:
        crm.close()


def test_every_core_model_table_is_migrated(empty_database_url):
    crm = CRM.open(empty_database_url, entry_points=False, create=True, config={})
    try:
        crm.upgrade()
        # the core's own models (plugins imported by other tests share the metadata)
        core_models = {m.local_table.name for m in Base.registry.mappers if m.class_.__module__.startswith("crmcore.")}
        assert core_models == CORE_TABLES
        assert runner.schema_diff(crm.engine, core_models) == []
    finally:
        crm.close()


def test_db_check_detects_drift(empty_database_url, cli):
    assert cli("init", database=empty_database_url).exit_code == 0
    res = cli("db", "check", database=empty_database_url)
    assert res.exit_code == 0, res.output
    crm = CRM.open(empty_database_url, entry_points=False, config={})
    with crm.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_customers_name"))
    crm.close()
    res = cli("db", "check", database=empty_database_url)
    assert res.exit_code == 2
    assert "differs from the models" in res.output


def test_db_current_and_upgrade_cli(empty_database_url, cli):
    assert cli("init", database=empty_database_url).exit_code == 0
    res = cli("db", "current", "--json", database=empty_database_url)
    assert res.exit_code == 0
    import json

    rows = {r["branch"]: r for r in json.loads(res.output)}
    assert rows["core"]["state"] == "up to date"
    assert cli("db", "upgrade", database=empty_database_url).exit_code == 0


def test_an_empty_branch_is_not_an_error(empty_database_url, tmp_path):
    """A plugin whose versions folder is empty (its author deleted the first revision to write
    it again): nothing to upgrade, show or downgrade, and the core's branch works as before."""
    from crmcore import MigrationBranch

    empty = MigrationBranch(label="blank", versions=tmp_path / "versions")
    empty.versions.mkdir()
    crm = CRM.open(empty_database_url, entry_points=False, create=True, config={})
    try:
        runner.upgrade(crm.engine, [empty], ["core", "blank"])
        assert runner.branch_heads([empty]) == {"core": "0006_console", "blank": None}
        assert runner.current_heads(crm.engine, [empty]) == {"core": "0006_console", "blank": None}
        runner.downgrade_to_base(crm.engine, [empty], "blank")
        assert runner.current_heads(crm.engine, [empty])["core"] == "0006_console"
        assert runner.labels_with_revisions(ScriptDirectory.from_config(runner.alembic_config([empty]))) >= {"core"}
        assert "blank" not in runner.labels_with_revisions(ScriptDirectory.from_config(runner.alembic_config([empty])))
    finally:
        crm.close()
