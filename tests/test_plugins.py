"""Plugin lifecycle through real entry points: list, enable, disable, remove --purge, blocking."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import inspect

from crmcore import CRM
from crmcore.db.engine import create_crm_engine


@pytest.fixture
def db(empty_database_url, cli, installed_plugins):
    assert cli("init", database=empty_database_url).exit_code == 0
    return empty_database_url


def plugins_json(cli, db):
    res = cli("plugins", "list", "--json", database=db)
    assert res.exit_code == 0, res.output
    return {p["id"]: p for p in json.loads(res.output)}


def tables(url):
    engine = create_crm_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_list_shows_installed_disabled_requires_and_broken(cli, db):
    p = plugins_json(cli, db)
    assert p["testplug"]["version"] == "1.2.3"
    assert p["testplug"]["enabled"] is False
    assert p["testplug"]["migrations"] == "testplug: not applied"
    assert p["needy"]["requires"] == ["testplug"]
    assert "crm_broken needs a library" in p["broken"]["error"]
    assert p["testplug"]["error"] is None


def test_enable_checks_requirements_runs_migrations_and_is_idempotent(cli, db):
    res = cli("plugins", "enable", "needy", database=db)
    assert res.exit_code == 1
    assert "requires testplug; enable it first" in res.output
    assert "testplug_notes" not in tables(db)

    res = cli("plugins", "enable", "testplug", database=db)
    assert res.exit_code == 0, res.output
    assert "testplug_notes" in tables(db)
    assert cli("plugins", "enable", "testplug", database=db).exit_code == 0  # idempotent
    assert plugins_json(cli, db)["testplug"]["migrations"] == "testplug: up to date"
    assert cli("plugins", "enable", "needy", database=db).exit_code == 0
    assert cli("db", "check", database=db).exit_code == 0


def test_enabled_plugin_hooks_and_commands_are_live_disable_stops_them(cli, db, installed_plugins):
    cli("plugins", "enable", "testplug", database=db)
    assert "hello from testplug" in cli("testplug", "hello", database=db).output
    assert cli("customer", "add", "Acme", database=db).exit_code == 0
    assert [h for h, _ in installed_plugins.CALLS] == ["crm_customer_created"]

    res = cli("plugins", "disable", "testplug", database=db)
    assert res.exit_code == 0 and "data is kept" in res.output
    assert cli("testplug", "hello", database=db).exit_code == 2  # the command disappeared
    installed_plugins.CALLS.clear()
    assert cli("customer", "add", "Beta", database=db).exit_code == 0
    assert installed_plugins.CALLS == []  # hooks no longer called
    assert "testplug_notes" in tables(db)  # data stays


def test_disable_refused_while_required(cli, db):
    cli("plugins", "enable", "testplug", database=db)
    cli("plugins", "enable", "needy", database=db)
    res = cli("plugins", "disable", "testplug", database=db)
    assert res.exit_code == 1
    assert "required by enabled plugin(s) needy" in res.output


def test_broken_plugin_cannot_be_enabled_and_does_not_stop_the_core(cli, db):
    res = cli("plugins", "enable", "broken", database=db)
    assert res.exit_code == 1 and "cannot be enabled" in res.output
    # even if marked enabled behind our back, the core and the other plugins keep working
    crm = CRM.open(db)
    crm.plugin_state("broken", True)
    crm.close()
    crm = CRM.open(db)
    assert "broken" in crm.unavailable and "ImportError" in crm.unavailable["broken"].error
    crm.close()
    assert cli("customer", "list", database=db).exit_code == 0


def test_remove_purge_dry_run_then_remove(cli, db):
    cli("plugins", "enable", "testplug", database=db)
    cli("customer", "add", "Acme", database=db)
    res = cli("plugins", "remove", "testplug", "--purge", "--dry-run", database=db)
    assert res.exit_code == 0
    assert "testplug_notes" in res.output and "1" in res.output and "dry run" in res.output
    assert "testplug_notes" in tables(db)

    res = cli("plugins", "remove", "testplug", "--purge", "--yes", database=db)
    assert res.exit_code == 1 and "disable it first" in res.output
    cli("plugins", "disable", "testplug", database=db)
    res = cli("plugins", "remove", "testplug", "--purge", "--yes", database=db)
    assert res.exit_code == 0, res.output
    assert "testplug_notes" not in tables(db)
    assert plugins_json(cli, db)["testplug"]["migrations"] == "testplug: not applied"
    # and it can come back
    assert cli("plugins", "enable", "testplug", database=db).exit_code == 0
    assert "testplug_notes" in tables(db)


def test_remove_without_purge_flag_is_refused(cli, db):
    res = cli("plugins", "remove", "testplug", database=db)
    assert res.exit_code == 2 and "--purge" in res.output


def test_unknown_plugin(cli, db):
    res = cli("plugins", "enable", "nope", database=db)
    assert res.exit_code == 1 and "plugin 'nope'" in res.output and "testplug" in res.output


def test_emergency_block_env(cli, db, monkeypatch, installed_plugins):
    cli("plugins", "enable", "testplug", database=db)
    monkeypatch.setenv("CRM_DISABLE_PLUGINS", "testplug")
    assert cli("testplug", "hello", database=db).exit_code == 2
    installed_plugins.CALLS.clear()
    cli("customer", "add", "Acme", database=db)
    assert installed_plugins.CALLS == []
    crm = CRM.open(db)
    assert "blocked" in crm.unavailable["testplug"].error
    crm.close()
