"""The documentation is checked against the code (in the spirit of datasette's tests/test_docs.py).

- every hook of crmcore.hookspecs has a ``## crm_<name>`` section in docs/hooks.md, and no
  section documents a hook that does not exist; every hook is named in tests/test_hooks.py;
- every ``crm`` command is in docs/admin-guide.md, and every ``crm ...`` command line quoted
  in docs/*.md names real commands and options;
- the import column sets in the admin guide are crmcore.bulk.specs';
- examples/embed.py runs; examples/hello_plugin works (its own tests, and installed through
  a real entry point: enabled, migrated, used, removed);
- ```python blocks of docs/*.md compile, and those starting with ``# runnable`` run.

The examples run in subprocesses: importing the example plugin here would put its tables on
the shared metadata of this test session.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import click
import pytest

import crmcore.hookspecs as hookspecs
from crmcore.bulk.specs import SPECS
from crmcore.cli import build_cli
from crmcore.testing import TEST_URL_ENV, is_postgres

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
HELLO = EXAMPLES / "hello_plugin"
DOC_FILES = sorted(DOCS.glob("*.md"))

HOOKS = sorted(name for name, obj in vars(hookspecs).items() if hasattr(obj, f"{hookspecs.PROJECT}_spec"))


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess: no database, config or plugin switches of the caller."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CRM_DATABASE_URL", "CRM_DISABLE_PLUGINS", "CRM_USER", TEST_URL_ENV, "PYTHONPATH")}
    env.update(PYTHONIOENCODING="utf-8", PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, encoding="utf-8", timeout=timeout)


# -- hooks ------------------------------------------------------------------------------------

def hook_sections() -> list[str]:
    return re.findall(r"^## (crm_\w*)", read(DOCS / "hooks.md"), flags=re.M)


def test_hookspecs_found():
    assert len(HOOKS) >= 15 and all(h.startswith("crm_") for h in HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    assert hook in hook_sections(), f"docs/hooks.md has no '## {hook}' section"


def test_no_section_documents_a_missing_hook():
    sections = hook_sections()
    assert sorted(set(sections) - set(HOOKS)) == [], "docs/hooks.md documents hooks that do not exist"
    assert len(sections) == len(set(sections)), "a hook is documented twice"
    # the headings are exactly '## crm_name' (anchors and the test rely on it)
    assert re.findall(r"^## crm_.*$", read(DOCS / "hooks.md"), flags=re.M) == [f"## {s}" for s in sections]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    assert hook in read(ROOT / "tests" / "test_hooks.py"), f"tests/test_hooks.py never names {hook}"


# -- the crm command ----------------------------------------------------------------------------

def core_commands() -> list[str]:
    """'crm <group> <cmd>' for every core command (plugin commands are not in .commands)."""
    out: list[str] = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                walk(sub, [*path, name])
        else:
            out.append(" ".join(path))

    walk(build_cli(), ["crm"])
    return out


def test_core_commands_found():
    assert {"crm init", "crm db upgrade", "crm plugins remove", "crm import", "crm account post"} <= set(core_commands())


@pytest.mark.parametrize("command", core_commands())
def test_every_command_is_in_the_admin_guide(command):
    assert re.search(rf"{re.escape(command)}(?![\w-])", read(DOCS / "admin-guide.md")), \
        f"docs/admin-guide.md does not mention `{command}`"


def quoted_command_lines() -> list[tuple[str, str]]:
    """(file, text) of every `crm ...` inline code span and `$ crm ...` console line in the docs."""
    found = []
    for path in DOC_FILES:
        text = read(path)
        for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
            for line in block.splitlines():
                if line.startswith("$ "):
                    found.append((path.name, line[2:]))
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        found += [(path.name, span) for span in re.findall(r"`([^`\n]+)`", prose)]
    out = []
    for name, snippet in found:
        snippet = re.sub(r"^(?:[A-Z_]+=\S*\s+)+", "", snippet.strip())  # VAR=value crm ...
        if re.match(r"crm(\s|$)", snippet):
            out.append((name, snippet.split("#")[0].split("&&")[0].replace("\\|", "|")))
    return out


GLOBAL_OPTIONS_WITH_VALUE = {"-d", "--database", "-u", "--user"}


def option_names(cmd: click.Command) -> set[str]:
    names = {"-h", "--help"}
    for p in cmd.params:
        if isinstance(p, click.Option):
            names.update(p.opts)
            names.update(p.secondary_opts)
    return names


def test_quoted_command_lines_found():
    assert len(quoted_command_lines()) > 50


@pytest.mark.parametrize("where,line", quoted_command_lines())
def test_quoted_commands_and_options_exist(where, line):
    root = build_cli()
    tokens = line.split()[1:]
    i = 0
    while i < len(tokens) and tokens[i].startswith("-"):  # global options
        assert tokens[i] in option_names(root), f"{where}: `{line}`: no global option {tokens[i]}"
        i += 2 if tokens[i] in GLOBAL_OPTIONS_WITH_VALUE else 1
    cmd: click.Command = root
    while isinstance(cmd, click.Group) and i < len(tokens):
        if tokens[i] in ("...", "…"):
            return  # `crm db ...`: any command of the group
        names = tokens[i].split("|")
        if cmd is root and names[0] not in root.commands:
            return  # a plugin's command (crm value ..., crm hello ...)
        for n in names:
            assert n in cmd.commands, f"{where}: `{line}`: no command {n!r}"
        if len(names) > 1:
            return
        cmd = cmd.commands[names[0]]
        i += 1
    if isinstance(cmd, click.Group):
        return  # a group named on its own
    rest = " ".join(tokens[i:])
    for opt in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", rest):
        assert opt in option_names(cmd), f"{where}: `{line}`: `{cmd.name}` has no option {opt}"


@pytest.mark.parametrize("entity", sorted(SPECS))
def test_import_columns_in_the_admin_guide(entity):
    row = re.search(rf"^\| `{entity}` \|(.*)$", read(DOCS / "admin-guide.md"), flags=re.M)
    assert row, f"the admin guide's column table has no row for {entity}"
    documented = re.findall(r"[a-z_]+(?:\.<field>)?", re.sub(r"\|[^|]*\|\s*$", "", row.group(1)))
    for column in SPECS[entity].columns:
        assert column in documented, f"column {column} of {entity} is not documented"
    for column in SPECS[entity].required:
        assert f"**{column}**" in row.group(1), f"required column {column} of {entity} is not marked"


# -- links ------------------------------------------------------------------------------------

def slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", read(path), flags=re.S)
    return {slug(h) for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: p.name)
def test_links_resolve(path):
    text = re.sub(r"```.*?```", "", read(path), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        assert dest.exists(), f"{path.name}: broken link {target}"
        if anchor:
            assert anchor in anchors(dest), f"{path.name}: no heading for #{anchor} in {dest.name}"


# -- examples -----------------------------------------------------------------------------------

def test_embed_example_runs(tmp_path):
    res = run([sys.executable, str(EXAMPLES / "embed.py")], tmp_path, clean_env())
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "after the commit, outbox:   ['welcome mail to Acme Kitchens (trade)']" in out
    assert "refused: attributes.segment: required custom field is missing" in out
    assert "360° profile of Acme Kitchens" in out
    assert "balance 700.00 EUR" in out
    assert "section Onboarding: {'segment': 'trade'}" in out
    assert list(tmp_path.iterdir()) == []  # it cleaned up after itself


def test_embed_example_runs_on_the_test_engine(tmp_path, empty_database_url):
    res = run([sys.executable, str(EXAMPLES / "embed.py"), empty_database_url], tmp_path, clean_env())
    assert res.returncode == 0, res.stderr
    assert "balance 700.00 EUR" in res.stdout


def test_hello_plugin_declares_its_entry_point():
    project = tomllib.loads(read(HELLO / "pyproject.toml"))
    assert project["project"]["entry-points"]["crmcore.plugins"] == {"hello": "crm_hello.plugin"}
    assert "migrations/versions/*.py" in project["tool"]["setuptools"]["package-data"]["crm_hello"]
    plugin = read(HELLO / "crm_hello" / "plugin.py")
    assert 'PLUGIN_ID = "hello"' in plugin
    revision = read(HELLO / "crm_hello" / "migrations" / "versions" / "h001_hello.py")
    assert "branch_labels = ('hello',)" in revision and "depends_on = '0001_core'" in revision


def test_hello_plugin_own_tests_pass(tmp_path, empty_database_url):
    """The example's tests, as its author runs them (`pytest` in its directory); on PostgreSQL
    in a database of their own, since crmcore's fixtures reset the schema of that database."""
    env = clean_env(**({TEST_URL_ENV: empty_database_url} if is_postgres() else {}))
    res = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t")],
              HELLO, env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"\b8 passed\b", res.stdout), res.stdout


