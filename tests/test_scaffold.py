"""`crm plugins new` writes a plugin whose own tests pass at once (SQLite, and PostgreSQL when the
suite runs on it), that installs through its entry point, and whose branch gets new revisions
from `crm db revision --plugin`."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from crmcore.testing import TEST_URL_ENV, is_postgres

CRM = str(Path(sys.executable).with_name("crm"))


def scaffold(cli: Any, where: Path, name: str = "support") -> Path:
    res = cli("plugins", "new", name, "--dir", str(where))
    assert res.exit_code == 0, res.output
    root = where / f"crm-{name.replace('_', '-')}"
    assert f"created plugin {name} in {root}" in res.stdout
    return root


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(extra)
    return env


#: the standard layout (docs/plugin-guide.md "Layout"): what `crm plugins new field_service` writes
LAYOUT = {"pyproject.toml", "README.md", "tests/conftest.py", "tests/test_field_service.py", "tests/test_routes.py",
          "tests/test_bulk.py", "tests/test_migration.py", "tests/test_console.py",
          "crm_field_service/migrations/versions/field_service_0001.py", "crm_field_service/templates/notes.html",
          "crm_field_service/templates/section.html", "crm_field_service/locale/ru/LC_MESSAGES/messages.po",
          "crm_field_service/locale/zh_Hans/LC_MESSAGES/messages.po",
          *(f"crm_field_service/{m}.py" for m in ("__init__", "plugin", "settings", "models", "schemas", "services",
                                                   "views", "cli", "routes", "bulk", "testing", "console"))}
#: the plugin's own tests: 12 of test_field_service, 3 of test_routes, 2 of test_bulk, 1 migration, 8 console
GENERATED_TESTS = 26


def test_scaffolded_plugin_tests_pass(cli: Any, tmp_path: Path, empty_database_url: str) -> None:
    root = scaffold(cli, tmp_path, "field_service")
    pkg = root / "crm_field_service"
    assert {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} == LAYOUT
    assert 'field_service = "crm_field_service.plugin"' in (root / "pyproject.toml").read_text()
    assert "class FieldServiceSettings(PluginSettings)" in (pkg / "settings.py").read_text()
    plugin = (pkg / "plugin.py").read_text()
    assert "$" not in plugin  # every placeholder was filled
    for declared in ('SETTINGS = "crm_field_service.settings:FieldServiceSettings"', 'ROUTES = "crm_field_service.routes:router"',
                     'BULK_ENTITIES = "crm_field_service.bulk:NOTES"', 'defer_models("crm_field_service.models")'):
        assert declared in plugin

    engines: list[tuple[str, dict[str, str]]] = [("sqlite", {})] + ([("postgresql", {TEST_URL_ENV: empty_database_url})] if is_postgres() else [])
    for engine, extra in engines:
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly"], cwd=root, env=clean_env(**extra),
                             capture_output=True, text=True, timeout=600, check=False)
        assert run.returncode == 0, f"{engine}:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}"
        assert re.search(rf"\b{GENERATED_TESTS} passed\b", run.stdout), run.stdout[-500:]


def test_the_scaffold_is_small_glue_and_loads_lazily(cli: Any, tmp_path: Path) -> None:
    """The generated glue (plugin.py, settings.py, pyproject.toml, counted as the warranty example's
    is) stays under 60 lines; importing the plugin module maps no table and imports neither the
    CLI, the routes nor the bulk entity (the core imports each declaration when it needs it)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_example_warranty import code_lines

    root = scaffold(cli, tmp_path, "field_service")
    glue = sum(len(code_lines(root / f)) for f in ("crm_field_service/plugin.py", "crm_field_service/settings.py",
                                                    "pyproject.toml"))
    assert glue < 60, glue
    probe = ("import sys, crm_field_service.plugin as p\n"
             "print(sorted(m for m in sys.modules if m.startswith('crm_field_service.')))\n"
             "from crmcore.db.base import metadata\n"
             "print('field_service_notes' in metadata.tables, 'field_service_notes' in {t.name for t in metadata.sorted_tables})")
    res = subprocess.run([sys.executable, "-c", probe], cwd=root, env=clean_env(PYTHONPATH=str(root)), capture_output=True,
                         text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["['crm_field_service.console', 'crm_field_service.plugin']", "False True"]


def install_in_place(root: Path, site: Path, plugin_id: str, pkg: str) -> dict[str, str]:
    """Make the checkout importable with its entry point, as `pip install -e .` would."""
    info = site / f"{pkg}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {pkg.replace('_', '-')}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[crmcore.plugins]\n{plugin_id} = {pkg}.plugin\n")
    return clean_env(PYTHONPATH=os.pathsep.join([str(site), str(root)]))


