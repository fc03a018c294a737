"""The standard plugin layout, checked: what ``crm plugins new`` writes and the shipped plugins follow.

A plugin's own tests call :func:`assert_plugin_layout` (``from crmcore.testing import
assert_plugin_layout``) so a rename or a moved module that would surprise an admin or the core
(a branch label other than the plugin id, a table outside the plugin's prefix, a revision that
does not start the branch on the core) fails in the plugin's CI, not at ``crm plugins enable``.
"""
from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

from crmcore.plugins import call_register_hook, describe

VALID_ID = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
#: where each kind of declaration lives in the package (``crm_<id>.<module>`` or a subpackage of it)
HOME = {"crm_register_settings": ("settings", "schemas"), "crm_register_commands": ("cli",)}


def _package(module: Any) -> str:
    name = getattr(module, "__name__", "")
    return name.rpartition(".")[0] if name.endswith(".plugin") else name


def _lives_in(obj: Any, package: str, homes: tuple[str, ...]) -> bool:
    where = getattr(obj, "__module__", None) or ""
    return any(where == f"{package}.{h}" or where.startswith(f"{package}.{h}.") or where.startswith(f"{package}.{h}_")
               for h in homes)


def _identity(module: Any, plugin_id: str | None) -> tuple[str | None, list[str]]:
    problems: list[str] = []
    pid = getattr(module, "PLUGIN_ID", None)
    if not isinstance(pid, str) or not VALID_ID.match(pid):
        problems.append(f"the plugin module sets no valid PLUGIN_ID (got {pid!r}): lower case letters, digits, single _")
        return None, problems
    if plugin_id is not None and pid != plugin_id:
        problems.append(f"PLUGIN_ID {pid!r} differs from the entry point name {plugin_id!r}")
    package = _package(module)
    if getattr(module, "__name__", "").rpartition(".")[2] != "plugin":
        problems.append(f"the hooks live in {getattr(module, '__name__', module)!r}, not in a module named plugin")
    elif package.rpartition(".")[2] != f"crm_{pid}":
        problems.append(f"the package is {package!r}, not crm_{pid}")
    return pid, problems


def _branch_problems(pid: str, module: Any, branches: list[Any]) -> list[str]:
    from alembic.script import ScriptDirectory

    from crmcore.migrations import runner

    problems: list[str] = []
    for b in branches:
        if b.label != pid:
            problems.append(f"migration branch label {b.label!r} differs from PLUGIN_ID {pid!r}")
        folder = Path(b.versions).resolve()
        if not folder.is_dir():
            problems.append(f"migration folder {folder} does not exist")
            continue
        if Path(inspect.getfile(module)).resolve().parent not in folder.parents:
            problems.append(f"migration folder {folder} is outside the plugin's package")
        script = ScriptDirectory.from_config(runner.alembic_config([b]))
        mine = [r for r in script.walk_revisions() if r.path and Path(r.path).resolve().parent == folder]
        core = {r.revision for r in script.walk_revisions() if r.path and Path(r.path).resolve().parent == runner.CORE_VERSIONS.resolve()}
        for r in mine:
            if r.down_revision is None and (b.label not in (r.branch_labels or ()) or not set(r._resolved_dependencies or ()) & core):
                problems.append(f"revision {r.revision} starts the branch but does not carry branch_labels = "
                                f"({b.label!r},) and depend on a core revision (depends_on = '0001_core')")
    return problems


def _table_problems(package: str, branches: list[Any], registry: Any = None) -> list[str]:
    from crmcore.db.base import Base

    prefixes = tuple(b.table_prefix for b in branches)
    problems = []
    for mapper in sorted((registry or Base.registry).mappers, key=lambda m: m.local_table.name):
        cls = mapper.class_
        if not (cls.__module__ == package or cls.__module__.startswith(f"{package}.")):
            continue
        name = mapper.local_table.name
        if not prefixes:
            problems.append(f"table {name} is mapped but the plugin declares no migration branch")
        elif not name.startswith(prefixes):
            problems.append(f"table {name} is outside the plugin's prefix {' or '.join(prefixes)}")
    return problems


def plugin_layout_problems(module: Any, plugin_id: str | None = None) -> list[str]:
    """Every way the plugin module departs from the standard layout, one line each ([] = none).

    Checked: ``PLUGIN_ID`` (equal to the entry point name when given) in ``crm_<id>/plugin.py``;
    its migration branch labelled by the id, its folder inside the package, the first revision
    starting the branch on a core revision; every mapped table of the package within the
    branch's table prefix; settings declared in ``settings`` or ``schemas``, commands in ``cli``.
    """
    pid, problems = _identity(module, plugin_id)
    if pid is None:
        return problems
    info = describe(pid, module)
    branches = call_register_hook(info, "crm_register_migrations")
    problems += _branch_problems(pid, module, branches)
    package = _package(module)
    problems += _table_problems(package, branches)
    for settings in call_register_hook(info, "crm_register_settings"):
        if not _lives_in(settings, package, HOME["crm_register_settings"]):
            problems.append(f"settings {settings.__name__} live in {settings.__module__}, not {package}.settings or .schemas")
    commands = _commands(info)
    for command in commands:
        callback = getattr(command, "callback", None)
        if callback is not None and not _lives_in(callback, package, HOME["crm_register_commands"]):
            problems.append(f"command {command.name!r} lives in {callback.__module__}, not {package}.cli")
    return problems


def _commands(info: Any) -> list[Any]:
    import click

    from crmcore.plugins import add_declared_commands

    holder = click.Group()
    hook = getattr(info.module, "crm_register_commands", None)
    if hook is not None:
        hook(cli=holder)
    add_declared_commands(info.id, info.module, holder)
    return list(holder.commands.values())


def assert_plugin_layout(module: Any, plugin_id: str | None = None) -> None:
    """Fail (AssertionError listing every problem) unless the plugin follows the standard layout."""
    problems = plugin_layout_problems(module, plugin_id)
    if problems:  # raised, not asserted: the message stays as written (and python -O cannot drop it)
        raise AssertionError(f"plugin {getattr(module, '__name__', module)} departs from the standard layout:\n- "
                             + "\n- ".join(problems))