INSTALLED_HELLO = textwrap.dedent("""
    import json, sys
    from click.testing import CliRunner
    from sqlalchemy import inspect
    from crmcore.cli import build_cli
    from crmcore.db.engine import create_crm_engine

    url = sys.argv[1]

    def crm(*args, code=0):
        res = CliRunner().invoke(build_cli(), ["--database", url, "--user", "docs", *args])
        print("$ crm", *args, "->", res.exit_code, res.output.strip()[-300:])
        assert res.exit_code == code, (args, res.exit_code, res.output)
        return res.output

    def tables():
        engine = create_crm_engine(url)
        try:
            return set(inspect(engine).get_table_names())
        finally:
            engine.dispose()

    crm("init")
    listed = {p["id"]: p for p in json.loads(crm("plugins", "list", "--json"))}
    assert listed["hello"]["version"] == "0.1.0" and not listed["hello"]["enabled"], listed["hello"]
    crm("hello", "show", "1", code=2)  # not enabled: no such command
    crm("plugins", "enable", "hello")
    assert "hello_greetings" in tables()
    current = {r["branch"]: r["state"] for r in json.loads(crm("db", "current", "--json"))}
    assert current["hello"] == "up to date", current
    crm("db", "check")
    crm("customer", "add", "Acme", "--ref", "ACME", "--attr", "hello_language=fr")
    assert crm("hello", "show", "ACME") == "Bonjour, Acme!\\n"
    assert "Bonjour, Acme!" in crm("customer", "show", "ACME")
    crm("customer", "add", "Bad", "--attr", "hello_language=xx", code=1)
    crm("plugins", "disable", "hello")
    crm("hello", "show", "ACME", code=2)
    crm("plugins", "remove", "hello", "--purge", "--yes")
    assert "hello_greetings" not in tables()
    print("OK")
""")


