"""Plugin platform 2, §1: a broken plugin never breaks the others and never silently weakens a rule.

Through real entry points (a dist-info directory on sys.path, as pip writes it), on SQLite and
PostgreSQL: a misspelt-hook plugin installed next to good ones, an enabled plugin that cannot
load (writes refused, reads warn, blocking lets writes go on), the merge journal replayed on
enable, audit of plugin administration, a failing plugin migration, and a plugin uninstalled
while its branch is applied (upgrade still works, purge still works).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text

from crmcore import CRM, PluginUnavailable
from crmcore.db.engine import create_crm_engine
from crmcore.migrations import runner
from crmcore.models import AuditEntry, MergeJournal
from crmcore.schemas import CustomerCreate

TESTPLUGIN_DIR = Path(__file__).parent / "testplugin"
ENTRY_POINTS = """[crmcore.plugins]
testplug = crm_testplug.plugin
typo = crm_typo
broken = crm_broken
publisher = crm_publisher
subscriber = crm_subscriber
strict = crm_strict
"""


def install(site: Path, name: str, entry_points: str, version: str = "1.2.3") -> Path:
    dist = site / f"{name}-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (dist / "entry_points.txt").write_text(entry_points)
    return dist


@pytest.fixture
def site(tmp_path, monkeypatch, testplug):
    site = tmp_path / "site"
    install(site, "crm_platform_testplugins", ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("CRM_DISABLE_PLUGINS", raising=False)
    for name in ("crm_broken", "crm_typo"):
        sys.modules.pop(name, None)
    return site


@pytest.fixture
def db(empty_database_url, cli, site):
    res = cli("init", database=empty_database_url)
    assert res.exit_code == 0, res.output
    return empty_database_url


def tables(url: str) -> set[str]:
    engine = create_crm_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def listed(cli, db) -> dict[str, dict]:
    res = cli("plugins", "list", "--json", database=db)
    assert res.exit_code == 0, res.output
    return {p["id"]: p for p in json.loads(res.stdout)}


# -- a plugin that does not fit the contract is treated like an import error ------------------------

def test_misspelt_hook_plugin_never_stops_admin_commands(cli, db):
    plugins = listed(cli, db)
    assert "unknown hook(s) crm_customer_creatd" in plugins["typo"]["error"]
    assert plugins["testplug"]["error"] is None and plugins["publisher"]["error"] is None
    assert "ImportError" in plugins["broken"]["error"]
    # strict implements publisher_extra without optionalhook: fine, since publisher is installed
    assert plugins["strict"]["error"] is None
    for args in (("init",), ("db", "current"), ("db", "upgrade"), ("db", "check"), ("plugins", "enable", "testplug")):
        res = cli(*args, database=db)
        assert res.exit_code == 0, (args, res.output)
    res = cli("plugins", "enable", "typo", database=db)
    assert res.exit_code == 1 and "cannot be enabled" in res.output and "crm_customer_creatd" in res.output
    assert cli("customer", "add", "Acme", database=db).exit_code == 0  # the typo plugin is no one's problem


def test_migration_branches_ignores_a_plugin_that_does_not_fit(db, site):
    crm = CRM.open(db)
    try:
        by_plugin = crm.migration_branches()
        assert "testplug" in by_plugin and "broken" not in by_plugin
        assert crm.installed_plugins()["typo"].error
    finally:
        crm.close()


def test_published_hook_implemented_without_optional_needs_its_publisher_installed(cli, db, site, monkeypatch):
    monkeypatch.setenv("CRM_DISABLE_PLUGINS", "publisher")
    plugins = listed(cli, db)
    assert "unknown hook(s) publisher_extra" in plugins["strict"]["error"]
    assert plugins["subscriber"]["error"] is None  # its implementations are optional


def test_published_guard_through_entry_points(cli, db, site):
    for pid in ("subscriber", "publisher"):
        assert cli("plugins", "enable", pid, database=db).exit_code == 0
    import crm_publisher

    crm = CRM.open(db)
    try:
        from crmcore import Vetoed

        with pytest.raises(Vetoed, match="refused by plugin 'subscriber' \\(publisher_before_deal\\): deal forbidden"), \
                crm.unit_of_work("t") as uow:
            crm_publisher.close_deal(uow, "forbidden")
    finally:
        crm.close()


# -- an enabled plugin that cannot be loaded ---------------------------------------------------------

@pytest.mark.parametrize("broken", ["typo", "broken"])
def test_enabled_plugin_that_cannot_load_refuses_writes_and_warns_on_reads(cli, db, broken, monkeypatch):
    cli("customer", "add", "Acme", "--ref", "ACME", database=db)
    crm = CRM.open(db)
    crm.plugin_state(broken, True)  # enabled when it still worked; now it does not
    crm.close()

    res = cli("customer", "add", "Beta", database=db)
    assert res.exit_code == 2
    assert f"plugin '{broken}' is enabled but cannot be loaded" in res.output
    assert f"`crm plugins disable {broken}`" in res.output and f"CRM_DISABLE_PLUGINS={broken}" in res.output
    assert "Traceback" not in res.output
    res = cli("customer", "list", "--json", database=db)
    assert res.exit_code == 0
    assert [c["name"] for c in json.loads(res.stdout)] == ["Acme"]  # Beta was not written
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and f"plugin '{broken}'" in warnings[0]
    res = cli("customer", "merge", "ACME", "--into", "ACME", database=db)
    assert res.exit_code == 2 and "nothing was written" in res.output  # refused before anything is looked at

    crm = CRM.open(db)
    with pytest.raises(PluginUnavailable), crm.unit_of_work("t") as uow:
        uow.customers.create(CustomerCreate(name="Gamma"))
    with crm.unit_of_work("t", read_only=True) as uow:  # the Python API reads too
        assert len(uow.customers.list()) == 1
    crm.close()

    monkeypatch.setenv("CRM_DISABLE_PLUGINS", broken)  # the admin's decision: writes go on
    res = cli("customer", "add", "Beta", database=db)
    assert res.exit_code == 0 and "warning" not in res.output
    monkeypatch.delenv("CRM_DISABLE_PLUGINS")
    assert cli("plugins", "disable", broken, database=db).exit_code == 0  # allowed while broken
    res = cli("customer", "add", "Delta", database=db)
    assert res.exit_code == 0 and "warning" not in res.output


def test_enabled_plugin_whose_requirement_fails_refuses_writes(cli, db, site):
    (site / "crm_platform_testplugins-1.2.3.dist-info" / "entry_points.txt").write_text(ENTRY_POINTS + "needy = crm_needy\n")
    sys.modules.pop("crm_needy", None)
    for pid in ("testplug", "needy"):
        assert cli("plugins", "enable", pid, database=db).exit_code == 0
    crm = CRM.open(db)
    crm.plugin_state("testplug", False)  # behind the CLI's back: needy now lacks its requirement
    crm.close()
    res = cli("customer", "add", "A", database=db)
    assert res.exit_code == 2 and "plugin 'needy'" in res.output and "requires testplug" in res.output


# -- the merge journal ---------------------------------------------------------------------------------

def note_owners(url: str) -> list[int]:
    engine = create_crm_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(conn.scalars(text("SELECT customer_id FROM testplug_notes")))
    finally:
        engine.dispose()


def test_merge_while_disabled_is_replayed_when_enabled(cli, db):
    assert cli("plugins", "enable", "testplug", database=db).exit_code == 0
    for name in ("A", "B", "C", "D"):
        assert cli("customer", "add", name, "--ref", name, database=db).exit_code == 0  # a testplug note each
    assert cli("plugins", "disable", "testplug", database=db).exit_code == 0
    assert cli("customer", "merge", "B", "--into", "A", database=db).exit_code == 0
    assert cli("customer", "merge", "A", "--into", "C", database=db).exit_code == 0  # chained: B's note ends on C
    assert note_owners(db) == [1, 2, 3, 4]  # testplug was not there: its rows stay behind
    res = cli("plugins", "enable", "testplug", database=db)
    assert res.exit_code == 0, res.output
    assert "replayed 2 merge(s) made while it was disabled, 3 testplug_notes" in res.output
    assert note_owners(db) == [3, 3, 3, 4]
    res = cli("plugins", "enable", "testplug", database=db)  # idempotent: nothing left to replay
    assert res.exit_code == 0 and "replayed" not in res.output
    # a merge while enabled is journaled with the plugin, and not replayed again
    assert cli("customer", "merge", "D", "--into", "C", database=db).exit_code == 0
    assert cli("plugins", "disable", "testplug", database=db).exit_code == 0
    res = cli("plugins", "enable", "testplug", database=db)
    assert "replayed" not in res.output and note_owners(db) == [3, 3, 3, 3]
    engine = create_crm_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(select(MergeJournal.source_id, MergeJournal.target_id, MergeJournal.actor,
                                   MergeJournal.plugins).order_by(MergeJournal.id)).all()
    engine.dispose()
    assert [tuple(r[:3]) for r in rows] == [(2, 1, "tester"), (1, 3, "tester"), (4, 3, "tester")]
    assert all("testplug" in r[3] for r in rows)


def test_replay_failure_rolls_back_the_enable(cli, db, testplug):
    cli("plugins", "enable", "testplug", database=db)
    cli("customer", "add", "A", "--ref", "A", database=db)
    cli("customer", "add", "B", "--ref", "B", database=db)
    cli("plugins", "disable", "testplug", database=db)
    cli("customer", "merge", "B", "--into", "A", database=db)
    testplug.FAIL_IN = "crm_merge_customers"
    res = cli("plugins", "enable", "testplug", database=db)
    assert res.exit_code == 1 and "plugin 'testplug' failed in hook crm_merge_customers" in res.output
    assert listed(cli, db)["testplug"]["enabled"] is False
    testplug.FAIL_IN = None
    res = cli("plugins", "enable", "testplug", database=db)
    assert "replayed 1 merge(s)" in res.output and note_owners(db) == [1, 1]


def test_first_enable_replays_nothing(cli, db):
    cli("customer", "add", "A", "--ref", "A", database=db)
    cli("customer", "add", "B", "--ref", "B", database=db)
    cli("customer", "merge", "B", "--into", "A", database=db)
    res = cli("plugins", "enable", "testplug", database=db)
    assert res.exit_code == 0 and "replayed" not in res.output


# -- audit of plugin administration ------------------------------------------------------------------

def test_enable_disable_purge_are_audited_with_the_actor(cli, db):
    cli("plugins", "enable", "testplug", database=db)
    cli("plugins", "disable", "testplug", database=db)
    cli("plugins", "remove", "testplug", "--purge", "--yes", database=db)
    res = cli("audit", "--entity", "plugin", "--json", database=db)
    entries = [(e["action"], e["actor"], e["id"]) for e in json.loads(res.stdout)]
    assert entries == [("purge", "tester", "testplug"), ("disable", "tester", "testplug"), ("enable", "tester", "testplug")]


# -- migrations: a failing plugin migration, a plugin uninstalled while applied ----------------------

ZED_REVISION = '''
from alembic import op
import sqlalchemy as sa

revision = "z001_zed"
down_revision = None
branch_labels = ("zed",)
depends_on = "{core_head}"


def upgrade():
    op.create_table("zed_things", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(20)))
    {fail}


def downgrade():
    op.drop_table("zed_things")
'''

ZED_PLUGIN = '''
from pathlib import Path
from crmcore import MigrationBranch, hookimpl


@hookimpl
def crm_register_migrations(register):
    register(MigrationBranch(label="zed", versions=Path(__file__).parent / "versions"))
'''


def make_zed(root: Path, fail: bool = False) -> Path:
    """A plugin whose branch depends on the core head (so alembic hides the core's row behind it)."""
    pkg = root / "crm_zed"
    (pkg / "versions").mkdir(parents=True)
    (pkg / "__init__.py").write_text(ZED_PLUGIN)
    core_head = runner.branch_heads([])["core"]
    body = ZED_REVISION.format(core_head=core_head, fail='raise RuntimeError("zed cannot migrate: disk quota")' if fail else "")
    (pkg / "versions" / "z001_zed.py").write_text(textwrap.dedent(body))
    return install(root, "crm_zed", "[crmcore.plugins]\nzed = crm_zed\n", "0.3.0")


@pytest.fixture
def zed_site(tmp_path, monkeypatch, site):
    root = tmp_path / "zed"
    monkeypatch.syspath_prepend(str(root))
    sys.modules.pop("crm_zed", None)
    yield root
    sys.modules.pop("crm_zed", None)


def test_failing_plugin_migration_names_the_plugin(cli, db, zed_site):
    make_zed(zed_site, fail=True)
    res = cli("plugins", "enable", "zed", database=db)
    assert res.exit_code == 2, res.output
    assert "migration of plugin 'zed' (branch zed) failed: zed cannot migrate: disk quota" in res.output
    assert "Traceback" not in res.output and "zed_things" not in tables(db)
    assert listed(cli, db)["zed"]["enabled"] is False
    assert cli("customer", "add", "Acme", database=db).exit_code == 0


def test_uninstalled_plugin_upgrade_still_works_and_purge_forgets_it(cli, db, zed_site):
    dist = make_zed(zed_site)
    assert cli("plugins", "enable", "zed", database=db).exit_code == 0
    engine = create_crm_engine(db)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO zed_things (id, name) VALUES (1, 'x')"))
        assert list(conn.scalars(text("SELECT version_num FROM alembic_version"))) == ["z001_zed"]  # core row hidden

    shutil.rmtree(dist)  # pip uninstall
    shutil.rmtree(zed_site / "crm_zed")
    sys.modules.pop("crm_zed", None)

    res = cli("db", "upgrade", database=db)
    assert res.exit_code == 0, res.output
    current = {r["branch"]: r for r in json.loads(cli("db", "current", "--json", database=db).stdout)}
    assert current["core"]["state"] == "up to date", current
    assert current["zed"]["state"].startswith("revision of uninstalled plugin 'zed'"), current
    res = cli("customer", "add", "Acme", database=db)  # warned and refused: zed is enabled but gone
    assert res.exit_code == 2 and "plugin 'zed'" in res.output and "enabled but not installed" in res.output
    zed = listed(cli, db)["zed"]
    assert (zed["installed"], zed["enabled"], zed["loaded"]) == (False, True, False)
    assert zed["migrations"] == "zed: applied, code missing" and "enabled but not installed" in zed["error"]
    assert cli("plugins", "disable", "zed", database=db).exit_code == 0
    assert "its tables remain until `crm plugins remove zed --purge`" in listed(cli, db)["zed"]["error"]
    res = cli("plugins", "remove", "zed", "--purge", "--dry-run", database=db)
    assert res.exit_code == 0 and "zed_things" in res.output
    res = cli("plugins", "remove", "zed", "--purge", "--yes", database=db)
    assert res.exit_code == 0, res.output
    assert "zed_things" not in tables(db)
    with engine.connect() as conn:
        versions = list(conn.scalars(text("SELECT version_num FROM alembic_version")))
    engine.dispose()
    assert versions == [runner.branch_heads([])["core"]]
    assert cli("db", "upgrade", database=db).exit_code == 0
    assert cli("db", "check", database=db).exit_code == 0
    assert cli("customer", "add", "Acme", database=db).exit_code == 0
    res = cli("plugins", "remove", "zed", "--purge", "--yes", database=db)
    assert res.exit_code == 1 and "plugin 'zed' not found" in res.output


def test_db_check_says_what_fixes_drift(cli, db):
    engine = create_crm_engine(db)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_customers_name"))
    engine.dispose()
    res = cli("db", "check", database=db)
    assert res.exit_code == 2
    assert "`crm db upgrade` will not fix it" in res.output
    assert "customers" in res.output


def test_db_check_advises_upgrade_when_a_branch_is_behind(cli, db):
    assert cli("plugins", "enable", "testplug", database=db).exit_code == 0
    engine = create_crm_engine(db)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE testplug_notes"))
        conn.execute(text("DELETE FROM alembic_version WHERE version_num = 't001_testplug'"))
    engine.dispose()
    res = cli("db", "check", database=db)
    assert res.exit_code == 2 and "run `crm db upgrade`" in res.output
    assert cli("db", "upgrade", database=db).exit_code == 0
    assert cli("db", "check", database=db).exit_code == 0


# -- several processes at once -------------------------------------------------------------------------

def test_parallel_enable_replays_each_merge_once(cli, db, site):
    assert cli("plugins", "enable", "testplug", database=db).exit_code == 0
    for name in ("A", "B", "C"):
        cli("customer", "add", name, "--ref", name, database=db)
    cli("plugins", "disable", "testplug", database=db)
    cli("customer", "merge", "B", "--into", "A", database=db)
    cli("customer", "merge", "C", "--into", "A", database=db)
    env = {k: v for k, v in os.environ.items() if k not in ("CRM_DISABLE_PLUGINS", "CRM_TEST_DATABASE_URL")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(TESTPLUGIN_DIR)])
    crm_script = str(Path(sys.executable).parent / "crm")
    procs = [subprocess.Popen([crm_script, "--database", db, "--user", f"admin{i}", "plugins",
                               "enable", "testplug"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(3)]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    for code, out, err in results:
        assert code in (0, 1), (code, out, err)
        assert "Traceback" not in err
    assert sum(code == 0 for code, _, _ in results) >= 1
    assert sum("replayed 2 merge(s)" in out for _, out, _ in results) == 1
    assert note_owners(db) == [1, 1, 1]
    engine = create_crm_engine(db)
    with engine.connect() as conn:
        enables = conn.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "enable"))
    engine.dispose()
    assert enables == 2  # the first enable, and the one that replayed