def crm(env: dict[str, str], url: str, *args: str, cwd: Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([CRM, "--database", url, "--user", "dev", *args], cwd=cwd, env=env, capture_output=True, check=False,
                         text=True, timeout=120)
    assert res.returncode == code, f"crm {' '.join(args)}: {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


def test_installed_plugin_works_and_gets_revisions(cli: Any, tmp_path: Path, empty_database_url: str) -> None:
    root = scaffold(cli, tmp_path)
    env = install_in_place(root, tmp_path / "site", "support", "crm_support")
    url = empty_database_url
    work = tmp_path / "work"
    work.mkdir()
    crm(env, url, "init", cwd=work)
    listed = {p["id"]: p for p in json.loads(crm(env, url, "plugins", "list", "--json", cwd=work).stdout)}
    assert listed["support"]["enabled"] is False and listed["support"]["error"] is None
    crm(env, url, "plugins", "enable", "support", cwd=work)
    crm(env, url, "customer", "add", "Acme", "--ref", "ACME", cwd=work)
    crm(env, url, "support", "add", "ACME", "Renewal", "--amount", "12.30", cwd=work)
    assert "Renewal" in crm(env, url, "customer", "show", "ACME", cwd=work).stdout  # the profile section
    settings = json.loads(crm(env | {"CRM_SUPPORT__MAX_OPEN_NOTES": "3"}, url, "config", "show", "--json", cwd=work).stdout)
    assert {"plugin": "support", "key": "max_open_notes", "value": 3, "source": "env CRM_SUPPORT__MAX_OPEN_NOTES"} in settings

    # a model change -> an autogenerated revision in the plugin's branch, only about its table
    models = root / "crm_support" / "models.py"
    models.write_text(models.read_text().replace(
        "    created_by: Mapped[str]", "    priority: Mapped[int | None] = mapped_column()\n    created_by: Mapped[str]"))
    out = crm(env, url, "db", "revision", "--plugin", "support", "-m", "add priority", "--autogenerate", cwd=work).stdout
    path = Path(out.strip().removeprefix("wrote "))
    assert path.parent == root / "crm_support" / "migrations" / "versions" and path.name.startswith("support_0002")
    text = path.read_text()
    assert "down_revision = 'support_0001'" in text and "add_column(sa.Column('priority'" in text
    assert "customers" not in text.split("def upgrade")[1]  # nothing about the core's tables
    crm(env, url, "db", "upgrade", cwd=work)
    crm(env, url, "db", "check", cwd=work)
    # an empty revision needs no database comparison
    out = crm(env, url, "db", "revision", "--plugin", "support", "-m", "data fix", cwd=work).stdout
    empty = Path(out.strip().removeprefix("wrote "))
    assert empty.name.startswith("support_0003") and "down_revision = 'support_0002'" in empty.read_text()
    res = crm(env, url, "db", "revision", "--plugin", "support", "-m", "x", "--autogenerate", cwd=work, code=1)
    assert "not its head support_0003" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_service_is_a_valid_plugin_name(cli: Any, tmp_path: Path) -> None:
    res = cli("plugins", "new", "service", "--dir", str(tmp_path))
    assert res.exit_code == 0, res.stderr
    assert 'service = "crm_service.plugin"' in (tmp_path / "crm-service" / "pyproject.toml").read_text()


@pytest.mark.parametrize("name, message", [
    ("Bad Name", "invalid plugin name 'Bad Name'"),
    ("x", "invalid plugin name 'x'"),
    ("a__b", "invalid plugin name 'a__b'"),
    ("customer", "it is reserved (a core command (crm customer))"),
    ("class", "it is reserved (a Python keyword)"),
    ("audit", "it is reserved (a core command (crm audit))"),
    ("core", "it is reserved (the label of the core's migration branch)"),
    ("plugin", "its table prefix plugin_ would cover the core table plugin_"),
])
def test_bad_names_are_one_line_and_write_nothing(cli: Any, tmp_path: Path, name: str, message: str) -> None:
    res = cli("plugins", "new", name, "--dir", str(tmp_path))
    assert res.exit_code == 1 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == []


def test_revision_of_an_unknown_plugin_or_without_message(cli: Any) -> None:
    res = cli("db", "revision", "--plugin", "nope", "-m", "x")
    assert res.exit_code == 1 and res.stderr.startswith("error: plugin 'nope' (installed plugins with migrations:")
    res = cli("db", "revision", "--plugin", "nope", "-m", " ")
    assert res.exit_code == 1 and "give a one-line message with -m" in res.stderr


def test_existing_target_and_missing_dir(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "crm-support").mkdir()
    (tmp_path / "crm-support" / "keep.txt").write_text("mine")
    res = cli("plugins", "new", "support", "--dir", str(tmp_path))
    assert res.exit_code == 1 and "already exists and is not empty" in res.stderr
    assert [p.name for p in (tmp_path / "crm-support").iterdir()] == ["keep.txt"]
    res = cli("plugins", "new", "support", "--dir", str(tmp_path / "nowhere" / "deeper"))  # created when missing
    assert res.exit_code == 0 and (tmp_path / "nowhere" / "deeper" / "crm-support" / "pyproject.toml").is_file()
    (tmp_path / "a-file").write_text("x")
    res = cli("plugins", "new", "support", "--dir", str(tmp_path / "a-file"))
    assert res.exit_code == 2 and "is a file" in res.stderr  # click's own check of --dir


def test_renamed_table_on_an_emptied_branch_gets_a_regenerated_revision(cli: Any, tmp_path: Path,
                                                                         empty_database_url: str) -> None:
    """The guide's path for a plugin author: rename the scaffold's table, delete its revision (the
    branch is then empty), let autogenerate write the first revision again; the plugin's own tests
    then pass on both engines."""
    root = scaffold(cli, tmp_path)
    pkg = root / "crm_support"
    for path in [pkg / "models.py", *(root / "tests").glob("*.py")]:
        path.write_text(path.read_text().replace("support_notes", "support_tickets"))
    (pkg / "migrations" / "versions" / "support_0001.py").unlink()
    env = install_in_place(root, tmp_path / "site", "support", "crm_support")
    url, work = empty_database_url, tmp_path / "work"
    work.mkdir()
    crm(env, url, "init", cwd=work)
    listed = {p["id"]: p for p in json.loads(crm(env, url, "plugins", "list", "--json", cwd=work).stdout)}
    assert listed["support"]["migrations"] == "support: not applied" and listed["support"]["error"] is None
    rows = {r["branch"]: r for r in json.loads(crm(env, url, "db", "current", "--json", cwd=work).stdout)}
    assert rows["support"]["current"] is None and rows["support"]["head"] is None
    crm(env, url, "plugins", "enable", "support", cwd=work)  # an empty branch: nothing to run yet

    out = crm(env, url, "db", "revision", "--plugin", "support", "-m", "tickets", "--autogenerate", cwd=work).stdout
    path = Path(out.strip().removeprefix("wrote "))
    assert path.parent == pkg / "migrations" / "versions" and path.name == "support_0001_tickets.py"
    text = path.read_text()
    assert "down_revision = None" in text and "branch_labels = ('support',)" in text and "depends_on = '0001_core'" in text
    assert "op.create_table('support_tickets'" in text and "support_notes" not in text
    crm(env, url, "db", "upgrade", cwd=work)
    crm(env, url, "db", "check", cwd=work)
    rows = {r["branch"]: r for r in json.loads(crm(env, url, "db", "current", "--json", cwd=work).stdout)}
    assert rows["support"]["current"] == rows["support"]["head"] == "support_0001"
    crm(env, url, "customer", "add", "Acme", "--ref", "ACME", cwd=work)
    crm(env, url, "support", "add", "ACME", "Renewal", cwd=work)

    engines: list[tuple[str, dict[str, str]]] = [("sqlite", {})] + ([("postgresql", {TEST_URL_ENV: empty_database_url})] if is_postgres() else [])
    for engine, extra in engines:  # the regenerated revision is the one the plugin's migration test runs
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly"], cwd=root,
                             env=clean_env(PYTHONPATH=str(root), **extra), capture_output=True, text=True, timeout=600,
                             check=False)
        assert run.returncode == 0, f"{engine}:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}"
        assert " passed" in run.stdout and "failed" not in run.stdout, run.stdout[-500:]
