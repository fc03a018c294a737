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
               "webhook_subscriptions", "webhook_deliveries", "console_sessions", "transaction_allocations"}


def test_core_and_plugin_branch_round_trip(empty_database_url, testplug):
    crm = CRM.open(empty_database_url, plugins=[("testplug", testplug)], entry_points=False, create=True, config={})
    try:
        assert crm.upgrade() == ["core", "testplug"]
        names = set(inspect(crm.engine).get_table_names())
        assert CORE_TABLES | {"testplug_notes", "alembic_version"} <= names
        own = CORE_TABLES | {"testplug_notes"}
        assert runner.schema_diff(crm.engine, own) == []

        branches = [b for bs in crm.migration_branches(crm.hooks.plugins).values() for b in bs]
        assert runner.current_heads(crm.engine, branches) == {"core": "0010_ledger_allocations", "testplug": "t001_testplug"}
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
        assert runner.branch_heads([empty]) == {"core": "0010_ledger_allocations", "blank": None}
        assert runner.current_heads(crm.engine, [empty]) == {"core": "0010_ledger_allocations", "blank": None}
        runner.downgrade_to_base(crm.engine, [empty], "blank")
        assert runner.current_heads(crm.engine, [empty])["core"] == "0010_ledger_allocations"
        assert runner.labels_with_revisions(ScriptDirectory.from_config(runner.alembic_config([empty]))) >= {"core"}
        assert "blank" not in runner.labels_with_revisions(ScriptDirectory.from_config(runner.alembic_config([empty])))
    finally:
        crm.close()


# tables pointing at contacts and interactions the way plugin tables do: ON DELETE CASCADE (with a
# CASCADE grandchild), SET NULL and NO ACTION; SQLite's table copy must not touch any of their rows
_CHILDREN = {
    "kid_cascade": "contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE",
    "kid_grand": "kid_id INTEGER NOT NULL REFERENCES kid_cascade(id) ON DELETE CASCADE",
    "kid_null": "interaction_id INTEGER REFERENCES interactions(id) ON DELETE SET NULL",
    "kid_plain": "contact_id INTEGER REFERENCES contacts(id), interaction_id INTEGER REFERENCES interactions(id)",
}


def _children(conn) -> dict[str, list[tuple]]:
    return {t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY id"))] for t in _CHILDREN}


def _to(crm, revision: str, down: bool = False) -> None:
    from alembic import command

    cfg = runner.alembic_config([])
    with crm.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def test_0007_frees_roles_and_kinds_keeping_every_row(empty_database_url):
    """Through the migrations: before 0007 the database refuses the role "buyer"; after it the
    word is stored, the rows pointing at contacts and interactions are all kept (SQLite copies
    both tables), and the downgrade maps new words back (no role, kind ``other``) before the
    constraints return, again keeping every row."""
    import pytest
    from sqlalchemy.exc import IntegrityError

    from crmcore.schemas import CustomerCreate

    crm = CRM.open(empty_database_url, entry_points=False, create=True, config={})
    try:
        _to(crm, "0006_console")
        with crm.unit_of_work() as uow:
            cid = uow.customers.create(CustomerCreate(name="Acme")).id
        with crm.engine.begin() as conn:
            at = {"c": cid, "t": "2030-01-01 00:00:00"}
            conn.execute(text("INSERT INTO contacts (id, customer_id, name, role, created_at) VALUES "
                              "(1, :c, 'Gina', 'decider', :t), (2, :c, 'Gus', NULL, :t)"), at)
            conn.execute(text("INSERT INTO interactions (id, customer_id, channel, direction, kind, subject, occurred_at, "
                              "source, created_at) VALUES (1, :c, 'phone', 'inbound', 'sale', 'hi', :t, 'core', :t), "
                              "(2, :c, 'email', 'outbound', 'other', 'yo', :t, 'core', :t)"), at)
            for t, cols in _CHILDREN.items():
                conn.execute(text(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, {cols})"))
            conn.execute(text("INSERT INTO kid_cascade VALUES (1, 1), (2, 2)"))
            conn.execute(text("INSERT INTO kid_grand VALUES (1, 1), (2, 2), (3, 2)"))
            conn.execute(text("INSERT INTO kid_null VALUES (1, 1), (2, 2), (3, NULL)"))
            conn.execute(text("INSERT INTO kid_plain VALUES (1, 1, 2), (2, 2, NULL)"))
            before = _children(conn)
        with pytest.raises(IntegrityError), crm.engine.begin() as conn:
            conn.execute(text("UPDATE contacts SET role = 'buyer' WHERE id = 1"))

        _to(crm, "heads")
        with crm.engine.begin() as conn:
            assert _children(conn) == before
            conn.execute(text("UPDATE contacts SET role = 'buyer' WHERE id = 1"))
            conn.execute(text("UPDATE interactions SET kind = 'site_visit' WHERE id = 2"))
        assert runner.schema_diff(crm.engine, {"contacts", "interactions"}) == []

        _to(crm, "0006_console", down=True)
        with crm.engine.connect() as conn:
            assert _children(conn) == before
            assert conn.execute(text("SELECT id, role FROM contacts ORDER BY id")).all() == [(1, None), (2, None)]
            assert conn.execute(text("SELECT id, kind FROM interactions ORDER BY id")).all() == [(1, "sale"), (2, "other")]
        with pytest.raises(IntegrityError), crm.engine.begin() as conn:
            conn.execute(text("UPDATE interactions SET kind = 'site_visit' WHERE id = 1"))
        with crm.engine.begin() as conn:  # the foreign keys still hold after the copies
            assert conn.execute(text("SELECT count(*) FROM kid_grand JOIN kid_cascade ON kid_cascade.id = kid_grand.kid_id "
                                     "JOIN contacts ON contacts.id = kid_cascade.contact_id")).scalar_one() == 3
        _to(crm, "heads")
        with crm.engine.connect() as conn:
            assert _children(conn) == before
        assert runner.current_heads(crm.engine, [])["core"] == "0010_ledger_allocations"
    finally:
        crm.close()