def test_hello_plugin_installed_through_its_entry_point(tmp_path, empty_database_url):
    """As if pip-installed: a dist-info with the entry point on the path, then the admin's commands."""
    dist = tmp_path / "site" / "crm_hello-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: crm-hello\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[crmcore.plugins]\nhello = crm_hello.plugin\n")
    script = tmp_path / "installed_hello.py"
    script.write_text(INSTALLED_HELLO)
    env = clean_env(PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), str(HELLO)]))
    res = run([sys.executable, str(script), empty_database_url], tmp_path, env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.rstrip().endswith("OK")


# -- code blocks --------------------------------------------------------------------------------

def python_blocks() -> list[tuple[str, int, str]]:
    out = []
    for path in DOC_FILES:
        for n, block in enumerate(re.findall(r"```python\n(.*?)```", read(path), flags=re.S)):
            out.append((path.name, n, block))
    return out


def test_python_blocks_found():
    runnable = [b for b in python_blocks() if b[2].startswith("# runnable")]
    assert len(python_blocks()) > 20 and len(runnable) >= 2


@pytest.mark.parametrize("where,n,code", python_blocks(), ids=[f"{w}-{n}" for w, n, _ in python_blocks()])
def test_python_blocks_compile(where, n, code):
    compile(code, f"{where} block {n}", "exec")


@pytest.mark.parametrize("where,n,code", [b for b in python_blocks() if b[2].startswith("# runnable")],
                         ids=[f"{w}-{n}" for w, n, c in python_blocks() if c.startswith("# runnable")])
def test_runnable_python_blocks_run(tmp_path, where, n, code):
    res = run([sys.executable, "-c", code], tmp_path, clean_env())
    assert res.returncode == 0, f"{where} block {n} failed:\n{res.stderr}"
