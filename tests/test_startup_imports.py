"""Start-up cost, structurally: a command imports what it uses and nothing more.

`crm customer list` with every installed plugin enabled once took ~1.6 s, most of it numpy,
scipy and psycopg pulled in by the plugins' hook modules, and alembic by ``crmcore.app``. A
timed test would be flaky on a busy machine; instead each command runs in a fresh process and
reports ``sys.modules`` at exit, and the heavy libraries must not be there (bench/
plugin_startup_bench.py has the timings). Both engines: the database is SQLite or PostgreSQL.

What was made lazy since, so it cannot come back: the plugins' models (``defer_models``: mapped
when the schema is read, or by the plugin's own code), their settings classes and
pydantic-settings (``SETTINGS = "pkg.mod:Class"``), value_analysis's cost and loyalty hooks of
credit and marketing, the schemas of the ledger, users and interactions (``crmcore.schemas`` is
a lazy package) and the address, phone and currency libraries (loaded by the first value that
needs them).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crmcore import CRM
from crmcore.plugins import installed_entry_points

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ("credit", "marketing", "sales_automation", "service", "value_analysis")
# never needed to list customers: numerics, the HTTP stack, templates, the segment grammar, migrations
HEAVY = frozenset({"numpy", "scipy", "pandas", "sklearn", "optbinning", "lark", "jinja2", "fastapi", "starlette",
                   "uvicorn", "alembic", "mako", "psycopg"})
PROBE = """
import atexit, json, sys
atexit.register(lambda: print("MODULES " + json.dumps(sorted(sys.modules)), file=sys.stderr))
from crmcore.cli import main
main(sys.argv[1:])
"""


# never needed to list or show customers: libraries for values the command does not validate
VALUE_LIBRARIES = frozenset({"phonenumbers", "email_validator", "pycountry", "iso4217"})
# the plugins' modules that `crm customer list` must not import: tables, settings, value hooks
PLUGIN_LAZY = frozenset({f"crm_{p}.models" for p in PLUGINS} | {
    "crm_credit.settings", "crm_credit.value_costs", "crm_marketing.schemas", "crm_marketing.value_hooks",
    "crm_service.settings"})


def all_modules_after(url: str, *args: str, tmp: Path) -> set[str]:
    """Every module imported by ``crm ARGS`` in a fresh process (it must succeed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_") and k != "PYTHONPATH"}
    env.update(CRM_DATABASE_URL=url, PYTHONIOENCODING="utf-8")
    res = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=tmp, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    line = next(x for x in res.stderr.splitlines() if x.startswith("MODULES "))
    return set(json.loads(line.removeprefix("MODULES ")))


def modules_after(url: str, *args: str, tmp: Path) -> set[str]:
    """Top-level packages imported by ``crm ARGS`` in a fresh process (it must succeed)."""
    return {m.split(".")[0] for m in all_modules_after(url, *args, tmp=tmp)}


@pytest.fixture
def all_plugins_db(empty_database_url: str, cli, tmp_path: Path) -> str:
    assert set(PLUGINS) <= set(installed_entry_points()), "the test needs the five plugins installed"
    res = cli("init", database=empty_database_url)
    assert res.exit_code == 0, res.output
    with CRM.open(empty_database_url) as crm:
        for pid in PLUGINS:
            crm.enable_plugin(pid)
    res = cli("customer", "add", "Acme Ltd", database=empty_database_url)
    assert res.exit_code == 0, res.output
    return empty_database_url


def test_customer_commands_do_not_import_the_plugins_heavy_libraries(all_plugins_db: str, tmp_path: Path) -> None:
    listed = modules_after(all_plugins_db, "customer", "list", tmp=tmp_path)
    assert {f"crm_{p}" for p in PLUGINS} <= listed  # the plugins were loaded (their hooks registered) ...
    driver = {"psycopg"} if all_plugins_db.startswith("postgresql") else set()  # the engine's own driver
    assert listed & (HEAVY - driver) == set()  # ... without their numerics, HTTP stack, templates or migrations
    assert modules_after(all_plugins_db, "customer", "show", "#1", tmp=tmp_path) & {"scipy", "fastapi", "alembic"} == set()
    # a plugin's command imports its own command module, not the other plugins' (lark, jinja2) nor the core's
    assert modules_after(all_plugins_db, "service", "--help", tmp=tmp_path) & {"lark", "jinja2", "scipy", "alembic"} == set()


def test_customer_list_maps_no_plugin_table_and_loads_no_plugin_settings(all_plugins_db: str, tmp_path: Path) -> None:
    listed = all_modules_after(all_plugins_db, "customer", "list", tmp=tmp_path)
    assert {f"crm_{p}.plugin" for p in PLUGINS} <= listed  # the hooks are registered ...
    assert listed & PLUGIN_LAZY == set()  # ... their tables, settings and value hooks are not imported
    assert {m.split(".")[0] for m in listed} & VALUE_LIBRARIES == set()
    # the ledger's, users' and interactions' schemas are not built for a customer list
    assert listed & {"crmcore.schemas.account", "crmcore.schemas.user", "crmcore.schemas.interaction"} == set()
    # the 360° view maps what its sections read, through the plugins' own imports
    shown = all_modules_after(all_plugins_db, "customer", "show", "#1", tmp=tmp_path)
    assert {"crm_credit.models", "crm_value_analysis.models"} <= shown


def test_a_command_without_plugins_loads_no_settings_library(empty_database_url: str, cli, tmp_path: Path) -> None:
    res = cli("init", database=empty_database_url)
    assert res.exit_code == 0, res.output
    res = cli("customer", "add", "Acme Ltd", database=empty_database_url)
    assert res.exit_code == 0, res.output
    listed = modules_after(empty_database_url, "customer", "list", tmp=tmp_path)
    assert "sqlalchemy" in listed and not any(m.startswith("crm_") for m in listed)
    assert listed & ({"pydantic_settings", "numpy", "alembic"} | VALUE_LIBRARIES) == set()
    shown = modules_after(empty_database_url, "customer", "show", "#1", tmp=tmp_path)  # its ledger section: iso4217
    assert shown & {"pydantic_settings", "numpy", "alembic", "phonenumbers", "email_validator"} == set()


DEFERRED_PROBE = """
import sys
import crm_credit.plugin
from crmcore.db import metadata
assert "crm_credit.models" not in sys.modules, "imported with the hook module"
names = {t.name for t in metadata.sorted_tables}
assert "crm_credit.models" in sys.modules and "credit_profiles" in names, sorted(names)
print("ok")
"""


def test_a_deferred_plugin_models_module_is_on_the_metadata_when_the_schema_is_read(tmp_path: Path) -> None:
    """Reading the whole schema (creating tables, the migrations, `crm db check`) imports the
    deferred models first: no plugin table is ever missing from what is created or compared."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_") and k != "PYTHONPATH"}
    res = subprocess.run([sys.executable, "-c", DEFERRED_PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_asking_for_migrations_maps_the_deferred_models(tmp_path: Path) -> None:
    probe = ("import sys\nimport crm_service.plugin as P\nfrom crmcore.plugins import call_register_hook, describe\n"
             "assert 'crm_service.models' not in sys.modules\n"
             "call_register_hook(describe('service', P), 'crm_register_migrations')\n"
             "from crmcore.db.base import Base\n"
             "assert any(m.local_table.name.startswith('service_') for m in Base.registry.mappers)\nprint('ok')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_") and k != "PYTHONPATH"}
    res = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_help_imports_neither_sqlalchemy_nor_plugins(tmp_path: Path) -> None:
    env_url = f"sqlite:///{tmp_path / 'none.db'}"  # never opened: --help does not touch the database
    mods = modules_after(env_url, "--help", tmp=tmp_path)
    assert "sqlalchemy" not in mods and not any(m.startswith("crm_") for m in mods)
    assert mods & HEAVY == set()