# -- `crm <command>` of a plugin that is installed but not active --------------------------------------

def test_command_of_a_disabled_plugin_says_how_to_enable_it(cli, db, monkeypatch):
    res = cli("testplug", "hello", database=db)
    assert res.exit_code == 2
    assert ("error: `crm testplug` is provided by plugin 'testplug', which is installed but not enabled; "
            "enable it with `crm plugins enable testplug`") in res.output
    assert cli("plugins", "enable", "testplug", database=db).exit_code == 0
    assert "hello from testplug" in cli("testplug", "hello", database=db).output
    monkeypatch.setenv("CRM_DISABLE_PLUGINS", "testplug")
    res = cli("testplug", "hello", database=db)
    assert res.exit_code == 2 and "blocked by CRM_DISABLE_PLUGINS" in res.output
    res = cli("nosuchthing", database=db)
    assert res.exit_code == 2 and "No such command 'nosuchthing'" in res.output


# -- start-up: `crm --help` and `crm --version` import neither SQLAlchemy nor the command modules ------

STARTUP = textwrap.dedent("""
    import sys
    from crmcore.cli import build_cli
    try:
        build_cli().main([sys.argv[1]], prog_name="crm")
    except SystemExit as e:
        assert e.code == 0, e.code
    heavy = sorted(m for m in ("sqlalchemy", "alembic", "crmcore.app", "crmcore.models", "crmcore.cli.customers") if m in sys.modules)
    print("HEAVY", heavy)
""")


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_nothing_heavy(tmp_path, flag):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    res = subprocess.run([sys.executable, "-c", STARTUP, flag], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
                         check=False)
    assert res.returncode == 0, res.stderr
    assert "HEAVY []" in res.stdout, res.stdout


def test_help_table_matches_the_core_commands():
    import click

    from crmcore.cli import CORE_COMMANDS, HELP_LIMIT, build_cli

    root = build_cli()
    real = {name: cmd.get_short_help_str(limit=HELP_LIMIT) for name, cmd in root.commands.items()}
    assert {n: h for n, (_, h) in CORE_COMMANDS.items()} == real
    for name, (module, _) in CORE_COMMANDS.items():
        fresh = build_cli()
        assert isinstance(fresh.get_command(click.Context(fresh), name), click.Command)
        assert module in fresh._loaded


def test_plugin_without_a_merge_hook_replays_nothing(cli, db):
    assert cli("plugins", "enable", "publisher", database=db).exit_code == 0
    cli("customer", "add", "A", "--ref", "A", database=db)
    cli("customer", "add", "B", "--ref", "B", database=db)
    cli("plugins", "disable", "publisher", database=db)
    cli("customer", "merge", "B", "--into", "A", database=db)
    res = cli("plugins", "enable", "publisher", database=db)
    assert res.exit_code == 0 and "replayed" not in res.output
