"""Start-up cost, structurally: a command imports what it uses and nothing more.

`crm customer list` with every installed plugin enabled once took ~1.6 s, most of it numpy,
scipy and psycopg pulled in by the plugins' hook modules, and alembic by ``crmcore.app``. A
timed test would be flaky on a busy machine; instead each command runs in a fresh process and
reports ``sys.modules`` at exit, and the heavy libraries must not be there (bench/
plugin_startup_bench.py has the timings). Both engines: the database is SQLite or PostgreSQL.
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


def modules_after(url: str, *args: str, tmp: Path) -> set[str]:
    """Top-level packages imported by ``crm ARGS`` in a fresh process (it must succeed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_") and k != "PYTHONPATH"}
    env.update(CRM_DATABASE_URL=url, PYTHONIOENCODING="utf-8")
    res = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=tmp, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    line = next(x for x in res.stderr.splitlines() if x.startswith("MODULES "))
    return {m.split(".")[0] for m in json.loads(line.removeprefix("MODULES "))}


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


def test_help_imports_neither_sqlalchemy_nor_plugins(tmp_path: Path) -> None:
    env_url = f"sqlite:///{tmp_path / 'none.db'}"  # never opened: --help does not touch the database
    mods = modules_after(env_url, "--help", tmp=tmp_path)
    assert "sqlalchemy" not in mods and not any(m.startswith("crm_") for m in mods)
    assert mods & HEAVY == set()
